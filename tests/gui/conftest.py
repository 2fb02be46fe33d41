"""GUI test fixtures: every test runs offscreen, with its own settings, and must not leak threads.

`no_dangling_qthreads` (autouse) records every QThread a test starts and FAILS the test when one
is still running at teardown (after giving it a short grace period), the way napari does: a
thread left running would outlive the window that owns it and crash at interpreter exit.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import QCoreApplication, QSettings, QThread


@pytest.fixture(autouse=True)
def no_dangling_qthreads(monkeypatch):
    original_start = QThread.start
    started: list[QThread] = []

    def start_and_remember(self, *args, **kwargs):
        started.append(self)
        return original_start(self, *args, **kwargs)

    monkeypatch.setattr(QThread, "start", start_and_remember)
    yield started
    monkeypatch.undo()
    running = []
    for thread in started:
        try:
            if thread.isRunning() and not thread.wait(2000):
                running.append(thread.objectName() or repr(thread))
        except RuntimeError:  # the C++ object is already gone: the thread ended and was deleted
            continue
    started.clear()
    if running:
        pytest.fail(f"test left QThreads running: {', '.join(running)}", pytrace=False)


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path, monkeypatch):
    """QSettings in a temporary folder, so tests never read or write the user's settings."""
    monkeypatch.setenv("SMMT_SETTINGS_DIR", str(tmp_path / "settings"))
    monkeypatch.setenv("SMMT_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("SMMT_DEMO_DIR", str(tmp_path / "demo-cohort"))
    monkeypatch.setenv("SMMT_CACHE_DIR", str(tmp_path / "cache"))
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    QCoreApplication.setOrganizationName("smmt-studio-tests")
    QCoreApplication.setApplicationName("smmt-studio-tests")
    yield


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """(cohort root, run folder) of one tiny model trained once per test session (a few seconds)."""
    from tests.core.c1_support import shared_tiny_run

    cohort, run_dir, _cache = shared_tiny_run(tmp_path_factory)
    return cohort, run_dir


@pytest.fixture
def main_window(qtbot):
    """A main window that does not scan the user's runs folder; closed (workers joined) at teardown."""
    from smmt_gui.main_window import MainWindow

    window = MainWindow(scan_runs=False)
    qtbot.addWidget(window)
    window.resize(1200, 800)
    # The device check starts after the window's first event-loop turn and imports torch (seconds in
    # a fresh process, and it cannot be stopped): the tests begin once it has answered.
    qtbot.waitUntil(lambda: window.session.cuda_available is not None, timeout=60_000)
    yield window
    window.close()


@pytest.fixture
def loaded(main_window, qtbot, tiny_run):
    """The window with the tiny model loaded and its BIDS cohort open on the first subject."""
    cohort, run_dir = tiny_run
    with qtbot.waitSignal(main_window.model_loaded, timeout=60000):
        main_window.load_model(run_dir)
    with qtbot.waitSignal(main_window.prediction_shown, timeout=60000):
        main_window.open_path(cohort)
    qtbot.waitUntil(lambda: not main_window.is_busy(), timeout=30000)
    return main_window
