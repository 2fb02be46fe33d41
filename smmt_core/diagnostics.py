"""The text of a bug report's "diagnostics": versions, device, threads, folders and the last log lines.

Why here, without Qt: the desktop app's Help → Copy diagnostics only copies it to the clipboard, and
a test (or the CLI) can build and check it without a window. It never imports torch: a process that
has not loaded torch yet reports "not loaded yet" (with the installed version), so asking for
diagnostics costs nothing and cannot freeze the GUI thread for seconds.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from smmt_core import __version__

NOT_LOADED = "not loaded yet"
LOG_LINES = 40  # the last lines of the log that go into the text


def _installed(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def torch_facts(modules: Mapping[str, object] | None = None) -> dict[str, str]:
    """torch's version, device and threads, read only when torch is already imported."""
    torch = (sys.modules if modules is None else modules).get("torch")
    if torch is None:
        return {"torch": f"{NOT_LOADED} (installed: {_installed('torch')})", "device": NOT_LOADED,
                "torch threads": NOT_LOADED}
    try:
        cuda = torch.cuda.is_available()
        device = f"CUDA: {torch.cuda.get_device_name(0)}" if cuda else "CPU"
    except Exception as error:  # noqa: BLE001 - a broken driver is itself worth reporting
        device = f"unknown ({error})"
    try:
        threads = f"{torch.get_num_threads()} (interop {torch.get_num_interop_threads()})"
    except Exception as error:  # noqa: BLE001
        threads = f"unknown ({error})"
    return {"torch": str(getattr(torch, "__version__", "?")), "device": device, "torch threads": threads}


def diagnostics_text(*, qt_version: str = "", data_folder: str | Path | None = "", runs_folder: str | Path | None = "",
                     cache_folder: str | Path | None = None, log_lines: Iterable[str] = (),
                     modules: Mapping[str, object] | None = None) -> str:
    """Plain text to paste into a bug report (no personal data beyond the folder paths shown)."""
    if cache_folder is None:
        from smmt_core.data.cache_root import default_cache_dir

        cache_folder = default_cache_dir()
    facts = {
        "SMMT Studio": __version__,
        "Python": platform.python_version(),
        **({"Qt": qt_version} if qt_version else {}),
        "OS": platform.platform(),
        **torch_facts(modules),
        "CPU cores": str(os.cpu_count()),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "(not set)"),
        "data folder": str(data_folder or "(none open)"),
        "runs folder": str(runs_folder or "(default)"),
        "cache folder": str(cache_folder),
    }
    width = max(len(key) for key in facts)
    lines = ["SMMT Studio diagnostics"] + [f"{key:<{width}}  {value}" for key, value in facts.items()]
    tail = list(log_lines)[-LOG_LINES:]
    lines += ["", f"Last {len(tail)} log lines:" if tail else "Log: (empty)"] + tail
    return "\n".join(lines) + "\n"
