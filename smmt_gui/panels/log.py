"""The log panel: what `smmt_core` (and the app) log, shown live in the window.

A `logging.Handler` may be called from any thread (training runs on a worker), so it only emits
a Qt signal; the text is appended in the GUI thread. The handler is removed when the panel goes,
so a closed window never receives log records.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QPlainTextEdit, QVBoxLayout, QWidget

LOGGERS = ("smmt_core", "smmt_gui")
FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class _Emitter(QObject):
    record = Signal(str)


class QtLogHandler(logging.Handler):
    """Formats records and hands them to the GUI thread through a queued signal."""

    def __init__(self, level=logging.INFO):
        super().__init__(level)
        self.emitter = _Emitter()
        self.setFormatter(logging.Formatter(FORMAT, "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.emitter.record.emit(self.format(record))
        except RuntimeError:  # the Qt side is already gone (app closing)
            pass


class LogPanel(QWidget):
    """Read-only, bounded text view of the log."""

    MAX_LINES = 5000

    def __init__(self, parent=None, loggers=LOGGERS, level=logging.INFO):
        super().__init__(parent)
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setMaximumBlockCount(self.MAX_LINES)
        self.text.setFont(QFont("monospace", 9))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.text)
        self.handler = QtLogHandler(level)
        self.handler.emitter.record.connect(self.append)
        self._loggers = [logging.getLogger(name) for name in loggers]
        for logger in self._loggers:
            logger.addHandler(self.handler)
            if logger.getEffectiveLevel() > level:
                logger.setLevel(level)

    def append(self, line: str) -> None:
        self.text.appendPlainText(line)

    def detach(self) -> None:
        """Stop receiving log records (called when the window closes)."""
        for logger in self._loggers:
            logger.removeHandler(self.handler)

    def lines(self) -> list[str]:
        return self.text.toPlainText().splitlines()
