"""Simulator configuration, shared by every backend."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SimConfig:
    """How the world is simulated and sensed.

    The defaults are the ``discrete`` preset (habitat's classic action space); ``configs/sim/``
    holds the presets as YAML.
    """

    #: backend: ``meshsim`` (embedded) or ``habitat`` (habitat-sim, optional)
    type: str = "meshsim"
    #: meshsim renderer: ``auto`` (raster on a GPU, raycast otherwise), ``raster`` or ``raycast``
    renderer: str = "auto"
    width: int = 640
    height: int = 480
    hfov_deg: float = 90.0
    #: camera height above the agent's base
    camera_height_m: float = 1.5
    #: initial camera pitch about its +X axis; negative looks down
    camera_tilt_deg: float = 0.0
    forward_step_m: float = 0.25
    turn_angle_deg: float = 30.0
    tilt_angle_deg: float = 30.0
    #: depth beyond this reads 0, as habitat's depth sensor does
    max_depth_m: float = 10.0
    agent_radius_m: float = 0.1
    agent_height_m: float = 1.5
    agent_max_climb_m: float = 0.2
    nav_cell_m: float = 0.05
    #: scene file's up axis: ``y``, ``z`` or empty for the format's default
    scene_up: str = ""
    #: scale of the scene file's coordinates (0.01 for centimetres)
    scene_metres_per_unit: float = 1.0
    #: habitat backend only: GPU for rendering, -1 for the CPU (Mesa llvmpipe)
    gpu_device_id: int = -1
