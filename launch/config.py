"""Configs: dataclass schemas filled from YAML presets and ``key=value`` overrides.

A config is resolved once at the entry point, saved beside the run's outputs and never
mutated afterwards.
"""

from __future__ import annotations

import datetime as dt
import re
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from envs.errors import AeqaError

T = TypeVar("T")


def preset_path(group: str, name: str) -> Path:
    """The YAML file of preset ``name`` in ``configs/<group>/``, or a path given directly."""
    direct = Path(name)
    if direct.suffix in (".yaml", ".yml") and direct.is_file():
        return direct
    path = Path(str(resources.files("configs") / group / f"{name}.yaml"))
    if not path.is_file():
        available = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise AeqaError(
            f"unknown {group} preset {name!r}; use one of {', '.join(available)} or a YAML path"
        )
    return path


def load_config(schema: type[T], presets: list[Path], overrides: list[str]) -> T:
    """Merge presets (in order) and ``key=value`` overrides into a ``schema`` instance.

    Raises:
        AeqaError: an unknown key, a value of the wrong type or an unreadable preset.
    """
    try:
        merged = OmegaConf.structured(schema)
        for path in presets:
            merged = OmegaConf.merge(merged, OmegaConf.load(path))
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


def save_config(config: Any, path: Path) -> None:
    """Write the resolved config as YAML."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_yaml(config), encoding="utf-8")


def run_dir(command: str, name: str, root: Path = Path("outputs")) -> Path:
    """A new folder ``root/<command>/<YYYY-MM-DD>/<HH-MM-SS>_<name>/``."""
    now = dt.datetime.now()
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "run"
    base = root / command / now.strftime("%Y-%m-%d") / f"{now.strftime('%H-%M-%S')}_{safe}"
    path = base
    suffix = 1
    while path.exists():
        suffix += 1
        path = base.with_name(f"{base.name}-{suffix}")
    path.mkdir(parents=True)
    return path
