"""Seeded generator of furnished apartments and houses, written in HM3D's file layout.

A scene is a basename ``out_dir/NAME`` with five files beside it (see DESIGN.md, "Scene
format"): ``NAME.glb`` (render mesh, stored Z-up, palette colours as vertex colours),
``NAME.semantic.glb`` (the same triangles coloured with per-instance key colours),
``NAME.semantic.txt``, ``NAME.stage_config.json`` and ``NAME.scene.json`` (ground truth in the
Y-up world frame: rooms, objects with colour / state / size, doorways, a start pose).

Two sizes: an ``apartment`` is 3 to 7 rooms tiling a rectangle in rows; a ``house`` is 10 to 25
rooms along a main hallway and one or two branch hallways (T junctions, dead ends), with an
open-plan kitchen, dining and living area across the main hallway's end and L-shaped rooms
around a bathroom or closet cut from their corner, drawn again until its navigable floor is
120 to 300 m2. A house is planned in rectangular cells: a room has one or two, and no wall
stands between two cells of one room or of an open plan; its ``scene.json`` adds
``generator.size``, each room's ``parts`` and the ``openings`` between rooms.

A ``split-level`` house is an apartment at y = 0, a walled stair hall along its +x side whose
treads rise at most 0.17 m each (below habitat's 0.2 m climb), and an apartment of 3 or 4
rooms beyond the hall with its floor 1.0 to 1.4 m higher, on a solid base: the two levels lie
side by side in plan, never one above the other. Its ``scene.json`` adds each region's
``floor_y``; the stair hall is the region of type ``staircase`` and its treads are structure of
category ``stairs``.

Everything random is drawn from generators seeded by the scene's seed, and files are written
without timestamps, with sorted JSON keys and rounded floats, so the same seed gives
byte-identical files.

Frames and units: all geometry is built in the Y-up world frame (metres, floor top at y = 0);
the glbs store ``geometry.yup_to_zup`` of it. The floor plan lives in the world x-z plane.
Rooms (a house's cells) are axis-aligned rectangles whose boundaries are wall centre lines;
walls are 0.1 m thick, so a room's free interior is its rectangle shrunk by 0.05 m on every side.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from aeqa.envs.errors import AeqaError
from aeqa.envs.geometry import quat_from_yaw, yup_to_zup
from aeqa.envs.navigation import NavSpec
from aeqa.envs.palette import EMISSIVE, PALETTE
from aeqa.envs.semantic import SemanticInstance, linear_to_srgb_u8, rgb_to_hex, write_semantic_txt

logger = logging.getLogger(__name__)

SCENE_FORMAT = "aeqa-scene/1"
GENERATOR_VERSION = 1
MIN_ROOMS, MAX_ROOMS = 3, 7

WALL_THICKNESS_M = 0.1
HALF_WALL_M = WALL_THICKNESS_M / 2.0
SLAB_THICKNESS_M = 0.1  # floor and ceiling boxes
DOOR_HEIGHT_M = 2.1
DOOR_LEAF_HEIGHT_M = 2.05
ROOM_SIDE_M = (2.5, 5.0)
MAX_APARTMENT_SIDE_M = 20.0
PLAN_GRID_M = 0.1  # floor-plan coordinates are multiples of this
DOORWAY_WIDTH_M = (0.9, 1.1)
DOORWAY_CORNER_MARGIN_M = 0.35  # wall centre line to opening: 0.05 wall + 0.3 clearance
MIN_DOORWAY_WALL_M = DOORWAY_WIDTH_M[0] + 2 * DOORWAY_CORNER_MARGIN_M
WALL_GAP_M = 0.05  # free objects keep at least this far from wall faces
PATH_CLEARANCE_M = 0.33  # half of a >= 0.6 m clear path, plus grid slack
NAV_GRID_M = 0.05
DOORWAY_KEEPOUT_DEPTH_M = 0.7
START_CLEARANCE_M = 0.4
#: Half size of the square kept free around a room's centre (the start pose's room needs more).
HUB_HALF_M = {
    "living room": 0.45,
    "hallway": 0.45,
    "office": 0.35,
    "bathroom": 0.3,
}
START_ROOM_TYPES = ("living room", "hallway")
#: Rooms one should not have to walk through: doorways make them dead ends where possible.
PRIVATE_ROOM_TYPES = ("bedroom", "bathroom", "office")

WALL_COLORS = ("white", "beige", "gray")
FLOOR_COLORS = ("brown", "beige", "gray")
CEILING_COLOR = "white"


# --- geometry records ------------------------------------------------------------------------

_CORNER_SIGNS = np.array(list(itertools.product((-1.0, 1.0), repeat=3)))


@dataclass(frozen=True, eq=False)
class Box:
    """A solid box.

    Attributes:
        center: (3,) float64 centre, metres.
        half_extents: (3,) float64 half sizes along the box's own axes, metres.
        rotation: (3, 3) float64 box axes -> frame. Placed boxes are in the Y-up world frame;
            object parts are in their object's frame (origin at the footprint centre on the
            surface it stands on, +Y up, front towards +Z).
    """

    center: np.ndarray
    half_extents: np.ndarray
    rotation: np.ndarray

    def corners(self) -> np.ndarray:
        """(8, 3) corner points in the box's frame."""
        return self.center + (_CORNER_SIGNS * self.half_extents) @ self.rotation.T

    def aabb(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned bounds as ((3,) min, (3,) max)."""
        corners = self.corners()
        return corners.min(axis=0), corners.max(axis=0)

    def transformed(self, R: np.ndarray, t: np.ndarray) -> Box:
        """The box moved by the rigid transform ``p -> R @ p + t``."""
        return Box(R @ self.center + t, self.half_extents, R @ self.rotation)


def _aabox(lo: Sequence[float], hi: Sequence[float]) -> Box:
    """Axis-aligned box between corners ``lo`` (3,) and ``hi`` (3,)."""
    lo_a = np.asarray(lo, dtype=np.float64)
    hi_a = np.asarray(hi, dtype=np.float64)
    return Box((lo_a + hi_a) / 2.0, (hi_a - lo_a) / 2.0, np.eye(3))


def _parts_aabb(boxes: Sequence[Box]) -> tuple[np.ndarray, np.ndarray]:
    bounds = [b.aabb() for b in boxes]
    return np.min([b[0] for b in bounds], axis=0), np.max([b[1] for b in bounds], axis=0)


@dataclass(frozen=True)
class Rect:
    """Axis-aligned rectangle on the floor plane: world x in [x0, x1], z in [z0, z1], metres."""

    x0: float
    z0: float
    x1: float
    z1: float

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def depth(self) -> float:
        return self.z1 - self.z0

    @property
    def center(self) -> tuple[float, float]:
        return (self.x0 + self.x1) / 2.0, (self.z0 + self.z1) / 2.0

    @property
    def area(self) -> float:
        return self.width * self.depth

    def overlaps(self, other: Rect, eps: float = 1e-6) -> bool:
        """True if the interiors intersect (touching edges do not count)."""
        return (
            self.x0 < other.x1 - eps
            and other.x0 < self.x1 - eps
            and self.z0 < other.z1 - eps
            and other.z0 < self.z1 - eps
        )

    def contains(self, other: Rect, eps: float = 1e-6) -> bool:
        return (
            other.x0 >= self.x0 - eps
            and other.x1 <= self.x1 + eps
            and other.z0 >= self.z0 - eps
            and other.z1 <= self.z1 + eps
        )

    def shrunk(self, margin: float) -> Rect:
        return Rect(self.x0 + margin, self.z0 + margin, self.x1 - margin, self.z1 - margin)

    def shifted(self, dx: float, dz: float) -> Rect:
        return Rect(self.x0 + dx, self.z0 + dz, self.x1 + dx, self.z1 + dz)

    def distance_to_point(self, x: float, z: float) -> float:
        dx = max(self.x0 - x, 0.0, x - self.x1)
        dz = max(self.z0 - z, 0.0, z - self.z1)
        return math.hypot(dx, dz)

    @staticmethod
    def union(rects: Sequence[Rect]) -> Rect:
        return Rect(
            min(r.x0 for r in rects),
            min(r.z0 for r in rects),
            max(r.x1 for r in rects),
            max(r.z1 for r in rects),
        )


def _yaw_matrix(quarter_turns: int) -> np.ndarray:
    """Exact rotation (3, 3) about +Y by ``quarter_turns`` * 90 degrees (counter-clockwise
    seen from above), mapping an object's front +Z to +Z, +X, -Z, -X for 0, 1, 2, 3."""
    c, s = ((1.0, 0.0), (0.0, 1.0), (-1.0, 0.0), (0.0, -1.0))[quarter_turns % 4]
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rotation_x(angle_rad: float) -> np.ndarray:
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _snap(value: float, step: float = PLAN_GRID_M) -> float:
    return round(round(value / step) * step, 6)


def _draw_cm(rng: np.random.Generator, lo: float, hi: float, end_bias: float = 0.0) -> float | None:
    """A random whole number of centimetres in [lo, hi] (metres), or None if none lies there.

    With probability ``end_bias`` the lowest or highest such value is taken (a corner spot).
    """
    lo_cm = math.ceil(round(lo * 100.0, 6))
    hi_cm = math.floor(round(hi * 100.0, 6))
    if hi_cm < lo_cm:
        return None
    if end_bias > 0.0 and rng.random() < end_bias:
        return (lo_cm if rng.random() < 0.5 else hi_cm) / 100.0
    return int(rng.integers(lo_cm, hi_cm + 1)) / 100.0


# --- object catalogue ------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """An object's boxes in its own frame, and the surface other objects may rest on.

    Attributes:
        parts: boxes in the object frame.
        lights: parts painted with a light colour instead of the object's colour, so a lamp or
            a tv that is on looks on.
        surface: rectangle (object-frame x / z) of the top surface, or None.
        surface_y: height (object frame, metres) of that surface, or None.
    """

    parts: list[Box]
    surface: Rect | None = None
    surface_y: float | None = None
    #: part index -> the light colour it glows with (a lamp's bulb, a screen that is on)
    lights: dict[int, tuple[int, int, int]] = field(default_factory=dict)


Builder = Callable[[float, float, float, "str | None"], Shape]


@dataclass(frozen=True)
class Category:
    """How to make one kind of object.

    Attributes:
        name: the category written to ``semantic.txt`` and ``scene.json``.
        typical_m: typical (width x, height y, depth z) in the object frame, metres.
        scale_axes: which sizes vary with the drawn scale: any of "w", "h", "d".
        scale_range: range of the drawn scale; below 0.9 is "small", above 1.1 "large".
        colors: palette names the object may take.
        material: what it is made of, or None.
        build: (w, h, d, state) -> Shape.
        states: the states drawn from, or empty for objects without a state.
    """

    name: str
    typical_m: tuple[float, float, float]
    scale_axes: str
    scale_range: tuple[float, float]
    colors: tuple[str, ...]
    material: str | None
    build: Builder
    states: tuple[str, ...] = ()


def _build_slab(w: float, h: float, d: float, state: str | None) -> Shape:
    return Shape([_aabox((-w / 2, 0.0, -d / 2), (w / 2, h, d / 2))])


def _build_wall_tv(w: float, h: float, d: float, state: str | None) -> Shape:
    """A flat screen on a wall (back at -d/2); when on, its front glows."""
    shape = _build_slab(w, h, d, state)
    if state == "on":
        margin = 0.04
        shape.lights[len(shape.parts)] = EMISSIVE["screen light"]
        shape.parts.append(
            _aabox((-w / 2 + margin, margin, d / 2), (w / 2 - margin, h - margin, d / 2 + 0.006))
        )
    return shape


def _build_table(w: float, h: float, d: float, state: str | None) -> Shape:
    top, leg, inset = 0.04, 0.05, 0.03
    parts = [_aabox((-w / 2, h - top, -d / 2), (w / 2, h, d / 2))]
    for sx, sz in itertools.product((-1.0, 1.0), repeat=2):
        cx = sx * (w / 2 - inset - leg / 2)
        cz = sz * (d / 2 - inset - leg / 2)
        parts.append(
            _aabox((cx - leg / 2, 0.0, cz - leg / 2), (cx + leg / 2, h - top, cz + leg / 2))
        )
    return Shape(parts, Rect(-w / 2, -d / 2, w / 2, d / 2), h)


def _build_desk(w: float, h: float, d: float, state: str | None) -> Shape:
    top, panel = 0.03, 0.03
    parts = [
        _aabox((-w / 2, h - top, -d / 2), (w / 2, h, d / 2)),
        _aabox((-w / 2, 0.0, -d / 2), (-w / 2 + panel, h - top, d / 2)),
        _aabox((w / 2 - panel, 0.0, -d / 2), (w / 2, h - top, d / 2)),
        _aabox((-w / 2 + panel, 0.3, -d / 2), (w / 2 - panel, h - top, -d / 2 + 0.02)),
    ]
    return Shape(parts, Rect(-w / 2, -d / 2, w / 2, d / 2), h)


def _build_chair(w: float, h: float, d: float, state: str | None) -> Shape:
    seat_y, seat_t, leg = 0.5 * h, 0.04, 0.04
    parts = [
        _aabox((-w / 2, seat_y - seat_t, -d / 2), (w / 2, seat_y, d / 2)),
        _aabox((-w / 2, seat_y, -d / 2), (w / 2, h, -d / 2 + 0.05)),
    ]
    for sx, sz in itertools.product((-1.0, 1.0), repeat=2):
        cx, cz = sx * (w / 2 - leg / 2), sz * (d / 2 - leg / 2)
        parts.append(
            _aabox((cx - leg / 2, 0.0, cz - leg / 2), (cx + leg / 2, seat_y - seat_t, cz + leg / 2))
        )
    return Shape(parts)


def _build_sofa(w: float, h: float, d: float, state: str | None) -> Shape:
    arm, back, seat_y, arm_y = 0.16, 0.2, 0.42, 0.62
    parts = [
        _aabox((-w / 2 + arm, 0.0, -d / 2 + back), (w / 2 - arm, seat_y, d / 2)),
        _aabox((-w / 2, 0.0, -d / 2), (w / 2, h, -d / 2 + back)),
        _aabox((-w / 2, 0.0, -d / 2 + back), (-w / 2 + arm, arm_y, d / 2)),
        _aabox((w / 2 - arm, 0.0, -d / 2 + back), (w / 2, arm_y, d / 2)),
    ]
    return Shape(parts, Rect(-w / 2 + arm, -d / 2 + back, w / 2 - arm, d / 2), seat_y)


def _build_bed(w: float, h: float, d: float, state: str | None) -> Shape:
    head, base_y, top_y = 0.06, 0.3, 0.52
    parts = [
        _aabox((-w / 2, 0.0, -d / 2), (w / 2, h, -d / 2 + head)),
        _aabox((-w / 2, 0.0, -d / 2 + head), (w / 2, base_y, d / 2)),
        _aabox((-w / 2 + 0.02, base_y, -d / 2 + head), (w / 2 - 0.02, top_y, d / 2 - 0.02)),
    ]
    return Shape(parts, Rect(-w / 2 + 0.02, -d / 2 + head, w / 2 - 0.02, d / 2 - 0.02), top_y)


def _handle(x: float, y: float, z_front: float, vertical: bool) -> Box:
    """A small handle bar on a front face at ``z_front - 0.03 .. z_front``."""
    hx, hy = (0.01, 0.15) if vertical else (0.08, 0.01)
    return _aabox((x - hx, y - hy, z_front - 0.03), (x + hx, y + hy, z_front))


def _build_cabinet(
    w: float, h: float, d: float, state: str | None, handles: int = 0, vertical: bool = False
) -> Shape:
    """A body with a top slab and ``handles`` handle bars on its front; the top is a surface."""
    body_front = d / 2 - 0.03
    parts = [
        _aabox((-w / 2, 0.0, -d / 2), (w / 2, h - 0.03, body_front)),
        _aabox((-w / 2, h - 0.03, -d / 2), (w / 2, h, d / 2)),
    ]
    for i in range(handles):
        x = (i - (handles - 1) / 2.0) * min(0.12, w / 3)
        y = 0.5 * h if vertical else h - 0.15
        parts.append(_handle(x, y, d / 2, vertical))
    return Shape(parts, Rect(-w / 2, -d / 2, w / 2, d / 2), h)


def _build_counter(w: float, h: float, d: float, state: str | None) -> Shape:
    return _build_cabinet(w, h, d, state, handles=2)


def _build_nightstand(w: float, h: float, d: float, state: str | None) -> Shape:
    return _build_cabinet(w, h, d, state, handles=1)


def _build_wardrobe(w: float, h: float, d: float, state: str | None) -> Shape:
    return _build_cabinet(w, h, d, state, handles=2, vertical=True)


def _build_plain_cabinet(w: float, h: float, d: float, state: str | None) -> Shape:
    return _build_cabinet(w, h, d, state, handles=0)


def _build_appliance(w: float, h: float, d: float, state: str | None, vertical: bool) -> Shape:
    """Fridge, oven, microwave: a closed body with one handle; nothing rests on it."""
    body_front = d / 2 - 0.03
    parts = [_aabox((-w / 2, 0.0, -d / 2), (w / 2, h, body_front))]
    if vertical:
        parts.append(_handle(w / 2 - 0.08, 0.6 * h, d / 2, vertical=True))
    else:
        parts.append(_handle(0.0, h - 0.1, d / 2, vertical=False))
    return Shape(parts)


def _build_fridge(w: float, h: float, d: float, state: str | None) -> Shape:
    return _build_appliance(w, h, d, state, vertical=True)


def _build_oven(w: float, h: float, d: float, state: str | None) -> Shape:
    return _build_appliance(w, h, d, state, vertical=False)


def _build_microwave(w: float, h: float, d: float, state: str | None) -> Shape:
    body_front = d / 2 - 0.02
    parts = [
        _aabox((-w / 2, 0.0, -d / 2), (w / 2, h, body_front)),
        _aabox((w / 2 - 0.06, 0.05, body_front), (w / 2 - 0.04, h - 0.05, d / 2)),
    ]
    return Shape(parts)


def _build_sink(w: float, h: float, d: float, state: str | None) -> Shape:
    """A sink cabinet with a worktop and a tap at the back; ``h`` includes the tap."""
    counter_y = h - 0.25
    parts = _build_cabinet(w, counter_y, d, state, handles=2).parts
    back = -d / 2 + 0.04
    parts += [
        _aabox((-0.02, counter_y, back), (0.02, h, back + 0.04)),
        _aabox((-0.02, h - 0.04, back + 0.04), (0.02, h, back + 0.16)),
    ]
    return Shape(parts)


def _build_toilet(w: float, h: float, d: float, state: str | None) -> Shape:
    tank, seat_y = 0.18, 0.42
    parts = [
        _aabox((-w / 2, 0.0, -d / 2), (w / 2, h, -d / 2 + tank)),
        _aabox((-w / 2 + 0.03, 0.0, -d / 2 + tank), (w / 2 - 0.03, seat_y - 0.04, d / 2)),
        _aabox((-w / 2 + 0.02, seat_y - 0.04, -d / 2 + tank), (w / 2 - 0.02, seat_y, d / 2)),
    ]
    return Shape(parts)


def _build_bathtub(w: float, h: float, d: float, state: str | None) -> Shape:
    t, bottom = 0.07, 0.08
    parts = [
        _aabox((-w / 2, 0.0, -d / 2), (w / 2, bottom, d / 2)),
        _aabox((-w / 2, bottom, -d / 2), (w / 2, h, -d / 2 + t)),
        _aabox((-w / 2, bottom, d / 2 - t), (w / 2, h, d / 2)),
        _aabox((-w / 2, bottom, -d / 2 + t), (-w / 2 + t, h, d / 2 - t)),
        _aabox((w / 2 - t, bottom, -d / 2 + t), (w / 2, h, d / 2 - t)),
    ]
    return Shape(parts)


def _build_shelves(w: float, h: float, d: float, state: str | None, back: bool) -> Shape:
    t = 0.02
    parts = [
        _aabox((-w / 2, 0.0, -d / 2), (-w / 2 + t, h, d / 2)),
        _aabox((w / 2 - t, 0.0, -d / 2), (w / 2, h, d / 2)),
    ]
    z0 = -d / 2
    if back:
        parts.append(_aabox((-w / 2 + t, 0.0, -d / 2), (w / 2 - t, h, -d / 2 + t)))
        z0 += t
    levels = max(3, round(h / 0.38) + 1)
    for i in range(levels):
        y = i * (h - t) / (levels - 1)
        parts.append(_aabox((-w / 2 + t, y, z0), (w / 2 - t, y + t, d / 2)))
    return Shape(parts)


def _build_bookshelf(w: float, h: float, d: float, state: str | None) -> Shape:
    return _build_shelves(w, h, d, state, back=True)


def _build_shoe_rack(w: float, h: float, d: float, state: str | None) -> Shape:
    return _build_shelves(w, h, d, state, back=False)


def _build_lamp(w: float, h: float, d: float, state: str | None) -> Shape:
    """Base, pole and shade; when on, a glowing bulb shows under the shade."""
    base, pole = 0.3 * w, 0.015
    parts = [
        _aabox((-base, 0.0, -base), (base, 0.03, base)),
        _aabox((-pole, 0.03, -pole), (pole, 0.7 * h, pole)),
        _aabox((-w / 2, 0.62 * h, -d / 2), (w / 2, h, d / 2)),
    ]
    lights = {}
    if state == "on":
        lights[len(parts)] = EMISSIVE["lamp light"]
        parts.append(_aabox((-0.22 * w, 0.5 * h, -0.22 * d), (0.22 * w, 0.62 * h, 0.22 * d)))
    return Shape(parts, lights=lights)


def _build_plant(w: float, h: float, d: float, state: str | None) -> Shape:
    parts = [
        _aabox((-0.35 * w, 0.0, -0.35 * d), (0.35 * w, 0.35 * h, 0.35 * d)),
        _aabox((-w / 2, 0.35 * h, -d / 2), (w / 2, h, d / 2)),
    ]
    return Shape(parts)


def _build_mug(w: float, h: float, d: float, state: str | None) -> Shape:
    handle = 0.025
    parts = [
        _aabox((-w / 2, 0.0, -d / 2), (w / 2 - handle, h, d / 2)),
        _aabox((w / 2 - handle, 0.25 * h, -0.01), (w / 2, 0.75 * h, 0.01)),
    ]
    return Shape(parts)


def _build_tv(w: float, h: float, d: float, state: str | None) -> Shape:
    """A screen on a foot, standing on furniture; when on, the screen's front glows."""
    parts = [
        _aabox((-0.2 * w, 0.0, -d / 2), (0.2 * w, 0.03, d / 2)),
        _aabox((-0.03, 0.03, -0.02), (0.03, 0.12, 0.02)),
        _aabox((-w / 2, 0.12, -0.03), (w / 2, h, 0.03)),
    ]
    lights = {}
    if state == "on":
        lights[len(parts)] = EMISSIVE["screen light"]
        margin = 0.04
        parts.append(
            _aabox((-w / 2 + margin, 0.12 + margin, 0.03), (w / 2 - margin, h - margin, 0.036))
        )
    return Shape(parts, lights=lights)


def _build_laptop(w: float, h: float, d: float, state: str | None) -> Shape:
    """Closed: one flat box. Open: a base and a screen tilted 15 degrees back from vertical."""
    if state == "closed":
        return Shape([_aabox((-w / 2, 0.0, -d / 2), (w / 2, 0.03, d / 2))])
    base_t, screen_t, screen_h = 0.015, 0.008, 0.92 * d
    tilt = _rotation_x(math.radians(-15.0))
    hinge = np.array([0.0, base_t, -d / 2])
    screen = Box(
        hinge + tilt @ np.array([0.0, screen_h / 2, screen_t / 2]),
        np.array([w / 2, screen_h / 2, screen_t / 2]),
        tilt,
    )
    return Shape([_aabox((-w / 2, 0.0, -d / 2), (w / 2, base_t, d / 2)), screen])


def _build_window(w: float, h: float, d: float, state: str | None) -> Shape:
    """A frame with a mullion and a pane near the wall; ``d`` is the depth off the wall."""
    f, m = 0.05, 0.015
    parts = [
        _aabox((-w / 2, 0.0, -d / 2), (-w / 2 + f, h, d / 2)),
        _aabox((w / 2 - f, 0.0, -d / 2), (w / 2, h, d / 2)),
        _aabox((-w / 2 + f, 0.0, -d / 2), (w / 2 - f, f, d / 2)),
        _aabox((-w / 2 + f, h - f, -d / 2), (w / 2 - f, h, d / 2)),
        _aabox((-m, f, -d / 2), (m, h - f, d / 2)),
        _aabox((-w / 2 + f, f, -d / 2), (w / 2 - f, h - f, -d / 2 + 0.01)),
    ]
    return Shape(parts)


def _build_door(w: float, h: float, d: float, state: str | None) -> Shape:
    """A leaf flat against the wall (back at -d/2) with a handle in front."""
    leaf = 0.04
    parts = [
        _aabox((-w / 2, 0.0, -d / 2), (w / 2, h, -d / 2 + leaf)),
        _aabox((w / 2 - 0.16, 0.98, -d / 2 + leaf), (w / 2 - 0.04, 1.02, d / 2)),
    ]
    return Shape(parts)


def _build_towel(w: float, h: float, d: float, state: str | None) -> Shape:
    parts = [
        _aabox((-w / 2, h - 0.03, -d / 2), (w / 2, h, d / 2)),
        _aabox((-w / 2 + 0.04, 0.0, -d / 2), (w / 2 - 0.04, h - 0.03, -d / 2 + 0.02)),
    ]
    return Shape(parts)


_BRIGHT = ("red", "blue", "yellow", "green", "orange", "purple", "pink", "teal")
_WOODS = ("brown", "white", "black", "beige")
_DARK_WOODS = ("brown", "white", "black")
_FABRICS = ("gray", "blue", "beige", "brown", "green", "red", "black", "teal", "purple")
_APPLIANCES = ("white", "gray", "black")
_ON_OFF = ("on", "off")

#: Catalogue keys -> how to make them. Several keys may share a category name ("sink").
# fmt: off
CATALOGUE: dict[str, Category] = {
    "fridge": Category("fridge", (0.7, 1.8, 0.7), "wh", (0.85, 1.15), _APPLIANCES,
                       "metal", _build_fridge, ("closed",)),
    "oven": Category("oven", (0.6, 0.85, 0.6), "w", (0.9, 1.15), _APPLIANCES,
                     "metal", _build_oven, ("closed",)),
    "microwave": Category("microwave", (0.5, 0.3, 0.38), "whd", (0.85, 1.15), _APPLIANCES,
                          "metal", _build_microwave, ("closed",)),
    "counter": Category("counter", (1.2, 0.9, 0.6), "w", (0.8, 1.3),
                        ("white", "gray", "beige", "brown", "black"), "wood", _build_counter),
    "kitchen sink": Category("sink", (0.8, 1.15, 0.6), "w", (0.85, 1.15),
                             ("white", "gray", "beige"), "metal", _build_sink),
    "bathroom sink": Category("sink", (0.6, 1.1, 0.45), "wd", (0.85, 1.15),
                              ("white", "beige"), "ceramic", _build_sink),
    "table": Category("table", (1.2, 0.75, 0.8), "wd", (0.8, 1.2), _WOODS,
                      "wood", _build_table),
    "coffee table": Category("coffee table", (1.0, 0.45, 0.55), "wd", (0.8, 1.2), _WOODS,
                             "wood", _build_table),
    "chair": Category("chair", (0.45, 0.9, 0.5), "whd", (0.9, 1.1),
                      ("brown", "black", "white", "red", "blue", "green", "gray"),
                      "wood", _build_chair),
    "mug": Category("mug", (0.11, 0.1, 0.08), "whd", (0.8, 1.25), (*_BRIGHT, "white", "black"),
                    "ceramic", _build_mug),
    "plant": Category("plant", (0.45, 0.9, 0.45), "whd", (0.7, 1.4), ("green",),
                      None, _build_plant),
    "sofa": Category("sofa", (2.0, 0.85, 0.9), "w", (0.8, 1.2), _FABRICS,
                     "fabric", _build_sofa),
    "armchair": Category("armchair", (0.85, 0.85, 0.85), "w", (0.9, 1.15), _FABRICS,
                         "fabric", _build_sofa),
    "pillow": Category("pillow", (0.45, 0.15, 0.45), "wd", (0.85, 1.25), (*_BRIGHT, "white"),
                       "fabric", _build_slab),
    "tv stand": Category("tv stand", (1.4, 0.5, 0.4), "w", (0.8, 1.2), _DARK_WOODS,
                         "wood", _build_plain_cabinet),
    "tv": Category("tv", (1.0, 0.7, 0.22), "wh", (0.8, 1.2), ("black",),
                   "plastic", _build_tv, _ON_OFF),
    "wall tv": Category("tv", (1.1, 0.65, 0.04), "wh", (0.8, 1.2), ("black",),
                        "plastic", _build_wall_tv, _ON_OFF),
    "floor lamp": Category("floor lamp", (0.4, 1.6, 0.4), "whd", (0.85, 1.15),
                           ("white", "black", "yellow", "beige", "orange"),
                           "metal", _build_lamp, _ON_OFF),
    "lamp": Category("lamp", (0.25, 0.45, 0.25), "whd", (0.85, 1.2),
                     ("white", "black", "yellow", "beige", "orange", "blue"),
                     "metal", _build_lamp, _ON_OFF),
    "rug": Category("rug", (2.0, 0.01, 1.4), "wd", (0.7, 1.2),
                    ("red", "blue", "beige", "gray", "green", "purple", "orange", "pink", "teal"),
                    "fabric", _build_slab),
    "bookshelf": Category("bookshelf", (0.8, 1.8, 0.3), "wh", (0.8, 1.2), _DARK_WOODS,
                          "wood", _build_bookshelf),
    "picture": Category("picture", (0.6, 0.45, 0.03), "wh", (0.7, 1.4), _BRIGHT,
                        None, _build_slab),
    "bed": Category("bed", (1.5, 1.0, 2.05), "w", (0.65, 1.2),
                    ("white", "gray", "blue", "beige", "brown", "pink", "purple"),
                    "fabric", _build_bed),
    "nightstand": Category("nightstand", (0.45, 0.55, 0.4), "whd", (0.85, 1.15), _DARK_WOODS,
                           "wood", _build_nightstand),
    "wardrobe": Category("wardrobe", (1.0, 2.0, 0.6), "wh", (0.8, 1.2),
                         ("brown", "white", "gray", "beige"), "wood", _build_wardrobe),
    "cabinet": Category("cabinet", (0.8, 0.9, 0.4), "wh", (0.8, 1.2),
                        ("brown", "white", "gray", "beige"), "wood", _build_counter),
    "toilet": Category("toilet", (0.42, 0.8, 0.7), "whd", (0.9, 1.1), ("white",),
                       "ceramic", _build_toilet),
    "bathtub": Category("bathtub", (1.6, 0.55, 0.75), "w", (0.9, 1.1), ("white",),
                        "ceramic", _build_bathtub),
    "towel": Category("towel", (0.5, 0.7, 0.03), "wh", (0.8, 1.2),
                      ("white", "blue", "pink", "yellow", "green", "gray"),
                      "fabric", _build_towel),
    "mirror": Category("mirror", (0.6, 0.8, 0.02), "wh", (0.8, 1.2), ("gray",),
                       "glass", _build_slab),
    "desk": Category("desk", (1.2, 0.75, 0.6), "w", (0.85, 1.2), _DARK_WOODS,
                     "wood", _build_desk),
    "laptop": Category("laptop", (0.33, 0.22, 0.23), "wd", (0.9, 1.15), _APPLIANCES,
                       "metal", _build_laptop, ("open", "closed")),
    "shoe rack": Category("shoe rack", (0.8, 0.5, 0.3), "wh", (0.8, 1.2), _DARK_WOODS,
                          "wood", _build_shoe_rack),
    "window": Category("window", (1.2, 1.1, 0.04), "w", (0.7, 1.25),
                       ("white", "black", "brown"), "glass", _build_window),
    "door": Category("door", (0.9, DOOR_LEAF_HEIGHT_M, 0.08), "w", (1.0, 1.0),
                     ("brown", "white", "gray"), "wood", _build_door),
}
# fmt: on


@dataclass(frozen=True)
class ObjectSpec:
    """A sized, coloured object before it is placed.

    Attributes:
        dims_m: (width x, height y, depth z) of its bounding box in its own frame, metres.
        shape: parts centred on the footprint (x, z) with the lowest point at y = 0.
    """

    key: str
    category: str
    color_name: str
    size_label: str
    material: str | None
    state: str | None
    dims_m: tuple[float, float, float]
    shape: Shape

    def footprint(self, x: float, z: float, quarter_turns: int) -> Rect:
        """World footprint when its frame origin sits at (x, z) turned by ``quarter_turns``."""
        w, _, d = self.dims_m
        hx, hz = (w / 2, d / 2) if quarter_turns % 2 == 0 else (d / 2, w / 2)
        return Rect(x - hx, z - hz, x + hx, z + hz)


def _size_label(scale: float) -> str:
    if scale < 0.9:
        return "small"
    return "large" if scale > 1.1 else "medium"


def _recentred(shape: Shape) -> tuple[Shape, tuple[float, float, float]]:
    """Shift a shape so its bounding box is centred in x / z with its bottom at y = 0."""
    lo, hi = _parts_aabb(shape.parts)
    offset = -np.array([(lo[0] + hi[0]) / 2.0, lo[1], (lo[2] + hi[2]) / 2.0])
    parts = [b.transformed(np.eye(3), offset) for b in shape.parts]
    surface = shape.surface.shifted(offset[0], offset[2]) if shape.surface is not None else None
    surface_y = shape.surface_y + offset[1] if shape.surface_y is not None else None
    dims = hi - lo
    shifted = Shape(parts, surface, surface_y, dict(shape.lights))
    return shifted, (float(dims[0]), float(dims[1]), float(dims[2]))


def make_spec(
    rng: np.random.Generator,
    key: str,
    scale_range: tuple[float, float] | None = None,
    color_name: str | None = None,
    state: str | None = None,
    size_m: tuple[float, float, float] | None = None,
) -> ObjectSpec:
    """Draw an object of catalogue entry ``key``: its scale, colour and state.

    ``size_m`` (width, height, depth) overrides the drawn size; its label then compares it
    with the category's typical size.
    """
    category = CATALOGUE[key]
    typical = np.array(category.typical_m)
    axes = np.array([axis in category.scale_axes for axis in "whd"])
    if size_m is None:
        scale = float(rng.uniform(*(scale_range or category.scale_range)))
        size = np.round(np.where(axes, typical * scale, typical), 2)
    else:
        size = np.asarray(size_m, dtype=np.float64)
        scale = float(np.mean(size[axes] / typical[axes]))
    color = color_name or str(rng.choice(category.colors))
    if state is None and category.states:
        state = str(rng.choice(category.states))
    shape = category.build(float(size[0]), float(size[1]), float(size[2]), state)
    shape, dims = _recentred(shape)
    return ObjectSpec(
        key=key,
        category=category.name,
        color_name=color,
        size_label=_size_label(scale),
        material=category.material,
        state=state,
        dims_m=dims,
        shape=shape,
    )


# --- scene records ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Room:
    """A room: ``bounds`` are its wall centre lines on the floor plane."""

    region_id: int
    name: str
    room_type: str
    bounds: Rect

    @property
    def interior(self) -> Rect:
        """The free floor between the wall faces."""
        return self.bounds.shrunk(HALF_WALL_M)


@dataclass(frozen=True)
class SharedWall:
    """The boundary two rooms share: the line ``axis = line`` from ``lo`` to ``hi``.

    ``axis`` is "x" for a wall at constant x (running along z) and "z" for constant z.
    """

    rooms: tuple[int, int]
    axis: str
    line: float
    lo: float
    hi: float

    @property
    def length(self) -> float:
        return self.hi - self.lo

    @property
    def fits_doorway(self) -> bool:
        """Long enough for the narrowest doorway with its corner margins."""
        return self.length >= MIN_DOORWAY_WALL_M - 1e-6


@dataclass(frozen=True)
class Doorway:
    """An opening ``width_m`` wide, centred at ``center`` along a shared wall."""

    wall: SharedWall
    center: float
    width_m: float

    @property
    def opening(self) -> tuple[float, float]:
        return self.center - self.width_m / 2, self.center + self.width_m / 2

    def world_center(self) -> tuple[float, float, float]:
        y = DOOR_HEIGHT_M / 2
        if self.wall.axis == "x":
            return self.wall.line, y, self.center
        return self.center, y, self.wall.line


@dataclass(frozen=True)
class StructurePiece:
    """A wall, floor or ceiling box (world frame)."""

    category: str
    region_id: int
    color_name: str
    box: Box


@dataclass
class PlacedObject:
    """An object in the world.

    Attributes:
        translation: (3,) world position of the object frame's origin (footprint centre on
            the surface it stands on), metres.
        quarter_turns: yaw about +Y in multiples of 90 degrees; 0 faces +Z.
        supported_by: index (in the scene's object list) of the object it rests on, or None.
        side: the wall side ("-x", "+x", "-z", "+z") it stands against or hangs on, or None.
    """

    spec: ObjectSpec
    region_id: int
    translation: np.ndarray
    quarter_turns: int
    supported_by: int | None = None
    wall_mounted: bool = False
    side: str | None = None
    boxes: list[Box] = field(init=False)
    bbox_min: np.ndarray = field(init=False)
    bbox_max: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        R = _yaw_matrix(self.quarter_turns)
        self.boxes = [b.transformed(R, self.translation) for b in self.spec.shape.parts]
        self.bbox_min, self.bbox_max = _parts_aabb(self.boxes)

    @property
    def footprint(self) -> Rect:
        return Rect(
            float(self.bbox_min[0]),
            float(self.bbox_min[2]),
            float(self.bbox_max[0]),
            float(self.bbox_max[2]),
        )

    @property
    def surface(self) -> Rect | None:
        """World rectangle of the top surface others may rest on."""
        local = self.spec.shape.surface
        if local is None:
            return None
        R = _yaw_matrix(self.quarter_turns)
        corners = np.array([[local.x0, 0.0, local.z0], [local.x1, 0.0, local.z1]]) @ R.T
        corners += self.translation
        return Rect(
            float(corners[:, 0].min()),
            float(corners[:, 2].min()),
            float(corners[:, 0].max()),
            float(corners[:, 2].max()),
        )

    @property
    def surface_y(self) -> float | None:
        if self.spec.shape.surface_y is None:
            return None
        return float(self.translation[1] + self.spec.shape.surface_y)

    @property
    def is_rug(self) -> bool:
        return self.spec.category == "rug"


@dataclass(frozen=True)
class GeneratedScene:
    """Everything written for one scene (world frame, metres)."""

    seed: int
    ceiling_height_m: float
    rooms: list[Room]
    doorways: list[Doorway]
    structure: list[StructurePiece]
    objects: list[PlacedObject]
    start_position: tuple[float, float, float]
    start_yaw_rad: float
    size: str = "apartment"
    #: houses: per room, the rectangles its floor is made of (an L-shaped room has two)
    room_parts: list[list[Rect]] = field(default_factory=list)
    #: houses: boundaries between two rooms with no wall (``rooms`` are their region ids)
    openings: list[SharedWall] = field(default_factory=list)
    #: split-level houses: per room, the height of its floor (empty: every floor at y = 0)
    room_floor_y: list[float] = field(default_factory=list)


# --- floor plan ------------------------------------------------------------------------------


def _row_layouts(count: int) -> list[tuple[int, ...]]:
    """Ways to put ``count`` rooms in one to three rows of one common length, every room
    2.5 to 5 m long: the row with most rooms must fit the row with fewest."""
    lo, hi = ROOM_SIDE_M
    options = []
    for rows in range(1, 4):
        for parts in itertools.product(range(1, count + 1), repeat=rows):
            longest = lo * max(parts)
            if sum(parts) == count and longest <= min(hi * min(parts), MAX_APARTMENT_SIDE_M):
                options.append(parts)
    return options


def _partition_dm(total_dm: int, parts: int, rng: np.random.Generator) -> list[int]:
    """Random room lengths in decimetres, each within ``ROOM_SIDE_M``, summing to ``total_dm``."""
    lo, hi = (round(10 * v) for v in ROOM_SIDE_M)
    return _split_dm(total_dm, parts, lo, hi, rng)


def _split_dm(total_dm: int, parts: int, lo: int, hi: int, rng: np.random.Generator) -> list[int]:
    """Random whole-decimetre lengths, each in ``[lo, hi]``, summing to ``total_dm``."""
    sizes = []
    remaining = total_dm
    for left in range(parts, 1, -1):
        size = int(
            rng.integers(
                max(lo, remaining - hi * (left - 1)), min(hi, remaining - lo * (left - 1)) + 1
            )
        )
        sizes.append(size)
        remaining -= size
    return [*sizes, remaining]


def _rows_of_rooms(rng: np.random.Generator, count: int) -> list[Rect]:
    """Rooms in rows stacked along z (then maybe turned 90 degrees), centred on the origin.

    Coordinates are whole decimetres, so walls of neighbouring rooms meet exactly.
    """
    layouts = _row_layouts(count)
    weights = np.array([{1: 1.0, 2: 3.0, 3: 2.0}[len(rows)] for rows in layouts])
    rows = layouts[int(rng.choice(len(layouts), p=weights / weights.sum()))]
    lo, hi = (round(10 * v) for v in ROOM_SIDE_M)
    max_dm = round(10 * MAX_APARTMENT_SIDE_M)
    length_dm = int(rng.integers(lo * max(rows), min(hi * min(rows), max_dm) + 1))
    depths_dm = [int(rng.integers(lo, hi + 1)) for _ in rows]
    x0_dm, z_dm = -(length_dm // 2), -(sum(depths_dm) // 2)
    transpose = bool(rng.random() < 0.5)
    rects = []
    for parts, depth_dm in zip(rows, depths_dm, strict=True):
        x_dm = x0_dm
        for width_dm in _partition_dm(length_dm, parts, rng):
            box = (x_dm / 10, z_dm / 10, (x_dm + width_dm) / 10, (z_dm + depth_dm) / 10)
            rects.append(Rect(box[1], box[0], box[3], box[2]) if transpose else Rect(*box))
            x_dm += width_dm
        z_dm += depth_dm
    return rects


def _shared_walls(rects: Sequence[Rect]) -> list[SharedWall]:
    """Every boundary of positive length between two rooms."""
    walls = []
    for i, j in itertools.combinations(range(len(rects)), 2):
        a, b = rects[i], rects[j]
        for line_a, line_b in ((a.x1, b.x0), (a.x0, b.x1)):
            lo, hi = max(a.z0, b.z0), min(a.z1, b.z1)
            if abs(line_a - line_b) < 1e-6 and hi - lo > 1e-6:
                walls.append(SharedWall((i, j), "x", line_a, lo, hi))
        for line_a, line_b in ((a.z1, b.z0), (a.z0, b.z1)):
            lo, hi = max(a.x0, b.x0), min(a.x1, b.x1)
            if abs(line_a - line_b) < 1e-6 and hi - lo > 1e-6:
                walls.append(SharedWall((i, j), "z", line_a, lo, hi))
    return walls


def _connected(count: int, walls: Sequence[SharedWall]) -> bool:
    reached = {0}
    frontier = [0]
    while frontier:
        room = frontier.pop()
        for wall in walls:
            if room in wall.rooms:
                other = wall.rooms[1] if wall.rooms[0] == room else wall.rooms[0]
                if other not in reached:
                    reached.add(other)
                    frontier.append(other)
    return len(reached) == count


def _sample_floor_plan(rng: np.random.Generator, count: int) -> list[Rect]:
    """Room rectangles tiling a rectangular apartment centred on the origin, every room 2.5 to
    5 m a side, all connected through walls long enough for a doorway."""
    for _ in range(200):
        rects = _rows_of_rooms(rng, count)
        long_walls = [w for w in _shared_walls(rects) if w.fits_doorway]
        if _connected(count, long_walls):
            return rects
    raise RuntimeError(f"no connected floor plan found for {count} rooms")  # pragma: no cover


def _room_types(count: int, rng: np.random.Generator) -> list[str]:
    """Kitchen and living room, then bedrooms (repeatable), bathroom, hallway, office."""
    types = ["kitchen", "living room"]
    weights = {"bedroom": 3.0, "bathroom": 3.0, "hallway": 1.5, "office": 1.5}
    while len(types) < count:
        options = [t for t in weights if t == "bedroom" or t not in types]
        p = np.array([weights[t] for t in options])
        types.append(str(rng.choice(options, p=p / p.sum())))
    return types


def _pass_through_score(types: dict[int, str], walls: Sequence[SharedWall]) -> int:
    """How far an arrangement is from letting every private room be a dead end: the number of
    extra pieces the public rooms fall into plus the private rooms with no public neighbour."""
    long_walls = [w for w in walls if w.fits_doorway]
    public = {i for i, t in types.items() if t not in PRIVATE_ROOM_TYPES}
    pieces = 0
    unseen = set(public)
    while unseen:
        pieces += 1
        frontier = [unseen.pop()]
        while frontier:
            room = frontier.pop()
            for w in long_walls:
                if room in w.rooms:
                    other = w.rooms[1] if w.rooms[0] == room else w.rooms[0]
                    if other in unseen:
                        unseen.remove(other)
                        frontier.append(other)
    lonely = sum(
        1
        for i in types
        if i not in public
        and not any(i in w.rooms and (set(w.rooms) - {i}) <= public for w in long_walls)
    )
    return pieces - 1 + lonely


def _assign_rooms(
    rects: Sequence[Rect], walls: Sequence[SharedWall], rng: np.random.Generator
) -> list[Room]:
    """Give each rectangle a type: the living room is the largest, the bathroom the smallest,
    the hallway the most elongated of the rest, and the other types are shuffled, preferring
    arrangements where no bedroom, bathroom or office has to be walked through."""
    types = _room_types(len(rects), rng)
    free = list(range(len(rects)))
    fixed: dict[int, str] = {}

    def take(room_type: str, index: int) -> None:
        fixed[index] = room_type
        free.remove(index)
        types.remove(room_type)

    take("living room", max(free, key=lambda i: (rects[i].area, -i)))
    if "bathroom" in types:
        take("bathroom", min(free, key=lambda i: (rects[i].area, i)))
    if "hallway" in types:
        elongation = {
            i: max(rects[i].width, rects[i].depth) / min(rects[i].width, rects[i].depth)
            for i in free
        }
        take("hallway", max(free, key=lambda i: (elongation[i], -i)))
    best: tuple[int, dict[int, str]] | None = None
    for _ in range(24):
        order = rng.permutation(len(free))
        assigned = dict(fixed)
        assigned.update({free[int(slot)]: t for slot, t in zip(order, types, strict=True)})
        score = _pass_through_score(assigned, walls)
        if best is None or score < best[0]:
            best = (score, assigned)
        if score == 0:
            break
    assert best is not None
    rooms = []
    bedrooms = 0
    for i, rect in enumerate(rects):
        room_type = best[1][i]
        name = room_type
        if room_type == "bedroom":
            bedrooms += 1
            name = "bedroom" if bedrooms == 1 else f"bedroom {bedrooms}"
        rooms.append(Room(i, name, room_type, rect))
    return rooms


def _choose_doorway_walls(
    rooms: Sequence[Room], walls: Sequence[SharedWall], rng: np.random.Generator
) -> list[SharedWall]:
    """A random spanning tree of walls long enough for a doorway, grown from the living room
    through public rooms where it can (so bedrooms, bathroom and office tend to be dead ends),
    plus a few extra doorways between public rooms."""
    candidates = [w for w in walls if w.fits_doorway]
    private = [r.room_type in PRIVATE_ROOM_TYPES for r in rooms]
    living = next(r.region_id for r in rooms if r.room_type == "living room")
    reached = {living}
    chosen: list[SharedWall] = []
    while len(reached) < len(rooms):
        crossing = [w for w in candidates if (w.rooms[0] in reached) != (w.rooms[1] in reached)]
        preferred = [w for w in crossing if not any(private[r] and r in reached for r in w.rooms)]
        pool = preferred or crossing
        wall = pool[int(rng.integers(len(pool)))]
        chosen.append(wall)
        reached.update(wall.rooms)
    for wall in candidates:
        if wall not in chosen and not any(private[r] for r in wall.rooms) and rng.random() < 0.3:
            chosen.append(wall)
    return chosen


def _make_doorway(wall: SharedWall, rng: np.random.Generator) -> Doorway:
    """A doorway of width drawn in ``DOORWAY_WIDTH_M`` (centimetre steps) at a random place
    on ``wall``, its opening at least ``DOORWAY_CORNER_MARGIN_M`` from the wall's ends."""
    # Wall lengths are multiples of the plan grid up to float error: round before comparing.
    room_for_opening = round(wall.length - 2 * DOORWAY_CORNER_MARGIN_M, 6)
    max_width = max(DOORWAY_WIDTH_M[0], min(DOORWAY_WIDTH_M[1], room_for_opening))
    width = _draw_cm(rng, DOORWAY_WIDTH_M[0], max_width) or DOORWAY_WIDTH_M[0]
    lo = wall.lo + DOORWAY_CORNER_MARGIN_M + width / 2
    hi = wall.hi - DOORWAY_CORNER_MARGIN_M - width / 2
    center = _draw_cm(rng, lo, hi)
    return Doorway(wall, (lo + hi) / 2 if center is None else center, width)


# --- structure: floors, ceilings, walls ------------------------------------------------------


def _wall_box(axis: str, line: float, lo: float, hi: float, y0: float, y1: float) -> Box:
    if axis == "x":
        return _aabox((line - HALF_WALL_M, y0, lo), (line + HALF_WALL_M, y1, hi))
    return _aabox((lo, y0, line - HALF_WALL_M), (hi, y1, line + HALF_WALL_M))


def _subtract_intervals(
    span: tuple[float, float], holes: Sequence[tuple[float, float]]
) -> list[tuple[float, float]]:
    pieces = [span]
    for h_lo, h_hi in holes:
        next_pieces = []
        for lo, hi in pieces:
            if h_lo > lo + 1e-6:
                next_pieces.append((lo, min(hi, h_lo)))
            if h_hi < hi - 1e-6:
                next_pieces.append((max(lo, h_hi), hi))
        pieces = [(lo, hi) for lo, hi in next_pieces if hi - lo > 1e-6]
    return pieces


@dataclass(frozen=True)
class _RoomEdge:
    """One side of a room's boundary: the line ``axis = line`` from ``lo`` to ``hi``."""

    side: str
    axis: str
    line: float
    lo: float
    hi: float


def _room_edges(room: Room) -> list[_RoomEdge]:
    b = room.bounds
    return [
        _RoomEdge("-x", "x", b.x0, b.z0, b.z1),
        _RoomEdge("+x", "x", b.x1, b.z0, b.z1),
        _RoomEdge("-z", "z", b.z0, b.x0, b.x1),
        _RoomEdge("+z", "z", b.z1, b.x0, b.x1),
    ]


def _exterior_intervals(
    edge: _RoomEdge, region_id: int, walls: Sequence[SharedWall]
) -> list[tuple[float, float]]:
    """Parts of a room edge that no other room lies behind."""
    shared = [
        (w.lo, w.hi)
        for w in walls
        if region_id in w.rooms and w.axis == edge.axis and abs(w.line - edge.line) < 1e-6
    ]
    return _subtract_intervals((edge.lo, edge.hi), shared)


def _build_structure(
    rooms: Sequence[Room],
    walls: Sequence[SharedWall],
    doorways: Sequence[Doorway],
    ceiling_height_m: float,
    rng: np.random.Generator,
) -> list[StructurePiece]:
    """Floor and ceiling slabs per room, exterior walls, and shared walls with doorways cut
    out (two side pieces and a lintel above ``DOOR_HEIGHT_M``)."""
    h = ceiling_height_m
    wall_colors = [str(rng.choice(WALL_COLORS)) for _ in rooms]
    pieces: list[StructurePiece] = []
    for room in rooms:
        b = room.bounds
        floor_color = str(rng.choice(FLOOR_COLORS))
        pieces.append(
            StructurePiece(
                "floor",
                room.region_id,
                floor_color,
                _aabox((b.x0, -SLAB_THICKNESS_M, b.z0), (b.x1, 0.0, b.z1)),
            )
        )
        pieces.append(
            StructurePiece(
                "ceiling",
                room.region_id,
                CEILING_COLOR,
                _aabox((b.x0, h, b.z0), (b.x1, h + SLAB_THICKNESS_M, b.z1)),
            )
        )
    door_of = {d.wall: d for d in doorways}
    for wall in walls:
        region = wall.rooms[0]
        color = wall_colors[region]
        doorway = door_of.get(wall)
        if doorway is None:
            boxes = [_wall_box(wall.axis, wall.line, wall.lo, wall.hi, 0.0, h)]
        else:
            o_lo, o_hi = doorway.opening
            boxes = [
                _wall_box(wall.axis, wall.line, wall.lo, o_lo, 0.0, h),
                _wall_box(wall.axis, wall.line, o_hi, wall.hi, 0.0, h),
                _wall_box(wall.axis, wall.line, o_lo, o_hi, DOOR_HEIGHT_M, h),
            ]
        pieces += [StructurePiece("wall", region, color, box) for box in boxes]
    for room in rooms:
        for edge in _room_edges(room):
            for lo, hi in _exterior_intervals(edge, room.region_id, walls):
                box = _wall_box(edge.axis, edge.line, lo, hi, 0.0, h)
                pieces.append(
                    StructurePiece("wall", room.region_id, wall_colors[room.region_id], box)
                )
    return pieces


# --- per-room layout state -------------------------------------------------------------------


@dataclass(frozen=True)
class Reservation:
    """A stretch of a wall face, ``lo..hi`` along it and ``y_lo..y_hi`` high, that is taken.

    ``kind`` "floor" marks furniture standing in front of the wall: it only keeps wall-mounted
    items away. Every other kind (doorway, door, window, decor) also keeps furniture away.
    """

    lo: float
    hi: float
    y_lo: float
    y_hi: float
    kind: str

    def blocks(self, lo: float, hi: float, y_lo: float, y_hi: float, margin: float) -> bool:
        return (
            lo < self.hi + margin - 1e-6
            and self.lo - margin + 1e-6 < hi
            and y_lo < self.y_hi + margin - 1e-6
            and self.y_lo - margin + 1e-6 < y_hi
        )


@dataclass
class WallSide:
    """The inner face of one of a room's four walls.

    Attributes:
        name: the wall's outward direction: "-x", "+x", "-z" or "+z".
        face: the face's coordinate on its normal axis (x for "±x", z for "±z"), metres.
        lo, hi: the face's extent along the wall (z for "±x", x for "±z").
        exterior: along-wall intervals with no room behind the wall.
    """

    name: str
    face: float
    lo: float
    hi: float
    exterior: list[tuple[float, float]]
    reservations: list[Reservation] = field(default_factory=list)

    @property
    def inward(self) -> float:
        """+1 if the room lies towards the positive normal axis from the face."""
        return 1.0 if self.name.startswith("-") else -1.0

    @property
    def quarter_turns(self) -> int:
        """Yaw that turns an object's front (+Z) away from this wall, into the room."""
        return {"-z": 0, "-x": 1, "+z": 2, "+x": 3}[self.name]

    @property
    def runs_along_x(self) -> bool:
        return self.name.endswith("z")

    def point(self, along: float, depth: float) -> tuple[float, float]:
        """World (x, z) ``depth`` metres into the room from the face at ``along``."""
        normal = self.face + self.inward * depth
        return (along, normal) if self.runs_along_x else (normal, along)

    def along_extent(self, rect: Rect) -> tuple[float, float]:
        return (rect.x0, rect.x1) if self.runs_along_x else (rect.z0, rect.z1)

    def distance(self, rect: Rect) -> float:
        """Distance from the face to the nearest point of ``rect`` (inside the room)."""
        near = {"-x": rect.x0, "+x": rect.x1, "-z": rect.z0, "+z": rect.z1}[self.name]
        return self.inward * (near - self.face)

    def strip(self, lo: float, hi: float, depth: float) -> Rect:
        """Floor rectangle in front of the face, ``lo..hi`` along it and ``depth`` deep."""
        a = self.point(lo, 0.0)
        b = self.point(hi, depth)
        return Rect(min(a[0], b[0]), min(a[1], b[1]), max(a[0], b[0]), max(a[1], b[1]))

    def free(self, lo: float, hi: float, y_lo: float, y_hi: float, margin: float) -> bool:
        return not any(r.blocks(lo, hi, y_lo, y_hi, margin) for r in self.reservations)


@dataclass
class RoomLayout:
    """What is taken in one room while it is furnished.

    Attributes:
        keepouts: floor kept free (in front of doorways and doors, around the hub).
        obstacles: footprints of everything standing on the floor except rugs.
        entries: (x, z) points just inside each doorway that must stay reachable.
        hub: (x, z) centre that must stay reachable and free, or None.
    """

    room: Room
    sides: list[WallSide]
    keepouts: list[Rect] = field(default_factory=list)
    obstacles: list[Rect] = field(default_factory=list)
    rugs: list[Rect] = field(default_factory=list)
    entries: list[tuple[float, float]] = field(default_factory=list)
    hub: tuple[float, float] | None = None

    def side(self, name: str) -> WallSide:
        return next(s for s in self.sides if s.name == name)


def _make_layout(room: Room, walls: Sequence[SharedWall]) -> RoomLayout:
    """A room's empty layout: its four wall faces, and its hub kept free where it has one."""
    inner = room.interior
    sides = []
    for edge in _room_edges(room):
        exterior = _exterior_intervals(edge, room.region_id, walls)
        face = edge.line + (HALF_WALL_M if edge.side.startswith("-") else -HALF_WALL_M)
        lo, hi = (inner.x0, inner.x1) if edge.axis == "z" else (inner.z0, inner.z1)
        clipped = [(max(a, lo), min(b, hi)) for a, b in exterior if min(b, hi) > max(a, lo)]
        sides.append(WallSide(edge.side, face, lo, hi, clipped))
    layout = RoomLayout(room, sides)
    half = HUB_HALF_M.get(room.room_type)
    if half is not None:
        cx, cz = inner.center
        layout.hub = (_snap(cx, 0.01), _snap(cz, 0.01))
        layout.keepouts.append(Rect(cx - half, cz - half, cx + half, cz + half))
    return layout


def _doorway_side(room: Room, doorway: Doorway) -> str:
    b = room.bounds
    if doorway.wall.axis == "x":
        return "+x" if abs(b.x1 - doorway.wall.line) < 1e-6 else "-x"
    return "+z" if abs(b.z1 - doorway.wall.line) < 1e-6 else "-z"


def _add_doorway(layout: RoomLayout, doorway: Doorway, ceiling_height_m: float) -> None:
    side = layout.side(_doorway_side(layout.room, doorway))
    lo, hi = doorway.opening
    side.reservations.append(Reservation(lo, hi, 0.0, ceiling_height_m, "doorway"))
    layout.keepouts.append(side.strip(lo, hi, DOORWAY_KEEPOUT_DEPTH_M))
    layout.entries.append(side.point(doorway.center, 0.4))


def _paths_clear(layout: RoomLayout, extra: Sequence[Rect]) -> bool:
    """Whether every entry and the hub stay connected through floor at least
    ``PATH_CLEARANCE_M`` from walls and obstacles (a path >= 0.6 m wide), in a region of at
    least 0.5 m2 of such floor."""
    inner = layout.room.interior
    cols = int(math.ceil(inner.width / NAV_GRID_M - 1e-6))
    rows = int(math.ceil(inner.depth / NAV_GRID_M - 1e-6))
    blocked = np.ones((rows + 2, cols + 2), dtype=bool)
    blocked[1:-1, 1:-1] = False
    for rect in [*layout.obstacles, *extra]:
        c0 = int(math.floor((rect.x0 - inner.x0) / NAV_GRID_M + 1e-6))
        c1 = int(math.ceil((rect.x1 - inner.x0) / NAV_GRID_M - 1e-6))
        r0 = int(math.floor((rect.z0 - inner.z0) / NAV_GRID_M + 1e-6))
        r1 = int(math.ceil((rect.z1 - inner.z0) / NAV_GRID_M - 1e-6))
        blocked[max(r0, 0) + 1 : min(r1, rows) + 1, max(c0, 0) + 1 : min(c1, cols) + 1] = True
    clear = ndimage.distance_transform_edt(~blocked) * NAV_GRID_M >= PATH_CLEARANCE_M
    labels, _ = ndimage.label(clear)
    targets = list(layout.entries) + ([layout.hub] if layout.hub is not None else [])
    found = set()
    for x, z in targets:
        col = min(max(int((x - inner.x0) / NAV_GRID_M), 0), cols - 1) + 1
        row = min(max(int((z - inner.z0) / NAV_GRID_M), 0), rows - 1) + 1
        found.add(int(labels[row, col]))
    if len(found) != 1 or 0 in found:
        return False
    area = np.count_nonzero(labels == found.pop()) * NAV_GRID_M**2
    return area >= 0.5


# --- furnishing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """One object of a group placed together, in the group frame: x along the wall, z away
    from it (every member's footprint has z >= 0), object front turned by ``quarter_turns``."""

    spec: ObjectSpec
    x: float
    z: float
    quarter_turns: int = 0


def _row(specs: Sequence[ObjectSpec], gap: float = 0.02) -> list[Member]:
    """Objects side by side along a wall, backs aligned."""
    members = []
    x = 0.0
    for spec in specs:
        w, _, d = spec.dims_m
        members.append(Member(spec, x + w / 2, d / 2))
        x += w + gap
    return members


def _table_with_chairs(
    table: ObjectSpec, chairs: Sequence[ObjectSpec], both_sides: bool
) -> list[Member]:
    """A table with chairs facing it, a small gap away: split over its two long sides when
    ``both_sides``, else all in front (the table's back then goes against a wall)."""
    tw, _, td = table.dims_m
    cd = max((c.dims_m[2] for c in chairs), default=0.0)
    gap = 0.06
    back_count = len(chairs) // 2 if both_sides else 0
    table_z = cd + gap + td / 2 if back_count else td / 2
    front_z = table_z + td / 2 + gap + cd / 2
    members = [Member(table, 0.0, table_z)]
    for row, (z, turns) in enumerate(((cd / 2, 0), (front_z, 2))):
        row_chairs = chairs[:back_count] if row == 0 else chairs[back_count:]
        for k, chair in enumerate(row_chairs):
            x = 0.0 if len(row_chairs) == 1 else (k - (len(row_chairs) - 1) / 2) * tw / 2
            members.append(Member(chair, x, z, turns))
    return members


def _chairs_fit(table: ObjectSpec, per_side: int, chairs: Sequence[ObjectSpec]) -> bool:
    width = max(c.dims_m[0] for c in chairs)
    return per_side < 2 or width + 0.05 <= table.dims_m[0] / 2


@dataclass(frozen=True)
class _FloorPose:
    """A candidate spot for an object standing on the floor: its frame origin at world
    (x, 0, z), turned by ``quarter_turns``."""

    spec: ObjectSpec
    x: float
    z: float
    quarter_turns: int

    @property
    def footprint(self) -> Rect:
        return self.spec.footprint(self.x, self.z, self.quarter_turns)

    @property
    def height(self) -> float:
        return self.spec.dims_m[1]

    @property
    def is_rug(self) -> bool:
        return self.spec.category == "rug"

    def placed(self, region_id: int, side: str | None) -> PlacedObject:
        translation = np.array([self.x, 0.0, self.z])
        return PlacedObject(self.spec, region_id, translation, self.quarter_turns, side=side)


class Furnisher:
    """Places objects into room layouts, drawing everything from one generator.

    ``objects`` grows as objects are placed; indices into it are what ``supported_by`` holds.
    """

    def __init__(self, rng: np.random.Generator, ceiling_height_m: float) -> None:
        self.rng = rng
        self.ceiling_height_m = ceiling_height_m
        self.objects: list[PlacedObject] = []

    def spec(self, key: str, **kwargs: Any) -> ObjectSpec:
        return make_spec(self.rng, key, **kwargs)

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    # --- floor -------------------------------------------------------------------------------

    def _floor_ok(self, layout: RoomLayout, candidates: Sequence[_FloorPose]) -> bool:
        allowed = layout.room.interior.shrunk(WALL_GAP_M)
        solid = [c.footprint for c in candidates if not c.is_rug]
        for pose in candidates:
            fp = pose.footprint
            if not allowed.contains(fp) or any(fp.overlaps(k) for k in layout.keepouts):
                return False
            taken = layout.rugs if pose.is_rug else layout.obstacles
            if any(fp.overlaps(o) for o in taken):
                return False
            if not pose.is_rug and not self._clear_of_wall_items(layout, fp, pose.height):
                return False
        return not solid or _paths_clear(layout, solid)

    @staticmethod
    def _clear_of_wall_items(layout: RoomLayout, fp: Rect, top: float) -> bool:
        for side in layout.sides:
            if side.distance(fp) > 0.3:
                continue
            lo, hi = side.along_extent(fp)
            for r in side.reservations:
                if r.kind != "floor" and r.blocks(lo, hi, 0.0, top, 0.0):
                    return False
        return True

    def _commit(self, layout: RoomLayout, obj: PlacedObject) -> int:
        self.objects.append(obj)
        fp = obj.footprint
        if obj.is_rug:
            layout.rugs.append(fp)
        elif obj.supported_by is None and not obj.wall_mounted:
            layout.obstacles.append(fp)
        if not obj.wall_mounted:
            for side in layout.sides:
                if side.distance(fp) <= 0.3:
                    lo, hi = side.along_extent(fp)
                    top = float(obj.bbox_max[1])
                    side.reservations.append(Reservation(lo, hi, 0.0, top, "floor"))
        return len(self.objects) - 1

    @staticmethod
    def _group_poses(
        members: Sequence[Member], anchor: tuple[float, float], quarter_turns: int
    ) -> list[_FloorPose]:
        """Where a group's members stand when its frame sits at ``anchor``, turned."""
        R = _yaw_matrix(quarter_turns)
        poses = []
        for m in members:
            offset = R @ np.array([m.x, 0.0, m.z])
            turns = (quarter_turns + m.quarter_turns) % 4
            poses.append(_FloorPose(m.spec, anchor[0] + offset[0], anchor[1] + offset[2], turns))
        return poses

    def place_group(
        self,
        layout: RoomLayout,
        members: Sequence[Member],
        against_wall: bool = True,
        sides: Sequence[str] | None = None,
        corner_bias: float = 0.4,
        tries: int = 30,
    ) -> list[int] | None:
        """Place a group on the floor, its back against a wall (or anywhere when not
        ``against_wall``), clear of everything; returns the objects' indices or None."""
        allowed = layout.room.interior.shrunk(WALL_GAP_M)
        for _ in range(tries):
            if against_wall:
                names = list(sides) if sides else [s.name for s in layout.sides]
                side = layout.side(names[int(self.rng.integers(len(names)))])
                gap = WALL_GAP_M + 0.01 * int(self.rng.integers(0, 4))
                anchor0 = side.point(0.0, gap)
                turns = side.quarter_turns
                trial = self._group_poses(members, anchor0, turns)
                a0, a1 = side.along_extent(Rect.union([p.footprint for p in trial]))
                u = _draw_cm(
                    self.rng, side.lo + WALL_GAP_M - a0, side.hi - WALL_GAP_M - a1, corner_bias
                )
                if u is None:
                    continue
                poses = self._group_poses(members, side.point(u, gap), turns)
                side_name: str | None = side.name
            else:
                turns = int(self.rng.integers(4))
                trial = self._group_poses(members, (0.0, 0.0), turns)
                union = Rect.union([p.footprint for p in trial])
                x = _draw_cm(self.rng, allowed.x0 - union.x0, allowed.x1 - union.x1)
                z = _draw_cm(self.rng, allowed.z0 - union.z0, allowed.z1 - union.z1)
                if x is None or z is None:
                    continue
                poses = self._group_poses(members, (x, z), turns)
                side_name = None
            if self._floor_ok(layout, poses):
                region = layout.room.region_id
                placed = [p.placed(region, side_name) for p in poses]
                return [self._commit(layout, obj) for obj in placed]
        return None

    def place_first(
        self,
        layout: RoomLayout,
        groups: Sequence[Sequence[Member]],
        against_wall: bool = True,
        **kwargs: Any,
    ) -> list[int] | None:
        """Place the first of ``groups`` (most wanted first) that fits."""
        for members in groups:
            placed = self.place_group(layout, members, against_wall, **kwargs)
            if placed is not None:
                return placed
        return None

    def place_single(
        self, layout: RoomLayout, spec: ObjectSpec, against_wall: bool = True, **kwargs: Any
    ) -> int | None:
        placed = self.place_group(
            layout, [Member(spec, 0.0, spec.dims_m[2] / 2)], against_wall, **kwargs
        )
        return placed[0] if placed else None

    # --- on other objects --------------------------------------------------------------------

    def place_on(
        self,
        layout: RoomLayout,
        support: int | None,
        spec: ObjectSpec,
        head_strip_m: float | None = None,
        any_turn: bool = False,
        tries: int = 20,
    ) -> int | None:
        """Rest ``spec`` on the top surface of object ``support`` (a pillow near a bed's head
        end within ``head_strip_m``), clear of what already rests there."""
        if support is None:
            return None
        base = self.objects[support]
        surface, surface_y = base.surface, base.surface_y
        if surface is None or surface_y is None:
            return None
        if head_strip_m is not None:
            surface = _head_strip(base, head_strip_m)
        surface = surface.shrunk(0.02)
        siblings = [o.footprint for o in self.objects if o.supported_by == support]
        for _ in range(tries):
            turns = int(self.rng.integers(4)) if any_turn else base.quarter_turns
            probe = spec.footprint(0.0, 0.0, turns)
            x = _draw_cm(self.rng, surface.x0 - probe.x0, surface.x1 - probe.x1)
            z = _draw_cm(self.rng, surface.z0 - probe.z0, surface.z1 - probe.z1)
            if x is None or z is None:
                continue
            if any(spec.footprint(x, z, turns).overlaps(s) for s in siblings):
                continue
            obj = PlacedObject(
                spec,
                layout.room.region_id,
                np.array([x, surface_y, z]),
                turns,
                supported_by=support,
                side=base.side,
            )
            return self._commit(layout, obj)
        return None

    # --- on walls ----------------------------------------------------------------------------

    def place_on_wall(
        self,
        layout: RoomLayout,
        spec: ObjectSpec,
        y_range: tuple[float, float],
        exterior_only: bool = False,
        above: int | None = None,
        sides: Sequence[str] | None = None,
        keepout_depth_m: float = 0.0,
        tries: int = 30,
    ) -> int | None:
        """Hang ``spec`` flat on a wall face with its bottom at a height drawn from
        ``y_range`` (a window only on an exterior wall, a mirror ``above`` a given object),
        clear of doorways, other wall items and furniture in front of the wall. A door
        (``keepout_depth_m`` > 0) also keeps that much floor in front of it free."""
        w, h, d = spec.dims_m
        names = list(sides) if sides else [s.name for s in layout.sides]
        if above is not None:
            if self.objects[above].side is None:
                return None
            names = [str(self.objects[above].side)]
        for _ in range(tries):
            side = layout.side(names[int(self.rng.integers(len(names)))])
            intervals = self._wall_intervals(side, exterior_only, above)
            intervals = [(a, b) for a, b in intervals if b - a >= w - 1e-6]
            if not intervals:
                continue
            a, b = intervals[int(self.rng.integers(len(intervals)))]
            u = _draw_cm(self.rng, a + w / 2, b - w / 2)
            y0 = _draw_cm(self.rng, *y_range)
            if u is None or y0 is None:
                continue
            lo, hi = u - w / 2, u + w / 2
            if y0 + h > self.ceiling_height_m - 0.1:
                continue
            margin = 0.0 if keepout_depth_m > 0 else 0.05
            if not side.free(lo, hi, y0, y0 + h, margin):
                continue
            x, z = side.point(u, d / 2)
            obj = PlacedObject(
                spec,
                layout.room.region_id,
                np.array([x, y0, z]),
                side.quarter_turns,
                wall_mounted=True,
                side=side.name,
            )
            keepout = side.strip(lo, hi, keepout_depth_m) if keepout_depth_m > 0 else None
            if keepout is not None and not self._door_clear(layout, obj.footprint, keepout):
                continue
            side.reservations.append(Reservation(lo, hi, y0, y0 + h, spec.category))
            if keepout is not None:
                layout.keepouts.append(keepout)
                layout.obstacles.append(obj.footprint)
            return self._commit(layout, obj)
        return None

    def _wall_intervals(
        self, side: WallSide, exterior_only: bool, above: int | None
    ) -> list[tuple[float, float]]:
        span = [(side.lo + 0.1, side.hi - 0.1)]
        if exterior_only:
            span = [(a + 0.3, b - 0.3) for a, b in side.exterior]
        if above is not None:
            lo, hi = side.along_extent(self.objects[above].footprint)
            span = [(max(a, lo), min(b, hi)) for a, b in span]
        return [(a, b) for a, b in span if b > a]

    @staticmethod
    def _door_clear(layout: RoomLayout, footprint: Rect, keepout: Rect) -> bool:
        if any(footprint.overlaps(k) for k in layout.keepouts):
            return False
        return not any(keepout.overlaps(o) or footprint.overlaps(o) for o in layout.obstacles)

    # --- doors in doorways -------------------------------------------------------------------

    def place_open_door(self, layouts: Sequence[RoomLayout], doorway: Doorway) -> int | None:
        """An open door: its leaf swung flat against the wall beside the opening, on the
        side of whichever room has the wall space."""
        rooms = list(doorway.wall.rooms)
        self.rng.shuffle(rooms)
        hinges = [1.0, -1.0] if self.rng.random() < 0.5 else [-1.0, 1.0]
        spec = self.spec("door", state="open", size_m=(doorway.width_m, DOOR_LEAF_HEIGHT_M, 0.08))
        w, h, d = spec.dims_m
        o_lo, o_hi = doorway.opening
        for region, hinge in itertools.product(rooms, hinges):
            layout = layouts[region]
            side = layout.side(_doorway_side(layout.room, doorway))
            lo, hi = (o_hi, o_hi + w) if hinge > 0 else (o_lo - w, o_lo)
            if lo < side.lo + 0.02 or hi > side.hi - 0.02 or not side.free(lo, hi, 0.0, h, 0.0):
                continue
            x, z = side.point((lo + hi) / 2, d / 2)
            obj = PlacedObject(
                spec,
                region,
                np.array([x, 0.0, z]),
                side.quarter_turns,
                wall_mounted=True,
                side=side.name,
            )
            keepout = side.strip(lo, hi, 0.35)
            if not self._door_clear(layout, obj.footprint, keepout):
                continue
            side.reservations.append(Reservation(lo, hi, 0.0, h, "door"))
            layout.keepouts.append(keepout)
            layout.obstacles.append(obj.footprint)
            return self._commit(layout, obj)
        return None


def _head_strip(bed: PlacedObject, depth_m: float) -> Rect:
    """The part of a bed's mattress within ``depth_m`` of its headboard (world frame)."""
    surface = bed.surface
    assert surface is not None
    turns = bed.quarter_turns % 4
    if turns == 0:  # front +z: head at low z
        return Rect(surface.x0, surface.z0, surface.x1, min(surface.z1, surface.z0 + depth_m))
    if turns == 2:
        return Rect(surface.x0, max(surface.z0, surface.z1 - depth_m), surface.x1, surface.z1)
    if turns == 1:  # front +x: head at low x
        return Rect(surface.x0, surface.z0, min(surface.x1, surface.x0 + depth_m), surface.z1)
    return Rect(max(surface.x0, surface.x1 - depth_m), surface.z0, surface.x1, surface.z1)


# --- room programmes -------------------------------------------------------------------------

WINDOW_Y_M = (0.85, 1.0)
PICTURE_Y_M = (1.3, 1.6)


def _add_windows(f: Furnisher, layout: RoomLayout, count: int, small: bool = False) -> None:
    for _ in range(count):
        if small:
            spec = f.spec("window", size_m=(round(float(f.rng.uniform(0.5, 0.7)), 2), 0.5, 0.04))
            f.place_on_wall(layout, spec, (1.5, 1.6), exterior_only=True)
        else:
            f.place_on_wall(layout, f.spec("window"), WINDOW_Y_M, exterior_only=True)


def _add_pictures(f: Furnisher, layout: RoomLayout, count: int) -> None:
    for _ in range(count):
        f.place_on_wall(layout, f.spec("picture"), PICTURE_Y_M)


def _add_pillows(f: Furnisher, layout: RoomLayout, support: int | None, count: int) -> None:
    head = 0.5 if support is not None and f.objects[support].spec.category == "bed" else None
    for _ in range(count):
        f.place_on(layout, support, f.spec("pillow"), head_strip_m=head)


def _dining_groups(f: Furnisher) -> list[tuple[list[Member], bool]]:
    """Table-and-chairs groups, most wanted first, each with whether it stands against a
    wall: free-standing with chairs on both long sides, else against a wall with chairs in
    front, then the same with a small table, then a small table alone."""
    chair_color = str(f.rng.choice(CATALOGUE["chair"].colors))
    chairs = [f.spec("chair", color_name=chair_color) for _ in range(4)]
    groups: list[tuple[list[Member], bool]] = []
    for table in (f.spec("table"), f.spec("table", scale_range=(0.8, 0.85))):
        for count, both_sides in ((4, True), (2, True), (2, False), (1, False)):
            if _chairs_fit(table, count // 2 if both_sides else count, chairs):
                groups.append(
                    (_table_with_chairs(table, chairs[:count], both_sides), not both_sides)
                )
    groups.append(([Member(table, 0.0, table.dims_m[2] / 2)], True))
    return groups


def _furnish_kitchen(f: Furnisher, layout: RoomLayout) -> None:
    fridge, counter, oven, sink = (f.spec(k) for k in ("fridge", "counter", "oven", "kitchen sink"))
    run = [counter, oven, sink]
    f.rng.shuffle(run)
    placed_counter: int | None = None
    for group in ([fridge, *run], [*run], [counter, sink]):
        indices = f.place_group(layout, _row(group))
        if indices is not None:
            placed_counter = next(i for i in indices if f.objects[i].spec.key == "counter")
            break
    for spec in (fridge, counter, oven, sink):
        if not any(o.spec is spec for o in f.objects):
            index = f.place_single(layout, spec)
            if spec is counter and index is not None:
                placed_counter = index
    table = None
    for members, against_wall in _dining_groups(f):
        placed = f.place_group(layout, members, against_wall, tries=15)
        if placed is not None:
            table = placed[0]
            break
    if f.chance(0.5):
        f.place_single(layout, f.spec("plant"))
    _add_windows(f, layout, 1 + int(f.chance(0.3)))
    if f.chance(0.85):
        f.place_on(layout, placed_counter, f.spec("microwave"))
    for _ in range(int(f.rng.integers(1, 3))):
        support = table if table is not None and f.chance(0.6) else placed_counter
        f.place_on(layout, support, f.spec("mug"), any_turn=True)
    if f.chance(0.3):
        f.place_on(layout, placed_counter, f.spec("plant", scale_range=(0.4, 0.55)))
    _add_pictures(f, layout, int(f.chance(0.4)))


def _furnish_living_room(f: Furnisher, layout: RoomLayout) -> None:
    coffee = f.spec("coffee table")
    groups = []
    for sofa in (f.spec("sofa"), f.spec("sofa", scale_range=(0.8, 0.85))):
        coffee_z = sofa.dims_m[2] + 0.4 + coffee.dims_m[2] / 2
        sofa_member = Member(sofa, 0.0, sofa.dims_m[2] / 2)
        groups += [[sofa_member, Member(coffee, 0.0, coffee_z)], [sofa_member]]
    placed = f.place_first(layout, groups)
    sofa_index = placed[0] if placed else None
    coffee_index = placed[1] if placed and len(placed) > 1 else None
    if coffee_index is None:
        coffee_index = f.place_single(layout, coffee, against_wall=False)
    facing = None
    if sofa_index is not None and f.objects[sofa_index].side is not None:
        own = str(f.objects[sofa_index].side)
        facing = [("+" if own.startswith("-") else "-") + own[1]]
    stand = f.place_single(layout, f.spec("tv stand"), sides=facing)
    if stand is None:
        stand = f.place_single(layout, f.spec("tv stand"))
    if f.chance(0.6):
        f.place_single(layout, f.spec("armchair"), against_wall=f.chance(0.5))
    if f.chance(0.7):
        f.place_single(layout, f.spec("floor lamp"), corner_bias=0.8)
    if f.chance(0.6):
        f.place_single(layout, f.spec("bookshelf"))
    if f.chance(0.7):
        f.place_single(layout, f.spec("plant"), corner_bias=0.8)
    if f.chance(0.7):
        f.place_single(layout, f.spec("rug"), against_wall=False)
    _add_windows(f, layout, 1 + int(f.chance(0.5)))
    tv = f.place_on(layout, stand, f.spec("tv")) if f.chance(0.7) else None
    if tv is None:
        wall_tv = f.spec("wall tv")
        if f.place_on_wall(layout, wall_tv, (0.9, 1.1), above=stand) is None:
            f.place_on_wall(layout, wall_tv, (0.9, 1.1))
    _add_pillows(f, layout, sofa_index, int(f.rng.integers(1, 3)))
    if f.chance(0.4):
        f.place_on(layout, coffee_index, f.spec("mug"), any_turn=True)
    if f.chance(0.3):
        f.place_on(layout, coffee_index, f.spec("plant", scale_range=(0.4, 0.55)))
    _add_pictures(f, layout, int(f.rng.integers(1, 3)))


def _bed_groups(f: Furnisher) -> list[list[Member]]:
    """A bed with a nightstand on each side, on one side, or none; then a single bed."""
    stand_color = str(f.rng.choice(CATALOGUE["nightstand"].colors))
    left, right = (f.spec("nightstand", color_name=stand_color) for _ in range(2))
    groups = []
    for bed in (f.spec("bed"), f.spec("bed", scale_range=(0.62, 0.68))):
        bw, _, bd = bed.dims_m
        bed_member = Member(bed, 0.0, bd / 2)
        left_member = Member(left, -(bw / 2 + 0.05 + left.dims_m[0] / 2), left.dims_m[2] / 2)
        right_member = Member(right, bw / 2 + 0.05 + right.dims_m[0] / 2, right.dims_m[2] / 2)
        groups += [[bed_member, left_member, right_member], [bed_member, right_member]]
        groups.append([bed_member])
    return groups


def _furnish_bedroom(f: Furnisher, layout: RoomLayout) -> None:
    placed = f.place_first(layout, _bed_groups(f), tries=20)
    bed_index = placed[0] if placed else None
    nightstands = placed[1:] if placed else []
    if f.chance(0.8):
        f.place_single(layout, f.spec("wardrobe"))
    if f.chance(0.4):
        closet = f.spec("door", state="closed", size_m=(0.8, DOOR_LEAF_HEIGHT_M, 0.08))
        f.place_on_wall(layout, closet, (0.0, 0.0), keepout_depth_m=0.7)
    if f.chance(0.4):
        f.place_single(layout, f.spec("plant"), corner_bias=0.8)
    if f.chance(0.5):
        f.place_single(layout, f.spec("rug"), against_wall=False)
    _add_windows(f, layout, 1)
    _add_pillows(f, layout, bed_index, int(f.rng.integers(1, 3)))
    for stand in nightstands:
        if f.chance(0.7):
            f.place_on(layout, stand, f.spec("lamp"), any_turn=True)
    _add_pictures(f, layout, int(f.chance(0.7)))


def _furnish_bathroom(f: Furnisher, layout: RoomLayout) -> None:
    if f.chance(0.8):
        f.place_single(layout, f.spec("bathtub"), corner_bias=0.9)
    f.place_single(layout, f.spec("toilet"))
    sink = f.place_single(layout, f.spec("bathroom sink"))
    if f.chance(0.3):
        f.place_single(layout, f.spec("cabinet"))
    if f.chance(0.2):
        f.place_single(layout, f.spec("plant", scale_range=(0.6, 0.8)), corner_bias=0.8)
    if f.chance(0.6):
        _add_windows(f, layout, 1, small=True)
    mirror = f.spec("mirror")
    if sink is None or f.place_on_wall(layout, mirror, (1.15, 1.25), above=sink) is None:
        f.place_on_wall(layout, mirror, (1.15, 1.25))
    f.place_on_wall(layout, f.spec("towel"), (0.8, 1.0))


def _furnish_office(f: Furnisher, layout: RoomLayout) -> None:
    desk, chair = f.spec("desk"), f.spec("chair")
    dd = desk.dims_m[2]
    chair_z = dd + 0.08 + chair.dims_m[2] / 2
    groups = [
        [Member(desk, 0.0, dd / 2), Member(chair, 0.0, chair_z, 2)],
        [Member(desk, 0.0, dd / 2)],
    ]
    placed = f.place_first(layout, groups)
    desk_index = placed[0] if placed else None
    if f.chance(0.8):
        f.place_single(layout, f.spec("bookshelf"))
    if f.chance(0.6):
        f.place_single(layout, f.spec("plant"), corner_bias=0.8)
    if f.chance(0.4):
        f.place_single(layout, f.spec("cabinet"))
    _add_windows(f, layout, 1 + int(f.chance(0.3)))
    if f.chance(0.9):
        f.place_on(layout, desk_index, f.spec("laptop"))
    if f.chance(0.6):
        f.place_on(layout, desk_index, f.spec("lamp"), any_turn=True)
    if f.chance(0.3):
        f.place_on(layout, desk_index, f.spec("mug"), any_turn=True)
    _add_pictures(f, layout, int(f.chance(0.6)))


def _furnish_hallway(f: Furnisher, layout: RoomLayout) -> None:
    if f.chance(0.9):
        f.place_single(layout, f.spec("shoe rack"))
    cabinet = f.place_single(layout, f.spec("cabinet")) if f.chance(0.6) else None
    if f.chance(0.6):
        f.place_single(layout, f.spec("plant"), corner_bias=0.8)
    if f.chance(0.3):
        f.place_on(layout, cabinet, f.spec("plant", scale_range=(0.4, 0.55)))
    if f.chance(0.4):
        f.place_on_wall(layout, f.spec("mirror"), (1.0, 1.2))
    _add_pictures(f, layout, 1 + int(f.chance(0.3)))


_PROGRAMMES: dict[str, Callable[[Furnisher, RoomLayout], None]] = {
    "kitchen": _furnish_kitchen,
    "living room": _furnish_living_room,
    "bedroom": _furnish_bedroom,
    "bathroom": _furnish_bathroom,
    "office": _furnish_office,
    "hallway": _furnish_hallway,
}


def _add_front_door(f: Furnisher, layout: RoomLayout) -> None:
    """A closed front door flush on an exterior wall: it leads outside, so it blocks nothing."""
    width = round(float(f.rng.uniform(0.9, 1.0)), 2)
    spec = f.spec("door", state="closed", size_m=(width, DOOR_LEAF_HEIGHT_M, 0.08))
    f.place_on_wall(layout, spec, (0.0, 0.0), exterior_only=True, keepout_depth_m=0.8)


# --- whole scene -----------------------------------------------------------------------------


def _start_pose(
    layouts: Sequence[RoomLayout], objects: Sequence[PlacedObject], rng: np.random.Generator
) -> tuple[tuple[float, float, float], float]:
    """The hub of the living room or hallway, facing a random direction."""
    options = [lay for lay in layouts if lay.room.room_type in START_ROOM_TYPES and lay.hub]
    layout = options[int(rng.integers(len(options)))]
    assert layout.hub is not None
    x, z = layout.hub
    inner = layout.room.interior
    nearest_object = min(
        (
            o.footprint.distance_to_point(x, z)
            for o in objects
            if o.region_id == layout.room.region_id
        ),
        default=math.inf,
    )
    nearest_wall = min(x - inner.x0, inner.x1 - x, z - inner.z0, inner.z1 - z)
    if min(nearest_object, nearest_wall) < START_CLEARANCE_M:
        raise RuntimeError(f"start pose {x, z} too close to an obstacle")  # pragma: no cover
    yaw = round(float(rng.uniform(-math.pi, math.pi)), 4)
    return (x, 0.0, z), yaw


def build_scene(seed: int, num_rooms: int | None = None) -> GeneratedScene:
    """Generate a scene in memory (world frame); :func:`generate_scene` writes it."""
    rng = np.random.default_rng(seed)
    count = int(rng.integers(MIN_ROOMS, MAX_ROOMS + 1)) if num_rooms is None else num_rooms
    ceiling = round(float(rng.uniform(2.6, 2.8)), 2)
    rects = _sample_floor_plan(rng, count)
    walls = _shared_walls(rects)
    rooms = _assign_rooms(rects, walls, rng)
    doorways = [_make_doorway(w, rng) for w in _choose_doorway_walls(rooms, walls, rng)]
    structure = _build_structure(rooms, walls, doorways, ceiling, rng)
    layouts = [_make_layout(room, walls) for room in rooms]
    for doorway in doorways:
        for region in doorway.wall.rooms:
            _add_doorway(layouts[region], doorway, ceiling)
    furnisher = Furnisher(rng, ceiling)
    for doorway in doorways:
        if furnisher.chance(0.75):
            furnisher.place_open_door(layouts, doorway)
    types = [r.room_type for r in rooms]
    front = types.index("hallway") if "hallway" in types else types.index("living room")
    _add_front_door(furnisher, layouts[front])
    for layout in layouts:
        _PROGRAMMES[layout.room.room_type](furnisher, layout)
    position, yaw = _start_pose(layouts, furnisher.objects, rng)
    return GeneratedScene(
        seed=seed,
        ceiling_height_m=ceiling,
        rooms=rooms,
        doorways=doorways,
        structure=structure,
        objects=furnisher.objects,
        start_position=position,
        start_yaw_rad=yaw,
    )


# --- houses ----------------------------------------------------------------------------------

SIZES = ("apartment", "house", "split-level")
MIN_HOUSE_ROOMS, MAX_HOUSE_ROOMS = 10, 25
#: the navigable floor (m2, the start's island) a house is drawn again until it has, by the
#: estimate of :func:`_navigable_estimate_m2`; inside the advertised 120-300 m2 by a margin
#: for the difference between that estimate and the simulator's navmesh
HOUSE_NAVIGABLE_M2 = (130.0, 290.0)
HOUSE_TRIES = 40
#: decimetre ranges: hallway widths, main hallway length, depth of the rooms along it
HALLWAY_WIDTH_DM = (12, 16)
MAIN_HALLWAY_DM = (80, 170)
BAND_DEPTH_DM = (32, 55)
BAND_ROOM_DM = (25, 55)
WING_LENGTH_DM = (30, 90)
WING_ROOM_DM = (25, 50)
WING_DEPTH_DM = (30, 50)
OPEN_PLAN_WIDTH_DM = (50, 75)
#: a bathroom or closet cut from a room's corner, leaving the room L-shaped
CORNER_ROOM_DM = (20, 27)
MAX_BEDROOMS = 5
OPENING_KEEPOUT_DEPTH_M = 0.6
MIN_OPENING_ENTRY_M = 0.8
OPENING_ENTRY_DEPTH_M = 0.45
PUBLIC_ROOM_TYPES = ("hallway", "kitchen", "dining room", "living room")


@dataclass(frozen=True)
class _Slot:
    """A room beside a hallway, in whole decimetres: ``u0..u1`` along the hallway wall (x when
    ``along_x``, else z), from ``v_edge`` on that wall to ``v_far`` at its back."""

    along_x: bool
    u0: int
    u1: int
    v_edge: int
    v_far: int

    @property
    def length(self) -> int:
        return self.u1 - self.u0

    @property
    def depth(self) -> int:
        return abs(self.v_far - self.v_edge)

    def box(self, u0: int, u1: int, va: int, vb: int) -> tuple[int, int, int, int]:
        """(x0, z0, x1, z1) of the part ``u0..u1`` along and ``va..vb`` deep."""
        v0, v1 = min(va, vb), max(va, vb)
        return (u0, v0, u1, v1) if self.along_x else (v0, u0, v1, u1)


@dataclass
class _HousePlan:
    """A house's floor plan: rectangular cells grouped into rooms. No wall stands between two
    cells of one room (an L-shaped room) or of an ``open_rooms`` pair (an open plan)."""

    cells: list[Rect] = field(default_factory=list)
    cell_room: list[int] = field(default_factory=list)
    room_types: list[str] = field(default_factory=list)
    open_rooms: set[tuple[int, int]] = field(default_factory=set)
    #: room -> the cell its programme furnishes (the others are furnished as side areas)
    main_cell: dict[int, int] = field(default_factory=dict)
    #: a room cut from another's corner -> that room
    cut_from: dict[int, int] = field(default_factory=dict)

    def room(self, room_type: str) -> int:
        self.room_types.append(room_type)
        return len(self.room_types) - 1

    def cell(self, room: int, box_dm: tuple[int, int, int, int]) -> int:
        x0, z0, x1, z1 = box_dm
        self.cells.append(Rect(x0 / 10, z0 / 10, x1 / 10, z1 / 10))
        self.cell_room.append(room)
        self.main_cell.setdefault(room, len(self.cells) - 1)
        return len(self.cells) - 1

    def open(self, a: int, b: int) -> None:
        self.open_rooms.add((min(a, b), max(a, b)))

    def is_open(self, wall: SharedWall) -> bool:
        a, b = (self.cell_room[i] for i in wall.rooms)
        return a == b or (min(a, b), max(a, b)) in self.open_rooms

    @property
    def floor_area_m2(self) -> float:
        return sum(c.area for c in self.cells)


def _draw_dm(rng: np.random.Generator, lo_hi: tuple[int, int]) -> int:
    return int(rng.integers(lo_hi[0], lo_hi[1] + 1))


def _split_run(total_dm: int, lo_hi: tuple[int, int], rng: np.random.Generator) -> list[int]:
    """``total_dm`` cut into a drawn number of lengths within ``lo_hi``."""
    lo, hi = lo_hi
    fewest, most = -(-total_dm // hi), total_dm // lo
    if fewest > most:
        return []
    return _split_dm(total_dm, int(rng.integers(fewest, most + 1)), lo, hi, rng)


def _add_open_plan(
    plan: _HousePlan, hall: int, x0: int, z0: int, z1: int, rng: np.random.Generator
) -> None:
    """The kitchen, dining and living area across the main hallway's end, without walls
    between them or to the hallway: three strips, or a living room wrapped in an L around
    the kitchen."""
    x1 = x0 + _draw_dm(rng, OPEN_PLAN_WIDTH_DM)
    depth = z1 - z0
    kitchen_low = bool(rng.random() < 0.5)
    rooms: list[int] = []
    if rng.random() < 0.5:
        three = depth > 2 * BAND_ROOM_DM[1] or bool(rng.random() < 0.6)
        types = ["kitchen", "dining room", "living room"] if three else ["kitchen", "living room"]
        # The living room takes the largest share, the kitchen the smallest.
        sizes = sorted(_split_dm(depth, len(types), BAND_ROOM_DM[0], BAND_ROOM_DM[1], rng))
        if not kitchen_low:
            sizes.reverse()
            types.reverse()
        z = z0
        for room_type, size in zip(types, sizes, strict=True):
            rooms.append(plan.room(room_type))
            plan.cell(rooms[-1], (x0, z, x1, z + size))
            z += size
    else:
        strip = _draw_dm(rng, (30, 45))
        kitchen_width = int(rng.integers(BAND_ROOM_DM[0], x1 - x0 - BAND_ROOM_DM[0] + 1))
        kitchen_west = bool(rng.random() < 0.5)
        zs = z0 + strip if kitchen_low else z1 - strip
        strip_z = (z0, zs) if kitchen_low else (zs, z1)
        rest_z = (zs, z1) if kitchen_low else (z0, zs)
        xk = x0 + kitchen_width if kitchen_west else x1 - kitchen_width
        kitchen_x = (x0, xk) if kitchen_west else (xk, x1)
        arm_x = (xk, x1) if kitchen_west else (x0, xk)
        living, kitchen = plan.room("living room"), plan.room("kitchen")
        rooms = [living, kitchen]
        plan.cell(living, (x0, rest_z[0], x1, rest_z[1]))
        plan.cell(living, (arm_x[0], strip_z[0], arm_x[1], strip_z[1]))
        plan.cell(kitchen, (kitchen_x[0], strip_z[0], kitchen_x[1], strip_z[1]))
    for a, b in itertools.combinations([hall, *rooms], 2):
        plan.open(a, b)


def _hallway_slots(
    plan: _HousePlan,
    hall: int,
    length: int,
    width: int,
    depths: dict[int, int],
    branch_sides: list[int],
    rng: np.random.Generator,
) -> list[_Slot]:
    """Rooms along both sides of the main hallway (x from 0 to ``length``, z from 0 to
    ``width``) and its branches: a branch leaves the hallway at a T junction, runs through
    the rooms on that side and on between its own rooms to a dead end."""
    slots = []
    for sign in (-1, 1):
        edge = 0 if sign < 0 else width
        depth = depths[sign]
        back = edge + sign * depth
        segments = [(0, length)]
        if sign in branch_sides:
            branch_width = _draw_dm(rng, HALLWAY_WIDTH_DM)
            xb = int(rng.integers(BAND_ROOM_DM[0], length - branch_width - BAND_ROOM_DM[0] + 1))
            far = back + sign * _draw_dm(rng, WING_LENGTH_DM)
            branch = plan.room("hallway")
            plan.cell(branch, (xb, min(edge, far), xb + branch_width, max(edge, far)))
            plan.open(hall, branch)
            segments = [(0, xb), (xb + branch_width, length)]
            for wall_x, outward in ((xb, -1), (xb + branch_width, 1)):
                if rng.random() < 0.15:
                    continue
                room_depth = _draw_dm(rng, WING_DEPTH_DM)
                u = back
                for size in _split_run(abs(far - back), WING_ROOM_DM, rng):
                    u0, u1 = sorted((u, u + sign * size))
                    slots.append(_Slot(False, u0, u1, wall_x, wall_x + outward * room_depth))
                    u += sign * size
        for s0, s1 in segments:
            u = s0
            for size in _split_run(s1 - s0, BAND_ROOM_DM, rng):
                slots.append(_Slot(True, u, u + size, edge, back))
                u += size
    return slots


def _private_room_types(slots: Sequence[_Slot], rng: np.random.Generator) -> list[str]:
    """Bathrooms among the smallest rooms, maybe an office, bedrooms for the rest; beyond
    ``MAX_BEDROOMS`` bedrooms, a library (the largest of the rest) and an office."""
    count = len(slots)
    types = ["bedroom"] * count
    by_size = sorted(range(count), key=lambda i: (slots[i].length * slots[i].depth, i))
    baths = 1 + int(count >= 7) + int(count >= 12)
    for i in rng.choice(by_size[: baths + 1], size=min(baths, count), replace=False):
        types[int(i)] = "bathroom"
    rest = [i for i in range(count) if types[i] == "bedroom"]
    if len(rest) >= 3 and rng.random() < 0.75:
        types[rest.pop(int(rng.integers(len(rest))))] = "office"
    extra = len(rest) - MAX_BEDROOMS
    if extra > 0:
        order = [int(i) for i in rng.permutation(rest)][: min(extra, 2)]
        order.sort(key=lambda i: (-slots[i].length * slots[i].depth, i))
        for i, room_type in zip(order, ("library", "office"), strict=False):
            types[i] = room_type
    return types


def _add_slot_room(plan: _HousePlan, slot: _Slot, room_type: str, rng: np.random.Generator) -> None:
    """The room of a slot; a bedroom or office big enough may lose a corner to a bathroom or
    closet (beside the hallway or at the back) and become L-shaped."""
    room = plan.room(room_type)
    lo, hi = CORNER_ROOM_DM
    can_cut = slot.length - BAND_ROOM_DM[0] >= lo and slot.depth - 15 >= lo
    if room_type not in ("bedroom", "office") or not can_cut or rng.random() >= 0.55:
        plan.cell(room, slot.box(slot.u0, slot.u1, slot.v_edge, slot.v_far))
        return
    cut_u = int(rng.integers(lo, min(hi, slot.length - BAND_ROOM_DM[0]) + 1))
    cut_v = int(rng.integers(lo, min(hi, slot.depth - 15) + 1))
    sign = 1 if slot.v_far > slot.v_edge else -1
    at_u1, beside_hall = bool(rng.random() < 0.5), bool(rng.random() < 0.5)
    main_u = (slot.u0, slot.u1 - cut_u) if at_u1 else (slot.u0 + cut_u, slot.u1)
    corner_u = (slot.u1 - cut_u, slot.u1) if at_u1 else (slot.u0, slot.u0 + cut_u)
    split_v = slot.v_edge + sign * cut_v if beside_hall else slot.v_far - sign * cut_v
    corner_v = (slot.v_edge, split_v) if beside_hall else (split_v, slot.v_far)
    arm_v = (split_v, slot.v_far) if beside_hall else (slot.v_edge, split_v)
    plan.cell(room, slot.box(*main_u, slot.v_edge, slot.v_far))
    plan.cell(room, slot.box(*corner_u, *arm_v))
    corner = plan.room("bathroom" if rng.random() < 0.6 else "closet")
    plan.cell(corner, slot.box(*corner_u, *corner_v))
    plan.cut_from[corner] = room


def _draw_house_plan(rng: np.random.Generator) -> _HousePlan:
    """A main hallway with rooms on both sides, one or two branch hallways with their own
    rooms, and an open-plan kitchen, dining and living area across its end."""
    plan = _HousePlan()
    width = _draw_dm(rng, HALLWAY_WIDTH_DM)
    length = _draw_dm(rng, MAIN_HALLWAY_DM)
    depths = {-1: _draw_dm(rng, BAND_DEPTH_DM), 1: _draw_dm(rng, BAND_DEPTH_DM)}
    hall = plan.room("hallway")
    plan.cell(hall, (0, 0, length, width))
    _add_open_plan(plan, hall, length, -depths[-1], width + depths[1], rng)
    first = -1 if rng.random() < 0.5 else 1
    branch_sides = [first] + ([-first] if rng.random() < 0.45 else [])
    slots = _hallway_slots(plan, hall, length, width, depths, branch_sides, rng)
    for slot, room_type in zip(slots, _private_room_types(slots, rng), strict=True):
        _add_slot_room(plan, slot, room_type, rng)
    for a, b in itertools.combinations(plan.cells, 2):
        if a.overlaps(b):
            raise RuntimeError(f"house cells {a} and {b} overlap")  # pragma: no cover
    return plan


def _sample_house_plan(rng: np.random.Generator, num_rooms: int | None) -> _HousePlan:
    """A plan with 10 to 25 rooms (``num_rooms`` where given) and a floor area likely to give
    the navigable area the house promises."""
    for _ in range(5000):
        plan = _draw_house_plan(rng)
        count = len(plan.room_types)
        wanted = num_rooms is None and MIN_HOUSE_ROOMS <= count <= MAX_HOUSE_ROOMS
        if (wanted or count == num_rooms) and 200.0 <= plan.floor_area_m2 <= 430.0:
            return plan
    raise RuntimeError(f"no house plan with {num_rooms} rooms found")  # pragma: no cover


def _room_names(types: Sequence[str]) -> list[str]:
    """ "bedroom", "bedroom 2", ...: a number from the second room of a type on."""
    seen: dict[str, int] = {}
    names = []
    for room_type in types:
        seen[room_type] = seen.get(room_type, 0) + 1
        names.append(room_type if seen[room_type] == 1 else f"{room_type} {seen[room_type]}")
    return names


def _reached_rooms(plan: _HousePlan, doorway_walls: Sequence[SharedWall]) -> set[int]:
    """Rooms reached from the main hallway (room 0) through doorways and open boundaries."""
    links = [tuple(sorted(plan.cell_room[c] for c in w.rooms)) for w in doorway_walls]
    links += list(plan.open_rooms)
    reached = {0}
    frontier = [0]
    while frontier:
        room = frontier.pop()
        for a, b in links:
            other = b if a == room else a if b == room else None
            if other is not None and other not in reached:
                reached.add(other)
                frontier.append(other)
    return reached


def _house_doorway_walls(
    plan: _HousePlan, walls: Sequence[SharedWall], rng: np.random.Generator
) -> list[SharedWall]:
    """One doorway from each closed-off room to a hallway (a bathroom or closet cut from a
    room's corner opens into that room instead, half the time), then more between a reached
    and an unreached room, through public rooms where possible, until every room is reached."""
    candidates = [w for w in walls if w.fits_doorway and not plan.is_open(w)]
    room_of, types = plan.cell_room, plan.room_types

    def walls_to(room: int, wanted: set[int]) -> list[SharedWall]:
        return [
            w
            for w in candidates
            if any(room_of[a] == room and room_of[b] in wanted for a, b in (w.rooms, w.rooms[::-1]))
        ]

    hallways = {r for r, t in enumerate(types) if t == "hallway"}
    chosen: list[SharedWall] = []
    for room, room_type in enumerate(types):
        if room_type in PUBLIC_ROOM_TYPES:
            continue
        to_hall = walls_to(room, hallways)
        parent = plan.cut_from.get(room)
        to_parent = [] if parent is None else walls_to(room, {parent})
        pool = to_parent if to_parent and (not to_hall or rng.random() < 0.5) else to_hall
        if pool:
            chosen.append(pool[int(rng.integers(len(pool)))])
    reached = _reached_rooms(plan, chosen)
    while len(reached) < len(types):
        crossing = [
            w
            for w in candidates
            if (room_of[w.rooms[0]] in reached) != (room_of[w.rooms[1]] in reached)
        ]
        public = [
            w for w in crossing if any(types[room_of[c]] in PUBLIC_ROOM_TYPES for c in w.rooms)
        ]
        pool = public or crossing
        if not pool:
            raise RuntimeError("a house room has no wall for a doorway")  # pragma: no cover
        chosen.append(pool[int(rng.integers(len(pool)))])
        reached = _reached_rooms(plan, chosen)
    return chosen


def _build_house_structure(
    plan: _HousePlan,
    walls: Sequence[SharedWall],
    doorways: Sequence[Doorway],
    ceiling_height_m: float,
    rng: np.random.Generator,
) -> list[StructurePiece]:
    """Floor and ceiling slabs per cell, exterior walls, and walls with doorways cut out
    between cells, except where the plan leaves a boundary open. Colours are per room."""
    h = ceiling_height_m
    rooms = range(len(plan.room_types))
    wall_colors = [str(rng.choice(WALL_COLORS)) for _ in rooms]
    floor_colors = [str(rng.choice(FLOOR_COLORS)) for _ in rooms]
    pieces: list[StructurePiece] = []
    for cell, room in zip(plan.cells, plan.cell_room, strict=True):
        b = cell
        pieces.append(
            StructurePiece(
                "floor",
                room,
                floor_colors[room],
                _aabox((b.x0, -SLAB_THICKNESS_M, b.z0), (b.x1, 0.0, b.z1)),
            )
        )
        pieces.append(
            StructurePiece(
                "ceiling",
                room,
                CEILING_COLOR,
                _aabox((b.x0, h, b.z0), (b.x1, h + SLAB_THICKNESS_M, b.z1)),
            )
        )
    door_of = {d.wall: d for d in doorways}
    for wall in walls:
        if plan.is_open(wall):
            continue
        room = plan.cell_room[wall.rooms[0]]
        doorway = door_of.get(wall)
        if doorway is None:
            boxes = [_wall_box(wall.axis, wall.line, wall.lo, wall.hi, 0.0, h)]
        else:
            o_lo, o_hi = doorway.opening
            boxes = [
                _wall_box(wall.axis, wall.line, wall.lo, o_lo, 0.0, h),
                _wall_box(wall.axis, wall.line, o_hi, wall.hi, 0.0, h),
                _wall_box(wall.axis, wall.line, o_lo, o_hi, DOOR_HEIGHT_M, h),
            ]
        pieces += [StructurePiece("wall", room, wall_colors[room], box) for box in boxes]
    for index, (cell, room) in enumerate(zip(plan.cells, plan.cell_room, strict=True)):
        for edge in _room_edges(Room(index, "", "", cell)):
            for lo, hi in _exterior_intervals(edge, index, walls):
                box = _wall_box(edge.axis, edge.line, lo, hi, 0.0, h)
                pieces.append(StructurePiece("wall", room, wall_colors[room], box))
    return pieces


def _wall_side(room: Room, wall: SharedWall) -> str:
    b = room.bounds
    if wall.axis == "x":
        return "+x" if abs(b.x1 - wall.line) < 1e-6 else "-x"
    return "+z" if abs(b.z1 - wall.line) < 1e-6 else "-z"


def _add_opening(layout: RoomLayout, wall: SharedWall, ceiling_height_m: float) -> None:
    """An open boundary: kept clear like a wide doorway, so furniture stands neither in front
    of it nor against the wall that is not there."""
    side = layout.side(_wall_side(layout.room, wall))
    lo, hi = max(wall.lo, side.lo), min(wall.hi, side.hi)
    side.reservations.append(Reservation(wall.lo, wall.hi, 0.0, ceiling_height_m, "doorway"))
    if hi > lo:
        layout.keepouts.append(side.strip(lo, hi, OPENING_KEEPOUT_DEPTH_M))
    # A sliver (where a hallway's end meets two rooms) is no way in; an entry must keep the
    # path clearance from the cell's edges, which _paths_clear treats as walls.
    if hi - lo >= MIN_OPENING_ENTRY_M:
        margin = OPENING_ENTRY_DEPTH_M
        along = min(max((lo + hi) / 2, side.lo + margin), side.hi - margin)
        layout.entries.append(side.point(along, margin))


def _furnish_dining_room(f: Furnisher, layout: RoomLayout) -> None:
    table = None
    for members, against_wall in _dining_groups(f):
        placed = f.place_group(layout, members, against_wall, tries=15)
        if placed is not None:
            table = placed[0]
            break
    if f.chance(0.6):
        f.place_single(layout, f.spec("cabinet"))
    if f.chance(0.5):
        f.place_single(layout, f.spec("plant"), corner_bias=0.8)
    if f.chance(0.4):
        f.place_single(layout, f.spec("floor lamp"), corner_bias=0.8)
    _add_windows(f, layout, 1)
    if f.chance(0.5):
        f.place_on(layout, table, f.spec("mug"), any_turn=True)
    if f.chance(0.3):
        f.place_on(layout, table, f.spec("plant", scale_range=(0.4, 0.55)))
    _add_pictures(f, layout, 1 + int(f.chance(0.4)))


def _furnish_library(f: Furnisher, layout: RoomLayout) -> None:
    """Shelves, a reading chair and its lamp; no sofa or tv, so questions about the living
    room's uses stay about the living room alone."""
    for _ in range(2 + int(f.chance(0.5))):
        f.place_single(layout, f.spec("bookshelf"))
    f.place_single(layout, f.spec("armchair"), against_wall=f.chance(0.5))
    if f.chance(0.7):
        f.place_single(layout, f.spec("floor lamp"), corner_bias=0.8)
    if f.chance(0.5):
        f.place_single(layout, f.spec("rug"), against_wall=False)
    if f.chance(0.5):
        f.place_single(layout, f.spec("plant"), corner_bias=0.8)
    _add_windows(f, layout, 1)
    _add_pictures(f, layout, int(f.chance(0.6)))


def _furnish_closet(f: Furnisher, layout: RoomLayout) -> None:
    if f.place_single(layout, f.spec("wardrobe")) is None:
        f.place_single(layout, f.spec("cabinet"))
    if f.chance(0.6):
        f.place_single(layout, f.spec("shoe rack"))
    if f.chance(0.3):
        f.place_on_wall(layout, f.spec("mirror"), (1.0, 1.2))


def _furnish_corridor(f: Furnisher, layout: RoomLayout) -> None:
    """A hallway other than the one with the front door: a few things along its walls."""
    if f.chance(0.4):
        f.place_single(layout, f.spec("plant"), corner_bias=0.8)
    if f.chance(0.3):
        f.place_single(layout, f.spec("cabinet"))
    if f.chance(0.2):
        f.place_single(layout, f.spec("bookshelf"))
    _add_pictures(f, layout, 1 + int(f.chance(0.5)))


def _furnish_side_area(f: Furnisher, layout: RoomLayout) -> None:
    """The second leg of an L-shaped room: a dining corner of a living room, a desk or a
    wardrobe in a bedroom, an armchair or shelves elsewhere."""
    room_type = layout.room.room_type
    if room_type == "living room" and f.chance(0.6):
        for members, against_wall in _dining_groups(f):
            if f.place_group(layout, members, against_wall, tries=15) is not None:
                break
    elif room_type in ("bedroom", "office") and f.chance(0.5):
        desk, chair = f.spec("desk"), f.spec("chair")
        chair_z = desk.dims_m[2] + 0.08 + chair.dims_m[2] / 2
        groups = [
            [Member(desk, 0.0, desk.dims_m[2] / 2), Member(chair, 0.0, chair_z, 2)],
            [Member(desk, 0.0, desk.dims_m[2] / 2)],
        ]
        placed = f.place_first(layout, groups)
        if placed and f.chance(0.6):
            f.place_on(layout, placed[0], f.spec("lamp"), any_turn=True)
    elif room_type == "bedroom":
        f.place_single(layout, f.spec("wardrobe"))
    else:
        f.place_single(layout, f.spec("armchair" if f.chance(0.5) else "bookshelf"))
    if f.chance(0.5):
        f.place_single(layout, f.spec("plant"), corner_bias=0.8)
    _add_windows(f, layout, int(f.chance(0.7)))
    _add_pictures(f, layout, int(f.chance(0.5)))


_HOUSE_PROGRAMMES: dict[str, Callable[[Furnisher, RoomLayout], None]] = {
    **_PROGRAMMES,
    "dining room": _furnish_dining_room,
    "library": _furnish_library,
    "closet": _furnish_closet,
}


def _navigable_estimate_m2(
    cells: Sequence[Rect],
    structure: Sequence[StructurePiece],
    objects: Sequence[PlacedObject],
    start_xz: tuple[float, float],
) -> float:
    """The start island's navigable floor (m2) on a ``NAV_GRID_M`` grid, for habitat's default
    agent (0.1 m radius, 1.5 m tall, 0.2 m climb): floor minus the footprints of walls and of
    what an agent can neither step over nor walk under, eroded by the radius. Close to the
    navmesh's island, so a house can be drawn again before it is written."""
    spec = NavSpec()
    bounds = Rect.union(cells)
    cols = int(math.ceil(bounds.width / NAV_GRID_M))
    rows = int(math.ceil(bounds.depth / NAV_GRID_M))
    xs = bounds.x0 + (np.arange(cols) + 0.5) * NAV_GRID_M
    zs = bounds.z0 + (np.arange(rows) + 0.5) * NAV_GRID_M
    free = np.zeros((rows, cols), dtype=bool)

    def fill(x0: float, z0: float, x1: float, z1: float, value: bool) -> None:
        r0, r1 = np.searchsorted(zs, [z0, z1])
        c0, c1 = np.searchsorted(xs, [x0, x1])
        free[r0:r1, c0:c1] = value

    for cell in cells:
        fill(cell.x0, cell.z0, cell.x1, cell.z1, True)
    boxes = [p.box.aabb() for p in structure if p.category == "wall"]
    boxes += [(o.bbox_min, o.bbox_max) for o in objects]
    for lo, hi in boxes:
        if lo[1] < spec.agent_height_m and hi[1] > spec.max_climb_m:
            fill(lo[0], lo[2], hi[0], hi[2], False)
    distance = ndimage.distance_transform_edt(free) * NAV_GRID_M - NAV_GRID_M / 2
    labels, _ = ndimage.label(distance >= spec.agent_radius_m)
    row = int(np.clip(np.searchsorted(zs, start_xz[1]), 0, rows - 1))
    col = int(np.clip(np.searchsorted(xs, start_xz[0]), 0, cols - 1))
    island = labels[row, col]
    return float(np.count_nonzero(labels == island) * NAV_GRID_M**2) if island else 0.0


def _furnished_house(
    seed: int, plan: _HousePlan, rng: np.random.Generator
) -> tuple[GeneratedScene, float]:
    """Walls, doorways and furniture for a plan; returns the scene and its navigable
    estimate. Built per cell, then cells are mapped to rooms for the scene."""
    ceiling = round(float(rng.uniform(2.6, 2.8)), 2)
    room_of = plan.cell_room
    walls = _shared_walls(plan.cells)
    doorways = [_make_doorway(w, rng) for w in _house_doorway_walls(plan, walls, rng)]
    structure = _build_house_structure(plan, walls, doorways, ceiling, rng)
    names = _room_names(plan.room_types)
    cell_rooms = [
        Room(i, names[room_of[i]], plan.room_types[room_of[i]], cell)
        for i, cell in enumerate(plan.cells)
    ]
    layouts = [_make_layout(room, walls) for room in cell_rooms]
    for i, layout in enumerate(layouts):
        if plan.main_cell[room_of[i]] != i:  # side areas of L-shaped rooms keep no hub
            layout.hub = None
            layout.keepouts.clear()
    for doorway in doorways:
        for cell in doorway.wall.rooms:
            _add_doorway(layouts[cell], doorway, ceiling)
    openings = [w for w in walls if plan.is_open(w)]
    for wall in openings:
        for cell in wall.rooms:
            _add_opening(layouts[cell], wall, ceiling)
    furnisher = Furnisher(rng, ceiling)
    for doorway in doorways:
        if furnisher.chance(0.75):
            furnisher.place_open_door(layouts, doorway)
    front_rooms = [plan.main_cell[0]] + [
        plan.main_cell[r] for r, t in enumerate(plan.room_types) if t == "living room"
    ]
    for cell in front_rooms:
        before = len(furnisher.objects)
        _add_front_door(furnisher, layouts[cell])
        if len(furnisher.objects) > before:
            break
    for i, layout in enumerate(layouts):
        room = room_of[i]
        if plan.main_cell[room] != i:
            _furnish_side_area(furnisher, layout)
        elif layout.room.room_type == "hallway" and room != 0:
            _furnish_corridor(furnisher, layout)
        else:
            _HOUSE_PROGRAMMES[layout.room.room_type](furnisher, layout)
    position, yaw = _start_pose(layouts, furnisher.objects, rng)
    estimate = _navigable_estimate_m2(
        plan.cells, structure, furnisher.objects, (position[0], position[2])
    )
    for obj in furnisher.objects:
        obj.region_id = room_of[obj.region_id]

    def to_rooms(wall: SharedWall) -> SharedWall:
        a, b = (room_of[c] for c in wall.rooms)
        return SharedWall((a, b), wall.axis, wall.line, wall.lo, wall.hi)

    parts = [
        [c for c, r in zip(plan.cells, room_of, strict=True) if r == room]
        for room in range(len(names))
    ]
    rooms = [
        Room(room, names[room], plan.room_types[room], Rect.union(parts[room]))
        for room in range(len(names))
    ]
    scene = GeneratedScene(
        seed=seed,
        ceiling_height_m=ceiling,
        rooms=rooms,
        doorways=[Doorway(to_rooms(d.wall), d.center, d.width_m) for d in doorways],
        structure=structure,
        objects=furnisher.objects,
        start_position=position,
        start_yaw_rad=yaw,
        size="house",
        room_parts=parts,
        openings=[to_rooms(w) for w in openings if room_of[w.rooms[0]] != room_of[w.rooms[1]]],
    )
    return scene, estimate


def build_house(seed: int, num_rooms: int | None = None) -> GeneratedScene:
    """Generate a house in memory (world frame); :func:`generate_scene` writes it.

    A house is drawn again (from the same generator) until its navigable floor, as estimated
    here, lies in ``HOUSE_NAVIGABLE_M2``.
    """
    rng = np.random.default_rng(seed)
    estimates = []
    for _ in range(HOUSE_TRIES):
        plan = _sample_house_plan(rng, num_rooms)
        scene, estimate = _furnished_house(seed, plan, rng)
        if HOUSE_NAVIGABLE_M2[0] <= estimate <= HOUSE_NAVIGABLE_M2[1]:
            return scene
        estimates.append(round(estimate))
    raise RuntimeError(  # pragma: no cover
        f"no house with {HOUSE_NAVIGABLE_M2} m2 of navigable floor for seed {seed}: {estimates}"
    )


# --- split-level houses ----------------------------------------------------------------------

#: how much higher the upper level's floor is than the lower one's (m)
SPLIT_RISE_M = (1.0, 1.4)
#: the highest step between stair treads (below habitat's default 0.2 m climb)
STAIR_MAX_STEP_M = 0.17
STAIR_RUN_M = 0.28
STAIR_LANDING_M = 1.0
#: stair hall width between wall centre lines, and the openings into it
STAIR_HALL_WIDTH_M = 1.6
STAIR_OPENING_M = 1.0
#: furniture within this depth of a stair hall opening is left out
STAIR_KEEPOUT_DEPTH_M = 1.0
UPPER_ROOMS = (3, 4)
STAIR_COLORS = ("brown", "beige", "gray")


def _shifted_box(box: Box, offset: np.ndarray) -> Box:
    return Box(box.center + offset, box.half_extents, box.rotation)


def _shifted_rect(rect: Rect, dx: float, dz: float) -> Rect:
    return Rect(rect.x0 + dx, rect.z0 + dz, rect.x1 + dx, rect.z1 + dz)


def _shifted_wall(wall: SharedWall, dx: float, dz: float, region_offset: int) -> SharedWall:
    along = dz if wall.axis == "x" else dx
    across = dx if wall.axis == "x" else dz
    rooms = (wall.rooms[0] + region_offset, wall.rooms[1] + region_offset)
    return SharedWall(rooms, wall.axis, wall.line + across, wall.lo + along, wall.hi + along)


def _opening_room(rooms: Sequence[Room], side: str, rng: np.random.Generator) -> tuple[Room, float]:
    """A room on the apartment's outer ``side`` ("+x" or "-x"), public rooms first, and the
    z of an opening's centre on that wall clear of its corners."""
    edge = max(r.bounds.x1 for r in rooms) if side == "+x" else min(r.bounds.x0 for r in rooms)
    on_edge = [
        r for r in rooms if abs((r.bounds.x1 if side == "+x" else r.bounds.x0) - edge) < 1e-6
    ]
    public = [r for r in on_edge if r.room_type in PUBLIC_ROOM_TYPES]
    options = public or on_edge
    room = options[int(rng.integers(len(options)))]
    margin = max(STAIR_HALL_WIDTH_M, STAIR_OPENING_M + 2 * DOORWAY_CORNER_MARGIN_M) / 2
    lo, hi = room.bounds.z0 + margin, room.bounds.z1 - margin
    return room, _snap(float(rng.uniform(lo, hi)) if hi > lo else (lo + hi) / 2)


def _cut_opening(
    pieces: Sequence[StructurePiece], x: float, z_lo: float, z_hi: float, floor_y: float
) -> list[StructurePiece]:
    """Walls on the line ``x`` with a doorway cut from ``z_lo`` to ``z_hi``: the side pieces
    and a lintel above ``floor_y + DOOR_HEIGHT_M``."""
    out: list[StructurePiece] = []
    for piece in pieces:
        lo, hi = piece.box.aabb()
        on_line = piece.category == "wall" and lo[0] < x < hi[0] and hi[0] - lo[0] < 0.2
        if not on_line or hi[2] <= z_lo + 1e-6 or lo[2] >= z_hi - 1e-6:
            out.append(piece)
            continue
        for a, b in _subtract_intervals((float(lo[2]), float(hi[2])), [(z_lo, z_hi)]):
            box = _aabox((lo[0], lo[1], a), (hi[0], hi[1], b))
            out.append(StructurePiece(piece.category, piece.region_id, piece.color_name, box))
        top = floor_y + DOOR_HEIGHT_M
        if hi[1] > top:
            box = _aabox((lo[0], top, max(z_lo, lo[2])), (hi[0], hi[1], min(z_hi, hi[2])))
            out.append(StructurePiece(piece.category, piece.region_id, piece.color_name, box))
    return out


def _without_objects_in(
    objects: Sequence[PlacedObject], keepouts: Sequence[Rect]
) -> list[PlacedObject]:
    """The objects clear of every keepout, and clear of what rests on a removed one; the
    ``supported_by`` indices renumbered."""
    removed: set[int] = set()
    for i, obj in enumerate(objects):
        blocked = any(obj.footprint.overlaps(k) for k in keepouts)
        if blocked or (obj.supported_by is not None and obj.supported_by in removed):
            removed.add(i)
    new_index = {}
    out: list[PlacedObject] = []
    for i, obj in enumerate(objects):
        if i in removed:
            continue
        new_index[i] = len(out)
        support = None if obj.supported_by is None else new_index[obj.supported_by]
        out.append(
            PlacedObject(
                obj.spec,
                obj.region_id,
                obj.translation.copy(),
                obj.quarter_turns,
                support,
                obj.wall_mounted,
                obj.side,
            )
        )
    return out


def _stair_hall(
    region: int, x0: float, zc: float, rise_m: float, ceiling_m: float, rng: np.random.Generator
) -> tuple[list[StructurePiece], float]:
    """A closed stair hall from ``x0`` along +x: a lower landing at y = 0, treads rising by
    at most ``STAIR_MAX_STEP_M``, an upper landing at ``rise_m``, walls on both long sides up
    to ``rise_m + ceiling_m``. Returns its pieces and its far end's x."""
    steps = int(math.ceil(rise_m / STAIR_MAX_STEP_M))
    step = rise_m / steps
    half = STAIR_HALL_WIDTH_M / 2
    z0, z1 = zc - half, zc + half
    x1 = x0 + 2 * STAIR_LANDING_M + (steps - 1) * STAIR_RUN_M
    top = rise_m + ceiling_m
    floor_color = str(rng.choice(FLOOR_COLORS))
    stair_color = str(rng.choice(STAIR_COLORS))
    wall_color = str(rng.choice(WALL_COLORS))
    pieces = [
        StructurePiece(
            "floor", region, floor_color, _aabox((x0, -SLAB_THICKNESS_M, z0), (x1, 0.0, z1))
        ),
        StructurePiece(
            "ceiling",
            region,
            CEILING_COLOR,
            _aabox((x0, top, z0), (x1, top + SLAB_THICKNESS_M, z1)),
        ),
    ]
    start = x0 + STAIR_LANDING_M
    for k in range(1, steps):
        box = _aabox(
            (start + (k - 1) * STAIR_RUN_M, 0.0, z0), (start + k * STAIR_RUN_M, k * step, z1)
        )
        pieces.append(StructurePiece("stairs", region, stair_color, box))
    landing = _aabox((start + (steps - 1) * STAIR_RUN_M, 0.0, z0), (x1, rise_m, z1))
    pieces.append(StructurePiece("stairs", region, stair_color, landing))
    for z in (z0, z1):
        pieces.append(
            StructurePiece("wall", region, wall_color, _wall_box("z", z, x0, x1, 0.0, top))
        )
    return pieces, x1


def build_split_level(seed: int, num_rooms: int | None = None) -> GeneratedScene:
    """Generate a split-level house in memory (world frame): an apartment at y = 0 (``num_rooms``
    rooms, or drawn), a stair hall along its +x side, and a smaller apartment beyond the hall
    with its floor ``SPLIT_RISE_M`` higher, on a solid base. The two levels do not overlap in
    plan. Furniture in front of the hall's two openings is left out; the start is on the
    lower level."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2,)))
    lower = build_scene(seed, num_rooms)
    upper_seed = int(np.random.SeedSequence(seed, spawn_key=(3,)).generate_state(1)[0])
    upper = build_scene(upper_seed, int(rng.integers(UPPER_ROOMS[0], UPPER_ROOMS[1] + 1)))
    rise = round(float(rng.uniform(*SPLIT_RISE_M)), 2)
    room_a, zc = _opening_room(lower.rooms, "+x", rng)
    room_b, zc_b = _opening_room(upper.rooms, "-x", rng)
    hall_id = len(lower.rooms)
    offset_id = hall_id + 1
    x_a = room_a.bounds.x1
    hall, x_b = _stair_hall(hall_id, x_a, zc, rise, upper.ceiling_height_m, rng)
    dx = x_b - room_b.bounds.x0
    dz = zc - zc_b
    shift = np.array([dx, rise, dz])
    half_open = STAIR_OPENING_M / 2
    # The upper apartment stands on a solid base: its floor slabs reach down to the ground.
    upper_structure = []
    for piece in upper.structure:
        box = _shifted_box(piece.box, shift)
        if piece.category == "floor":
            lo, hi = box.aabb()
            box = _aabox((float(lo[0]), -SLAB_THICKNESS_M, float(lo[2])), hi.tolist())
        upper_structure.append(
            StructurePiece(piece.category, piece.region_id + offset_id, piece.color_name, box)
        )
    lower_structure = _cut_opening(lower.structure, x_a, zc - half_open, zc + half_open, 0.0)
    upper_structure = _cut_opening(upper_structure, x_b, zc - half_open, zc + half_open, rise)
    # Close the lower apartment's wall above its ceiling, where the hall is taller.
    above = _wall_box(
        "x",
        x_a,
        zc - STAIR_HALL_WIDTH_M / 2,
        zc + STAIR_HALL_WIDTH_M / 2,
        lower.ceiling_height_m,
        rise + upper.ceiling_height_m,
    )
    hall.append(StructurePiece("wall", hall_id, hall[-1].color_name, above))
    upper_objects = [
        PlacedObject(
            o.spec,
            o.region_id + offset_id,
            o.translation + shift,
            o.quarter_turns,
            None if o.supported_by is None else o.supported_by + len(lower.objects),
            o.wall_mounted,
            o.side,
        )
        for o in upper.objects
    ]
    keep_a = Rect(
        x_a - STAIR_KEEPOUT_DEPTH_M, zc - half_open - 0.1, x_a + 0.1, zc + half_open + 0.1
    )
    keep_b = Rect(
        x_b - 0.1, zc - half_open - 0.1, x_b + STAIR_KEEPOUT_DEPTH_M, zc + half_open + 0.1
    )
    objects = _without_objects_in([*lower.objects, *upper_objects], [keep_a, keep_b])
    hall_rect = Rect(x_a, zc - STAIR_HALL_WIDTH_M / 2, x_b, zc + STAIR_HALL_WIDTH_M / 2)
    types = [r.room_type for r in lower.rooms] + ["staircase"] + [r.room_type for r in upper.rooms]
    names = _room_names(types)
    bounds = (
        [r.bounds for r in lower.rooms]
        + [hall_rect]
        + [_shifted_rect(r.bounds, dx, dz) for r in upper.rooms]
    )
    rooms = [Room(i, names[i], types[i], b) for i, b in enumerate(bounds)]
    hall_doors = [
        Doorway(
            SharedWall((room_a.region_id, hall_id), "x", x_a, hall_rect.z0, hall_rect.z1),
            zc,
            STAIR_OPENING_M,
        ),
        Doorway(
            SharedWall(
                (room_b.region_id + offset_id, hall_id), "x", x_b, hall_rect.z0, hall_rect.z1
            ),
            zc,
            STAIR_OPENING_M,
        ),
    ]
    upper_doors = [
        Doorway(
            _shifted_wall(d.wall, dx, dz, offset_id),
            d.center + (dz if d.wall.axis == "x" else dx),
            d.width_m,
        )
        for d in upper.doorways
    ]
    return GeneratedScene(
        seed=seed,
        ceiling_height_m=lower.ceiling_height_m,
        rooms=rooms,
        doorways=[*lower.doorways, *hall_doors, *upper_doors],
        structure=[*lower_structure, *hall, *upper_structure],
        objects=objects,
        start_position=lower.start_position,
        start_yaw_rad=lower.start_yaw_rad,
        size="split-level",
        room_parts=[[b] for b in bounds],
        room_floor_y=[0.0] * offset_id + [rise] * len(upper.rooms),
    )


# --- meshes ----------------------------------------------------------------------------------


def _unit_box_faces() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Corner signs (24, 3) and normals (24, 3) of a box's faces, 4 vertices per face in
    counter-clockwise order seen from outside, and the (36,) triangle indices."""
    signs: list[list[float]] = []
    normals: list[list[float]] = []
    indices: list[int] = []
    square = ((-1.0, -1.0), (1.0, -1.0), (1.0, 1.0), (-1.0, 1.0))
    for axis in range(3):
        u_axis, v_axis = (axis + 1) % 3, (axis + 2) % 3  # e_u x e_v = e_axis
        for sign in (1.0, -1.0):
            corners = square if sign > 0 else square[::-1]
            base = len(signs)
            for u, v in corners:
                corner = [0.0, 0.0, 0.0]
                corner[axis], corner[u_axis], corner[v_axis] = sign, u, v
                signs.append(corner)
                normal = [0.0, 0.0, 0.0]
                normal[axis] = sign
                normals.append(normal)
            indices += [base, base + 1, base + 2, base, base + 2, base + 3]
    return np.array(signs), np.array(normals), np.array(indices, dtype=np.int64)


_FACE_SIGNS, _FACE_NORMALS, _FACE_INDICES = _unit_box_faces()


def boxes_to_triangles(boxes: Sequence[Box]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat-shaded triangles of boxes, 24 vertices and 12 triangles per box, in box order.

    Returns:
        positions (V, 3) float64 and normals (V, 3) float64 in the boxes' frame, and indices
        (T * 3,) int64, counter-clockwise seen from outside.
    """
    centers = np.array([b.center for b in boxes])
    halves = np.array([b.half_extents for b in boxes])
    rotations = np.array([b.rotation for b in boxes])
    local = _FACE_SIGNS[None, :, :] * halves[:, None, :]
    positions = centers[:, None, :] + np.einsum("nij,nkj->nki", rotations, local)
    normals = np.einsum("nij,kj->nki", rotations, _FACE_NORMALS)
    offsets = (np.arange(len(boxes)) * len(_FACE_SIGNS))[:, None]
    indices = (offsets + _FACE_INDICES[None, :]).reshape(-1)
    return positions.reshape(-1, 3), normals.reshape(-1, 3), indices


def write_glb(
    path: Path,
    positions: np.ndarray,
    normals: np.ndarray,
    colors_rgba: np.ndarray,
    indices: np.ndarray,
) -> None:
    """Write one mesh with one triangle primitive as a binary glTF (pygltflib), deterministically.

    Args:
        positions: (V, 3) float32 in the file frame.
        normals: (V, 3) float32 unit normals in the file frame.
        colors_rgba: (V, 4) uint8, written as normalised unsigned-byte COLOR_0.
        indices: (T * 3,) uint32.
    """
    import pygltflib as gl

    arrays = [
        np.ascontiguousarray(indices, dtype="<u4").tobytes(),
        np.ascontiguousarray(positions, dtype="<f4").tobytes(),
        np.ascontiguousarray(normals, dtype="<f4").tobytes(),
        np.ascontiguousarray(colors_rgba, dtype=np.uint8).tobytes(),
    ]
    targets = (gl.ELEMENT_ARRAY_BUFFER, gl.ARRAY_BUFFER, gl.ARRAY_BUFFER, gl.ARRAY_BUFFER)
    views, blob = [], b""
    for data, target in zip(arrays, targets, strict=True):
        views.append(
            gl.BufferView(buffer=0, byteOffset=len(blob), byteLength=len(data), target=target)
        )
        # glTF aligns every buffer view to 4 bytes
        blob += data + b"\x00" * (-len(data) % 4)
    pos32 = np.asarray(positions, dtype=np.float32)
    count = len(pos32)
    gltf = gl.GLTF2(
        asset=gl.Asset(version="2.0", generator=f"aeqa scenegen {GENERATOR_VERSION}"),
        scene=0,
        scenes=[gl.Scene(nodes=[0])],
        nodes=[gl.Node(mesh=0, name=path.name.split(".")[0])],
        meshes=[
            gl.Mesh(
                primitives=[
                    gl.Primitive(
                        attributes=gl.Attributes(POSITION=1, NORMAL=2, COLOR_0=3),
                        indices=0,
                        mode=gl.TRIANGLES,
                        material=0,
                    )
                ]
            )
        ],
        # Unlit, so renderers show the vertex colours as stored: habitat-sim lights a mesh
        # without a material with its image-based lighting (gray 128 comes out 77, 67, 47).
        materials=[
            gl.Material(
                pbrMetallicRoughness=gl.PbrMetallicRoughness(
                    baseColorFactor=[1.0, 1.0, 1.0, 1.0], metallicFactor=0.0, roughnessFactor=1.0
                ),
                extensions={"KHR_materials_unlit": {}},
            )
        ],
        extensionsUsed=["KHR_materials_unlit"],
        buffers=[gl.Buffer(byteLength=len(blob))],
        bufferViews=views,
        accessors=[
            gl.Accessor(
                bufferView=0, componentType=gl.UNSIGNED_INT, count=int(len(indices)), type=gl.SCALAR
            ),
            gl.Accessor(
                bufferView=1,
                componentType=gl.FLOAT,
                count=count,
                type=gl.VEC3,
                min=[float(v) for v in pos32.min(axis=0)],
                max=[float(v) for v in pos32.max(axis=0)],
            ),
            gl.Accessor(bufferView=2, componentType=gl.FLOAT, count=count, type=gl.VEC3),
            gl.Accessor(
                bufferView=3,
                componentType=gl.UNSIGNED_BYTE,
                normalized=True,
                count=count,
                type=gl.VEC4,
            ),
        ],
    )
    gltf.set_binary_blob(blob)
    gltf.save_binary(str(path))


# --- instances and files ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Instance:
    """One semantic instance: its id, what it is, how it renders and its key colour."""

    instance_id: int
    category: str
    region_id: int
    render_rgb: tuple[int, int, int]
    key_linear: tuple[int, int, int]
    boxes: list[Box]
    #: box index -> light colour replacing ``render_rgb`` on that box
    lights: dict[int, tuple[int, int, int]] = field(default_factory=dict)

    def box_colors(self) -> list[tuple[int, int, int]]:
        return [self.lights.get(k, self.render_rgb) for k in range(len(self.boxes))]

    @property
    def key_hex(self) -> str:
        return rgb_to_hex(linear_to_srgb_u8(np.array(self.key_linear, dtype=np.uint8)))


def _draw_key_colors(count: int, rng: np.random.Generator) -> list[tuple[int, int, int]]:
    """Linear key colours (every channel >= 64) whose sRGB conversions are all distinct."""
    keys: list[tuple[int, int, int]] = []
    seen: set[str] = set()
    while len(keys) < count:
        key = rng.integers(64, 256, size=3)
        hex_key = rgb_to_hex(linear_to_srgb_u8(key.astype(np.uint8)))
        if hex_key not in seen:
            seen.add(hex_key)
            keys.append((int(key[0]), int(key[1]), int(key[2])))
    return keys


def _instances(scene: GeneratedScene, rng: np.random.Generator) -> list[_Instance]:
    """Structure first (floors, ceilings, walls), then objects in placement order; ids 1..N."""
    entries: list[tuple[str, int, str, list[Box], dict[int, tuple[int, int, int]]]] = [
        (p.category, p.region_id, p.color_name, [p.box], {}) for p in scene.structure
    ]
    entries += [
        (o.spec.category, o.region_id, o.spec.color_name, o.boxes, o.spec.shape.lights)
        for o in scene.objects
    ]
    keys = _draw_key_colors(len(entries), rng)
    return [
        _Instance(i + 1, category, region, PALETTE[color], key, boxes, dict(lights))
        for i, ((category, region, color, boxes, lights), key) in enumerate(
            zip(entries, keys, strict=True)
        )
    ]


def _r(value: float) -> float:
    return round(float(value), 4) + 0.0  # + 0.0 turns -0.0 into 0.0


def _rv(values: Sequence[float] | np.ndarray) -> list[float]:
    return [_r(v) for v in values]


def _scene_json(scene: GeneratedScene, instances: Sequence[_Instance]) -> dict[str, Any]:
    first_object_id = len(scene.structure) + 1
    objects = []
    for index, obj in enumerate(scene.objects):
        spec = obj.spec
        objects.append(
            {
                "instance_id": first_object_id + index,
                "category": spec.category,
                "color_name": spec.color_name,
                "color_rgb": list(PALETTE[spec.color_name]),
                "state": spec.state,
                "size": spec.size_label,
                "dims_m": _rv(obj.bbox_max - obj.bbox_min),
                "region_id": obj.region_id,
                "supported_by": None
                if obj.supported_by is None
                else first_object_id + obj.supported_by,
                "wall_mounted": obj.wall_mounted,
                "bbox_min": _rv(obj.bbox_min),
                "bbox_max": _rv(obj.bbox_max),
                "material": spec.material,
                "surface_height_m": None if obj.surface_y is None else _r(obj.surface_y),
            }
        )
    structure = []
    for instance, piece in zip(instances, scene.structure, strict=False):
        lo, hi = piece.box.aabb()
        structure.append(
            {
                "instance_id": instance.instance_id,
                "category": piece.category,
                "region_id": piece.region_id,
                "color_name": piece.color_name,
                "color_rgb": list(PALETTE[piece.color_name]),
                "bbox_min": _rv(lo),
                "bbox_max": _rv(hi),
            }
        )
    data: dict[str, Any] = {
        "format": SCENE_FORMAT,
        "generator": {"seed": scene.seed, "version": GENERATOR_VERSION},
        "ceiling_height_m": _r(scene.ceiling_height_m),
        "regions": [
            {
                "region_id": room.region_id,
                "name": room.name,
                "type": room.room_type,
                "bounds_min": _rv([room.bounds.x0, room.bounds.z0]),
                "bounds_max": _rv([room.bounds.x1, room.bounds.z1]),
            }
            for room in scene.rooms
        ],
        "objects": objects,
        "structure": structure,
        "doorways": [
            {
                "region_ids": list(d.wall.rooms),
                "center": _rv(d.world_center()),
                "width_m": _r(d.width_m),
            }
            for d in scene.doorways
        ],
        "start": {
            "position": _rv(scene.start_position),
            "rotation": _rv(quat_from_yaw(scene.start_yaw_rad)),
        },
    }
    if scene.size != "apartment":
        # Apartments keep the files they had before sizes existed: no "size" means apartment.
        data["generator"]["size"] = scene.size
        for region, parts in zip(data["regions"], scene.room_parts, strict=True):
            region["parts"] = [
                {"bounds_min": _rv([r.x0, r.z0]), "bounds_max": _rv([r.x1, r.z1])} for r in parts
            ]
        data["openings"] = [_opening_json(w) for w in scene.openings]
    if scene.room_floor_y:
        for region, floor_y in zip(data["regions"], scene.room_floor_y, strict=True):
            region["floor_y"] = _r(floor_y)
        for door, doorway in zip(data["doorways"], scene.doorways, strict=True):
            door["center"][1] = _r(door["center"][1] + scene.room_floor_y[doorway.wall.rooms[0]])
    return data


def _opening_json(wall: SharedWall) -> dict[str, Any]:
    """An open boundary as its two region ids and its (x, z) end points."""
    if wall.axis == "x":
        start, end = (wall.line, wall.lo), (wall.line, wall.hi)
    else:
        start, end = (wall.lo, wall.line), (wall.hi, wall.line)
    return {"region_ids": list(wall.rooms), "start": _rv(start), "end": _rv(end)}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, sort_keys=True, indent=1) + "\n", encoding="utf-8")


def stage_config(name: str) -> dict[str, Any]:
    """What habitat-sim is given as the scene ``NAME``: both meshes Z-up, +Y front. Without
    ``semantic_front`` habitat-sim leaves the semantic mesh unrotated and misaligned."""
    return {
        "render_asset": f"{name}.glb",
        "semantic_asset": f"{name}.semantic.glb",
        "semantic_descriptor_filename": f"{name}.semantic.txt",
        "up": [0, 0, 1],
        "front": [0, 1, 0],
        "semantic_up": [0, 0, 1],
        "semantic_front": [0, 1, 0],
    }


def write_scene(scene: GeneratedScene, base: Path, rng: np.random.Generator) -> int:
    """Write the five files of ``scene`` beside basename ``base``; returns the triangle count."""
    instances = _instances(scene, rng)
    boxes = [b for inst in instances for b in inst.boxes]
    box_owner = np.repeat(np.arange(len(instances)), [len(inst.boxes) for inst in instances])
    positions, normals, indices = boxes_to_triangles(boxes)
    vertex_owner = np.repeat(box_owner, len(_FACE_SIGNS))
    vertex_box = np.repeat(np.arange(len(boxes)), len(_FACE_SIGNS))
    alpha = np.full((len(instances), 1), 255)
    box_rgb = np.array([c for inst in instances for c in inst.box_colors()])
    render_rgba = np.hstack([box_rgb, np.full((len(boxes), 1), 255)])
    key_rgba = np.hstack([np.array([i.key_linear for i in instances]), alpha])
    positions_file = yup_to_zup(positions).astype(np.float32)
    normals_file = yup_to_zup(normals).astype(np.float32)
    name = base.name
    write_glb(
        base.with_name(f"{name}.glb"),
        positions_file,
        normals_file,
        render_rgba[vertex_box].astype(np.uint8),
        indices.astype(np.uint32),
    )
    write_glb(
        base.with_name(f"{name}.semantic.glb"),
        positions_file,
        normals_file,
        key_rgba[vertex_owner].astype(np.uint8),
        indices.astype(np.uint32),
    )
    write_semantic_txt(
        base.with_name(f"{name}.semantic.txt"),
        [SemanticInstance(i.instance_id, i.key_hex, i.category, i.region_id) for i in instances],
    )
    _write_json(base.with_name(f"{name}.stage_config.json"), stage_config(name))
    _write_json(base.with_name(f"{name}.scene.json"), _scene_json(scene, instances))
    return len(indices) // 3


# --- public API ------------------------------------------------------------------------------


def generate_scene(
    out_dir: Path,
    name: str,
    seed: int,
    num_rooms: int | None = None,
    size: str = "apartment",
) -> Path:
    """Generate one furnished apartment or house and write it in HM3D's layout.

    Args:
        out_dir: folder for the files (created if missing).
        name: the scene's basename; files are ``out_dir/name.glb``, ``name.semantic.glb``,
            ``name.semantic.txt``, ``name.stage_config.json`` and ``name.scene.json``.
        seed: non-negative integer; the same seed (and size) gives byte-identical files.
        num_rooms: 3 to 7 for an apartment (or a split-level house's lower level), 10 to
            25 for a house, or None to draw it from the seed.
        size: ``apartment`` (3 to 7 rooms in rows), ``house`` (10 to 25 rooms along a
            branching hallway, an open-plan kitchen, dining and living area, L-shaped rooms,
            120 to 300 m2 of navigable floor) or ``split-level`` (an apartment, a stair hall
            and 3 or 4 rooms 1.0 to 1.4 m higher beside it, not above it).

    Returns:
        The basename path ``out_dir / name``.

    Raises:
        AeqaError: a bad name, seed, size or room count, or an unwritable folder.
    """
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise AeqaError(f"scene name {name!r} must be a plain file name such as apartment_000")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise AeqaError(f"seed must be a non-negative integer, got {seed!r}")
    if size not in SIZES:
        raise AeqaError(f"size must be one of {', '.join(SIZES)}, got {size!r}")
    lo, hi = (MIN_HOUSE_ROOMS, MAX_HOUSE_ROOMS) if size == "house" else (MIN_ROOMS, MAX_ROOMS)
    if num_rooms is not None and not lo <= num_rooms <= hi:
        raise AeqaError(
            f"num_rooms of a {size} must be between {lo} and {hi} (or unset), got {num_rooms}"
        )
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise AeqaError(f"{out_dir}: cannot create the output folder ({e})") from e
    seed = int(seed)
    builders = {"apartment": build_scene, "house": build_house, "split-level": build_split_level}
    scene = builders[size](seed, num_rooms)
    base = out_dir / name
    # Key colours come from their own stream so they do not shift with the layout's draws.
    key_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))
    try:
        triangles = write_scene(scene, base, key_rng)
    except OSError as e:
        raise AeqaError(f"{base}: cannot write the scene files ({e})") from e
    logger.info(
        "generated %s: seed %d, %s, %d rooms, %d objects, %d triangles",
        base,
        seed,
        size,
        len(scene.rooms),
        len(scene.objects),
        triangles,
    )
    return base


def scene_seed(seed: int, index: int) -> int:
    """The seed of scene ``index`` of a set generated with ``seed``."""
    sequence = np.random.SeedSequence(seed, spawn_key=(index,))
    return int(sequence.generate_state(1, dtype=np.uint32)[0])


def generate_scenes(out_dir: Path, count: int, seed: int, size: str = "apartment") -> list[Path]:
    """Generate ``count`` scenes named ``SIZE_000``, ``SIZE_001``, ... (``apartment_000`` or
    ``house_000``) in ``out_dir``.

    Scene ``i`` uses :func:`scene_seed` ``(seed, i)``, so it does not depend on ``count``.

    Returns:
        Their basename paths, in order.
    """
    from tqdm import tqdm

    if count < 0:
        raise AeqaError(f"count must be non-negative, got {count}")
    if size not in SIZES:
        raise AeqaError(f"size must be one of {', '.join(SIZES)}, got {size!r}")
    return [
        generate_scene(Path(out_dir), f"{size}_{i:03d}", scene_seed(seed, i), size=size)
        for i in tqdm(range(count), desc="scenes", unit="scene", disable=count < 2)
    ]


__all__ = [
    "PALETTE",
    "SIZES",
    "Box",
    "GeneratedScene",
    "build_house",
    "build_scene",
    "build_split_level",
    "generate_scene",
    "generate_scenes",
    "scene_seed",
]
