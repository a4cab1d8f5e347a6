"""A tiny, randomly initialised image-text-to-text model built fully offline, for tests.

It is a LLaVA: a 2-layer CLIP vision tower (16x16 images, 8-pixel patches, 4 image tokens),
a 2-layer Llama text model (hidden size 16) and a byte-level BPE tokenizer trained here on a
few sentences, saved with ``save_pretrained`` so ``AutoProcessor`` and
``AutoModelForImageTextToText`` load it like any hub model. Its replies are gibberish; it is
there to run the real ``generate`` path in seconds.

(Qwen2-VL-family processors cannot be built here: transformers needs torchvision for their
video processor, and it is not installed.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

IMAGE_TOKEN = "<image>"
SPECIAL_TOKENS = ("<pad>", "<s>", "</s>", IMAGE_TOKEN)
IMAGE_SIDE_PX = 16
PATCH_PX = 8

#: a Qwen-style template: images first, then the text, one turn per message
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] }}: "
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ '<image>\\n' }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}{{ '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)

_CORPUS = [
    "What colour is the table? Answer: red Confidence: 0.9",
    "Where is the chair? Answer: in the kitchen Confidence: 0.5",
    "The objects you remember are listed with their id, category, colour, region and position.",
    "id 7: table, colour brown, at (0.5, 0.6, 0.0) m",
]


def force_hub_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the Hugging Face hub offline, even where the hub library was imported already."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def build_tiny_vlm(folder: Path, seed: int = 0, chat_template: bool = True) -> Path:
    """Save a tiny LLaVA model and its processor to ``folder``; return it.

    Args:
        folder: where to save (created).
        seed: torch seed of the random weights.
        chat_template: save the chat template; without it a head must build a plain prompt.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaImageProcessorPil,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_CORPUS, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        extra_special_tokens={"image_token": IMAGE_TOKEN},
    )
    pad_id, bos_id, eos_id, image_id = tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS))
    image_processor = LlavaImageProcessorPil(
        size={"shortest_edge": IMAGE_SIDE_PX},
        crop_size={"height": IMAGE_SIDE_PX, "width": IMAGE_SIDE_PX},
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=PATCH_PX,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's class token, dropped by the "default" strategy
        chat_template=CHAT_TEMPLATE if chat_template else None,
    )
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=IMAGE_SIDE_PX,
            patch_size=PATCH_PX,
            projection_dim=16,
        ),
        text_config=LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=2048,
            bos_token_id=bos_id,
            eos_token_id=eos_id,
            pad_token_id=pad_id,
        ),
        image_token_index=image_id,
        image_seq_length=(IMAGE_SIDE_PX // PATCH_PX) ** 2,
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config).eval()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
