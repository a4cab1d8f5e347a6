"""Run folders and saved configs: where a command writes its outputs."""

from __future__ import annotations

import argparse
import datetime as dt
import re
import tempfile
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from aeqa.envs.errors import REDACTED, AeqaError

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
    """A new folder ``root/<command>/<YYYY-MM-DD>/<HH-MM-SS>_<name>/``.

    Raises:
        AeqaError: the folder cannot be created (``root`` is not writable).
    """
    now = dt.datetime.now()
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "run"
    base = root / command / now.strftime("%Y-%m-%d") / f"{now.strftime('%H-%M-%S')}_{safe}"
    path = base
    suffix = 1
    while path.exists():
        suffix += 1
        path = base.with_name(f"{base.name}-{suffix}")
    try:
        path.mkdir(parents=True)
    except OSError as e:
        raise AeqaError(
            f"cannot create the run folder {path} ({e.strerror or e}); run from a folder you "
            "can write to, or give --out"
        ) from e
    return path


def check_output_dir(path: Path, option: str = "--out") -> None:
    """Raise unless ``path`` is a folder this process can write in, or one it can create.

    Nothing is left behind: writing is probed with a temporary file that is removed at once,
    in ``path`` or, where it does not exist yet, in the folder it would be created in.

    Raises:
        AeqaError: ``path`` (or a folder above it) is a file, or writing there fails.
    """
    if path.exists() and not path.is_dir():
        raise AeqaError(f"{option} {path}: a file, not a folder; give a folder path")
    existing = path.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise AeqaError(f"{option} {path}: {existing} is a file, not a folder; give a folder path")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as e:
        raise AeqaError(
            f"{option} {path}: cannot write in {existing} ({e.strerror or e}); give a folder "
            "you can write to"
        ) from e


def add_preset_options(parser: argparse.ArgumentParser) -> None:
    """``--preset`` (a name for both groups) and ``--sim-preset`` / ``--agent-preset`` (a name
    or a YAML file of one group's keys, merged over it): the options
    :func:`aeqa.agents.episode.resolve_episode_config` takes."""
    parser.add_argument(
        "--preset",
        default="discrete",
        help="discrete or aeqa: picks configs/sim/NAME.yaml and configs/agent/NAME.yaml",
    )
    parser.add_argument(
        "--sim-preset",
        default=None,
        metavar="NAME_OR_YAML",
        help="sim keys (width, hfov_deg, ...) merged over the --preset's: a preset name or a "
        "YAML file",
    )
    parser.add_argument(
        "--agent-preset",
        default=None,
        metavar="NAME_OR_YAML",
        help="explorer keys (score, max_steps, ...) merged over the --preset's: a preset name "
        "or a YAML file",
    )


def check_episode_options(seed: int | None, max_steps: int | None) -> None:
    """``--seed`` and ``--max-steps`` checked under their own names, before they become the
    overrides ``seed=`` and ``explorer.max_steps=`` (which the config checks again).

    Raises:
        AeqaError: a negative seed or a step budget below 1.
    """
    from aeqa.agents.explorer import ExplorerConfig
    from aeqa.envs.config import NON_NEGATIVE, check_value

    if seed is not None:
        check_value("--seed", seed, NON_NEGATIVE, 0)
    if max_steps is not None:
        check_value("--max-steps", max_steps, ExplorerConfig.LIMITS["max_steps"], 100)
