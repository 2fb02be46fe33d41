"""One cell of an experiment grid, run where an engine puts it, and the events that report cells.

`run_cell` is the one function the local backend, a Ray task and a Slurm array job all run, so it
lives apart from the grid that plans the cells: the backends import it from here, and the grid
imports the backends; both read the cells from `spec`.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from smmt_core.errors import SMMTError
from smmt_core.experiments.spec import ExperimentCell, ExperimentSpec, PendingCell
from smmt_core.train.config import TrainConfig
from smmt_core.train.run_record import RunRecord


@dataclass
class CellStarted:
    """A cell's run is about to be trained (training events of that run follow)."""

    index: int  # 0-based position in the grid
    total: int
    cell: ExperimentCell
    run_dir: Path


@dataclass
class CellFinished:
    """A cell is done: status "finished", "reused" (finished earlier), "failed" or "stopped"."""

    index: int
    total: int
    cell: ExperimentCell
    status: str
    row: dict
    message: str = ""


def _default_runner(config: TrainConfig, on_event=None, stop=None):
    from smmt_core.train.trainer import train  # imported late: the trainer pulls in torch and data

    return train(config, on_event=on_event, stop=stop)


@dataclass
class CellOutcome:
    """What running one cell gave: a status and, for "failed", a one-line message. `error` is an
    input problem (SMMTError) that must stop the whole grid."""

    status: str
    message: str = ""
    error: SMMTError | None = None


def run_cell(spec: ExperimentSpec, out_dir: Path, pending: PendingCell, on_event=None, stop=None,
             cohort_cache: dict | None = None) -> CellOutcome:
    """Run one cell in this process: train its model (or fit its baseline) into its folder.

    The same function runs a cell locally, in a Ray task and in a Slurm array job. A crash (any
    exception other than an SMMTError) propagates, so that an engine can retry the cell; an
    unfinished folder left by an earlier attempt is cleared first, so a retry starts clean.
    """
    cell = pending.cell
    try:
        if cell.is_baseline:
            from smmt_core.baselines import run_baseline

            run_baseline(cell.variant, spec.config_for(cell, out_dir / "runs"), pending.folder,
                         cohort_cache=cohort_cache)
            return CellOutcome("finished")
        if pending.folder.exists() and RunRecord(pending.folder).finished_summary() is None:
            shutil.rmtree(pending.folder)
        runner = spec.runner or _default_runner
        result = runner(spec.config_for(cell, out_dir / "runs"), on_event=on_event, stop=stop)
    except SMMTError as error:
        return CellOutcome("failed", str(error), error)
    return CellOutcome("stopped" if getattr(result, "stopped_early", False) else "finished")


def crash_message(error: BaseException) -> str:
    """One line for results.csv: 'RuntimeError: loss became NaN'."""
    return f"{type(error).__name__}: {error}".splitlines()[0]
