"""Every script in benchmarks/ has a smoke mode, run here so that a benchmark cannot rot unnoticed.

Smoke runs check that the script still runs end to end on tiny inputs; they measure nothing
(speed targets are read from full runs, never asserted in tests).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(p.name for p in (ROOT / "benchmarks").glob("*.py"))


@pytest.fixture(scope="module")
def smoke_cohort_folder(tmp_path_factory):
    """One 12-subject demo cohort for every script's smoke run (each would build the same one)."""
    from smmt_core.bench.smoke import make_smoke_cohort

    return make_smoke_cohort(tmp_path_factory.mktemp("smoke") / "cohort")


@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_smoke_mode_runs(script, tmp_path, smoke_cohort_folder):
    from smmt_core.bench.smoke import SMOKE_COHORT_ENV

    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), SMMT_CACHE_DIR=str(tmp_path / "cache"),
               SMMT_DEMO_DIR=str(tmp_path / "demo"), QT_QPA_PLATFORM="offscreen", MPLBACKEND="Agg",
               **{SMOKE_COHORT_ENV: str(smoke_cohort_folder)})
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--smoke"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{script} --smoke failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    assert done.stdout.strip() or done.stderr.strip()  # it reported something
