"""Package boundaries that DESIGN.md sets: only ``envs/`` knows a simulator's insides; every
other package reaches a scene through the ``Simulator`` protocol (``make_simulator``)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: packages that must not reach past the protocol
OUTSIDE_ENVS = ("agents", "mapping", "evaluation", "viz", "launch")
#: modules of a backend's or the navmesh's insides
INSIDES = ("aeqa.envs.meshsim", "aeqa.envs.navigation")
_NAMED = re.compile(r"envs\.(meshsim|navigation)\b")


def _imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of every import, ``from X import Y`` giving ``X.Y`` too."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def _sources() -> list[Path]:
    return sorted(p for package in OUTSIDE_ENVS for p in (ROOT / package).rglob("*.py"))


def test_the_scanned_packages_are_there() -> None:
    assert len(_sources()) > 20


@pytest.mark.parametrize("package", OUTSIDE_ENVS)
def test_no_package_outside_envs_reaches_into_a_backend(package: str) -> None:
    offending = []
    for path in sorted((ROOT / package).rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        where = path.relative_to(ROOT)
        for line, module in _imported_modules(ast.parse(text, str(path))):
            if any(module == inside or module.startswith(inside + ".") for inside in INSIDES):
                offending.append(f"{where}:{line} imports {module}")
        # Lazy imports by name (importlib) and mentions in strings count too.
        for number, line_text in enumerate(text.splitlines(), start=1):
            named = _NAMED.search(line_text)
            if named is not None:
                offending.append(f"{where}:{number} names {named.group(0)}")
    assert not offending, "use the Simulator protocol (aeqa.envs.simulator) instead:\n" + "\n".join(
        offending
    )


def test_the_scan_finds_what_it_looks_for() -> None:
    source = "from aeqa.envs.meshsim.simulator import MeshSim\nfrom aeqa.envs import navigation\n"
    modules = [m for _, m in _imported_modules(ast.parse(source))]
    assert "aeqa.envs.meshsim.simulator" in modules and "aeqa.envs.navigation" in modules
    assert _NAMED.search('importlib.import_module("aeqa.envs.navigation")')
    assert not _NAMED.search('SimConfig(type="meshsim")')
