"""Run the real `smmt` command in a child process (the README's promises are about that process:
its exit code, its files, its reaction to signals), with this checkout on the import path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from smmt_core.bench.smoke import SMOKE_MODEL_FLAGS

REPO = Path(__file__).resolve().parents[2]

# Flags that make `smmt train` tiny: an 8 mm grid, 2 slices of 16x16, d_model 32.
TINY_FLAGS = [*SMOKE_MODEL_FLAGS, "--test-size", "0.25", "--val-size", "0.2",
              "--batch-size", "4", "--no-energy", "--features", "non-circular"]


def smmt_env(cache: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO), SMMT_CACHE_DIR=str(cache), OMP_NUM_THREADS="1",
               PYTHONUNBUFFERED="1", QT_QPA_PLATFORM="offscreen")
    env.pop("PYTHONSTARTUP", None)
    return env


def smmt_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "smmt_core", *args]


def run_smmt(*args: str, cache: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(smmt_command(*args), env=smmt_env(cache), capture_output=True, text=True,
                          timeout=timeout, cwd=cache.parent)


def start_smmt(*args: str, cache: Path, log: Path) -> subprocess.Popen:
    handle = open(log, "w")
    try:
        return subprocess.Popen(smmt_command(*args), env=smmt_env(cache), stdout=handle, stderr=subprocess.STDOUT,
                                cwd=cache.parent)
    finally:
        handle.close()  # the child holds its own copy


def wait_for(condition, what: str, process: subprocess.Popen | None = None, timeout: float = 180.0,
             log: Path | None = None) -> None:
    """Poll `condition()` until true; fail (with the child's log) when the child ends or time runs out."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the process ended ({process.returncode}) before {what}:\n"
                                 + (log.read_text() if log else ""))
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n" + (log.read_text() if log else ""))
        time.sleep(0.05)


def signal_when(process: subprocess.Popen, condition, what: str, signum: int, log: Path,
                timeout: float = 180.0) -> tuple[int, str]:
    """Send `signum` once `condition()` holds; (exit code, the child's log). The child never outlives it."""
    try:
        wait_for(condition, what, process, log=log)
        process.send_signal(signum)
        code = process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return code, log.read_text()


def run_status(run_dir: Path) -> str | None:
    try:
        return json.loads((run_dir / "run.json").read_text()).get("status")
    except (OSError, ValueError):
        return None


def spawned_workers(pid: int | None = None) -> list:
    """The live multiprocessing "spawn" workers below process `pid` (default: this process), as
    psutil processes; multiprocessing's resource tracker and zombies are left out."""
    import psutil

    found = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            if "spawn_main" in " ".join(child.cmdline()) and is_alive(child):
                found.append(child)
        except psutil.Error:
            pass
    return found


def is_alive(process) -> bool:
    """Whether a psutil process still runs (a zombie has ended)."""
    import psutil

    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
