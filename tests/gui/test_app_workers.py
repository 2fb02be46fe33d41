"""The worker base: results, errors and progress arrive in the GUI thread; stop is cooperative."""

from __future__ import annotations

import threading
import time

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
    t0 = time.perf_counter()
    assert worker.stop_and_wait(3000)
    assert time.perf_counter() - t0 < 1.0
    qtbot.waitUntil(worker.is_done, timeout=2000)
    assert worker.value == "stopped"


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
