"""Run `smmt_core` jobs off the GUI thread and hand their results back as Qt signals.

Why this shape: widgets may only be touched from the GUI thread, and the event loop must never
stall. A job (load a subject, predict, train, build the demo cohort) runs in a `QThread`; whatever
it reports travels back through *queued* signals and is re-emitted by a `FunctionWorker` that
lives in the GUI thread, so every slot connected to a worker's public signals runs in the GUI
thread, whether it is a method or a lambda. Cancelling is cooperative: the job receives a
`threading.Event` and checks it between batches.

    worker = FunctionWorker(load_subject, path)
    worker.result.connect(show)            # called with the return value
    worker.error.connect(show_message)     # one line for the user
    worker.start()
    ...
    worker.request_stop(); worker.wait()   # e.g. in closeEvent

`TrainingWorker(config)` runs `smmt_core.train.child.train_in_child(config, on_event, stop)`: the
training itself runs in a child process (its own interpreter, so it never holds the GUI's
interpreter lock; CUDA works there), supervised by the worker thread, which re-emits every
training event through its `event` signal. Cancel and errors behave as with an in-process run;
the stop flag is one the child reads directly (`smmt_core.train.child.stop_flag`).

`JobRunner` is the main window's use of them: it starts each job, keeps it until it has finished
and says in the status bar what runs ("Loading…") until the job's result handler says what happened.
"""

from __future__ import annotations

import logging
import threading
import traceback
from typing import Any, Callable

from PySide6.QtCore import QObject, QThread, Signal, Slot

from smmt_core.errors import SMMTError
from smmt_gui import strings

log = logging.getLogger(__name__)

# Every worker that has been started and whose `finished` has not been delivered yet. A strong
# reference on purpose: a worker (and its QThread) must outlive its thread even when whoever
# started it has let go: a QThread destroyed while running takes the whole process down.
_LIVE: "set[FunctionWorker]" = set()


def live_workers() -> list["FunctionWorker"]:
    """Workers whose thread is still running (for closeEvent and tests)."""
    return [w for w in list(_LIVE) if w.is_running()]


def describe_error(error: BaseException) -> str:
    """One line for the user: our own errors as they are, anything else with its type."""
    if isinstance(error, SMMTError):
        return str(error)
    text = str(error) or error.__class__.__name__
    return f"Unexpected error ({error.__class__.__name__}): {text}"


class _Runner(QThread):
    """The thread itself. Its signals are emitted from the worker thread and arrive queued."""

    succeeded = Signal(object)
    failed = Signal(str)
    progressed = Signal(object)

    def __init__(self, job: Callable[[], Any]):
        super().__init__()
        self._job = job

    def run(self) -> None:  # runs in the worker thread
        try:
            value = self._job()
        except BaseException as error:  # noqa: BLE001 - every failure must reach the user
            if not isinstance(error, SMMTError):
                log.error("worker job failed:\n%s", traceback.format_exc())
            self.failed.emit(describe_error(error))
        else:
            self.succeeded.emit(value)


class FunctionWorker(QObject):
    """Runs `fn(*args, **kwargs)` on its own QThread.

    progress_kw / stop_kw: when given, the call also receives a progress callback
    (`fn(..., **{progress_kw: report})`, callable from any thread, each call emits `progress`)
    and the stop flag (`fn(..., **{stop_kw: threading.Event})`; `stop_event` may supply another
    flag with the same interface, e.g. one a child process can see).

    Signals (all delivered in the GUI thread):
      progress(object)  whatever the job reported
      result(object)    the return value, when the job succeeded
      error(str)        one line for the user, when it raised
      finished()        always last, once the thread has ended (joined: is_running() is False)
    """

    progress = Signal(object)
    result = Signal(object)
    error = Signal(str)
    finished = Signal()

    def __init__(
        self,
        fn: Callable[..., Any],
        *args: Any,
        progress_kw: str | None = None,
        stop_kw: str | None = None,
        name: str = "",
        parent: QObject | None = None,
        stop_event: Any = None,
        **kwargs: Any,
    ):
        super().__init__(parent)
        self.name = name or getattr(fn, "__name__", "job")
        self.stop_event = stop_event if stop_event is not None else threading.Event()
        self._fn, self._args, self._kwargs = fn, args, dict(kwargs)
        if progress_kw:
            self._kwargs[progress_kw] = self.report_progress
        if stop_kw:
            self._kwargs[stop_kw] = self.stop_event
        self._runner: _Runner | None = None
        self._done = False
        self.value: Any = None  # the result, once there is one
        self.error_message: str | None = None

    # --- called from the GUI thread -------------------------------------------------------
    def start(self) -> "FunctionWorker":
        if self._runner is not None:
            raise RuntimeError(f"worker {self.name!r} was already started")
        runner = _Runner(lambda: self._fn(*self._args, **self._kwargs))
        runner.setObjectName(f"smmt-worker-{self.name}")
        runner.succeeded.connect(self._on_succeeded)
        runner.failed.connect(self._on_failed)
        runner.progressed.connect(self._on_progress)
        runner.finished.connect(self._on_finished)
        self._runner = runner
        _LIVE.add(self)
        runner.start()
        return self

    def request_stop(self) -> None:
        """Ask the job to stop at its next check; returns at once."""
        self.stop_event.set()

    def is_running(self) -> bool:
        return self._runner is not None and self._runner.isRunning()

    def is_done(self) -> bool:
        """True once `finished` has been emitted."""
        return self._done

    def wait(self, timeout_ms: int | None = None) -> bool:
        """Block until the thread has ended (True) or the timeout passed (False)."""
        if self._runner is None:
            return True
        if timeout_ms is None:
            return bool(self._runner.wait())
        return bool(self._runner.wait(int(timeout_ms)))

    def stop_and_wait(self, timeout_ms: int | None = None) -> bool:
        self.request_stop()
        return self.wait(timeout_ms)

    # --- called from the worker thread ------------------------------------------------------
    def report_progress(self, *values: Any) -> None:
        """Progress callback for the job; several arguments arrive as one tuple."""
        runner = self._runner
        if runner is not None:
            runner.progressed.emit(values[0] if len(values) == 1 else values)

    # --- queued back into the GUI thread ----------------------------------------------------
    @Slot(object)
    def _on_progress(self, value: Any) -> None:
        self.progress.emit(value)

    @Slot(object)
    def _on_succeeded(self, value: Any) -> None:
        self.value = value
        self.result.emit(value)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.error_message = message
        self.error.emit(message)

    @Slot()
    def _on_finished(self) -> None:
        # QThread.finished is emitted from the thread just *before* it exits. Join it here (a
        # matter of microseconds) so that whoever drops the last reference to this worker in a
        # `finished` slot never destroys a QThread that is still running.
        if self._runner is not None:
            self._runner.wait()
        self._done = True
        _LIVE.discard(self)
        self.finished.emit()


class JobRunner(QObject):
    """Starts one window's jobs and keeps each until it has finished.

    While a job runs, the status bar says what it does (`busy`, e.g. "Loading…") until its result
    handler says what happened; a "Loading…" that nothing replaced gives way to "Ready" when the job
    ends. `closing()` says whether the window is closing: then nothing new starts, and the error of
    a job that was stopped is logged, not shown. `idle` is emitted when no job is left.
    """

    idle = Signal()

    def __init__(self, status_bar, report_error: Callable[[str], None], closing: Callable[[], bool],
                 parent: QObject | None = None):
        super().__init__(parent)
        self._status_bar, self._report_error, self._closing = status_bar, report_error, closing
        self._workers: list[FunctionWorker] = []
        self._busy_text: dict[FunctionWorker, str] = {}  # what the status bar says while each job runs

    def start(self, fn: Callable[..., Any], *args: Any, name: str, progress_kw: str | None = None,
              stop_kw: str | None = None, **handlers: Any) -> FunctionWorker:
        """Run `fn(*args)` on a new `FunctionWorker`; `handlers` are those of `start_worker`."""
        worker = FunctionWorker(fn, *args, progress_kw=progress_kw, stop_kw=stop_kw, name=name)
        return self.start_worker(worker, **handlers)

    def start_worker(self, worker: FunctionWorker, *, result=None, error=None, progress=None, finished=None,
                     busy: str = "") -> FunctionWorker:
        """Start `worker`: `result(value)`, `error(message)` (default: the window's message bar),
        `progress(value)`, then `finished(worker)` once it has ended, whatever the outcome."""
        if finished is not None:
            worker.finished.connect(lambda w=worker: finished(w))
        if self._closing():
            return worker
        if result is not None:
            worker.result.connect(result)
        report = error or self._report_error
        # A job that fails because the window stopped it while closing is not news to the user.
        worker.error.connect(lambda message, w=worker: (
            log.info("%s ended while closing: %s", w.name, message) if self._closing() else report(message)))
        if progress is not None:
            worker.progress.connect(progress)
        worker.finished.connect(lambda w=worker: self._on_finished(w))
        self._workers.append(worker)
        if busy:
            self._busy_text[worker] = busy
            self._status_bar.showMessage(busy)
        worker.start()
        return worker

    def is_busy(self) -> bool:
        return bool(self._workers)

    def _on_finished(self, worker: FunctionWorker) -> None:
        if worker in self._workers:
            self._workers.remove(worker)
        self._end_busy_text(worker)
        if not self._workers and not self._closing():
            self.idle.emit()

    def _end_busy_text(self, worker: FunctionWorker) -> None:
        """A job's "Loading…" must not outlive it: when nothing replaced it (its result handler
        normally says what happened) and no other job says the same, the status bar says so."""
        busy = self._busy_text.pop(worker, "")
        if not busy or self._closing() or self._status_bar.currentMessage() != busy:
            return
        if busy not in (self._busy_text.get(w) for w in self._workers):
            self._status_bar.showMessage(strings.STATUS_READY)


def _train(config, on_event, stop, abort=None):
    from smmt_core.train.child import train_in_child

    return train_in_child(config, on_event=on_event, stop=stop, abort=abort)


class TrainingWorker(FunctionWorker):
    """Trains one run: `train_in_child(config, on_event, stop)` supervised from a QThread
    (tests and benchmarks may inject an in-process `train_fn`).

    Signals (GUI thread): event(object) for each `smmt_core.train.events` event, result(RunResult),
    failed(str) / error(str) with one line for the user, finished() at the end.
    `request_stop()` ends the run after the batch in progress; `request_abort()` at once.
    """

    event = Signal(object)
    failed = Signal(str)

    def __init__(self, config, parent: QObject | None = None, train_fn: Callable | None = None):
        from smmt_core.train.child import stop_flag

        # Flags the training child reads directly: Cancel reaches it at once, not at the
        # supervisor's next poll, so the run stops after the batch in progress.
        self.abort_event = stop_flag()
        extra = {} if train_fn is not None else {"abort": self.abort_event}
        super().__init__(train_fn or _train, config, progress_kw="on_event", stop_kw="stop", name="training",
                         parent=parent, stop_event=stop_flag(), **extra)
        self.config = config
        self.progress.connect(self.event.emit)
        self.error.connect(self.failed.emit)

    def request_abort(self) -> None:
        """Stop at once, skipping what a stop would still do (the batch in progress, the test
        evaluation): for an app that is closing. Checkpoints of finished epochs stay."""
        self.abort_event.set()
        self.request_stop()
