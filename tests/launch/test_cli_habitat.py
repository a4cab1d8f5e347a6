"""``aeqa explore --sim habitat`` and ``aeqa bench sim --sim habitat`` on generated scenes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aeqa.launch.cli import main
from tests.conftest import NEEDS_HABITAT

pytestmark = [*NEEDS_HABITAT, pytest.mark.slow]

SMALL = ["sim.width=96", "sim.height=72"]


def test_explore_runs_an_episode_on_habitat(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    args = ["explore", "--sim", "habitat", "--max-steps", "20", "--seed", "1", "--out", str(out)]
    assert main([*args, *SMALL, "coverage_samples=200"]) == 0
    assert "answer:" in capsys.readouterr().out
    assert "type: habitat" in (out / "config.yaml").read_text()
    result = json.loads((out / "episodes" / "explore" / "episode.json").read_text())
    assert result["steps"] == 20 and result["renderer"] == "habitat"
    assert 0.0 < result["coverage"] <= 1.0 and result["path_length_m"] > 0.0
    assert (out / "episodes" / "explore" / "memory" / "points.ply").is_file()


def test_bench_sim_reports_habitat_beside_meshsim(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "sim", "--sim", "habitat", "--json", "--frames", "3", *SMALL]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["habitat"]["fps"] > 0 and result["habitat"]["gpu_device_id"] == -1
    assert result["fps"] > 0
    assert result["habitat_vs_meshsim"] == pytest.approx(
        result["habitat"]["fps"] / result["fps"], rel=0.01
    )
