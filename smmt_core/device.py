"""Which torch device work runs on, and with how many CPU threads: one default for everything.

`DEFAULT_DEVICE` ("auto": CUDA when there is a GPU, else the CPU) is what training, prediction,
robustness and the GUI use unless told otherwise. Interactive work on the CPU (one prediction,
a modality toggle) runs best on one thread on a busy machine: `INTERACTIVE_THREADS`. Every entry
point (`smmt`, the app, its training and intake processes) makes torch's OpenMP threads sleep
rather than spin while they wait: `prefer_passive_openmp`.
"""

from __future__ import annotations

import os

DEFAULT_DEVICE = "auto"
DEVICE_CHOICES = ("auto", "cpu", "cuda")
INTERACTIVE_THREADS = 1


def select_device(name: str | None = DEFAULT_DEVICE):
    """'auto' -> CUDA when available, else CPU; 'cuda' without a GPU is a ConfigError."""
    import torch

    from smmt_core.errors import ConfigError

    name = (name or DEFAULT_DEVICE).lower()
    if name == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError("device 'cuda' requested but no CUDA GPU is available; use --device cpu or auto")
        return torch.device(name if ":" in name else "cuda:0")
    if name == "cpu":
        return torch.device("cpu")
    raise ConfigError(f"unknown device {name!r}; choose auto, cpu or cuda")


def prefer_passive_openmp() -> None:
    """OpenMP threads that sleep instead of spinning while they wait, unless the user has chosen
    (OMP_WAIT_POLICY). On shared cores a spinning thread takes the time the working one needs, and
    the sparse attention's many small calls wait often: with two busy processes beside it, the
    attention kernel at n = 4096 on 2 threads measured 0.94x dense spinning and 5.8x passive
    (docs/attention.md, "Threads on a shared machine"); deepbet's step 4.2-4.9 s passive against
    4.4-10.3 s spinning (docs/intake.md). OpenMP reads the variable once, when torch loads it: call
    this before torch is imported (every entry point does, first thing)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def configure_worker_process(threads: int) -> None:
    """For a fresh process that runs CPU-heavy library code (the intake's deepbet and ANTs),
    before torch and ITK start: `threads` threads for torch, and passive OpenMP threads.
    ITK (N4, the affine fit) runs on one thread, for reproducible results: the intake's register
    module sets that (`ITK_THREADS`)."""
    os.environ["OMP_NUM_THREADS"] = str(threads)  # read by torch when it is first imported
    prefer_passive_openmp()


def limit_torch_threads(threads: int) -> None:
    """`threads` CPU threads for torch in this process. Before torch is imported, through
    OMP_NUM_THREADS (read at its import), so that a process that never needs torch (a grid cell
    of a test's fake runner) does not pay seconds to import it only to set a number."""
    import sys

    threads = max(1, int(threads))
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    else:
        os.environ["OMP_NUM_THREADS"] = str(threads)


def prepare_interactive() -> bool:
    """For a process that runs only interactive work (the desktop app, whose training runs in a
    child process): torch on INTERACTIVE_THREADS threads; returns whether CUDA is available."""
    import torch

    torch.set_num_threads(INTERACTIVE_THREADS)
    return bool(torch.cuda.is_available())
