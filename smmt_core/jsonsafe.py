"""`json_safe`: values made fit for strict JSON (NaN and infinity become null, numpy becomes Python).

Every JSON file and `--json` output goes through it: run.json, checkpoints, `smmt predict --json`,
`smmt runs --json`. Apart from `smmt_core.train.metrics` (which re-exports it) because that module
needs scikit-learn and scipy, and a prediction or a listing of runs must not load them. It does not
import numpy either (the `smmt` parser imports this module): a numpy value can only exist once
numpy has been imported, so it looks numpy up in `sys.modules`.
"""

from __future__ import annotations

import math
import sys
from pathlib import PurePath


def json_safe(value):
    """Replace NaN/inf with None and numpy scalars with Python ones, recursively, for strict JSON."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    np = sys.modules.get("numpy")
    if np is not None and isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if np is not None and isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
