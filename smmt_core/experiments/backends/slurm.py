"""The Slurm backend: the pending cells of a grid go to Slurm as one job array, through submitit.

Why submitit: it writes the sbatch script, pickles the function and its arguments, submits one
array, and reads results and errors back from the shared filesystem; most university clusters run
Slurm. The driver (`smmt experiment --backend slurm`, e.g. on the login node, in tmux) waits for
the array and records each cell as its job ends; the run folders are the same as locally
(OUT/runs/<cell>), the job scripts and logs go to OUT/slurm/.

- Resources per cell: `cpus_per_cell` CPUs, `gpus_per_cell` GPUs (whole GPUs on Slurm),
  `mem_gb`, `time_min`, a `partition`; `array_parallelism` caps how many cells run at once;
  `setup` lines run before each job (load modules, activate the environment); `additional`
  holds any other sbatch option (e.g. {"account": "mylab", "qos": "short"}).
- Failures: a job that raised (anything but an input error) or did not complete (time limit,
  node failure) is submitted once more; if that fails too the cell is recorded as failed. An
  input error (SMMTError) cancels the outstanding jobs and stops the grid.
- Stop and Ctrl-C cancel the outstanding jobs (scancel); finished cells stay; rerunning the
  command resumes the grid like any other backend.
- `cluster="local"` runs the same jobs as local subprocesses with submitit's local executor:
  for testing a set-up (and the tests) on a machine without Slurm.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from smmt_core.errors import ConfigError
from smmt_core.experiments.backends.extras import require


def _cell_job(spec, out_dir, item, threads: int):
    """Body of one array job: run the cell with `threads` torch threads."""
    from smmt_core.device import limit_torch_threads
    from smmt_core.experiments.cell import run_cell

    limit_torch_threads(threads)
    return run_cell(spec, out_dir, item)


def job_error_line(error: BaseException) -> str:
    """One line for results.csv from a submitit error, whose text holds the job's whole traceback:
    the traceback's last line ("RuntimeError: crash on attempt 2") when there is one."""
    from smmt_core.experiments.cell import crash_message

    lines = str(error).splitlines()
    rules = [i for i, line in enumerate(lines) if line.startswith("-----")]
    if len(rules) >= 2:
        inside = [line.strip() for line in lines[rules[0] + 1:rules[1]] if line.strip()]
        if inside:
            return inside[-1]
    return crash_message(error)


class SlurmBackend:
    name = "slurm"

    def __init__(self, cluster: str | None = "slurm", partition: str | None = None, time_min: int = 120,
                 cpus_per_cell: int = 1, gpus_per_cell: int = 0, mem_gb: float | None = None,
                 array_parallelism: int | None = None, setup: list[str] | tuple = (),
                 additional: dict | None = None, folder: str | Path | None = None, max_retries: int = 1,
                 poll_s: float = 2.0):
        if cluster not in (None, "slurm", "local"):
            raise ConfigError(f"unknown Slurm cluster kind {cluster!r}; choose slurm or local")
        if int(cpus_per_cell) != cpus_per_cell or cpus_per_cell < 1:
            raise ConfigError(f"on Slurm --cpus-per-cell is a whole number of CPUs, got {cpus_per_cell:g}")
        if int(gpus_per_cell) != gpus_per_cell or gpus_per_cell < 0:
            raise ConfigError(f"on Slurm --gpus-per-cell is a whole number of GPUs, got {gpus_per_cell:g}")
        if time_min < 1:
            raise ConfigError(f"--slurm-time must be at least 1 minute, got {time_min}")
        self.cluster, self.partition, self.time_min = cluster, partition, int(time_min)
        self.cpus_per_cell, self.gpus_per_cell = int(cpus_per_cell), int(gpus_per_cell)
        self.mem_gb, self.array_parallelism = mem_gb, array_parallelism
        self.setup, self.additional = list(setup), dict(additional or {})
        self.folder, self.max_retries, self.poll_s = folder, int(max_retries), float(poll_s)

    def describe(self) -> str:
        where = ("submitit's local executor" if self.cluster == "local"
                 else f"Slurm partition {self.partition or '(default)'}")
        return (f"slurm ({where}; {self.cpus_per_cell} CPU, {self.gpus_per_cell} GPU, {self.time_min} min per cell)")

    def executor(self, out_dir: Path):
        submitit = require("submitit", "slurm")
        folder = Path(self.folder) if self.folder else out_dir / "slurm"
        try:
            executor = submitit.AutoExecutor(folder=folder / "%j", cluster=self.cluster)
        except (RuntimeError, ValueError) as error:  # e.g. no sbatch on this machine
            raise ConfigError(f"cannot submit to Slurm here ({' '.join(str(error).split())}); "
                              "run on the cluster's login node, or use --slurm-cluster local to try it") from None
        params = dict(name=f"smmt-{out_dir.name}", timeout_min=self.time_min, cpus_per_task=self.cpus_per_cell,
                      gpus_per_node=self.gpus_per_cell, nodes=1, tasks_per_node=1,
                      slurm_setup=self.setup, slurm_additional_parameters=self.additional)
        if self.mem_gb is not None:
            params["mem_gb"] = self.mem_gb
        if self.partition:
            params["slurm_partition"] = self.partition
        if self.array_parallelism:
            params["slurm_array_parallelism"] = int(self.array_parallelism)
        executor.update_parameters(**params)
        return executor

    def run(self, spec, out_dir, pending, book, stop) -> bool:
        if not pending:
            return False
        out_dir = Path(out_dir).resolve()  # a job's working folder is not the driver's
        executor = self.executor(out_dir)
        if spec.data_location() == "demo":  # build the demo cohort once, not in every job at once
            from smmt_core.data.demo import ensure_demo_cohort

            ensure_demo_cohort()
        if self.gpus_per_cell == 0 and spec.overrides.get("device", "auto") == "auto":
            spec = replace(spec, overrides={**spec.overrides, "device": "cpu"})

        def submit(items):
            jobs = executor.map_array(_cell_job, [spec] * len(items), [out_dir] * len(items), items,
                                      [self.cpus_per_cell] * len(items))
            return {job: (item, 0) for job, item in zip(jobs, items)}

        outstanding = submit(pending)
        try:
            while outstanding:
                if stop is not None and stop.is_set():
                    self._cancel(outstanding)
                    return True
                done = [job for job in outstanding if job.done()]
                retry = []
                for job in done:
                    item, attempt = outstanding.pop(job)
                    error = job.exception()
                    if error is not None:
                        if attempt < self.max_retries:
                            retry.append((item, attempt + 1))
                        else:
                            book.finished(item, "failed", job_error_line(error))
                        continue
                    outcome = job.result()
                    if outcome.error is not None:
                        self._cancel(outstanding)
                        raise outcome.error
                    book.finished(item, outcome.status, outcome.message)
                if retry:
                    again = submit([item for item, _ in retry])
                    attempts = {item.index: attempt for item, attempt in retry}
                    outstanding.update({job: (item, attempts[item.index]) for job, (item, _) in again.items()})
                if not done:
                    time.sleep(self.poll_s)
        except BaseException:  # Ctrl-C, an input error: cancel what is still queued or running
            self._cancel(outstanding)
            raise
        return False

    def _cancel(self, outstanding: dict) -> None:
        jobs = list(outstanding)
        outstanding.clear()
        for job in jobs:
            try:
                job.cancel(check=False)
            except Exception:  # already gone; nothing left to cancel
                pass
        if self.cluster == "local":  # local jobs are our child processes: see them end
            for job in jobs:
                job.wait()
