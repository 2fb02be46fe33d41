"""The Ray backend: every pending cell is one Ray task, with its resources declared.

Why Ray: it schedules tasks on whatever CPUs and GPUs a machine or a cluster has, queues the
rest, retries a task whose worker crashed, and cancels on request; we write none of that.

- Where: `address` None starts a local Ray instance for the grid (shut down afterwards);
  an address ("auto", "ray://head:10001", "head:6379") joins a running cluster. On a cluster every
  node needs SMMT Studio installed and the experiment folder and dataset on a shared filesystem:
  tasks write their run folders themselves, the driver reads them back.
- Resources: `cpus_per_cell` CPUs (torch uses that many threads) and `gpus_per_cell` GPUs per
  task; a fraction such as 0.5 lets two cells share one GPU. With no GPU asked for, a cell whose
  device is "auto" runs on the CPU, so that it cannot take a GPU Ray did not give it.
- Failures: a cell that raises (anything but an input error) or whose worker dies is retried
  once by Ray (`max_retries=1`, `retry_exceptions=True`), then recorded as failed. An input
  error (SMMTError) cancels the outstanding tasks and stops the grid, as locally.
- Stop and Ctrl-C: the outstanding tasks are cancelled (their unfinished folders are cleared
  on resume); the finished cells stay in results.csv.
- Progress: CellFinished for each cell as it completes, in completion order. Training events of
  a remote run are not forwarded (its metrics.csv grows as usual).

On the CPU a task gives the same metrics as the local backend: the same config and seed, and
one torch thread per CPU of the task.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from smmt_core.errors import ConfigError
from smmt_core.experiments.backends.extras import require

# Environment variables a task needs to see what the driver sees (data caches, demo cohort).
FORWARDED_ENV_PREFIX = "SMMT_"


def _cell_task(spec, out_dir, item, threads: int):
    """Body of one Ray task: run the cell with `threads` torch threads."""
    from smmt_core.device import limit_torch_threads
    from smmt_core.experiments.cell import run_cell

    limit_torch_threads(threads)
    return run_cell(spec, out_dir, item)


class RayBackend:
    name = "ray"

    def __init__(self, address: str | None = None, cpus_per_cell: float = 1.0, gpus_per_cell: float = 0.0,
                 num_cpus: int | None = None, max_retries: int = 1, poll_s: float = 0.5):
        if cpus_per_cell <= 0:
            raise ConfigError(f"--cpus-per-cell must be positive, got {cpus_per_cell:g}")
        if gpus_per_cell < 0:
            raise ConfigError(f"--gpus-per-cell cannot be negative, got {gpus_per_cell:g}")
        if num_cpus is not None and num_cpus < 1:
            raise ConfigError(f"--workers must be at least 1, got {num_cpus}")
        self.address = address or None
        self.cpus_per_cell, self.gpus_per_cell = float(cpus_per_cell), float(gpus_per_cell)
        self.num_cpus = num_cpus  # CPUs of a local instance (None: all of this machine's)
        self.max_retries, self.poll_s = int(max_retries), float(poll_s)

    def describe(self) -> str:
        where = f"cluster at {self.address}" if self.address else "a local Ray instance"
        return f"ray ({where}; {self.cpus_per_cell:g} CPU, {self.gpus_per_cell:g} GPU per cell)"

    def _start(self, ray) -> bool:
        """Connect to the cluster, or start a local instance; True when this call started Ray."""
        if ray.is_initialized():
            return False
        try:
            if self.address:
                ray.init(address=self.address, logging_level="WARNING", log_to_driver=False)
            else:
                ray.init(num_cpus=self.num_cpus, include_dashboard=False, logging_level="WARNING",
                         log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as error:
            where = f"the Ray cluster at {self.address}" if self.address else "a local Ray instance"
            raise ConfigError(f"cannot start or reach {where}: {' '.join(str(error).split())}") from None
        return True

    def run(self, spec, out_dir, pending, book, stop) -> bool:
        ray = require("ray", "ray")
        if not pending:
            return False
        if spec.data_location() == "demo":  # build the demo cohort once, not in every task at once
            from smmt_core.data.demo import ensure_demo_cohort

            ensure_demo_cohort()
        if self.gpus_per_cell == 0 and spec.overrides.get("device", "auto") == "auto":
            spec = replace(spec, overrides={**spec.overrides, "device": "cpu"})
        out_dir = Path(out_dir).resolve()  # a task's working folder is not the driver's
        started_here = self._start(ray)
        try:
            return self._run(ray, spec, out_dir, pending, book, stop)
        finally:
            if started_here:
                ray.shutdown()

    def _run(self, ray, spec, out_dir, pending, book, stop) -> bool:
        from smmt_core.experiments.cell import crash_message

        env = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV_PREFIX)}
        task = ray.remote(_cell_task).options(
            num_cpus=self.cpus_per_cell, num_gpus=self.gpus_per_cell, max_retries=self.max_retries,
            retry_exceptions=True, runtime_env={"env_vars": env} if env else None,
        )
        threads = max(1, int(self.cpus_per_cell))
        spec_ref = ray.put(spec)
        outstanding = {task.remote(spec_ref, out_dir, item, threads): item for item in pending}

        def cancel_all() -> None:
            for ref in outstanding:
                ray.cancel(ref, force=True)
            outstanding.clear()

        try:
            while outstanding:
                if stop is not None and stop.is_set():
                    cancel_all()
                    return True
                ready, _ = ray.wait(list(outstanding), num_returns=1, timeout=self.poll_s)
                for ref in ready:
                    item = outstanding.pop(ref)
                    try:
                        outcome = ray.get(ref)
                    except ray.exceptions.RayTaskError as error:  # raised twice: the retry failed too
                        cause = getattr(error, "cause", None)
                        book.finished(item, "failed", crash_message(cause if cause is not None else error))
                        continue
                    except ray.exceptions.RayError as error:  # the worker died twice, the task was lost, ...
                        book.finished(item, "failed", crash_message(error))
                        continue
                    if outcome.error is not None:
                        cancel_all()
                        raise outcome.error
                    book.finished(item, outcome.status, outcome.message)
        except BaseException:  # Ctrl-C, an input error: nothing keeps running for a grid that ended
            cancel_all()
            raise
        return False
