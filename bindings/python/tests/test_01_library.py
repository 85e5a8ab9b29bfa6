"""1. Loading the library: where it is found, versions, error names."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import parley
from parley import _lib, errors

from conftest import child_env


def test_1_1_loads_and_versions_agree() -> None:
    assert parley.library_path()
    assert parley.library_version() == parley.__version__
    assert _lib.lib().parley_version() == _lib.HEADER_VERSION_NUMBER


def test_1_2_every_code_has_its_class_and_the_library_name() -> None:
    for code in range(1, 14):
        cls = errors.ERRORS[code]
        assert cls.code == code
        assert cls.name == parley.strerror(code)
        assert issubclass(cls, parley.ParleyError)
        e = parley.error_from_code(code, "why")
        assert type(e) is cls and e.code == code and e.message == "why"
        assert str(e) == f"{cls.name}: why"
    assert parley.strerror(0) == parley.error_name(0) == "ok"
    assert parley.strerror(99) == parley.error_name(99) == "unknown"
    unknown = parley.error_from_code(99, "new")
    assert type(unknown) is parley.ParleyError and unknown.code == 99 and unknown.name == "unknown"


def test_1_3_every_header_function_is_declared() -> None:
    header = (Path(__file__).resolve().parents[3] / "include" / "parley" / "parley.h").read_text()
    declared = set(re.findall(r"PARLEY_EXPORT [^(]*?\b(parley_\w+)\(", header))
    assert declared == set(_lib._FUNCTIONS), declared ^ set(_lib._FUNCTIONS)


def test_1_4_a_bad_parley_library_is_a_clear_error() -> None:
    env = child_env()
    env["PARLEY_LIBRARY"] = "/nonexistent/libparley_c.so"
    code = "import parley\ntry:\n    parley.Store.memory()\nexcept parley.LibraryError as e:\n    print('LibraryError', e)\n"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "LibraryError" in out.stdout and "/nonexistent/libparley_c.so" in out.stdout


def test_1_5_import_needs_no_library() -> None:
    env = child_env()
    env["PARLEY_LIBRARY"] = "/nonexistent/libparley_c.so"
    code = "import parley; print(parley.NotFound('x').code)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "2", out.stderr


def test_1_6_library_found_beside_the_package(tmp_path: Path) -> None:
    package = tmp_path / "parley"
    shutil.copytree(Path(parley.__file__).parent, package)
    shutil.copy(parley.library_path(), package / "libparley_c.so")
    env = child_env()
    del env["PARLEY_LIBRARY"]
    env["PYTHONPATH"] = str(tmp_path)
    code = "import parley; print(parley.library_path())"
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(package / "libparley_c.so")
