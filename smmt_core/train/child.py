"""`train_in_child`: `train(config, on_event, stop)` run in a child process, same contract.

Why: a training thread inside the GUI process holds Python's interpreter lock for long stretches
(batch collation, metrics, checkpoints), and the GUI's event loop stalls 0.3-0.5 s a few times a
minute (issue 11.17). In a child process the training has its own interpreter; the calling thread
only moves events from a queue to `on_event`.

The contract is `train`'s: events arrive through `on_event` *in the calling thread*, setting `stop`
ends the run after the current batch (the child keeps its checkpoints and writes run.json), the
RunResult is returned, and a failure raises (TrainingError with the child's one-line message).
No orphan: the child is a daemon (ended when this process exits normally), a watchdog thread in
the child ends it when its parent dies (a crash, SIGKILL), and a child that does not end within
STOP_GRACE_S of a stop request is terminated. CUDA works in the child: the process is spawned,
never forked. Log records of the child are handled by this process's loggers.
"""

from __future__ import annotations

import logging
import logging.handlers
import multiprocessing as mp
import os
import queue as queue_module
import threading
import time

from smmt_core.errors import SMMTError, TrainingError

log = logging.getLogger(__name__)

STOP_GRACE_S = 120.0  # after a stop request: how long the batch in progress + checkpoint may take
POLL_S = 0.05  # how often the supervisor looks at the stop flag and the child while the queue is quiet
WATCHDOG_S = 0.5  # how often the child checks that its parent still lives


def _watch_parent(parent_pid: int, stop) -> None:
    """In the child: when the parent is gone, stop the run, then leave hard (no orphan)."""
    while True:
        time.sleep(WATCHDOG_S)
        if os.getppid() != parent_pid:
            stop.set()
            time.sleep(10.0)  # let the batch in progress end and run.json be written
            os._exit(3)


def _child_main(config_dict: dict, events, stop, parent_pid: int) -> None:
    """The child process: train, sending ("event", e), then ("result", r) or ("error", text)."""
    threading.Thread(target=_watch_parent, args=(parent_pid, stop), daemon=True).start()
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(events)]
    root.setLevel(logging.INFO)
    try:
        from smmt_core.train.config import TrainConfig
        from smmt_core.train.trainer import train

        result = train(TrainConfig.from_dict(config_dict), on_event=lambda e: events.put(("event", e)), stop=stop)
    except BaseException as error:  # noqa: BLE001 - every failure must reach the parent as one line
        if isinstance(error, SMMTError):
            text = str(error)
        else:
            logging.getLogger(__name__).exception("training failed in the child process")
            text = f"Unexpected error ({error.__class__.__name__}): {error or error.__class__.__name__}"
        events.put(("error", text))
    else:
        events.put(("result", result))
    events.close()
    events.join_thread()  # everything is flushed to the pipe before the process exits


def train_in_child(config, on_event=None, stop: threading.Event | None = None):
    """Train `config` in a spawned child process; see the module docstring."""
    context = mp.get_context("spawn")
    events = context.Queue()
    child_stop = context.Event()
    process = context.Process(target=_child_main, args=(config.to_dict(), events, child_stop, os.getpid()),
                              name="smmt-training", daemon=True)
    process.start()
    outcome: tuple | None = None
    stop_sent_at: float | None = None
    try:
        while True:
            if stop is not None and stop.is_set() and stop_sent_at is None:
                child_stop.set()
                stop_sent_at = time.monotonic()
            try:
                item = events.get(timeout=POLL_S)
            except queue_module.Empty:
                if not process.is_alive():
                    try:  # the last items may have arrived just as the child ended
                        item = events.get(timeout=1.0)
                    except queue_module.Empty:
                        break
                elif stop_sent_at is not None and time.monotonic() - stop_sent_at > STOP_GRACE_S:
                    log.warning("the training process did not stop within %.0f s; terminating it", STOP_GRACE_S)
                    break
                else:
                    continue
            if isinstance(item, logging.LogRecord):
                logging.getLogger(item.name).handle(item)
            elif item[0] == "event":
                if on_event is not None:
                    on_event(item[1])
            else:
                outcome = item
                break
    finally:
        process.join(timeout=10.0)
        if process.is_alive():
            process.terminate()
            process.join(timeout=5.0)
        if process.is_alive():
            process.kill()
            process.join()
        exit_code = process.exitcode
        process.close()  # its pipe and sentinel, now
        events.close()
        events.join_thread()
    if outcome is None:
        raise TrainingError(f"the training process ended unexpectedly (exit code {exit_code})")
    if outcome[0] == "error":
        raise TrainingError(outcome[1])
    return outcome[1]
