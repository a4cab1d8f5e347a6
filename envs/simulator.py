"""The ``Simulator`` protocol every backend implements, and the factory that picks one."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Protocol

import numpy as np

from aeqa.envs.config import SimConfig
from aeqa.envs.errors import AeqaError
from aeqa.envs.scene import SceneSpec
from aeqa.envs.types import AgentState, InstanceLabel, NavigableGrid, Observations

BACKENDS = ("meshsim", "habitat")


class Simulator(Protocol):
    """A world an agent moves and looks in, with habitat-style navigation queries.

    Positions are (3,) world points (Y up, metres) on the floor; rotations ``[w, x, y, z]``.
    """

    config: SimConfig

    @property
    def renderer(self) -> str:
        """What draws the frames: meshsim's ``raster`` or ``raycast`` (``auto`` resolved),
        else the backend's name (``habitat``)."""
        ...

    def reset(
        self, scene: SceneSpec | str | Path, start: AgentState | None = None, seed: int = 0
    ) -> Observations:
        """Load ``scene`` (cached when unchanged) and place the agent.

        Without ``start``: the scene's own start pose where it has one, else a navigable pose
        drawn from ``seed``.
        """
        ...

    def step(self, action: str) -> Observations:
        """Apply one discrete action (see ``aeqa.envs.types.ACTIONS``) and observe."""
        ...

    def teleport(self, position: np.ndarray, rotation: np.ndarray) -> Observations:
        """Move the agent to a navigable pose (snapped to the navigable area) and observe."""
        ...

    def observe(self) -> Observations: ...

    def get_state(self) -> AgentState: ...

    def set_state(self, state: AgentState) -> None: ...

    def is_navigable(self, point: np.ndarray) -> bool: ...

    def snap_point(self, point: np.ndarray) -> np.ndarray: ...

    def geodesic_distance(self, a: np.ndarray, b: np.ndarray) -> float:
        """Shortest walkable distance in metres; ``inf`` when unreachable."""
        ...

    def shortest_path(self, a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
        """Waypoints (N, 3) from ``a`` to ``b``, or None when unreachable."""
        ...

    def sample_navigable_point(self, rng: np.random.Generator) -> np.ndarray: ...

    def floor_height(self, point: np.ndarray) -> float:
        """Height (m) of the floor surface under a navigable point.

        Agent positions and paths carry the navmesh's height, which sits up to a voxel (0.2 m)
        above the surface, as habitat-sim's does; heights above the floor (the body's band,
        what can be stepped over) are measured from this one.
        """
        ...

    def navigable_area(self) -> float:
        """Area (m^2) of the navigable island that holds the agent."""
        ...

    def navigable_grid(self, cell_m: float) -> NavigableGrid:
        """The navigable island that holds the agent as a top-down grid of ``cell_m`` cells
        (a cell is navigable where its centre is), with the floor height under the agent.

        Raises:
            AeqaError: ``cell_m`` is not positive, or no scene is loaded.
        """
        ...

    def instance_labels(self) -> dict[int, InstanceLabel]:
        """Category and region name of every instance id of the scene's annotations (empty
        where it has none); region names come from generated scenes' ground truth."""
        ...

    def close(self) -> None: ...


def check_cell_m(cell_m: float) -> float:
    """``cell_m`` as a float, where it is a positive finite size in metres.

    Raises:
        AeqaError: it is not.
    """
    value = float(cell_m)
    if not (math.isfinite(value) and value > 0):
        raise AeqaError(f"a navigable grid's cell must be a positive size in metres, got {cell_m}")
    return value


def resolve_sim_config(config: SimConfig) -> SimConfig:
    """``config`` with its ``auto`` choices made for this machine (meshsim's renderer), as a
    run's saved config records them."""
    if config.type == "meshsim" and config.renderer == "auto":
        from aeqa.envs.meshsim.renderer import resolve_renderer

        return replace(config, renderer=resolve_renderer(config.renderer))
    return config


def make_simulator(config: SimConfig) -> Simulator:
    """Build the backend ``config.type`` names, importing it only then."""
    if config.type == "meshsim":
        from aeqa.envs.meshsim.simulator import MeshSim

        return MeshSim(config)
    if config.type == "habitat":
        from aeqa.envs.habitat.simulator import HabitatSim

        return HabitatSim(config)
    raise AeqaError(f"unknown simulator {config.type!r}; use one of {', '.join(BACKENDS)}")
