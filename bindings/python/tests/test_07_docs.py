"""7. docs/python.md: every ```python block runs as it is, in a fresh
interpreter (as a reader would paste it), and prints what its comments say."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

from conftest import REPO, child_env

DOC = REPO / "docs" / "python.md"


def python_blocks() -> List[str]:
    return re.findall(r"^```python\n(.*?)^```$", DOC.read_text(), flags=re.S | re.M)


def test_7_0_the_page_has_its_quick_starts() -> None:
    assert len(python_blocks()) >= 3


@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_7_1_code_block_runs(index: int, tmp_path: Path) -> None:
    code = python_blocks()[index]
    if os.environ.get("PARLEY_WITHOUT_SERVER") == "1" and "parley.Server(" in code:
        pytest.skip("built without the server (PARLEY_BUILD_SERVER=OFF)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=child_env(),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"block {index}:\n{code}\nstdout:\n{out.stdout}\nstderr:\n{out.stderr}"
    # A comment after print(...) shows the start of what it prints (up to "...").
    for expected in re.findall(r"print\(.*\)\s+# (.+)$", code, flags=re.M):
        shown = expected.split("...")[0].split(" (")[0].strip()
        assert shown in out.stdout, f"block {index}: {shown!r} not in\n{out.stdout}"
