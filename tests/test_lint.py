"""ruff (lint and format) and mypy stay clean, as part of the test suite."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is not installed (setup.sh --dev)")
def test_ruff_clean() -> None:
    lint = _run(["ruff", "check", "."])
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = _run(["ruff", "format", "--check", "."])
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


@pytest.mark.slow
def test_mypy_clean() -> None:
    pytest.importorskip("mypy", reason="mypy is not installed (setup.sh --dev)")
    result = _run([sys.executable, "-m", "mypy"])
    assert result.returncode == 0, result.stdout + result.stderr
