"""``launch/install_habitat.sh``: it parses, passes shellcheck where installed, and refuses bad
options before doing anything (the build itself takes about 15 minutes and is not run here)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "launch" / "install_habitat.sh"


def test_script_parses() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_script_passes_shellcheck() -> None:
    result = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_bad_options_are_refused_first() -> None:
    for args, message in (
        (["--jobs", "many"], "--jobs must be a positive number, got many"),
        (["--fast"], "unknown option --fast"),
    ):
        result = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True)
        assert result.returncode == 2
        assert message in result.stderr
        assert result.stdout == ""


def test_script_builds_the_documented_release_headless() -> None:
    text = SCRIPT.read_text()
    assert 'VERSION="v0.3.3"' in text
    assert "--recurse-submodules" in text
    assert "HEADLESS=True WITH_BULLET=False WITH_AUDIO=False WITH_CUDA=False" in text
    assert '"cmake>=3.22,<4"' in text and "--no-build-isolation" in text
