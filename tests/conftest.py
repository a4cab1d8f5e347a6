"""Shared fixtures: tiny scenes built in temporary folders, and what is installed here."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from aeqa.envs.config import SimConfig
from aeqa.envs.meshsim.renderer import egl_device
from aeqa.envs.simulator import Simulator, make_simulator
from tests.chat_server import ChatServer, Reply, serve_chat
from tests.scenes import write_box_scene

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

#: renderers of meshsim that work on this machine
AVAILABLE_RENDERERS = ["raycast"] + (["raster"] if egl_device() is not None else [])
HABITAT_INSTALLED = importlib.util.find_spec("habitat_sim") is not None
#: marks of a test that needs habitat-sim: skipped with the reason where it is not installed
NEEDS_HABITAT = [
    pytest.mark.habitat,
    pytest.mark.skipif(
        not HABITAT_INSTALLED,
        reason="habitat-sim is not installed (conda, or bash launch/install_habitat.sh)",
    ),
]
#: simulator backends installed here
AVAILABLE_BACKENDS = ["meshsim"] + (["habitat"] if HABITAT_INSTALLED else [])


def shared_data(*parts: str) -> Path:
    """A file of ``../shared/data``; skips the test where the folder is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not here (the shared benchmark data sits beside the checkout)")
    return path


@pytest.fixture(scope="session")
def box_room(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Basename of a 6 m x 4 m box room with a 0.5 m pillar, in HM3D's layout."""
    return write_box_scene(tmp_path_factory.mktemp("box_room"))


@pytest.fixture(params=AVAILABLE_RENDERERS)
def renderer_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["meshsim", pytest.param("habitat", marks=NEEDS_HABITAT)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def shared_sims() -> Iterator[Callable[[SimConfig], Simulator]]:
    """Simulators by config, one per config for the whole session, closed at its end.

    Starting habitat-sim takes seconds on a CPU (it renders its lighting maps on llvmpipe), so
    tests share one per config and ``reset`` it; they must not close it.
    """
    opened: dict[str, Simulator] = {}

    def get(config: SimConfig) -> Simulator:
        key = repr(config)
        if key not in opened:
            opened[key] = make_simulator(config)
        return opened[key]

    yield get
    for simulator in opened.values():
        simulator.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[int], Reply]], ChatServer]]:
    """Start chat-completions servers on 127.0.0.1 with a reply plan; stopped after the test."""
    yield from serve_chat()
