"""`smmt train`, `smmt predict` and `smmt runs`: the training engine from the command line.

`train` runs in the main thread; Ctrl-C or SIGTERM set its stop flag (`stop_on_signals`) and the run
ends cleanly after the current batch (checkpoints written so far are kept, exit code 130). Progress goes to stderr (a bar that redraws
itself on a terminal, one line per epoch otherwise), results to stdout (`--json` for scripts).

The flags come from light declarations (the training config, the variants table); the trainer,
the predictor and the run folders' reader (torch, pandas, scikit-learn) are imported when a
command runs.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

from smmt_core.cli.config_flags import add_config_flags, overrides_from_args
from smmt_core.cli.exit_codes import EXIT_INTERRUPTED, EXIT_OK
from smmt_core.data.feature_sets import circularity_warning
from smmt_core.device import DEVICE_CHOICES
from smmt_core.errors import ConfigError, DataError
from smmt_core.jsonsafe import json_safe
from smmt_core.modalities import MODALITY_NAMES
from smmt_core.text import format_duration
from smmt_core.train import events as ev
from smmt_core.train.config import DEFAULT_PRESET, FIELD_SECTION, PRESETS, TrainConfig
from smmt_core.variants import BASELINES


def add_commands(subparsers) -> None:
    """Register this area's sub-commands on the `smmt` parser."""
    train = subparsers.add_parser(
        "train",
        help="train SMMT or a baseline on a dataset (or the synthetic demo cohort)",
        description=(
            "Train one model and write a run folder (config, split, per-epoch metrics, energy, best "
            "and last checkpoints, test metrics with 95% bootstrap confidence intervals). Every figure "
            "is per person: scans of one person are soft-voted. Ctrl-C stops cleanly after the current "
            "batch. Exit codes: 0 done, 1 training failed (e.g. the loss diverged), 2 bad input, "
            "130 stopped by Ctrl-C."
        ),
        epilog="example: smmt demo-data && smmt train --data demo --epochs 12",
    )
    train.add_argument("--preset", choices=sorted(PRESETS), default=DEFAULT_PRESET,
                       help="starting settings: 'demo' (small, minutes on a CPU), 'paper' (Table I: "
                            "d=512, 256x256 slices, 50 epochs) or 'volume' (the whole brain as ~4000 3D "
                            f"patch tokens); the flags below override it (default: {DEFAULT_PRESET}, whose "
                            "values the flags' defaults show)")
    add_config_flags(train)
    train.add_argument("--resume", metavar="RUN", default=None,
                       help="continue RUN (stopped, interrupted or failed) from its last checkpoint: weights, "
                            "optimiser and random state, same split, same folder (a run stopped before its first "
                            "checkpoint starts again from the beginning there); the run's own settings are "
                            "used, only --epochs (to train longer), --device and --no-energy may be given")
    train.add_argument("--baselines", default="", metavar="LIST",
                       help="after training, score these simple baselines on the run's own persons and print them "
                            "beside its metrics (stored in run.json): lr-clinical, lr-regional, "
                            "lr-clinical-regional, lr-pixels, cnn")
    train.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    train.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    train.add_argument("--ddp", type=int, default=None, metavar="N",
                       help="train one model on N processes of this machine with DistributedDataParallel (gloo on "
                            "CPU, NCCL on N GPUs); --batch-size is the global batch. Several machines: start "
                            "`torchrun --nproc-per-node N -m smmt_core.cli train ...` instead (docs/scale-out.md)")
    train.set_defaults(handler=_train)

    predict = subparsers.add_parser(
        "predict",
        help="predict AD/CN (or CN/MCI/AD) for one subject with a trained run",
        description=(
            "Predict for a subject folder (a T1 image plus an optional clinical.json or one-row CSV/TSV) "
            "or a single T1 file, with the preprocessing of the run. Research use only; not a "
            "medical device. Exit codes: 0 done, 2 bad input."
        ),
        epilog=("examples: smmt predict ~/subjects/patient-7 --model runs/smmt-f1-s0-20260101-120000 --without clinical\n"
                "          smmt predict sub-001 --cohort demo --model runs/smmt-f1-s0-20260101-120000 --json"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    predict.add_argument("subject", metavar="SUBJECT",
                         help="subject folder or T1 file (.nii, .nii.gz, .mgz, .hdr/.img); with --cohort, a "
                              "subject id (or id/session) in that dataset")
    predict.add_argument("--cohort", metavar="DATASET",
                         help="take SUBJECT from a dataset (BIDS, ADNI, OASIS, folder of subjects, or 'demo'), "
                              "with its clinical data from the dataset's tables")
    predict.add_argument("--model", required=True, metavar="RUN", help="run folder written by `smmt train`, or the folder of runs given to "
                         "`smmt train --out` (its newest finished run is used)")
    predict.add_argument("--without", nargs="+", choices=MODALITY_NAMES, default=[], metavar="MODALITY",
                         help="switch modalities off: mri, clinical, categorical")
    predict.add_argument("--checkpoint", choices=("best", "last"), default="best",
                         help="which checkpoint of the run (default: best)")
    predict.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    predict.add_argument("--json", action="store_true", help="print the prediction as JSON on stdout")
    predict.add_argument("--report", metavar="BASE",
                         help="also write the report the desktop app exports (BASE.json, BASE.csv and, when "
                              "the MRI was used, BASE.png of the model's slices and clusters; when the scan went "
                              "through the intake, BASE.qc.png: its registration QC picture); BASE may be a folder")
    predict.set_defaults(handler=_predict)

    runs = subparsers.add_parser(
        "runs", help="list the training runs under a folder",
        description=("List run folders (newest first) with their status and per-subject test results. "
                     "Statuses: running, finished, stopped (by the user), failed, interrupted (the process "
                     "ended without recording why: continue it with `smmt train --resume RUN`), unreadable "
                     "(run.json cannot be read; the reason is shown)."),
    )
    runs.add_argument("root", nargs="?", default="runs", help="folder holding run folders (default: runs)")
    runs.add_argument("--json", action="store_true", help="print the list as JSON on stdout")
    runs.set_defaults(handler=_runs)


# -- train ---------------------------------------------------------------------------------
def config_from_args(args):
    """TrainConfig from the preset plus the flags that were given."""
    if not getattr(args, "dataset", None):
        raise ConfigError("--data is required (a dataset folder or 'demo'), or --resume RUN")
    return TrainConfig.build(args.preset, **overrides_from_args(args))


RESUME_SETTINGS = ("epochs", "device", "measure_energy")  # what --resume lets a user change


def resume_config(args):
    """The stored TrainConfig of the run to resume, with the few settings a resumption may change."""
    from smmt_core.train.run_record import RunRecord

    run_dir = Path(args.resume)
    if not run_dir.is_dir():
        raise ConfigError("run folder not found", run_dir)
    overrides = overrides_from_args(args)
    other = sorted(set(overrides) - set(RESUME_SETTINGS))
    if other:
        raise ConfigError(f"--resume continues the run with its own settings; only --epochs, --device and "
                          f"--no-energy may be given (got settings: {', '.join(other)})")
    data = RunRecord(run_dir).config().to_dict()
    for name, value in overrides.items():
        data[FIELD_SECTION[name]][name] = value
    return TrainConfig.from_dict(data)


def _fmt(value, digits: int = 3) -> str:
    return "n/a" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.{digits}f}"


class TrainingProgress:
    """Training events as tqdm progress bars on stderr (a redrawn bar on a terminal, sparse lines in a log),
    with one line per epoch and the run folder up front."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.total_epochs = 0
        self.energy = None
        self.bar = None
        self.stage = None

    def _bar(self, total: int, desc: str, unit: str):
        from tqdm import tqdm

        self.close()
        self.bar = tqdm(total=total, desc=desc, unit=unit, file=self.stream, leave=False, dynamic_ncols=True,
                        mininterval=0.5 if self.stream.isatty() else 10.0)
        return self.bar

    def _line(self, text: str) -> None:
        from tqdm import tqdm

        tqdm.write(text, file=self.stream)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __call__(self, event) -> None:
        if isinstance(event, ev.RunStarted):
            self.close()
            self.total_epochs = event.total_epochs
            self._line(f"run folder: {event.run_dir}")
            self._line(f"training on {event.device}: {event.n_train} train, {event.n_val} validation, "
                       f"{event.n_test} test scans; {event.total_epochs} epochs of {event.batches_per_epoch} batches")
            if event.problems:
                self._line(f"warning: the dataset has {len(event.problems)} problem(s) (all listed in run.json), e.g.:")
                for problem in event.problems[:5]:
                    self._line(f"  {problem}")
        elif isinstance(event, ev.DataProgress):
            if self.stage != event.stage or self.bar is None:
                self.stage = event.stage
                self._bar(event.total, event.stage, "scan")
            self.bar.n = event.done
            self.bar.refresh() if event.done == event.total else self.bar.update(0)
        elif isinstance(event, ev.BatchProgress):
            total = self.total_epochs * event.batches_per_epoch
            if self.stage != "training" or self.bar is None:
                self.stage = "training"
                self._bar(total, "training", "batch")
            self.bar.n = (event.epoch - 1) * event.batches_per_epoch + event.batch
            self.bar.set_postfix_str(f"epoch {event.epoch}/{self.total_epochs} loss {event.loss:.3f}", refresh=False)
            self.bar.update(0)
        elif isinstance(event, ev.EnergyUpdate):
            self.energy = event
        elif isinstance(event, ev.EpochEnd):
            val = event.val_metrics or {}
            text = (f"epoch {event.epoch}/{self.total_epochs}: train loss {_fmt(event.train_loss)} "
                    f"acc {_fmt(event.train_metrics.get('accuracy'))} | val loss {_fmt(event.val_loss)} "
                    f"bal.acc {_fmt(val.get('balanced_accuracy'))} auc {_fmt(val.get('roc_auc'))}")
            if self.energy is not None:
                text += (f" | {self.energy.energy_kwh * 1000:.3f} Wh, {self.energy.power_w:.0f} W"
                         f"{' (estimated)' if self.energy.estimated else ''}")
            self._line(text + ("  *best*" if event.is_best else ""))
        elif isinstance(event, (ev.RunFinished, ev.RunFailed)):
            self.close()
            if isinstance(event, ev.RunFinished):
                self._line("stopped early; checkpoints written so far are kept" if event.stopped_early
                           else "training finished")
        # RunFailed: the command prints the error itself (one line, exit code 2)


def _write_now(text: str) -> None:
    """Straight to the stderr file descriptor: a signal handler must not re-enter a buffered
    stream that the progress bar may be writing to at that very moment (RuntimeError: reentrant call)."""
    try:
        os.write(sys.stderr.fileno(), text.encode("utf-8", "replace"))
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        pass


@contextmanager
def stop_on_signals(stop: threading.Event, doing: str = "stopping after the current batch"):
    """While inside: the first Ctrl-C (SIGINT) or SIGTERM sets `stop`, so the run ends cleanly after
    the current batch; a second Ctrl-C aborts (KeyboardInterrupt). `doing`: what the message on
    stderr says happens now.

    Why a handler and not a worker thread: Python runs signal handlers in the main thread between
    bytecodes, so the training (also in the main thread) just sees the flag at its next check.
    A KeyboardInterrupt raised while a worker thread sat inside torch killed the interpreter
    (SIGABRT, "terminate called without an active exception"). Outside the main thread (a test,
    an embedding application) signals cannot be handled here and nothing is installed.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum, frame):
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()
        what = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        _write_now(f"\n{what}: {doing} (Ctrl-C again to abort)…\n")

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _train(args) -> int:
    config = resume_config(args) if args.resume else config_from_args(args)  # bad flags fail before torch loads
    baselines = [b.strip() for b in args.baselines.split(",") if b.strip()]
    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        raise ConfigError(f"unknown baseline(s) {', '.join(unknown)}; choose from {', '.join(BASELINES)}")
    warning = circularity_warning(config.data.features or [])
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    from smmt_core.train.distributed import DistContext

    dist_ctx = DistContext.from_env()
    if args.ddp is not None or dist_ctx is not None:  # one model on several processes
        if args.resume:
            raise ConfigError("--resume continues a run on one process; leave out --ddp (and torchrun) to resume")
        return _train_distributed(args, config, baselines, dist_ctx)
    from smmt_core.train.trainer import train

    progress = None if args.quiet else TrainingProgress()
    stop = threading.Event()
    with stop_on_signals(stop):
        result = train(config, on_event=progress, stop=stop, resume=args.resume)
    scored = {}
    if baselines and result.test_metrics and not result.stopped_early:
        from smmt_core.baselines import score_baselines_for_run

        if progress is not None:
            print(f"scoring baselines on the run's persons: {', '.join(baselines)}", file=sys.stderr)
        scored = score_baselines_for_run(result.run_dir, baselines)
    _print_result(result, as_json=args.json, baselines=scored)
    return EXIT_INTERRUPTED if result.stopped_early else EXIT_OK


def _train_distributed(args, config, baselines, dist_ctx) -> int:
    """`smmt train --ddp N` (spawns N processes here) or one rank under torchrun (dist_ctx).

    Only rank 0 shows progress, scores baselines and prints the result. Ctrl-C stops every rank
    cleanly at its next batch (exit 130), as for one process.
    """
    from smmt_core.train.distributed import spawn_training

    if dist_ctx is not None and args.ddp is not None:
        raise ConfigError("--ddp starts its own processes; under torchrun leave it out")
    if dist_ctx is None:
        result = spawn_training(config, args.ddp, progress_factory=None if args.quiet else TrainingProgress)
    else:
        from smmt_core.train.trainer import train

        stop = threading.Event()  # every rank gets the terminal's Ctrl-C; the trainer stops them together
        try:
            progress = TrainingProgress() if (dist_ctx.is_main and not args.quiet) else None
            with stop_on_signals(stop):
                result = train(config, on_event=progress, stop=stop, dist=dist_ctx)
        finally:
            import torch.distributed

            if torch.distributed.is_initialized():
                torch.distributed.destroy_process_group()
        if not dist_ctx.is_main:
            return EXIT_INTERRUPTED if result.stopped_early else EXIT_OK
    scored = {}
    if baselines and result.test_metrics and not result.stopped_early:
        from smmt_core.baselines import score_baselines_for_run

        scored = score_baselines_for_run(result.run_dir, baselines)
    _print_result(result, as_json=args.json, baselines=scored)
    return EXIT_INTERRUPTED if result.stopped_early else EXIT_OK


def _print_result(result, as_json: bool, baselines: dict | None = None) -> None:
    from smmt_core.train.metrics import format_ci

    baselines = baselines or {}
    if as_json:
        data = {
            "run_dir": str(result.run_dir), "stopped_early": result.stopped_early, "best_epoch": result.best_epoch,
            "duration_s": result.duration_s, "energy_kwh": result.energy_kwh, "energy": result.energy,
            "test_metrics": {k: v for k, v in result.test_metrics.items() if k != "roc_curve"},
            "baselines": {name: {k: v for k, v in m.items() if k != "roc_curve"} for name, m in baselines.items()},
        }
        print(json.dumps(json_safe(data), indent=2))
        return
    m = result.test_metrics
    print(f"run folder: {result.run_dir}")
    if not m:
        print("no test result (the run stopped before the first epoch ended)")
    else:
        kept = f"best epoch {result.best_epoch}" if result.best_epoch is not None else "mean of the ensemble's members"
        print(f"test, per person (n={m.get('n_subjects')}, {kept}), 95% bootstrap CIs:")
        rows = [(result.run_dir.name if hasattr(result.run_dir, "name") else "model", m)]
        rows += [(f"baseline {name}", metrics) for name, metrics in baselines.items()]
        width = max(len(name) for name, _ in rows)
        print(f"  {'':<{width}}  {'balanced accuracy %':<22} {'AUC':<20} {'accuracy %':<20} {'Brier':<6} ECE")
        for name, metrics in rows:
            if "error" in metrics:
                print(f"  {name:<{width}}  not scored: {metrics['error']}")
                continue
            print(f"  {name:<{width}}  {format_ci(metrics, 'balanced_accuracy', 100):<22} "
                  f"{format_ci(metrics, 'roc_auc', 1, 3):<20} {format_ci(metrics, 'accuracy', 100):<20} "
                  f"{_fmt(metrics.get('brier')):<6} {_fmt(metrics.get('ece'))}")
    e = result.energy or {}
    if e.get("available"):
        print(f"energy: {e['energy_kwh'] * 1000:.3f} Wh (CPU {e['cpu_kwh'] * 1000:.3f}, GPU {e['gpu_kwh'] * 1000:.3f}, "
              f"RAM {e['ram_kwh'] * 1000:.3f}), {e['co2_kg'] * 1000:.3f} g CO2eq ({e['country']})"
              f"{', estimated (no RAPL/NVML)' if e.get('estimated') else ''}; training {format_duration(result.duration_s)}")
    else:
        print(f"energy: not measured ({e.get('note') or 'unavailable'}); training {format_duration(result.duration_s)}")


# -- predict -------------------------------------------------------------------------------
def _predict_subject(args):
    """The subject `smmt predict` was given, read (image headers only) before any model is loaded.

    Loading a model takes seconds; a missing file, an unreadable one or a header that lies about
    its image is refused first, with the loaders' one-line message.
    """
    from smmt_core.predict import Predictor

    if args.cohort:
        from smmt_core.data.loaders import load_cohort
        from smmt_core.predict import subject_from_cohort

        return subject_from_cohort(load_cohort(args.cohort), args.subject)
    return Predictor._subject(args.subject)


def _predict(args) -> int:
    from smmt_core.predict import Predictor
    from smmt_core.train.run_record import resolve_run_dir

    run_dir = resolve_run_dir(args.model)  # a folder of runs: its newest finished run
    if run_dir != Path(args.model).expanduser():
        print(f"using the newest finished run in {args.model}: {run_dir}", file=sys.stderr)
    report_base = None
    if args.report:
        from smmt_core.report import check_report_folder

        target = Path(args.report).expanduser()
        report_base = check_report_folder(target / "report" if target.is_dir() else target)  # before any work
    subject = _predict_subject(args)  # before the model: a missing or lying input costs no model load
    modalities = [m for m in MODALITY_NAMES if m not in set(args.without)]
    # The disk cache: a second prediction of the same scan skips its preprocessing (and the intake).
    predictor = Predictor.load(run_dir, device=args.device, which=args.checkpoint, disk_cache=True)
    result = predictor.predict(subject, modalities=modalities)
    if report_base is not None:
        from smmt_core.report import ReportContext, write_report

        context = ReportContext(model_name=predictor.run_name, model_dir=str(predictor.run_dir),
                                data_path=str(getattr(result, "subject_id", "")), synthetic_model=predictor.synthetic,
                                device=str(args.device))
        written = write_report(report_base, result, context)
        print("report: " + ", ".join(str(p) for p in written), file=sys.stderr)
    if args.json:
        print(json.dumps(json_safe(result.to_dict()), indent=2))
        return EXIT_OK
    probs = ", ".join(f"P({c}) = {p:.3f}" for c, p in result.probabilities.items())
    print(f"{result.subject_id}: {result.verdict}  ({probs})")
    print(f"modalities used: {', '.join(result.modalities_used) or 'none'}"
          + (f"; missing: {', '.join(result.modalities_missing)}" if result.modalities_missing else "")
          + (f"; switched off: {', '.join(args.without)}" if args.without else ""))
    if result.contributions:
        print("contributions (predicted-class logit minus the logit without the modality): "
              + ", ".join(f"{k} {v:+.3f}" for k, v in result.contributions.items()))
    if result.guess_note:
        print(f"note: {result.guess_note}")
    if result.ensemble:
        spread = ", ".join(f"{c} ±{v:.3f}" for c, v in result.ensemble["spread"].items())
        print(f"ensemble of {result.ensemble['members']} models; SD of their probabilities: {spread}")
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    note = "model trained on the SYNTHETIC demo cohort; " if result.synthetic_model else ""
    print(f"model: {result.model_name} ({note}research use only, not a medical device)")
    return EXIT_OK


# -- runs ----------------------------------------------------------------------------------
def _runs(args) -> int:
    from smmt_core.train.run_record import list_runs

    root = Path(args.root)
    if not root.is_dir():
        raise DataError("folder not found", root)
    runs = list_runs(root)
    if args.json:
        print(json.dumps(json_safe([{**r.__dict__, "test_metrics": {k: v for k, v in r.test_metrics.items()
                                                                     if k != "roc_curve"}} for r in runs]), indent=2))
        return EXIT_OK
    if not runs:
        print(f"no runs under {root}")
        return EXIT_OK
    print(f"{'run':<40} {'variant':<15} {'status':<11} {'test bal.acc':>12} {'AUC':>6}  created")
    for r in runs:
        if r.status == "unreadable":
            print(f"{r.name:<40} {'':<15} {r.status:<11} {r.error}")
            continue
        tag = " [synthetic]" if r.synthetic else ""
        print(f"{r.name:<40} {r.variant:<15} {r.status:<11} {_fmt(r.test_metrics.get('balanced_accuracy')):>12} "
              f"{_fmt(r.test_metrics.get('roc_auc'), 2):>6}  {r.created}{tag}")
    return EXIT_OK
