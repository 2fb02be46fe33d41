"""Scans in parallel worker processes that stop within one scan and never outlive their caller.

`run_in_workers(items, work, workers=N, stop=event, on_result=...)` runs `work(item, stop)` for
each item in N spawned processes (spawned, not forked: torch and ITK threads do not survive a
fork). What `concurrent.futures.ProcessPoolExecutor` did not give `smmt preprocess` (with it, a
stopped command still started the queued scans, and a killed one left its workers behind):

* One item per worker at a time, nothing queued ahead: once `stop` is set (Ctrl-C or SIGTERM in
  the command) no new item starts. The items in flight are asked to stop through the workers'
  own event, which `run_intake` checks between its steps (nothing half-written reaches the
  cache); one that finishes meanwhile is still handed to `on_result`. A worker that has not
  answered `grace_s` after the stop is terminated.
* Workers never outlive the caller: they are ended before `run_in_workers` returns or raises
  (a second Ctrl-C, KeyboardInterrupt, ends them at once); and if the caller dies without
  cleaning up (SIGKILL, a crash), the kernel kills them (Linux: PR_SET_PDEATHSIG, set with
  ctypes), or elsewhere a thread in each worker notices that its parent changed. The death
  signal is tied to the thread that started the worker, which is the caller's thread; it lives
  as long as this function runs.
* A terminal's Ctrl-C reaches the whole process group: workers ignore SIGINT (it is blocked
  while they start, so even their start-up imports cannot be interrupted) and the caller
  decides. A worker's SIGTERM (from `terminate`) raises SystemExit, so the `finally` clauses of
  the work (a temporary folder) run when Python gets control back.
* A worker that dies (the out-of-memory killer) fails its item with one line and is replaced.

`work` and `initializer` must be picklable (module-level functions or `functools.partial` of
them); items and results are sent through pipes.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from contextlib import contextmanager

STOP_GRACE_S = 10.0  # after a stop: how long a scan in flight may take to reach its next step check
TERMINATE_GRACE_S = 3.0  # after SIGTERM: how long a worker may take to clean up before SIGKILL
POLL_S = 0.1  # how often the caller looks at `stop` while no worker answers
WATCH_PARENT_S = 1.0  # where the kernel cannot kill a worker with its parent: how often it checks

PR_SET_PDEATHSIG = 1


# ----------------------------------------------------------------------------------------------
# In the worker


def _raise_exit(signum, frame) -> None:
    raise SystemExit(128 + signum)


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(WATCH_PARENT_S)
        if os.getppid() != parent_pid:
            os._exit(1)


def die_with_parent(parent_pid: int) -> None:
    """End this process when `parent_pid` (its parent) dies: SIGKILL from the kernel on Linux,
    else a daemon thread that polls os.getppid(). Exits now when the parent is already gone."""
    armed = False
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        os._exit(1)
    if not armed:
        threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True, name="smmt-watch-parent").start()


def _worker_main(conn, stop, work, initializer, initargs, parent_pid: int) -> None:
    """One worker: items from `conn` until None or EOF; answers (index, "done" | "cancelled" |
    "error", value)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _raise_exit)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    die_with_parent(parent_pid)
    if initializer is not None:
        initializer(*initargs)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:  # done: leave without the interpreter's teardown (seconds with torch loaded)
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except (AttributeError, OSError, ValueError):
                    pass
            os._exit(0)
        index, item = task
        if stop.is_set():
            reply = (index, "cancelled", None)
        else:
            try:
                reply = (index, "done", work(item, stop))
            except Exception as error:  # noqa: BLE001 - one line back; a stopped item is not an error
                reply = (index, "cancelled", None) if stop.is_set() else (index, "error", _one_line(error))
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):
            return


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


# ----------------------------------------------------------------------------------------------
# In the caller


@contextmanager
def _start_signals_blocked():
    """SIGINT and SIGTERM blocked in this thread while a worker starts: the worker inherits the
    mask and unblocks them only once it ignores SIGINT. A signal for this process meanwhile stays
    pending and is delivered when the block ends (nothing is lost)."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class _Worker:
    def __init__(self, context, stop, work, initializer, initargs):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker_main, name="smmt-worker",
                                       args=(child, stop, work, initializer, initargs, os.getpid()))
        with _start_signals_blocked():
            self.process.start()
        child.close()
        self.task: tuple[int, object] | None = None

    def give(self, task) -> None:
        self.task = task
        self.conn.send(task)

    def answer(self):
        """(index, status, value) from the worker, or None when it died (its task failed)."""
        try:
            return self.conn.recv()
        except (EOFError, OSError):
            return None

    def close(self) -> None:
        try:
            self.conn.send(None)
        except (BrokenPipeError, OSError):
            pass


def _end(workers: list[_Worker], *, wait_s: float) -> None:
    """Every worker ended: idle ones leave on their own, busy or slow ones are terminated, then killed."""
    for w in workers:
        if w.task is None:
            w.close()
    deadline = time.monotonic() + wait_s
    for w in workers:
        if w.task is None:
            w.process.join(max(0.0, deadline - time.monotonic()))
    for w in workers:
        if w.process.is_alive():
            w.process.terminate()
    deadline = time.monotonic() + TERMINATE_GRACE_S
    for w in workers:
        w.process.join(max(0.0, deadline - time.monotonic()))
    for w in workers:
        if w.process.is_alive():
            w.process.kill()
            w.process.join()
    for w in workers:
        w.conn.close()
        w.process.close()


def run_in_workers(items: Iterable, work: Callable, *, workers: int, stop: threading.Event | None = None,
                   on_result: Callable[[object, object], None],
                   on_failure: Callable[[object, str], None] | None = None,
                   initializer: Callable | None = None, initargs: tuple = (),
                   grace_s: float = STOP_GRACE_S, poll_s: float = POLL_S) -> list:
    """`work(item, worker_stop)` for every item in `workers` processes; see the module doc.

    on_result(item, value) and on_failure(item, one line) are called in the caller's thread as
    each item ends (on_failure: `work` raised, or its worker died; None: failures are ignored).
    Returns the items that did not finish (empty unless `stop` was set): the ones abandoned in
    flight and the ones never started, in their original order.
    """
    pending = deque(enumerate(items))
    total = len(pending)
    context = multiprocessing.get_context("spawn")
    worker_stop = context.Event()
    finished: set[int] = set()
    everything = dict(pending)
    pool: list[_Worker] = []
    stopped_at: float | None = None
    clean = False
    try:
        for _ in range(max(0, min(workers, total))):
            pool.append(_Worker(context, worker_stop, work, initializer, initargs))
        while True:
            if stopped_at is None and stop is not None and stop.is_set():
                stopped_at = time.monotonic()
                worker_stop.set()  # the items in flight stop at their next step
            if stopped_at is None:
                for i, w in enumerate(pool):
                    if w.task is None and pending:
                        if not w.process.is_alive():  # died between items: a fresh one
                            _end([w], wait_s=0.0)
                            pool[i] = w = _Worker(context, worker_stop, work, initializer, initargs)
                        w.give(pending.popleft())
            busy = [w for w in pool if w.task is not None]
            if not busy or (stopped_at is not None and time.monotonic() - stopped_at > grace_s):
                break
            ready = multiprocessing.connection.wait([w.conn for w in busy] + [w.process.sentinel for w in busy],
                                                    timeout=poll_s)
            for w in busy:
                if w.conn not in ready and w.process.sentinel not in ready:
                    continue
                if w.conn.poll():
                    reply = w.answer()  # None: end of file, the worker died
                elif not w.process.is_alive():
                    reply = None
                else:
                    continue
                index, item = w.task
                w.task = None
                if reply is None:
                    w.process.join()
                    if stopped_at is None:
                        finished.add(index)
                        if on_failure is not None:
                            on_failure(item, f"the worker process ended unexpectedly (exit code {w.process.exitcode})")
                    continue
                _, status, value = reply
                if status == "done":
                    finished.add(index)
                    on_result(item, value)
                elif status == "error":
                    finished.add(index)
                    if on_failure is not None:
                        on_failure(item, value)
        clean = True
    finally:
        worker_stop.set()
        # A clean end waits briefly for idle workers to leave; anything else (an exception in the
        # caller, a second Ctrl-C, the grace after a stop run out) terminates them now.
        _end(pool, wait_s=TERMINATE_GRACE_S if clean else 0.0)
    return [everything[i] for i in range(total) if i not in finished]
