"""`smmt train`, `smmt predict` and `smmt runs`: the training engine from the command line.

`train` runs in a worker thread so that Ctrl-C can set the stop flag and let the run end cleanly
(checkpoints written so far are kept, exit code 130). Progress goes to stderr (a bar that redraws
itself on a terminal, one line per epoch otherwise), results to stdout (`--json` for scripts).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import threading
import time

MODALITY_NAMES = ("mri", "clinical", "categorical")


def add_commands(subparsers) -> None:
    """Register this area's sub-commands on the `smmt` parser."""
    from smmt_core.train.config import LABEL_SETS, MASK_MODES, PRESETS, VARIANTS

    train = subparsers.add_parser(
        "train",
        help="train SMMT or a baseline on a dataset (or the synthetic demo cohort)",
        description=(
            "Train one model and write a run folder (config, split, per-epoch metrics, energy, best "
            "and last checkpoints, test metrics). Every figure is per subject: scans of one person are "
            "soft-voted. Ctrl-C stops cleanly after the current batch. Exit codes: 0 done, "
            "1 training failed (e.g. the loss diverged), 2 bad input, 130 stopped by Ctrl-C."
        ),
        epilog="example: smmt demo-data && smmt train --data demo --epochs 12",
    )
    train.add_argument("--data", required=True, metavar="PATH",
                       help="dataset folder (BIDS, ADNI download, OASIS-1, folder of subject folders) or 'demo'")
    train.add_argument("--adnimerge", metavar="CSV",
                       help="ADNI: the ADNIMERGE table, when it is not inside the download folder")
    train.add_argument("--date-window", type=int, metavar="DAYS", dest="date_window",
                       help="ADNI: max days between a scan and the EXAMDATE matched to it (default 180)")
    train.add_argument("--preset", choices=sorted(PRESETS), default="demo",
                       help="starting settings: 'demo' (small, minutes on a CPU) or 'paper' (Table I: "
                            "d=512, 256x256 slices, 50 epochs); flags below override it (default: demo)")
    train.add_argument("--variant", choices=VARIANTS, help="model: smmt (default), an ablation, or the 3mt baseline")
    train.add_argument("--label-set", choices=sorted(LABEL_SETS), help="ad-cn (default, the paper) or cn-mci-ad")
    train.add_argument("--features", metavar="LIST",
                       help="clinical inputs: 'paper' (default: MMSE, CDGLOBAL, FAQ, AGE, PTGENDER, APOE4), "
                            "'non-circular' (AGE, PTEDUCAT, PTGENDER, APOE4: no scores that define the "
                            "diagnosis), 'all', 'none' (MRI only) or comma-separated column names")
    train.add_argument("--fraction", type=float, metavar="F", help="share of the training subjects to use, in (0, 1]")
    train.add_argument("--mask-ratio", type=float, metavar="R", help="modality masking ratio in [0, 1) (default 0.3)")
    train.add_argument("--mask-mode", choices=MASK_MODES, help="mask single dimensions (paper) or whole modalities")
    train.add_argument("--epochs", type=int, metavar="N")
    train.add_argument("--batch-size", type=int, metavar="N")
    train.add_argument("--lr", type=float, metavar="LR", help="Adam learning rate (default 1e-3)")
    train.add_argument("--seed", type=int, metavar="N", help="seed of model init, batch order and split (default 0)")
    train.add_argument("--folds", type=int, metavar="K", help="k-fold cross-validation by subject: number of folds")
    train.add_argument("--fold", type=int, metavar="I", help="with --folds: which fold (0-based) is the test fold")
    train.add_argument("--device", choices=("auto", "cpu", "cuda"), help="auto (default): CUDA when present, else CPU")
    train.add_argument("--out", metavar="DIR", help="parent folder of the run folder (default: runs)")
    train.add_argument("--name", metavar="NAME", help="run folder name (default: variant-fraction-seed-time)")
    train.add_argument("--country", metavar="ISO3", help="country for the CO2 estimate, ISO 3166 alpha-3 (default USA)")
    train.add_argument("--no-energy", action="store_true", help="do not measure energy with codecarbon")
    train.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    train.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
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
    predict.add_argument("--model", required=True, metavar="RUN", help="run folder written by `smmt train`")
    predict.add_argument("--without", nargs="+", choices=MODALITY_NAMES, default=[], metavar="MODALITY",
                         help="switch modalities off: mri, clinical, categorical")
    predict.add_argument("--checkpoint", choices=("best", "last"), default="best",
                         help="which checkpoint of the run (default: best)")
    predict.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    predict.add_argument("--json", action="store_true", help="print the prediction as JSON on stdout")
    predict.set_defaults(handler=_predict)

    runs = subparsers.add_parser(
        "runs", help="list the training runs under a folder",
        description="List run folders (newest first) with their status and per-subject test results.",
    )
    runs.add_argument("root", nargs="?", default="runs", help="folder holding run folders (default: runs)")
    runs.add_argument("--json", action="store_true", help="print the list as JSON on stdout")
    runs.set_defaults(handler=_runs)


# -- train ---------------------------------------------------------------------------------
def config_from_args(args):
    """TrainConfig from the preset plus the flags that were given."""
    from smmt_core.train.config import from_preset

    overrides = {"data": args.data}
    mapping = {
        "variant": "variant", "label_set": "label_set", "fraction": "fraction", "mask_ratio": "mask_ratio",
        "mask_mode": "mask_mode", "epochs": "epochs", "batch_size": "batch_size", "lr": "lr", "seed": "seed",
        "device": "device", "out": "out", "name": "run_name", "country": "energy_country",
        "folds": "n_folds", "fold": "fold", "adnimerge": "adnimerge", "date_window": "date_window_days",
    }
    for flag, key in mapping.items():
        value = getattr(args, flag, None)
        if value is not None:
            overrides[key] = value
    if args.features is not None:
        from smmt_core.train.trainer import resolve_features

        overrides["features"] = resolve_features(args.features)
    if args.no_energy:
        overrides["measure_energy"] = False
    if overrides.get("fold") is not None and overrides.get("n_folds") is None:
        from smmt_core.errors import ConfigError

        raise ConfigError("--fold needs --folds")
    if overrides.get("n_folds") is not None and overrides.get("fold") is None:
        overrides["fold"] = 0
    return from_preset(args.preset, **overrides)


def _fmt_time(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "--:--"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def _fmt(value, digits: int = 3) -> str:
    return "n/a" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.{digits}f}"


class TextProgress:
    """Turns training events into a progress bar on a terminal, plain lines otherwise."""

    def __init__(self, stream=None, width: int = 28):
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.width = width
        self.total_epochs = 0
        self.energy = None
        self._open_line = False
        self._last_data_print = 0.0

    def _bar(self, fraction: float) -> str:
        filled = int(round(self.width * max(0.0, min(1.0, fraction))))
        return "#" * filled + "-" * (self.width - filled)

    def _redraw(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\x1b[2K" + text)
            self._open_line = True
            self.stream.flush()

    def _line(self, text: str) -> None:
        if self._open_line:
            self.stream.write("\r\x1b[2K")
            self._open_line = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def __call__(self, event) -> None:
        from smmt_core.train import events as ev

        if isinstance(event, ev.RunStarted):
            self.total_epochs = event.total_epochs
            self._line(f"run folder: {event.run_dir}")
            self._line(f"training on {event.device}: {event.n_train} train, {event.n_val} validation, "
                       f"{event.n_test} test scans; {event.total_epochs} epochs of {event.batches_per_epoch} batches")
        elif isinstance(event, ev.DataProgress):
            text = f"{event.stage} [{self._bar(event.done / max(event.total, 1))}] {event.done}/{event.total}"
            if self.tty:
                self._redraw(text)
            elif event.done == event.total or time.monotonic() - self._last_data_print > 10:
                self._last_data_print = time.monotonic()
                self._line(text)
        elif isinstance(event, ev.BatchProgress):
            done = (event.epoch - 1) * event.batches_per_epoch + event.batch
            total = max(self.total_epochs * event.batches_per_epoch, 1)
            self._redraw(f"epoch {event.epoch}/{self.total_epochs} [{self._bar(done / total)}] "
                         f"batch {event.batch}/{event.batches_per_epoch} loss {event.loss:.3f} "
                         f"elapsed {_fmt_time(event.elapsed_s)} eta {_fmt_time(event.eta_s)}")
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
        elif isinstance(event, ev.RunFinished):
            self._line("stopped early; checkpoints written so far are kept" if event.stopped_early else "training finished")
        # RunFailed: the command prints the error itself (one line, exit code 2)


def _train(args) -> int:
    from smmt_core.cli import EXIT_INTERRUPTED, EXIT_OK
    from smmt_core.train.trainer import train

    config = config_from_args(args)
    progress = None if args.quiet else TextProgress()
    stop = threading.Event()
    outcome: dict = {}

    def work():
        try:
            outcome["result"] = train(config, on_event=progress, stop=stop)
        except BaseException as error:  # handed to the main thread
            outcome["error"] = error

    worker = threading.Thread(target=work, name="smmt-train", daemon=True)
    worker.start()
    interrupted = False
    while worker.is_alive():
        try:
            worker.join(0.2)
        except KeyboardInterrupt:
            if interrupted:  # second Ctrl-C: give up waiting
                raise
            interrupted = True
            stop.set()
            print("\nstopping after the current batch (Ctrl-C again to abort)…", file=sys.stderr)
    if "error" in outcome:
        raise outcome["error"]
    result = outcome["result"]
    _print_result(result, as_json=args.json)
    return EXIT_INTERRUPTED if result.stopped_early else EXIT_OK


def _print_result(result, as_json: bool) -> None:
    from smmt_core.train.metrics import json_safe

    if as_json:
        data = {
            "run_dir": str(result.run_dir), "stopped_early": result.stopped_early, "best_epoch": result.best_epoch,
            "duration_s": result.duration_s, "energy_kwh": result.energy_kwh, "energy": result.energy,
            "test_metrics": {k: v for k, v in result.test_metrics.items() if k != "roc_curve"},
        }
        print(json.dumps(json_safe(data), indent=2))
        return
    m = result.test_metrics
    print(f"run folder: {result.run_dir}")
    if not m:
        print("no test result (the run stopped before the first epoch ended)")
    else:
        print(f"test (per subject, n={m.get('n_subjects')}, best epoch {result.best_epoch}): "
              f"accuracy {_fmt(m.get('accuracy'))}, balanced accuracy {_fmt(m.get('balanced_accuracy'))}, "
              f"sensitivity {_fmt(m.get('sensitivity'))}, specificity {_fmt(m.get('specificity'))}, "
              f"AUC {_fmt(m.get('roc_auc'))}")
    e = result.energy or {}
    if e.get("available"):
        print(f"energy: {e['energy_kwh'] * 1000:.3f} Wh (CPU {e['cpu_kwh'] * 1000:.3f}, GPU {e['gpu_kwh'] * 1000:.3f}, "
              f"RAM {e['ram_kwh'] * 1000:.3f}), {e['co2_kg'] * 1000:.3f} g CO2eq ({e['country']})"
              f"{', estimated (no RAPL/NVML)' if e.get('estimated') else ''}; {_fmt_time(result.duration_s)}")
    else:
        print(f"energy: not measured ({e.get('note') or 'unavailable'}); {_fmt_time(result.duration_s)}")


# -- predict -------------------------------------------------------------------------------
def _predict(args) -> int:
    from smmt_core.cli import EXIT_OK
    from smmt_core.predict import Predictor

    predictor = Predictor.load(args.model, device=args.device, which=args.checkpoint)
    modalities = [m for m in MODALITY_NAMES if m not in set(args.without)]
    subject = args.subject
    if args.cohort:
        from smmt_core.predict import subject_from_cohort
        from smmt_core.train.config import TrainConfig
        from smmt_core.train.trainer import load_training_cohort

        subject = subject_from_cohort(load_training_cohort(TrainConfig(data=args.cohort)), args.subject)
    result = predictor.predict(subject, modalities=modalities)
    if args.json:
        from smmt_core.train.metrics import json_safe

        print(json.dumps(json_safe(result.to_dict()), indent=2))
        return EXIT_OK
    probs = ", ".join(f"P({c}) = {p:.3f}" for c, p in result.probabilities.items())
    print(f"{result.subject_id}: {result.prediction}  ({probs})")
    print(f"modalities used: {', '.join(result.modalities_used) or 'none'}"
          + (f"; missing: {', '.join(result.modalities_missing)}" if result.modalities_missing else "")
          + (f"; switched off: {', '.join(args.without)}" if args.without else ""))
    if result.contributions:
        print("contributions (predicted-class logit minus the logit without the modality): "
              + ", ".join(f"{k} {v:+.3f}" for k, v in result.contributions.items()))
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    note = "model trained on the SYNTHETIC demo cohort; " if result.synthetic_model else ""
    print(f"model: {result.model_name} ({note}research use only, not a medical device)")
    return EXIT_OK


# -- runs ----------------------------------------------------------------------------------
def _runs(args) -> int:
    from pathlib import Path

    from smmt_core.cli import EXIT_OK
    from smmt_core.errors import DataError
    from smmt_core.train.metrics import json_safe
    from smmt_core.train.runs import list_runs

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
    print(f"{'run':<40} {'variant':<15} {'status':<9} {'test bal.acc':>12} {'AUC':>6}  created")
    for r in runs:
        tag = " [synthetic]" if r.synthetic else ""
        print(f"{r.name:<40} {r.variant:<15} {r.status:<9} {_fmt(r.test_metrics.get('balanced_accuracy')):>12} "
              f"{_fmt(r.test_metrics.get('roc_auc'), 2):>6}  {r.created}{tag}")
    return EXIT_OK
