"""Fake per-scan steps for `smmt_core.cli.intake_commands.preprocess_scans`: they run in the
worker processes, so they live in a light module the workers can import (not in a test module).

Each scan's subject name says what the fake does, and every start is logged (one line per scan in
`started.txt` beside the scans), so a test can see which scans a worker began:
  "slow..."   waits until the run is stopped, then stops as `run_intake` does (IntakeCancelled);
  "crash..."  the worker process dies (as the out-of-memory killer would end it);
  "hang..."   never ends and ignores the stop (a library call that does not return);
  otherwise   a pass at once, the input itself as the registered T1.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

NEVER_STOPPED_S = 120.0  # a bound, not a timing: a slow scan that is never stopped fails the test


def started_log(t1) -> Path:
    return Path(t1).parent / "started.txt"


def fake_scan(scan, stop, *, settings: dict, cache_root) -> dict:
    subject, _, t1 = scan
    with open(started_log(t1), "a") as log:
        log.write(subject + "\n")
    if subject.startswith("slow"):
        from smmt_core.data.intake import IntakeCancelled

        if not stop.wait(NEVER_STOPPED_S):
            raise RuntimeError("the slow scan was never stopped")
        raise IntakeCancelled(t1)
    if subject.startswith("crash"):
        os._exit(9)
    if subject.startswith("hang"):
        threading.Event().wait()
    return {"source": t1, "t1_mni": t1, "native": t1, "picture": None, "device": None, "notes": [],
            "qc": {"verdict": "pass", "score": 1.0, "mask_dice": None, "reason": "fake"},
            "steps_run": ["measure", "qc"], "steps_skipped": {}, "measures": {}, "seconds": {"measure": 0.0}}
