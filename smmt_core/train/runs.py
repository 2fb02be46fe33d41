"""Run folders: naming, the `run.json` summary, and finding the runs under a folder.

A run folder holds everything needed to understand and reproduce one training run:

    config.json          the TrainConfig, as given (after the preset was applied)
    split.csv            subject_id, session, label, part (train/val/test) for every scan used
    metrics.csv          one row per epoch: train/val loss and per-subject metrics, energy so far
    emissions.csv        codecarbon's record (when energy was measured)
    predictions.csv      test-set class probabilities per person (soft-voted)
    best.safetensors + best.json, last.safetensors + last.json   (see checkpoints.py)
    run.json             status, versions, seed, counts, best epoch, test metrics, energy

`run.json` is rewritten (atomically) when the run starts, ends, stops or fails, so that a browser of
runs (GUI, `smmt runs`) can show what state each run is in without loading any weights.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from smmt_core.errors import CheckpointError, ConfigError
from smmt_core.train.checkpoints import read_json

RUN_FILE = "run.json"
RUN_STATUSES = ("running", "finished", "stopped", "failed")


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def default_run_name(variant: str, fraction: float, seed: int, when: datetime | None = None) -> str:
    """e.g. 'smmt-f1-s0-20261126-221503' (variant, data fraction, seed, UTC time)."""
    when = when or datetime.now(timezone.utc)
    return f"{variant}-f{fraction:g}-s{seed}-{when:%Y%m%d-%H%M%S}"


def _safe_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._+-]+", "_", name.strip()).strip("._")
    return cleaned or "run"


def create_run_dir(parent: str | Path, name: str) -> Path:
    """Make a new, empty run folder `parent/name` (adding -2, -3 … if the name is taken).

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
                return candidate
            except FileExistsError:
                continue
    except OSError as error:
        reason = error.strerror or str(error)
        raise ConfigError(f"cannot create a run folder here ({reason}); choose another output folder",
                          error.filename or parent) from None
    raise CheckpointError(f"could not create a run folder named {base!r} (too many runs with that name)", parent)


@dataclass
class RunInfo:
    """What a run browser shows for one run, read from run.json without loading weights."""

    run_dir: Path
    name: str
    variant: str
    created: str  # ISO 8601, UTC
    test_metrics: dict = field(default_factory=dict)
    synthetic: bool = False  # trained on the SYNTHETIC demo cohort
    status: str = ""  # running / finished / stopped / failed
    label_set: str = ""
    classes: list[str] = field(default_factory=list)
    has_best: bool = False  # a best checkpoint exists (the run can predict)
    energy_kwh: float | None = None


def read_run_info(run_dir: str | Path) -> RunInfo:
    """RunInfo of one run folder; CheckpointError when run.json is missing or unreadable."""
    run_dir = Path(run_dir)
    data = read_json(run_dir / RUN_FILE, "run summary")
    config = data.get("config") or {}
    energy = data.get("energy") or {}
    return RunInfo(
        run_dir=run_dir,
        name=str(data.get("run_name") or run_dir.name),
        variant=str(config.get("variant", "")),
        created=str(data.get("created", "")),
        test_metrics=dict(data.get("test_metrics") or {}),
        synthetic=bool(data.get("synthetic", False)),
        status=str(data.get("status", "")),
        label_set=str(config.get("label_set", "")),
        classes=list(data.get("classes") or []),
        has_best=(run_dir / "best.safetensors").is_file() and (run_dir / "best.json").is_file(),
        energy_kwh=energy.get("energy_kwh"),
    )


def list_runs(root: str | Path) -> list[RunInfo]:
    """All runs under `root` (the folder itself, its children and grandchildren), newest first.

    Folders whose run.json cannot be read are skipped: a browser should list what it can.
    """
    root = Path(root)
    if not root.is_dir():
        return []
    candidates = [root / RUN_FILE, *root.glob(f"*/{RUN_FILE}"), *root.glob(f"*/*/{RUN_FILE}")]
    runs = []
    for path in candidates:
        if not path.is_file():
            continue
        try:
            runs.append(read_run_info(path.parent))
        except CheckpointError:
            continue
    runs.sort(key=lambda r: (r.created, r.name), reverse=True)
    return runs
