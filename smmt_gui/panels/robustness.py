"""The robustness view: how the loaded run's test accuracy holds up when modalities go missing.

Why: SMMT's selling point is that masking during training makes the model tolerate incomplete
data. This panel shows it for the user's own run, on that run's held-out test subjects:
left, one bar per subset of {MRI, clinical, categorical} the model is given (no masking);
right, accuracy against the test-time mask ratio with all modalities (mean ± SD over repeats).
A dashed line marks what guessing achieves (the majority-class rate for accuracy, 1/classes for
balanced accuracy), so a bar at that line means the model has learnt nothing from those inputs.

The numbers come from `smmt_core.train.robustness.evaluate_robustness`, run on a worker thread
with progress and Cancel. Computing starts when the panel is visible (set_run on a hidden tab
only remembers the run), and results are kept per run folder, so switching models back and forth
costs nothing. Every text it shows is in `smmt_gui.strings` (the ROBUSTNESS_* section).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from smmt_core.modalities import ALL_NAME, DEFAULT_MASK_RATIOS, modality_subsets, subset_name
from smmt_gui import strings
from smmt_gui.panels.training import styled_plot, title_label
from smmt_gui.workers import FunctionWorker

BAR_COLOURS = {3: "#0072B2", 2: "#56B4E9", 1: "#A6CEE3"}  # by number of modalities given
SWEEP_COLOUR = "#D55E00"


def subset_label(name: str, short: bool = False) -> str:
    """'mri+clinical' -> 'MRI+Clin'; all three -> 'All (MRI+Clin+Cat)', or 'All' when `short`."""
    text = "+".join(strings.ROBUSTNESS_SHORT_NAMES.get(part, part) for part in name.split("+"))
    if name == ALL_NAME:
        return strings.ROBUSTNESS_ALL if short else strings.ROBUSTNESS_ALL_LONG.format(names=text)
    return text


def _plot(title: str, x_label: str) -> pg.PlotWidget:
    """The dashboard's plot style, fixed to the 0..1 range of a metric (no zoom or pan)."""
    plot = styled_plot(title, "", x_label)
    plot.showGrid(x=False, y=True, alpha=0.2)
    plot.setMouseEnabled(x=False, y=False)
    plot.setYRange(0, 1.05, padding=0)
    plot.setMinimumHeight(180)
    return plot


class RobustnessPanel(QWidget):
    """`set_run(run_dir)` then, once visible, scores the run's test set; `computed(DataFrame)` at the end."""

    computed = Signal(object)  # the DataFrame
    failed = Signal(str)
    busy_changed = Signal(bool)

    def __init__(self, parent=None, evaluate_fn: Callable | None = None,
                 mask_ratios=DEFAULT_MASK_RATIOS, device: str | None = None):
        super().__init__(parent)
        self._evaluate_fn = evaluate_fn  # None: smmt_core.train.robustness.evaluate_robustness
        self.mask_ratios = tuple(mask_ratios)
        self._device = device
        self.run_dir: Path | None = None
        self.frame: pd.DataFrame | None = None
        self._results: dict[Path, pd.DataFrame] = {}
        self._attempted: set[Path] = set()  # computed automatically at most once per run; then on request
        self._worker: FunctionWorker | None = None
        self._subset_names = [subset_name(s) for s in modality_subsets()]
        self._build_ui()
        self._show_empty()

    # --- layout -------------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        self.title_label = title_label()
        self.title_label.setText(strings.ROBUSTNESS_TITLE_NONE)
        self.metric_combo = QComboBox()
        for key, text in strings.ROBUSTNESS_METRICS:
            self.metric_combo.addItem(text, key)
        self.metric_combo.currentIndexChanged.connect(lambda _index: self._draw())
        self.compute_button = QPushButton(strings.ROBUSTNESS_COMPUTE)
        self.compute_button.clicked.connect(self._compute_clicked)
        self.progress_bar = QProgressBar()
        self.progress_bar.setTextVisible(False)
        self.progress_bar.setMaximumHeight(12)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)

        header = QHBoxLayout()
        header.addWidget(self.title_label, 1)
        header.addWidget(QLabel(strings.ROBUSTNESS_SHOW))
        header.addWidget(self.metric_combo)
        header.addWidget(self.compute_button)

        # Left: one bar per modality subset (created once; heights set later).
        self.subset_plot = _plot(*strings.ROBUSTNESS_PLOT_SUBSETS)
        n = len(self._subset_names)
        x = np.arange(n, dtype=float)
        brushes = [BAR_COLOURS[len(name.split("+"))] for name in self._subset_names]
        self.bars = pg.BarGraphItem(x=x, height=np.zeros(n), width=0.65, brushes=brushes, pen=pg.mkPen(None))
        self.subset_plot.addItem(self.bars)
        # One modality per line: "MRI+ClinMRI+Cat" ran together on one line.
        ticks = [(i, subset_label(name, short=True).replace("+", "\n+"))
                 for i, name in enumerate(self._subset_names)]
        self.subset_plot.getAxis("bottom").setTicks([ticks])
        self.subset_plot.setXRange(-0.6, n - 0.4, padding=0)
        self.bar_labels = []
        for i in range(n):
            label = pg.TextItem("", anchor=(0.5, 1), color="k")
            label.setPos(i, 0)
            self.subset_plot.addItem(label)
            self.bar_labels.append(label)
        self.subset_chance = pg.InfiniteLine(angle=0, pen=pg.mkPen((120, 120, 120), width=1, style=Qt.PenStyle.DashLine))
        self.subset_plot.addItem(self.subset_chance)

        # Right: the mask-ratio sweep with all modalities.
        self.sweep_plot = _plot(*strings.ROBUSTNESS_PLOT_SWEEP)
        self.sweep_plot.setXRange(-0.02, 0.92, padding=0)
        self.sweep_errors = pg.ErrorBarItem(x=np.zeros(0), y=np.zeros(0), height=np.zeros(0), beam=0.02,
                                            pen=pg.mkPen(SWEEP_COLOUR, width=1))
        self.sweep_plot.addItem(self.sweep_errors)
        self.sweep_curve = self.sweep_plot.plot(pen=pg.mkPen(SWEEP_COLOUR, width=2), symbol="o", symbolSize=7,
                                                symbolBrush=SWEEP_COLOUR)
        self.sweep_chance = pg.InfiniteLine(angle=0, pen=pg.mkPen((120, 120, 120), width=1, style=Qt.PenStyle.DashLine))
        self.sweep_plot.addItem(self.sweep_chance)
        self.chance_label = QLabel()
        self.chance_label.setStyleSheet("color: palette(mid);")

        plots = QWidget()
        plots_layout = QHBoxLayout(plots)
        plots_layout.setContentsMargins(0, 0, 0, 0)
        plots_layout.addWidget(self.subset_plot, 1)
        plots_layout.addWidget(self.sweep_plot, 1)

        self.table = QTableWidget(0, len(strings.ROBUSTNESS_TABLE_COLUMNS))
        self.table.setHorizontalHeaderLabels(strings.ROBUSTNESS_TABLE_COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setMinimumHeight(140)

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(plots)
        splitter.addWidget(self.table)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 1)
        splitter.setChildrenCollapsible(False)

        layout = QVBoxLayout(self)
        layout.addLayout(header)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.chance_label)

    # --- public API ------------------------------------------------------------------------------
    def set_run(self, run_dir) -> None:
        """Show the robustness of this run (None: no run). Computes now if visible, else when shown."""
        run_dir = Path(run_dir) if run_dir is not None else None
        if run_dir == self.run_dir and (self.frame is not None or self.is_running()):
            return
        self._abandon_worker()
        self.run_dir = run_dir
        self.frame = None
        self._rows: list[dict] = []  # rows of the computation in progress, drawn as they come
        if run_dir is None:
            self._show_empty()
            return
        self.title_label.setText(strings.ROBUSTNESS_TITLE_RUN.format(name=run_dir.name))
        self.compute_button.setEnabled(True)
        if run_dir in self._results:
            self._show_frame(self._results[run_dir])
        elif self.isVisible() and run_dir not in self._attempted:
            self.compute()
        else:
            self._clear_plots()
            self.compute_button.setText(strings.ROBUSTNESS_COMPUTE)
            self.status_label.setText(
                strings.ROBUSTNESS_STATUS_ASK if run_dir in self._attempted else strings.ROBUSTNESS_STATUS_WAITING
            )

    def compute(self) -> None:
        """Score the current run's test set on a worker thread (again, if it was done before)."""
        if self.run_dir is None or self.is_running():
            return
        self._results.pop(self.run_dir, None)
        self._attempted.add(self.run_dir)
        self.frame = None
        self._clear_plots()
        fn = self._evaluate_fn
        if fn is None:
            from smmt_core.train.robustness import evaluate_robustness as fn
        worker = FunctionWorker(_evaluate_job, fn, self.run_dir, self.mask_ratios, progress_kw="report",
                                stop_kw="stop", device=self._device, name="robustness")
        self._rows = []
        # Signals of a worker that was replaced (another run chosen) are ignored.
        worker.progress.connect(lambda value, w=worker: w is self._worker and self._on_progress(value))
        worker.result.connect(lambda frame, w=worker: w is self._worker and self._on_result(frame))
        worker.error.connect(lambda message, w=worker: w is self._worker and self._on_error(message))
        worker.finished.connect(lambda w=worker: w is self._worker and self._on_finished())
        self._worker = worker
        self.compute_button.setText(strings.ROBUSTNESS_CANCEL)
        self.progress_bar.setRange(0, 0)  # busy until the first progress report
        self.status_label.setStyleSheet("")
        self.status_label.setText(strings.ROBUSTNESS_STATUS_COMPUTING.format(done=0, total="?"))
        self.busy_changed.emit(True)
        worker.start()

    def cancel(self) -> None:
        if self._worker is not None:
            self._worker.request_stop()

    def _abandon_worker(self) -> None:
        """Stop the running computation without waiting: its signals are ignored from now on.

        The GUI thread never blocks on a model change; the worker ends at its next stop check and
        the main window still joins it on close (workers stay registered until they finish).
        """
        worker, self._worker = self._worker, None
        if worker is not None and worker.is_running():
            worker.request_stop()
            self.busy_changed.emit(False)

    def is_running(self) -> bool:
        """True while the worker thread is computing."""
        return self._worker is not None and self._worker.is_running()

    def stop_and_wait(self, timeout_ms: int | None = None) -> bool:
        """Cancel a running computation and block until its thread has ended (closeEvent, model change)."""
        worker = self._worker
        if worker is None:
            return True
        worker.request_stop()
        return worker.wait(timeout_ms)

    def metric_key(self) -> str:
        return self.metric_combo.currentData()

    # --- worker callbacks --------------------------------------------------------------------------
    def _on_progress(self, value) -> None:
        if value[0] == "row":  # a pass finished: draw its bar (or sweep point) now, not when every pass is done
            self._rows.append(value[1])
            self.frame = pd.DataFrame(self._rows)
            self._draw()
            return
        _, done, total = value
        self.progress_bar.setRange(0, max(1, int(total)))
        self.progress_bar.setValue(int(done))
        self.status_label.setText(strings.ROBUSTNESS_STATUS_COMPUTING.format(done=done, total=total))

    def _on_result(self, frame: pd.DataFrame) -> None:
        if not frame.attrs.get("stopped"):
            self._results[self.run_dir] = frame
        self._show_frame(frame)
        self.computed.emit(frame)

    def _on_error(self, message: str) -> None:
        self.status_label.setStyleSheet("color: #b00020;")
        self.status_label.setText(message)
        self.failed.emit(message)

    def _on_finished(self) -> None:
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(1 if self.frame is not None else 0)
        self.compute_button.setText(
            strings.ROBUSTNESS_RECOMPUTE if self.run_dir is not None else strings.ROBUSTNESS_COMPUTE
        )
        self.compute_button.setEnabled(self.run_dir is not None)
        self.busy_changed.emit(False)

    def _compute_clicked(self) -> None:
        if self.is_running():
            self.cancel()
        else:
            self.compute()

    # --- drawing -----------------------------------------------------------------------------------
    def _show_frame(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.compute_button.setText(strings.ROBUSTNESS_RECOMPUTE)
        n = int(frame["n_subjects"].max()) if len(frame) else 0
        if frame.attrs.get("stopped"):
            self.status_label.setText(strings.ROBUSTNESS_STATUS_STOPPED.format(n=len(frame)))
        else:
            repeats = int(frame["repeats"].max()) if "repeats" in frame and len(frame) else 1
            classes = ", ".join(frame.attrs.get("classes", []))
            synthetic = strings.ROBUSTNESS_STATUS_SYNTHETIC if frame.attrs.get("synthetic") else ""
            self.status_label.setText(
                strings.ROBUSTNESS_STATUS_DONE.format(n=n, classes=classes or "?", repeats=repeats, synthetic=synthetic)
            )
        self._fill_table(frame)
        self._draw()

    def _chance(self) -> tuple[float | None, str]:
        """The guessing level for the chosen metric, and how to say it."""
        if self.frame is None:
            return None, ""
        if self.metric_key() == "balanced_accuracy":
            classes = self.frame.attrs.get("classes") or []
            if classes:
                return 1.0 / len(classes), strings.ROBUSTNESS_CHANCE_CLASSES.format(n=len(classes))
            return None, ""
        rate = self.frame.attrs.get("majority_rate")
        if rate is None:
            return None, ""
        return float(rate), strings.ROBUSTNESS_CHANCE_MAJORITY.format(rate=rate)

    def _draw(self) -> None:
        frame = self.frame
        if frame is None:
            return
        metric = self.metric_key()
        text = dict(strings.ROBUSTNESS_METRICS)[metric]
        self.subset_plot.setLabel("left", text, color="k")
        self.sweep_plot.setLabel("left", text, color="k")

        no_mask = frame[frame["mask_ratio"] == 0.0].set_index("modalities")
        heights = np.array([float(no_mask[metric].get(name, np.nan)) for name in self._subset_names])
        self.bars.setOpts(height=np.nan_to_num(heights, nan=0.0))
        for label, value in zip(self.bar_labels, heights):
            label.setText("" if np.isnan(value) else f"{value:.2f}")
            label.setPos(label.pos().x(), 0.0 if np.isnan(value) else value)

        sweep = frame[frame["modalities"] == ALL_NAME].sort_values("mask_ratio")
        x = sweep["mask_ratio"].to_numpy(float)
        y = sweep[metric].to_numpy(float)
        sd_column = f"{metric}_sd"
        sd = sweep[sd_column].to_numpy(float) if sd_column in sweep else np.zeros_like(y)
        finite = np.isfinite(y)  # a metric can be undefined (NaN), e.g. with one class in the test set
        x, y, sd = x[finite], y[finite], np.nan_to_num(sd[finite])
        self.sweep_curve.setData(x, y)
        self.sweep_errors.setData(x=x, y=y, height=2 * sd)

        level, caption = self._chance()
        for line in (self.subset_chance, self.sweep_chance):
            line.setVisible(level is not None)
            if level is not None:
                line.setValue(level)
        self.chance_label.setText(caption)

    def _fill_table(self, frame: pd.DataFrame) -> None:
        self.table.setRowCount(len(frame))
        for row, record in enumerate(frame.itertuples(index=False)):
            values = [
                subset_label(record.modalities),
                f"{record.mask_ratio:.1f}",
                _mean_sd(record.accuracy, getattr(record, "accuracy_sd", 0.0)),
                _mean_sd(record.balanced_accuracy, getattr(record, "balanced_accuracy_sd", 0.0)),
                str(int(record.n_subjects)),
            ]
            for column, value in enumerate(values):
                item = QTableWidgetItem(value)
                if column:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, column, item)

    def _clear_plots(self) -> None:
        self.bars.setOpts(height=np.zeros(len(self._subset_names)))
        for label in self.bar_labels:
            label.setText("")
        self.sweep_curve.setData([], [])
        self.sweep_errors.setData(x=np.zeros(0), y=np.zeros(0), height=np.zeros(0))
        for line in (self.subset_chance, self.sweep_chance):
            line.setVisible(False)
        self.chance_label.setText("")
        self.table.setRowCount(0)

    def _show_empty(self) -> None:
        self.title_label.setText(strings.ROBUSTNESS_TITLE_NONE)
        self.status_label.setText(strings.ROBUSTNESS_HINT_NO_RUN)
        self.compute_button.setText(strings.ROBUSTNESS_COMPUTE)
        self.compute_button.setEnabled(False)
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self._clear_plots()

    # --- Qt events ----------------------------------------------------------------------------------
    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        if self.run_dir is not None and not self.is_running() and self.run_dir not in self._attempted:
            self.compute()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        self.stop_and_wait(2000)  # bounded: the main window joins whatever is still running on close
        super().closeEvent(event)


def _evaluate_job(fn, run_dir, mask_ratios, *, report, stop, device):
    """Run `evaluate_robustness` (or an injected stand-in), reporting ("progress", done, total)
    after each pass and ("row", row) with each finished row. Without a device, the default one is
    chosen here, on the worker (choosing it imports torch: never on the GUI thread)."""
    if device is None:
        from smmt_core.device import select_device

        device = str(select_device("auto"))
    return fn(run_dir, mask_ratios, on_progress=lambda done, total: report(("progress", done, total)),
              on_row=lambda row: report(("row", row)), stop=stop, device=device)


def _mean_sd(mean: float, sd: float) -> str:
    if mean is None or np.isnan(mean):
        return "–"
    return f"{mean:.3f} ± {sd:.3f}" if sd and not np.isnan(sd) and sd > 0 else f"{mean:.3f}"
