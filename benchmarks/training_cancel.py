"""How quickly Cancel ends a training run in the dashboard, next to the time of one batch.

Why: "After Cancel ... stopping took about 10 s; stop within one batch." The training runs in a
child process; Cancel sets a flag the child reads directly, its loop checks the flag before every
batch, and the child reports (StopSeen) how many batches were done when the flag arrived and
when the loop saw it.

How: the real `TrainingDashboard` (offscreen) trains the `demo` preset on the SYNTHETIC demo
cohort (the MRI cache is filled by the first run, so later runs start quickly). Each trial starts a
run, waits until it is under way, presses Cancel (`dashboard.cancel()`) and times, in the GUI:

    Cancel -> StopSeen      the training loop has stopped (the batch in progress finished)
    Cancel -> run ended     the worker has finished: the child has written run.json, sent its
                            result and exited, and the dashboard shows "Cancelled"

and counts the batches that finished after the flag reached the child (0 or 1 is "within one
batch"). One batch's time is the median gap between the run's BatchProgress events (the child's
clock). Two moments to cancel: `first-epoch` (during the first epoch: no checkpoint yet) and
`after-epoch` (an epoch has ended: the stopped run still evaluates its best checkpoint on the test
set, as `train` documents, before it ends).

    python benchmarks/training_cancel.py                   # 5 cancels at each moment
    python benchmarks/training_cancel.py --trials 8 --json cancel.json
    python benchmarks/training_cancel.py --smoke            # a 12-subject cohort, 1 cancel each (tests)

Results: docs/gui-responsiveness.md ("Cancel").
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

MOMENTS = ("first-epoch", "after-epoch")


def spin(seconds: float, until) -> bool:
    """Run the Qt event loop until `until()` holds (True) or `seconds` have passed (False)."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    check = QTimer()
    check.timeout.connect(lambda: until() and loop.quit())
    check.start(5)
    deadline = QTimer()
    deadline.setSingleShot(True)
    deadline.timeout.connect(loop.quit)
    deadline.start(int(seconds * 1000))
    loop.exec()
    check.stop()
    deadline.stop()
    return bool(until())


def one_cancel(dashboard, config, moment: str, batches_into_epoch: int) -> dict:
    """Start `config`, cancel it at `moment`, and time the stop (GUI clock)."""
    from smmt_core.train.events import BatchProgress, StopSeen

    seen: dict = {}
    batch_elapsed: list[float] = []
    handle = dashboard.handle_event

    def timed(event) -> None:
        if isinstance(event, StopSeen) and "stop_seen" not in seen:
            seen["stop_seen"], seen["event"] = time.perf_counter(), event
        elif isinstance(event, BatchProgress):
            batch_elapsed.append(event.elapsed_s)
        handle(event)

    dashboard.handle_event = timed  # the worker's signal is connected to it in start()
    try:
        dashboard.start(config)
        epochs_first = 1 if moment == "after-epoch" else 0

        def under_way() -> bool:
            per_epoch = dashboard._batches_per_epoch or 10**9
            return (len(dashboard.epochs) >= epochs_first
                    and len(dashboard.batch_x) >= epochs_first * per_epoch + batches_into_epoch)

        if not spin(600, lambda: under_way() or not dashboard.is_running()) or not dashboard.is_running():
            raise RuntimeError(f"{moment}: the run ended or stalled before it could be cancelled")
        cancelled = time.perf_counter()
        dashboard.cancel()
        if not spin(600, lambda: not dashboard.is_running()):
            raise RuntimeError(f"{moment}: the run did not end within 600 s of Cancel")
        ended = time.perf_counter()
    finally:
        dashboard.handle_event = handle
    event = seen.get("event")
    gaps = [b - a for a, b in zip(batch_elapsed, batch_elapsed[1:]) if b > a]
    return {
        "moment": moment,
        "cancel_to_stop_seen_s": round(seen["stop_seen"] - cancelled, 3) if event else None,
        "cancel_to_end_s": round(ended - cancelled, 3),
        "batches_after_request": (event.batches_done - event.batches_at_request) if event else None,
        "batch_s": round(statistics.median(gaps), 3) if gaps else None,
        "title": dashboard.title_label.text(),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5, help="cancels at each moment (default 5)")
    parser.add_argument("--moments", nargs="+", choices=MOMENTS, default=list(MOMENTS))
    parser.add_argument("--data", help="dataset folder (default: the SYNTHETIC demo cohort, built if needed)")
    parser.add_argument("--preset", default="demo", help="training preset (default demo)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    parser.add_argument("--warm-cache", action="store_true", help="use the user's MRI cache instead of a fresh one")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--smoke", action="store_true", help="a 12-subject cohort, the tiny model, one cancel at each moment (tests)")
    args = parser.parse_args(argv)

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("CODECARBON_LOG_LEVEL", "error")
    work = Path(tempfile.mkdtemp(prefix="smmt-cancel-bench-"))
    if not args.warm_cache:
        os.environ["SMMT_CACHE_DIR"] = str(work / "mri-cache")
    from smmt_core.data.demo import ensure_demo_cohort
    from smmt_core.train.config import TrainConfig
    from smmt_gui.app import create_app
    from smmt_gui.panels.training import TrainingDashboard

    app = create_app(sys.argv[:1])  # noqa: F841 - must exist for the widgets
    overrides = {}
    if args.smoke:
        args.trials = 1
        from smmt_core.bench.smoke import SMOKE_MODEL, smoke_cohort

        data = smoke_cohort(work)
        overrides = dict(SMOKE_MODEL, batch_size=2)
    else:
        data = Path(args.data) if args.data else ensure_demo_cohort()
    dashboard = TrainingDashboard()
    dashboard.resize(1200, 800)
    dashboard.show()
    trials = []
    try:
        for moment in args.moments:
            for k in range(args.trials):
                print(f"{moment}: cancel {k + 1}/{args.trials}…", file=sys.stderr)
                config = TrainConfig.build(args.preset, dataset=str(data), out=str(work / "runs"), device=args.device,
                                           run_name=f"cancel-{moment}-{k}", epochs=50, **overrides)
                trials.append(one_cancel(dashboard, config, moment, batches_into_epoch=2 + k))
    finally:
        dashboard.stop_and_wait()
        dashboard.close()
        shutil.rmtree(work, ignore_errors=True)

    load = os.getloadavg()[0]
    print(f"Cancel in the dashboard, {args.preset} preset on {args.device} ({os.cpu_count()} CPUs, 1-min load {load:.1f})")
    print("Cancel -> loop stopped and Cancel -> run ended: median/max over the cancels")
    print(f"{'moment':>12} {'cancels':>7} {'one batch':>9} {'loop stopped':>14} {'run ended':>14} "
          f"{'batches after Cancel':>21}")
    summary = {}
    for moment in args.moments:
        rows = [t for t in trials if t["moment"] == moment]
        batch = statistics.median(t["batch_s"] for t in rows if t["batch_s"] is not None)
        seen = [t["cancel_to_stop_seen_s"] for t in rows if t["cancel_to_stop_seen_s"] is not None]
        ended = [t["cancel_to_end_s"] for t in rows]
        after = [t["batches_after_request"] for t in rows if t["batches_after_request"] is not None]
        summary[moment] = {"cancels": len(rows), "batch_s": batch,
                           "cancel_to_stop_seen_median_s": statistics.median(seen) if seen else None,
                           "cancel_to_stop_seen_max_s": max(seen) if seen else None,
                           "cancel_to_end_median_s": statistics.median(ended), "cancel_to_end_max_s": max(ended),
                           "batches_after_request_max": max(after) if after else None}
        s = summary[moment]
        stopped = f"{s['cancel_to_stop_seen_median_s']:.2f}/{s['cancel_to_stop_seen_max_s']:.2f} s"
        ended = f"{s['cancel_to_end_median_s']:.2f}/{s['cancel_to_end_max_s']:.2f} s"
        print(f"{moment:>12} {len(rows):>7} {batch:>7.2f} s {stopped:>14} {ended:>14} "
              f"{str(s['batches_after_request_max']) + ' at most':>21}")
    within_one = all(t["batches_after_request"] is not None and t["batches_after_request"] <= 1 for t in trials)
    print(f"every cancel stopped within one batch: {'yes' if within_one else 'NO'}")
    if args.json:
        args.json.write_text(json.dumps({"trials": trials, "summary": summary, "load_avg_1min": round(load, 1),
                                         "cpus": os.cpu_count(), "within_one_batch": within_one}, indent=2))
    return 0 if within_one else 1


if __name__ == "__main__":
    sys.exit(main())
