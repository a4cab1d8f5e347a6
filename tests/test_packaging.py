"""The distribution installs one top-level package, ``aeqa``, so nothing generic such as
``agents`` or ``envs`` lands at the top of a user's site-packages."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("agents", "configs", "envs", "evaluation", "launch", "mapping", "viz")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    # Build from a copy: setuptools leaves build/ and *.egg-info beside the sources it builds.
    source = tmp_path_factory.mktemp("source") / "aeqa"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", "build", "outputs", "*.egg-info", "__pycache__", ".*_cache", "tests"
        ),
    )
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
        + ["-w", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    (path,) = out.glob("aeqa-*.whl")
    return zipfile.ZipFile(path)


def test_wheel_holds_only_the_aeqa_namespace(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    tops = {name.split("/")[0] for name in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"aeqa"}
    for folder in FOLDERS:
        assert any(n.startswith(f"aeqa/{folder}/") for n in names), folder
    assert "aeqa/envs/meshsim/simulator.py" in names
    assert "aeqa/envs/habitat/simulator.py" in names
    assert "aeqa/launch/install_habitat.sh" in names
    assert "aeqa/configs/sim/discrete.yaml" in names
    (entry_points,) = [n for n in names if n.endswith("entry_points.txt")]
    assert "aeqa = aeqa.launch.cli:main" in wheel.read(entry_points).decode()


def test_imports_name_no_generic_top_level_package() -> None:
    code = (
        "import sys, aeqa.launch.cli, aeqa.evaluation.batch, aeqa.viz.visualize; "
        f"print(sorted(set({FOLDERS!r}) & set(sys.modules)))"
    )
    # Run outside the repository so its folders are not importable from the working directory.
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd="/", timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
