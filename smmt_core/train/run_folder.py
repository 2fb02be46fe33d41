"""The run folder: the name of every file in it, and the typed content of run.json and best.json.

One owner, so that the trainer, the checkpoints, `RunRecord`, ensembles, baselines, experiment
grids, `smmt runs` and the GUI cannot drift apart on a file name or a key. `RunRecord`
(run_record.py) reads and writes the files, checkpoints.py the weights; this module only declares
them and imports nothing heavy.

    config.json          the TrainConfig (nested; see train/config.py)
    split.csv            subject_id, session, label, part (train/val/test/unused) for every scan
    metrics.csv          one row per epoch: train/val loss and per-person metrics, energy so far
    emissions.csv        codecarbon's record (when energy was measured; written by codecarbon)
    predictions.csv      test-set class probabilities per person (soft-voted)
    best.safetensors + best.json, last.safetensors + last.json   weights + `CheckpointMeta`
    last.state.safetensors   optimiser and RNG state for `smmt train --resume`
    run.json             `RunSummary`: status, versions, seeds, counts, best epoch, test metrics, energy
    members/             a seed ensemble's member run folders (run.json "kind": "ensemble")
    baselines/           simple baselines scored on the run's own split (`smmt train --baselines`)

The two JSON schemas are declared as dataclasses, but they keep the file's own key order and
leave out keys a run has not set yet (a reader of an unfinished run sees no `test_metrics`, as it
always did): the files written are the same bytes as before, and older folders read as before.
Keys this version does not declare are kept as read (`extra`) and written back unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

# -- file names ------------------------------------------------------------------------------------
RUN_FILE = "run.json"
CONFIG_FILE = "config.json"
SPLIT_FILE = "split.csv"
METRICS_FILE = "metrics.csv"
PREDICTIONS_FILE = "predictions.csv"
EMISSIONS_FILE = "emissions.csv"
TRAINING_STATE_FILE = "last.state.safetensors"
MEMBERS_DIR = "members"  # an ensemble's member run folders
BASELINES_DIR = "baselines"  # baselines scored on a finished run's split, one folder each
BASELINE_SUMMARY_FILE = "baseline.json"  # a baseline folder's run.json

CHECKPOINT_KINDS = ("best", "last")


def weights_name(kind: str) -> str:
    """`best.safetensors` / `last.safetensors`."""
    return f"{kind}.safetensors"


def metadata_name(kind: str) -> str:
    """`best.json` / `last.json`."""
    return f"{kind}.json"


BEST_WEIGHTS, BEST_METADATA = weights_name("best"), metadata_name("best")
LAST_WEIGHTS, LAST_METADATA = weights_name("last"), metadata_name("last")

RUN_STATUSES = ("running", "finished", "stopped", "failed")
ENSEMBLE_KIND = "ensemble"  # run.json "kind" of a seed ensemble (smmt_core.train.ensemble)


def has_best_checkpoint(run_dir: str | Path) -> bool:
    """Whether `run_dir` holds a best checkpoint (weights and metadata): the run can predict."""
    run_dir = Path(run_dir)
    return (run_dir / BEST_WEIGHTS).is_file() and (run_dir / BEST_METADATA).is_file()


# -- JSON objects with declared keys ---------------------------------------------------------------
@dataclass(init=False, eq=False, repr=False)
class JsonObject:
    """A JSON object whose keys are declared as typed fields.

    Unlike a plain dataclass it remembers which keys were set and in what order, so `to_dict`
    gives back exactly the object that was read or built (an unset key stays absent; a key set to
    None is written as null). Setting an undeclared attribute is an error (a typo in a key); keys
    a newer version wrote are kept in `extra`. A field's annotation is the JSON type of its value
    when present (`| None`: null is one of its values); a field not set reads as None.
    """

    _NAMES: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        dataclass(init=False, eq=False, repr=False)(cls)
        cls._NAMES = frozenset(f.name for f in fields(cls))

    def __init__(self, **given: Any):
        object.__setattr__(self, "_order", [])
        object.__setattr__(self, "extra", {})
        for name, value in given.items():
            setattr(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self._NAMES:
            raise AttributeError(f"{type(self).__name__} declares no key {name!r}")
        object.__setattr__(self, name, value)
        if name not in self._order:
            self._order.append(name)

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other.to_dict() == self.to_dict()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_dict()!r})"

    def __contains__(self, name: str) -> bool:
        return name in self._order

    def get(self, name: str, default: Any = None) -> Any:
        """The value of a key (declared or not), `default` when the object does not hold it."""
        if name not in self._order:
            return default
        return getattr(self, name) if name in self._NAMES else self.extra[name]

    def set(self, name: str, value: Any) -> None:
        """Set a key by name: a declared one, or an extra one kept as given."""
        if name in self._NAMES:
            setattr(self, name, value)
        else:
            self.extra[name] = value
            if name not in self._order:
                self._order.append(name)

    def update(self, values: dict | None = None, **more: Any) -> None:
        for name, value in {**(values or {}), **more}.items():
            self.set(name, value)

    def discard(self, name: str) -> None:
        """Leave a key out (it is not written)."""
        if name in self._order:
            self._order.remove(name)
            if name in self._NAMES:
                object.__setattr__(self, name, None)
            else:
                self.extra.pop(name, None)

    def copy(self):
        """A shallow copy (the values are shared), to add keys to."""
        return type(self).from_dict(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict):
        """The object as read from a file, every key in its place."""
        out = cls()
        out.update(data)
        return out

    def to_dict(self) -> dict:
        """The object to write: the keys that were set, in the order they were first set."""
        return {name: self.get(name) for name in self._order}


class RunSummary(JsonObject):
    """run.json: what a run browser, a results table and a resume read without loading weights.

    A single run writes the keys in this order; a resumed run keeps the order of its first
    run.json and adds what is new. An ensemble writes the keys of its own (below) and a subset of
    the others.
    """

    run_name: str = None
    created: str = None  # ISO 8601, UTC
    config: dict = None  # TrainConfig.to_dict(), as config.json holds it
    data: dict = None  # path, layout, name, n_scans, n_excluded_other_labels, class_counts, n_problems, problems
    synthetic: bool = None  # trained on the SYNTHETIC demo cohort
    classes: list = None  # class names, in the model's output order
    features: list = None  # clinical feature names
    circularity_warning: str | None = None  # features that restate the label (feature_sets.circularity_warning)
    seed: int = None
    split_seed: int = None
    split: dict = None  # scans and persons per part, fold, n_folds, notes
    device: str = None
    versions: dict = None  # checkpoints.software_versions()
    process: dict = None  # pid, host, started: who writes the run while it is `running`
    status: str = None  # one of RUN_STATUSES
    updated: str = None
    duration_s: float = None  # training and test time: the span the energy meter covers
    preparation_s: float = None  # loading and preprocessing the data
    feature_warnings: list = None
    mri_warnings: dict = None  # count, first
    linear_path: dict = None  # the fitted linear path (and its test metrics alone), with one
    amp: str | None = None  # mixed precision dtype on CUDA
    n_parameters: int = None
    energy_measured: bool = None  # False when codecarbon only estimates
    epochs_done: int = None
    best_epoch: int | None = None
    calibration: dict = None  # the best checkpoint's temperature and why
    best_val_metrics: dict = None
    test_metrics: dict = None  # metrics of the best checkpoint on the test persons, with ci95
    subset_metrics: dict = None  # test metrics from each subset of the modalities
    energy: dict | None = None  # EnergyReport.to_dict()
    stopped_early: bool = None
    finished: str = None
    error: str = None  # why the run failed (one line)
    resumed: list = None  # one entry per `--resume`
    baselines: dict = None  # simple baselines scored on this run's split (name -> test metrics)
    kind: str = None  # ENSEMBLE_KIND for a seed ensemble; absent for a single run
    n_members: int = None
    members: list = None  # "members/seed-S" of each member, relative to the ensemble's folder
    member_test_metrics: dict = None


# The run.json keys that readers use as more than text, with the JSON type each must have (null is
# accepted for all: an unfinished run has no results yet). `RunRecord.summary` refuses others.
SUMMARY_FIELD_TYPES = {"classes": list, "test_metrics": dict, "energy": dict, "process": dict, "config": dict,
                       "resumed": list, "features": list, "members": list}


class CheckpointMeta(JsonObject):
    """best.json / last.json: what rebuilding and trusting the model needs, beside its weights.

    The trainer sets the first group for every checkpoint of a run and the epoch's figures for
    each save; `save_checkpoint` adds the format and checksums; the test results are added to
    best.json after the run (`update_checkpoint_metadata`).
    """

    REQUIRED: ClassVar[tuple[str, ...]] = ("config", "schema", "encoder", "preprocess", "classes", "weights_sha256")

    run_name: str = None
    config: dict = None
    schema: dict = None  # FeatureSchema.to_dict()
    encoder: dict = None  # the fitted FeatureEncoder
    preprocess: dict = None  # PreprocessConfig.to_dict(), with its algorithm version
    classes: list = None
    features: list = None
    seed: int = None
    split_seed: int = None
    synthetic: bool = None
    versions: dict = None
    epoch: int = None
    train_loss: float = None
    val_loss: float | None = None
    val_metrics: dict = None
    train_metrics: dict = None
    energy_kwh: float | None = None
    training_state_file: str = None  # last.json only: TRAINING_STATE_FILE and its SHA-256
    training_state_sha256: str = None
    calibration: dict = None  # best.json: the fitted temperature (RunSummary.calibration)
    format_version: int = None
    kind: str = None  # "best" or "last"
    weights_file: str = None
    weights_sha256: str = None
    metadata_sha256: str = None  # over the canonical JSON of every other key
    test_metrics: dict = None
    energy: dict = None
    training_duration_s: float = None
    subset_metrics: dict = None
