"""Run folders and saved configs: where a command writes its outputs."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

from aeqa.envs.config import to_yaml


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
