"""The built wheel imports the same way as the checkout: `alloy.runtime`, never a top-level `operator`."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
    )
    [built] = out.glob("alloy-*.whl")
    return built


def test_wheel_maps_components_under_alloy(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "alloy/runtime/app.py" in names
    assert "alloy/py.typed" in names
    assert not any(name.startswith(("runtime/", "router/", "operator/", "tests/")) for name in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "alloy = alloy.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


# Run in a child process that forgets the development install (its import hook and link tree), so every
# module must come from the unpacked wheel.
PROBE = """
import importlib, pkgutil, sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__.lower()]
sys.path[:] = [sys.argv[1]] + [p for p in sys.path if "__editable__" not in p]
import alloy, operator
names = [m.name for m in pkgutil.walk_packages(alloy.__path__, "alloy.")]
for name in names:
    module = importlib.import_module(name)
    assert module.__file__.startswith(sys.argv[1]), (name, module.__file__)
print(len(names), operator.__file__)
"""


def test_every_module_imports_from_the_installed_wheel(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)]
    subprocess.run(pip, check=True)
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(target)], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    count, operator_file = result.stdout.split()
    assert int(count) > 20, "the components' subpackages are in the wheel"
    assert not operator_file.startswith(str(target)), "the standard library's operator is not shadowed"


def test_running_python_from_the_repository_root_keeps_the_standard_operator() -> None:
    """`python -m pytest` puts the root on sys.path; `operator/` must not shadow the standard library."""
    probe = "import operator, collections; print(operator.__file__); assert operator.eq(1, 1)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert not result.stdout.strip().startswith(str(ROOT))
