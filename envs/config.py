"""Configs: the simulator's (shared by every backend), and how any config dataclass is filled
from YAML presets and ``key=value`` overrides with OmegaConf."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from aeqa.envs.errors import AeqaError

T = TypeVar("T")

#: the YAML presets, installed beside the packages (``configs/<group>/<name>.yaml``)
CONFIGS_DIR = Path(__file__).resolve().parent.parent / "configs"


@dataclass
class SimConfig:
    """How the world is simulated and sensed.

    The defaults are the ``discrete`` preset (habitat's classic action space); ``configs/sim/``
    holds the presets as YAML.
    """

    #: backend: ``meshsim`` (embedded) or ``habitat`` (habitat-sim, optional)
    type: str = "meshsim"
    #: meshsim renderer: ``auto`` (raster wherever EGL works, llvmpipe included, raycast
    #: otherwise; resolved when a config is resolved), ``raster`` or ``raycast``
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
    #: habitat backend only: a ``*.scene_dataset_config.json`` (HM3D's) to load scenes from;
    #: empty: for a ``.basis.glb`` the nearest one in the three folders above it, if any
    scene_dataset_config: str = ""


def preset_path(group: str, name: str) -> Path:
    """The YAML file of preset ``name`` in ``configs/<group>/``, or a path given directly."""
    direct = Path(name)
    if direct.suffix in (".yaml", ".yml") and direct.is_file():
        return direct
    path = CONFIGS_DIR / group / f"{name}.yaml"
    if not path.is_file():
        available = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise AeqaError(
            f"unknown {group} preset {name!r}; use one of {', '.join(available)} or a YAML path"
        )
    return path


def load_config(schema: type[T], presets: list[tuple[str, Path]], overrides: list[str]) -> T:
    """Merge presets (in order) and ``key=value`` overrides into a ``schema`` instance.

    Args:
        presets: ``(key, path)`` pairs; the YAML at ``path`` fills the field ``key`` of the
            schema (``""`` for the top level).

    Raises:
        AeqaError: an unknown key, a value of the wrong type or an unreadable preset.
    """
    try:
        merged = OmegaConf.structured(schema)
        for key, path in presets:
            loaded = OmegaConf.load(path)
            merged = OmegaConf.merge(merged, OmegaConf.create({key: loaded}) if key else loaded)
        if overrides:
            merged = OmegaConf.merge(merged, OmegaConf.from_dotlist(list(overrides)))
        obj = OmegaConf.to_object(merged)
    except OmegaConfBaseException as e:
        message = str(e).splitlines()[0]
        raise AeqaError(f"bad config: {message}; check the preset and key=value overrides") from e
    except (OSError, ValueError) as e:
        raise AeqaError(f"bad config: {e}") from e
    assert isinstance(obj, schema)
    return obj


def to_yaml(config: Any) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(config))
