"""Fake trainers for the experiment-grid tests (local, Ray and Slurm backends).

They write what the real trainer writes that the grid reads (config.json, split.csv, run.json)
through the same RunRecord, and return deterministic metrics. In a module of their own so that
Ray and submitit workers can receive them (the tests register this module to be pickled by value).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from smmt_core.train.run_record import RunRecord


@dataclass
class FakeResult:
    run_dir: Path
    test_metrics: dict
    energy_kwh: float
    duration_s: float
    stopped_early: bool = False


def fake_accuracy(variant: str, fraction: float, seed: int, mask_ratio: float) -> float:
    base = {"smmt": 0.80, "3mt": 0.70, "smmt-no-mask": 0.75, "smmt-no-sparse": 0.72}[variant]
    return base + 0.1 * fraction + 0.01 * seed - 0.05 * mask_ratio


class FakeRunner:
    """Records calls; writes a run folder like the trainer; can fail, stop or vary the test set."""

    def __init__(self, fail_on: str | None = None, error: Exception | None = None, stop_on: str | None = None,
                 test_ids_by_seed: bool = False):
        self.calls: list[str] = []
        self.fail_on, self.error, self.stop_on = fail_on, error, stop_on
        self.test_ids_by_seed = test_ids_by_seed

    def __call__(self, config, on_event=None, stop=None):
        self.calls.append(config.run.run_name)
        record = RunRecord.create(config.run.out, config.run.run_name)
        record.write_config(config)
        record.write_summary({"status": "running"})
        if self.fail_on and self.fail_on in config.run.run_name:
            raise self.error
        split_seed = config.optim.seed if self.test_ids_by_seed else config.data.split_seed
        test = [f"t{split_seed}-{i}" for i in range(4)]
        rows = [(sid, "", "AD", "test") for sid in test] + [("a", "", "CN", "train"), ("b", "", "AD", "val")]
        record.write_split(pd.DataFrame(rows, columns=["subject_id", "session", "label", "part"]))
        stopped = bool(self.stop_on and self.stop_on in config.run.run_name)
        if stopped:
            stop.set()
        acc = fake_accuracy(config.model.variant, config.data.fraction, config.optim.seed, config.model.mask_ratio)
        metrics = {"accuracy": acc, "balanced_accuracy": acc - 0.02, "roc_auc": acc + 0.05, "sensitivity": acc,
                   "specificity": acc - 0.04, "f1": acc, "confusion_matrix": [[3, 1], [0, 4]]}
        energy = 0.001 * (2.0 if config.model.variant == "3mt" else 1.0) * config.data.fraction
        record.write_summary({
            "status": "stopped" if stopped else "finished", "stopped_early": stopped,
            "test_metrics": metrics, "duration_s": 10.0, "best_epoch": 2,
            "energy": {"energy_kwh": energy, "cpu_kwh": energy / 4, "ram_kwh": energy * 3 / 4, "gpu_kwh": 0.0,
                       "estimated": True},
        })
        run_dir = record.run_dir
        if on_event:
            on_event("a training event")
        return FakeResult(run_dir, metrics, energy, 10.0, stopped)


class CrashingRunner(FakeRunner):
    """Raises RuntimeError (or, `hard`, kills its process) on the first `crashes` attempts of each
    cell (attempts counted in files, since every attempt may run in another process), then trains
    like FakeRunner."""

    def __init__(self, attempts_dir, crashes: int = 1, hard: bool = False):
        super().__init__()
        self.attempts_dir, self.crashes, self.hard = str(attempts_dir), crashes, hard

    def __call__(self, config, on_event=None, stop=None):
        folder = Path(self.attempts_dir)
        folder.mkdir(parents=True, exist_ok=True)
        attempt = len(list(folder.glob(config.run.run_name + ".*"))) + 1
        (folder / f"{config.run.run_name}.{attempt}").write_text(str(os.getpid()))
        if attempt <= self.crashes and self.hard:
            os._exit(3)  # the worker process dies, as on a segfault or an out-of-memory kill
        if attempt <= self.crashes:
            raise RuntimeError(f"crash on attempt {attempt}")
        return super().__call__(config, on_event, stop)


class BlockingRunner(FakeRunner):
    """Trains cells whose name contains `quick` at once; the others write their pid to
    `pid_dir/<cell>` and wait (up to `max_wait_s`) for a file that never comes: a long run."""

    def __init__(self, quick: str, pid_dir, max_wait_s: float = 120.0):
        super().__init__()
        self.quick, self.pid_dir, self.max_wait_s = quick, str(pid_dir), max_wait_s

    def __call__(self, config, on_event=None, stop=None):
        if self.quick not in config.run.run_name:
            folder = Path(self.pid_dir)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / config.run.run_name).write_text(str(os.getpid()))
            deadline = time.monotonic() + self.max_wait_s
            while time.monotonic() < deadline and not (folder / "release").exists():
                time.sleep(0.05)
        return super().__call__(config, on_event, stop)
