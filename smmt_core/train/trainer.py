"""The training loop: one call, `train(config, on_event, stop)`, used by the GUI, the CLI and experiments.

What one run does, in order:
1. Validate the config; load the cohort (`config.data`, or the demo cohort for "demo"); keep the
   subjects whose label is in the chosen label set (AD vs CN, or CN vs MCI vs AD).
2. Split by person (stratified, seeded; k-fold when `n_folds` is set); the data fraction shrinks
   the training persons only, the test persons never change.
3. Fit the clinical feature encoder on the training subjects only (before anything is written,
   so an unknown feature name leaves no folder behind). Create the run folder: config.json,
   split.csv, run.json (status "running"); emit RunStarted.
4. Preprocess every scan once (disk cache), emitting DataProgress.
5. Train with Adam and cross-entropy (AMP on CUDA). After each epoch: per-subject train and
   validation metrics (EpochEnd), energy so far (EnergyUpdate), `last` checkpoint and, when the
   validation result improved, `best` checkpoint (CheckpointSaved); metrics.csv is rewritten.
6. Evaluate the best checkpoint on the test persons, write predictions.csv, add the test metrics
   and energy to best.json and run.json, emit RunFinished and return a RunResult.

Training metrics come from the training passes themselves (with dropout and masking on), the
usual convention; validation and test metrics from evaluation passes (no dropout, no masking).

Per-subject figures: one sample is one scan (all its MRI slices are tokens of that sample), and
when a person has several scans in a split their probabilities are averaged (soft voting, see
`metrics.soft_vote`) before any metric is computed. Every reported number is per person.

Stopping: the `stop` event is checked between batches (and between scans while preprocessing).
When it is set the run ends cleanly: checkpoints already written stay, the best one (if any
epoch finished) is evaluated on the test set, and RunFinished(stopped_early=True) is emitted.

Errors: any exception emits RunFailed (one line for the user) and run.json records status
"failed"; then the exception is re-raised unchanged — an `SMMTError` for bad input (the CLI prints
it as one line, exit 2), a `TrainingError` (also an SMMTError) when the run itself went wrong
although the input was fine, e.g. a diverged loss (exit 1), anything else is a bug and keeps its
traceback.

Reproducibility: the seed drives the model initialisation, the batch order and masking; on the
CPU the same config and seed give identical metrics. `split_seed` (default: `seed`) drives the
subject split.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from smmt_core.errors import ConfigError, DataError, SMMTError, TrainingError
from smmt_core.train import events as ev
from smmt_core.train.checkpoints import (
    atomic_write_json,
    atomic_write_text,
    save_checkpoint,
    software_versions,
    state_dict_tensors,
    update_checkpoint_metadata,
)
from smmt_core.train.config import LABEL_SETS, TrainConfig
from smmt_core.train.energy import EnergyMeter, EnergyReport, check_country
from smmt_core.train.metrics import SCALAR_METRICS, compute_metrics, scalar_metrics, soft_vote
from smmt_core.train.runs import RUN_FILE, create_run_dir, default_run_name, utc_now

log = logging.getLogger(__name__)

EventCallback = Callable[[object], None]

# Seconds between energy readings inside an epoch (each reading also updates emissions.csv).
ENERGY_UPDATE_EVERY_S = 10.0


@dataclass
class RunResult:
    run_dir: Path
    test_metrics: dict  # per-subject metrics of the best checkpoint on the test set ({} if none)
    energy_kwh: float | None  # None when energy could not be measured
    duration_s: float
    stopped_early: bool
    best_epoch: int | None = None
    energy: dict = field(default_factory=dict)  # EnergyReport.to_dict()


class _StopRequested(Exception):
    """Raised internally when the stop flag is set during preprocessing."""


# -- configuration helpers -----------------------------------------------------------------
def resolve_features(features) -> list[str]:
    """Feature names from a config value.

    None -> the paper's six. A list (or comma-separated string) may mix column names with the
    preset words of `smmt_core.data.features.FEATURE_PRESETS` ("paper", "non-circular", "all",
    "none"); "none" alone means MRI only.
    """
    from smmt_core.data.features import FEATURE_PRESETS, PAPER_FEATURES

    if features is None:
        return list(PAPER_FEATURES)
    if isinstance(features, str):
        features = features.replace(";", ",").split(",")
    out: list[str] = []
    for name in features:
        name = str(name).strip()
        if not name:
            continue
        key = name.lower().replace("_", "-")
        expanded = FEATURE_PRESETS.get("non-circular" if key == "noncircular" else key)
        for item in expanded if expanded is not None else [name]:
            if item not in out:
                out.append(item)
    return out


def select_device(name: str = "auto") -> torch.device:
    """'auto' -> CUDA when available, else CPU; 'cuda' without a GPU is a ConfigError."""
    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError("device 'cuda' requested but no CUDA GPU is available; use --device cpu or auto")
        return torch.device(name if ":" in name else "cuda:0")
    if name == "cpu":
        return torch.device("cpu")
    raise ConfigError(f"unknown device {name!r}; choose auto, cpu or cuda")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def load_training_cohort(config: TrainConfig, progress: Callable[[int, int], None] | None = None):
    """The cohort named by `config.data` (a path, or "demo" for the built-in synthetic cohort).

    `progress(done, total)` reports building the demo cohort the first time it is needed.
    """
    from smmt_core.data.loaders import load_dataset

    data = (config.data or "").strip()
    if not data:
        raise ConfigError("no training data given: a dataset folder, or 'demo' for the synthetic demo cohort")
    if data.lower() == "demo":
        from smmt_core.data.demo import ensure_demo_cohort

        cohort = load_dataset(ensure_demo_cohort(progress=progress))
        cohort.synthetic = True
        return cohort
    path = Path(data).expanduser()
    if not path.exists():
        raise DataError("dataset not found", path)
    if path.is_file():  # name the file itself, not the folder a one-scan "cohort" would be rooted at
        raise DataError("a single file, not a dataset; training needs a dataset folder (BIDS, ADNI, "
                        "OASIS-1 or a folder of subject folders) with labelled CN and AD subjects", path)
    adnimerge = Path(config.adnimerge).expanduser() if config.adnimerge else None
    return load_dataset(path, adnimerge=adnimerge, date_window_days=config.date_window_days)


# -- the run ---------------------------------------------------------------------------------
class _Run:
    """State of one training run; `train()` is the public entry point."""

    def __init__(self, config: TrainConfig, on_event: EventCallback | None, stop: threading.Event | None):
        self.config = config
        self.on_event = on_event
        self.stop = stop or threading.Event()
        self.run_dir: Path | None = None
        self.t_start = time.perf_counter()
        self.created = utc_now()
        self.history: list[dict] = []
        self.best_epoch: int | None = None
        self.best_score: tuple | None = None
        self.best_state: dict | None = None
        self.best_val_metrics: dict = {}
        self.stopped_early = False
        self.meter: EnergyMeter | None = None
        self.energy_report: EnergyReport | None = None
        self.summary: dict = {}

    # events ------------------------------------------------------------------------------
    def emit(self, event) -> None:
        if self.on_event is not None:
            self.on_event(event)

    def check_stop(self) -> bool:
        if self.stop.is_set():
            self.stopped_early = True
        return self.stopped_early

    # files -------------------------------------------------------------------------------
    def write_run_json(self, status: str, **extra) -> None:
        self.summary.update(extra)
        self.summary.update({
            "status": status,
            "updated": utc_now(),
            "duration_s": time.perf_counter() - self.t_start,
        })
        atomic_write_json(self.run_dir / RUN_FILE, self.summary)

    def write_metrics_csv(self) -> None:
        frame = pd.DataFrame(self.history)
        atomic_write_text(self.run_dir / "metrics.csv", frame.to_csv(index=False))

    # main ----------------------------------------------------------------------------------
    def execute(self) -> RunResult:
        from smmt_core.data.dataset import SubjectDataset
        from smmt_core.data.features import FeatureEncoder
        from smmt_core.data.preprocess import MRICache, PreprocessConfig
        from smmt_core.data.splits import kfold_split, split_subjects
        from smmt_core.model.smmt import ModelConfig, build_model

        cfg = self.config.validate()
        if cfg.measure_energy:
            check_country(cfg.energy_country)
        classes = list(LABEL_SETS[cfg.label_set])
        features = resolve_features(cfg.features)
        device = select_device(cfg.device)
        preprocess = PreprocessConfig.from_train_config(cfg)
        model_config = ModelConfig.from_train_config(cfg)  # fails early on bad model settings

        report_demo_build = self._data_progress("building demo cohort", stoppable=False)

        def demo_build_progress(done: int, total: int) -> None:
            # A stop while the demo cohort is still being built abandons the build (the builder
            # removes its temporary folder) and ends the run before it has a folder: there is no
            # data to train on yet. A finished build (done == total) is kept; the run then ends
            # cleanly at its next stop check.
            report_demo_build(done, total)
            if done < total and self.stop.is_set():
                from smmt_core.data.demo import DemoBuildStopped

                raise DemoBuildStopped("training was stopped while the demo cohort was being built; "
                                       "nothing was written")

        cohort = load_training_cohort(cfg, progress=demo_build_progress)
        subjects = [s for s in cohort.subjects if s.label in classes]
        excluded = len(cohort.subjects) - len(subjects)
        counts = {c: sum(s.label == c for s in subjects) for c in classes}
        missing_classes = [c for c, n in counts.items() if n == 0]
        if missing_classes:
            raise DataError(
                f"no subjects labelled {', '.join(missing_classes)} for label set {cfg.label_set} "
                f"(found {', '.join(f'{c}: {n}' for c, n in counts.items())})", cohort.root)

        split_seed = cfg.split_seed if getattr(cfg, "split_seed", None) is not None else cfg.seed
        if cfg.n_folds:
            split = kfold_split(cohort.subjects, n_folds=cfg.n_folds, fold=cfg.fold or 0, val_size=cfg.val_size,
                                seed=split_seed, fraction=cfg.fraction, classes=classes)
        else:
            split = split_subjects(cohort.subjects, test_size=cfg.test_size, val_size=cfg.val_size,
                                   seed=split_seed, fraction=cfg.fraction, classes=classes)
        train_s, val_s, test_s = (split.select(cohort.subjects, part) for part in ("train", "val", "test"))
        if not train_s:
            raise DataError("no training subjects left after the split; use more data or a larger fraction", cohort.root)
        train_labels = {s.label for s in train_s}
        if len(train_labels) < 2:
            raise DataError(f"the training subjects hold only {', '.join(sorted(train_labels))}; "
                            "need at least two classes (use more data or a larger fraction)", cohort.root)

        # The clinical feature encoder is fitted on the training subjects only. Fitting it here,
        # before the run folder exists, means an unknown or non-numeric feature column fails the
        # run without leaving a "failed" folder behind.
        encoder = FeatureEncoder(features).fit(train_s)

        # run folder ------------------------------------------------------------------------
        name = cfg.run_name or default_run_name(cfg.variant, cfg.fraction, cfg.seed)
        self.run_dir = create_run_dir(cfg.out or "runs", name)
        atomic_write_json(self.run_dir / "config.json", cfg.to_dict())
        split_frame = split.to_frame(cohort.subjects)
        atomic_write_text(self.run_dir / "split.csv", split_frame.to_csv(index=False))
        self.summary = {
            "run_name": self.run_dir.name,
            "created": self.created,
            "config": cfg.to_dict(),
            "data": {"path": str(cohort.root), "layout": cohort.layout, "name": cohort.name,
                     "n_scans": len(cohort.subjects), "n_excluded_other_labels": excluded,
                     "class_counts": counts, "n_problems": len(cohort.problems),
                     "problems": list(cohort.problems[:100])},
            "synthetic": bool(cohort.synthetic),
            "classes": classes,
            "features": features,
            "seed": cfg.seed,
            "split_seed": split_seed,
            "split": {"train": len(train_s), "val": len(val_s), "test": len(test_s),
                      "train_persons": len(split.train), "val_persons": len(split.val),
                      "test_persons": len(split.test), "unused_persons": len(split.unused),
                      "fold": split.fold, "n_folds": split.n_folds, "notes": list(split.notes)},
            "device": str(device),
            "versions": software_versions(),
        }
        self.write_run_json("running")

        batches_per_epoch = math.ceil(len(train_s) / cfg.batch_size)
        self.emit(ev.RunStarted(run_dir=self.run_dir, total_epochs=cfg.epochs, batches_per_epoch=batches_per_epoch,
                                n_train=len(train_s), n_val=len(val_s), n_test=len(test_s), device=str(device),
                                config=cfg.to_dict()))

        # data ------------------------------------------------------------------------------
        cache = MRICache()
        datasets = {}
        try:
            for part, part_subjects in (("train", train_s), ("val", val_s), ("test", test_s)):
                datasets[part] = SubjectDataset(part_subjects, encoder, classes, preprocess, cache,
                                                on_progress=self._data_progress(f"preprocessing {part}"))
        except _StopRequested:
            self.stopped_early = True
        mri_shape = preprocess.mri_shape if any(s.t1_path is not None for s in subjects) else None
        schema = encoder.schema(classes, mri_shape)
        mri_warnings = [w for d in datasets.values() for w in d.warnings]
        self.summary["feature_warnings"] = list(encoder.warnings)
        self.summary["mri_warnings"] = {"count": len(mri_warnings), "first": mri_warnings[:50]}
        for warning in [*encoder.warnings, *mri_warnings[:5]]:
            log.warning("%s", warning)

        # model -----------------------------------------------------------------------------
        seed_everything(cfg.seed)
        model = build_model(model_config, schema).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        amp_dtype = None
        scaler = None
        if device.type == "cuda":
            amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            if amp_dtype is torch.float16:
                scaler = torch.amp.GradScaler("cuda")
        self.summary["amp"] = str(amp_dtype).replace("torch.", "") if amp_dtype else None
        self.summary["n_parameters"] = int(sum(p.numel() for p in model.parameters()))
        meta_base = {
            "run_name": self.run_dir.name,
            "config": cfg.to_dict(),
            "schema": schema.to_dict(),
            "encoder": encoder.to_dict(),
            "preprocess": preprocess.to_dict(),
            "classes": classes,
            "features": features,
            "seed": cfg.seed,
            "split_seed": split_seed,
            "synthetic": bool(cohort.synthetic),
            "versions": self.summary["versions"],
        }

        self.meter = EnergyMeter(self.run_dir, country=cfg.energy_country, enabled=cfg.measure_energy)
        if self.stopped_early:
            self.meter.note = "the run was stopped before training began"
        else:
            self.meter.start()
        self.summary["energy_measured"] = self.meter.available
        last_energy_t = time.perf_counter()
        train_start = time.perf_counter()
        total_batches = cfg.epochs * batches_per_epoch
        done_batches = 0
        generator = torch.Generator().manual_seed(cfg.seed)

        epoch = 0
        while not self.stopped_early and epoch < cfg.epochs:
            epoch += 1
            model.train()
            order = torch.randperm(len(train_s), generator=generator).tolist()
            losses, probs, labels, ids = [], [], [], []
            for b in range(batches_per_epoch):
                if self.check_stop():
                    break
                idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
                inputs, y = self._batch(datasets["train"], idx, device)
                with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                    logits = model(inputs)
                    loss = F.cross_entropy(logits.float(), y)
                if not torch.isfinite(loss):
                    raise TrainingError(f"training diverged at epoch {epoch}, batch {b + 1} (loss is {loss.item()}); "
                                    "lower the learning rate")
                optimizer.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    loss.backward()
                    optimizer.step()
                losses.append((loss.item(), len(idx)))
                probs.append(torch.softmax(logits.detach().float(), dim=1).cpu().numpy())
                labels.extend(y.tolist())
                ids.extend(train_s[i].subject_id for i in idx)
                done_batches += 1
                elapsed = time.perf_counter() - train_start
                eta = elapsed / done_batches * (total_batches - done_batches)
                self.emit(ev.BatchProgress(epoch=epoch, batch=b + 1, batches_per_epoch=batches_per_epoch,
                                           loss=float(loss.item()), elapsed_s=elapsed, eta_s=eta))
                if time.perf_counter() - last_energy_t >= ENERGY_UPDATE_EVERY_S:
                    last_energy_t = time.perf_counter()
                    self._energy_event(epoch)
            if len(losses) < batches_per_epoch:  # stopped inside the epoch: no results for it
                break

            train_loss = sum(l * n for l, n in losses) / sum(n for _, n in losses)
            train_metrics = self._metrics(ids, labels, np.concatenate(probs), classes)
            if val_s:
                val_loss, val_metrics, _ = self.evaluate(model, datasets["val"], val_s, classes, device, amp_dtype)
                score = (_finite(val_metrics["balanced_accuracy"]), -val_loss)
            else:
                val_loss, val_metrics = None, {}
                score = (0.0, -train_loss)
            is_best = self.best_score is None or score > self.best_score
            energy_reading = self._energy_event(epoch)
            last_energy_t = time.perf_counter()
            row = {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss}
            row.update({f"train_{k}": v for k, v in scalar_metrics(train_metrics).items()})
            row.update({f"val_{k}": v for k, v in scalar_metrics(val_metrics).items()} if val_metrics else
                       {f"val_{k}": float("nan") for k in SCALAR_METRICS})
            row.update({"is_best": is_best, "elapsed_s": time.perf_counter() - train_start,
                        "energy_kwh": energy_reading.energy_kwh if energy_reading else float("nan")})
            self.history.append(row)
            self.write_metrics_csv()
            self.emit(ev.EpochEnd(epoch=epoch, train_loss=train_loss, val_loss=val_loss,
                                  train_metrics=scalar_metrics(train_metrics),
                                  val_metrics=scalar_metrics(val_metrics) if val_metrics else {},
                                  is_best=is_best))

            state = state_dict_tensors(model)
            epoch_meta = dict(meta_base, epoch=epoch, train_loss=train_loss, val_loss=val_loss,
                              val_metrics=val_metrics, train_metrics=scalar_metrics(train_metrics),
                              energy_kwh=energy_reading.energy_kwh if energy_reading else None)
            if is_best:
                self.best_score, self.best_epoch, self.best_state = score, epoch, state
                self.best_val_metrics = val_metrics
                path = save_checkpoint(self.run_dir, "best", state, epoch_meta)
                self.emit(ev.CheckpointSaved(path=path, epoch=epoch, kind="best"))
            path = save_checkpoint(self.run_dir, "last", state, epoch_meta)
            self.emit(ev.CheckpointSaved(path=path, epoch=epoch, kind="last"))
            self.write_run_json("running", epochs_done=epoch, best_epoch=self.best_epoch)
            self.check_stop()

        # test ------------------------------------------------------------------------------
        test_metrics: dict = {}
        if self.best_state is not None and test_s and "test" in datasets:
            model.load_state_dict({k: v.to(device) for k, v in self.best_state.items()})
            test_loss, test_metrics, per_person = self.evaluate(model, datasets["test"], test_s, classes,
                                                                device, amp_dtype)
            test_metrics["loss"] = test_loss
            atomic_write_text(self.run_dir / "predictions.csv", per_person.to_csv(index=False))
        self.energy_report = self.meter.stop()
        energy = self.energy_report.to_dict()
        duration = time.perf_counter() - self.t_start
        if self.best_state is not None:
            update_checkpoint_metadata(self.run_dir, "best", test_metrics=test_metrics, energy=energy,
                                       training_duration_s=duration)
        status = "stopped" if self.stopped_early else "finished"
        self.write_run_json(status, epochs_done=len(self.history), best_epoch=self.best_epoch,
                            best_val_metrics=self.best_val_metrics, test_metrics=test_metrics, energy=energy,
                            stopped_early=self.stopped_early, finished=utc_now())
        self.emit(ev.RunFinished(run_dir=self.run_dir, stopped_early=self.stopped_early, test_metrics=test_metrics,
                                 energy_kwh=self.energy_report.energy_kwh or 0.0, duration_s=duration))
        return RunResult(run_dir=self.run_dir, test_metrics=test_metrics, energy_kwh=self.energy_report.energy_kwh,
                         duration_s=duration, stopped_early=self.stopped_early, best_epoch=self.best_epoch,
                         energy=energy)

    # pieces --------------------------------------------------------------------------------
    def _data_progress(self, stage: str, stoppable: bool = True):
        """A progress(done, total) callback that emits DataProgress (and, when `stoppable`,
        interrupts preprocessing as soon as the stop flag is set)."""
        def progress(done: int, total: int) -> None:
            self.emit(ev.DataProgress(stage=stage, done=done, total=total))
            if stoppable and self.stop.is_set():
                raise _StopRequested()
        return progress

    def _energy_event(self, epoch: int):
        reading = self.meter.update() if self.meter is not None else None
        if reading is not None:
            self.emit(ev.EnergyUpdate(epoch=epoch, elapsed_s=reading.elapsed_s, energy_kwh=reading.energy_kwh,
                                      power_w=reading.power_w, estimated=reading.estimated))
        return reading

    @staticmethod
    def _batch(dataset, indices, device):
        from smmt_core.data.dataset import collate

        inputs, labels = collate([dataset[i] for i in indices])
        return inputs.to(device), labels.to(device)

    @staticmethod
    def _metrics(ids, labels, probs, classes) -> dict:
        person_ids, person_labels, person_probs = soft_vote(ids, labels, probs)
        return compute_metrics(person_labels, person_probs, classes)

    def evaluate(self, model, dataset, subjects, classes, device, amp_dtype, batch_size: int | None = None):
        """(mean loss per scan, per-person metrics, per-person prediction table) in eval mode."""
        batch_size = batch_size or max(1, 2 * self.config.batch_size)
        model.eval()
        losses, probs, labels = [], [], []
        with torch.no_grad():
            for start in range(0, len(subjects), batch_size):
                idx = list(range(start, min(start + batch_size, len(subjects))))
                inputs, y = self._batch(dataset, idx, device)
                with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                    logits = model(inputs).float()
                losses.append(F.cross_entropy(logits, y, reduction="sum").item())
                probs.append(torch.softmax(logits, dim=1).cpu().numpy())
                labels.extend(y.tolist())
        model.train()
        prob = np.concatenate(probs) if probs else np.zeros((0, len(classes)))
        ids = [s.subject_id for s in subjects]
        person_ids, person_labels, person_probs = soft_vote(ids, labels, prob)
        metrics = compute_metrics(person_labels, person_probs, classes)
        table = pd.DataFrame({"subject_id": person_ids, "label": [classes[i] for i in person_labels],
                              "prediction": [classes[i] for i in person_probs.argmax(axis=1)] if len(person_probs) else []})
        for j, c in enumerate(classes):
            table[f"p_{c}"] = person_probs[:, j] if len(person_probs) else []
        table["n_scans"] = [sum(1 for s in subjects if s.subject_id == pid and s.label == classes[lab])
                            for pid, lab in zip(person_ids, person_labels)]
        return sum(losses) / max(len(subjects), 1), metrics, table

    def fail(self, error: BaseException) -> None:
        if isinstance(error, SMMTError):
            message = str(error)
        elif isinstance(error, KeyboardInterrupt):
            message = "interrupted"
        else:
            message = f"internal error: {type(error).__name__}: {error}"
        message = " ".join(message.split())  # one line
        if self.meter is not None:
            try:
                self.energy_report = self.meter.stop()
            except Exception:
                pass
        if self.run_dir is not None:
            try:
                self.write_run_json("failed", error=message, epochs_done=len(self.history), best_epoch=self.best_epoch,
                                    energy=self.energy_report.to_dict() if self.energy_report else None)
            except Exception:  # the folder may be unwritable: the event still goes out
                log.exception("could not record the failure in run.json")
        try:
            self.emit(ev.RunFailed(message=message, run_dir=self.run_dir))
        except Exception:
            log.exception("on_event raised while reporting a failure")


def _finite(value: float) -> float:
    return value if value is not None and math.isfinite(value) else -1.0


def train(config: TrainConfig, on_event: EventCallback | None = None, stop: threading.Event | None = None) -> RunResult:
    """Train one model as `config` says; see the module docstring for the steps and files.

    on_event: called from the calling thread with each event of `smmt_core.train.events`.
    stop:     set it (from any thread) to end the run cleanly between batches.
    Raises SMMTError (ConfigError, DataError, CheckpointError) for bad input and TrainingError
    when training itself fails (diverged loss), after emitting RunFailed; other exceptions (bugs)
    are re-raised unchanged after RunFailed too.
    """
    run = _Run(config, on_event, stop)
    try:
        return run.execute()
    except BaseException as error:
        run.fail(error)
        raise
