"""`train_in_child`: `train(config, on_event, stop)` run in a child process, same contract.

Why: a training thread inside the GUI process holds Python's interpreter lock for long stretches
(batch collation, metrics, checkpoints), and the GUI's event loop stalls 0.3-0.5 s a few times a
minute. In a child process the training has its own interpreter; the calling thread
only moves events from a queue to `on_event`.

The contract is `train`'s: events arrive through `on_event` *in the calling thread*, setting `stop`
ends the run after the current batch (the child keeps its checkpoints, evaluates the best one on
the test set and writes run.json), the RunResult is returned, and a failure raises (TrainingError
with the child's one-line message). No orphan: the child is a daemon (ended when this process
exits normally), a watchdog thread in the child ends it when its parent dies (a crash, SIGKILL),
and a child that does not end within STOP_GRACE_S of a stop request is terminated. CUDA works in
the child: the process is spawned, never forked. Log records of the child are handled by this
process's loggers.

Stopping within one batch: pass a flag made by `stop_flag()` and the child sees it
the moment it is set (a threading.Event is forwarded by the supervisor within POLL_S). The
child's watchdog thread notes how many batches were done when the flag arrived; the trainer's
StopSeen event reaches `on_event` with both counts, so a caller (a test, the benchmark) can check
that at most the batch in progress finished after the request.

Leaving at once (an app that is closing): setting `abort` as well (with `stop`)
interrupts the child's training where it is, as a second Ctrl-C does in `smmt train`: run.json
says "stopped" (error "interrupted"), the checkpoints of finished epochs stay, and what a stop
would still do (the batch in progress, the test evaluation of the best checkpoint, seconds on a
CPU) is skipped; `train_in_child` then raises TrainingError("interrupted").

A prompt end: once its outcome is on the pipe the child leaves with `os._exit`, skipping the
interpreter's teardown (seconds of garbage collection over torch's objects); the run folder is
complete by then. Everything the child sends is plain data from light modules (events,
RunResult), so the parent never imports torch to read it (that import took 5 s in the
supervising thread and held the GUI's interpreter lock).
"""

from __future__ import annotations

import _thread
import dataclasses
import logging
import logging.handlers
import multiprocessing as mp
import multiprocessing.synchronize
import os
import queue as queue_module
import signal
import sys
import threading
import time

from smmt_core.errors import SMMTError, TrainingError

log = logging.getLogger(__name__)

STOP_GRACE_S = 120.0  # after a stop request: how long the batch in progress + checkpoint may take
POLL_S = 0.05  # how often the supervisor looks at the stop flag and the child while the queue is quiet
WATCHDOG_S = 0.5  # how often the child checks that its parent still lives


class _Progress:
    """In the child: batches done so far, and how many were done when the stop flag arrived."""

    batches_done = 0
    batches_at_request: int | None = None


def _leave_if_orphaned(parent_pid: int, stop) -> None:
    """When the parent is gone: stop the run, let it write run.json, then leave hard (no orphan)."""
    if os.getppid() != parent_pid:
        stop.set()
        time.sleep(10.0)  # the batch in progress ends and run.json is written
        os._exit(3)


def _watch(parent_pid: int, stop, abort, progress: _Progress) -> None:
    """The child's watchdog thread: the parent's life, and the stop and abort flags (each wait
    wakes the moment its flag is set)."""
    while not stop.wait(WATCHDOG_S):  # training
        _leave_if_orphaned(parent_pid, stop)
    progress.batches_at_request = progress.batches_done
    while not abort.wait(WATCHDOG_S):  # stopping: the batch in progress, then the test evaluation
        _leave_if_orphaned(parent_pid, stop)
    _thread.interrupt_main()  # SIGINT's handler in the training (main) thread: KeyboardInterrupt, unless it has ended
    while True:
        time.sleep(WATCHDOG_S)
        _leave_if_orphaned(parent_pid, stop)


def _child_main(config_dict: dict, events, stop, abort, parent_pid: int) -> None:
    """The child process: train, sending ("event", e), then ("result", r) or ("error", text)."""
    from smmt_core.train.events import BatchProgress, RunFailed, RunFinished, StopSeen

    def interrupt_if_aborted(signum, frame) -> None:
        # The abort reaches the training thread as SIGINT (`_thread.interrupt_main`). Installed
        # explicitly: a launcher that ignores SIGINT (a background job) would otherwise disable the
        # abort; and a Ctrl-C in the terminal is for the app, not for its training process.
        if abort.is_set():
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt_if_aborted)
    progress = _Progress()
    threading.Thread(target=_watch, args=(parent_pid, stop, abort, progress), daemon=True).start()
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(events)]
    root.setLevel(logging.INFO)

    def send(event) -> None:
        if isinstance(event, BatchProgress):
            progress.batches_done = (event.epoch - 1) * event.batches_per_epoch + event.batch
        elif isinstance(event, StopSeen):  # the flag arrived no later than the loop saw it
            at_request = progress.batches_at_request
            event = dataclasses.replace(event, batches_at_request=event.batches_done if at_request is None else at_request)
        elif isinstance(event, (RunFinished, RunFailed)):
            # The run has ended and recorded how: a late abort must not cut short the sending of its outcome.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        events.put(("event", event))

    try:
        from smmt_core.train.config import TrainConfig
        from smmt_core.train.trainer import train

        result = train(TrainConfig.from_dict(config_dict), on_event=send, stop=stop)
    except KeyboardInterrupt:  # aborted (the trainer has written run.json and sent RunFailed)
        outcome = ("error", "interrupted")
    except BaseException as error:  # noqa: BLE001 - every failure must reach the parent as one line
        if isinstance(error, SMMTError):
            text = str(error)
        else:
            logging.getLogger(__name__).exception("training failed in the child process")
            text = f"Unexpected error ({error.__class__.__name__}): {error or error.__class__.__name__}"
        outcome = ("error", text)
    else:
        outcome = ("result", result)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # (a failure before the run began sends no RunFailed)
    events.put(outcome)
    events.close()
    events.join_thread()  # everything is flushed to the pipe before the process exits
    for stream in (sys.stdout, sys.stderr):  # None in a windowed (frozen) app
        if stream is not None:
            stream.flush()
    os._exit(0)  # the outcome is sent and the run folder complete: skip seconds of interpreter teardown


def stop_flag():
    """A flag that a training child sees the moment it is set (for `train_in_child`'s stop and abort)."""
    return mp.get_context("spawn").Event()


def train_in_child(config, on_event=None, stop=None, abort=None):
    """Train `config` in a spawned child process; see the module docstring.

    stop, abort: `stop_flag()`s (seen by the child at once) or threading.Events (forwarded within
    POLL_S). Set `stop` to end the run after the batch in progress; set `abort` too to interrupt it.
    """
    context = mp.get_context("spawn")
    events = context.Queue()
    # (the caller's flag, the child's): a stop_flag() is the child's own; a threading.Event is forwarded
    flags = [(flag, flag if isinstance(flag, mp.synchronize.Event) else context.Event()) for flag in (stop, abort)]
    (_, child_stop), (_, child_abort) = flags
    process = context.Process(target=_child_main, args=(config.to_dict(), events, child_stop, child_abort, os.getpid()),
                              name="smmt-training", daemon=True)
    process.start()
    outcome: tuple | None = None
    stop_sent_at: float | None = None
    try:
        while True:
            for flag, child_flag in flags:
                if flag is not None and flag is not child_flag and flag.is_set():
                    child_flag.set()
            if child_abort.is_set():
                child_stop.set()  # an abort is a stop too (the child's watchdog waits for the stop first)
            if stop_sent_at is None and child_stop.is_set():
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
        if outcome is None and process.is_alive():  # on_event raised, or the child did not stop in time
            child_abort.set()
            child_stop.set()
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
