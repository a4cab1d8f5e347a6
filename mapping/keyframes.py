"""A bounded store of keyframes chosen for coverage of objects: the best views of each object,
so an answering head can look at the objects a question is about."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: views remembered per instance (its largest ones)
VIEWS_PER_INSTANCE = 3


@dataclass
class Keyframe:
    """A stored frame.

    Attributes:
        frame_id: the memory's frame counter when it was integrated.
        step: the episode step.
        rgb: (h, w, 3) uint8, downscaled so its longer side is at most the store's limit.
        T_world_camera: (4, 4) camera-to-world pose.
        instance_pixels: instance id -> pixels it covered in the full-resolution frame.
    """

    frame_id: int
    step: int
    rgb: np.ndarray
    T_world_camera: np.ndarray
    instance_pixels: dict[int, int] = field(default_factory=dict)


def downscale(rgb: np.ndarray, max_side: int) -> np.ndarray:
    """Nearest-neighbour downscale (h, w, 3) so the longer side is at most ``max_side``."""
    h, w = rgb.shape[:2]
    stride = max(1, int(np.ceil(max(h, w) / max_side)))
    return np.ascontiguousarray(rgb[::stride, ::stride])


class KeyframeStore:
    """At most ``capacity`` frames, kept by how many objects they show best."""

    def __init__(self, capacity: int = 64, max_side: int = 640) -> None:
        self.capacity = capacity
        self.max_side = max_side
        self.frames: dict[int, Keyframe] = {}
        #: instance id -> [(pixels, frame_id)] of its largest views, largest first
        self.best_views: dict[int, list[tuple[int, int]]] = {}

    def offer(
        self,
        frame_id: int,
        step: int,
        rgb: np.ndarray,
        T_world_camera: np.ndarray,
        instance_pixels: dict[int, int],
    ) -> bool:
        """Consider a frame; returns whether it was kept."""
        improves = False
        for instance_id, pixels in instance_pixels.items():
            views = self.best_views.setdefault(instance_id, [])
            if len(views) < VIEWS_PER_INSTANCE or pixels > views[-1][0]:
                views.append((pixels, frame_id))
                views.sort(key=lambda v: (-v[0], v[1]))
                del views[VIEWS_PER_INSTANCE:]
                improves = True
        if not improves:
            return False
        self.frames[frame_id] = Keyframe(
            frame_id, step, downscale(rgb, self.max_side), np.array(T_world_camera), instance_pixels
        )
        self._evict()
        return frame_id in self.frames

    def keep(self, frame_id: int, step: int, rgb: np.ndarray, T_world_camera: np.ndarray) -> None:
        """Store a frame that shows no labelled instance (a history without instance ids, whose
        frames ``offer`` never keeps). It is not any object's view, so the next ``offer``
        evicts it: call this once the frames are integrated."""
        self.frames[frame_id] = Keyframe(
            frame_id, step, downscale(rgb, self.max_side), np.array(T_world_camera), {}
        )

    def _value(self, frame_id: int) -> float:
        """How much a frame is worth: its ranks among each object's best views."""
        value = 0.0
        for views in self.best_views.values():
            for rank, (_, fid) in enumerate(views):
                if fid == frame_id:
                    value += 1.0 / (1 + rank)
        return value

    def _evict(self) -> None:
        referenced = {fid for views in self.best_views.values() for _, fid in views}
        for fid in [f for f in self.frames if f not in referenced]:
            del self.frames[fid]
        while len(self.frames) > self.capacity:
            worst = min(self.frames, key=lambda fid: (self._value(fid), fid))
            del self.frames[worst]

    def views_of(self, instance_id: int) -> list[Keyframe]:
        """Stored keyframes that show an instance, largest view first."""
        return [
            self.frames[fid]
            for _, fid in self.best_views.get(instance_id, [])
            if fid in self.frames
        ]

    def best_frame_ids(self, instance_id: int) -> list[int]:
        return [fid for _, fid in self.best_views.get(instance_id, [])]
