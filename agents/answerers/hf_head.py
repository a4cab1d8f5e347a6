"""The ``hf`` head: a local transformers image-text-to-text model (Qwen2.5-VL by default).

The model is any hub id or local folder that ``AutoProcessor`` and
``AutoModelForImageTextToText`` load; it is loaded on the first answer, and generation is
greedy (deterministic). It is shown the keyframes of the objects most relevant to the question
and the object list (see :mod:`aeqa.agents.answerers.context`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from aeqa.agents.answerers.base import Answer, AnswererConfig, check_question
from aeqa.agents.answerers.context import build_context
from aeqa.agents.answerers.matching import TextEmbedder
from aeqa.envs.device import device_settings
from aeqa.envs.errors import AeqaError
from aeqa.mapping.memory import SemanticMemory

logger = logging.getLogger(__name__)


def resolve_device(device: str) -> str:
    """torch's ``cpu`` or ``cuda:N`` for a configured ``auto`` | ``cpu`` | ``cuda[:N]`` (see
    :func:`aeqa.envs.device.device_settings`).

    Raises:
        AeqaError: an unknown device, or a CUDA device torch does not see.
    """
    return device_settings(device).answerer_device


def _first_line(error: BaseException) -> str:
    text = " ".join(str(error).split("\n", 1)[0].split())
    return text[:300] or type(error).__name__


def _looks_like_path(model: str) -> bool:
    return model.startswith(("/", "./", "../", "~", ".\\")) or Path(model).is_absolute()


def load_vlm(model: str, device: str) -> tuple[Any, Any]:
    """``(processor, model)`` of an image-text-to-text model, in eval mode on ``device``
    (bfloat16 on cuda, float32 on cpu).

    Raises:
        AeqaError: the model is not found (offline, or a wrong path), is not an
            image-text-to-text model, or needs a library that is missing.
    """
    import torch
    import transformers
    from transformers import AutoModelForImageTextToText, AutoProcessor

    ref = model.strip()
    if not ref:
        raise AeqaError(
            "answerer model is empty; give a hub id such as Qwen/Qwen2.5-VL-3B-Instruct"
        )
    if _looks_like_path(ref) and not Path(ref).expanduser().is_dir():
        raise AeqaError(
            f"{ref}: no such model folder; give the folder a model was saved to, or a hub id "
            "such as Qwen/Qwen2.5-VL-3B-Instruct (download it with huggingface-cli download)"
        )
    if _looks_like_path(ref):
        ref = str(Path(ref).expanduser())
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    # transformers renamed ``torch_dtype`` to ``dtype`` in 4.56
    major, minor = (int(part) for part in transformers.__version__.split(".")[:2])
    dtype_key = "dtype" if (major, minor) >= (4, 56) else "torch_dtype"
    started = time.perf_counter()
    network: Any
    try:
        processor = AutoProcessor.from_pretrained(ref)
        network = AutoModelForImageTextToText.from_pretrained(ref, **{dtype_key: dtype})
    except ImportError as e:
        raise AeqaError(
            f"{ref}: cannot load the model, a library it needs is missing ({_first_line(e)}); "
            "pip install it (Qwen2-VL-family processors need torchvision)"
        ) from e
    except (OSError, ValueError, KeyError) as e:
        raise AeqaError(
            f"{ref}: cannot load it as an image-text-to-text model ({_first_line(e)}); "
            f"download it with huggingface-cli download {ref}, or give a local path to a saved "
            "vision-language model"
        ) from e
    if getattr(processor, "image_processor", None) is None:
        raise AeqaError(
            f"{ref}: its processor takes no images, so it is not a vision-language model; "
            "choose one such as Qwen/Qwen2.5-VL-3B-Instruct"
        )
    network = network.to(device).eval()
    logger.info(
        "loaded %s (%s) on %s in %.1f s",
        ref,
        type(network).__name__,
        device,
        time.perf_counter() - started,
    )
    return processor, network


def prompt_text(processor: Any, prompt: str, image_count: int) -> tuple[str, int]:
    """The model's input text and how many images it refers to.

    With a chat template the images come first in one user turn; without one, the processor's
    image token is repeated before the prompt, or where it has none the images are left out.
    """
    if getattr(processor, "chat_template", None):
        content: list[dict[str, str]] = [{"type": "image"} for _ in range(image_count)]
        content.append({"type": "text", "text": prompt})
        messages = [{"role": "user", "content": content}]
        text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return str(text), image_count
    image_token = getattr(processor, "image_token", None)
    if image_count and not image_token:
        logger.warning("the processor has no chat template and no image token: sending no images")
        image_count = 0
    markers = "".join(f"{image_token}\n" for _ in range(image_count))
    return f"{markers}{prompt}\n", image_count


class HFAnswerer:
    """Answers with a local vision-language model.

    Args:
        config: reads ``model``, ``device``, ``max_images``, ``max_new_tokens``, ``seed`` and
            ``embedding_model`` (ranks objects for the keyframes).

    Raises:
        AeqaError: an unknown device, or ``cuda`` without a GPU (at construction); a model
            that cannot be loaded (at the first answer).
    """

    name = "hf"

    def __init__(self, config: AnswererConfig) -> None:
        self.config = config
        self.device = resolve_device(config.device)
        self.embedder = TextEmbedder(config.embedding_model)
        self._processor: Any = None
        self._model: Any = None

    def _loaded(self) -> tuple[Any, Any]:
        if self._model is None:
            self._processor, self._model = load_vlm(self.config.model, self.device)
        return self._processor, self._model

    def answer(self, question: str, memory: SemanticMemory) -> Answer:
        """Answer from the keyframes of the relevant objects and the object list."""
        text = check_question(question)
        # Load the model first: the embedder's loader sets HF_HUB_OFFLINE=1 where it imports
        # the hub library first, which would stop this model from downloading.
        self._loaded()
        context = build_context(text, memory, self.embedder, self.config.max_images)
        reply, sent = self._ask(context.prompt, [k.rgb for k in context.keyframes])
        # The evidence is the frames the model was shown.
        answer = replace(context, keyframes=context.keyframes[:sent]).answer(reply)
        logger.info("%s -> %r (confidence %.2f)", text, answer.text, answer.confidence)
        return answer

    def ask(self, prompt: str, images: list[np.ndarray]) -> str:
        """The model's greedy reply to ``prompt`` with ``images`` ((h, w, 3) uint8 RGB) before
        it; where the processor cannot take images (see :func:`prompt_text`), none are sent."""
        return self._ask(prompt, images)[0]

    def _ask(self, prompt: str, images: list[np.ndarray]) -> tuple[str, int]:
        """The reply, and how many of ``images`` were sent."""
        processor, model = self._loaded()
        model_input, image_count = prompt_text(processor, prompt, len(images))
        return self.generate(processor, model, model_input, images[:image_count]), image_count

    def generate(
        self, processor: Any, model: Any, model_input: str, images: list[np.ndarray]
    ) -> str:
        """The model's greedy reply to ``model_input`` (from :func:`prompt_text`) with
        ``images`` ((h, w, 3) uint8 RGB) as PIL images."""
        import torch
        from PIL import Image

        pictures = [Image.fromarray(np.ascontiguousarray(rgb)) for rgb in images]
        inputs = processor(text=[model_input], images=pictures or None, return_tensors="pt")
        inputs = inputs.to(device=model.device, dtype=model.dtype)
        tokenizer = getattr(processor, "tokenizer", processor)
        pad_token_id = tokenizer.pad_token_id
        if pad_token_id is None:
            pad_token_id = tokenizer.eos_token_id
        torch.manual_seed(self.config.seed)
        started = time.perf_counter()
        with torch.inference_mode():
            output = model.generate(
                **inputs,
                do_sample=False,
                max_new_tokens=self.config.max_new_tokens,
                pad_token_id=pad_token_id,
            )
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        reply = str(processor.batch_decode(new_tokens, skip_special_tokens=True)[0])
        logger.debug(
            "generated %d tokens in %.2f s: %r",
            new_tokens.shape[1],
            time.perf_counter() - started,
            reply,
        )
        return reply
