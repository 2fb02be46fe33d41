"""The main window's widgets and where they go, and the layout saved between sessions.

`build(window)` creates the message bar over the Viewer / Training / Robustness tabs, the cohort,
prediction, log and clusters docks and the status bar's progress bar, and keeps each on the window
(`window.viewer`, `window.cohort_panel`, ...), as Qt Designer's setupUi would. `restore(window)` and
`save(window)` bring back and keep the window's geometry, its docks and the viewer's display
settings. Kept apart from `main_window` so that the window's own code is what it does: connecting
these widgets to the session and the controller, and drawing what they say.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget, QLabel, QProgressBar, QTabWidget, QVBoxLayout, QWidget

from smmt_gui import strings
from smmt_gui.panels.cohort import CohortPanel
from smmt_gui.panels.log import LogPanel
from smmt_gui.panels.prediction import PredictionPanel
from smmt_gui.viewer.colormaps import COLORMAPS
from smmt_gui.viewer.tab import ViewerTab
from smmt_gui.widgets import MessageBar

log = logging.getLogger(__name__)

# The docks' widths on first launch: the cohort table's columns (a "borderline (leaning AD) *" row, its
# headers) whole beside a vertical scroll bar, at the default window width.
COHORT_DOCK_WIDTH, PREDICTION_DOCK_WIDTH = 450, 320
DEFAULT_SIZE = (1500, 900)  # the window's size on first launch


def build(window) -> None:
    """The window's central tabs, docks and status bar (not yet connected to anything)."""
    _build_central(window)
    _build_docks(window)
    _build_status_bar(window)


def _build_central(window) -> None:
    window.message_bar = MessageBar()
    window.viewer_stack = tab = ViewerTab()
    window.welcome, window.viewer, window.parcellation = tab.welcome, tab.viewer, tab.parcellation
    window.tabs = QTabWidget()
    window.tabs.setObjectName("mainTabs")
    window.tabs.addTab(window.viewer_stack, strings.TAB_VIEWER)
    window.dashboard = _make_dashboard()
    window.tabs.addTab(window.dashboard, strings.TAB_TRAINING)
    window.robustness = _make_robustness()
    window.tabs.addTab(window.robustness, strings.TAB_ROBUSTNESS)
    central = QWidget()
    layout = QVBoxLayout(central)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(0)
    layout.addWidget(window.message_bar)
    layout.addWidget(window.tabs, 1)
    window.setCentralWidget(central)


def _make_dashboard() -> QWidget:
    try:
        from smmt_gui.panels.training import TrainingDashboard
    except Exception as error:  # noqa: BLE001 - a broken optional view must not stop the app
        log.error("training dashboard unavailable: %s", error)
        return QLabel(strings.ERROR_TRAINING_UNAVAILABLE.format(message=error))
    return TrainingDashboard()


def _make_robustness() -> QWidget:
    try:
        from smmt_gui.panels.robustness import RobustnessPanel
    except Exception as error:  # noqa: BLE001
        log.error("robustness view unavailable: %s", error)
        return QLabel(strings.ERROR_TRAINING_UNAVAILABLE.format(message=error))
    return RobustnessPanel()


def _build_docks(window) -> None:
    window.cohort_panel = CohortPanel()
    window.prediction_panel = PredictionPanel()
    window.log_panel = LogPanel()
    window.cohort_dock = _dock(window, strings.DOCK_COHORT, window.cohort_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
    window.prediction_dock = _dock(window, strings.DOCK_PREDICTION, window.prediction_panel,
                                   Qt.DockWidgetArea.RightDockWidgetArea)
    window.log_dock = _dock(window, strings.DOCK_LOG, window.log_panel, Qt.DockWidgetArea.BottomDockWidgetArea)
    window.log_dock.hide()
    window.clusters_dock = _dock(window, strings.DOCK_CLUSTERS, window.viewer_stack.cluster_legend,
                                 Qt.DockWidgetArea.RightDockWidgetArea)
    window.clusters_dock.hide()  # shown for a volume model's prediction
    window.resizeDocks([window.cohort_dock, window.prediction_dock], [COHORT_DOCK_WIDTH, PREDICTION_DOCK_WIDTH],
                       Qt.Orientation.Horizontal)


def _dock(window, title: str, widget: QWidget, area) -> QDockWidget:
    dock = QDockWidget(title, window)
    dock.setObjectName(f"dock_{title.lower()}")
    dock.setWidget(widget)
    window.addDockWidget(area, dock)
    return dock


def _build_status_bar(window) -> None:
    window.progress = QProgressBar()
    window.progress.setMaximumWidth(220)
    window.progress.setVisible(False)
    window.statusBar().addPermanentWidget(window.progress)
    window.statusBar().showMessage(strings.STATUS_READY)


def restore(window) -> None:
    """The geometry, docks and viewer settings of the last session (defaults on first launch)."""
    settings, viewer = window.settings, window.viewer
    geometry, state = settings.window_geometry(), settings.window_state()
    if geometry is not None:
        window.restoreGeometry(geometry)
    else:
        window.resize(*DEFAULT_SIZE)
    if state is not None:
        window.restoreState(state)
    colormap = settings.viewer_colormap()
    if colormap in COLORMAPS:
        viewer.set_colormap(colormap)
    opacity = settings.overlay_opacity()
    if opacity is not None:
        viewer.set_opacity(opacity)
    viewer.set_radiological(settings.viewer_radiological())
    viewer.radiological_changed.connect(settings.save_viewer_radiological)


def save(window) -> None:
    """Keep the geometry, docks and viewer settings for the next session."""
    settings = window.settings
    settings.save_viewer(window.viewer.colormap_box.currentText(), window.viewer.opacity)
    settings.save_window(window.saveGeometry(), window.saveState())
    settings.sync()
