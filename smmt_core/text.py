"""How numbers read to a person, in one place (the CLI, the GUI and the reports use it)."""

from __future__ import annotations

import math


def format_duration(seconds: float | None) -> str:
    """'45 s', '3 min 05 s', '1 h 02 min'; '?' when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {(seconds % 3600) // 60:02d} min"
