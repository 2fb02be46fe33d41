"""Events a training run emits to its `on_event` callback, and the RunResult it returns.

Plain dataclasses so that the CLI (progress bars), the GUI (Qt signals, live curves) and tests can
all consume the same stream. The callback is called from the training thread: a GUI must hand the
event over to its own thread (a queued Qt signal) before touching widgets. They live in this light
module (no torch) because a training child process pickles them to its parent, the GUI, which must
be able to read them without importing the trainer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class RunStarted:
    run_dir: Path
    total_epochs: int
    batches_per_epoch: int
    n_train: int  # subjects
    n_val: int
    n_test: int
    device: str  # "cpu" or "cuda:0"
    config: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # the dataset's non-fatal problems (all in run.json)


@dataclass
class DataProgress:
    """Before the first epoch: scans being read and preprocessed (or read from the cache)."""

    stage: str  # e.g. "preprocessing train", "preprocessing val"
    done: int
    total: int


@dataclass
class BatchProgress:
    epoch: int  # 1-based
    batch: int  # 1-based within the epoch
    batches_per_epoch: int
    loss: float
    elapsed_s: float
    eta_s: float | None  # seconds left for the whole run, None before it can be estimated


@dataclass
class StopSeen:
    """The run saw the stop flag: no further batch starts; it now saves and evaluates what it has.

    A cancelled run should stop within one batch: `batches_done - batches_at_request`
    is how many batches still finished after the flag was set (0 or 1 when it holds).
    """

    batches_done: int  # batches of this run finished when the loop saw the flag (resumed epochs count)
    batches_at_request: int | None = None  # batches finished when the flag was set; None when unknown
    # (the training child process notes it the moment the flag arrives; an in-process run cannot)


@dataclass
class EpochEnd:
    epoch: int
    train_loss: float
    val_loss: float | None
    train_metrics: dict[str, float]  # accuracy, balanced_accuracy, ...
    val_metrics: dict[str, float]
    is_best: bool


@dataclass
class EnergyUpdate:
    epoch: int
    elapsed_s: float
    energy_kwh: float  # cumulative since the run started
    power_w: float  # mean power since the previous update
    estimated: bool  # True when codecarbon had no RAPL/NVML and estimated the power


@dataclass
class CheckpointSaved:
    path: Path
    epoch: int
    kind: str  # "best" or "last"


@dataclass
class RunFinished:
    run_dir: Path
    stopped_early: bool  # True when the stop flag ended the run
    test_metrics: dict  # per-subject metrics on the test set (see smmt_core.train.metrics)
    energy_kwh: float
    duration_s: float


@dataclass
class RunFailed:
    message: str  # one line for the user
    run_dir: Path | None = None


@dataclass
class RunResult:
    """What `train` returns (also on a stop): where the run is and its headline figures."""

    run_dir: Path
    test_metrics: dict  # per-subject metrics of the best checkpoint on the test set ({} if none)
    energy_kwh: float | None  # None when energy could not be measured
    duration_s: float
    stopped_early: bool
    best_epoch: int | None = None
    energy: dict = field(default_factory=dict)  # EnergyReport.to_dict()


TrainingEvent = RunStarted | DataProgress | BatchProgress | StopSeen | EpochEnd | EnergyUpdate | CheckpointSaved | RunFinished | RunFailed
