"""How soon `smmt-gui` shows something after launch, and how soon its window answers.

    python benchmarks/gui_startup.py                 # 5 fresh launches, offscreen (or on $DISPLAY with --display)
    python benchmarks/gui_startup.py --runs 9 --display
    python benchmarks/gui_startup.py --smoke         # one launch: check that it runs (tests)

Each launch is a fresh `python -c "from smmt_gui.app import main; main(['--no-runs'])"` with
$SMMT_GUI_STARTUP_TRACE set: the app writes when its splash was shown, when the main window was
shown, and when the window's event loop first ran ("usable"), then quits. Times are from just
before the process was started. Prints the median (min-max) of each, the load average before and
after, and the ten largest cumulative imports of building the window (`python -X importtime`).
Targets: first window (the splash) <= 1.5 s, usable <= 5 s. Results: docs/startup.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
EVENTS = ("splash", "window", "usable")
LAUNCH = "import sys; from smmt_gui.app import main; sys.exit(main(['--no-runs']))"
IMPORTS = ("from smmt_gui.app import create_app; app = create_app(); "
           "from smmt_gui.main_window import MainWindow; MainWindow(scan_runs=False)")


def environment(trace: Path | None, display: bool) -> dict:
    env = dict(os.environ, PYTHONPATH=str(HERE))
    if not display:
        env["QT_QPA_PLATFORM"] = "offscreen"
    if trace is not None:
        env["SMMT_GUI_STARTUP_TRACE"] = str(trace)
    return env


def launch(work: Path, display: bool, index: int) -> dict[str, float]:
    trace = work / f"trace-{index}.txt"
    started = time.time()
    done = subprocess.run([sys.executable, "-c", LAUNCH], env=environment(trace, display), cwd=work,
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0 or not trace.is_file():
        raise SystemExit(f"smmt-gui did not start and quit cleanly (exit {done.returncode}):\n{done.stderr[-3000:]}")
    marks = dict(line.split() for line in trace.read_text().splitlines())
    return {event: float(marks[event]) - started for event in EVENTS}


def largest_imports(display: bool, count: int = 10) -> list[tuple[float, str]]:
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", IMPORTS], env=environment(None, display),
                          capture_output=True, text=True, timeout=600)
    rows = []
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cumulative, name = (part.strip() for part in line[len("import time:"):].split("|"))
            if cumulative.isdigit():
                rows.append((int(cumulative) / 1e6, name))
    return sorted(rows, reverse=True)[:count]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--display", action="store_true", help="use $DISPLAY (e.g. under Xvfb) instead of offscreen")
    parser.add_argument("--smoke", action="store_true", help="one launch: check that it runs")
    args = parser.parse_args(argv)
    if args.smoke:
        args.runs = 1
    work = Path(tempfile.mkdtemp(prefix="smmt-gui-startup-"))
    load_before = os.getloadavg()[0]
    runs = [launch(work, args.display, i) for i in range(args.runs)]
    load_after = os.getloadavg()[0]
    print(f"smmt-gui start-up, {args.runs} fresh launches, {'$DISPLAY' if args.display else 'offscreen'}; "
          f"load average {load_before:.1f} -> {load_after:.1f}")
    for event in EVENTS:
        values = [r[event] for r in runs]
        print(f"  {event:>7}: {statistics.median(values):5.2f} s ({min(values):.2f}-{max(values):.2f})")
    if not args.smoke:
        print("largest cumulative imports of building the window:")
        for seconds, name in largest_imports(args.display):
            print(f"  {seconds:6.2f} s  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
