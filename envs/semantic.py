"""HM3D semantic annotations: ``NAME.semantic.txt`` and the colour conversion habitat-sim applies.

habitat-sim converts a semantic mesh's vertex colours from linear to sRGB (the standard sRGB
curve, rounded to bytes) before it looks them up in ``semantic.txt``. Writers and readers here
apply the same conversion, so generated scenes and habitat-sim agree on every instance id.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aeqa.envs.errors import AeqaError
from aeqa.envs.types import InstanceLabel

SEMANTIC_HEADER = "HM3D Semantic Annotations"
_LINE = re.compile(r'^\s*(\d+)\s*,\s*([0-9A-Fa-f]{6})\s*,\s*"(.*)"\s*,\s*(-?\d+)\s*$')


@dataclass(frozen=True)
class SemanticInstance:
    """One line of ``semantic.txt``: an instance id, its colour key, category and region."""

    instance_id: int
    color_hex: str
    category: str
    region_id: int

    @property
    def color_rgb(self) -> tuple[int, int, int]:
        value = int(self.color_hex, 16)
        return (value >> 16) & 255, (value >> 8) & 255, value & 255


def linear_to_srgb_u8(linear_u8: np.ndarray) -> np.ndarray:
    """Convert linear colour bytes to sRGB bytes with the standard curve, rounded.

    Args:
        linear_u8: uint8 array of any shape.

    Returns:
        uint8 array of the same shape.
    """
    lin = np.asarray(linear_u8, dtype=np.float64) / 255.0
    srgb = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * np.power(lin, 1.0 / 2.4) - 0.055)
    return np.clip(np.round(srgb * 255.0), 0, 255).astype(np.uint8)


def pack_rgb(rgb_u8: np.ndarray) -> np.ndarray:
    """Pack uint8 RGB triples (..., 3) into int64 keys ``0xRRGGBB`` (...)."""
    rgb = np.asarray(rgb_u8, dtype=np.int64)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def rgb_to_hex(rgb: tuple[int, int, int] | np.ndarray) -> str:
    r, g, b = (int(c) for c in rgb)
    return f"{r:02X}{g:02X}{b:02X}"


def read_semantic_txt(path: str | Path) -> list[SemanticInstance]:
    """Parse ``semantic.txt``: a header line, then ``id,HEXCOLOUR,"category",region_id`` lines.

    A category may contain commas, so the line is split on its double quotes.

    Raises:
        AeqaError: the file is missing or a line is malformed (the message names the line).
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as e:
        raise AeqaError(f"{path}: semantic annotation file not found") from e
    except (OSError, UnicodeDecodeError) as e:
        raise AeqaError(f"{path}: cannot read semantic annotations ({e})") from e
    instances: list[SemanticInstance] = []
    seen: set[int] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip() or (number == 1 and line.strip() == SEMANTIC_HEADER):
            continue
        match = _LINE.match(line)
        if match is None:
            raise AeqaError(
                f"{path}:{number}: malformed line {line[:80]!r}; "
                'expected id,HEXCOLOUR,"category",region_id'
            )
        instance_id = int(match.group(1))
        if instance_id in seen:
            raise AeqaError(f"{path}:{number}: instance id {instance_id} is listed twice")
        seen.add(instance_id)
        instances.append(
            SemanticInstance(
                instance_id, match.group(2).upper(), match.group(3), int(match.group(4))
            )
        )
    return instances


def write_semantic_txt(path: str | Path, instances: list[SemanticInstance]) -> None:
    lines = [SEMANTIC_HEADER]
    lines += [f'{i.instance_id},{i.color_hex},"{i.category}",{i.region_id}' for i in instances]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def instance_labels(
    instances: Mapping[int, SemanticInstance], ground_truth: Mapping[str, Any] | None
) -> dict[int, InstanceLabel]:
    """Category and region name per instance id; region names from a generated scene's ground
    truth (``regions``: ``region_id``, ``name``), "" where it gives none."""
    regions = {int(r["region_id"]): str(r["name"]) for r in (ground_truth or {}).get("regions", [])}
    return {
        int(i): InstanceLabel(info.category, regions.get(info.region_id, ""))
        for i, info in instances.items()
    }
