"""Records that cross the simulator boundary: agent state, observations and actions."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

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
