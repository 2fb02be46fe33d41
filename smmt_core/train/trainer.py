"""The training loop: one call, `train(config, on_event, stop)`, used by the GUI, the CLI and experiments.

What one run does, in order:
`prepare` (steps 1-4), `run_epoch` (step 5, once per epoch) and `finish` (step 6):
1. Load the cohort (`config.data.dataset`, or the demo cohort for "demo"); keep the subjects
   whose label is in the chosen label set (AD vs CN, or CN vs MCI vs AD).
2. Split by person (stratified, seeded; k-fold when `n_folds` is set); the data fraction shrinks
   the training and validation persons together, the test persons never change.
3. Fit the clinical feature encoder on the training subjects only (before anything is written,
   so an unknown feature name leaves no folder behind). Create the run folder through its
   `RunRecord`: config.json, split.csv, run.json (status "running"); emit RunStarted. The run
   folder is locked while this process writes it (`smmt_core.folder_lock`): a second
   `--resume` of it is refused, naming this process. A resumed run continues from its `last`
   checkpoint; one stopped before its first checkpoint was written starts again from scratch.
4. Preprocess every scan once (disk cache), emitting DataProgress; set the MRI encoder's
   per-pixel input statistics from the training scans (when the config asks for it).
5. Train with Adam and cross-entropy (AMP on CUDA). After each epoch: per-subject train and
   validation metrics (EpochEnd), energy so far (EnergyUpdate), `last` checkpoint and, when the
   validation result improved, `best` checkpoint (CheckpointSaved); metrics.csv is rewritten.
6. Evaluate the best checkpoint on the test persons, write predictions.csv, add the test metrics
   (with bootstrap confidence intervals) and energy to best.json and run.json, emit RunFinished
   and return a RunResult.

Time and energy cover the same span: `duration_s` and the energy meter both start when the
first epoch starts and stop after the test evaluation; loading and preprocessing the data is
reported separately as `preparation_s`.

Training metrics come from the training passes themselves (with dropout and masking on), the
usual convention; validation and test metrics from evaluation passes (no dropout, no masking).

Per-subject figures: one sample is one scan (all its MRI slices are tokens of that sample), and
when a person has several scans in a split their probabilities are averaged (soft voting, see
`metrics.soft_vote`) before any metric is computed. Every reported number is per person.

Stopping: the `stop` event is checked before every batch (and between scans while preprocessing).
When it is set the run ends cleanly: StopSeen says how many batches were done (no further batch
starts), checkpoints already written stay, the best one (if any epoch finished) is evaluated on the
test set, and RunFinished(stopped_early=True) is emitted.

Errors: any exception emits RunFailed (one line for the user) and run.json records status
"failed"; then the exception is re-raised unchanged — an `SMMTError` for bad input (the CLI prints
it as one line, exit 2), a `TrainingError` (also an SMMTError) when the run itself went wrong
although the input was fine, e.g. a diverged loss (exit 1), anything else is a bug and keeps its
traceback.

Reproducibility: the seed drives the model initialisation, the batch order and masking; on the
CPU the same config and seed give identical metrics. `split_seed` (default: `seed`) drives the
person-level split.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from smmt_core.batch import MODALITY_INDEX
from smmt_core.data.dataset import SubjectDataset, collate
from smmt_core.data.feature_sets import circularity_warning, resolve_features
from smmt_core.data.features import FeatureEncoder
from smmt_core.data.loaders import load_cohort
from smmt_core.data.preprocess import MRICache
from smmt_core.data.splits import split_for_config
from smmt_core.data.subject import Modality
from smmt_core.device import select_device
from smmt_core.errors import CheckpointError, ConfigError, DataError, SMMTError, TrainingError
from smmt_core.folder_lock import lock_folder
from smmt_core.model.smmt import build_model
from smmt_core.train import events as ev
from smmt_core.train.averaging import WeightAverage
from smmt_core.train.calibration import MIN_PERSONS_TO_CALIBRATE, TEMPERATURE_BOUNDS, calibration_metrics, fit_temperature
from smmt_core.train.checkpoints import (
    load_run,
    load_training_state,
    read_checkpoint_metadata,
    save_checkpoint,
    save_training_state,
    software_versions,
    state_dict_tensors,
    update_checkpoint_metadata,
)
from smmt_core.train.config import TrainConfig
from smmt_core.train.energy import EnergyMeter, EnergyReport, check_country
from smmt_core.train.ensemble import train_ensemble
from smmt_core.train.events import RunResult
from smmt_core.train.linear_fit import fit_linear_path
from smmt_core.train.memory import check_training_memory
from smmt_core.train.metrics import SCALAR_METRICS, bootstrap_person_ci, compute_metrics, scalar_metrics, soft_vote
from smmt_core.train.robustness import modality_subsets, subset_name
from smmt_core.train.run_folder import (
    BEST_METADATA,
    BEST_WEIGHTS,
    LAST_METADATA,
    LAST_WEIGHTS,
    METRICS_FILE,
    SPLIT_FILE,
    TRAINING_STATE_FILE,
    CheckpointMeta,
    RunSummary,
)
from smmt_core.train.run_record import RunRecord, SilentRecord, default_run_name, process_stamp, utc_now, writer_is_gone

log = logging.getLogger(__name__)

EventCallback = Callable[[object], None]

# Seconds between energy readings inside an epoch (each reading also updates emissions.csv).
ENERGY_UPDATE_EVERY_S = 10.0


class _StopRequested(Exception):
    """Raised internally when the stop flag is set during preprocessing."""


# -- helpers -------------------------------------------------------------------------------
def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


# -- the run ---------------------------------------------------------------------------------
@dataclass
class _Prepared:
    """What `prepare` hands to the epochs and the test: data, model, optimiser, bookkeeping."""

    train_s: list
    val_s: list
    test_s: list
    datasets: dict
    classes: list[str]
    device: torch.device
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    amp_dtype: torch.dtype | None
    scaler: object | None
    meta_base: CheckpointMeta  # what every checkpoint of the run records
    batches_per_epoch: int
    train_model: torch.nn.Module | None = None  # the DDP wrapper of `model` in a distributed run


@dataclass
class _Subjects:
    """The loaded cohort and its subjects of the configured label set (step 1)."""

    cohort: object  # smmt_core.data.subject.Cohort
    subjects: list
    counts: dict[str, int]  # subjects per class
    excluded: int  # subjects of other labels


class _Run:
    """State of one training run; `train()` is the public entry point."""

    def __init__(self, config: TrainConfig, on_event: EventCallback | None, stop: threading.Event | None,
                 resume: str | Path | None = None, dist=None):
        self.config = config
        self.resume = Path(resume) if resume is not None else None
        self.start_epoch = 0  # epochs already done by the run being resumed
        self.from_scratch = False  # resuming a run that stopped before its first checkpoint: train it again
        self.dist = dist  # smmt_core.train.distributed.DistContext, or None for one process
        self.on_event = on_event
        self.stop = stop or threading.Event()
        self.record: RunRecord | None = None
        self.folder_lock = None  # held while this process writes the run folder (smmt_core.folder_lock)
        self.t_start = time.perf_counter()
        self.t_train: float | None = None  # when the first epoch started (duration_s counts from here)
        self.created = utc_now()
        self.history: list[dict] = []
        self.best_epoch: int | None = None
        self.best_score: tuple | None = None
        self.best_state: dict | None = None
        self.best_val_metrics: dict = {}
        self.stopped_early = False
        self.meter: EnergyMeter | None = None
        self.energy_report: EnergyReport | None = None
        self.summary = RunSummary()  # run.json, rewritten whenever the run's state changes
        self.done_batches = 0
        self.last_energy_t = time.perf_counter()
        # Per training scan, added to its logits in training only: out-of-fold minus in-sample
        # logit of the linear path (`smmt_core.train.linear_fit`); None without a linear path.
        self.linear_offsets: torch.Tensor | None = None
        self.average = None  # a WeightAverage when optim.weight_average_decay > 0

    @property
    def run_dir(self) -> Path | None:
        return self.record.run_dir if self.record is not None else None

    # events ------------------------------------------------------------------------------
    def emit(self, event) -> None:
        if self.on_event is not None:
            self.on_event(event)

    def check_stop(self) -> bool:
        if self.stop.is_set():
            self.note_stop()
        if self.dist is not None:  # all ranks stop together, or one would wait on the others forever
            if self.dist.sum([float(self.stopped_early)], self.device)[0] > 0:
                self.note_stop()
        return self.stopped_early

    def note_stop(self) -> None:
        """The run ends here: say so once (StopSeen), with how many batches it finished."""
        if not self.stopped_early:
            self.stopped_early = True
            self.emit(ev.StopSeen(batches_done=self.done_batches))

    @property
    def is_main(self) -> bool:
        """Whether this process writes the run folder (always, unless a non-zero DDP rank)."""
        return self.dist is None or self.dist.is_main

    # files -------------------------------------------------------------------------------
    def write_run_json(self, status: str, **extra) -> None:
        now = time.perf_counter()
        self.summary.update(extra)
        self.summary.status = status
        self.summary.updated = utc_now()
        # training (and test) time: the span the energy meter covers
        self.summary.duration_s = now - self.t_train if self.t_train is not None else 0.0
        self.summary.preparation_s = (self.t_train if self.t_train is not None else now) - self.t_start
        self.record.write_summary(self.summary)

    # main ----------------------------------------------------------------------------------
    def execute(self) -> RunResult:
        if self.config.run.measure_energy:
            check_country(self.config.run.energy_country)
        prepared = self.prepare()
        if self.dist is not None:
            self.check_stop()  # a stop during rank 0's preprocessing must reach every rank
        self.t_train = time.perf_counter()
        self.meter = EnergyMeter(self.run_dir if self.is_main else self._private_dir(),
                                 country=self.config.run.energy_country, enabled=self.config.run.measure_energy)
        if self.stopped_early:
            self.meter.note = "the run was stopped before training began"
        else:
            self.meter.start()
        self.summary.energy_measured = self.meter.measured  # False when codecarbon only estimates
        self.last_energy_t = time.perf_counter()
        generator = torch.Generator().manual_seed(self.config.optim.seed)
        if self.resume is not None and not self.from_scratch:
            epoch = self._restore(prepared, generator)
        else:
            epoch = 0
            if prepared.model.linear_path is not None and not self.stopped_early and self.is_main:
                self._record_starting_point(prepared, generator)
        while not self.stopped_early and epoch < self.config.optim.epochs:
            epoch += 1
            if not self.run_epoch(prepared, epoch, generator):
                break
        return self.finish(prepared)

    def prepare(self) -> _Prepared:
        """Steps 1-4: cohort, split, feature encoder, run folder, preprocessed data, model."""
        cfg = self.config
        features = resolve_features(cfg.data.features)
        device = self.device = select_device(cfg.run.device) if self.dist is None else self.dist.device(cfg.run.device)
        if self.dist is not None:
            self.dist.init(device)
        chosen = self._load_subjects()
        check_training_memory(cfg, len(chosen.subjects), device=device)  # before anything is preprocessed or allocated
        split, (train_s, val_s, test_s) = self._split(chosen.cohort)
        # The clinical feature encoder is fitted on the training subjects only. Fitting it here,
        # before the run folder exists, means an unknown or non-numeric feature column fails the
        # run without leaving a "failed" folder behind.
        encoder = FeatureEncoder(features).fit(train_s)
        self._open_run_folder(split.to_frame(chosen.cohort.subjects))
        self._start_summary(chosen, split, features, (train_s, val_s, test_s))

        batches_per_epoch = math.ceil(len(train_s) / cfg.optim.batch_size)
        self.emit(ev.RunStarted(run_dir=self.run_dir, total_epochs=cfg.optim.epochs,
                                batches_per_epoch=batches_per_epoch, n_train=len(train_s), n_val=len(val_s),
                                n_test=len(test_s), device=str(device), config=cfg.to_dict(),
                                problems=list(chosen.cohort.problems)))

        datasets = self._preprocess(encoder, (train_s, val_s, test_s))
        mri_shape = cfg.preprocess.mri_shape if any(s.t1_path is not None for s in chosen.subjects) else None
        schema = encoder.schema(cfg.data.classes, mri_shape, cfg.preprocess.volume_spec)
        model = self._build_model(schema, datasets, train_s, device)
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
        train_model = None
        if self.dist is not None:
            train_model = self.dist.wrap(model, device)
            torch.manual_seed(cfg.optim.seed + 7919 * self.dist.rank)  # own dropout/masking draws per rank
        amp_dtype, scaler = self._mixed_precision(device)
        self.summary.amp = str(amp_dtype).replace("torch.", "") if amp_dtype else None
        self.summary.n_parameters = int(sum(p.numel() for p in model.parameters()))
        meta_base = CheckpointMeta(
            run_name=self.run_dir.name, config=cfg.to_dict(), schema=schema.to_dict(), encoder=encoder.to_dict(),
            preprocess=cfg.preprocess.to_dict(), classes=cfg.data.classes, features=features, seed=cfg.optim.seed,
            split_seed=split.seed, synthetic=bool(chosen.cohort.synthetic), versions=self.summary.versions)
        return _Prepared(train_s, val_s, test_s, datasets, cfg.data.classes, device, model, optimizer, amp_dtype,
                         scaler, meta_base, batches_per_epoch, train_model)

    def _load_subjects(self) -> _Subjects:
        """Step 1: the cohort, and its subjects whose label is in the configured label set."""
        cfg, classes = self.config, self.config.data.classes
        with self._main_first():
            cohort = load_cohort(cfg.data.dataset, adnimerge=cfg.data.adnimerge,
                                 date_window_days=cfg.data.date_window_days, progress=self._demo_build_progress())
        subjects = [s for s in cohort.subjects if s.label in classes]
        counts = {c: sum(s.label == c for s in subjects) for c in classes}
        missing_classes = [c for c, n in counts.items() if n == 0]
        if missing_classes:
            raise DataError(
                f"no subjects labelled {', '.join(missing_classes)} for label set {cfg.data.label_set} "
                f"(found {', '.join(f'{c}: {n}' for c, n in counts.items())})", cohort.root)
        return _Subjects(cohort, subjects, counts, excluded=len(cohort.subjects) - len(subjects))

    def _split(self, cohort):
        """Step 2: the person-level split and the (train, val, test) scans; DataError when training
        would have no scans or a single class."""
        split = split_for_config(cohort.subjects, self.config.data, self.config.optim.seed)
        parts = tuple(split.select(cohort.subjects, part) for part in ("train", "val", "test"))
        if not parts[0]:
            raise DataError("no training subjects left after the split; use more data or a larger fraction", cohort.root)
        train_labels = {s.label for s in parts[0]}
        if len(train_labels) < 2:
            raise DataError(f"the training subjects hold only {', '.join(sorted(train_labels))}; "
                            "need at least two classes (use more data or a larger fraction)", cohort.root)
        return split, parts

    def _open_run_folder(self, split_frame: pd.DataFrame) -> None:
        """Step 3: the run folder, locked while this process writes it: a new one with config.json
        and split.csv, or the one being resumed (checked before it is ours, so that a refused
        resume leaves it as it was)."""
        cfg = self.config
        if self.resume is not None:
            self.folder_lock = lock_folder(self.resume, "run folder")
            self._check_resumable(RunRecord(self.resume), split_frame)
            self.record = RunRecord(self.resume)
            if self.from_scratch:
                self._clear_unfinished_checkpoints(split_frame)
                log.warning("%s stopped before its first checkpoint: training it again from the start, with its "
                            "own settings", self.run_dir)
            return
        name = cfg.run.run_name or default_run_name(cfg.model.variant, cfg.data.fraction, cfg.optim.seed)
        if self.is_main:
            self.record = RunRecord.create(cfg.run.out or "runs", name)
            self.folder_lock = lock_folder(self.record.run_dir, "run folder")
        if self.dist is not None:  # only rank 0 writes; the others know where
            run_dir = self.dist.broadcast(str(self.record.run_dir) if self.is_main else None)
            self.record = self.record if self.is_main else SilentRecord(run_dir)
        self.record.write_config(cfg)
        self.record.write_split(split_frame)

    def _start_summary(self, chosen: _Subjects, split, features: list[str], parts: tuple) -> None:
        """Step 3, end: run.json with status "running". A resumed run keeps its name, creation time
        and results so far, and notes the resumption."""
        cfg, cohort = self.config, chosen.cohort
        train_s, val_s, test_s = parts
        summary = RunSummary(
            run_name=self.run_dir.name,
            created=self.created,
            config=cfg.to_dict(),
            data={"path": str(cohort.root), "layout": cohort.layout, "name": cohort.name,
                  "n_scans": len(cohort.subjects), "n_excluded_other_labels": chosen.excluded,
                  "class_counts": chosen.counts, "n_problems": len(cohort.problems),
                  "problems": list(cohort.problems[:100])},
            synthetic=bool(cohort.synthetic),
            classes=cfg.data.classes,
            features=features,
            circularity_warning=circularity_warning(features),
            seed=cfg.optim.seed,
            split_seed=split.seed,
            split={"train": len(train_s), "val": len(val_s), "test": len(test_s),
                   "train_persons": len(split.train), "val_persons": len(split.val),
                   "test_persons": len(split.test), "unused_persons": len(split.unused),
                   "fold": split.fold, "n_folds": split.n_folds, "notes": list(split.notes)},
            device=str(self.device),
            versions=software_versions(),
            process=process_stamp(),
        )
        if self.resume is not None:
            previous = self.record.run_summary()
            kept = {"run_name": previous.get("run_name", self.run_dir.name), "created": previous.get("created", self.created),
                    "resumed": [*previous.get("resumed", []), self._resumption_note()]}
            previous.discard("error")
            previous.update(summary.to_dict(), **kept)
            summary = previous
        self.summary = summary
        self.write_run_json("running")

    def _preprocess(self, encoder, parts: tuple) -> dict:
        """Step 4: every scan of each part preprocessed once (disk cache), with DataProgress; a stop
        ends it early (the parts done so far are kept)."""
        cfg = self.config
        cache = MRICache()
        datasets = {}
        try:
            with self._main_first():
                for part, part_subjects in zip(("train", "val", "test"), parts):
                    datasets[part] = SubjectDataset(part_subjects, encoder, cfg.data.classes, cfg.preprocess, cache,
                                                    on_progress=self._data_progress(f"preprocessing {part}"))
        except _StopRequested:
            self.note_stop()
        mri_warnings = [w for d in datasets.values() for w in d.warnings]
        self.summary.feature_warnings = list(encoder.warnings)
        self.summary.mri_warnings = {"count": len(mri_warnings), "first": mri_warnings[:50]}
        for warning in [*encoder.warnings, *mri_warnings[:5]]:
            log.warning("%s", warning)
        return datasets

    def _build_model(self, schema, datasets: dict, train_s: list, device: torch.device) -> torch.nn.Module:
        """The seeded model on `device`, with what is fitted on the training scans before the first
        step: the MRI encoder's input statistics, the linear path, the weight average."""
        cfg = self.config
        seed_everything(cfg.optim.seed)
        model = build_model(cfg.model, schema).to(device)
        mri_encoder = model.encoders["mri"] if "mri" in model.encoders else None
        if mri_encoder is not None and mri_encoder.input_norm and "train" in datasets:
            # per-pixel (per-voxel) mean and SD of the training scans that have an MRI (stored with the weights)
            with_mri = datasets["train"].present[:, MODALITY_INDEX[Modality.MRI]]
            mri_encoder.set_input_statistics(datasets["train"].mri[with_mri])
        if model.linear_path is not None and "train" in datasets:
            # Refitted on a resume too (same data and seed, same fit): the cross-fitted offsets are not stored.
            index = {c: i for i, c in enumerate(cfg.data.classes)}
            self.summary.linear_path, offsets = fit_linear_path(
                model, datasets["train"], [s.subject_id for s in train_s], [index[s.label] for s in train_s],
                seed=cfg.optim.seed)
            self.linear_offsets = torch.from_numpy(offsets).to(device)
        if cfg.optim.weight_average_decay > 0:  # after every buffer is set: the average copies them
            self.average = WeightAverage(model, cfg.optim.weight_average_decay)
        return model

    @staticmethod
    def _mixed_precision(device: torch.device) -> tuple[torch.dtype | None, object | None]:
        """(autocast dtype, gradient scaler) on CUDA: bfloat16 where supported, else float16 with a
        scaler; (None, None) elsewhere."""
        if device.type != "cuda":
            return None, None
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return amp_dtype, torch.amp.GradScaler("cuda") if amp_dtype is torch.float16 else None

    def run_epoch(self, p: _Prepared, epoch: int, generator: torch.Generator) -> bool:
        """Step 5 for one epoch: train, validate, checkpoint. False when a stop cut the epoch short."""
        cfg = self.config.optim
        net = p.train_model or p.model
        p.model.train()
        order = torch.randperm(len(p.train_s), generator=generator).tolist()
        total_batches = cfg.epochs * p.batches_per_epoch
        losses, probs, labels, ids = [], [], [], []
        for b in range(p.batches_per_epoch):
            if self.check_stop():
                return False
            idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            self._set_learning_rate(p, (epoch - 1) * p.batches_per_epoch + b)
            weight = None
            if self.dist is not None:  # this rank's share of the global batch (distributed.py)
                idx, weight = self.dist.shard(idx)
            inputs, y = self._batch(p.datasets["train"], idx, p.device)
            with torch.autocast(p.device.type, dtype=p.amp_dtype, enabled=p.amp_dtype is not None):
                logits = net(inputs)
                if self.linear_offsets is not None:
                    logits = logits.float() + self.linear_offsets[idx]
                loss = F.cross_entropy(logits.float(), y)
            if weight is not None:
                step_loss = F.cross_entropy(logits.float(), y, reduction="sum") * weight
                loss_sum, n = self.dist.sum([float(step_loss.detach()) / weight if weight else 0.0,
                                             float(len(idx) if weight else 0)], p.device)
                loss = torch.tensor(loss_sum / n) if n else loss.detach()  # the global batch's mean loss
            else:
                step_loss = loss
            if not torch.isfinite(loss):
                raise TrainingError(f"training diverged at epoch {epoch}, batch {b + 1} (loss is {loss.item()}); "
                                    "lower the learning rate")
            p.optimizer.zero_grad(set_to_none=True)
            if p.scaler is not None:
                p.scaler.scale(step_loss).backward()
                p.scaler.step(p.optimizer)
                p.scaler.update()
            else:
                step_loss.backward()
                p.optimizer.step()
            if self.average is not None:
                self.average.update(p.model)
            if weight == 0.0:  # a rank's stand-in scan: trained with weight 0, not counted
                idx, logits, y = [], logits[:0], y[:0]
            global_n = len(order[b * cfg.batch_size:(b + 1) * cfg.batch_size])
            losses.append((loss.item(), global_n if weight is not None else len(idx)))
            probs.append(torch.softmax(logits.detach().float(), dim=1).cpu().numpy())
            labels.extend(y.tolist())
            ids.extend(p.train_s[i].subject_id for i in idx)
            self.done_batches += 1
            elapsed = time.perf_counter() - self.t_train
            eta = elapsed / self.done_batches * (total_batches - self.done_batches)
            self.emit(ev.BatchProgress(epoch=epoch, batch=b + 1, batches_per_epoch=p.batches_per_epoch,
                                       loss=float(loss.item()), elapsed_s=elapsed, eta_s=eta))
            if time.perf_counter() - self.last_energy_t >= ENERGY_UPDATE_EVERY_S:
                self.last_energy_t = time.perf_counter()
                self._energy_event(epoch)

        train_loss = sum(loss * n for loss, n in losses) / sum(n for _, n in losses)
        if self.dist is not None:  # every rank's training scans, for rank 0's per-person metrics
            parts = self.dist.gather((ids, labels, np.concatenate(probs)))
            if not self.is_main:
                self._energy_event(epoch)
                self.check_stop()
                return True  # rank 0 validates, checkpoints and writes
            ids = [i for part in parts for i in part[0]]
            labels = [lab for part in parts for lab in part[1]]
            probs = [part[2] for part in parts]
        train_metrics = self._metrics(ids, labels, np.concatenate(probs), p.classes)
        self._record_epoch(p, epoch, train_loss, train_metrics, generator)
        self.check_stop()
        return True

    def _epochs_done(self) -> int:
        """Training epochs finished (the history's epoch 0, the starting point, is not one)."""
        return max((int(row["epoch"]) for row in self.history), default=0)

    def _set_learning_rate(self, p: _Prepared, step: int) -> None:
        """The learning rate of batch `step` (0-based over the run) under `optim.lr_schedule`.

        cosine: linear warm-up over the first epoch (the network starts from zero on top of the
        linear path, and Adam's first steps are its noisiest), then a cosine decay to zero at the end
        of the last epoch, so the last epochs average out the batch noise instead of jumping around.
        Computed from the step alone: a resumed run continues the same curve.
        """
        cfg = self.config.optim
        if cfg.lr_schedule == "constant":
            return
        total = max(1, cfg.epochs * p.batches_per_epoch)
        warm = max(1, p.batches_per_epoch)
        factor = min(1.0, (step + 1) / warm) * 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
        for group in p.optimizer.param_groups:
            group["lr"] = cfg.lr * factor

    def _record_starting_point(self, p: _Prepared, generator: torch.Generator) -> None:
        """Epoch 0: the model before any training step, i.e. its fitted linear path alone.

        Recorded like an epoch (validation metrics, checkpoints, a metrics.csv row), so the epoch the
        run keeps can be this one when training does not improve the validation criterion: the
        network can add to the linear model, never make the run worse than it on validation persons.
        Its training figures use the cross-fitted linear logits, as the training epochs do, so the
        training curve starts where training starts (in-sample, the linear path is near perfect).
        """
        logits = torch.from_numpy(self._logits(p.model, p.datasets["train"], p.device, p.amp_dtype))
        if self.linear_offsets is not None:
            logits = logits + self.linear_offsets.cpu().double()
        labels = [p.classes.index(s.label) for s in p.train_s]
        train_loss = float(F.cross_entropy(logits, torch.tensor(labels)))
        train_metrics = self._metrics([s.subject_id for s in p.train_s], labels,
                                      torch.softmax(logits, 1).numpy(), p.classes)
        self._record_epoch(p, 0, train_loss, train_metrics, generator)

    def _epoch_score(self, val_loss: float | None, val_metrics: dict, train_loss: float) -> tuple:
        """What epochs are compared by (higher is better): `optim.select_epoch_by` on the validation persons."""
        if val_loss is None:
            return (0.0, -train_loss)
        if self.config.optim.select_epoch_by == "val_loss":
            return (-val_loss,)
        return (_finite(val_metrics.get("balanced_accuracy")), -val_loss)

    def _record_epoch(self, p: _Prepared, epoch: int, train_loss: float, train_metrics: dict,
                      generator: torch.Generator) -> None:
        """Validate, checkpoint (best when the score improved, and last) and record one epoch.

        With weight averaging the averaged model is validated and becomes `best`; `last` keeps the
        raw weights the optimiser steps (and the average travels in the training state).
        """
        evaluated = self.average.model if self.average is not None else p.model
        if p.val_s:
            val_loss, val_metrics, _ = self.evaluate(evaluated, p.datasets["val"], p.val_s, p.classes, p.device,
                                                     p.amp_dtype)
        else:
            val_loss, val_metrics = None, {}
        score = self._epoch_score(val_loss, val_metrics, train_loss)
        is_best = self.best_score is None or score > self.best_score
        energy_reading = self._energy_event(epoch)
        self.last_energy_t = time.perf_counter()
        row = {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss}
        row.update({f"train_{k}": v for k, v in scalar_metrics(train_metrics).items()})
        row.update({f"val_{k}": v for k, v in scalar_metrics(val_metrics).items()} if val_metrics else
                   {f"val_{k}": float("nan") for k in SCALAR_METRICS})
        row.update({"is_best": is_best, "elapsed_s": time.perf_counter() - self.t_train,
                    "energy_kwh": energy_reading.energy_kwh if energy_reading else float("nan")})

        # Checkpoints first, records after: an epoch counts as best (in memory, metrics.csv and
        # run.json) only once its checkpoint is on disk, so a full disk cannot leave run.json
        # pointing at an epoch that best.safetensors does not hold.
        state = state_dict_tensors(p.model)
        kept = state_dict_tensors(evaluated) if evaluated is not p.model else state
        epoch_meta = p.meta_base.copy()
        epoch_meta.update(epoch=epoch, train_loss=train_loss, val_loss=val_loss, val_metrics=val_metrics,
                          train_metrics=scalar_metrics(train_metrics),
                          energy_kwh=energy_reading.energy_kwh if energy_reading else None)
        saved = []
        if is_best:
            saved.append(("best", save_checkpoint(self.run_dir, "best", kept, epoch_meta)))
            self.best_score, self.best_epoch, self.best_state = score, epoch, kept
            self.best_val_metrics = val_metrics
        averaged = self.average.state() if self.average is not None else None
        training_state = save_training_state(self.run_dir, p.optimizer, generator, averaged)
        last_meta = epoch_meta.copy()
        last_meta.update(training_state)
        saved.append(("last", save_checkpoint(self.run_dir, "last", state, last_meta)))
        self.history.append(row)
        self.record.write_metrics(self.history)
        self.emit(ev.EpochEnd(epoch=epoch, train_loss=train_loss, val_loss=val_loss,
                              train_metrics=scalar_metrics(train_metrics),
                              val_metrics=scalar_metrics(val_metrics) if val_metrics else {},
                              is_best=is_best))
        for kind, path in saved:
            self.emit(ev.CheckpointSaved(path=path, epoch=epoch, kind=kind))
        self.write_run_json("running", epochs_done=epoch, best_epoch=self.best_epoch)

    # resuming -------------------------------------------------------------------------------
    def _check_resumable(self, record: RunRecord, split_frame: pd.DataFrame) -> None:
        """CheckpointError unless the run folder can be continued with these data and settings."""
        summary = record.summary()  # a readable run.json
        process = summary.get("process") or {}
        if summary["status"] == "running" and not writer_is_gone(process):
            raise ConfigError(f"the run is still training (process {process.get('pid', '?')} on "
                              f"{process.get('host', '?')}); stop it first", record.run_dir)
        if not self._recorded_an_epoch(record):
            # Stopped, killed or failed before its first checkpoint (while preparing the data, or in
            # its first epoch): nothing was trained that could be lost, so it starts again, here.
            self.from_scratch = True
            self.start_epoch = 0
            if not (record.run_dir / SPLIT_FILE).is_file():
                return  # written again by `_clear_unfinished_checkpoints`
        elif not (record.run_dir / LAST_METADATA).exists():
            raise CheckpointError("the run's last checkpoint is missing, though metrics.csv records epochs it "
                                  "trained; it cannot be resumed: train it again as a new run",
                                  record.run_dir / LAST_METADATA)
        else:
            meta = read_checkpoint_metadata(record.run_dir, "last")
            self.start_epoch = int(meta.get("epoch") or 0)
        if self.start_epoch >= self.config.optim.epochs:
            raise ConfigError(f"the run has already trained {self.start_epoch} of {self.config.optim.epochs} epochs; "
                              f"give --epochs larger than {self.start_epoch} to train on", record.run_dir)
        stored = record.split()
        columns = ["subject_id", "part"]
        if not stored[columns].astype(str).reset_index(drop=True).equals(
                split_frame[columns].astype(str).reset_index(drop=True)):
            raise DataError("the dataset no longer gives the split this run was trained on (subjects added, "
                            "removed or relabelled); it cannot be resumed", record.run_dir / SPLIT_FILE)

    @staticmethod
    def _recorded_an_epoch(record: RunRecord) -> bool:
        """Whether the run recorded an epoch: its `last` checkpoint's JSON (the last of an epoch's
        checkpoint files) or metrics.csv (written after it). A run with neither stopped before its
        first epoch was recorded (epoch 0, the linear path alone, when the model has one)."""
        return (record.run_dir / LAST_METADATA).exists() or (record.run_dir / METRICS_FILE).exists()

    def _clear_unfinished_checkpoints(self, split_frame: pd.DataFrame) -> None:
        """Before a run starts again from scratch: remove what an interrupted first save may have
        left (weights without their JSON), so the folder never offers a checkpoint its records do
        not know; write split.csv when the first attempt ended before it."""
        for name in (BEST_METADATA, BEST_WEIGHTS, LAST_WEIGHTS, TRAINING_STATE_FILE):
            (self.run_dir / name).unlink(missing_ok=True)
        if not (self.run_dir / SPLIT_FILE).is_file():
            self.record.write_split(split_frame)

    def _resumption_note(self) -> dict:
        """The entry run.json's `resumed` list gets for this resumption."""
        note = {"at": utc_now(), "from_epoch": self.start_epoch}
        if self.from_scratch:
            note.update(from_scratch=True, reason="the run had stopped before its first checkpoint; "
                                                  "it was trained again from the start with its own settings")
        return note

    def _restore(self, p: _Prepared, generator: torch.Generator) -> int:
        """Weights, optimiser, RNG, history and best checkpoint of the run being resumed; its epoch."""
        # checks both checksums, the schema and every tensor; settled: this process holds the folder
        last = load_run(self.run_dir, "last", settled=True)
        p.model.load_state_dict({k: v.to(p.device) for k, v in last.model.state_dict().items()})
        averaged = load_training_state(self.run_dir, last.metadata, p.optimizer, generator)
        if self.average is not None:
            if averaged:
                self.average.load_state(averaged)
            else:  # a run saved without an average: it starts again from the restored weights
                self.average.load_state({f"model.{k}": v for k, v in p.model.state_dict().items()})
        best = load_run(self.run_dir, "best", settled=True)
        self.best_epoch = int(best.metadata["epoch"])
        self.best_state = best.model.state_dict()
        self.best_val_metrics = best.metadata.get("val_metrics") or {}
        self.best_score = self._score(best.metadata, bool(p.val_s))
        # metrics.csv is written after the checkpoints: a kill in between leaves it one epoch short
        # (or absent); that epoch's row is rebuilt from last.json, which holds the same figures.
        rows = self.record.metrics().to_dict("records") if (self.run_dir / METRICS_FILE).is_file() else []
        self.history = [row for row in rows if int(row["epoch"]) <= self.start_epoch]
        if not any(int(row["epoch"]) == self.start_epoch for row in self.history):
            self.history.append(self._row_from_checkpoint(last.metadata))
        self.done_batches = self.start_epoch * p.batches_per_epoch
        return self.start_epoch

    def _score(self, meta: dict, has_val: bool) -> tuple:
        """The score `_record_epoch` compares epochs by, from a checkpoint's metadata."""
        val_loss = float(meta.get("val_loss") or 0.0) if has_val else None
        return self._epoch_score(val_loss, meta.get("val_metrics") or {}, float(meta.get("train_loss") or 0.0))

    def _row_from_checkpoint(self, meta: dict) -> dict:
        """A metrics.csv row rebuilt from a checkpoint's metadata (elapsed time unknown)."""
        val = scalar_metrics(meta.get("val_metrics") or {}) if meta.get("val_metrics") else {}
        row = {"epoch": int(meta["epoch"]), "train_loss": meta.get("train_loss"), "val_loss": meta.get("val_loss")}
        row.update({f"train_{k}": v for k, v in (meta.get("train_metrics") or {}).items()})
        row.update({f"val_{k}": val.get(k, float("nan")) for k in SCALAR_METRICS})
        energy = meta.get("energy_kwh")
        row.update({"is_best": int(meta["epoch"]) == self.best_epoch, "elapsed_s": float("nan"),
                    "energy_kwh": energy if energy is not None else float("nan")})
        return row

    def finish(self, p: _Prepared) -> RunResult:
        """Step 6: the best checkpoint on the test persons, energy, the final run.json."""
        test_metrics: dict = {}
        subset_metrics: dict = {}
        if self.best_state is not None and self.is_main and hasattr(p.model, "logit_temperature"):
            self._calibrate(p)
        if self.best_state is not None and p.test_s and "test" in p.datasets:
            p.model.load_state_dict({k: v.to(p.device) for k, v in self.best_state.items()})
            test_loss, test_metrics, per_person = self.evaluate(p.model, p.datasets["test"], p.test_s, p.classes,
                                                                p.device, p.amp_dtype)
            test_metrics["loss"] = test_loss
            test_metrics["ci95"] = bootstrap_person_ci(per_person, p.classes, seed=self.config.optim.seed)
            self.record.write_predictions(per_person)
            subset_metrics = self._subset_metrics(p)
            if p.model.linear_path is not None and self.is_main:
                self._score_linear_path_alone(p)
        self.energy_report = self.meter.stop()
        if self.dist is not None:
            self.energy_report = self.dist.sum_energy(self.energy_report, p.device)
        energy = self.energy_report.to_dict()
        duration = time.perf_counter() - self.t_train
        if self.best_state is not None and self.is_main:
            update_checkpoint_metadata(self.run_dir, "best", test_metrics=test_metrics, energy=energy,
                                       training_duration_s=duration, subset_metrics=subset_metrics)
        status = "stopped" if self.stopped_early else "finished"
        self.write_run_json(status, epochs_done=self._epochs_done(), best_epoch=self.best_epoch,
                            best_val_metrics=self.best_val_metrics, test_metrics=test_metrics,
                            subset_metrics=subset_metrics, energy=energy, stopped_early=self.stopped_early,
                            finished=utc_now())
        self.emit(ev.RunFinished(run_dir=self.run_dir, stopped_early=self.stopped_early, test_metrics=test_metrics,
                                 energy_kwh=self.energy_report.energy_kwh or 0.0, duration_s=duration))
        return RunResult(run_dir=self.run_dir, test_metrics=test_metrics, energy_kwh=self.energy_report.energy_kwh,
                         duration_s=duration, stopped_early=self.stopped_early, best_epoch=self.best_epoch,
                         energy=energy)

    def _calibrate(self, p: _Prepared) -> None:
        """Fit the best checkpoint's temperature on the validation persons and store it in its weights.

        Runs once, after the epochs and before the test: the test persons never influence it.
        With fewer than MIN_PERSONS_TO_CALIBRATE validation persons (or one class only) the
        temperature stays 1 and run.json says why.
        """
        state = {k: v.clone() for k, v in self.best_state.items()}
        state["logit_temperature"] = torch.ones(())
        p.model.load_state_dict({k: v.to(p.device) for k, v in state.items()})
        labels = [p.classes.index(s.label) for s in p.val_s]
        record = {"method": "temperature", "fitted_on": "validation persons", "temperature": 1.0,
                  "n_val_persons": len({s.subject_id for s in p.val_s})}
        if record["n_val_persons"] < MIN_PERSONS_TO_CALIBRATE or len(set(labels)) < 2:
            record["note"] = (f"not calibrated: {record['n_val_persons']} validation persons of "
                              f"{len(set(labels))} class(es); needs {MIN_PERSONS_TO_CALIBRATE} of two classes")
        else:
            logits = self._logits(p.model, p.datasets["val"], p.device, p.amp_dtype)
            temperature = fit_temperature(logits, np.asarray(labels))
            record["temperature"] = temperature
            if not TEMPERATURE_BOUNDS[0] * 1.01 < temperature < TEMPERATURE_BOUNDS[1] * 0.99:
                record["note"] = (f"the fitted temperature {temperature:.3g} is at its bound: the validation "
                                  "persons disagree with the model's confidence; its probabilities are not reliable")
            for name, t in (("before", 1.0), ("after", temperature)):
                prob = torch.softmax(torch.from_numpy(logits / t), 1).numpy()
                _, person_labels, person_prob = soft_vote([s.subject_id for s in p.val_s], labels, prob)
                record[f"val_ece_{name}"] = calibration_metrics(person_labels, person_prob)["ece"]
            state["logit_temperature"] = torch.tensor(temperature, dtype=torch.float32)
            meta = CheckpointMeta.from_dict(read_checkpoint_metadata(self.run_dir, "best"))
            for key in ("format_version", "kind", "weights_file", "weights_sha256", "metadata_sha256"):
                meta.discard(key)  # written again by save_checkpoint, after the calibration
            meta.calibration = record
            save_checkpoint(self.run_dir, "best", state, meta)
        self.best_state = state
        self.summary.calibration = record

    def _score_linear_path_alone(self, p: _Prepared) -> None:
        """The linear path without the network, on the same test persons: what the network added.

        With the head's last layer at zero the model's logits are exactly the linear path's (as at
        epoch 0), so this reuses the model; the best weights are put back afterwards.
        """
        state = {k: v.to(p.device) for k, v in self.best_state.items()}
        alone = dict(state)
        last = self._head_output_layer_names(p.model)
        for name in last:
            alone[name] = torch.zeros_like(state[name])
        if "logit_temperature" in alone:
            alone["logit_temperature"] = torch.ones_like(state["logit_temperature"])
        p.model.load_state_dict(alone)
        _, metrics, table = self.evaluate(p.model, p.datasets["test"], p.test_s, p.classes, p.device, p.amp_dtype)
        ci = bootstrap_person_ci(table, p.classes, seed=self.config.optim.seed)
        p.model.load_state_dict(state)
        if "linear_path" not in self.summary:
            self.summary.linear_path = {}
        self.summary.linear_path["test_metrics"] = dict(
            scalar_metrics(metrics), brier=metrics.get("brier"), ece=metrics.get("ece"),
            ci95={k: ci.get(k) for k in ("balanced_accuracy", "roc_auc")})

    @staticmethod
    def _head_output_layer_names(model) -> list[str]:
        index = len(model.head) - 1
        return [f"head.{index}.weight", f"head.{index}.bias"]

    def _logits(self, model, dataset, device, amp_dtype) -> np.ndarray:
        """(N, n_classes) eval-mode logits of every scan of `dataset`."""
        batch_size = max(1, 2 * self.config.optim.batch_size)
        model.eval()
        out = []
        with torch.no_grad():
            for start in range(0, len(dataset), batch_size):
                inputs, _ = self._batch(dataset, list(range(start, min(start + batch_size, len(dataset)))), device)
                with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                    out.append(model(inputs).float().cpu().numpy())
        model.train()
        return np.concatenate(out).astype(np.float64) if out else np.zeros((0, 2))

    # pieces --------------------------------------------------------------------------------
    def _main_first(self):
        """In a distributed run, rank 0 first (it builds the caches), then the others."""
        from contextlib import nullcontext

        return self.dist.main_first() if self.dist is not None else nullcontext()

    def _private_dir(self) -> Path:
        """A scratch folder of a non-writing rank (its energy log), removed when the process ends."""
        import atexit
        import shutil
        import tempfile

        folder = Path(tempfile.mkdtemp(prefix=f"smmt-rank{self.dist.rank}-"))
        atexit.register(shutil.rmtree, folder, True)
        return folder

    def _subset_metrics(self, p: _Prepared) -> dict:
        """Test balanced accuracy and AUC (with CIs) from each subset of the model's modalities.

        Stored with the best checkpoint so that a prediction made from a subset on which the run's
        own test set is at chance can say so (Predictor), rather than present a guess as a finding.
        """
        have = {Modality(name) for name in p.model.encoders}
        out = {}
        for subset in modality_subsets():
            if not set(subset) <= have:
                continue
            absent = [m for m in have if m not in subset]
            _, metrics, table = self.evaluate(p.model, p.datasets["test"], p.test_s, p.classes, p.device,
                                              p.amp_dtype, absent=absent)
            ci = bootstrap_person_ci(table, p.classes, seed=self.config.optim.seed)
            out[subset_name(subset)] = {"balanced_accuracy": metrics["balanced_accuracy"],
                                        "roc_auc": metrics["roc_auc"], "n_subjects": metrics["n_subjects"],
                                        "ci95": {k: ci.get(k) for k in ("balanced_accuracy", "roc_auc")}}
        return out

    def _demo_build_progress(self):
        """Progress of building the demo cohort; a stop abandons an unfinished build.

        The builder then removes its temporary folder and the run ends before it has a folder:
        there is no data to train on yet. A finished build (done == total) is kept; the run then
        ends cleanly at its next stop check.
        """
        report = self._data_progress("building demo cohort", stoppable=False)

        def progress(done: int, total: int) -> None:
            report(done, total)
            if done < total and self.stop.is_set():
                from smmt_core.data.demo import DemoBuildStopped

                raise DemoBuildStopped("training was stopped while the demo cohort was being built; "
                                       "nothing was written")
        return progress

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
        inputs, labels = collate([dataset[i] for i in indices])
        return inputs.to(device), labels.to(device)

    @staticmethod
    def _metrics(ids, labels, probs, classes) -> dict:
        person_ids, person_labels, person_probs = soft_vote(ids, labels, probs)
        return compute_metrics(person_labels, person_probs, classes)

    def evaluate(self, model, dataset, subjects, classes, device, amp_dtype, batch_size: int | None = None,
                 absent=()):
        """(mean loss per scan, per-person metrics, per-person prediction table) in eval mode.

        absent: modalities treated as missing for every subject (the modality-subset scores)."""
        batch_size = batch_size or max(1, 2 * self.config.optim.batch_size)
        model.eval()
        losses, probs, labels = [], [], []
        with torch.no_grad():
            for start in range(0, len(subjects), batch_size):
                idx = list(range(start, min(start + batch_size, len(subjects))))
                inputs, y = self._batch(dataset, idx, device)
                if absent:
                    inputs = inputs.without(*absent)
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
        elif isinstance(error, OSError):  # e.g. "runs/x/best.safetensors: No space left on device"
            message = f"{error.filename}: {error.strerror}" if error.filename and error.strerror else str(error)
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
                # A KeyboardInterrupt is the user's wish (a second Ctrl-C, a grid being stopped), not a failure.
                interrupted = isinstance(error, KeyboardInterrupt)
                self.write_run_json("stopped" if interrupted else "failed", error=message,
                                    epochs_done=self._epochs_done(), best_epoch=self.best_epoch, stopped_early=interrupted,
                                    energy=self.energy_report.to_dict() if self.energy_report else None)
            except Exception as problem:  # the folder may be unwritable (a full disk): the event still goes out
                log.error("could not record the failure in run.json: %s", " ".join(str(problem).split()))
        try:
            self.emit(ev.RunFailed(message=message, run_dir=self.run_dir))
        except Exception:
            log.exception("on_event raised while reporting a failure")


def _finite(value: float) -> float:
    return value if value is not None and math.isfinite(value) else -1.0


def train(config: TrainConfig, on_event: EventCallback | None = None, stop: threading.Event | None = None,
          resume: str | Path | None = None, dist=None) -> RunResult:
    """Train one model as `config` says; see the module docstring for the steps and files.

    on_event: called from the calling thread with each event of `smmt_core.train.events`.
    stop:     set it (from any thread) to end the run cleanly between batches.
    resume:   an existing run folder to continue from its `last` checkpoint (weights, optimiser and
              RNG state; same data split), up to `config.optim.epochs`, in the same folder. A run
              that stopped before its first checkpoint is trained again from the start there
              (run.json's `resumed` entry says `from_scratch`).
    dist:     a `smmt_core.train.distributed.DistContext`: this process is one rank of a DDP run.
    With `config.run.ensemble` > 1 it trains a seed ensemble (`smmt_core.train.ensemble`) instead.
    Raises SMMTError (ConfigError, DataError, CheckpointError) for bad input and TrainingError
    when training itself fails (diverged loss), after emitting RunFailed; other exceptions (bugs)
    are re-raised unchanged after RunFailed too.
    """
    if config.run.ensemble > 1:
        if resume is not None or dist is not None:
            raise ConfigError("an ensemble trains its members one after the other in one process: --resume and "
                              "--ddp take a single run (train a member, or leave out --ensemble)")
        return train_ensemble(config, config.run.ensemble, train, on_event, stop)
    run = _Run(config, on_event, stop, resume, dist)
    try:
        return run.execute()
    except BaseException as error:
        run.fail(error)
        raise
    finally:
        if run.folder_lock is not None:
            run.folder_lock.release()
