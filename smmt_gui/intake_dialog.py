"""A raw scan dropped on the app (DICOM folder or native-space NIfTI): progress per intake step,
Cancel, and at the end the QC picture beside the prediction.

Self-contained on purpose (the main window is being restructured): the window opens
`IntakeDialog(path, predict=...)` for a path that `needs_intake(path)` says is raw, and connects
`completed(result, prediction)`. The work runs in a `FunctionWorker` thread that supervises a child
process (`smmt_core.data.intake.child`), so the GUI never waits on deepbet or ANTs, and Cancel
stops even in the middle of a step. `predict(path)` runs in the same worker thread after a QC
pass or warn; it is never called for a scan that failed QC.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
)

from smmt_gui import strings
from smmt_gui.workers import FunctionWorker

log = logging.getLogger(__name__)

SHOWN_STEPS = ("convert", "brain", "bias", "register", "predict")


def needs_intake(path) -> bool:
    """True for a DICOM folder, or a T1 file that is not already a brain in MNI space (measured)."""
    from smmt_core.data.intake import dicom, qc
    from smmt_core.data.t1 import load_t1

    path = Path(path)
    if path.is_dir():
        return dicom.is_dicom_subject_folder(path)
    measures = qc.measure_input(load_t1(path))
    return not (measures.in_mni and measures.stripped)


def intake_then_predict(path, predict: Callable[[Path], Any] | None, settings=None, cache=None, *,
                        progress, stop):
    """The worker's job: the intake in a child process, then `predict(path)` unless QC failed.

    Returns (IntakeResult, prediction or None). Progress: (step, state, detail) tuples.
    """
    from smmt_core.data.intake import IntakeCancelled
    from smmt_core.data.intake.child import run_intake_in_child

    result = run_intake_in_child(path, settings, cache=cache, stop=stop, picture=True,
                                 progress=lambda step, state, detail: progress((step, state, detail)))
    if result.qc.verdict == "fail" or predict is None:
        progress(("predict", "skipped", "QC failed" if result.qc.verdict == "fail" else "no model"))
        return result, None
    if stop.is_set():
        raise IntakeCancelled(path)
    progress(("predict", "start", ""))
    prediction = predict(Path(path))
    progress(("predict", "done", ""))
    return result, prediction


class IntakeDialog(QDialog):
    """Progress per step, Cancel, then the QC picture and the prediction (see module doc)."""

    completed = Signal(object, object)  # IntakeResult, prediction (None after a QC failure)

    def __init__(self, path, predict: Callable[[Path], Any] | None = None, *, settings=None, cache=None,
                 parent=None):
        super().__init__(parent)
        self.path = Path(path)
        self.setWindowTitle(strings.INTAKE_TITLE.format(name=self.path.name))
        self.status: dict[str, QLabel] = {}
        grid = QGridLayout()
        for row, step in enumerate(SHOWN_STEPS):
            grid.addWidget(QLabel(strings.INTAKE_STEPS[step]), row, 0)
            self.status[step] = QLabel(strings.INTAKE_WAITING)
            grid.addWidget(self.status[step], row, 1)
        self.bar = QProgressBar()
        self.bar.setRange(0, 0)  # busy until the end: step times vary too much for a percentage
        self.picture = QLabel()
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.button = QPushButton(strings.INTAKE_CANCEL)
        self.button.clicked.connect(self._on_button)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.button)
        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addWidget(self.bar)
        layout.addWidget(self.picture)
        layout.addWidget(self.message)
        layout.addLayout(buttons)
        self.result = None
        self.prediction = None
        self._close_with: int | None = None
        self.worker = FunctionWorker(intake_then_predict, self.path, predict, settings, cache,
                                     progress_kw="progress", stop_kw="stop", name="intake", parent=self)
        self.worker.progress.connect(self._on_progress)
        self.worker.result.connect(self._on_result)
        self.worker.error.connect(self._on_error)
        self.worker.finished.connect(self._on_finished)

    def start(self) -> IntakeDialog:
        self.worker.start()
        return self

    # --- worker signals (GUI thread) -----------------------------------------------------------
    @Slot(object)
    def _on_progress(self, value) -> None:
        step, state, detail = value
        label = self.status.get(step)
        if label is None:
            return
        if state == "start":
            label.setText(strings.INTAKE_RUNNING)
        elif state == "done":
            label.setText(strings.INTAKE_FROM_CACHE if detail == "from cache" else strings.INTAKE_DONE)
        elif state == "skipped":
            label.setText(strings.INTAKE_SKIPPED.format(why=detail))

    @Slot(object)
    def _on_result(self, value) -> None:
        self.result, self.prediction = value
        qc = self.result.qc
        lines = [strings.INTAKE_QC.format(verdict=qc.verdict.upper(), score=qc.score)]
        if self.result.device:
            lines.append(strings.INTAKE_DEVICE.format(device=self.result.device))
        if qc.verdict == "fail":
            lines.append(strings.INTAKE_QC_FAILED.format(reason=qc.reason))
        elif self.prediction is not None:
            lines.append(describe_prediction(self.prediction))
        lines.extend(self.result.notes)
        self.message.setText("\n".join(lines))
        if self.result.picture is not None:
            lines.append(strings.INTAKE_QC_PICTURE.format(path=self.result.picture))
        for line in lines:  # the dialog closes; the log panel keeps what it said
            (log.warning if qc.verdict == "fail" else log.info)("%s: %s", self.path.name, line)
        if self.result.picture is not None:
            pixmap = QPixmap(str(self.result.picture))
            if not pixmap.isNull():
                self.picture.setPixmap(pixmap)
        self.completed.emit(self.result, self.prediction)

    @Slot(str)
    def _on_error(self, message: str) -> None:
        cancelled = self.worker.stop_event.is_set() and message.endswith("cancelled")
        self.message.setText(strings.INTAKE_CANCELLED if cancelled else message)

    @Slot()
    def _on_finished(self) -> None:
        if self._close_with is not None:
            super().done(self._close_with)
            return
        self.bar.setRange(0, 1)
        self.bar.setValue(1)
        self.button.setText(strings.INTAKE_CLOSE)
        self.button.setEnabled(True)

    # --- user ----------------------------------------------------------------------------------
    def _on_button(self) -> None:
        if self.worker.is_done() or not self.worker.is_running():
            self.accept()
            return
        self.worker.request_stop()
        self.button.setText(strings.INTAKE_CANCELLING)
        self.button.setEnabled(False)

    def done(self, code: int) -> None:
        """Esc, the close box, Close: a running job is asked to stop and the dialog closes once it
        has (within about two seconds, see smmt_core.data.intake.child), so the GUI never blocks."""
        if self.worker.is_running():
            self._close_with = code
            self.worker.request_stop()
            self.button.setText(strings.INTAKE_CANCELLING)
            self.button.setEnabled(False)
            return
        super().done(code)


def describe_prediction(prediction) -> str:
    """One line for a `smmt_core.predict` result (label and its probability); str() otherwise."""
    probabilities = getattr(prediction, "probabilities", None)
    label = getattr(prediction, "prediction", None)
    if isinstance(probabilities, dict) and label in probabilities:
        return strings.INTAKE_PREDICTION.format(label=label, p=float(probabilities[label]))
    return str(prediction)
