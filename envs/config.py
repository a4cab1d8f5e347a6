"""Configs: the simulator's (shared by every backend), and how any config dataclass is filled
from YAML presets and ``key=value`` overrides with OmegaConf."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from aeqa.envs.errors import AeqaError

T = TypeVar("T")

#: the YAML presets, installed beside the packages (``configs/<group>/<name>.yaml``)
CONFIGS_DIR = Path(__file__).resolve().parent.parent / "configs"


@dataclass(frozen=True)
class Range:
    """The values a numeric config field allows: ``low`` to ``high`` (None: unbounded), each
    end included unless ``low_open`` / ``high_open``."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def contains(self, value: float) -> bool:
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def describe(self) -> str:
        """The range in words, to follow "a value": "of at least 1", "above 0", "from 0 to 2",
        "in (0, 180)"."""
        if self.high is None:
            if self.low is None:
                return "a finite number"
            return f"above {self.low:g}" if self.low_open else f"of at least {self.low:g}"
        if self.low is None:
            return f"below {self.high:g}" if self.high_open else f"of at most {self.high:g}"
        if not (self.low_open or self.high_open):
            return f"from {self.low:g} to {self.high:g}"
        left = "(" if self.low_open else "["
        right = ")" if self.high_open else "]"
        return f"in {left}{self.low:g}, {self.high:g}{right}"


#: shorthands for :class:`Range`
POSITIVE = Range(0, low_open=True)
NON_NEGATIVE = Range(0)
AT_LEAST_ONE = Range(1)
FRACTION = Range(0, 1)


def check_value(name: str, value: Any, allowed: Range, example: Any = None) -> None:
    """Raise unless ``value`` of the config key or option ``name`` lies in ``allowed``.

    Raises:
        AeqaError: one line naming ``name``, the value, the range and (where given) an
            example of a good value.
    """
    if allowed.contains(value):
        return
    # An option reads "--max-steps 5", a config key "explorer.max_steps=5".
    sep = " " if name.startswith("-") else "="
    hint = f", e.g. {name}{sep}{example}" if example is not None else ""
    raise AeqaError(f"{name}{sep}{value} is out of range; use a value {allowed.describe()}{hint}")


def check_choice(name: str, value: Any, allowed: Sequence[str], example: Any = None) -> None:
    """Raise unless ``value`` of the config key or option ``name`` is one of ``allowed``.

    Raises:
        AeqaError: one line naming ``name``, the value, the choices and (where given) an
            example of a good value.
    """
    if value in allowed:
        return
    sep = " " if name.startswith("-") else "="
    hint = f", e.g. {name}{sep}{example}" if example is not None else ""
    raise AeqaError(f"{name}{sep}{value} is not a choice; use one of {', '.join(allowed)}{hint}")


def validate(config: Any, prefix: str = "", names: Mapping[str, str] | None = None) -> None:
    """Check every numeric field of the dataclass ``config`` (and of the dataclasses it holds)
    against its class's ``LIMITS`` (field name -> :class:`Range`), and every field its class's
    ``CHOICES`` names (field name -> the values allowed) against those values.

    Args:
        prefix: prepended to field names in messages (``"sim."``).
        names: field name -> the name to show instead (a command-line option).

    Raises:
        AeqaError: the first value out of range (see :func:`check_value`) or not a choice (see
            :func:`check_choice`); the example shown is the field's default.
    """
    limits: Mapping[str, Range] = getattr(type(config), "LIMITS", {})
    choices: Mapping[str, Sequence[str]] = getattr(type(config), "CHOICES", {})
    for f in fields(config):
        value = getattr(config, f.name)
        name = (names or {}).get(f.name, f"{prefix}{f.name}")
        default = f.default if f.default is not MISSING else None
        if is_dataclass(value) and not isinstance(value, type):
            validate(value, f"{prefix}{f.name}.")
        elif f.name in limits and value is not None and not isinstance(value, bool):
            check_value(name, value, limits[f.name], default)
        elif f.name in choices:
            check_choice(name, value, choices[f.name], default)


@dataclass
class AgentSpec:
    """The agent's body and action space: one spec for the simulator (navigable area,
    collisions, actions), the occupancy map (obstacle band, clearance) and the explorer
    (turns, path clearance). The defaults are habitat-sim's agent and its classic actions;
    override as ``sim.agent.radius_m=0.2``.
    """

    #: body radius: the navigable area and planned paths keep this far from obstacles
    radius_m: float = 0.1
    #: body height: what lies below it above the floor is in the agent's way
    height_m: float = 1.5
    #: highest step the agent walks up; anything lower is floor
    max_climb_m: float = 0.2
    #: ``move_forward``
    forward_step_m: float = 0.25
    #: ``turn_left`` / ``turn_right``
    turn_angle_deg: float = 30.0
    #: ``look_up`` / ``look_down``
    tilt_angle_deg: float = 30.0

    LIMITS: ClassVar[dict[str, Range]] = {
        "radius_m": NON_NEGATIVE,
        "height_m": POSITIVE,
        "max_climb_m": NON_NEGATIVE,
        "forward_step_m": POSITIVE,
        "turn_angle_deg": Range(0, 180, low_open=True),
        "tilt_angle_deg": Range(0, 90, low_open=True),
    }


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
    #: depth beyond this reads 0, as habitat's depth sensor does
    max_depth_m: float = 10.0
    #: the agent's body and action space (also what the memory and the explorer use)
    agent: AgentSpec = field(default_factory=AgentSpec)
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

    LIMITS: ClassVar[dict[str, Range]] = {
        "width": Range(1, 8192),
        "height": Range(1, 8192),
        "hfov_deg": Range(0, 180, low_open=True, high_open=True),
        "camera_height_m": POSITIVE,
        "camera_tilt_deg": Range(-90, 90),
        "max_depth_m": POSITIVE,
        "nav_cell_m": POSITIVE,
        "scene_metres_per_unit": POSITIVE,
        "gpu_device_id": Range(-1),
    }


def preset_names(group: str) -> list[str]:
    """The presets of ``configs/<group>/`` by name."""
    return sorted(p.stem for p in (CONFIGS_DIR / group).glob("*.yaml"))


def preset_path(group: str, name: str) -> Path:
    """The YAML file of preset ``name`` in ``configs/<group>/``, or a YAML path of that group's
    keys given directly.

    Raises:
        AeqaError: no such preset or file (the message lists the group's presets).
    """
    names = ", ".join(preset_names(group))
    direct = Path(name).expanduser()
    if direct.suffix in (".yaml", ".yml"):
        if direct.is_file():
            return direct
        raise AeqaError(
            f"{name}: no such {group} preset file; check the path, or use a preset name ({names})"
        )
    path = CONFIGS_DIR / group / f"{name}.yaml"
    if direct.name != name or not path.is_file():
        raise AeqaError(
            f"unknown {group} preset {name!r}; use one of {names} or a .yaml file of {group} keys"
        )
    return path


def _load_yaml(path: Path) -> DictConfig:
    """A preset file as a mapping.

    Raises:
        AeqaError: unreadable, not YAML, or not a mapping of keys.
    """
    try:
        loaded = OmegaConf.load(path)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or type(e).__name__
        raise AeqaError(f"{path}: not valid YAML ({problem}{where}); fix the file") from e
    except OSError as e:
        raise AeqaError(f"{path}: cannot read the preset ({e.strerror or e})") from e
    if not isinstance(loaded, DictConfig):
        raise AeqaError(
            f"{path}: expected `key: value` lines (a YAML mapping), got a list; fix the file"
        )
    return loaded


def check_overrides(overrides: Sequence[str]) -> None:
    """Raise unless every override reads ``key=value``.

    Raises:
        AeqaError: naming the first one that does not.
    """
    for item in overrides:
        key, sep, _ = item.partition("=")
        if not sep or not key.strip():
            raise AeqaError(
                f"bad override {item!r}: expected key=value (e.g. {key.strip() or 'seed'}=VALUE)"
            )


#: keys of earlier versions -> where their values live now (named in the error for the old key)
MOVED_KEYS: dict[str, str] = {
    "agent_radius_m": "sim.agent.radius_m",
    "agent_height_m": "sim.agent.height_m",
    "agent_max_climb_m": "sim.agent.max_climb_m",
    "forward_step_m": "sim.agent.forward_step_m",
    "turn_angle_deg": "sim.agent.turn_angle_deg",
    "tilt_angle_deg": "sim.agent.tilt_angle_deg",
    "min_clearance_m": "sim.agent.radius_m",
}


def load_config(schema: type[T], presets: list[tuple[str, Path]], overrides: list[str]) -> T:
    """Merge presets (in order) and ``key=value`` overrides into a ``schema`` instance, and
    check its values (:func:`validate`).

    Args:
        presets: ``(key, path)`` pairs; the YAML at ``path`` fills the field ``key`` of the
            schema (``""`` for the top level).

    Raises:
        AeqaError: an unknown key, a value of the wrong type or out of range, an override that
            is not ``key=value``, or an unreadable preset.
    """
    check_overrides(overrides)
    try:
        merged = OmegaConf.structured(schema)
        for key, path in presets:
            loaded = _load_yaml(path)
            try:
                merged = OmegaConf.merge(merged, OmegaConf.create({key: loaded}) if key else loaded)
            except OmegaConfBaseException as e:
                message = str(e).splitlines()[0]
                raise AeqaError(f"{path}: {message}; fix the preset") from e
        if overrides:
            merged = OmegaConf.merge(merged, OmegaConf.from_dotlist(list(overrides)))
        obj = OmegaConf.to_object(merged)
    except OmegaConfBaseException as e:
        message = str(e).splitlines()[0]
        full_key = getattr(e, "full_key", None)
        where = f" ({full_key})" if full_key else ""
        moved = MOVED_KEYS.get(str(full_key or "").rsplit(".", 1)[-1])
        fix = f"it is now {moved}" if moved else "check the key=value overrides"
        raise AeqaError(f"bad config{where}: {message}; {fix}") from e
    except ValueError as e:
        raise AeqaError(f"bad config: {e}") from e
    assert isinstance(obj, schema)
    validate(obj)
    return obj


def to_yaml(config: Any) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(config))
