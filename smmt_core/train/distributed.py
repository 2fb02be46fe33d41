"""One model on several processes: PyTorch DistributedDataParallel (gloo on CPU, NCCL on CUDA).

Two ways in, the same training:
    torchrun --nproc-per-node 2 -m smmt_core.cli train --data demo ...   (one node or several)
    smmt train --ddp 2 --data demo ...                                   (one machine, spawned here)

What each process does (`DistContext` is handed to the trainer, which asks it at a few places):
- Every rank computes the same person-level split (same seed, same data), so the training
  persons are the same everywhere; no rank ever sees a validation or test person in training.
- The sampler (`shard`): every rank draws the same global batch order (same seed), and each
  global batch of `batch_size` scans is dealt round-robin to the ranks. The loss of a rank is its
  scans' summed loss x world / global batch size, so DDP's gradient average equals the gradient
  of the mean loss over the global batch: the same step as one process with that batch.
  A rank left without a scan in a short last batch runs one with weight 0 (DDP needs every rank).
- Rank 0 alone writes the run folder (config, split, metrics, checkpoints, run.json) and
  evaluates validation and test; the checkpoint is the plain model's state dict, so a single
  process loads it as any other run.
- Stop: the stop flag of any rank stops all of them at the same batch (one all-reduce per batch
  carries the loss and the flag), so no rank waits forever on the others.
- Energy: every rank measures its own process (codecarbon, process mode); the final figures in
  run.json and best.json are the sum over ranks. Per-epoch readings in metrics.csv are rank 0's.
- Randomness: the model is initialised identically on every rank; dropout and masking draws
  then use a seed per rank, so ranks do not repeat each other's masks.

Within a stated tolerance, 2 processes reach the final metrics of 1 process with the same
global batch (tests/core/test_distributed.py): the summation order of the gradients differs,
and with dropout or masking the random draws differ.
"""

from __future__ import annotations

import os
import socket
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist

from smmt_core.errors import ConfigError


@dataclass
class DistContext:
    """This process's place in a distributed run (WORLD_SIZE processes, RANK 0 writes)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> "DistContext | None":
        """The context torchrun (or `spawn_training`) set in the environment; None for one process."""
        try:
            world = int(os.environ.get("WORLD_SIZE", "1"))
            if world <= 1:
                return None
            return cls(rank=int(os.environ["RANK"]), world_size=world,
                       local_rank=int(os.environ.get("LOCAL_RANK", os.environ["RANK"])))
        except (KeyError, ValueError):
            raise ConfigError("WORLD_SIZE is set but RANK or LOCAL_RANK is missing or not a number; "
                              "start distributed training with torchrun or smmt train --ddp N") from None

    # -- set-up --------------------------------------------------------------------------------
    def device(self, name: str) -> torch.device:
        """This rank's device: its own GPU (LOCAL_RANK) on CUDA, else the CPU."""
        from smmt_core.device import select_device

        device = select_device(name)
        if device.type == "cuda":
            device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(device)
        return device

    def init(self, device: torch.device) -> None:
        """Join the process group (NCCL on CUDA, gloo on CPU), unless already joined."""
        if not torch_dist.is_initialized():
            torch_dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=self.rank,
                                          world_size=self.world_size)

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        # A batch without one modality leaves that encoder unused: DDP must not wait for its grads.
        return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)

    # -- the sampler -----------------------------------------------------------------------------
    def shard(self, batch: list[int]) -> tuple[list[int], float]:
        """(this rank's scans of a global batch, weight of their summed loss). See the module doc."""
        mine = batch[self.rank::self.world_size]
        if not mine:  # fewer scans than ranks in this batch: take part with weight 0
            return batch[:1], 0.0
        return mine, self.world_size / len(batch)

    # -- collectives -----------------------------------------------------------------------------
    def sum(self, values: list[float], device: torch.device) -> list[float]:
        t = torch.tensor(values, dtype=torch.float64, device=device)
        torch_dist.all_reduce(t, op=torch_dist.ReduceOp.SUM)
        return t.tolist()

    def gather(self, obj) -> list:
        out = [None] * self.world_size
        torch_dist.all_gather_object(out, obj)
        return out

    def broadcast(self, obj):
        box = [obj]
        torch_dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        torch_dist.barrier()

    @contextmanager
    def main_first(self):
        """Rank 0 runs the block first (builds the demo cohort, fills the preprocessing cache),
        the others after it, from the cache."""
        if not self.is_main:
            self.barrier()
        yield
        if self.is_main:
            self.barrier()

    def sum_energy(self, report, device: torch.device):
        """The energy report with its kWh and CO2 figures summed over ranks."""
        keys = ("energy_kwh", "cpu_kwh", "gpu_kwh", "ram_kwh", "co2_kg")
        values = [getattr(report, k) for k in keys]
        known = [0.0 if v is None else float(v) for v in values]
        missing = self.sum([1.0 if v is None else 0.0 for v in values], device)
        totals = self.sum(known, device)
        for key, total, n_missing in zip(keys, totals, missing):
            setattr(report, key, None if n_missing else total)
        if report.energy_kwh is not None and report.duration_s:
            report.mean_power_w = report.energy_kwh * 3.6e6 / report.duration_s
        report.note = " ".join(filter(None, [report.note, f"summed over {self.world_size} processes"]))
        return report


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawned(rank: int, world: int, port: int, config, stop, results, progress_factory) -> None:
    """One process of `spawn_training`: torchrun's environment, then the ordinary trainer."""
    import signal

    from smmt_core.errors import SMMTError
    from smmt_core.train.trainer import train

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it sets `stop`
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    if config.run.device == "cpu" or not torch.cuda.is_available():
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    ctx = DistContext(rank, world, rank)
    on_event = progress_factory() if (ctx.is_main and progress_factory is not None) else None
    try:
        result = train(config, on_event=on_event, stop=stop, dist=ctx)
        if ctx.is_main:
            results.put(("result", result))
    except SMMTError as error:
        if ctx.is_main:
            results.put(("error", error))
        raise
    finally:
        if torch_dist.is_initialized():
            torch_dist.destroy_process_group()


def spawn_training(config, nprocs: int, progress_factory=None):
    """Train `config` on `nprocs` processes of this machine (torch.multiprocessing); rank 0's RunResult.

    progress_factory: builds rank 0's on_event callback inside that process (a callable that can
    be pickled, e.g. a class). Ctrl-C in this process stops all ranks cleanly at their next batch.
    Raises the SMMTError of rank 0 unchanged (bad input), TrainingError when a rank crashed.
    """
    import torch.multiprocessing as mp

    from smmt_core.errors import TrainingError

    if nprocs < 2:
        raise ConfigError(f"--ddp needs at least 2 processes, got {nprocs}")
    if config.run.device.startswith("cuda") or (config.run.device == "auto" and torch.cuda.is_available()):
        if torch.cuda.device_count() < nprocs:
            raise ConfigError(f"--ddp {nprocs} on CUDA needs {nprocs} GPUs; "
                              f"this machine has {torch.cuda.device_count()}")
    ctx = mp.get_context("spawn")
    stop, results = ctx.Event(), ctx.SimpleQueue()
    procs = mp.start_processes(_spawned, args=(nprocs, free_port(), config, stop, results, progress_factory),
                               nprocs=nprocs, join=False, start_method="spawn")
    failure = None
    while True:
        try:
            if procs.join(timeout=0.5):
                break
        except KeyboardInterrupt:
            stop.set()  # every rank stops at its next batch; keep waiting for them
        except Exception as error:  # a rank died: start_processes has ended the others
            failure = error
            break
    outcome = results.get() if not results.empty() else None
    if outcome is not None and outcome[0] == "result":
        return outcome[1]
    if outcome is not None:
        raise outcome[1]
    first = str(failure).strip().splitlines()[-1] if failure is not None else "no result from rank 0"
    raise TrainingError(f"distributed training failed: {first}")
