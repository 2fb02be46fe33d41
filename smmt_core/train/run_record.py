"""`RunRecord`: the one reader and writer of a run folder's files (weights aside: checkpoints.py).

A run folder holds everything needed to understand and reproduce one training run; its files
and the keys of run.json are declared in `smmt_core.train.run_folder`.

Why one owner: the trainer, experiment grids, robustness, `smmt runs`, the GUI's model list and
the tests all read these files; with one class the format cannot drift between them. `run.json`
is rewritten atomically whenever the run's state changes, so a browser can show each run's state
without loading weights. Statuses: running, finished, stopped (by the user: the best checkpoint
was still evaluated), failed. A `running` run whose writing process is gone (run.json records its
pid, host and start time) is reported as `interrupted` by `info()` and `list_runs`; `smmt train
--resume` continues it from its last checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import socket
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from smmt_core.errors import CheckpointError, ConfigError, DataError
from smmt_core.fileio import atomic_write_text, read_json, read_table
from smmt_core.jsonsafe import json_safe
from smmt_core.train.config import TrainConfig
from smmt_core.train.run_folder import (
    BEST_METADATA,
    BEST_WEIGHTS,
    CONFIG_FILE,
    ENSEMBLE_KIND,
    MEMBERS_DIR,
    METRICS_FILE,
    PREDICTIONS_FILE,
    RUN_FILE,
    RUN_STATUSES,
    SPLIT_FILE,
    SUMMARY_FIELD_TYPES,
    JsonObject,
    RunSummary,
    has_best_checkpoint,
)


def process_stamp() -> dict:
    """Who is writing a run: pid, host and the process's start time (a later process that reuses
    the pid has another start time). Stored in run.json while the run is `running`."""
    import psutil

    return {"pid": os.getpid(), "host": socket.gethostname(), "started": psutil.Process().create_time()}


def writer_is_gone(stamp) -> bool:
    """True when run.json's writer has certainly ended (same host, and no process with its pid and
    start time). False when it lives, or cannot be checked (another host, an older run.json)."""
    import psutil

    if not isinstance(stamp, dict) or stamp.get("host") != socket.gethostname():
        return False
    pid, started = stamp.get("pid"), stamp.get("started")
    if not isinstance(pid, int) or isinstance(pid, bool) or not isinstance(started, (int, float)):
        return False
    try:
        return abs(psutil.Process(pid).create_time() - started) > 1.0
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return True
    except (psutil.Error, OverflowError, ValueError):
        return False


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def default_run_name(variant: str, fraction: float, seed: int, when: datetime | None = None) -> str:
    """e.g. 'smmt-f1-s0-20261126-221503' (variant, data fraction, seed, UTC time)."""
    when = when or datetime.now(timezone.utc)
    return f"{variant}-f{fraction:g}-s{seed}-{when:%Y%m%d-%H%M%S}"


def _safe_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._+-]+", "_", name.strip()).strip("._")
    return cleaned or "run"


def _json_safe(value):
    """NaN/inf -> None, numpy scalars -> Python, recursively (run.json is strict JSON)."""
    return json_safe(value)


_JSON_TYPE_NAMES = {dict: "an object", list: "a list", str: "a string", bool: "true/false", int: "a number",
                    float: "a number", type(None): "null"}


def _json_type(value) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def summary_type_problem(data: dict) -> str | None:
    """'field X is a string, expected a list' for a run.json whose fields have the wrong JSON type
    (edited by hand, written by something else), else None: one bad field must make the run
    unreadable with that reason, not crash whoever reads it."""
    from smmt_core.train.metrics import SCALAR_METRICS

    for key, expected in SUMMARY_FIELD_TYPES.items():
        value = data.get(key)
        if value is not None and not isinstance(value, expected):
            return f"field {key!r} is {_json_type(value)}, expected {_JSON_TYPE_NAMES[expected]}"
    bad_class = next((c for c in data.get("classes") or [] if not isinstance(c, str)), None)
    if bad_class is not None:
        return f"field 'classes' holds {_json_type(bad_class)} ({bad_class!r}), expected class names"
    metrics = data.get("test_metrics") or {}
    for name in (*SCALAR_METRICS, "loss", "n_subjects"):
        value = metrics.get(name)
        if value is not None and not _is_number(value):
            return f"test metric {name!r} is {_json_type(value)}, expected a number"
    return None


@dataclass
class RunInfo:
    """What a run browser shows for one run, read from run.json without loading weights."""

    run_dir: Path
    name: str
    variant: str
    created: str  # ISO 8601, UTC
    test_metrics: dict = field(default_factory=dict)
    synthetic: bool = False  # trained on the SYNTHETIC demo cohort
    status: str = ""  # running / finished / stopped / failed, or interrupted / unreadable (see list_runs)
    label_set: str = ""
    classes: list[str] = field(default_factory=list)
    has_best: bool = False  # a best checkpoint exists (the run can predict)
    energy_kwh: float | None = None
    error: str = ""  # why the run failed, or why its run.json could not be read


class RunRecord:
    """One run folder. `create` makes a new one; `RunRecord(path)` opens an existing one."""

    SUMMARY_FILE = RUN_FILE  # a baseline's folder keeps its summary under another name

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)

    def __repr__(self) -> str:
        return f"RunRecord({str(self.run_dir)!r})"

    @classmethod
    def create(cls, parent: str | Path, name: str) -> "RunRecord":
        """A new, empty folder `parent/name` (adding -2, -3 … if the name is taken).

        ConfigError naming the folder when the output folder cannot be made or written (no
        permission, read-only, a file in the way, a system folder such as /proc).
        """
        parent = Path(parent)
        base = _safe_name(name)
        try:
            parent.mkdir(parents=True, exist_ok=True)
            for i in range(1, 1000):
                candidate = parent / (base if i == 1 else f"{base}-{i}")
                try:
                    candidate.mkdir()
                    return cls(candidate)
                except FileExistsError:
                    continue
        except OSError as error:
            reason = error.strerror or str(error)
            raise ConfigError(f"cannot create a run folder here ({reason}); choose another output folder",
                              error.filename or parent) from None
        raise CheckpointError(f"could not create a run folder named {base!r} (too many runs with that name)", parent)

    # -- writing ---------------------------------------------------------------------------
    def write_config(self, config) -> None:
        self._write_json(CONFIG_FILE, config.to_dict())

    def write_split(self, frame: pd.DataFrame) -> None:
        atomic_write_text(self.run_dir / SPLIT_FILE, frame.to_csv(index=False))

    def write_metrics(self, rows: list[dict]) -> None:
        atomic_write_text(self.run_dir / METRICS_FILE, pd.DataFrame(rows).to_csv(index=False))

    def write_predictions(self, frame: pd.DataFrame) -> None:
        atomic_write_text(self.run_dir / PREDICTIONS_FILE, frame.to_csv(index=False))

    def write_summary(self, summary: RunSummary | dict) -> None:
        """run.json: the whole summary, atomically. Its status must be a known status."""
        data = summary.to_dict() if isinstance(summary, JsonObject) else dict(summary)
        if data.get("status") not in RUN_STATUSES:
            raise ValueError(f"run status must be one of {RUN_STATUSES}, got {data.get('status')!r}")
        self._write_json(self.SUMMARY_FILE, data)

    def update_summary(self, **fields) -> dict:
        """Add fields to an existing run.json (e.g. baselines scored after training)."""
        summary = RunSummary.from_dict(self.summary())
        summary.update(fields)
        self.write_summary(summary)
        return summary.to_dict()

    def _write_json(self, name: str, data: dict) -> None:
        atomic_write_text(self.run_dir / name, json.dumps(_json_safe(data), indent=2, allow_nan=False) + "\n")

    # -- reading ---------------------------------------------------------------------------
    def summary(self) -> dict:
        """run.json as a dict; CheckpointError naming the file when missing or unreadable."""
        path = self.run_dir / self.SUMMARY_FILE
        data = read_json(path, "run summary", error=CheckpointError)
        if data.get("status") not in RUN_STATUSES:
            raise CheckpointError(f"run summary has an unknown status {data.get('status')!r}", path)
        problem = summary_type_problem(data)
        if problem:
            raise CheckpointError(f"run summary {problem}", path)
        return data

    def run_summary(self) -> RunSummary:
        """run.json, typed; CheckpointError as `summary`."""
        return RunSummary.from_dict(self.summary())

    def config(self):
        """The stored TrainConfig (CheckpointError when missing or invalid)."""
        path = self.run_dir / CONFIG_FILE
        try:
            return TrainConfig.from_dict(read_json(path, "run config", error=CheckpointError))
        except ConfigError as error:
            raise CheckpointError(f"stored training config is invalid: {error.problem}", path) from None

    def stored_config(self) -> dict | None:
        """config.json as written (None when absent or unreadable): for comparing settings."""
        try:
            return read_json(self.run_dir / CONFIG_FILE, "run config", error=CheckpointError)
        except CheckpointError:
            return None

    def finished_summary(self) -> dict | None:
        """run.json of a run that trained to its last epoch, else None (missing, unfinished, stopped)."""
        try:
            data = self.summary()
        except CheckpointError:
            return None
        return data if data["status"] == "finished" and not data.get("stopped_early") else None

    def result_fields(self) -> dict:
        """What a results table reads from run.json: test_metrics, energy, duration_s, best_epoch
        ({} when run.json is missing or unreadable)."""
        try:
            data = self.summary()
        except CheckpointError:
            return {}
        return {"test_metrics": data.get("test_metrics") or {},
                "energy": data.get("energy") if isinstance(data.get("energy"), dict) else {},
                "duration_s": data.get("duration_s"), "best_epoch": data.get("best_epoch")}

    def split(self) -> pd.DataFrame:
        """split.csv; DataError naming the file when missing or malformed."""
        path = self.run_dir / SPLIT_FILE
        if not path.is_file():
            raise DataError("split.csv is missing: cannot tell which subjects were held out for testing", path)
        frame = read_table(path, "split table", error=DataError)
        missing = [c for c in ("subject_id", "part") if c not in frame.columns]
        if missing:
            raise DataError(f"split table lacks column(s) {', '.join(missing)}", path)
        return frame

    def persons(self, part: str) -> list[str]:
        """Sorted person ids of one part of the split ("train", "val", "test")."""
        frame = self.split()
        return sorted(set(frame.loc[frame["part"] == part, "subject_id"]))

    def test_set_fingerprint(self) -> tuple[str, int]:
        """(short hash of the sorted test person ids, their number); ("", 0) without a readable split."""
        try:
            ids = self.persons("test")
        except DataError:
            return "", 0
        return hashlib.sha1("\n".join(ids).encode()).hexdigest()[:10], len(ids)

    def metrics(self) -> pd.DataFrame:
        return self._read_table(METRICS_FILE, "per-epoch metrics")

    def predictions(self) -> pd.DataFrame:
        return self._read_table(PREDICTIONS_FILE, "test predictions")

    def _read_table(self, name: str, what: str) -> pd.DataFrame:
        return read_table(self.run_dir / name, f"{what} table", error=DataError, as_strings=False)

    @property
    def is_ensemble(self) -> bool:
        """Whether this is a seed ensemble's folder (run.json kind "ensemble", no checkpoint of its own)."""
        if not (self.run_dir / RUN_FILE).is_file() or (self.run_dir / BEST_METADATA).is_file():
            return False
        try:
            return self.run_summary().kind == ENSEMBLE_KIND
        except (CheckpointError, DataError):
            return False  # loading it as a run gives the precise message

    @property
    def is_training(self) -> bool:
        """Whether a process is training this run now: run.json says `running` and its writer lives
        (or cannot be checked: another host, an older run.json). False when run.json is unreadable."""
        try:
            summary = self.run_summary()
        except (CheckpointError, DataError):
            return False
        return summary.status == "running" and not writer_is_gone(summary.process)

    @property
    def has_best(self) -> bool:
        """Whether the run can predict: its best checkpoint, or for an ensemble a member's."""
        if has_best_checkpoint(self.run_dir):
            return True
        members = self.run_dir / MEMBERS_DIR
        return members.is_dir() and any((m / BEST_WEIGHTS).is_file() for m in members.iterdir() if m.is_dir())

    def info(self) -> RunInfo:
        """RunInfo for a browser; CheckpointError when run.json is missing or unreadable."""
        summary = self.run_summary()
        config = summary.config if isinstance(summary.config, dict) else {}
        model = config.get("model") if isinstance(config.get("model"), dict) else config
        data_section = config.get("data") if isinstance(config.get("data"), dict) else config
        energy = summary.energy if isinstance(summary.energy, dict) else {}
        kwh = energy.get("energy_kwh")
        status = str(summary.status)
        if status == "running" and writer_is_gone(summary.process):
            status = "interrupted"  # killed (SIGKILL, power cut) before it could record why
        return RunInfo(
            run_dir=self.run_dir,
            name=str(summary.run_name or self.run_dir.name),
            variant=str(model.get("variant", "")),
            created=str(summary.get("created", "")),
            test_metrics=dict(summary.test_metrics or {}),
            synthetic=bool(summary.synthetic),
            status=status,
            label_set=str(data_section.get("label_set", "")),
            classes=[str(c) for c in summary.classes or []],
            has_best=self.has_best,
            energy_kwh=float(kwh) if isinstance(kwh, (int, float)) and math.isfinite(kwh) else None,
            error=str(summary.error or ""),
        )


def read_run_info(run_dir: str | Path) -> RunInfo:
    """RunInfo of one run folder; CheckpointError when run.json is missing or unreadable."""
    return RunRecord(run_dir).info()


def list_runs(root: str | Path) -> list[RunInfo]:
    """All runs under `root` (the folder itself, its children and grandchildren), newest first.

    A folder whose run.json cannot be read is listed with status "unreadable" and the reason in
    `error` (one bad file must not hide the other runs, nor hide itself). A run reached through
    several paths (symbolic links) is listed once.
    """
    root = Path(root)
    if not root.is_dir():
        return []
    runs = []
    for path in _run_files(root):
        try:
            runs.append(read_run_info(path.parent))
        except CheckpointError as error:
            runs.append(RunInfo(run_dir=path.parent, name=path.parent.name, variant="", created="",
                                status="unreadable", error=error.problem))
    runs.sort(key=lambda r: (r.created, r.name), reverse=True)
    return runs


def _run_files(root: Path) -> list[Path]:
    """The run.json files under `root` (itself, children, grandchildren), each run once.

    Symbolic links can show one run under several paths (a link to a sibling, a link back up to
    the folder itself) or loop: runs are told apart by their real folder, a run reached without
    passing a link keeps its own path, and links that loop or lead nowhere are skipped."""
    root_real = root.resolve()
    found: dict[Path, tuple[bool, int, str, Path]] = {}
    for path in [root / RUN_FILE, *root.glob(f"*/{RUN_FILE}"), *root.glob(f"*/*/{RUN_FILE}")]:
        try:
            if not path.is_file():
                continue
            real = path.parent.resolve(strict=True)
        except (OSError, RuntimeError):  # a link loop (ELOOP; RuntimeError before Python 3.13), or a dead link
            continue
        through_link = real != root_real / path.parent.relative_to(root)
        choice = (through_link, len(path.parts), str(path), path)
        if real not in found or choice < found[real]:
            found[real] = choice
    return [choice[-1] for choice in found.values()]


def newest_finished(runs: list[RunInfo]) -> RunInfo | None:
    """The newest run that finished and can predict; stopped, failed or interrupted runs are
    never chosen unasked (a cancelled run is not the model a user expects to get back)."""
    finished = [r for r in runs if r.has_best and r.status == "finished"]
    return max(finished, key=lambda r: (r.created, r.name)) if finished else None


def resolve_run_dir(path: str | Path) -> Path:
    """`path` itself when it is a run folder; for a folder of runs (what `smmt train --out` gets),
    its newest finished run. CheckpointError listing the runs when there is no obvious choice.

    The CLI (`smmt predict --model`) and the GUI both call this, so they choose alike.
    """
    path = Path(path).expanduser()
    if (path / BEST_METADATA).is_file() or (path / RUN_FILE).is_file() or not path.is_dir():
        return path  # a run folder (or nothing): loading it gives the precise message
    runs = [r for r in list_runs(path) if r.has_best]
    if not runs:
        raise CheckpointError("not a run folder, and no run with a best checkpoint inside", path)
    best = newest_finished(runs)
    if best is not None:
        return best.run_dir
    listing = "; ".join(f"{r.run_dir.relative_to(path)} ({r.status})" for r in runs[:10])
    more = f" and {len(runs) - 10} more" if len(runs) > 10 else ""
    raise CheckpointError(f"a folder of runs, none of them finished; choose one: {listing}{more}", path)


class SilentRecord:
    """The run folder as a non-zero rank of a distributed run sees it: where rank 0 writes it;
    writing is rank 0's job, so every write is a no-op here."""

    def __init__(self, run_dir):
        self.run_dir = Path(run_dir)

    def __getattr__(self, name):
        if name.startswith("write_") or name == "update_summary":
            return lambda *args, **kwargs: None
        raise AttributeError(name)
