"""Event-loop stalls of the desktop app while a real training runs in the dashboard.

Why: the GUI must stay responsive while it trains (targets: p99 stall <= 30 ms and
the longest stall <= 100 ms). Training runs in a child process supervised by a worker thread (so
it does not hold the GUI's interpreter lock); every training event is still drawn in the GUI
thread; this measures what a user would feel.

How: a `TrainingDashboard` is shown (offscreen unless a display is set) and starts a real run
(default: the `demo` preset on the SYNTHETIC demo cohort, built first if needed, with a cold MRI
cache so preprocessing is part of it). A precise QTimer probe fires every `--probe-ms` ms in the
GUI thread; each tick's lateness (the time since the previous tick minus the interval) is a
stall. After `--seconds` of training the run is cancelled and joined. For comparison the same
probe first runs for a few seconds with nothing training (the baseline of the machine and the
timer). Prints p50 / p99 / max stall for both; `--json FILE` writes them too. For each of the five
longest stalls it says how much was garbage collection in this process and how late a separate,
idle reference process (ticking every 10 ms) was at the same moment: a stall that the reference
shares is the machine's (CPU contention, the kernel), not the app's.

    python benchmarks/gui_responsiveness.py                  # ~1 min of demo-preset training
    python benchmarks/gui_responsiveness.py --seconds 30 --json stalls.json
    python benchmarks/gui_responsiveness.py --toggles 20 --seconds 0   # toggle-to-repaint only

`--toggles N` first measures what a user feels when switching a modality: the main
window with an (untrained) demo-preset model and a 1 mm T1 subject; N times a modality is switched
off or on and the time runs until the new prediction is drawn and the window repainted.

Results and discussion: docs/gui-responsiveness.md.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET_P99_MS = 30.0
TARGET_MAX_MS = 100.0


def summarise(gaps_ms: list[float], interval_ms: float) -> dict:
    """Stall statistics from the probe's tick-to-tick gaps."""
    if not gaps_ms:
        return {"ticks": 0, "p50_ms": float("nan"), "p99_ms": float("nan"), "max_ms": float("nan"),
                "over_50ms": 0, "frozen_pct": 0.0}
    gaps = np.asarray(gaps_ms, dtype=float)
    stalls = np.maximum(0.0, gaps - interval_ms)
    long = stalls > 50.0
    return {
        "ticks": int(stalls.size),
        "p50_ms": float(np.percentile(stalls, 50)),
        "p99_ms": float(np.percentile(stalls, 99)),
        "max_ms": float(stalls.max()),
        "over_50ms": int(long.sum()),
        # A long stall is one tick however long it lasts, so also say how much of the time was frozen.
        "frozen_pct": float(100.0 * stalls[long].sum() / gaps.sum()),
    }


class Probe:
    """A precise timer in the GUI thread that records the gap between its ticks.

    With `dump_file`, every tick re-arms `faulthandler.dump_traceback_later`: when the GUI thread
    misses ticks for `dump_after_ms`, faulthandler's own C thread (which needs no GIL) writes the
    Python stacks of all threads to the file, showing what the other threads were doing.

    Each gap also gets what the GUI thread did meanwhile: its CPU time (`time.thread_time`) and,
    where Linux keeps scheduler statistics, the time it sat runnable waiting for a CPU
    (/proc/thread-self/schedstat). The rest of a gap is sleeping until the tick was due, or
    waiting for the interpreter lock.
    """

    def __init__(self, interval_ms: int, dump_file=None, dump_after_ms: int = 300):
        from PySide6.QtCore import Qt, QTimer

        self.dump_file = dump_file
        self.dump_after_s = dump_after_ms / 1000.0
        self.interval_ms = interval_ms
        self.gaps_ms: list[float] = []
        self._last: float | None = None
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)

    @staticmethod
    def _runqueue_wait_s() -> float:
        try:
            with open("/proc/thread-self/schedstat") as handle:
                return int(handle.read().split()[1]) / 1e9
        except (OSError, IndexError, ValueError):
            return float("nan")

    def _tick(self) -> None:
        if self.dump_file is not None:
            faulthandler.dump_traceback_later(self.dump_after_s, repeat=False, file=self.dump_file)
        now, cpu, waited = time.perf_counter(), time.thread_time(), self._runqueue_wait_s()
        if self._last is not None:
            self.gaps_ms.append((now - self._last) * 1000.0)
            self.times.append(now)
            self.cpu_ms.append((cpu - self._last_cpu) * 1000.0)
            self.runqueue_ms.append((waited - self._last_waited) * 1000.0)
        self._last, self._last_cpu, self._last_waited = now, cpu, waited

    def start(self) -> None:
        self.gaps_ms.clear()
        self.times: list[float] = []  # when each gap ended (perf_counter seconds)
        self.cpu_ms: list[float] = []  # the GUI thread's CPU time in each gap
        self.runqueue_ms: list[float] = []  # its time runnable but not running (NaN where unknown)
        self._last = None
        self.timer.start()

    def stop(self) -> list[float]:
        self.timer.stop()
        if self.dump_file is not None:
            faulthandler.cancel_dump_traceback_later()
        return list(self.gaps_ms)


class GcPauses:
    """Every garbage collection in this process (any thread: a collection holds the interpreter
    lock, so the GUI thread waits for it wherever it runs): when it ended, how long it took, its generation."""

    def __init__(self):
        import gc

        self.pauses: list[tuple[float, float, int]] = []  # (end, ms, generation)
        self._started = 0.0
        gc.callbacks.append(self)

    def __call__(self, phase: str, info: dict) -> None:
        now = time.perf_counter()
        if phase == "start":
            self._started = now
        else:
            self.pauses.append((now, (now - self._started) * 1000.0, int(info["generation"])))

    def close(self) -> None:
        import gc

        gc.callbacks.remove(self)

    def during(self, start: float, end: float) -> float:
        """Milliseconds of collection between `start` and `end` (perf_counter seconds)."""
        return sum(ms for t, ms, _ in self.pauses if start - ms / 1000.0 <= t <= end + 0.001)

    def summary(self, since: float) -> dict:
        pauses = [(ms, gen) for t, ms, gen in self.pauses if t >= since]
        out = {"collections": len(pauses), "total_ms": round(sum(ms for ms, _ in pauses), 1)}
        for gen in (0, 1, 2):
            times = [ms for ms, g in pauses if g == gen]
            out[f"gen{gen}"] = {"n": len(times), "max_ms": round(max(times, default=0.0), 1)}
        return out


# A separate, idle process that ticks every 10 ms and prints each tick that came more than 20 ms
# late (monotonic end time, lateness ms): when it was late at the same moment as the GUI, the
# machine (CPU contention, the kernel) held both, not the app.
REFERENCE_TICKER = """
import time
last = time.monotonic()
while True:
    time.sleep(0.01)
    now = time.monotonic()
    if now - last > 0.03:
        print(f"{now:.4f} {(now - last - 0.01) * 1000.0:.1f}", flush=True)
    last = now
"""


class ReferenceTicker:
    """The REFERENCE_TICKER process, and how late it was during a given stall."""

    def __init__(self):
        import subprocess

        self.offset = time.monotonic() - time.perf_counter()  # both are CLOCK_MONOTONIC on Linux; to be safe
        self.process = subprocess.Popen([sys.executable, "-c", REFERENCE_TICKER], stdout=subprocess.PIPE, text=True)
        self.late: list[tuple[float, float]] = []  # (end, ms) in perf_counter seconds

    def stop(self) -> None:
        self.process.terminate()
        out, _ = self.process.communicate()
        for line in out.split("\n"):
            if line.strip():
                end, ms = (float(x) for x in line.split())
                self.late.append((end - self.offset, ms))

    def late_during(self, start: float, end: float) -> float:
        """The reference's longest lateness overlapping [start, end] (perf_counter seconds), ms."""
        return max((ms for t, ms in self.late if t >= start and t - ms / 1000.0 - 0.01 <= end), default=0.0)


def spin(seconds: float, until=None) -> None:
    """Run the real Qt event loop for `seconds`, or until `until()` turns true (checked every 50 ms)."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    deadline = QTimer()
    deadline.setSingleShot(True)
    deadline.timeout.connect(loop.quit)
    deadline.start(int(seconds * 1000))
    check = QTimer()
    if until is not None:
        check.timeout.connect(lambda: until() and loop.quit())
        check.start(50)
    loop.exec()
    deadline.stop()
    check.stop()


def measure_toggle_latency(toggles: int, work: Path) -> dict:
    """Milliseconds from a modality toggle to the repainted window showing the new prediction."""
    from PySide6.QtCore import QEventLoop, QTimer

    from smmt_core.bench.predict_latency import make_untrained_run, write_mni_t1
    from smmt_core.data.subject import Subject
    from smmt_gui.main_window import MainWindow

    run_dir = make_untrained_run(work / "toggle-runs")
    subject = Subject("bench-toggle", t1_path=write_mni_t1(work / "t1.nii.gz"),
                      numeric={"AGE": 76.0}, categorical={"PTGENDER": "Female", "APOE4": "1"})
    window = MainWindow(scan_runs=False)
    window.resize(1500, 900)
    window.show()

    def wait_for(signal, timeout_s: float = 120.0) -> None:
        loop = QEventLoop()
        signal.connect(loop.quit)
        QTimer.singleShot(int(timeout_s * 1000), loop.quit)
        loop.exec()
        signal.disconnect(loop.quit)

    window.load_model(run_dir)
    wait_for(window.model_loaded)
    window.session.set_single_subject(subject, str(subject.t1_path))
    wait_for(window.prediction_shown)  # the first prediction (preprocessing included)
    spin(0.5)
    box = window.prediction_panel.toggles["clinical"]
    latencies = []
    for _ in range(toggles):
        t0 = time.perf_counter()
        box.toggle()
        wait_for(window.prediction_shown)
        window.repaint()  # the new result on screen, not only in the widgets
        latencies.append((time.perf_counter() - t0) * 1000.0)
        spin(0.2)
    window.close()
    spin(5.0, until=window.is_closed)
    values = np.asarray(latencies)
    return {"toggles": len(latencies), "median_ms": float(np.median(values)), "p90_ms": float(np.percentile(values, 90)),
            "min_ms": float(values.min()), "max_ms": float(values.max())}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to measure during training (default 60)")
    parser.add_argument("--baseline-seconds", type=float, default=5.0, help="idle measurement first (default 5)")
    parser.add_argument("--probe-ms", type=int, default=10, help="probe interval in ms (default 10)")
    parser.add_argument("--data", default="demo", help='dataset path, or "demo" (default)')
    parser.add_argument("--preset", default="demo", help="training preset (default demo)")
    parser.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    parser.add_argument("--warm-cache", action="store_true",
                        help="use the user's MRI cache instead of a fresh one (preprocessing then mostly skipped)")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--toggles", type=int, default=0,
                        help="first measure toggle-to-repaint latency over this many modality toggles")
    parser.add_argument("--preimport", action="store_true",
                        help="import torch, the trainer and what they import lazily (codecarbon, psutil, scipy.stats, "
                             "sympy) before measuring, as an app could at start-up")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="torch.set_num_threads before training (default: torch's own choice, all cores)")
    parser.add_argument("--stacks", type=Path,
                        help="diagnose: write every thread's Python stack to this file whenever the GUI thread "
                             "misses its ticks for 300 ms (faulthandler)")
    parser.add_argument("--window", action="store_true",
                        help="measure in the whole main window (log panel, status bar, viewer), not the dashboard alone")
    parser.add_argument("--with-model", action="store_true",
                        help="with --window: load an untrained demo-preset model first, so that the GUI process holds "
                             "torch as when a user has a model open")
    parser.add_argument("--no-freeze", action="store_true",
                        help="compare: switch off smmt_gui.memory.freeze_long_lived (after start-up and model loads), "
                             "so that full garbage collections scan every object again")
    parser.add_argument("--stacks-after-ms", type=int, default=300,
                        help="with --stacks: how long a stall must last before the stacks are written (default 300)")
    parser.add_argument("--smoke", action="store_true",
                        help="a 12-subject demo cohort, 1 epoch, 3 s: check that the benchmark runs (tests)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.seconds, args.baseline_seconds, args.epochs, args.torch_threads = 3.0, 0.5, 1, 1

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("CODECARBON_LOG_LEVEL", "error")
    work = Path(tempfile.mkdtemp(prefix="smmt-gui-bench-"))
    if not args.warm_cache:
        os.environ["SMMT_CACHE_DIR"] = str(work / "mri-cache")

    from smmt_core.train.config import TrainConfig
    from smmt_core.train.events import BatchProgress
    from smmt_gui.app import create_app
    from smmt_gui.memory import freeze_long_lived
    from smmt_gui.panels.training import TrainingDashboard

    app = create_app(sys.argv[:1])  # noqa: F841 - the app's own style and plot options (antialiased curves)
    toggle = None
    if args.toggles > 0:
        print(f"Toggle-to-repaint latency over {args.toggles} toggles…", file=sys.stderr)
        toggle = measure_toggle_latency(args.toggles, work)
        print(f"toggle to repainted result: median {toggle['median_ms']:.0f} ms, p90 {toggle['p90_ms']:.0f} ms, "
              f"range {toggle['min_ms']:.0f}-{toggle['max_ms']:.0f} ms over {toggle['toggles']} toggles")
        if args.seconds <= 0:
            if args.json:
                args.json.write_text(json.dumps({"toggle_latency": toggle}, indent=2))
            shutil.rmtree(work, ignore_errors=True)
            return 0
    if args.smoke:
        from smmt_core.bench.smoke import smoke_cohort

        args.data = str(smoke_cohort(work))
    if args.data == "demo":
        from smmt_core.data.demo import ensure_demo_cohort

        print("Making sure the SYNTHETIC demo cohort exists (built once)…", file=sys.stderr)
        ensure_demo_cohort()

    overrides = dict(dataset=args.data, out=str(work / "runs"), run_name="gui-responsiveness", device=args.device)
    if args.epochs:
        overrides["epochs"] = args.epochs
    if args.smoke:
        from smmt_core.bench.smoke import SMOKE_MODEL

        overrides.update(SMOKE_MODEL)
    config = TrainConfig.build(args.preset, **overrides)

    if args.preimport:
        import importlib

        for name in ("torch", "smmt_core.train.trainer", "smmt_core.train.energy", "codecarbon", "psutil",
                     "scipy.stats", "sympy", "sklearn.metrics", "nilearn.image"):
            importlib.import_module(name)

    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)

    if args.no_freeze:
        import smmt_gui.memory

        smmt_gui.memory.freeze_long_lived = lambda: None  # the model-load job looks it up when it runs
    window = None
    if args.window:
        from smmt_gui.main_window import MainWindow

        window = MainWindow(scan_runs=False)
        window.resize(1500, 900)
        window.show()
        if not args.no_freeze:
            freeze_long_lived()  # as smmt_gui.app does once the window is up
        if args.with_model:
            from smmt_core.bench.predict_latency import make_untrained_run

            print("Loading an (untrained) demo-preset model: the GUI process now holds torch…", file=sys.stderr)
            window.load_model(make_untrained_run(work / "model"))
            spin(300, until=lambda: window.session.predictor is not None)
        window.tabs.setCurrentWidget(window.dashboard)
        dashboard = window.dashboard
    else:
        dashboard = TrainingDashboard()
        dashboard.resize(1200, 800)
        dashboard.show()
        if not args.no_freeze:
            freeze_long_lived()
    spin(0.5)

    load_before = os.getloadavg()[0]
    probe = Probe(args.probe_ms, dump_after_ms=args.stacks_after_ms)
    gc_pauses = GcPauses()
    reference = ReferenceTicker()
    print(f"Baseline: {args.baseline_seconds:.0f} s with nothing training…", file=sys.stderr)
    probe.start()
    spin(args.baseline_seconds)
    baseline = summarise(probe.stop(), args.probe_ms)
    stacks = open(args.stacks, "w") if args.stacks else None  # noqa: SIM115 - closed at the end
    probe.dump_file = stacks

    # Time the dashboard's own work per event (drawing), to tell it apart from waiting for the GIL/CPU,
    # and note when the first batch arrives (the end of the data phase).
    handler_ms: list[float] = []
    slowest: dict[str, float] = {}  # event type -> its longest handling, ms
    events = {"first_batch": None}
    handle_event = dashboard.handle_event

    def timed_handle_event(event) -> None:
        t0 = time.perf_counter()
        if events["first_batch"] is None and isinstance(event, BatchProgress):
            events["first_batch"] = t0
        handle_event(event)
        ms = (time.perf_counter() - t0) * 1000.0
        handler_ms.append(ms)
        name = type(event).__name__
        slowest[name] = max(ms, slowest.get(name, 0.0))

    dashboard.handle_event = timed_handle_event  # the worker's signal is connected to this in start()

    print(f"Training ({args.preset} preset, {config.optim.epochs} epochs, {config.run.device}) for {args.seconds:.0f} s…",
          file=sys.stderr)
    probe.start()
    started = time.perf_counter()
    window.start_training(config) if window is not None else dashboard.start(config)
    spin(args.seconds, until=lambda: not dashboard.is_running())
    trained_s = time.perf_counter() - started
    finished_by_itself = not dashboard.is_running()
    gaps = probe.stop()
    if dashboard.is_running():
        dashboard.cancel()
        spin(120, until=lambda: not dashboard.is_running())
    dashboard.stop_and_wait()
    during = summarise(gaps, args.probe_ms)
    # The same ticks split into the data phase (reading + preprocessing the scans, before the first
    # batch) and the training phase (batches, epochs, checkpoints).
    first_batch = events["first_batch"] or float("inf")
    times = np.asarray(probe.times[: len(gaps)])
    gaps_array = np.asarray(gaps)
    phases = {
        "data phase": summarise(gaps_array[times < first_batch].tolist(), args.probe_ms),
        "batches": summarise(gaps_array[times >= first_batch].tolist(), args.probe_ms),
    }
    # When the five longest stalls ended, in seconds after the training started, how much of each
    # was garbage collection, and how late the idle reference process was at the same time.
    reference.stop()
    longest = [
        {"at_s": round(float(times[i] - started), 2), "stall_ms": round(float(gaps_array[i] - args.probe_ms), 1),
         "gc_ms": round(gc_pauses.during(times[i] - gaps_array[i] / 1000.0, times[i]), 1),
         "reference_late_ms": round(reference.late_during(times[i] - gaps_array[i] / 1000.0, times[i]), 1),
         "gui_cpu_ms": round(probe.cpu_ms[i], 1), "gui_waiting_for_cpu_ms": round(probe.runqueue_ms[i], 1)}
        for i in np.argsort(gaps_array)[::-1][:5]
    ]
    gc_summary = gc_pauses.summary(since=started)
    gc_pauses.close()
    # What one full collection costs in this process now (it stalls the GUI thread wherever it runs).
    import gc

    t0 = time.perf_counter()
    gc.collect()
    gc_summary["full_collection_now_ms"] = round((time.perf_counter() - t0) * 1000.0, 1)
    gc_summary["tracked_objects"] = len(gc.get_objects())
    gc_summary["frozen_objects"] = gc.get_freeze_count()

    epochs_done = len(dashboard.epochs)
    batches_done = len(dashboard.batch_x)
    result = {
        "probe_ms": args.probe_ms,
        "toggle_latency": toggle,
        "baseline": baseline,
        "training": during,
        "phases": phases,
        "longest_stalls": longest,
        "garbage_collection": gc_summary,
        "event_handling_ms": {"events": len(handler_ms), "max": round(max(handler_ms, default=0.0), 1),
                              "total": round(sum(handler_ms), 1),
                              "max_by_event": {k: round(v, 1) for k, v in sorted(slowest.items())}},
        "training_seconds": round(trained_s, 1),
        "finished_by_itself": finished_by_itself,
        "epochs_done": epochs_done,
        "batches_done": batches_done,
        "cpus": os.cpu_count(),
        "load_avg_1min": [round(load_before, 1), round(os.getloadavg()[0], 1)],  # other processes count too
        "preimport": args.preimport,
        "torch_threads": args.torch_threads,
        "preset": args.preset,
        "window": bool(args.window),
        "freeze_long_lived": not args.no_freeze,
        "with_model": bool(args.window and args.with_model),
        "device": config.run.device,
        "target_p99_ms": TARGET_P99_MS,
        "target_max_ms": TARGET_MAX_MS,
        "meets_target": bool(during["p99_ms"] <= TARGET_P99_MS and during["max_ms"] <= TARGET_MAX_MS),
    }
    print(f"probe every {args.probe_ms} ms; stall = lateness of a tick")
    rows = [("baseline", baseline), ("training", during)] + [(f"  {k}", v) for k, v in phases.items()]
    print(f"{'':>12} {'ticks':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'>50 ms':>7} {'frozen %':>9}")
    for name, r in rows:
        print(f"{name:>12} {r['ticks']:>7} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} {r['max_ms']:>8.1f} "
              f"{r['over_50ms']:>7} {r['frozen_pct']:>9.2f}")
    print("longest stalls (what the GUI thread did in each):")
    for x in longest:
        print(f"  {x['stall_ms']:.0f} ms at {x['at_s']:.1f} s: {x['gui_cpu_ms']:.0f} ms on a CPU, "
              f"{x['gui_waiting_for_cpu_ms']:.0f} ms runnable waiting for one, the rest asleep or waiting for the "
              f"interpreter lock; gc {x['gc_ms']:.0f} ms; the idle reference process was {x['reference_late_ms']:.0f} ms late")
    print(f"garbage collection while training: {gc_summary['collections']} collections, {gc_summary['total_ms']:.0f} ms "
          f"in all; longest gen0 {gc_summary['gen0']['max_ms']:.1f} ms, gen1 {gc_summary['gen1']['max_ms']:.1f} ms, "
          f"gen2 {gc_summary['gen2']['max_ms']:.1f} ms ({gc_summary['gen2']['n']} full collections); a full collection "
          f"now takes {gc_summary['full_collection_now_ms']:.0f} ms ({gc_summary['tracked_objects']} objects scanned, "
          f"{gc_summary['frozen_objects']} frozen)")
    print(f"dashboard work per event: max {result['event_handling_ms']['max']:.1f} ms, "
          f"total {result['event_handling_ms']['total']:.0f} ms for {len(handler_ms)} events ("
          + ", ".join(f"{k} {v:.0f}" for k, v in sorted(slowest.items(), key=lambda kv: -kv[1])[:3]) + ")")
    print(f"machine: {os.cpu_count()} CPUs, 1-min load average {load_before:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after (other processes compete for the CPUs too)")
    print(f"training: {trained_s:.0f} s, {epochs_done} epochs and {batches_done} batches done; targets p99 <= "
          f"{TARGET_P99_MS:.0f} ms and longest stall <= {TARGET_MAX_MS:.0f} ms: "
          f"{'met' if result['meets_target'] else 'NOT met'}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    if stacks is not None:
        stacks.close()
    if window is not None:
        window.close()
        spin(60, until=window.is_closed)
    else:
        dashboard.close()
    shutil.rmtree(work, ignore_errors=True)  # the cancelled run and the fresh MRI cache
    return 0


if __name__ == "__main__":
    sys.exit(main())
