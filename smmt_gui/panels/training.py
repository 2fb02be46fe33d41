"""The live training dashboard: curves while a run trains, test results when it ends.

Why it looks like this: a researcher watching a run wants to know, at a glance, whether it learns
(train/val loss and accuracy per epoch, plus the raw batch loss so the first epoch is not a blank
plot), what it costs (energy in kWh and power in W, from codecarbon), and how long is left; when it
ends, the test-set figures (metrics with Brier score and ECE, confusion matrix, ROC curve,
reliability diagram) that the run folder also holds.

How it works: `start(config)` runs `train(config, on_event, stop)` on a `TrainingWorker`; every
event arrives in the GUI thread and goes through `handle_event`, which only appends numbers to
lists and calls `setData` on curves created once. The batch-loss curve is redrawn ~4 times a
second, and the progress bar, ETA and status line ~10 times (the first update of a burst at once,
the latest one when the interval is over), so a fast GPU or a warm MRI cache, which send hundreds
of events a second, cannot flood the event loop (each text update re-lays out the
panel). Cancel sets the worker's stop flag, which the training process reads directly; it stops
before the next batch and keeps the checkpoints written so far. Closing the app
calls `stop_now()`, which also skips the stopped run's test evaluation. Several configs (one per seed)
train one after another; the metrics table gets one column per finished run. Every text it shows
is in `smmt_gui.strings` (the TRAINING_* section).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from smmt_core.data.feature_sets import circular_features_in
from smmt_core.errors import SMMTError
from smmt_core.text import format_duration  # noqa: F401 (re-exported for the panels)
from smmt_core.train.config import TrainConfig
from smmt_core.train.events import (
    BatchProgress,
    CheckpointSaved,
    DataProgress,
    EnergyUpdate,
    EpochEnd,
    RunFailed,
    RunFinished,
    RunStarted,
    StopSeen,
)
from smmt_gui import strings
from smmt_gui.workers import TrainingWorker

# Colour-blind-safe pairs (Okabe-Ito): train blue, validation orange.
TRAIN_COLOUR = "#0072B2"
VAL_COLOUR = "#E69F00"
BATCH_COLOUR = (0, 114, 178, 70)
ENERGY_COLOUR = "#009E73"
POWER_COLOUR = "#CC79A7"
BATCH_REDRAW_MS = 250  # the batch-loss curve: each redraw repaints the loss plot (5-10 ms of the GUI thread)
PROGRESS_REDRAW_MS = 100
PLOT_MIN_HEIGHT = 150
AXIS_LABEL_OVERHANG_PX = 8


def _format_metric(value) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "–"
    return "–" if math.isnan(value) else f"{value:.3f}"


def format_energy(kwh: float) -> str:
    """Energy with three significant digits, in Wh below 1 kWh: a demo run reads "0.0412 Wh", never
    "0.0000 kWh"."""
    wh = 1000.0 * float(kwh)
    if wh >= 1000.0:
        return strings.TRAINING_ENERGY_KWH.format(kwh=kwh)
    if wh < 0.001:
        return strings.TRAINING_ENERGY_BELOW
    return strings.TRAINING_ENERGY_WH.format(wh=wh)


TEST_CURVES_MIN_WIDTH = 230  # px: "ROC curve (test set)" and its axis, whole


class WholeNumberAxis(pg.AxisItem):
    """An axis of epochs: ticks on whole numbers only (a 2-epoch run has no tick at 0.5 or 1.5)."""

    def tickValues(self, minVal, maxVal, size):  # noqa: N802, N803 - pyqtgraph API
        levels = [(spacing, [v for v in values if float(v).is_integer()])
                  for spacing, values in super().tickValues(minVal, maxVal, size) if spacing >= 1]
        if not any(values for _spacing, values in levels):
            levels = [(1.0, [float(v) for v in range(math.ceil(minVal), math.floor(maxVal) + 1)])]
        return levels


def styled_plot(title: str, y_label: str, x_label: str, *, whole_x: bool = False) -> pg.PlotWidget:
    """A white plot with black axes and plain units (no SI prefixes); shared with the robustness view.
    `whole_x`: the x axis counts whole things (epochs)."""
    axes = {"bottom": WholeNumberAxis("bottom")} if whole_x else None
    plot = pg.PlotWidget(background="w", axisItems=axes)
    plot.setTitle(title, color="k", size="10pt")
    plot.setLabel("left", y_label, color="k")
    plot.setLabel("bottom", x_label, color="k")
    for side in ("left", "bottom"):
        axis = plot.getAxis(side)
        axis.setPen(pg.mkPen("k"))
        axis.setTextPen(pg.mkPen("k"))
        axis.enableAutoSIPrefix(False)  # "kWh", not "kWh (x0.001)"
    plot.showGrid(x=True, y=True, alpha=0.2)
    plot.setMenuEnabled(False)
    # pyqtgraph hangs an axis label a few pixels below its axis (it counts 80 % of the label's height
    # and nudges it down 5 px): a bottom margin keeps "minutes" whole when the plot is at its minimum
    # height, e.g. with the log panel open.
    plot.getPlotItem().layout.setContentsMargins(1, 1, 4, AXIS_LABEL_OVERHANG_PX)
    plot.setMinimumHeight(PLOT_MIN_HEIGHT)
    return plot


def title_label() -> QLabel:
    """The bold, slightly larger heading of a panel."""
    label = QLabel()
    font = QFont(label.font())
    font.setPointSizeF(font.pointSizeF() * 1.25)
    font.setBold(True)
    label.setFont(font)
    return label


class TrainingDashboard(QWidget):
    """Live curves, progress, Cancel, and the test results of each run.

    Signals (GUI thread):
      finished(Path)   a run trained to the end; its folder holds the model (the main window loads it)
      cancelled(object) the user cancelled; the run folder (Path) or None if it never started
      failed(str)      one line for the user
      busy_changed(bool)
      status(str)      a short line for the main window's status bar
    """

    finished = Signal(object)
    cancelled = Signal(object)
    failed = Signal(str)
    busy_changed = Signal(bool)
    status = Signal(str)

    def __init__(self, parent=None, train_fn: Callable | None = None):
        super().__init__(parent)
        self._train_fn = train_fn  # None: smmt_core.train.trainer.train (tests and benchmarks inject one)
        self._worker: TrainingWorker | None = None
        self._queue: list[TrainConfig] = []
        self._series_total = 0
        self._series_index = 0
        self._cancel_requested = False
        self._close_pending = False  # closed while a run was winding down: close when it ends
        self._reset_run_state()
        self._build_ui()
        self._batch_timer = QTimer(self)
        self._batch_timer.setSingleShot(True)
        self._batch_timer.setInterval(BATCH_REDRAW_MS)
        self._batch_timer.timeout.connect(self._redraw_batches)
        self._pending_progress: DataProgress | BatchProgress | None = None
        self._progress_timer = QTimer(self)
        self._progress_timer.setSingleShot(True)
        self._progress_timer.setInterval(PROGRESS_REDRAW_MS)
        self._progress_timer.timeout.connect(self._show_pending_progress)
        self._show_idle()

    # --- layout -----------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        """The header rows, then the epoch curves above the test results in a scrolling splitter."""
        header, progress, status_row = self._build_header()
        curves = self._build_curves()
        results = self._build_results()

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(curves)
        splitter.addWidget(results)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setChildrenCollapsible(False)

        # Below its minimum height (a small window, the log panel open) the dashboard scrolls rather
        # than squeezing its plots until their axes are cut.
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.scroll.setWidget(splitter)

        layout = QVBoxLayout(self)
        layout.addLayout(header)
        layout.addWidget(self.info_label)
        layout.addWidget(self.circular_label)
        layout.addLayout(progress)
        layout.addLayout(status_row)
        layout.addWidget(self.scroll, 1)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def _build_header(self) -> tuple[QHBoxLayout, QHBoxLayout, QHBoxLayout]:
        """The rows above the plots: title and Cancel, progress and ETA, status and energy (the notes
        between them are laid out by `_build_ui`)."""
        self.title_label = title_label()
        self.title_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.cancel_button = QPushButton(strings.TRAINING_CANCEL)
        self.cancel_button.setToolTip(strings.TRAINING_CANCEL_TIP)
        self.cancel_button.clicked.connect(self.cancel)
        self.info_label = QLabel()
        self.info_label.setWordWrap(True)
        self.circular_label = QLabel()
        self.circular_label.setWordWrap(True)
        self.circular_label.setObjectName("circularNote")
        self.circular_label.setStyleSheet(
            "QLabel#circularNote { background: #fff4ce; color: #5c4400; border: 1px solid #e0c060;"
            " border-radius: 4px; padding: 4px; }"
        )
        self.circular_label.hide()
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setTextVisible(False)
        self.eta_label = QLabel()
        self.eta_label.setMinimumWidth(160)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.energy_label = QLabel()

        header = QHBoxLayout()
        header.addWidget(self.title_label, 1)
        header.addWidget(self.cancel_button)
        progress = QHBoxLayout()
        progress.addWidget(self.progress_bar, 1)
        progress.addWidget(self.eta_label)
        status_row = QHBoxLayout()
        status_row.addWidget(self.status_label, 1)
        status_row.addWidget(self.energy_label)
        return header, progress, status_row

    def _build_curves(self) -> QWidget:
        """Loss, accuracy, energy and power per epoch, created once and fed with setData."""
        self.loss_plot = styled_plot(*strings.TRAINING_PLOT_LOSS, whole_x=True)
        # Legends in one row along the top, on a translucent white: they no longer hide the curves.
        self.loss_plot.addLegend(offset=(-10, 5), labelTextColor="k", colCount=3, brush=(255, 255, 255, 200))
        self.batch_loss_curve = self.loss_plot.plot(
            pen=pg.mkPen(BATCH_COLOUR, width=1), name=strings.TRAINING_LEGEND_BATCH
        )
        self.train_loss_curve, self.val_loss_curve = _train_and_val_curves(self.loss_plot)
        self.acc_plot = styled_plot(*strings.TRAINING_PLOT_ACCURACY, whole_x=True)
        self.acc_plot.addLegend(offset=(-10, -5), labelTextColor="k", colCount=2, brush=(255, 255, 255, 200))
        self.acc_plot.setYRange(0, 1, padding=0.02)
        self.train_acc_curve, self.val_acc_curve = _train_and_val_curves(self.acc_plot)
        self.energy_plot = styled_plot(*strings.TRAINING_PLOT_ENERGY)
        self.energy_curve = self.energy_plot.plot(
            pen=pg.mkPen(ENERGY_COLOUR, width=2), symbol="o", symbolSize=5, symbolBrush=ENERGY_COLOUR
        )
        self.power_plot = styled_plot(*strings.TRAINING_PLOT_POWER)
        self.power_curve = self.power_plot.plot(
            pen=pg.mkPen(POWER_COLOUR, width=2), symbol="o", symbolSize=5, symbolBrush=POWER_COLOUR
        )
        curves = QWidget()
        grid = QGridLayout(curves)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(self.loss_plot, 0, 0)
        grid.addWidget(self.acc_plot, 0, 1)
        grid.addWidget(self.energy_plot, 1, 0)
        grid.addWidget(self.power_plot, 1, 1)
        return curves

    def _build_results(self) -> QWidget:
        """The test set's results: metrics, confusion matrix, ROC curve and reliability diagram."""
        self.metrics_table = QTableWidget(len(strings.TRAINING_METRIC_ROWS), 0)
        self.metrics_table.setVerticalHeaderLabels([text for _, text in strings.TRAINING_METRIC_ROWS])
        self.metrics_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.metrics_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.metrics_table.horizontalHeader().setStretchLastSection(True)
        self.metrics_table.verticalHeader().setDefaultSectionSize(20)
        self.metrics_table.setMinimumHeight(7 * 20 + 30)
        self.confusion_table = QTableWidget(0, 0)
        self.confusion_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.confusion_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.confusion_table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.confusion_caption = QLabel(strings.TRAINING_CONFUSION_CAPTION)
        self.confusion_caption.setStyleSheet("color: palette(mid);")
        self.roc_plot = styled_plot(*strings.TRAINING_PLOT_ROC)
        self.roc_plot.setXRange(0, 1, padding=0.02)
        self.roc_plot.setYRange(0, 1, padding=0.02)
        self.roc_plot.plot([0, 1], [0, 1], pen=pg.mkPen((150, 150, 150), width=1, style=Qt.PenStyle.DashLine))
        self.roc_curve = self.roc_plot.plot(pen=pg.mkPen(TRAIN_COLOUR, width=2))
        self.roc_label = pg.TextItem(anchor=(1, 1), color="k")
        self.roc_plot.addItem(self.roc_label)
        self.roc_label.setPos(0.98, 0.02)
        # Reliability diagram: one point per probability bin that holds persons (calibration).
        self.reliability_plot = styled_plot(*strings.TRAINING_PLOT_RELIABILITY)
        self.reliability_plot.setXRange(0, 1, padding=0.02)
        self.reliability_plot.setYRange(0, 1, padding=0.02)
        self.reliability_plot.plot([0, 1], [0, 1], pen=pg.mkPen((150, 150, 150), width=1, style=Qt.PenStyle.DashLine))
        self.reliability_curve = self.reliability_plot.plot(pen=pg.mkPen(TRAIN_COLOUR, width=1), symbol="o",
                                                            symbolSize=7, symbolBrush=TRAIN_COLOUR)
        self.reliability_label = pg.TextItem(anchor=(1, 1), color="k")
        self.reliability_plot.addItem(self.reliability_label)
        self.reliability_label.setPos(0.98, 0.02)

        metrics_box = QGroupBox(strings.TRAINING_METRICS_BOX)
        QVBoxLayout(metrics_box).addWidget(self.metrics_table)
        confusion_box = QGroupBox(strings.TRAINING_CONFUSION_BOX)
        confusion_layout = QVBoxLayout(confusion_box)
        confusion_layout.addWidget(self.confusion_table, 1)
        confusion_layout.addWidget(self.confusion_caption)
        results = QWidget()
        results_layout = QHBoxLayout(results)
        results_layout.setContentsMargins(0, 0, 0, 0)
        results_layout.addWidget(metrics_box, 3)
        results_layout.addWidget(confusion_box, 2)
        curves_of_test = QWidget()
        curves_layout = QVBoxLayout(curves_of_test)
        curves_layout.setContentsMargins(0, 0, 0, 0)
        curves_layout.addWidget(self.roc_plot)
        curves_layout.addWidget(self.reliability_plot)
        curves_of_test.setMinimumWidth(TEST_CURVES_MIN_WIDTH)  # their titles and AUC/ECE whole
        results_layout.addWidget(curves_of_test, 3)
        self.results = results
        return results

    # --- public API ------------------------------------------------------------------------------
    def start(self, config: TrainConfig | Sequence[TrainConfig]) -> None:
        """Train `config` (or several configs, one after another) on a worker thread."""
        configs = [config] if isinstance(config, TrainConfig) else list(config)
        if not configs:
            raise ValueError("no configuration to train")
        if self.is_running():
            raise RuntimeError("a training run is already in progress; cancel it first")
        self._queue = configs
        self._series_total = len(configs)
        self._series_index = 0
        self._cancel_requested = False
        self.metrics_table.setColumnCount(0)
        self.metrics_table.setMinimumWidth(0)
        self._start_next()

    def cancel(self) -> None:
        """Stop after the current batch; the run keeps the checkpoints written so far."""
        self._queue.clear()
        if self._worker is None or self._worker.is_done():
            return
        self._cancel_requested = True
        self._worker.request_stop()
        self._drop_pending_progress()
        self.cancel_button.setEnabled(False)
        self.cancel_button.setText(strings.TRAINING_CANCELLING)
        self.eta_label.setText(strings.TRAINING_ETA_STOPPING)  # the bar and the ETA stop here
        self._set_status(strings.TRAINING_STATUS_CANCELLING)

    def stop_now(self) -> None:
        """For an app that is closing: cancel, and have the run skip what it would still do after
        the cancel (the batch in progress, the test evaluation of its best checkpoint: seconds on a
        CPU), so that the app can exit promptly. Checkpoints of finished epochs stay; run.json says
        "stopped"."""
        worker = self._worker
        self.cancel()
        if worker is not None and not worker.is_done() and hasattr(worker, "request_abort"):
            self._abort_requested = True  # its "interrupted" failure is then the cancel asked for
            worker.request_abort()

    def is_running(self) -> bool:
        return self._worker is not None and not self._worker.is_done()

    def stop_and_wait(self, timeout_ms: int | None = None) -> bool:
        """For closeEvent: cancel and block until the training thread has ended."""
        self.cancel()
        return self._worker.wait(timeout_ms) if self._worker is not None else True

    def handle_event(self, event) -> None:
        """Update the view from one `smmt_core.train.events` event (GUI thread only)."""
        if isinstance(event, RunStarted):
            self._on_started(event)
        elif isinstance(event, DataProgress):
            self._on_data(event)
        elif isinstance(event, BatchProgress):
            self._on_batch(event)
        elif isinstance(event, EpochEnd):
            self._on_epoch(event)
        elif isinstance(event, EnergyUpdate):
            self._on_energy(event)
        elif isinstance(event, StopSeen):
            if self.epochs:  # the stopped run still tests its best epoch: say what the wait is for
                self._set_status(strings.TRAINING_STATUS_STOPPED_EVALUATING.format(batches=event.batches_done))
        elif isinstance(event, CheckpointSaved):
            pass  # the run folder holds them; EpochEnd.is_best already says which epoch is best
        elif isinstance(event, RunFinished):
            self._on_run_finished(event)
        elif isinstance(event, RunFailed):
            self._on_run_failed(event.message, event.run_dir)

    # --- worker lifecycle ------------------------------------------------------------------------
    def _start_next(self) -> None:
        config = self._queue.pop(0)
        self._series_index += 1
        self._reset_run_state()
        self._clear_curves()
        self._config = config
        name = config.run.run_name or strings.TRAINING_DEFAULT_NAME.format(
            variant=config.model.variant, fraction=config.data.fraction, seed=config.optim.seed
        )
        self._show_title(name)
        self.info_label.setText("")
        self.progress_bar.setValue(0)
        self.eta_label.setText("")
        self.energy_label.setText("")
        self.status_label.setStyleSheet("")
        self._set_status(strings.TRAINING_STATUS_PREPARING)
        self.cancel_button.setText(strings.TRAINING_CANCEL)
        self.cancel_button.setEnabled(True)
        worker = TrainingWorker(config, parent=self, train_fn=self._train_fn)
        worker.event.connect(self.handle_event)
        worker.result.connect(self._on_result)
        worker.failed.connect(lambda message: self._on_run_failed(message, self._run_dir))
        worker.finished.connect(self._on_worker_finished)
        self._worker = worker
        self.busy_changed.emit(True)
        worker.start()

    def _on_result(self, result) -> None:
        run_dir = getattr(result, "run_dir", None)
        if run_dir is not None and self._run_dir is None:
            self._run_dir = Path(run_dir)

    def _on_worker_finished(self) -> None:
        self._batch_timer.stop()
        self._drop_pending_progress()
        self._redraw_batches()
        self.cancel_button.setEnabled(False)
        self.cancel_button.setText(strings.TRAINING_CANCEL)
        run_dir, outcome = self._run_dir, self._outcome
        if outcome == "finished":
            self.finished.emit(run_dir)
        elif outcome == "cancelled" or (outcome is None and self._cancel_requested):
            self.title_label.setText(strings.TRAINING_TITLE_CANCELLED.format(name=self._display_name))
            self.cancelled.emit(run_dir)
        elif outcome is None:
            # The job ended without saying how (e.g. a train function that emits no events).
            self._on_run_failed(strings.TRAINING_NO_RESULT, run_dir)
        if self._queue and outcome == "finished" and not self._cancel_requested:
            self._start_next()
            return
        self._queue.clear()
        self.busy_changed.emit(False)

    # --- events -----------------------------------------------------------------------------------
    def _reset_run_state(self) -> None:
        self._run_dir: Path | None = None
        self._outcome: str | None = None  # "finished", "cancelled", "failed"
        self._abort_requested = False
        self._total_epochs = 0
        self._batches_per_epoch = 0
        self._classes: list[str] = ["CN", "AD"]
        self._info_text = ""
        self.batch_x: list[float] = []
        self.batch_loss: list[float] = []
        self.epochs: list[int] = []
        self.train_loss: list[float] = []
        self.val_loss: list[float] = []
        self.train_acc: list[float] = []
        self.val_acc: list[float] = []
        self.energy_t: list[float] = []
        self.energy_kwh: list[float] = []
        self.power_w: list[float] = []
        self.test_metrics: dict = {}

    def _on_started(self, event: RunStarted) -> None:
        self._run_dir = Path(event.run_dir)
        self._total_epochs = int(event.total_epochs)
        self._batches_per_epoch = int(event.batches_per_epoch)
        try:
            config = TrainConfig.from_dict(event.config) if event.config else self._config
        except SMMTError:
            config = self._config
        self._classes = config.data.classes if config is not None else self._classes
        # The folder actually created: a reused name gets a suffix ("wiz-2ep-2"), and that is what the
        # model list and the run folder show.
        self._show_title(self._run_dir.name)
        self._info_text = strings.TRAINING_INFO_RUN.format(
            n_train=event.n_train, n_val=event.n_val, n_test=event.n_test, device=event.device,
            variant=config.model.variant if config is not None else "", epochs=event.total_epochs,
            fraction=config.data.fraction if config is not None else 1.0, masking=_masking_text(config),
        )
        self.info_label.setText(self._info_text)
        circular = circular_features_in(config.data.features or [] if config is not None else [])
        self.circular_label.setText(strings.TRAINING_CIRCULAR_NOTE.format(names=", ".join(circular)))
        self.circular_label.setVisible(bool(circular))
        self.loss_plot.setXRange(0, max(1, self._total_epochs), padding=0.02)
        self.acc_plot.setXRange(0, max(1, self._total_epochs), padding=0.02)
        self._set_status(strings.TRAINING_STATUS_PREPARING)

    def _on_data(self, event: DataProgress) -> None:
        if not self._cancel_requested:
            self._show_progress_soon(event)

    def _on_batch(self, event: BatchProgress) -> None:
        per_epoch = max(1, int(event.batches_per_epoch))
        self._batches_per_epoch = per_epoch
        self.batch_x.append(event.epoch - 1 + event.batch / per_epoch)
        self.batch_loss.append(float(event.loss))
        if not self._batch_timer.isActive():
            self._batch_timer.start()
        if not self._cancel_requested:  # progress and ETA froze when the user cancelled
            self._show_progress_soon(event)

    # --- progress bar, ETA and status line, at most ~10 times a second --------------------------------
    def _show_progress_soon(self, event: DataProgress | BatchProgress) -> None:
        """Show `event` now, or, within PROGRESS_REDRAW_MS of the last update, when that interval
        is over (only the latest event of a burst is shown)."""
        if self._progress_timer.isActive():
            self._pending_progress = event
            return
        self._show_progress(event)
        self._progress_timer.start()

    def _show_pending_progress(self) -> None:
        event, self._pending_progress = self._pending_progress, None
        if event is not None:
            self._show_progress(event)
            self._progress_timer.start()

    def _drop_pending_progress(self) -> None:
        """The run was cancelled or ended: no older progress may overwrite what it shows now."""
        self._pending_progress = None
        self._progress_timer.stop()

    def _show_progress(self, event: DataProgress | BatchProgress) -> None:
        if isinstance(event, DataProgress):
            # Before the first batch: the bar shows the scans read so far, then restarts for training.
            total = max(1, int(event.total))
            self.progress_bar.setValue(round(1000 * min(1.0, event.done / total)))
            self.eta_label.setText("")
            self._set_status(strings.TRAINING_STATUS_DATA.format(stage=event.stage, done=event.done,
                                                                 total=event.total))
            return
        per_epoch = max(1, int(event.batches_per_epoch))
        total = max(1, self._total_epochs) * per_epoch
        done = min(1.0, ((event.epoch - 1) * per_epoch + event.batch) / total)
        self.progress_bar.setValue(round(done * 1000))
        if event.eta_s is None:
            self.eta_label.setText(strings.TRAINING_ETA_UNKNOWN.format(done=done * 100))
        else:
            self.eta_label.setText(strings.TRAINING_ETA.format(done=done * 100, left=format_duration(event.eta_s)))
        self._set_status(
            strings.TRAINING_STATUS_BATCH.format(
                epoch=event.epoch, epochs=self._total_epochs or "?", batch=event.batch, batches=per_epoch,
                loss=event.loss,
            )
        )

    def _redraw_batches(self) -> None:
        self.batch_loss_curve.setData(np.asarray(self.batch_x, float), np.asarray(self.batch_loss, float))

    def _on_epoch(self, event: EpochEnd) -> None:
        self.epochs.append(int(event.epoch))
        self.train_loss.append(float(event.train_loss))
        self.val_loss.append(float("nan") if event.val_loss is None else float(event.val_loss))
        self.train_acc.append(float(event.train_metrics.get("accuracy", float("nan"))))
        self.val_acc.append(float(event.val_metrics.get("accuracy", float("nan"))))
        x = np.asarray(self.epochs, float)
        # connect="finite" leaves gaps where a value is NaN (e.g. no validation subjects).
        self.train_loss_curve.setData(x, np.asarray(self.train_loss, float), connect="finite")
        self.val_loss_curve.setData(x, np.asarray(self.val_loss, float), connect="finite")
        self.train_acc_curve.setData(x, np.asarray(self.train_acc, float), connect="finite")
        self.val_acc_curve.setData(x, np.asarray(self.val_acc, float), connect="finite")
        if self._total_epochs and not self._cancel_requested:
            self.progress_bar.setValue(round(1000 * min(1.0, event.epoch / self._total_epochs)))
        if event.is_best:
            self.info_label.setText(self._info_text + strings.TRAINING_INFO_BEST.format(epoch=event.epoch))

    def _on_energy(self, event: EnergyUpdate) -> None:
        self.energy_t.append(float(event.elapsed_s) / 60.0)
        self.energy_kwh.append(float(event.energy_kwh))
        self.power_w.append(float(event.power_w))
        t = np.asarray(self.energy_t, float)
        wh = 1000.0 * np.asarray(self.energy_kwh, float)
        watts = np.asarray(self.power_w, float)
        self.energy_curve.setData(t, wh, connect="finite")
        self.power_curve.setData(t, watts, connect="finite")
        # From zero up: energy and power are never negative, and one point is no reason for a
        # range around it (auto-range would show negative kWh and minutes).
        right = max(1.0, float(np.nanmax(t)) * 1.05) if t.size else 1.0
        for plot, values in ((self.energy_plot, wh), (self.power_plot, watts)):
            top = float(np.nanmax(values)) if np.isfinite(values).any() else 0.0
            plot.setXRange(0.0, right, padding=0.0)
            plot.setYRange(0.0, top * 1.15 if top > 0 else 1.0, padding=0.0)
        text = strings.TRAINING_ENERGY.format(energy=format_energy(event.energy_kwh), watts=event.power_w)
        self.energy_label.setText(text + (strings.TRAINING_ENERGY_ESTIMATED if event.estimated else ""))
        title = strings.TRAINING_PLOT_POWER_ESTIMATED if event.estimated else strings.TRAINING_PLOT_POWER[0]
        self.power_plot.setTitle(title, color="k", size="10pt")

    def _on_run_finished(self, event: RunFinished) -> None:
        self._drop_pending_progress()
        self._run_dir = Path(event.run_dir)
        self._outcome = "cancelled" if event.stopped_early else "finished"
        self.test_metrics = dict(event.test_metrics or {})
        self.eta_label.setText("")
        if not event.stopped_early:
            self.progress_bar.setValue(1000)
        self._show_results(self.test_metrics)
        if event.energy_kwh is not None and math.isfinite(event.energy_kwh) and event.energy_kwh > 0:
            energy = format_energy(event.energy_kwh)
        else:
            energy = strings.TRAINING_ENERGY_NOT_MEASURED
        if event.stopped_early:
            self._set_status(
                strings.TRAINING_STATUS_CANCELLED.format(
                    duration=format_duration(event.duration_s), run_dir=self._run_dir
                )
            )
            self.title_label.setText(strings.TRAINING_TITLE_CANCELLED.format(name=self._display_name))
        else:
            self._set_status(strings.TRAINING_STATUS_DONE.format(
                duration=format_duration(event.duration_s), energy=energy, run_dir=self._run_dir
            ))
            self.title_label.setText(strings.TRAINING_TITLE_DONE.format(name=self._display_name))

    def _on_run_failed(self, message: str, run_dir=None) -> None:
        if self._abort_requested:
            self._outcome = "cancelled"  # stop_now() interrupted the run: no failure to report
            return
        if self._outcome == "failed":
            return  # the RunFailed event and the worker's error carry the same message
        self._outcome = "failed"
        self._drop_pending_progress()
        if run_dir is not None:
            self._run_dir = Path(run_dir)
        self._queue.clear()
        self.title_label.setText(strings.TRAINING_TITLE_FAILED)
        self.eta_label.setText("")
        self.status_label.setStyleSheet("color: #b00020;")
        self._set_status(message)
        self.failed.emit(message)

    # --- results --------------------------------------------------------------------------------
    def _show_results(self, metrics: dict) -> None:
        column = self.metrics_table.columnCount()
        self.metrics_table.insertColumn(column)
        if self._config is not None:
            header = strings.TRAINING_METRICS_COLUMN.format(seed=self._config.optim.seed)
        else:
            header = self._display_name
        self.metrics_table.setHorizontalHeaderItem(column, QTableWidgetItem(header))
        ci = metrics.get("ci95") or {}
        for row, (key, name) in enumerate(strings.TRAINING_METRIC_ROWS):
            text = _format_metric(metrics.get(key))
            bounds = ci.get(key)
            tip = strings.TRAINING_METRIC_TIP
            if bounds and text != "–":  # the test set is small: show how far the figure could move
                text = strings.TRAINING_METRIC_WITH_CI.format(value=text, lo=bounds[0], hi=bounds[1])
                tip = strings.TRAINING_METRIC_TIP_CI
            item = QTableWidgetItem(text)
            item.setToolTip(tip.format(name=name, text=text))
            item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.metrics_table.setItem(row, column, item)
        self._fit_metrics_width()
        self._show_confusion(metrics.get("confusion_matrix"))
        roc = metrics.get("roc_curve") or {}
        fpr, tpr = roc.get("fpr"), roc.get("tpr")
        if fpr is not None and tpr is not None and len(fpr) == len(tpr) and len(fpr) > 0:
            self.roc_curve.setData(np.asarray(fpr, float), np.asarray(tpr, float))
            self.roc_label.setText(strings.TRAINING_ROC_AUC.format(auc=_format_metric(metrics.get("roc_auc"))))
        else:
            self.roc_curve.setData([], [])
            self.roc_label.setText(strings.TRAINING_ROC_NONE)
        self._show_reliability(metrics)

    def _fit_metrics_width(self) -> None:
        """Values with their CI are never cut ("0.812 …"): the table is at least as wide as its
        row names and columns; the dashboard scrolls sideways before it clips a figure."""
        table = self.metrics_table
        table.resizeColumnsToContents()
        columns = sum(max(table.sizeHintForColumn(c), table.horizontalHeader().sectionSizeHint(c))
                      for c in range(table.columnCount()))
        table.setMinimumWidth(table.verticalHeader().sizeHint().width() + columns + 2 * table.frameWidth() + 4)

    def _show_reliability(self, metrics: dict) -> None:
        table = metrics.get("reliability") or {}
        points = [(p, o) for n, p, o in zip(table.get("count") or [], table.get("mean_predicted") or [],
                                            table.get("observed") or []) if n and p is not None and o is not None]
        self.reliability_curve.setData([p for p, _ in points], [o for _, o in points])
        self.reliability_label.setText(strings.TRAINING_RELIABILITY_ECE.format(ece=_format_metric(metrics.get("ece")))
                                       if points else "")

    def _show_confusion(self, matrix) -> None:
        if matrix is None:
            self.confusion_table.setRowCount(0)
            self.confusion_table.setColumnCount(0)
            return
        counts = np.asarray(matrix, dtype=float)
        n = counts.shape[0]
        classes = self._classes if len(self._classes) == n else [str(i) for i in range(n)]
        self.confusion_table.setRowCount(n)
        self.confusion_table.setColumnCount(n)
        self.confusion_table.setHorizontalHeaderLabels(
            [strings.TRAINING_CONFUSION_COLUMN.format(name=c) for c in classes]
        )
        self.confusion_table.setVerticalHeaderLabels(classes)
        row_sums = counts.sum(axis=1, keepdims=True)
        share = np.divide(counts, row_sums, out=np.zeros_like(counts), where=row_sums > 0)
        for i in range(n):
            for j in range(n):
                item = QTableWidgetItem(f"{int(counts[i, j])}")
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                item.setToolTip(
                    strings.TRAINING_CONFUSION_TIP.format(true=classes[i], predicted=classes[j], share=share[i, j])
                )
                # Diagonal in blue, errors in orange, stronger where a larger share of the row falls.
                base = (0, 114, 178) if i == j else (213, 94, 0)
                alpha = int(30 + 170 * share[i, j])
                item.setBackground(QBrush(QColor(*base, alpha)))
                self.confusion_table.setItem(i, j, item)

    # --- helpers -----------------------------------------------------------------------------------
    def _clear_curves(self) -> None:
        # A new run starts from fresh axes, not the previous run's ranges.
        for plot in (self.loss_plot, self.acc_plot, self.energy_plot, self.power_plot):
            plot.enableAutoRange()
        self.acc_plot.setYRange(0, 1, padding=0.02)
        for curve in (self.batch_loss_curve, self.train_loss_curve, self.val_loss_curve, self.train_acc_curve,
                      self.val_acc_curve, self.energy_curve, self.power_curve, self.roc_curve,
                      self.reliability_curve):
            curve.setData([], [])
        self.roc_label.setText("")
        self.reliability_label.setText("")
        self._show_confusion(None)

    def _set_status(self, text: str) -> None:
        self.status_label.setText(text)
        self.status.emit(text)

    def _show_idle(self) -> None:
        self._config: TrainConfig | None = None
        self._display_name = ""
        self.title_label.setText(strings.TRAINING_IDLE_TITLE)
        self.status_label.setText(strings.TRAINING_IDLE_HINT)
        self.cancel_button.setEnabled(False)

    def _show_title(self, name: str) -> None:
        """The run's name, with its place in a series of seeds when there are several."""
        self._display_name = name
        if self._series_total > 1:
            self.title_label.setText(
                strings.TRAINING_TITLE_SERIES.format(name=name, index=self._series_index, total=self._series_total)
            )
        else:
            self.title_label.setText(strings.TRAINING_TITLE_RUN.format(name=name))

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        """Closing a stand-alone dashboard cancels the run and never waits for it: while the run
        winds down the dashboard stays open (showing "cancelling…") and closes itself as soon as
        the worker has finished, so no thread outlives the widget and the GUI never blocks."""
        worker = self._worker
        if worker is None or worker.is_done():
            super().closeEvent(event)
            return
        if not self._close_pending:
            self._close_pending = True
            self.cancel()
            worker.finished.connect(self.close)  # queued after _on_worker_finished
        event.ignore()


def _masking_text(config: TrainConfig | None) -> str:
    """The run's mask ratio, or "no masking" for a variant that does not mask."""
    if config is None or not config.model.masking:
        return strings.TRAINING_INFO_NO_MASK
    return strings.TRAINING_INFO_MASK.format(ratio=config.model.mask_ratio, mode=config.model.mask_mode)


def _train_and_val_curves(plot: pg.PlotWidget):
    """One curve per epoch for the training and one for the validation set, in the legend colours."""
    train = plot.plot(pen=pg.mkPen(TRAIN_COLOUR, width=2), symbol="o", symbolSize=6, symbolBrush=TRAIN_COLOUR,
                      name=strings.TRAINING_LEGEND_TRAIN)
    val = plot.plot(pen=pg.mkPen(VAL_COLOUR, width=2), symbol="s", symbolSize=6, symbolBrush=VAL_COLOUR,
                    name=strings.TRAINING_LEGEND_VAL)
    return train, val
