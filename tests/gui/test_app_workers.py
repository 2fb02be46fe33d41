"""The worker base: results, errors and progress arrive in the GUI thread; stop is cooperative."""

from __future__ import annotations

import threading
import time

import pytest
from PySide6.QtCore import QThread

from smmt_core.errors import DataError
from smmt_gui.workers import FunctionWorker, TrainingWorker, live_workers


def test_result_and_progress_arrive_in_gui_thread(qtbot):
    seen = {}
    gui_thread = QThread.currentThread()

    def job(n, report):
        seen["job_thread"] = threading.current_thread().name
        for i in range(n):
            report(i + 1, n)
        return n * 2

    worker = FunctionWorker(job, 3, progress_kw="report")
    progress = []
    worker.progress.connect(lambda value: (progress.append(value), seen.setdefault("slot_thread", QThread.currentThread())))
    with qtbot.waitSignal(worker.finished, timeout=5000):
        worker.start()
    assert worker.value == 6
    assert progress == [(1, 3), (2, 3), (3, 3)]
    assert seen["slot_thread"] is gui_thread
    assert seen["job_thread"] != threading.main_thread().name
    assert worker.is_done() and not worker.is_running()
    assert live_workers() == []


def test_error_is_one_line_naming_the_problem(qtbot):
    def job():
        raise DataError("not a 3D image", "/data/bad.nii")

    worker = FunctionWorker(job)
    errors = []
    worker.error.connect(errors.append)
    with qtbot.waitSignal(worker.finished, timeout=5000):
        worker.start()
    assert errors == ["/data/bad.nii: not a 3D image"]
    assert worker.value is None


def test_unexpected_error_names_its_type(qtbot):
    worker = FunctionWorker(lambda: 1 / 0)
    with qtbot.waitSignal(worker.error, timeout=5000) as blocker:
        worker.start()
    assert "ZeroDivisionError" in blocker.args[0]
    worker.wait()


def test_stop_flag_ends_a_long_job(qtbot):
    def job(stop):
        for _ in range(500):
            if stop.is_set():
                return "stopped"
            time.sleep(0.01)
        return "ran to the end"

    worker = FunctionWorker(job, stop_kw="stop")
    worker.start()
    qtbot.wait(30)
    assert worker.is_running()
    assert worker.stop_and_wait(30000)
    qtbot.waitUntil(worker.is_done, timeout=2000)
    assert worker.value == "stopped"  # it ended at the stop flag, not after its 500 steps


def test_training_worker_reemits_events(qtbot):
    def fake_train(config, on_event, stop):
        for epoch in range(3):
            on_event(("epoch", epoch))
        return {"config": config}

    worker = TrainingWorker("cfg", train_fn=fake_train)
    events, failures = [], []
    worker.event.connect(events.append)
    worker.failed.connect(failures.append)
    with qtbot.waitSignal(worker.finished, timeout=5000):
        worker.start()
    assert events == [("epoch", 0), ("epoch", 1), ("epoch", 2)]
    assert failures == [] and worker.value == {"config": "cfg"}


def test_leak_fixture_sees_started_threads(qtbot, no_dangling_qthreads):
    worker = FunctionWorker(lambda: None)
    with qtbot.waitSignal(worker.finished, timeout=5000):
        worker.start()
    assert len(no_dangling_qthreads) == 1


@pytest.fixture
def slow_thread_exit(monkeypatch):
    """Every worker's thread lingers 0.2 s after emitting QThread.finished (as on a loaded
    machine), which opens wide the window in which a `finished` slot could run while the thread
    is still alive. `runner.exited` is set at the very end of that linger."""
    from PySide6.QtCore import Qt

    from smmt_gui import workers

    class SlowExitRunner(workers._Runner):
        def start(self, *args):
            self.exited = threading.Event()

            def linger():
                time.sleep(0.2)
                self.exited.set()

            # connected last: runs in the thread after `finished` was queued to the GUI thread
            self.finished.connect(linger, Qt.ConnectionType.DirectConnection)
            super().start(*args)

    monkeypatch.setattr(workers, "_Runner", SlowExitRunner)


def test_finished_arrives_only_after_the_thread_has_ended(qtbot, slow_thread_exit):
    """QThread.finished fires from the thread before it exits; FunctionWorker.finished must come
    after the thread has really ended (joined), so its slots may drop the worker safely."""
    worker = FunctionWorker(lambda: None)
    seen = []
    worker.finished.connect(lambda: seen.append((worker._runner.exited.is_set(), worker.is_running())))
    with qtbot.waitSignal(worker.finished, timeout=5000):
        worker.start()
    assert seen == [(True, False)]


def test_dropping_the_last_reference_in_finished_is_safe(qtbot, slow_thread_exit):
    """An owner that lets go of its worker in a `finished` slot must not destroy a running QThread
    (Qt would abort the whole process with "Destroyed while thread is still running")."""
    import gc

    class Owner:
        def __init__(self):
            self.worker = FunctionWorker(lambda: sum(range(1000)))
            self.worker.finished.connect(self.release)
            self.released = False

        def release(self):
            self.worker = None  # the last reference to the worker and its QThread
            gc.collect()
            self.released = True

    owners = [Owner() for _ in range(5)]
    for owner in owners:
        owner.worker.start()
    qtbot.waitUntil(lambda: all(o.released for o in owners), timeout=10000)
    assert live_workers() == []


def test_a_started_worker_is_kept_alive_until_it_has_finished(qtbot):
    """Starting a worker and forgetting it is safe: it stays referenced until `finished`."""
    import gc

    release = threading.Event()
    results = []

    def job():
        release.wait(5)
        return "done"

    worker = FunctionWorker(job)
    worker.result.connect(results.append)
    worker.start()
    del worker
    gc.collect()
    assert [w.name for w in live_workers()] == ["job"]
    release.set()
    qtbot.waitUntil(lambda: results == ["done"], timeout=5000)
    qtbot.waitUntil(lambda: live_workers() == [], timeout=5000)
