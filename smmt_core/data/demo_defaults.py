"""Where the SYNTHETIC demo cohort goes and the defaults it is built with; imports nothing heavy.

The generator itself (`smmt_core.data.demo`) needs numpy, nibabel and scipy; these few values are
also read by `smmt demo-data --help` and the wizard, which must not load the generator to show
them. `smmt_core.data.demo` re-exports all of them.
"""

from __future__ import annotations

import os
from pathlib import Path

DEMO_DIR_ENV = "SMMT_DEMO_DIR"
# 400: the smallest size at which the demo model learns from the MRI (docs/experiments.md: at 120
# subjects MRI-only test AUC 0.57, at 400 0.87). Built in ~100 s, trained in ~3 min on 2 CPU cores.
DEFAULT_SUBJECTS = 400
DEFAULT_SEED = 0
DEFAULT_MISSING_RATE = 0.15


def default_demo_dir() -> Path:
    """Where the app keeps its demo cohort: $SMMT_DEMO_DIR or ~/.local/share/smmt-studio/demo-cohort."""
    configured = os.environ.get(DEMO_DIR_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".local" / "share" / "smmt-studio" / "demo-cohort"
