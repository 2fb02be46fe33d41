"""Run the intake for one scan in a child process, so that Cancel works even inside a step.

deepbet and ANTs spend seconds inside C++/TorchScript calls that a stop flag cannot interrupt and
that may hold the interpreter lock; in a child process the caller's thread (a GUI worker) stays
free, progress arrives through a queue, and Cancel first asks the child to stop between steps,
then terminates it. Nothing half-written is left: the cache entry is renamed into place only when
complete, and a terminated child's work folder is a hidden `.work-*` folder that is never read.
"""

from __future__ import annotations

import multiprocessing
import queue as queue_module
import time
from pathlib import Path

from smmt_core.data.intake.pipeline import (
    IntakeCache,
    IntakeCancelled,
    IntakeResult,
    IntakeSettings,
    Progress,
)
from smmt_core.errors import DataError

GRACE_S = 2.0  # how long a cancelled child may take to stop on its own before it is terminated


def _child(path: str, settings: dict, cache_root: str, picture: bool, messages, stop) -> None:
    import os

    from smmt_core.data.intake.pipeline import run_intake
    from smmt_core.device import configure_worker_process
    from smmt_core.errors import SMMTError

    configure_worker_process(os.cpu_count() or 1)  # before deepbet imports torch
    try:
        result = run_intake(path, IntakeSettings(**settings), cache=IntakeCache(cache_root), picture=picture,
                            progress=lambda step, state, detail: messages.put(("progress", (step, state, detail))),
                            stop=stop)
    except IntakeCancelled:
        messages.put(("cancelled", None))
    except SMMTError as error:
        messages.put(("error", str(error)))
    except Exception as error:  # noqa: BLE001 - a library failing on a strange image: one line back
        messages.put(("error", f"{path}: {type(error).__name__}: {error}"))
    else:
        messages.put(("result", {**result.to_dict(), "from_cache": result.from_cache}))


def run_intake_in_child(path, settings: IntakeSettings | None = None, *, cache: IntakeCache | None = None,
                        progress: Progress | None = None, stop=None, picture: bool = True,
                        poll_s: float = 0.1) -> IntakeResult:
    """`run_intake` in a spawned child process; same arguments, same result and errors.

    `stop` (a threading.Event) is polled every `poll_s`; once set, the child is asked to stop and
    terminated after `GRACE_S`, and IntakeCancelled is raised.
    """
    settings = settings or IntakeSettings()
    cache = cache if cache is not None else IntakeCache()
    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    child_stop = context.Event()
    process = context.Process(target=_child, args=(str(path), settings.to_dict(), str(cache.root), picture,
                                                   messages, child_stop), daemon=True, name="smmt-intake")
    process.start()
    cancelled_at = None
    try:
        while True:
            try:
                kind, value = messages.get(timeout=poll_s)
            except queue_module.Empty:
                if stop is not None and stop.is_set():
                    child_stop.set()
                    cancelled_at = cancelled_at or time.monotonic()
                    if time.monotonic() - cancelled_at > GRACE_S:
                        process.terminate()
                        raise IntakeCancelled(path) from None
                if not process.is_alive() and messages.empty():
                    raise DataError(f"the intake process ended unexpectedly (exit code {process.exitcode})", path) from None
                continue
            if kind == "progress":
                if progress is not None:
                    progress(*value)
            elif kind == "result":
                folder = Path(value["t1_mni"]).parent
                result = IntakeResult.from_dict(value, folder=folder)
                result.from_cache = bool(value.get("from_cache"))
                return result
            elif kind == "cancelled":
                raise IntakeCancelled(path)
            else:
                raise DataError(str(value))  # the child's one line (it already names the file)
    finally:
        process.join(timeout=GRACE_S)
        if process.is_alive():
            process.terminate()
            process.join()
        messages.close()
        messages.join_thread()

