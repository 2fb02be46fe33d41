"""How the main window closes: the GUI thread never waits for a job, and no thread outlives the window.

The first close request asks every job of the app to stop (training and robustness included, at
once) and returns. While a job is still winding down (a batch, a subject being written) the window
stays open with its controls disabled, says "stopping…" and which jobs it waits for, and closes
itself as soon as the last one has ended; further close requests meanwhile change nothing. Kept
apart from the window because it is one protocol with its own timer, whatever the window shows.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer

from smmt_gui import strings
from smmt_gui.workers import live_workers

CLOSE_POLL_MS = 50  # while "stopping…", how often the window checks whether the jobs have ended


def running_jobs() -> list[str]:
    """Names of the jobs whose thread is still running (any worker of the app)."""
    return [worker.name for worker in live_workers()]


class WindowCloser(QObject):
    """The closing protocol of one main window; its `closeEvent` asks `may_close()`."""

    def __init__(self, window):
        super().__init__(window)
        self._window = window
        self._timer: QTimer | None = None  # polls the jobs while the window is "stopping…"
        self.closed = False  # set once the window may really close (every job had ended)

    def may_close(self) -> bool:
        """True when every job has ended: the window closes now. Otherwise the jobs were asked to
        stop, the window says "stopping…", and it is closed again once they have ended."""
        if not self._window.session.closing:
            self._stop_all_jobs()
        running = running_jobs()
        if running:
            self._show_stopping(running)
            return False
        if self._timer is not None:
            self._timer.stop()
        self.closed = True
        return True

    def _stop_all_jobs(self) -> None:
        window = self._window
        window.session.begin_closing()
        window.statusBar().showMessage(strings.STATUS_STOPPING)
        window.statusBar().repaint()  # visible at once, without running the event loop from here
        for panel in (window.dashboard, window.robustness):
            stop = getattr(panel, "stop_now", None) or getattr(panel, "cancel", None)  # training: at once
            if stop is not None:
                stop()
        # Every worker of the app, not only this window's: none may outlive the window.
        for worker in live_workers():
            worker.request_stop()

    def _show_stopping(self, running: list[str]) -> None:
        window = self._window
        text = f"{strings.STATUS_STOPPING} ({', '.join(sorted(set(running)))})"
        if window.message_bar.text() != text:
            window.message_bar.show_message(text, error=False)
            window.statusBar().showMessage(text)
        # Nothing new may start (no menu, toolbar, shortcut or button); the message bar stays readable.
        for widget in (window.menuBar(), window.toolbar, window.tabs, window.cohort_dock, window.prediction_dock):
            widget.setEnabled(False)
        for action in window.actions():
            action.setEnabled(False)
        if self._timer is None:
            self._timer = QTimer(self)
            self._timer.setInterval(CLOSE_POLL_MS)
            self._timer.timeout.connect(self._close_when_stopped)
        self._timer.start()

    def _close_when_stopped(self) -> None:
        running = running_jobs()
        if running:
            self._show_stopping(running)
        else:
            self._timer.stop()
            self._window.close()
