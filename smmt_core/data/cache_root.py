"""Where SMMT Studio keeps what it computes once per scan or per machine: preprocessed scans, the
intake's results and the MNI template. One place below every module that writes there."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """$SMMT_CACHE_DIR, else ~/.cache/smmt-studio/mri: preprocessed scans, and the intake's results below."""
    env = os.environ.get("SMMT_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "smmt-studio" / "mri"
