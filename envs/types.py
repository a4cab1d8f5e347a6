"""Records that cross the simulator boundary: agent state, observations, actions, instance
labels and the navigable grid."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aeqa.envs.geometry import GridSpec

MOVE_FORWARD = "move_forward"
TURN_LEFT = "turn_left"
TURN_RIGHT = "turn_right"
LOOK_UP = "look_up"
LOOK_DOWN = "look_down"
STOP = "stop"
#: The discrete action space, as habitat names it.
ACTIONS = (MOVE_FORWARD, TURN_LEFT, TURN_RIGHT, LOOK_UP, LOOK_DOWN, STOP)


@dataclass(frozen=True)
class AgentState:
    """Pose of the agent's base on the floor.

    Attributes:
        position: (3,) float64, world frame (Y up), metres.
        rotation: (4,) float64 unit quaternion ``[w, x, y, z]``; identity faces -Z.
    """

    position: np.ndarray
    rotation: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "position", np.asarray(self.position, dtype=np.float64).copy())
        object.__setattr__(self, "rotation", np.asarray(self.rotation, dtype=np.float64).copy())

    def to_json(self) -> dict[str, list[float]]:
        return {"position": self.position.tolist(), "rotation": self.rotation.tolist()}


@dataclass
class Observations:
    """One sensor reading.

    Attributes:
        rgb: (H, W, 3) uint8 (possibly a strided view; ``np.ascontiguousarray`` it where a
            library needs contiguous pixels).
        depth: (H, W) float32 z-depth in metres along the camera's -Z; 0 where nothing is hit
            within the sensor's range.
        semantic: (H, W) int32 instance ids, 0 = unlabelled or nothing hit.
        T_world_camera: (4, 4) float64 camera-to-world pose (OpenGL camera, Y-up world).
        state: the agent's base pose when the frame was taken.
        collided: whether the action that led here was blocked (the agent slid or stayed).
        hfov_deg: the camera's horizontal field of view.
    """

    rgb: np.ndarray
    depth: np.ndarray
    semantic: np.ndarray
    T_world_camera: np.ndarray
    state: AgentState
    collided: bool = False
    hfov_deg: float = 90.0
    extras: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class InstanceLabel:
    """What is known of an instance id: its category and region name, from the scene's
    annotations (``gt`` perception) or a detector, with the detector's mean confidence (1 for
    annotations)."""

    category: str
    region: str = ""
    confidence: float = 1.0


#: least area (m2) of navigable floor at one height that makes a floor level
LEVEL_MIN_AREA_M2 = 2.0
#: heights of a level are binned this finely (m); bins closer than LEVEL_GAP_M are one level
LEVEL_BIN_M = 0.1
LEVEL_GAP_M = 0.35


@dataclass
class NavigableGrid:
    """A top-down boolean grid of the navigable area of the agent's island (its floor level).

    Cell ``(row, col)`` covers world x from ``origin_x + col * cell_m`` and world z from
    ``origin_z + row * cell_m``, each for ``cell_m`` (as :class:`~aeqa.envs.geometry.GridSpec`);
    a cell is navigable where its centre is.

    Attributes:
        origin_x, origin_z: world x, z (metres) of the grid's corner at cell (0, 0).
        cell_m: side of a cell (metres).
        mask: (rows, cols) bool, True where the cell's centre is navigable.
        floor_y: height (metres, world) of the floor surface under the agent.
        heights: (rows, cols) float32 height (metres, world) of the navigable surface per
            cell, NaN off the mask, where the island spans several floor levels (stairs to
            a raised part of the floor plan); None where it is one level at ``floor_y``.
    """

    origin_x: float
    origin_z: float
    cell_m: float
    mask: np.ndarray
    floor_y: float
    heights: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.origin_x, self.origin_z = float(self.origin_x), float(self.origin_z)
        self.cell_m, self.floor_y = float(self.cell_m), float(self.floor_y)
        self.mask = np.asarray(self.mask, dtype=bool)
        if self.mask.ndim != 2:
            raise ValueError(f"a navigable mask is (rows, cols), got shape {self.mask.shape}")
        if self.heights is not None:
            self.heights = np.asarray(self.heights, dtype=np.float32)
            if self.heights.shape != self.mask.shape:
                raise ValueError(
                    f"navigable heights {self.heights.shape} differ from the mask {self.mask.shape}"
                )

    def levels(self, min_area_m2: float = LEVEL_MIN_AREA_M2) -> list[float]:
        """Heights (metres, world) of the floor levels, lowest first: ``[floor_y]`` for one
        level, else the heights (0.1 m bins, bins closer than ``LEVEL_GAP_M`` joined) that at
        least ``min_area_m2`` of navigable cells share; stairs between them are no level."""
        if self.heights is None:
            return [self.floor_y]
        h = self.heights[self.mask & np.isfinite(self.heights)]
        if len(h) == 0:
            return [self.floor_y]
        bins = np.round(h / LEVEL_BIN_M).astype(np.int64)
        values, counts = np.unique(bins, return_counts=True)
        big = values[counts * self.cell_m**2 >= min_area_m2]
        if len(big) == 0:
            return [float(np.median(h))]
        groups: list[list[int]] = [[int(big[0])]]
        for b in big[1:].tolist():
            if (b - groups[-1][-1]) * LEVEL_BIN_M < LEVEL_GAP_M:
                groups[-1].append(b)
            else:
                groups.append([b])
        out = []
        for g in groups:
            sel = (bins >= g[0]) & (bins <= g[-1])
            out.append(float(np.median(h[sel])))
        return out

    def level_masks(self) -> list[np.ndarray]:
        """(rows, cols) bool per level of :meth:`levels`: the navigable cells nearest that
        level's height (stairs split between the levels they join)."""
        levels = self.levels()
        if len(levels) == 1 or self.heights is None:
            return [self.mask.copy()]
        h = np.where(self.mask & np.isfinite(self.heights), self.heights, np.nan)
        nearest = np.argmin(np.abs(h[None] - np.array(levels)[:, None, None]), axis=0)
        valid = self.mask & np.isfinite(h)
        return [valid & (nearest == i) for i in range(len(levels))]

    @property
    def grid(self) -> GridSpec:
        rows, cols = self.mask.shape
        return GridSpec(self.origin_x, self.origin_z, self.cell_m, rows, cols)

    def world_to_cell(self, x: float, z: float) -> tuple[int, int]:
        """(row, col) of a world x, z; may lie outside the grid."""
        return self.grid.world_to_cell_xz(x, z)

    def cell_to_world(self, row: float, col: float) -> tuple[float, float]:
        """World x, z of a cell's centre."""
        return self.grid.cell_to_world_xz(row, col)

    def navigable_at(self, x: float, z: float) -> bool:
        """Whether the cell holding world x, z is navigable (False off the grid)."""
        row, col = self.world_to_cell(x, z)
        return self.grid.contains(row, col) and bool(self.mask[row, col])

    def centres(self) -> np.ndarray:
        """(N, 3) float64 world points at the centres of the navigable cells (y = ``floor_y``,
        or the cell's height where :attr:`heights` are given), in row-major order."""
        rows, cols = np.nonzero(self.mask)
        x = self.origin_x + (cols + 0.5) * self.cell_m
        z = self.origin_z + (rows + 0.5) * self.cell_m
        y = np.full(len(x), self.floor_y)
        if self.heights is not None:
            h = self.heights[rows, cols].astype(np.float64)
            y = np.where(np.isfinite(h), h, y)
        return np.stack([x, y, z], axis=1)

    @property
    def area_m2(self) -> float:
        return float(np.count_nonzero(self.mask)) * self.cell_m**2

    def save(self, path: str | Path) -> Path:
        """Write the grid as an ``.npz`` file (``mask``, ``grid``: origin x, z, cell, floor y;
        ``heights`` where given)."""
        path = Path(path)
        grid = np.array([self.origin_x, self.origin_z, self.cell_m, self.floor_y])
        with path.open("wb") as f:
            if self.heights is None:
                np.savez_compressed(f, mask=self.mask, grid=grid)
            else:
                np.savez_compressed(f, mask=self.mask, grid=grid, heights=self.heights)
        return path

    @classmethod
    def load(cls, path: str | Path) -> NavigableGrid:
        """Read a grid written by :meth:`save`.

        Raises:
            OSError, ValueError, KeyError: the file is missing, truncated or not such a grid.
        """
        with np.load(Path(path), allow_pickle=False) as npz:
            mask = np.asarray(npz["mask"], dtype=bool)
            origin_x, origin_z, cell_m, floor_y = (float(v) for v in npz["grid"])
            heights = np.asarray(npz["heights"]) if "heights" in npz.files else None
        if not (cell_m > 0 and np.isfinite([origin_x, origin_z, floor_y]).all()):
            raise ValueError(f"{path}: not a navigable grid (cell {cell_m})")
        return cls(origin_x, origin_z, cell_m, mask, floor_y, heights)
