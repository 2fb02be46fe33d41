"""Experiment grids: variant x data fraction x seed (x mask ratio), or k-fold, over split seeds.

Why this module exists: the paper's tables are not single runs. Table III/VI compare variants across
fractions of the training data, Table V compares energy per variant, and the mask-ratio sweep varies
the masking ratio; each figure is a mean over several runs. `run_experiment` trains one run per grid
cell with the ordinary trainer, scores the simple baselines on the same persons, then writes what a
researcher needs to read the grid (the tables themselves: `smmt_core.experiments.summary`):

    out_dir/experiment.json    the spec (to reproduce or resume the grid)
    out_dir/runs/<cell>/       one ordinary run folder per cell (config.json, split.csv, weights, ...)
    out_dir/baselines/<cell>/  one folder per baseline cell: split.csv, predictions.csv, result.json
    out_dir/results.csv        one row per run or baseline: settings, test metrics with CIs, energy
    out_dir/summary.csv/.md    mean +- SD per (method, fraction, mask ratio); paired differences
    out_dir/*.png              accuracy vs fraction, energy per variant, the mask-ratio sweep

Choices, and why:
- Fixed test sets. Every cell of one split seed uses that split, so its test persons are the
  same in all cells; the data fraction shrinks the training and validation persons only (nested),
  and `seed` varies only the model initialisation and the training order. Differences between
  cells of one split are differences between models, not between test sets. `split_seeds`
  repeats the whole grid over several person-level splits, so that a result does not rest on one
  lucky test set. Each row carries a fingerprint of its test persons (`test_set`).
- k-fold instead (`n_folds`): every cell is trained once per fold, fold f testing on the f-th
  person-level fold (the paper's energy table used 5 folds x 50 epochs); the summary pools folds.
- Baselines (`baselines`, smmt_core.baselines) are fitted on the training persons of the same
  split and scored on its test persons, once per (split seed, fold, fraction): they have no
  model seed and no mask ratio.
- Resumable: a cell whose run folder's run.json says it finished (and whose settings match) is
  not trained again; its results are read back. An unfinished folder (crash, Ctrl+C, stop flag) is
  removed and the cell trained again.
- One grid writes a folder at a time: the folder is locked while a grid runs in it
  (`smmt_core.folder_lock`), so a second grid into it (say, with other settings) is refused with
  a message naming the first, instead of each clearing the other's unfinished runs. The cells'
  own processes (local, Ray, Slurm) lock only the run folders they train.
- Variants without masking have no mask-ratio axis: they get one cell per (fraction, seed[, fold])
  and record mask ratio 0.
- Input problems (a bad setting, unreadable data: any SMMTError) stop the grid at once, because
  every other cell would fail the same way; any other crash inside one run is recorded as a failed
  row and the grid goes on.
"""

from __future__ import annotations

import json
import math
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from smmt_core.errors import ConfigError, SMMTError
from smmt_core.experiments.backends import LocalBackend
from smmt_core.experiments.cell import (  # noqa: F401 (re-exported: part of the grid's interface)
    CellFinished,
    CellOutcome,
    CellStarted,
    crash_message,
    run_cell,
)
from smmt_core.experiments.spec import ExperimentCell, ExperimentSpec, PendingCell
from smmt_core.experiments.summary import RESULT_COLUMNS, result_row, write_outputs
from smmt_core.fileio import atomic_write_text, read_table
from smmt_core.folder_lock import lock_folder
from smmt_core.train.config import TrainConfig
from smmt_core.train.run_record import RunRecord

# Settings that may differ between a finished run and the cell that would re-create it.
_IGNORED_WHEN_RESUMING = {"out", "run_name", "device", "num_workers"}


ExperimentEvent = CellStarted | CellFinished


@dataclass
class ExperimentResult:
    out_dir: Path
    results: pd.DataFrame  # one row per cell (RESULT_COLUMNS)
    summary: pd.DataFrame  # mean +- SD per (variant, fraction, mask_ratio)
    results_csv: Path
    summary_csv: Path
    summary_md: Path
    plots: dict[str, Path]  # "accuracy_vs_fraction", "energy_per_variant", "mask_ratio_sweep"
    n_trained: int
    n_reused: int
    n_failed: int
    stopped: bool  # True when the stop flag ended the grid early
    missing_csv: Path | None = None  # the missing-data comparison, when test_missing was asked for

    @property
    def complete(self) -> bool:
        return not self.stopped and self.n_failed == 0


def _config_differences(record: RunRecord, wanted: TrainConfig) -> list[str]:
    stored = record.stored_config()
    if stored is None:
        return []
    try:
        stored_flat = TrainConfig.from_dict(stored).flat()
    except SMMTError:
        return ["the stored config.json is not a valid config"]
    want = wanted.flat()
    out = []
    for key in sorted(set(stored_flat) & set(want) - _IGNORED_WHEN_RESUMING):
        a, b = stored_flat[key], want[key]
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
            if math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12):
                continue
        elif a == b or (isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and list(a) == list(b)):
            continue
        out.append(f"{key} {a!r} (stored) != {b!r} (this experiment)")
    return out


# ----------------------------------------------------------------------------------------- runner
class GridBook:
    """The driver's bookkeeping, the same for every backend: one results row per cell (kept in
    grid order whatever order cells finish in), results.csv rewritten after each, CellFinished.

    Backends call `finished(pending, status, message)`; the row is read back from the cell's folder
    through its record, so a cell trained on another machine is read exactly like a local one.
    """

    def __init__(self, spec: ExperimentSpec, out_dir: Path, cells: list[ExperimentCell], emit):
        self.spec, self.out_dir, self.cells, self.emit = spec, out_dir, cells, emit
        self.rows: dict[int, dict] = {}
        self.n_trained = self.n_reused = self.n_failed = 0

    @property
    def total(self) -> int:
        return len(self.cells)

    def flush(self) -> None:
        rows = [self.rows[i] for i in sorted(self.rows)]
        atomic_write_text(self.out_dir / "results.csv", pd.DataFrame(rows, columns=RESULT_COLUMNS).to_csv(index=False))

    def results(self) -> pd.DataFrame:
        return pd.DataFrame([self.rows[i] for i in sorted(self.rows)], columns=RESULT_COLUMNS)

    def record_for(self, cell: ExperimentCell, folder: Path):
        from smmt_core.baselines import BaselineRecord

        return BaselineRecord(folder) if cell.is_baseline else RunRecord(folder)

    def finished(self, pending: PendingCell, status: str, message: str = "") -> dict:
        """Record one cell's outcome: "finished", "reused", "failed" or "stopped"."""
        record = self.record_for(pending.cell, pending.folder)
        row = result_row(pending.cell, status, record, error=message if status == "failed" else "")
        self.rows[pending.index] = row
        self.n_failed += status == "failed"
        self.n_reused += status == "reused"
        self.n_trained += status == "finished"
        self.flush()
        self.emit(CellFinished(pending.index, self.total, pending.cell, status, row, message))
        return row


def _folder(out_dir: Path, cell: ExperimentCell) -> Path:
    return out_dir / ("baselines" if cell.is_baseline else "runs") / cell.name


def _plan(spec: ExperimentSpec, out_dir: Path, cells: list[ExperimentCell], book: GridBook) -> list[PendingCell]:
    """Resume: record the cells finished earlier (a ConfigError when one was made with other
    settings), clear unfinished folders, and return the cells still to run, in grid order."""
    from smmt_core.baselines import BaselineRecord

    pending = []
    for index, cell in enumerate(cells):
        folder = _folder(out_dir, cell)
        if cell.is_baseline:
            if BaselineRecord(folder).finished():
                book.finished(PendingCell(index, cell, folder), "reused", "finished earlier; not fitted again")
                continue
        else:
            record = RunRecord(folder)
            if record.finished_summary() is not None:
                diffs = _config_differences(record, spec.config_for(cell, out_dir / "runs"))
                if diffs:
                    raise ConfigError(f"a finished run with other settings is in the way ({'; '.join(diffs)}); "
                                      "use another output folder or delete that run", record.run_dir)
                book.finished(PendingCell(index, cell, folder), "reused", "finished earlier; not trained again")
                continue
            if folder.exists():
                shutil.rmtree(folder)  # an unfinished run of this cell: start it again from scratch
        pending.append(PendingCell(index, cell, folder))
    return pending


def run_experiment(spec: ExperimentSpec, out_dir: str | Path, on_event: Callable[[Any], None] | None = None,
                   stop: threading.Event | None = None, *, make_plots: bool = True, backend=None) -> ExperimentResult:
    """Train every cell of the grid not finished yet, score the baselines, then write results,
    summary and plots.

    on_event receives CellStarted / CellFinished and, with the local backend, the training events
    of the cell's run in between (called from this thread). stop: when set, running cells stop at
    their next batch (remote ones are cancelled), the grid ends there and the outputs cover what
    finished (`ExperimentResult.stopped`). Rerunning the same spec into the same out_dir resumes it.
    backend: where the cells run (`smmt_core.experiments.backends`): in this process, one after
    another (default), as Ray tasks, or as a Slurm job array; resume, results and summary are the
    same for all. Ctrl-C (KeyboardInterrupt) keeps the finished cells in results.csv, then propagates.
    One grid writes a folder at a time: FolderInUse (naming the folder and the other process) while
    another holds it (`smmt_core.folder_lock`).
    """
    spec.validate()
    backend = backend if backend is not None else LocalBackend()
    out_dir = Path(out_dir)
    with lock_folder(out_dir, "experiment folder"):
        return _run_locked(spec, out_dir, on_event, stop, make_plots, backend)


def _run_locked(spec: ExperimentSpec, out_dir: Path, on_event, stop, make_plots: bool, backend) -> ExperimentResult:
    """`run_experiment` while this process holds the experiment folder: one grid writes it at a time."""
    runs_dir = out_dir / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "experiment.json", json.dumps(spec.to_dict(), indent=2) + "\n")
    emit = on_event or (lambda event: None)
    cells = spec.cells()
    book = GridBook(spec, out_dir, cells, emit)
    pending = _plan(spec, out_dir, cells, book)
    try:
        stopped = backend.run(spec, out_dir, pending, book, stop)
    except BaseException:
        book.flush()  # the cells finished so far stay in results.csv (Ctrl-C, an input error)
        raise

    results = book.results()
    summary, made = write_outputs(spec, out_dir, results, make_plots)
    missing_csv = None
    if spec.test_missing and not stopped:
        from smmt_core.experiments.missing import grid_missing

        grid_missing(spec, out_dir, results, stop=stop)  # missing.csv and a section of summary.md
        missing_csv = out_dir / "missing.csv"
    return ExperimentResult(
        out_dir=out_dir, results=results, summary=summary, results_csv=out_dir / "results.csv",
        summary_csv=out_dir / "summary.csv", summary_md=out_dir / "summary.md", plots=made,
        n_trained=book.n_trained, n_reused=book.n_reused, n_failed=book.n_failed, stopped=stopped,
        missing_csv=missing_csv,
    )


def load_results(out_dir: str | Path) -> pd.DataFrame:
    """The results.csv of an experiment folder (SMMTError when missing or unreadable)."""
    path = Path(out_dir) / "results.csv"
    if not path.is_file():
        raise SMMTError("no results.csv here; run `smmt experiment` into this folder first", Path(out_dir))
    return read_table(path, "results table", error=SMMTError, as_strings=False)


__all__ = [
    "ExperimentSpec", "ExperimentCell", "ExperimentResult", "CellStarted", "CellFinished", "run_experiment",
    "load_results", "RESULT_COLUMNS", "PendingCell", "GridBook", "CellOutcome", "run_cell",
]
