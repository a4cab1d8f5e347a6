"""The colours every picture shares: map layers, categories and time along a trajectory."""

from __future__ import annotations

import zlib

import numpy as np

#: (3,) uint8 RGB of the top-down map's layers
BACKGROUND = (255, 255, 255)
NAVIGABLE = (222, 222, 222)
SEEN_FREE = (182, 216, 250)
WALL = (60, 60, 60)
WALL_UNSEEN = (170, 170, 170)
SEEN_OBSTACLE = (25, 55, 125)
FRONTIER = (255, 140, 0)
EVIDENCE = (220, 0, 170)
START = (20, 160, 60)
STOP = (215, 30, 30)
UNLABELLED = (150, 150, 150)
#: matplotlib colour map of time (step) along a trajectory
TIME_CMAP = "viridis"

# A qualitative palette (tab20's colours, reordered so that neighbours differ).
_PALETTE = np.array(
    [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (188, 189, 34),
        (23, 190, 207),
        (174, 199, 232),
        (255, 187, 120),
        (152, 223, 138),
        (255, 152, 150),
        (197, 176, 213),
        (196, 156, 148),
        (247, 182, 210),
        (219, 219, 141),
        (158, 218, 229),
        (127, 127, 127),
        (199, 199, 199),
    ],
    dtype=np.uint8,
)


#: subdued colours of the structure, so that objects stand out
STRUCTURE_COLORS = {
    "wall": (178, 178, 178),
    "floor": (226, 214, 190),
    "ceiling": (236, 236, 236),
}


def category_color(category: str) -> tuple[int, int, int]:
    """A stable RGB colour for a category name (the same in every picture and run)."""
    name = category.strip().lower()
    if not name:
        return UNLABELLED
    if name in STRUCTURE_COLORS:
        return STRUCTURE_COLORS[name]
    index = zlib.crc32(name.encode("utf-8")) % len(_PALETTE)
    r, g, b = (int(c) for c in _PALETTE[index])
    return r, g, b


def distinct_category_colors(ranked: list[str]) -> dict[str, tuple[int, int, int]]:
    """Colours for categories listed most important first: the structure's own, then the
    palette in order (no two alike among the first 20), then :func:`category_color`."""
    out: dict[str, tuple[int, int, int]] = {}
    next_colour = 0
    for category in ranked:
        name = category.strip().lower()
        if name in STRUCTURE_COLORS or not name:
            out[category] = category_color(category)
        elif next_colour < len(_PALETTE):
            r, g, b = (int(c) for c in _PALETTE[next_colour])
            out[category] = (r, g, b)
            next_colour += 1
        else:
            out[category] = category_color(category)
    return out


def time_colors(values: np.ndarray, vmax: float) -> np.ndarray:
    """(N, 3) uint8 colours of ``values`` (N,) in 0..``vmax`` on :data:`TIME_CMAP`."""
    from matplotlib import colormaps

    cmap = colormaps[TIME_CMAP]
    t = np.clip(np.asarray(values, dtype=np.float64) / max(float(vmax), 1e-9), 0.0, 1.0)
    return (np.asarray(cmap(t))[:, :3] * 255).round().astype(np.uint8)


def blend(base: np.ndarray, color: tuple[int, int, int], alpha: float) -> np.ndarray:
    """``base`` (..., 3) uint8 mixed with ``color`` at ``alpha`` (0..1), as uint8."""
    mixed = (1.0 - alpha) * base.astype(np.float32) + alpha * np.asarray(color, np.float32)
    return mixed.round().astype(np.uint8)
