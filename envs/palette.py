"""The named colour palette that generated scenes paint with and that memories name colours by."""

from __future__ import annotations

import numpy as np

#: Named colours (sRGB bytes); a generated object's render colour is exactly its entry.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (200, 30, 35),
    "green": (50, 140, 60),
    "blue": (40, 90, 190),
    "yellow": (235, 200, 50),
    "white": (240, 240, 235),
    "black": (30, 30, 30),
    "gray": (128, 128, 128),
    "brown": (115, 75, 45),
    "orange": (235, 130, 40),
    "pink": (235, 150, 180),
    "purple": (120, 65, 160),
    "beige": (220, 200, 160),
    "teal": (30, 130, 130),
}

#: Colours of light sources (not paint): a lamp's glowing bulb, a switched-on screen. They say
#: a thing is on, and are left out when naming an object's colour.
EMISSIVE: dict[str, tuple[int, int, int]] = {
    "lamp light": (255, 244, 190),
    "screen light": (120, 200, 255),
}

_NAMES = list(PALETTE)
_EMISSIVE_RGB = np.array(list(EMISSIVE.values()), dtype=np.float64)


def is_emissive(colors_u8: np.ndarray, tolerance: float = 24.0) -> np.ndarray:
    """(N,) bool: colours (N, 3) within ``tolerance`` (sRGB distance) of a light colour."""
    c = np.asarray(colors_u8, dtype=np.float64).reshape(-1, 3)
    distance = np.sqrt(((c[:, None, :] - _EMISSIVE_RGB[None, :, :]) ** 2).sum(axis=2))
    return np.asarray(distance.min(axis=1) <= tolerance)


_RGB = np.array([PALETTE[n] for n in _NAMES], dtype=np.float64)


def nearest_color_name(rgb: np.ndarray | tuple[int, int, int]) -> str:
    """The palette name closest (Euclidean in sRGB) to a colour (3,) of bytes."""
    distance = np.linalg.norm(_RGB - np.asarray(rgb, dtype=np.float64)[None, :], axis=1)
    return _NAMES[int(np.argmin(distance))]


def dominant_color(
    colors_u8: np.ndarray, weights: np.ndarray | None = None
) -> tuple[str, np.ndarray]:
    """The palette name most of the colours (N, 3) fall nearest to, and their mean RGB.

    Light colours (see :data:`EMISSIVE`) are left out where anything else is there.

    A vote over palette entries is robust to the shading and mixed pixels that a mean of all
    colours blurs together.
    """
    c = np.asarray(colors_u8, dtype=np.float64)
    w = np.ones(len(c)) if weights is None else np.asarray(weights, dtype=np.float64)
    painted = ~is_emissive(c)
    if np.any(painted):
        c, w = c[painted], w[painted]
    distance = ((c[:, None, :] - _RGB[None, :, :]) ** 2).sum(axis=2)
    nearest = np.argmin(distance, axis=1)
    votes = np.bincount(nearest, weights=w, minlength=len(_NAMES))
    best = int(np.argmax(votes))
    members = nearest == best
    mean = np.average(c[members], axis=0, weights=w[members])
    return _NAMES[best], np.asarray(np.clip(np.round(mean), 0, 255), dtype=np.uint8)
