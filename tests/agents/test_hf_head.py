"""The ``hf`` head end to end on a tiny offline VLM and a real memory, and its errors."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before anything imports huggingface_hub

import pytest

from aeqa.agents.answerers.base import Answer, AnswererConfig, make_answerer
from aeqa.agents.answerers.hf_head import HFAnswerer
from aeqa.envs.errors import AeqaError
from aeqa.mapping.memory import SemanticMemory
from tests.agents.tiny_vlm import build_tiny_vlm

QUESTION = "What colour is the table?"


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_vlm(tmp_path_factory.mktemp("tiny_vlm"))


def _config(model: str, **overrides: object) -> AnswererConfig:
    config = AnswererConfig(type="hf", model=model, device="cpu", max_new_tokens=8)
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


def test_answers_end_to_end_with_images(tiny_vlm: Path, memory: SemanticMemory) -> None:
    head = make_answerer(_config(str(tiny_vlm), max_images=3))
    assert isinstance(head, HFAnswerer) and head.name == "hf"

    answer = head.answer(QUESTION, memory)

    assert isinstance(answer, Answer)
    assert answer.text.strip()
    assert 0.0 <= answer.confidence <= 1.0
    assert len(answer.frame_ids) == 3
    assert len(set(answer.frame_ids)) == 3
    assert set(answer.frame_ids) <= set(memory.keyframes.frames)
    table = next(o for o in memory.objects() if o.category == "table")
    assert answer.object_ids == [table.object_id]
    # the table's best view leads the images sent
    assert answer.frame_ids[0] == table.best_frames[0]


def test_generation_is_deterministic(tiny_vlm: Path, memory: SemanticMemory) -> None:
    head = HFAnswerer(_config(str(tiny_vlm), max_images=2))
    first = head.answer(QUESTION, memory)
    again = head.answer(QUESTION, memory)
    assert first == again


def test_plain_prompt_without_chat_template(
    tiny_vlm: Path, memory: SemanticMemory, tmp_path: Path
) -> None:
    plain = tmp_path / "plain"
    shutil.copytree(tiny_vlm, plain)
    (plain / "chat_template.jinja").unlink()

    answer = HFAnswerer(_config(str(plain), max_images=2)).answer(QUESTION, memory)

    assert answer.text.strip()
    assert len(answer.frame_ids) == 2


def test_missing_model_path_names_it(tmp_path: Path, memory: SemanticMemory) -> None:
    missing = tmp_path / "no_such_model"
    head = HFAnswerer(_config(str(missing)))
    with pytest.raises(AeqaError, match="no_such_model") as error:
        head.answer(QUESTION, memory)
    assert "huggingface-cli" in str(error.value)
    assert "\n" not in str(error.value)


def test_hub_id_not_downloaded_offline(memory: SemanticMemory) -> None:
    head = HFAnswerer(_config("aeqa-tests/no-such-vlm"))
    with pytest.raises(AeqaError, match=r"aeqa-tests/no-such-vlm.*huggingface-cli download"):
        head.answer(QUESTION, memory)


def test_model_that_is_not_a_vlm(memory: SemanticMemory) -> None:
    from aeqa.agents.answerers.matching import default_model_path

    text_only = default_model_path()  # all-MiniLM-L6-v2, a sentence encoder
    with pytest.raises(AeqaError, match=r"image-text-to-text|vision-language"):
        HFAnswerer(_config(text_only)).answer(QUESTION, memory)


def test_unknown_device() -> None:
    with pytest.raises(AeqaError, match="tpu"):
        HFAnswerer(_config("any", device="tpu"))


def test_cuda_without_gpu() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(AeqaError, match=r"cuda.*no GPU"):
        HFAnswerer(_config("any", device="cuda"))


def test_empty_question_is_refused(tiny_vlm: Path, memory: SemanticMemory) -> None:
    with pytest.raises(AeqaError, match="empty"):
        HFAnswerer(_config(str(tiny_vlm))).answer("   ", memory)
