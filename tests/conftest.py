"""Shared fixtures: tiny scenes built in temporary folders, and what is installed here."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from aeqa.envs.meshsim.renderer import egl_device
from tests.chat_server import ChatServer, Reply, serve_chat
from tests.scenes import write_box_scene

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

#: renderers of meshsim that work on this machine
AVAILABLE_RENDERERS = ["raycast"] + (["raster"] if egl_device() is not None else [])
#: simulator backends installed here
AVAILABLE_BACKENDS = ["meshsim"] + (
    ["habitat"] if importlib.util.find_spec("habitat_sim") is not None else []
)


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


@pytest.fixture(params=AVAILABLE_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[int], Reply]], ChatServer]]:
    """Start chat-completions servers on 127.0.0.1 with a reply plan; stopped after the test."""
    yield from serve_chat()
