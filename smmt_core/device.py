"""Which torch device work runs on, and with how many CPU threads: one default for everything.

`DEFAULT_DEVICE` ("auto": CUDA when there is a GPU, else the CPU) is what training, prediction,
robustness and the GUI use unless told otherwise. Interactive work on the CPU (one prediction,
a modality toggle) runs best on one thread on a busy machine: `INTERACTIVE_THREADS`.
"""

from __future__ import annotations

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


def prepare_interactive() -> bool:
    """For a process that runs only interactive work (the desktop app, whose training runs in a
    child process): torch on INTERACTIVE_THREADS threads; returns whether CUDA is available."""
    import torch

    torch.set_num_threads(INTERACTIVE_THREADS)
    return bool(torch.cuda.is_available())
