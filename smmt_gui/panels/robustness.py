"""The robustness view: how the loaded run's test accuracy holds up when modalities go missing.

Why: SMMT's selling point is that masking during training makes the model tolerate incomplete
data. This panel shows it for the user's own run, on that run's held-out test subjects:
left, one bar per subset of {MRI, clinical, categorical} the model is given (no masking);
right, accuracy against the test-time mask ratio with all modalities (mean ± SD over repeats).
A dashed line marks what guessing achieves (the majority-class rate for accuracy, 1/classes for
balanced accuracy), so a bar at that line means the model has learnt nothing from those inputs.

A second view puts the run's model beside the simple baselines when a share of the test persons
lacks their MRI or their clinical data (the same persons for every method, drawn from the run's
split seed): one line per method with its 95 % CI band, one modality at a time
(`smmt_core.experiments.missing.evaluate_missing_shares`). Why here: whether SMMT copes better than
a simple method with incomplete data is the question this tab exists for.

The numbers come from `smmt_core.train.robustness.evaluate_robustness`, then the comparison, both
in one job on a worker thread with progress and Cancel. Computing starts when the panel is visible (set_run on a hidden tab
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
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from smmt_core.modalities import ALL_NAME, DEFAULT_MASK_RATIOS, modality_subsets, subset_name
from smmt_core.variants import BASELINES
from smmt_gui import strings
from smmt_gui.panels.training import styled_plot, title_label
from smmt_gui.workers import FunctionWorker

BAR_COLOURS = {3: "#0072B2", 2: "#56B4E9", 1: "#A6CEE3"}  # by number of modalities given
SWEEP_COLOUR = "#D55E00"
MISSING_SHARES = (0.0, 0.2, 0.4, 0.6)
MODEL_KEY = "model"  # the run's own model among the missing-data curves (its name is the variant's)
# Okabe-Ito colours: the model first, one per baseline.
METHOD_COLOURS = ["#D55E00", "#0072B2", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]
_DEFAULT = object()


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

    missing_computed = Signal(object)  # the DataFrame of evaluate_missing_shares

    def __init__(self, parent=None, evaluate_fn: Callable | None = None,
                 mask_ratios=DEFAULT_MASK_RATIOS, device: str | None = None, missing_fn=_DEFAULT,
                 missing_shares=MISSING_SHARES):
        super().__init__(parent)
        self._evaluate_fn = evaluate_fn  # None: smmt_core.train.robustness.evaluate_robustness
        # None: no comparison with the baselines; by default the real one, unless evaluate_fn is a stand-in
        self._missing_fn = (None if evaluate_fn is not None else "real") if missing_fn is _DEFAULT else missing_fn
        self.missing_shares = tuple(missing_shares)
        self.missing_frame: pd.DataFrame | None = None
        self._missing_results: dict[Path, pd.DataFrame] = {}
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
        self.metric_combo.currentIndexChanged.connect(lambda _index: (self._draw(), self._draw_missing()))
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
        self.views = QTabWidget()
        self.views.setDocumentMode(True)
        self.views.addTab(plots, strings.ROBUSTNESS_VIEWS[0])
        self.views.addTab(self._build_missing_view(), strings.ROBUSTNESS_VIEWS[1])

        self.table = QTableWidget(0, len(strings.ROBUSTNESS_TABLE_COLUMNS))
        self.table.setHorizontalHeaderLabels(strings.ROBUSTNESS_TABLE_COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setMinimumHeight(140)

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.views)
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

    def _build_missing_view(self) -> QWidget:
        """One plot: a line (and CI band) per method against the share of persons lacking a modality.
        Curves are made once per method (the model and every baseline) and given data later."""
        self.missing_combo = QComboBox()
        for key, text in strings.ROBUSTNESS_MISSING_MODALITIES:
            self.missing_combo.addItem(text, key)
        self.missing_combo.currentIndexChanged.connect(lambda _index: self._draw_missing())
        self.missing_plot = _plot(*strings.ROBUSTNESS_MISSING_PLOT)
        self.missing_plot.setXRange(-2, 62, padding=0)
        self.missing_legend = self.missing_plot.addLegend(offset=(10, -10),  # bottom left: the curves fall to the right
                                                          labelTextColor="k",
                                                          brush=pg.mkBrush(255, 255, 255, 210))
        self.missing_chance = pg.InfiniteLine(angle=0, pen=pg.mkPen((120, 120, 120), width=1,
                                                                    style=Qt.PenStyle.DashLine))
        self.missing_plot.addItem(self.missing_chance)
        self.missing_curves: dict[str, pg.PlotDataItem] = {}
        self.missing_bands: dict[str, pg.FillBetweenItem] = {}
        self._band_edges: dict[str, tuple[pg.PlotCurveItem, pg.PlotCurveItem]] = {}
        for i, key in enumerate([MODEL_KEY, *BASELINES]):
            colour = METHOD_COLOURS[i % len(METHOD_COLOURS)]
            model = key == MODEL_KEY
            pen = pg.mkPen(colour, width=3 if model else 2,
                           style=Qt.PenStyle.SolidLine if model else Qt.PenStyle.DashLine)
            lo, hi = pg.PlotCurveItem(pen=pg.mkPen(None)), pg.PlotCurveItem(pen=pg.mkPen(None))
            band_colour = pg.mkColor(colour)
            band_colour.setAlpha(40)
            band = pg.FillBetweenItem(lo, hi, brush=pg.mkBrush(band_colour))
            self.missing_plot.addItem(band)
            self._band_edges[key], self.missing_bands[key] = (lo, hi), band
            curve = pg.PlotDataItem(pen=pen, symbol="o" if model else "t", symbolSize=8 if model else 7,
                                    symbolBrush=colour, symbolPen=pg.mkPen(colour))
            self.missing_plot.addItem(curve)  # not through the legend: entries are for methods with data
            self.missing_curves[key] = curve
        self.missing_label = QLabel(strings.ROBUSTNESS_MISSING_WAITING)
        self.missing_label.setWordWrap(True)
        self.missing_label.setStyleSheet("color: palette(mid);")

        view = QWidget()
        layout = QVBoxLayout(view)
        layout.setContentsMargins(0, 4, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel(strings.ROBUSTNESS_MISSING_WITHOUT))
        row.addWidget(self.missing_combo)
        row.addStretch(1)
        layout.addLayout(row)
        layout.addWidget(self.missing_plot, 1)
        layout.addWidget(self.missing_label)
        return view

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
        self.missing_frame = self._missing_results.get(run_dir) if run_dir is not None else None
        self._draw_missing()
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
        self._missing_results.pop(self.run_dir, None)
        self._attempted.add(self.run_dir)
        self.frame = None
        self.missing_frame = None
        self._clear_plots()
        self._draw_missing()
        self.missing_label.setText(strings.ROBUSTNESS_MISSING_WAITING if self._missing_fn else "")
        fn = self._evaluate_fn
        if fn is None:
            from smmt_core.train.robustness import evaluate_robustness as fn
        missing_fn = self._missing_fn
        if missing_fn == "real":
            missing_fn = _real_missing
        worker = FunctionWorker(_evaluate_job, fn, self.run_dir, self.mask_ratios, progress_kw="report",
                                stop_kw="stop", device=self._device, name="robustness", missing_fn=missing_fn,
                                missing_shares=self.missing_shares)
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
        if value[0] == "missing":  # the comparison with the baselines is done
            self.missing_frame = value[1]
            if not value[1].attrs.get("stopped") and self.run_dir is not None:
                self._missing_results[self.run_dir] = value[1]
            self._draw_missing()
            self.missing_computed.emit(value[1])
            return
        if value[0] == "missing-error":
            self.missing_label.setText(strings.ROBUSTNESS_MISSING_FAILED.format(message=value[1]))
            return
        if value[0] == "missing-progress":
            _, done, total = value
            self.progress_bar.setRange(0, max(1, int(total)))
            self.progress_bar.setValue(int(done))
            text = strings.ROBUSTNESS_MISSING_COMPUTING.format(done=done, total=total)
            self.status_label.setText(text)
            self.missing_label.setText(text)
            return
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

    def _draw_missing(self) -> None:
        """The missing-data view for the chosen modality and metric (curves emptied when there is none)."""
        frame = self.missing_frame
        self.missing_legend.clear()
        metric = self.metric_key()
        metric_text = dict(strings.ROBUSTNESS_METRICS)[metric]
        self.missing_plot.setTitle(strings.ROBUSTNESS_MISSING_PLOT[0].format(metric=metric_text), color="k",
                                   size="10pt")
        self.missing_plot.setLabel("left", metric_text, color="k")
        self.missing_plot.setLabel("bottom", strings.ROBUSTNESS_MISSING_PLOT[1], color="k")
        drawn = set()
        if frame is not None and len(frame):
            rows = frame[frame["modality"] == self.missing_combo.currentData()]
            self.missing_plot.setXRange(-2, float(frame["share"].max()) * 100 + 2, padding=0)
            for method, group in rows.groupby("method", sort=False):
                key = MODEL_KEY if (group["kind"] == "model").any() else method
                if key not in self.missing_curves:
                    continue
                group = group.sort_values("share")
                x = group["share"].to_numpy(float) * 100
                y = group[metric].to_numpy(float)
                finite = np.isfinite(y)
                self.missing_curves[key].setData(x[finite], y[finite])
                lo_col, hi_col = f"{metric}_lo", f"{metric}_hi"
                lo_edge, hi_edge = self._band_edges[key]
                if lo_col in group and hi_col in group:
                    lo, hi = group[lo_col].to_numpy(float), group[hi_col].to_numpy(float)
                    ok = np.isfinite(lo) & np.isfinite(hi)
                    lo_edge.setData(x[ok], lo[ok])
                    hi_edge.setData(x[ok], hi[ok])
                else:
                    lo_edge.setData([], [])
                    hi_edge.setData([], [])
                self.missing_legend.addItem(self.missing_curves[key], method)
                drawn.add(key)
        for key, curve in self.missing_curves.items():
            if key not in drawn:
                curve.setData([], [])
                for edge in self._band_edges[key]:
                    edge.setData([], [])
        classes = (frame.attrs.get("classes") if frame is not None else None) or []
        level = (1.0 / len(classes) if metric == "balanced_accuracy" else frame.attrs.get("majority_rate")) \
            if frame is not None and classes else None
        self.missing_chance.setVisible(level is not None)
        if level is not None:
            self.missing_chance.setValue(level)
        if frame is None:
            return
        n = int(frame["n_persons"].max()) if len(frame) else 0
        text = strings.ROBUSTNESS_MISSING_DONE.format(n=n, seed=frame.attrs.get("split_seed", "?"))
        if metric != "balanced_accuracy":
            text += strings.ROBUSTNESS_MISSING_NO_CI
        errors = frame.attrs.get("errors") or {}
        if errors:
            text += " " + strings.ROBUSTNESS_MISSING_SKIPPED.format(
                names="; ".join(f"{name} ({message})" for name, message in errors.items()))
        self.missing_label.setText(text)

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


def _evaluate_job(fn, run_dir, mask_ratios, *, report, stop, device, missing_fn=None, missing_shares=MISSING_SHARES):
    """Run `evaluate_robustness` (or an injected stand-in), reporting ("progress", done, total)
    after each pass and ("row", row) with each finished row; then, unless stopped, the comparison
    with the baselines (`missing_fn`), reported as ("missing-progress", done, total) and
    ("missing", frame), or ("missing-error", message): its failure does not hide the robustness
    rows. Without a device, the default one is chosen here, on the worker (choosing it imports
    torch: never on the GUI thread)."""
    if device is None:
        from smmt_core.device import select_device

        device = str(select_device("auto"))
    frame = fn(run_dir, mask_ratios, on_progress=lambda done, total: report(("progress", done, total)),
               on_row=lambda row: report(("row", row)), stop=stop, device=device)
    if missing_fn is not None and not stop.is_set() and not frame.attrs.get("stopped"):
        from smmt_core.errors import SMMTError

        try:
            missing = missing_fn(run_dir, shares=missing_shares, device=device, stop=stop,
                                 on_progress=lambda done, total: report(("missing-progress", done, total)))
        except SMMTError as error:
            report(("missing-error", str(error)))
        else:
            report(("missing", missing))
    return frame


def _real_missing(run_dir, **kwargs):
    """The model and every baseline with a share of the test persons lacking a modality."""
    from smmt_core.experiments.missing import evaluate_missing_shares

    return evaluate_missing_shares(run_dir, **kwargs)


def _mean_sd(mean: float, sd: float) -> str:
    if mean is None or np.isnan(mean):
        return "–"
    return f"{mean:.3f} ± {sd:.3f}" if sd and not np.isnan(sd) and sd > 0 else f"{mean:.3f}"
