"""Nothing cut at the default window size (the dashboard's minutes axis with the
log panel open, the cohort table's prediction columns), and a guess that does not look like a finding."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette

from smmt_core.data.subject import Cohort, Subject
from smmt_core.predict import Prediction
from smmt_gui.app import _style_sheet
from smmt_gui.panels.prediction import PredictionPanel
from smmt_gui.window_layout import COHORT_DOCK_WIDTH, DEFAULT_SIZE


def test_the_minutes_axis_stays_whole_with_the_log_panel_open(main_window, qtbot, tmp_path):
    from tests.gui.test_training_dashboard import scripted_events

    window = main_window
    window.resize(*DEFAULT_SIZE)
    window.show()
    window.tabs.setCurrentWidget(window.dashboard)
    window.log_dock.show()
    qtbot.waitExposed(window)
    for event in scripted_events(tmp_path / "run", epochs=12, batches=4):
        window.dashboard.handle_event(event)
    qtbot.waitUntil(lambda: window.dashboard.energy_plot.isVisible(), timeout=2000)
    qtbot.wait(50)  # one layout pass
    for plot in (window.dashboard.energy_plot, window.dashboard.power_plot, window.dashboard.loss_plot):
        label = plot.getAxis("bottom").label
        assert label.isVisible() and label.toPlainText().strip() in ("minutes", "epoch")
        box = label.sceneBoundingRect()
        assert 0 <= box.top() and box.bottom() <= plot.viewport().height(), (label.toPlainText(), box, plot.height())
    scroll = window.dashboard.scroll  # below its minimum the dashboard scrolls instead of squeezing
    assert scroll.widget().height() >= scroll.widget().minimumSizeHint().height()


def test_the_cohort_tables_prediction_columns_fit_the_default_window(main_window, qtbot, tmp_path):
    window = main_window
    window.resize(*DEFAULT_SIZE)
    window.resizeDocks([window.cohort_dock], [COHORT_DOCK_WIDTH], Qt.Orientation.Horizontal)  # its width on first launch
    window.show()
    qtbot.waitExposed(window)
    subjects = [Subject(f"sub-{i:03d}", label="AD" if i % 2 else "CN", t1_path=tmp_path / f"{i}.nii",
                        numeric={"MMSE": 25.0}, categorical={"PTGENDER": "Male"}) for i in range(60)]
    window.cohort_panel.set_cohort(Cohort(subjects, layout="bids", root=tmp_path, name="wide"))
    for subject in subjects[:5]:
        window.cohort_panel.set_prediction(subject.key, "CN", 0.72)
    table = window.cohort_panel.table
    qtbot.wait(50)
    header = table.horizontalHeader()
    last = header.logicalIndex(header.count() - 1)
    assert table.horizontalScrollBar().maximum() == 0
    assert header.sectionViewportPosition(last) + header.sectionSize(last) <= table.viewport().width()
    for column in (2, 3, 4, 5):  # label, modalities, prediction, P: never squeezed below their contents
        assert header.sectionSize(column) >= table.sizeHintForColumn(column)


def guess(note: str | None) -> Prediction:
    reliability = {"at_chance": bool(note), "note": note} if note else {}
    return Prediction(subject_id="sub-01", prediction="AD", probabilities={"CN": 0.45, "AD": 0.55},
                      modalities_used=["clinical"], modalities_missing=[], contributions={}, reliability=reliability)


def test_a_guess_is_not_bold_and_is_muted(qtbot):
    panel = PredictionPanel()
    panel.setStyleSheet(_style_sheet())  # the app's style sheet, as create_app sets it
    qtbot.addWidget(panel)
    panel.set_model("run", ["CN", "AD"])
    panel.set_subject("sub-01", {"clinical"})
    panel.show()
    qtbot.waitExposed(panel)
    title = panel.title
    panel.set_prediction(guess(None))
    finding_colour = title.palette().color(QPalette.ColorRole.WindowText)
    assert title.font().bold()
    panel.set_prediction(guess("a guess, not a finding: at chance"))
    assert "a guess, not a finding" in panel.warnings.text()
    assert not title.font().bold()
    assert title.palette().color(QPalette.ColorRole.WindowText).lightness() > finding_colour.lightness() + 60
    panel.set_prediction(guess(None))  # a finding again
    assert title.font().bold()


def test_the_contributions_caption_stays_below_its_chart_when_the_panel_is_short(qtbot):
    """A short dock (the log panel open, a small screen) gives the panel less height than its
    content needs: the content scrolls instead of being squeezed (which drew the caption over the chart)."""
    from PySide6.QtWidgets import QWidget

    holder = QWidget()  # the panel placed by hand, as a dock would: below its own minimum height
    qtbot.addWidget(holder)
    holder.resize(320, 300)
    panel = PredictionPanel(holder)
    panel.setGeometry(0, 0, 320, 300)
    panel.set_model("run", ["CN", "AD"])
    panel.set_subject("sub-01", {"mri", "clinical", "categorical"})
    panel.set_prediction(Prediction(subject_id="sub-01", prediction="CN", probabilities={"CN": 0.96, "AD": 0.04},
                                    modalities_used=["mri", "clinical", "categorical"], modalities_missing=[],
                                    contributions={"mri": 0.01, "clinical": 0.16, "categorical": 0.05}))
    holder.show()
    qtbot.waitExposed(holder)
    assert panel.contrib_text.text().startswith("MRI: +0.01")

    def laid_out_whole() -> bool:  # the layout settles in a few passes
        chart, caption = panel.contrib_plot.geometry(), panel.contrib_text.geometry()
        return caption.top() > chart.bottom() and chart.height() >= panel.contrib_plot.minimumHeight()

    qtbot.waitUntil(laid_out_whole, timeout=5000)
    assert panel.scroll.verticalScrollBar().maximum() > 0  # the rest is a scroll away


def test_a_long_viewer_note_ends_in_an_ellipsis_and_keeps_its_text_in_the_tooltip(qtbot):
    from PySide6.QtWidgets import QLabel

    from smmt_gui.widgets import ElidedLabel

    label = ElidedLabel("what the space means")
    qtbot.addWidget(label)
    label.setText("scan 2 mm, on the model's grid")
    label.resize(90, 20)
    label.show()
    qtbot.waitExposed(label)
    drawn = QLabel.text(label)
    assert drawn.endswith("…") and label.is_elided()
    assert label.fontMetrics().horizontalAdvance(drawn) <= label.width()
    assert label.text() == "scan 2 mm, on the model's grid"
    assert label.toolTip().startswith("scan 2 mm, on the model's grid") and "what the space means" in label.toolTip()
    label.resize(600, 20)
    qtbot.waitUntil(lambda: not label.is_elided(), timeout=2000)
    assert QLabel.text(label) == "scan 2 mm, on the model's grid"


def test_the_test_set_curves_keep_their_width_and_scroll_into_view_when_narrow(qtbot, tmp_path):
    """Narrower than its results row, the dashboard scrolls sideways: the ROC and reliability plots
    keep their width (titles, AUC and ECE whole) instead of being squeezed or cut off unreachably."""
    from smmt_gui.panels.training import TEST_CURVES_MIN_WIDTH, TrainingDashboard
    from tests.gui.test_training_dashboard import scripted_events

    dashboard = TrainingDashboard()
    qtbot.addWidget(dashboard)
    dashboard.resize(560, 800)
    dashboard.show()
    qtbot.waitExposed(dashboard)
    for event in scripted_events(tmp_path / "run", epochs=3, batches=2):
        dashboard.handle_event(event)
    qtbot.waitUntil(lambda: dashboard.roc_plot.isVisible(), timeout=2000)
    bar = dashboard.scroll.horizontalScrollBar()
    qtbot.waitUntil(lambda: bar.isVisible() and bar.maximum() > 0, timeout=5000)
    assert dashboard.roc_plot.width() >= TEST_CURVES_MIN_WIDTH - 10  # its layout margins aside
    bar.setValue(bar.maximum())
    viewport = dashboard.scroll.viewport()
    qtbot.waitUntil(lambda: dashboard.roc_plot.mapTo(viewport, dashboard.roc_plot.rect().topRight()).x()
                    < viewport.width(), timeout=5000)
