"""Run folders and saved configs: where a command writes its outputs."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from aeqa.envs.errors import REDACTED

#: config fields that hold secrets: saved as :data:`~aeqa.envs.errors.REDACTED` where set
SECRET_FIELDS = frozenset({"api_key"})


def _redact_fields(node: Any) -> None:
    if isinstance(node, DictConfig):
        for key in node:
            value = node[key]
            if key in SECRET_FIELDS and isinstance(value, str) and value:
                node[key] = REDACTED
            else:
                _redact_fields(value)
    elif isinstance(node, ListConfig):
        for item in node:
            _redact_fields(item)


def config_yaml(config: Any) -> str:
    """The resolved config as YAML, with secrets (:data:`SECRET_FIELDS`, such as
    ``answerer.api_key``) shown as ``***``: the form a run folder keeps and compares."""
    node = OmegaConf.structured(config)
    _redact_fields(node)
    return OmegaConf.to_yaml(node)


def save_config(config: Any, path: Path) -> None:
    """Write the resolved config as YAML (:func:`config_yaml`: secrets redacted)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(config_yaml(config), encoding="utf-8")


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
