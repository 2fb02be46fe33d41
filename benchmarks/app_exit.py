"""How long SMMT Studio takes to exit when its window is closed while a job runs.

Why: closing the window during training froze it for up to 2 s and the process took 6-9 s to end
(16 s during "Predict all"). The user closes the window and expects the app to be gone, promptly,
with no training process left behind.

How: the real app (`smmt_gui.app.main`, the same code as `smmt-gui`) runs as a subprocess
(offscreen Qt unless QT_QPA_PLATFORM says otherwise). A driver inside it starts a job the way a
user would (Train: `MainWindow.start_training`; Predict all: a model and a cohort opened from the
command line, then `MainWindow.predict_all`), waits until the job is under way, and closes the
window as the window manager would (`close()`). It prints time stamps; this script times, per
trial:

    close -> window closed      the jobs winding down (the window says "stopping…" meanwhile)
    window closed -> main done  the app's own teardown (deleting the window)
    main done -> process gone   the interpreter's exit
    close -> process gone       what the user waits for (the target: a couple of seconds at most)

and checks that every child process of the app (the training process) is gone once the app has
exited (an orphan is reported, and makes the exit code 1).

Scenarios: `training` (closed during the first epoch's batches), `training-epoch` (closed after
an epoch ended, so the stopped run still evaluates its best checkpoint on the test set),
`predict-all` (closed while "Predict all" runs over the cohort).

    python benchmarks/app_exit.py                      # 3 trials of each scenario, demo cohort
    python benchmarks/app_exit.py --trials 5 --scenarios training predict-all --json exit.json
    python benchmarks/app_exit.py --smoke              # 12 subjects, tiny model, training-epoch + predict-all once (tests)

Results: docs/gui-responsiveness.md ("Closing the app").
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCENARIOS = ("training", "training-epoch", "predict-all")
TARGET_EXIT_S = 2.0
DRIVER_TIMEOUT_S = 600


# ------------------------------------------------------------------ inside the app's process
def _say(*words) -> None:
    print("BENCH", *words, time.time(), flush=True)


def drive(scenario: str, data: str, runs: str, model: str | None) -> int:
    """Run the real app, start `scenario`'s job once the window is up, close the window once the
    job is under way, and report the time of each step on stdout."""
    import psutil
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from smmt_gui.app import main

    app = QApplication(sys.argv[:1])  # main() reuses it; it has to exist for the timers below

    def window():
        from smmt_gui.main_window import MainWindow

        found = [w for w in app.topLevelWidgets() if isinstance(w, MainWindow)]
        return found[0] if found else None

    def children() -> list[int]:
        return [c.pid for c in psutil.Process().children(recursive=True)]

    def close(main_window) -> None:
        _say("CHILDREN", *children())
        main_window.closed.connect(lambda: _say("WINDOW_CLOSED"))
        _say("CLOSE")
        main_window.close()

    def poll(check, then, every_ms: int = 20) -> None:
        """Call `then(window)` once `check(window)` holds (the app keeps running meanwhile)."""
        timer = QTimer(app)

        def tick():
            w = window()
            if w is not None and check(w):
                timer.stop()
                then(w)
        timer.timeout.connect(tick)
        timer.start(every_ms)

    if scenario.startswith("training"):
        from smmt_core.bench.smoke import SMOKE_MODEL
        from smmt_core.train.config import TrainConfig

        size = SMOKE_MODEL if os.environ.get("SMMT_BENCH_SMOKE") else {}
        config = TrainConfig.build("demo", dataset=data, out=runs, run_name=f"exit-{os.getpid()}", device="cpu",
                                   epochs=50, **size)
        under_way = ((lambda w: len(w.dashboard.epochs) >= 1) if scenario == "training-epoch"
                     else (lambda w: len(w.dashboard.batch_x) >= 2))
        poll(lambda w: w.isVisible(), lambda w: (w.start_training(config), poll(under_way, close)))
        args = ["--no-runs"]
    else:
        def start_predicting(w) -> None:
            w.predict_all()
            poll(lambda w: w.progress.value() >= 1, close)
        poll(lambda w: w.session.predictor is not None and w.session.subjects() and not w.is_busy(), start_predicting)
        args = ["--model", model, data]
    code = main(args)
    _say("MAIN_DONE")
    return code


# ------------------------------------------------------------------ the benchmark
def one_trial(scenario: str, data: Path, runs: Path, model: Path | None, env: dict) -> dict:
    """Start the app as a subprocess running `scenario`; time the close and look for orphans."""
    import psutil

    command = [sys.executable, str(Path(__file__).resolve()), "--drive", scenario, "--data", str(data),
               "--runs", str(runs)] + (["--model", str(model)] if model else [])
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        out, err = process.communicate(timeout=DRIVER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise RuntimeError(f"{scenario}: the app did not exit within {DRIVER_TIMEOUT_S} s\n{err[-2000:]}") from None
    gone_at = time.time()  # communicate() returns once the process has exited and its pipes closed
    stamps, child_pids = {}, []
    for line in out.splitlines():
        words = line.split()
        if words[:1] == ["BENCH"]:
            stamps[words[1]] = float(words[-1])
            if words[1] == "CHILDREN":
                child_pids = [int(w) for w in words[2:-1]]
    if process.returncode != 0 or "CLOSE" not in stamps:
        raise RuntimeError(f"{scenario}: the app failed (exit code {process.returncode})\n{out[-1500:]}\n{err[-3000:]}")
    # Every child must end with the app (multiprocessing's resource tracker, a child too, ends as
    # soon as it reads the end of its pipe: allow it a moment).
    alive = []
    for pid in child_pids:
        try:
            alive.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            pass
    _, orphaned = psutil.wait_procs(alive, timeout=3.0)
    orphans = [p.pid for p in orphaned]
    for p in orphaned:  # do not leave them to the machine
        p.kill()
    close, closed, done = stamps["CLOSE"], stamps.get("WINDOW_CLOSED"), stamps.get("MAIN_DONE")
    return {
        "scenario": scenario,
        "close_to_window_closed_s": round(closed - close, 2) if closed else None,
        "window_closed_to_main_done_s": round(done - closed, 2) if closed and done else None,
        "main_done_to_exit_s": round(gone_at - done, 2) if done else None,
        "close_to_exit_s": round(gone_at - close, 2),
        "children_at_close": len(child_pids),
        "orphans": orphans,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3, help="closes per scenario (default 3)")
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--data", help="dataset folder (default: the SYNTHETIC demo cohort, built if needed)")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--smoke", action="store_true", help="12 subjects, the tiny model, training-epoch and predict-all once (tests)")
    parser.add_argument("--drive", choices=SCENARIOS, help=argparse.SUPPRESS)  # inside the app's process
    parser.add_argument("--runs", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.drive:
        return drive(args.drive, args.data, args.runs, args.model)

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    work = Path(tempfile.mkdtemp(prefix="smmt-exit-bench-"))
    env = dict(os.environ, SMMT_SETTINGS_DIR=str(work / "settings"), SMMT_RUNS_DIR=str(work / "runs"),
               CODECARBON_LOG_LEVEL="error", PYTHONPATH=os.pathsep.join(
                   [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    try:
        from smmt_core.bench.predict_latency import make_untrained_run
        from smmt_core.bench.smoke import smoke_cohort
        from smmt_core.data.demo import ensure_demo_cohort

        if args.smoke:  # both kinds of job the app can be closed during (`training` differs only in when)
            args.trials, args.scenarios = 1, ["training-epoch", "predict-all"]
            data = smoke_cohort(work)
            env["OMP_NUM_THREADS"] = "1"
            env["SMMT_BENCH_SMOKE"] = "1"  # the app trains the tiny model (smmt_core.bench.smoke)
        else:
            data = Path(args.data) if args.data else ensure_demo_cohort()
        model = make_untrained_run(work / "model") if "predict-all" in args.scenarios else None
        trials = []
        for scenario in args.scenarios:
            for k in range(args.trials):
                print(f"{scenario}: close {k + 1}/{args.trials}…", file=sys.stderr)
                trials.append(one_trial(scenario, data, work / "runs", model, env))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    load = os.getloadavg()[0]
    print(f"close -> process gone, s ({os.cpu_count()} CPUs, 1-min load {load:.1f}; target <= {TARGET_EXIT_S:.0f} s)")
    print(f"{'scenario':>15} {'trials':>6} {'median':>7} {'max':>6}   per trial: stopping jobs + app teardown + "
          f"interpreter exit")
    summary = {}
    for scenario in args.scenarios:
        rows = [t for t in trials if t["scenario"] == scenario]
        totals = [t["close_to_exit_s"] for t in rows]
        summary[scenario] = {"median_s": statistics.median(totals), "max_s": max(totals), "trials": len(rows)}
        parts = ", ".join(f"{t['close_to_window_closed_s']}+{t['window_closed_to_main_done_s']}+"
                          f"{t['main_done_to_exit_s']}" for t in rows)
        print(f"{scenario:>15} {len(rows):>6} {statistics.median(totals):>7.2f} {max(totals):>6.2f}   {parts}")
    orphans = [pid for t in trials for pid in t["orphans"]]
    print(f"child processes left after exit: {len(orphans)}"
          + (f" (pids {orphans}, killed now)" if orphans else f" (of {sum(t['children_at_close'] for t in trials)} "
                                                                "alive at the close)"))
    if args.json:
        args.json.write_text(json.dumps({"trials": trials, "summary": summary, "load_avg_1min": round(load, 1),
                                         "cpus": os.cpu_count(), "target_s": TARGET_EXIT_S}, indent=2))
    return 1 if orphans else 0


if __name__ == "__main__":
    sys.exit(main())
