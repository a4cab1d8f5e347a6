"""``aeqa bench guide``: guided against full exploration on the same generated questions."""

from __future__ import annotations

import json

import pytest

from aeqa.launch.cli import main


@pytest.mark.slow
def test_bench_guide_compares_the_modes_on_the_same_questions(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["bench", "guide", "--size", "apartment", "--scenes", "1", "--questions", "7"]
    small = ["sim.width=160", "sim.height=120", "explorer.max_steps=80", "coverage_samples=200"]
    assert main([*argv, "--json", "--per-question", *small]) == 0
    result = json.loads(capsys.readouterr().out)
    full, guided = result["per_question"]["full"], result["per_question"]["guided"]
    assert [r["question_id"] for r in full] == [r["question_id"] for r in guided]
    assert {r["category"] for r in full} <= set(result["categories"])
    assert result["questions"] == len(full) >= 2
    # Full exploration is one episode per scene: every question counts its steps.
    assert len({r["steps"] for r in full}) == 1
    assert result["guided"]["steps"] <= result["full"]["steps"]
    assert result["steps_ratio"] == pytest.approx(
        result["guided"]["steps"] / result["full"]["steps"], abs=1e-3
    )
    assert all(r["model_calls"] >= 1 for r in guided)
    assert 0 <= result["guided"]["llm_match"] <= 100
    assert result["answerer"] == "memory" and result["perception"] == "gt"


def test_bench_guide_refuses_an_unknown_category(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "guide", "--scenes", "1", "--categories", "object counting"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "object counting" in err and "attribute recognition" in err
