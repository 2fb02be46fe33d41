"""The prediction panel: class probabilities, the modalities used, each one's contribution,
and the modality switches that re-run the prediction without a modality.

It only draws `smmt_core.predict.Prediction` objects and reports which modalities the user has
switched on (`modalities_changed`); the main window runs the prediction on a worker thread.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QGroupBox,
    QLabel,
    QProgressBar,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from smmt_core.modalities import MODALITY_NAMES
from smmt_gui import strings

CLASS_COLOURS = {"CN": "#2e9e6b", "MCI": "#d89c1a", "AD": "#c8453b"}


def _help_label(text: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName("helpLabel")
    label.setWordWrap(True)
    return label


class PredictionPanel(QWidget):
    """Shows one prediction; the checkboxes switch modalities on and off."""

    modalities_changed = Signal(object)  # set[str] of the modalities switched on

    def __init__(self, parent=None):
        super().__init__(parent)
        self.prediction = None
        self.classes: list[str] = []
        self.available: set[str] = set(MODALITY_NAMES)  # what the subject has
        self.model_modalities: set[str] = set(MODALITY_NAMES)  # what the model was trained with

        self.synthetic_badge = QLabel(strings.SYNTHETIC_BADGE)
        self.synthetic_badge.setObjectName("syntheticBadge")
        self.synthetic_badge.setToolTip(strings.SYNTHETIC_TOOLTIP)
        self.synthetic_badge.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.synthetic_badge.setVisible(False)
        self.model_label = QLabel(strings.PRED_NEED_MODEL)
        self.model_label.setObjectName("modelLabel")
        self.model_label.setWordWrap(True)
        self.title = QLabel(strings.PRED_NONE)
        self.title.setObjectName("predictionTitle")
        self.title.setWordWrap(True)
        self.busy_label = QLabel("")
        self.busy_label.setObjectName("busyLabel")

        self.prob_box = QGroupBox(strings.PRED_PROBABILITIES)
        self.prob_layout = QVBoxLayout(self.prob_box)
        self.prob_bars: dict[str, QProgressBar] = {}

        toggles = QGroupBox(strings.PRED_MODALITIES)
        toggle_layout = QVBoxLayout(toggles)
        toggle_layout.addWidget(_help_label(strings.PRED_MODALITIES_HELP))
        self.toggles: dict[str, QCheckBox] = {}
        for name in MODALITY_NAMES:
            box = QCheckBox(strings.MODALITY_NAMES[name])
            box.setObjectName(f"toggle_{name}")
            box.setChecked(True)
            box.toggled.connect(self._on_toggled)
            toggle_layout.addWidget(box)
            self.toggles[name] = box
        self.used_label = QLabel("")
        self.used_label.setWordWrap(True)
        toggle_layout.addWidget(self.used_label)

        contrib_box = QGroupBox(strings.PRED_CONTRIBUTIONS)
        contrib_layout = QVBoxLayout(contrib_box)
        contrib_layout.addWidget(_help_label(strings.PRED_CONTRIBUTIONS_HELP))
        self.contrib_plot = pg.PlotWidget()
        self.contrib_plot.setBackground(None)
        self.contrib_plot.setMinimumHeight(110)
        self.contrib_plot.setMaximumHeight(150)
        self.contrib_plot.setMenuEnabled(False)
        self.contrib_plot.setMouseEnabled(x=False, y=False)
        self.contrib_plot.hideButtons()
        self.contrib_plot.getAxis("left").setTicks([[(i, strings.MODALITY_NAMES[m].split(" (")[0])
                                                     for i, m in enumerate(MODALITY_NAMES)]])
        self.contrib_plot.addLine(x=0, pen=pg.mkPen((120, 120, 120)))
        self.contrib_bars = pg.BarGraphItem(x0=np.zeros(3), y=np.arange(3), height=0.6, width=np.zeros(3),
                                            brushes=["#4a7fb5"] * 3)
        self.contrib_plot.addItem(self.contrib_bars)
        self.contrib_plot.getPlotItem().invertY(True)  # MRI first, as in the toggles above
        self.contrib_plot.setYRange(-0.6, 2.6, padding=0)
        self.contrib_text = QLabel("")
        self.contrib_text.setWordWrap(True)
        contrib_layout.addWidget(self.contrib_plot)
        contrib_layout.addWidget(self.contrib_text)

        self.warnings = QLabel("")
        self.warnings.setObjectName("warningsLabel")
        self.warnings.setWordWrap(True)

        line = QFrame()
        line.setFrameShape(QFrame.Shape.HLine)
        # The content scrolls when the dock is short (the log panel open, a small screen): squeezed
        # below its own minimum, the caption was drawn over the chart.
        content = QWidget()
        layout = QVBoxLayout(content)
        layout.addWidget(self.synthetic_badge)
        layout.addWidget(self.model_label)
        layout.addWidget(line)
        layout.addWidget(self.title)
        layout.addWidget(self.busy_label)
        layout.addWidget(self.prob_box)
        layout.addWidget(toggles)
        layout.addWidget(contrib_box)
        layout.addWidget(self.warnings)
        layout.addStretch(1)
        self.scroll = QScrollArea()
        self.scroll.setWidget(content)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.scroll)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        self._update_toggle_states()

    # --- state from the main window -------------------------------------------------------------
    def set_model(self, name: str | None, classes: list[str] | None = None, *, synthetic: bool = False,
                  modalities: list[str] | None = None) -> None:
        self.classes = list(classes or [])
        self.model_modalities = set(modalities or MODALITY_NAMES)
        self.model_label.setText(f"{strings.MODEL_LABEL} {name}" if name else strings.PRED_NEED_MODEL)
        self.synthetic_badge.setVisible(bool(synthetic))
        self._build_bars()
        self._update_toggle_states()
        if not name:
            self.clear()

    def set_subject(self, subject_id: str | None, available: set[str] | None) -> None:
        """A new subject: switches go back on for what it has, the old prediction goes."""
        self.available = set(available) if available is not None else set(MODALITY_NAMES)
        for name, box in self.toggles.items():
            box.blockSignals(True)
            box.setChecked(name in self.available)
            box.blockSignals(False)
        self._update_toggle_states()
        self.prediction = None
        self.title.setText(subject_id or strings.PRED_NEED_SUBJECT)
        self._mark_guess(False)
        self._show_probabilities({})
        self._show_contributions({})
        self.used_label.setText("")
        self.warnings.setText("")

    def clear(self) -> None:
        self.prediction = None
        self.title.setText(strings.PRED_NONE)
        self._mark_guess(False)
        self._show_probabilities({})
        self._show_contributions({})
        self.used_label.setText("")
        self.warnings.setText("")

    def show_nothing_to_predict(self) -> None:
        """Every modality is off: no class, no probabilities, and say why."""
        self.prediction = None
        self.busy_label.setText("")
        self.title.setText(strings.PRED_NOTHING_TO_PREDICT)
        self._mark_guess(False)
        self._show_probabilities({})
        self._show_contributions({})
        self.used_label.setText(strings.PRED_NONE_USED)
        self.warnings.setText("")

    def set_busy(self, busy: bool) -> None:
        self.busy_label.setText(strings.PRED_UPDATING if busy else "")

    def set_error(self, message: str) -> None:
        self.busy_label.setText("")
        self.warnings.setText(message)

    def enabled_modalities(self) -> set[str]:
        return {name for name, box in self.toggles.items() if box.isChecked() and box.isEnabled()}

    def switched_off(self, modalities_used) -> list[str]:
        """The modalities the subject has and the model takes that the user switched off."""
        usable = self.available & self.model_modalities
        return [m for m in MODALITY_NAMES if m in usable and m not in modalities_used]

    def set_prediction(self, prediction) -> None:
        """Draw a `Prediction` (probabilities, modalities used, contributions, warnings)."""
        self.prediction = prediction
        self.busy_label.setText("")
        if list(prediction.probabilities) != self.classes:
            self.classes = list(prediction.probabilities)
            self._build_bars()
        label = strings.LABEL_NAMES.get(prediction.prediction, prediction.prediction)
        if prediction.borderline:  # too close to call: never shown as a diagnosis
            label = strings.PRED_BORDERLINE.format(label=prediction.prediction)
        self.title.setText(strings.PRED_TITLE.format(subject=prediction.subject_id, label=label))
        self._show_probabilities(prediction.probabilities, prediction.prediction)
        used = [strings.MODALITY_NAMES.get(m, m).split(" (")[0] for m in prediction.modalities_used]
        self.used_label.setText(strings.PRED_USED.format(used=", ".join(used)) if used else strings.PRED_NONE_USED)
        self._show_contributions(prediction.contributions)
        self._mark_guess(bool(prediction.guess_note) or prediction.borderline)
        notes = [strings.PRED_GUESS_NOTE.format(note=prediction.guess_note)] if prediction.guess_note else []
        if prediction.ensemble:  # a seed ensemble: how much its members disagree on the shown class
            spread = prediction.ensemble["spread"].get(prediction.prediction, float("nan"))
            notes.append(strings.PRED_ENSEMBLE.format(n=prediction.ensemble["members"], spread=spread * 100))
        self.warnings.setText("\n".join(notes + [f"⚠ {w}" for w in prediction.warnings]))
        self.synthetic_badge.setVisible(self.synthetic_badge.isVisible() or bool(prediction.synthetic_model))

    # --- drawing --------------------------------------------------------------------------------
    def _mark_guess(self, guess: bool) -> None:
        """A guess must not look like a finding: the class label loses its bold and turns grey
        (style.qss: QLabel#predictionTitle[guess="true"]) while the at-chance note is shown."""
        if self.title.property("guess") != guess:
            self.title.setProperty("guess", guess)
            self.title.style().unpolish(self.title)
            self.title.style().polish(self.title)

    def _build_bars(self) -> None:
        for bar in self.prob_bars.values():
            self.prob_layout.removeWidget(bar)
            bar.deleteLater()
        self.prob_bars = {}
        for name in self.classes:
            bar = QProgressBar()
            bar.setObjectName(f"prob_{name}")
            bar.setRange(0, 1000)
            bar.setValue(0)
            bar.setFormat(f"{name}  –")
            bar.setStyleSheet(f"QProgressBar::chunk {{ background-color: {CLASS_COLOURS.get(name, '#4a7fb5')}; }}")
            self.prob_layout.addWidget(bar)
            self.prob_bars[name] = bar

    def _show_probabilities(self, probabilities: dict, predicted: str | None = None) -> None:
        for name, bar in self.prob_bars.items():
            p = probabilities.get(name)
            if p is None or not math.isfinite(p):
                bar.setValue(0)
                bar.setFormat(f"{name}  –")
            else:
                bar.setValue(int(round(p * 1000)))
                mark = "  ◀" if name == predicted else ""
                bar.setFormat(f"{name}  {p * 100:.1f}%{mark}")

    def _show_contributions(self, contributions: dict) -> None:
        values = np.array([contributions.get(m, float("nan")) for m in MODALITY_NAMES], dtype=float)
        widths = np.where(np.isfinite(values), values, 0.0)
        brushes = ["#4a7fb5" if v >= 0 else "#c8453b" for v in widths]
        self.contrib_bars.setOpts(x0=np.minimum(widths, 0.0), width=np.abs(widths), brushes=brushes)
        span = float(np.max(np.abs(widths))) if widths.size and np.any(widths) else 1.0
        self.contrib_plot.setXRange(-span * 1.1, span * 1.1, padding=0)
        parts = []
        for m, v in zip(MODALITY_NAMES, values):
            name = strings.MODALITY_NAMES[m].split(" (")[0]
            parts.append(f"{name}: {v:+.2f}" if math.isfinite(v) else f"{name}: –")
        self.contrib_text.setText(" · ".join(parts) if contributions else "")

    def _update_toggle_states(self) -> None:
        for name, box in self.toggles.items():
            usable = name in self.available and name in self.model_modalities
            box.setEnabled(usable)
            if name not in self.available:
                box.setToolTip(strings.PRED_MISSING)
            elif name not in self.model_modalities:
                box.setToolTip("the model was trained without it")
            else:
                box.setToolTip("")

    def _on_toggled(self, _checked: bool) -> None:
        self.modalities_changed.emit(self.enabled_modalities())
