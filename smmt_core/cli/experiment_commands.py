"""`smmt experiment` (grids of training runs) and `smmt robustness` (missing-modality sweep of one run).

Both are thin: they parse flags into `ExperimentSpec` / `evaluate_robustness` arguments, print
progress on stderr and results on stdout. All the work lives in smmt_core.experiments.grid and
smmt_core.train.robustness, so the GUI and scripts get exactly the same behaviour; those are
imported when the command runs (pandas, torch), the flags come from light declarations.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import threading
from pathlib import Path

from smmt_core.cli.config_flags import add_config_flags, overrides_from_args
from smmt_core.cli.exit_codes import EXIT_INTERRUPTED
from smmt_core.cli.train_commands import stop_on_signals
from smmt_core.errors import ConfigError
from smmt_core.experiments.backends import BACKENDS, make_backend
from smmt_core.experiments.grid_keys import GRID_KEYS
from smmt_core.fileio import atomic_write_text, check_writable
from smmt_core.train.config import DEFAULT_PRESET, PRESETS, preset_value
from smmt_core.train.events import BatchProgress, EpochEnd
from smmt_core.variants import BASELINES

EXPERIMENT_EPILOG = """\
examples:
  smmt experiment --data demo --variants smmt,3mt --fractions 0.2,0.6,1.0 --seeds 0,1,2 --out exp/demo
  smmt experiment --data demo --variants smmt --fractions 0.4 --mask-ratios 0,0.3,0.6,0.9 --out exp/mask
  smmt experiment --data /data/bids --variants smmt,3mt --folds 5 --epochs 50 --preset paper --out exp/cv
  smmt experiment --data demo --seeds 0,1,2 --backend ray --workers 2 --out exp/ray
  smmt experiment --data /shared/bids --preset paper --backend slurm --gpus-per-cell 1 --slurm-partition gpu \
                  --slurm-setup 'source ~/smmt/.venv/bin/activate' --out /shared/exp/paper

  smmt experiment --data demo --variants smmt,3mt --baselines lr-clinical,lr-regional,lr-pixels,cnn \
                  --split-seeds 0,1,2 --out exp/baselines

Every cell is one ordinary training run in OUT/runs/<cell>. All cells of one split seed share one
test set, so model seeds vary only the initialisation and training order; --split-seeds repeats
the grid over several person-level splits; with --folds K every cell is trained once per
person-level fold instead. Baselines are fitted on the training persons of the same split and
scored on its test persons. Running the same command again resumes the grid.
Cells run one after another here by default; --backend ray runs them as Ray tasks (this machine
or a cluster), --backend slurm as one Slurm job array: same folders, results and resume
(docs/scale-out.md).
Outputs: OUT/results.csv (one row per run or baseline, with 95% CIs), OUT/summary.csv and
OUT/summary.md (mean ± SD over splits per method, fraction and mask ratio; paired differences
between methods with bootstrap CIs), OUT/paired.csv, OUT/*.png (accuracy vs fraction, energy per
variant, mask sweep).
exit codes: 0 all runs finished, 1 some runs failed, 2 bad input, 130 interrupted (resumable).
"""

ROBUSTNESS_EPILOG = """\
For the run's own test subjects (from its split.csv): accuracy and balanced accuracy with every
non-empty subset of the modalities (the others treated as missing), and with all modalities under
random modality masking at test time for each mask ratio (mean ± SD over --repeats draws).

--test-missing 0,0.2,0.4,0.6 instead compares the run's model with the simple baselines
(--baselines) on the same test persons: for each share, that many persons (drawn once from the
run's split seed, nested across shares, the same for every method) lose their MRI, then their
clinical data; balanced accuracy and AUC with 95 % bootstrap CIs. The baselines are fitted again
on the run's training persons; one that reads only the image gives a person without an MRI its
training prior (column 'prior' counts them). See docs/experiments.md.

examples:
  smmt robustness runs/demo --plot robustness.png
  smmt robustness runs/demo --test-missing 0,0.2,0.4,0.6 --baselines all --out missing.csv

Scores are per person. exit codes: 0 done, 2 bad input (missing run, moved dataset, ...), 130 interrupted.
"""


def _floats(text: str, flag: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{flag} takes comma-separated numbers, got {text!r}") from None
    if not values or any(not math.isfinite(v) for v in values):
        raise ConfigError(f"{flag} takes comma-separated numbers, got {text!r}")
    return values


def _ints(text: str, flag: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{flag} takes comma-separated whole numbers, got {text!r}") from None
    if not values:
        raise ConfigError(f"{flag} takes comma-separated whole numbers, got {text!r}")
    return values


def add_commands(subparsers) -> None:
    """Register `smmt experiment` and `smmt robustness`."""
    p = subparsers.add_parser(
        "experiment",
        help="run a grid of trainings (variant x fraction x seed [x mask ratio], or k-fold) and summarise it",
        description="Train a grid of runs on one dataset and write a results table, a mean ± SD summary and plots.",
        epilog=EXPERIMENT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", required=True, help="dataset folder (BIDS, ADNI, OASIS, folder of subjects) or 'demo'")
    p.add_argument("--out", required=True, help="experiment folder (created; reused to resume)")
    p.add_argument("--variants", default="smmt,3mt",
                   help="comma-separated: smmt, smmt-no-sparse, smmt-no-mask, 3mt (default: smmt,3mt)")
    p.add_argument("--baselines", default="",
                   help=f"comma-separated simple baselines scored on the same persons: {', '.join(BASELINES)}")
    p.add_argument("--test-missing", default=None, metavar="SHARES",
                   help="after the grid, score each run and the --baselines with these shares of test persons "
                        "lacking their MRI, then their clinical data, e.g. 0,0.2,0.4,0.6 (OUT/missing.csv and a "
                        "section of summary.md)")
    p.add_argument("--fractions", default="1.0",
                   help="fractions of the training (and validation) persons, e.g. 0.2,0.6,1.0 (default 1.0)")
    p.add_argument("--seeds", default="0", help="model seeds, e.g. 0,1,2 (default 0)")
    p.add_argument("--split-seeds", default="0",
                   help="person-level splits to repeat the grid over, e.g. 0,1,2 (default 0)")
    p.add_argument("--mask-ratios", default=None,
                   help="training mask ratios for the masking variants, e.g. 0,0.3,0.6 (default: the preset's, "
                        f"{preset_value('mask_ratio')} in {DEFAULT_PRESET})")
    p.add_argument("--preset", choices=sorted(PRESETS), default=DEFAULT_PRESET,
                   help=f"settings preset: demo (CPU, minutes) or paper (default {DEFAULT_PRESET}, whose values the "
                        "flags' defaults show)")
    p.add_argument("--no-plots", action="store_true", help="write the tables only, no PNG plots")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    add_config_flags(p, exclude=GRID_KEYS)  # the grid sets these per cell
    p.add_argument("--folds", type=int, default=None, metavar="K",
                   help="k-fold cross-validation by person instead of one test set per split seed")
    _add_backend_flags(p)
    p.set_defaults(handler=_run_experiment)

    r = subparsers.add_parser(
        "robustness",
        help="accuracy of a trained run with modalities missing and under test-time masking",
        description="Evaluate a run's best model on its own test subjects with modalities switched off and masked.",
        epilog=ROBUSTNESS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument("run", nargs="?", default=None, metavar="RUN", help="run folder (or give it as --model)")
    r.add_argument("--model", default=None, metavar="RUN", help="run folder (holds best.safetensors, split.csv)")
    r.add_argument("--mask-ratios", default="0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9", help="test-time mask ratios")
    r.add_argument("--repeats", type=int, default=5, help="random masking draws per ratio (default 5)")
    r.add_argument("--seed", type=int, default=0, help="seed of the masking draws (default 0)")
    r.add_argument("--data", default=None, help="the dataset's location, if it moved since training")
    r.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    r.add_argument("--test-missing", default=None, metavar="SHARES",
                   help="shares of test persons losing a modality, e.g. 0,0.2,0.4,0.6: compare the model "
                        "with the baselines on the same persons (instead of the subset/mask sweep)")
    r.add_argument("--baselines", default="all", metavar="NAMES",
                   help=f"with --test-missing: 'all', 'none' or comma-separated from {', '.join(BASELINES)} "
                        "(default all)")
    r.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    r.add_argument("--out", default=None, metavar="CSV",
                   help="also write the rows to this CSV file (with --test-missing also a .json beside it, "
                        "which names the persons drawn)")
    r.add_argument("--plot", default=None, metavar="PNG", help="also draw the two robustness panels to this PNG")
    r.add_argument("--quiet", action="store_true", help="no progress on stderr")
    r.set_defaults(handler=_run_robustness)


def _add_backend_flags(p) -> None:
    """Where the cells run (smmt_core.experiments.backends); see docs/scale-out.md."""
    g = p.add_argument_group("where the cells run (docs/scale-out.md)")
    g.add_argument("--backend", choices=BACKENDS, default="local",
                   help="local: one cell after another in this process (default); ray: one Ray task per cell "
                        "(pip install 'smmt-studio[ray]'); slurm: one Slurm job array "
                        "(pip install 'smmt-studio[slurm]')")
    g.add_argument("--address", default=None,
                   help="ray: the cluster to join ('auto', 'ray://head:10001'); default: start a local Ray instance")
    g.add_argument("--workers", type=int, default=None, metavar="N",
                   help="ray without --address: CPUs of the local instance (default: all of this machine's)")
    g.add_argument("--cpus-per-cell", type=float, default=1.0, metavar="N",
                   help="ray/slurm: CPUs per cell, also its torch threads (default 1)")
    g.add_argument("--gpus-per-cell", type=float, default=0.0, metavar="N",
                   help="ray/slurm: GPUs per cell; ray accepts fractions such as 0.5 (default 0: CPU)")
    g.add_argument("--slurm-partition", default=None, help="slurm: partition (default: the cluster's)")
    g.add_argument("--slurm-time", type=int, default=120, metavar="MIN",
                   help="slurm: time limit per cell (default 120)")
    g.add_argument("--slurm-mem-gb", type=float, default=None, metavar="GB", help="slurm: memory per cell")
    g.add_argument("--slurm-max-parallel", type=int, default=None, metavar="N",
                   help="slurm: at most N cells of the array running at once")
    g.add_argument("--slurm-setup", action="append", default=[], metavar="LINE",
                   help="slurm: a shell line run before each job, e.g. 'source ~/smmt/.venv/bin/activate' (repeatable)")
    g.add_argument("--slurm-option", action="append", default=[], metavar="KEY=VALUE",
                   help="slurm: any other sbatch option, e.g. account=mylab or qos=short (repeatable)")
    g.add_argument("--slurm-cluster", choices=("slurm", "local"), default="slurm",
                   help="slurm: 'local' runs the jobs as local processes through submitit, to try a set-up")


def backend_from_args(args):
    """The backend the flags ask for (ConfigError for an unusable combination)."""
    if args.backend != "ray" and (args.address or args.workers is not None):
        raise ConfigError("--address and --workers are for --backend ray")
    if args.backend == "ray":
        return make_backend("ray", address=args.address, num_cpus=args.workers, cpus_per_cell=args.cpus_per_cell,
                            gpus_per_cell=args.gpus_per_cell)
    if args.backend == "slurm":
        options = {}
        for text in args.slurm_option:
            key, sep, value = text.partition("=")
            if not sep or not key.strip():
                raise ConfigError(f"--slurm-option takes KEY=VALUE, got {text!r}")
            options[key.strip()] = value.strip()
        return make_backend("slurm", cluster=args.slurm_cluster, partition=args.slurm_partition,
                            time_min=args.slurm_time, cpus_per_cell=args.cpus_per_cell,
                            gpus_per_cell=args.gpus_per_cell, mem_gb=args.slurm_mem_gb,
                            array_parallelism=args.slurm_max_parallel, setup=args.slurm_setup, additional=options)
    return make_backend("local")


class _ExperimentProgress:
    """Turns experiment and training events into short progress lines on stderr."""

    def __init__(self, stream=None):
        self.stream = stream if stream is not None else sys.stderr  # looked up now: tests swap sys.stderr
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.prefix = ""

    def _line(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
        self.stream.write(text + "\n")
        self.stream.flush()

    def __call__(self, event) -> None:
        from smmt_core.experiments.grid import CellFinished, CellStarted  # loaded by the running grid already

        if isinstance(event, CellStarted):
            self.prefix = f"[{event.index + 1}/{event.total}] {event.cell.name}"
            self._line(f"{self.prefix}: training")
        elif isinstance(event, CellFinished):
            prefix = f"[{event.index + 1}/{event.total}] {event.cell.name}"
            if event.status in ("finished", "reused"):
                acc = event.row.get("accuracy", math.nan)
                bacc = event.row.get("balanced_accuracy", math.nan)
                note = " (finished earlier, reused)" if event.status == "reused" else ""
                self._line(f"{prefix}: test accuracy {acc * 100:.1f}%, balanced {bacc * 100:.1f}%{note}")
            else:
                self._line(f"{prefix}: {event.status} {event.message}".rstrip())
        elif isinstance(event, EpochEnd):
            val = event.val_metrics.get("balanced_accuracy") if event.val_metrics else None
            text = f"{self.prefix}: epoch {event.epoch} train loss {event.train_loss:.3f}"
            if val is not None and not math.isnan(val):
                text += f", val balanced acc {val * 100:.1f}%"
            self._line(text)
        elif isinstance(event, BatchProgress) and self.tty:
            eta = f", {event.eta_s:.0f} s left in run" if event.eta_s is not None else ""
            self.stream.write(f"\r\033[K{self.prefix}: epoch {event.epoch} batch {event.batch}/"
                              f"{event.batches_per_epoch} loss {event.loss:.3f}{eta}")
            self.stream.flush()


def _run_experiment(args) -> int:
    from smmt_core.experiments.grid import ExperimentSpec, run_experiment

    spec = ExperimentSpec(
        data=args.data,
        variants=[v.strip() for v in args.variants.split(",") if v.strip()],
        baselines=[b.strip() for b in args.baselines.split(",") if b.strip()],
        fractions=_floats(args.fractions, "--fractions"),
        seeds=_ints(args.seeds, "--seeds"),
        split_seeds=_ints(args.split_seeds, "--split-seeds"),
        mask_ratios=_floats(args.mask_ratios, "--mask-ratios") if args.mask_ratios else None,
        test_missing=_floats(args.test_missing, "--test-missing") if args.test_missing else None,
        preset=args.preset,
        n_folds=args.folds,
        overrides=overrides_from_args(args, exclude=GRID_KEYS),
    )
    spec.validate()
    backend = backend_from_args(args)
    if not args.quiet:
        where = f" on {backend.describe()}" if hasattr(backend, "describe") else ""
        print(f"smmt experiment: {len(spec.cells())} runs into {args.out}{where}", file=sys.stderr)
    # Ctrl-C / SIGTERM: the current local cell stops cleanly and is labelled "stopped"; Ray tasks
    # and Slurm jobs still outstanding are cancelled. Finished cells stay; rerunning resumes.
    stop = threading.Event()
    with stop_on_signals(stop):
        result = run_experiment(spec, args.out, on_event=None if args.quiet else _ExperimentProgress(),
                                stop=stop, make_plots=not args.no_plots, backend=backend)
    print(result.summary_md.read_text(encoding="utf-8"))
    print(f"results: {result.results_csv}")
    print(f"summary: {result.summary_csv}, {result.summary_md}")
    for path in result.plots.values():
        print(f"plot:    {path}")
    if result.missing_csv is not None:
        print(f"missing: {result.missing_csv}")
    if result.n_failed:
        print(f"smmt experiment: {result.n_failed} run(s) failed; see {result.results_csv}", file=sys.stderr)
        return 1
    if result.stopped:
        print("smmt experiment: stopped; run the same command again to resume the grid", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def _baseline_names(text: str) -> list[str]:
    """'all', 'none' or a comma-separated list of baseline names (ConfigError for an unknown one)."""
    text = text.strip().lower()
    if text == "all":
        return list(BASELINES)
    if text in ("none", ""):
        return []
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise ConfigError(f"unknown baseline(s) {', '.join(unknown)}; choose from all, none, {', '.join(BASELINES)}")
    return list(dict.fromkeys(names))


def _run_robustness(args) -> int:
    if args.model and args.run and args.model != args.run:
        raise ConfigError(f"two runs given ({args.run} and --model {args.model}); give one")
    args.model = args.model or args.run
    if not args.model:
        raise ConfigError("give the run folder: smmt robustness RUN (or --model RUN)")
    if args.test_missing is not None:
        return _run_missing(args)
    from smmt_core.train.robustness import evaluate_robustness, robustness_table

    # Outputs are checked before the evaluation passes, not after them (and named as given).
    if args.out:
        check_writable(args.out, "CSV file")
    if args.plot:
        check_writable(args.plot, "plot file")
    if args.repeats < 1:
        raise ConfigError(f"--repeats must be at least 1, got {args.repeats}")
    if args.seed < 0:
        raise ConfigError(f"--seed must be a non-negative integer, got {args.seed}")
    tty = sys.stderr.isatty()

    def progress(done: int, total: int) -> None:
        if tty:  # one line, redrawn
            end = "\n" if done == total else ""
            sys.stderr.write(f"\r\033[Ksmmt robustness: {done}/{total} evaluation passes{end}")
        elif done == total or (done and done % max(1, total // 4) == 0):  # a log file: a few lines
            sys.stderr.write(f"smmt robustness: {done}/{total} evaluation passes\n")
        sys.stderr.flush()

    frame = evaluate_robustness(
        args.model,
        mask_ratios=_floats(args.mask_ratios, "--mask-ratios"),
        on_progress=None if args.quiet else progress,
        repeats=args.repeats,
        seed=args.seed,
        device=args.device,
        data=args.data,
    )
    if args.out:
        atomic_write_text(Path(args.out), frame.to_csv(index=False))
    if args.plot:
        from smmt_core.experiments.plots import plot_robustness

        plot_robustness(frame, args.plot, title=f"Robustness of {Path(args.model).name}")
    if args.json:
        print(json.dumps({
            "run": str(args.model),
            "classes": frame.attrs.get("classes", []),
            "majority_rate": frame.attrs.get("majority_rate"),
            "synthetic": frame.attrs.get("synthetic", False),
            "rows": json.loads(frame.to_json(orient="records")),
        }, indent=2))
    else:
        if frame.attrs.get("synthetic"):
            print("model trained on the SYNTHETIC demo cohort (not patient data)")
        print(robustness_table(frame))
        majority = frame.attrs.get("majority_rate")
        if majority is not None:
            print(f"majority-class rate of the test set: {majority * 100:.1f}%")
    return 0


def _run_missing(args) -> int:
    """`smmt robustness RUN --test-missing ...`: the model and the baselines, on the same persons."""
    from smmt_core.experiments.missing import MODEL, evaluate_missing_shares, missing_json, missing_table, parse_shares

    shares = parse_shares(_floats(args.test_missing, "--test-missing"))
    methods = [MODEL, *_baseline_names(args.baselines)]
    out = Path(args.out) if args.out else None
    json_out = out.with_suffix(".json") if out is not None else None
    if out is not None:
        check_writable(out, "CSV file")
        check_writable(json_out, "JSON file")
    if args.plot:
        check_writable(args.plot, "plot file")

    def progress(done: int, total: int) -> None:
        sys.stderr.write(f"smmt robustness: {done}/{total} methods fitted and scored\n")
        sys.stderr.flush()

    frame = evaluate_missing_shares(args.model, data=args.data, shares=shares, methods=methods, device=args.device,
                                    on_progress=None if args.quiet else progress)
    payload = missing_json(frame)
    if out is not None:
        if out.suffix.lower() != ".json":
            atomic_write_text(out, frame.to_csv(index=False))
        atomic_write_text(json_out, json.dumps(payload, indent=2) + "\n")
    if args.plot:
        from smmt_core.experiments.plots import plot_missing

        plot_missing(frame, args.plot, title=f"Missing modalities: {Path(args.model).name} and the baselines")
    if args.json:
        print(json.dumps(payload, indent=2))
        return 0
    if frame.attrs.get("synthetic"):
        print("model trained on the SYNTHETIC demo cohort (not patient data)")
    if frame.attrs.get("note"):
        print(frame.attrs["note"])
    print(missing_table(frame))
    n = int(frame["n_persons"].max()) if len(frame) else 0
    print(f"{n} test persons; who lacks a modality is drawn from split seed {frame.attrs.get('split_seed')}, "
          "the same persons for every method; 'lacking': persons without the modality, "
          "'prior': persons a baseline had no input for (given its training prior)")
    for name, message in frame.attrs.get("errors", {}).items():
        print(f"{name}: not scored ({message})")
    if out is not None:
        print(f"rows: {out if out.suffix.lower() != '.json' else json_out}; persons drawn: {json_out}")
    return 0
