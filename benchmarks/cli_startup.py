"""Start-up of the `smmt` command in fresh processes: `--help`, `train --help`, and one `predict`.

    python benchmarks/cli_startup.py                       # this checkout, 5 runs per command
    python benchmarks/cli_startup.py --repo /tmp/before    # another checkout (e.g. the code before a change)
    python benchmarks/cli_startup.py --runs 9 --work DIR   # keep (and reuse) the demo cohort and run in DIR
    python benchmarks/cli_startup.py --smoke               # one run each, tiny model: check that it runs (tests)

Setup (not timed): a small SYNTHETIC demo cohort (`smmt demo-data DIR --subjects 24`) and a 1-epoch
run at the demo preset (`--tiny`: the tests' tiny model instead). Then, in fresh processes, with
one thread (OMP/MKL_NUM_THREADS=1) and with the default threads, interleaved so that a change in
the machine's load hits every command alike, it times:

    smmt --help
    smmt train --help
    smmt predict sub-001 --cohort DIR/demo --model RUN --json     (the scan's preprocessing cached)

and prints the median (min-max) of each, one process's phases of `predict` (import, parser, model
load, prediction) with the heavy modules it imported, and the ten largest cumulative imports of
`smmt --help` from `python -X importtime`. The load average is printed before and after: compare
figures only from runs at a similar load. Targets: --help <= 0.5 s, predict <= 3 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from smmt_core.bench.smoke import SMOKE_MODEL_FLAGS

HERE = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "torch._dynamo", "torch._prims", "scipy", "sklearn", "nilearn", "nibabel", "pandas", "matplotlib")
SPLIT_FLAGS = ["--test-size", "0.25", "--val-size", "0.2", "--batch-size", "4", "--no-energy"]

PHASES = r"""
import json, sys, time
t0 = time.perf_counter()
from smmt_core.cli import build_parser
t1 = time.perf_counter()
args = build_parser().parse_args(sys.argv[1:])
t2 = time.perf_counter()
from smmt_core.data.loaders import load_cohort
from smmt_core.predict import Predictor, subject_from_cohort
t3 = time.perf_counter()
predictor = Predictor.load(args.model, device="cpu", disk_cache=True)  # as `smmt predict` does
t4 = time.perf_counter()
subject = subject_from_cohort(load_cohort(args.cohort), args.subject)
result = predictor.predict(subject)
t5 = time.perf_counter()
print(json.dumps({"import smmt_core.cli": t1 - t0, "build + parse": t2 - t1, "import predict, loaders": t3 - t2,
                  "Predictor.load": t4 - t3, "load subject + predict": t5 - t4, "total": t5 - t0,
                  "heavy": [m for m in HEAVY if m in sys.modules]}))
""".replace("HEAVY", repr(HEAVY))


def smmt_code(argv: list[str]) -> str:
    """`python -c` code that runs the `smmt` entry point (pyproject: smmt = smmt_core.cli:command) on argv."""
    return f"import sys; from smmt_core.cli import command; sys.exit(command({argv!r}))"


def environment(repo: Path, cache: Path, threads: int | None) -> dict:
    env = dict(os.environ, PYTHONPATH=str(repo), SMMT_CACHE_DIR=str(cache), PYTHONDONTWRITEBYTECODE="0")
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "PYTHONSTARTUP"):
        env.pop(name, None)
    if threads is not None:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    return env


def run(code: str, env: dict, cwd: Path, *extra: str, check: bool = True, python_flags=()) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, *python_flags, "-c", code, *extra], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=1800)
    if check and done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {code} {' '.join(extra)}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return done


def timed(code: str, env: dict, cwd: Path) -> float:
    started = time.perf_counter()
    run(code, env, cwd)
    return time.perf_counter() - started


def setup(work: Path, repo: Path, cache: Path, tiny: bool, subjects: int) -> tuple[Path, Path]:
    """The demo cohort and a 1-epoch run in `work` (reused when already there)."""
    env = environment(repo, cache, None)
    cohort = work / "demo"
    if not (cohort / "participants.tsv").exists():
        print(f"setup: smmt demo-data {cohort} --subjects {subjects}", file=sys.stderr)
        run(smmt_code(["demo-data", str(cohort), "--subjects", str(subjects)]), env, work)
    name = "tiny" if tiny else "demo"
    run_dir = work / "runs" / name
    if not (run_dir / "best.safetensors").exists():
        flags = ["train", "--data", str(cohort), "--epochs", "1", "--out", str(work / "runs"), "--name", name, "-q",
                 *SPLIT_FLAGS, *(SMOKE_MODEL_FLAGS if tiny else [])]
        print(f"setup: smmt {' '.join(flags)}", file=sys.stderr)
        run(smmt_code(flags), env, work)
    return cohort, run_dir


def import_summary(env: dict, cwd: Path, top: int = 10) -> list[tuple[int, int, str]]:
    """(cumulative us, self us, module) of the `top` largest cumulative imports of `smmt --help`."""
    done = run(smmt_code(["--help"]), env, cwd, python_flags=("-X", "importtime"))
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_us, cumulative_us, name = line[len("import time:"):].split("|")
        rows.append((int(cumulative_us), int(self_us), name.rstrip()))
    return sorted(rows, reverse=True)[:top]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="cli_startup", description=__doc__.split("\n")[0])
    parser.add_argument("--repo", type=Path, default=HERE, help="checkout whose smmt_core is measured (default: this one)")
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per command and thread setting (default 5)")
    parser.add_argument("--work", type=Path, default=None, help="folder for the cohort, run and cache (default: a temp folder)")
    parser.add_argument("--subjects", type=int, default=24, help="demo cohort size (default 24)")
    parser.add_argument("--tiny", action="store_true", help="the tests' tiny model instead of the demo preset")
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON object")
    parser.add_argument("--smoke", action="store_true", help="one run each, one thread, tiny model, 10 subjects (tests)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.runs, args.tiny, args.subjects = 1, True, 10
    repo = args.repo.resolve()
    with tempfile.TemporaryDirectory(prefix="smmt-startup-") as tmp:
        work = (args.work or Path(tmp)).resolve()
        work.mkdir(parents=True, exist_ok=True)
        cache = work / "cache"
        cohort, run_dir = setup(work, repo, cache, args.tiny, args.subjects)
        subject = "sub-001"
        commands = {
            "smmt --help": ["--help"],
            "smmt train --help": ["train", "--help"],
            "smmt predict --json": ["predict", subject, "--cohort", str(cohort), "--model", str(run_dir), "--json"],
        }
        settings = {"1 thread": 1} if args.smoke else {"1 thread": 1, "default threads": None}
        load_before = os.getloadavg()
        if not args.smoke:  # a measurement starts with the scan cache full; a smoke run measures nothing
            run(smmt_code(commands["smmt predict --json"]), environment(repo, cache, 1), work)
        times: dict[tuple[str, str], list[float]] = {(c, s): [] for c in commands for s in settings}
        for _ in range(args.runs):
            for setting, threads in settings.items():
                env = environment(repo, cache, threads)
                for command, flags in commands.items():
                    times[command, setting].append(timed(smmt_code(flags), env, work))
        env1 = environment(repo, cache, 1)
        phases = json.loads(run(PHASES, env1, work, *commands["smmt predict --json"]).stdout.strip().splitlines()[-1])
        imported = run("import sys, json; from smmt_core.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n"
                       f"    pass\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))", env1, work)
        help_heavy = json.loads(imported.stdout.strip().splitlines()[-1])
        top = import_summary(env1, work)
        load_after = os.getloadavg()

    print(f"smmt start-up, {repo} ({args.runs} fresh processes each; median (min-max) s)")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
          f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    print(f"model: {'tiny' if args.tiny else 'demo preset'}, 1 epoch on {args.subjects} demo subjects")
    width = max(len(c) for c in commands)
    print(f"  {'':<{width}}  " + "  ".join(f"{s:<22}" for s in settings))
    summary = {}
    for command in commands:
        cells = []
        for setting in settings:
            values = times[command, setting]
            summary[f"{command} / {setting}"] = statistics.median(values)
            cells.append(f"{statistics.median(values):6.2f} ({min(values):.2f}-{max(values):.2f})")
        print(f"  {command:<{width}}  " + "  ".join(f"{c:<22}" for c in cells))
    print("phases of one predict process (1 thread): "
          + ", ".join(f"{k} {v:.2f} s" for k, v in phases.items() if k != "heavy"))
    print(f"  heavy modules imported by predict: {', '.join(phases['heavy']) or 'none'}")
    print(f"heavy modules imported by `smmt --help`: {', '.join(help_heavy) or 'none'}")
    print("largest cumulative imports of `smmt --help` (python -X importtime):")
    for cumulative, self_us, name in top:
        print(f"  {cumulative / 1e3:8.1f} ms cumulative {self_us / 1e3:8.1f} ms self  {name.strip()}")
    if args.json:
        print(json.dumps({"medians_s": summary, "phases_s": phases, "help_heavy": help_heavy,
                          "load": [load_before[0], load_after[0]]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
