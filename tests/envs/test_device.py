"""One device setting, spelled for habitat-sim, open3d and torch."""

from __future__ import annotations

import pytest

from aeqa.agents.episode import resolve_episode_config
from aeqa.envs.device import DeviceSettings, device_settings
from aeqa.envs.errors import AeqaError


def test_each_component_gets_the_same_device() -> None:
    assert device_settings("auto", cuda_count=0) == DeviceSettings("cpu", -1, "CPU:0", "cpu")
    assert device_settings("cpu", cuda_count=2) == DeviceSettings("cpu", -1, "CPU:0", "cpu")
    assert device_settings("auto", cuda_count=2) == DeviceSettings("cuda:0", 0, "CUDA:0", "cuda:0")
    assert device_settings("cuda", cuda_count=1) == DeviceSettings("cuda:0", 0, "CUDA:0", "cuda:0")
    assert device_settings("CUDA:1", cuda_count=2) == DeviceSettings(
        "cuda:1", 1, "CUDA:1", "cuda:1"
    )


@pytest.mark.parametrize(
    ("device", "count", "message"),
    [
        ("gpu", 1, "unknown; use auto, cpu or cuda:N"),
        ("cuda:x", 1, "unknown"),
        ("cuda:2", 2, "only cuda:0 to cuda:1"),
        ("cuda", 0, "no GPU"),
    ],
)
def test_a_device_this_machine_lacks_is_refused(device: str, count: int, message: str) -> None:
    with pytest.raises(AeqaError, match=message):
        device_settings(device, cuda_count=count)


def test_the_run_config_spells_its_device_into_sim_memory_and_answerer() -> None:
    config = resolve_episode_config("discrete", "hf", ["device=cpu"])
    assert config.device == "cpu"
    assert config.sim.gpu_device_id == -1
    assert config.memory.device == "CPU:0"
    assert config.answerer.device == "cpu"
    # a component's own key, given explicitly, wins
    own = resolve_episode_config("discrete", "hf", ["device=cpu", "answerer.device=auto"])
    assert own.answerer.device == "auto" and own.sim.gpu_device_id == -1
    with pytest.raises(AeqaError, match="device='tpu'"):
        resolve_episode_config("discrete", "memory", ["device=tpu"])
