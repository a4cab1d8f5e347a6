"""``HabitatSim`` beyond the conformance suite: one habitat-sim simulator per process that every
``HabitatSim`` takes turns on, the navmesh recomputed for our agent, and the GPU choice."""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from aeqa.envs.config import AgentSpec, SimConfig
from aeqa.envs.errors import AeqaError
from aeqa.envs.geometry import quat_from_yaw
from aeqa.envs.simulator import Simulator, make_simulator
from aeqa.envs.types import AgentState
from tests.conftest import NEEDS_HABITAT
from tests.scenes import ROOM_X, ROOM_Z, write_box_scene

pytestmark = NEEDS_HABITAT

SharedSims = Callable[[SimConfig], Simulator]
START = AgentState(np.array([-2.0, 0.0, 0.0]), quat_from_yaw(-math.pi / 2))


def _config(**kwargs: object) -> SimConfig:
    return SimConfig(type="habitat", width=64, height=48, **kwargs)  # type: ignore[arg-type]


def _room_area(radius: float) -> float:
    """The box room's navigable area for an agent of ``radius`` (the pillar cut out)."""
    return (2 * ROOM_X - 2 * radius) * (2 * ROOM_Z - 2 * radius) - (0.5 + 2 * radius) ** 2


def test_one_simulator_is_reconfigured_between_scenes(
    box_room: Path, tmp_path: Path, shared_sims: SharedSims
) -> None:
    sim = shared_sims(_config())
    sim.reset(box_room, START)
    first = sim.habitat_simulator  # type: ignore[attr-defined]
    other = write_box_scene(tmp_path, "other", with_floor=True)
    sim.reset(other, START)
    assert sim.habitat_simulator is first  # type: ignore[attr-defined]
    assert sim.navigable_area() == pytest.approx(_room_area(0.1), rel=0.05)


def test_simulators_take_turns_and_keep_their_poses(
    box_room: Path, shared_sims: SharedSims
) -> None:
    level = shared_sims(_config())
    tilted = make_simulator(_config(camera_tilt_deg=-30.0))
    try:
        a = level.reset(box_room, START)
        b = tilted.reset(box_room, START)
        assert not np.allclose(a.T_world_camera, b.T_world_camera)
        for _ in range(3):
            level.step("move_forward")
        tilted.step("look_up")
        a2, b2 = level.observe(), tilted.observe()
        assert a2.state.position[0] == pytest.approx(START.position[0] + 0.75, abs=1e-4)
        assert np.allclose(b2.state.position, b.state.position)
        assert np.allclose(b2.T_world_camera[:3, :3], a.T_world_camera[:3, :3], atol=1e-5)
        # the renders are each one's own: the level camera sees the far wall 4.25 m away
        assert a2.depth[24, 32] == pytest.approx(ROOM_X - (START.position[0] + 0.75), abs=0.02)
    finally:
        tilted.close()
    # closing one leaves the others working
    assert level.observe().depth[24, 32] == pytest.approx(4.25, abs=0.02)


def test_navmesh_made_for_another_agent_is_recomputed(
    box_room: Path, tmp_path: Path, shared_sims: SharedSims
) -> None:
    for suffix in (".glb", ".semantic.glb", ".semantic.txt"):
        shutil.copy(box_room.with_name(box_room.name + suffix), tmp_path / f"room{suffix}")
    wide = shared_sims(_config(agent=AgentSpec(radius_m=0.3)))
    wide.reset(tmp_path / "room", START)
    assert wide.navigable_area() == pytest.approx(_room_area(0.3), rel=0.05)
    navmesh = tmp_path / "room.navmesh"
    pathfinder = wide.habitat_simulator.pathfinder  # type: ignore[attr-defined]
    wide.on_habitat_thread(lambda: pathfinder.save_nav_mesh(str(navmesh)))  # type: ignore[attr-defined]
    assert navmesh.is_file()
    # the scene now ships a navmesh for a 0.3 m agent; ours is 0.1 m
    narrow = shared_sims(_config())
    narrow.reset(tmp_path / "room", START)
    assert narrow.navigable_area() == pytest.approx(_room_area(0.1), rel=0.05)
    assert narrow.is_navigable(np.array([ROOM_X - 0.2, 0.0, 0.0]))


def test_seeded_samples_follow_the_callers_generator(
    box_room: Path, shared_sims: SharedSims
) -> None:
    sim = shared_sims(_config())
    sim.reset(box_room, START)
    first = [sim.sample_navigable_point(np.random.default_rng(5)) for _ in range(3)]
    assert all(np.array_equal(first[0], p) for p in first[1:])
    rng = np.random.default_rng(5)
    several = [sim.sample_navigable_point(rng) for _ in range(10)]
    assert len({tuple(p) for p in several}) == 10
    assert all(sim.is_navigable(p) for p in several)


def test_a_gpu_that_is_not_there_is_refused() -> None:
    from aeqa.envs.habitat.simulator import egl_cuda_devices

    devices = egl_cuda_devices()
    if devices is None or 0 in devices:
        pytest.skip(f"EGL lists CUDA devices {devices}: GPU 0 is there")
    with pytest.raises(AeqaError, match=r"sim\.gpu_device_id=0: no such GPU.*gpu_device_id=-1"):
        make_simulator(_config(gpu_device_id=0))


def test_a_forked_child_does_not_wait_on_the_parents_simulator(
    box_room: Path, shared_sims: SharedSims
) -> None:
    """The child's exit (which closes the simulator it knows of) returns at once: the thread
    that owns the parent's simulator does not exist in the child."""
    import os
    import time

    import aeqa.envs.habitat.simulator as habitat_module

    shared_sims(_config()).reset(box_room, START)
    parents = habitat_module._PROCESS
    assert parents.sim is not None
    pid = os.fork()
    if pid == 0:  # the child: what its exit hook does, then leave without pytest's teardown
        parents.shutdown()
        os._exit(0 if habitat_module._PROCESS is not parents else 3)
    deadline = time.monotonic() + 20.0
    done, status = 0, 0
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    if not done:
        os.kill(pid, 9)
    assert done, "the child hung on the parent's simulator"
    assert os.waitstatus_to_exitcode(status) == 0
    assert parents.sim is not None  # the parent's own is untouched
