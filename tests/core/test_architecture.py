"""The layering of docs/architecture.md, checked statically with import-linter's contracts, and ruff.

Both tools are in the `test` extra: a missing one is a failure, not a skip, so that a broken
install cannot pass these checks in silence.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _tool(name: str, package: str) -> str:
    """The tool installed beside this interpreter (or on PATH); a failure naming the extra if absent."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: it comes with the test extra ({package}; pip install -e '.[test]')")
    return found


def test_import_contracts_are_kept():
    lint = _tool("lint-imports", "import-linter")
    done = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "BROKEN" not in done.stdout


def test_ruff_is_clean():
    ruff = _tool("ruff", "ruff")
    done = subprocess.run([ruff, "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
