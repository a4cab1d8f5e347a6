"""Configs: value ranges, presets and ``key=value`` overrides, each bad one a one-line error."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pytest

from aeqa.agents.episode import EpisodeConfig, resolve_episode_config
from aeqa.envs.config import (
    POSITIVE,
    Range,
    SimConfig,
    check_value,
    load_config,
    preset_path,
    validate,
)
from aeqa.envs.errors import AeqaError
from aeqa.evaluation.judges import JudgeConfig, make_judge


def test_range_contains_and_words() -> None:
    assert Range(1).contains(1) and not Range(1).contains(0)
    assert POSITIVE.contains(1e-9) and not POSITIVE.contains(0.0)
    hfov = Range(0, 180, low_open=True, high_open=True)
    assert hfov.contains(90.0) and not hfov.contains(180.0) and not hfov.contains(float("nan"))
    assert Range(1).describe() == "of at least 1"
    assert POSITIVE.describe() == "above 0"
    assert Range(0, 2).describe() == "from 0 to 2"
    assert hfov.describe() == "in (0, 180)"


def test_check_value_names_the_option_or_key_and_a_good_value() -> None:
    with pytest.raises(AeqaError) as option:
        check_value("--max-steps", 0, Range(1), 100)
    assert str(option.value) == (
        "--max-steps 0 is out of range; use a value of at least 1, e.g. --max-steps 100"
    )
    with pytest.raises(AeqaError) as key:
        check_value("sim.width", -5, Range(1, 8192), 640)
    assert str(key.value) == (
        "sim.width=-5 is out of range; use a value from 1 to 8192, e.g. sim.width=640"
    )


@dataclass
class _Inner:
    size_m: float = 1.0
    LIMITS: ClassVar[dict[str, Range]] = {"size_m": POSITIVE}


@dataclass
class _Outer:
    count: int = 3
    inner: _Inner = field(default_factory=_Inner)
    LIMITS: ClassVar[dict[str, Range]] = {"count": Range(1)}


def test_validate_walks_nested_configs_with_their_keys() -> None:
    validate(_Outer())
    with pytest.raises(AeqaError, match=r"^inner\.size_m=0\.0 is out of range; .* e\.g\. inner"):
        validate(_Outer(inner=_Inner(size_m=0.0)))
    with pytest.raises(AeqaError, match=r"^--count 0 is out of range"):
        validate(_Outer(count=0), names={"count": "--count"})


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("sim.width=-5", "sim.width=-5 is out of range; use a value from 1 to 8192"),
        ("sim.width=0", "sim.width=0 is out of range"),
        ("sim.hfov_deg=0", "sim.hfov_deg=0.0 is out of range; use a value in (0, 180)"),
        ("sim.hfov_deg=180", "sim.hfov_deg=180.0 is out of range"),
        ("memory.voxel_m=0", "memory.voxel_m=0.0 is out of range; use a value above 0"),
        ("seed=-1", "seed=-1 is out of range; use a value of at least 0"),
        ("explorer.max_steps=0", "explorer.max_steps=0 is out of range"),
        ("explorer.max_steps=-1", "explorer.max_steps=-1 is out of range"),
        ("answerer.temperature=-1", "answerer.temperature=-1.0 is out of range"),
        ("explorer.score", "bad override 'explorer.score': expected key=value"),
        ("=3", "bad override '=3': expected key=value"),
        ("sim.width=abc", "bad config (sim.width): Value 'abc'"),
    ],
)
def test_bad_overrides_are_refused(override: str, message: str) -> None:
    with pytest.raises(AeqaError) as error:
        resolve_episode_config("discrete", "memory", [override])
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_every_preset_is_in_range() -> None:
    for preset in ("discrete", "aeqa"):
        for answerer in ("memory", "hf", "openai"):
            validate(resolve_episode_config(preset, answerer))


def test_a_yaml_path_as_preset_is_refused_with_the_per_group_options(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("width: 100\n")
    with pytest.raises(AeqaError) as error:
        resolve_episode_config(str(path))
    message = str(error.value)
    assert "use one of aeqa, discrete" in message
    assert "--sim-preset FILE" in message and "--agent-preset FILE" in message


def test_group_presets_are_merged_over_the_named_preset(tmp_path: Path) -> None:
    sim_file = tmp_path / "small.yaml"
    sim_file.write_text("width: 100\nheight: 80\n")
    agent_file = tmp_path / "agent.yaml"
    agent_file.write_text("max_steps: 7\n")
    config = resolve_episode_config("aeqa", sim_preset=str(sim_file), agent_preset=str(agent_file))
    assert (config.sim.width, config.sim.height) == (100, 80)
    assert config.sim.hfov_deg == 120.0  # the aeqa preset's, kept
    assert config.explorer.max_steps == 7 and config.explorer.mode == "waypoint"
    named = resolve_episode_config("discrete", sim_preset="aeqa")
    assert named.sim.width == 1280 and named.explorer.mode == "discrete"


def test_a_preset_of_the_wrong_group_names_the_file(tmp_path: Path) -> None:
    sim_file = tmp_path / "small.yaml"
    sim_file.write_text("width: 100\n")
    with pytest.raises(AeqaError, match=r"small\.yaml: Key 'width' not in 'ExplorerConfig'"):
        resolve_episode_config("discrete", agent_preset=str(sim_file))


def test_missing_preset_file_lists_the_real_presets(tmp_path: Path) -> None:
    (tmp_path / "other.yaml").write_text("width: 1\n")
    with pytest.raises(AeqaError) as error:
        preset_path("sim", str(tmp_path / "missing.yaml"))
    assert "no such sim preset file" in str(error.value)
    assert "(aeqa, discrete)" in str(error.value) and "other" not in str(error.value)
    with pytest.raises(
        AeqaError, match=r"unknown agent preset 'nosuch'; use one of aeqa, discrete"
    ):
        preset_path("agent", "nosuch")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("width: [1\nheight: 3\n", "not valid YAML (did not find expected ',' or ']' at line 2"),
        ("- 1\n- 2\n", "expected `key: value` lines (a YAML mapping), got a list"),
    ],
)
def test_broken_preset_yaml_is_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(AeqaError) as error:
        load_config(SimConfig, [("", path)], [])
    assert str(error.value).startswith(f"{path}: ") and message in str(error.value)
    assert "\n" not in str(error.value)


def test_load_config_checks_ranges_of_presets_too(tmp_path: Path) -> None:
    path = tmp_path / "sim.yaml"
    path.write_text("hfov_deg: 0\n")
    with pytest.raises(AeqaError, match=r"sim\.hfov_deg=0\.0 is out of range"):
        load_config(EpisodeConfig, [("sim", path)], [])


def test_judge_options_out_of_range_are_refused() -> None:
    with pytest.raises(AeqaError, match=r"^judge\.temperature=-5\.0 is out of range"):
        make_judge(JudgeConfig(temperature=-5.0))
    with pytest.raises(AeqaError, match=r"^judge\.max_retries=-1 is out of range"):
        make_judge(JudgeConfig(max_retries=-1))


@pytest.mark.parametrize(
    ("override", "moved"),
    [
        ("sim.agent_radius_m=0.2", "sim.agent.radius_m"),
        ("sim.turn_angle_deg=45", "sim.agent.turn_angle_deg"),
        ("explorer.min_clearance_m=0.2", "sim.agent.radius_m"),
    ],
)
def test_a_key_that_moved_names_its_new_place(override: str, moved: str) -> None:
    with pytest.raises(AeqaError, match=f"it is now {moved}"):
        resolve_episode_config("discrete", "memory", [override])
