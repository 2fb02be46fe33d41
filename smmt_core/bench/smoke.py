"""What a benchmark's `--smoke` mode runs on (the test suite runs every benchmark that way).

A smoke run checks that a benchmark still runs end to end and measures nothing, so it trains the
tests' tiny model (an 8 mm grid, 2 slices of 16x16, d_model 32) rather than a preset's full size,
on a 12-subject demo cohort that the test suite builds once for all the scripts
($SMMT_SMOKE_COHORT): with the demo preset's own size and a cohort built per script, the smoke
runs of the GUI benchmarks alone took minutes of CI.
"""

from __future__ import annotations

import os
from pathlib import Path

SMOKE_MODEL = dict(d_model=32, n_heads=2, n_fusion_tokens=2, image_size=16, n_slices=2, resolution_mm=8.0,
                   measure_energy=False)
# The same model as `smmt train` flags (for benchmarks and tests that run the command).
SMOKE_MODEL_FLAGS = ["--d-model", "32", "--n-heads", "2", "--n-fusion-tokens", "2", "--image-size", "16",
                     "--slices", "2", "--channels", "1", "--resolution", "8"]
SMOKE_SUBJECTS = 12
SMOKE_COHORT_ENV = "SMMT_SMOKE_COHORT"


def smoke_cohort(work: str | Path) -> Path:
    """The smoke runs' demo cohort: $SMMT_SMOKE_COHORT when set (built by the caller with
    `make_smoke_cohort`), else one built under `work`."""
    given = os.environ.get(SMOKE_COHORT_ENV)
    return Path(given) if given else make_smoke_cohort(Path(work) / "smoke-cohort")


def make_smoke_cohort(folder: str | Path) -> Path:
    from smmt_core.data.demo import make_demo_cohort

    return make_demo_cohort(folder, n_subjects=SMOKE_SUBJECTS, seed=0)
