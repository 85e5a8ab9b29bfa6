"""8. The package: a pure-Python wheel (nothing compiled) that works once
installed, and type hints on the public API."""

from __future__ import annotations

import inspect
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import parley
from conftest import BINDING, child_env


def test_8_1_the_wheel_is_pure_python_and_works(tmp_path: Path) -> None:
    pytest.importorskip("setuptools", reason="building the wheel needs setuptools (python3-setuptools)")
    src = tmp_path / "src"
    shutil.copytree(BINDING, src, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    dist = tmp_path / "dist"
    build = "from setuptools import build_meta; print(build_meta.build_wheel(%r))" % str(dist)
    out = subprocess.run([sys.executable, "-c", build], cwd=src, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    wheel = dist / out.stdout.strip().splitlines()[-1]
    assert wheel.name == "parley-0.1.0-py3-none-any.whl"
    names = zipfile.ZipFile(wheel).namelist()
    assert "parley/py.typed" in names and "parley/node.py" in names
    assert not [n for n in names if n.endswith((".so", ".c", ".cpp", ".pyd"))]
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    env = child_env()
    env["PYTHONPATH"] = str(site)
    code = "import parley; s = parley.Store.memory(); s.create_group('g', 'a'); print(parley.__file__); s.close()"
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith(str(site))


def test_8_2_the_public_api_has_type_hints() -> None:
    for cls in (parley.Node, parley.Store, parley.Server):
        for name, member in vars(cls).items():
            if name.startswith("_") and name not in ("__init__", "__enter__", "__exit__"):
                continue
            fn = member.fget if isinstance(member, property) else getattr(member, "__func__", member)
            if not inspect.isfunction(fn):
                continue
            hints = fn.__annotations__
            assert "return" in hints, f"{cls.__name__}.{name} has no return annotation"
            params = [p for p in inspect.signature(fn).parameters if p not in ("self", "cls")]
            assert all(p in hints for p in params), f"{cls.__name__}.{name} lacks parameter annotations"
