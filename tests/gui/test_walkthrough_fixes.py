"""A new user's walk through the app: honest at a glance, nothing cut off, never silent."""

from __future__ import annotations

from PySide6.QtCore import Qt

from smmt_gui import strings
from smmt_gui.panels.cohort import PREDICTION_COLUMN, PROBABILITY_COLUMN
from smmt_gui.window_layout import COHORT_DOCK_WIDTH


def _row_text(window, column: int, role=Qt.ItemDataRole.DisplayRole):
    panel = window.cohort_panel
    key = window.subject.key
    for row in range(panel.proxy.rowCount()):
        subject = panel.proxy.data(panel.proxy.index(row, 0), Qt.ItemDataRole.UserRole)
        if subject.key == key:
            return panel.proxy.data(panel.proxy.index(row, column), role)
    raise AssertionError(f"{key} not in the table")


def test_the_cohort_row_follows_the_modality_switches(loaded, qtbot):
    window = loaded
    usable = sorted(window.prediction_panel.available & window.prediction_panel.model_modalities)
    assert len(usable) >= 2
    full = _row_text(window, PREDICTION_COLUMN)
    assert full and not full.endswith(strings.COHORT_REDUCED_MARK)
    first = window.prediction_panel.toggles[usable[0]]
    with qtbot.waitSignal(window.prediction_shown, timeout=60000):
        first.setChecked(False)
    assert _row_text(window, PREDICTION_COLUMN).endswith(strings.COHORT_REDUCED_MARK)
    tip = _row_text(window, PROBABILITY_COLUMN, Qt.ItemDataRole.ToolTipRole)
    assert strings.MODALITY_NAMES[usable[0]].split(" (")[0] in tip
    for name in usable[1:]:
        window.prediction_panel.toggles[name].setChecked(False)
    qtbot.waitUntil(lambda: _row_text(window, PREDICTION_COLUMN) == strings.COHORT_NOTHING_PREDICTED, timeout=60000)
    assert _row_text(window, PROBABILITY_COLUMN) == ""
    qtbot.waitUntil(lambda: not window.is_busy(), timeout=60000)
    assert _row_text(window, PREDICTION_COLUMN) == strings.COHORT_NOTHING_PREDICTED  # no late result overwrote it


def test_the_status_bar_ends_on_what_happened_without_a_model(main_window, qtbot, tiny_run):
    cohort, _run_dir = tiny_run
    window = main_window
    with qtbot.waitSignal(window.subject_shown, timeout=60000):
        window.open_path(cohort)
    qtbot.waitUntil(lambda: not window.is_busy(), timeout=30000)
    message = window.statusBar().currentMessage()
    assert not message.startswith("Loading"), message
    assert message == strings.STATUS_SHOWN_NO_MODEL.format(subject=window.subject.key)


def test_the_status_bar_ends_on_a_refusal(loaded, qtbot, monkeypatch):
    from smmt_core.errors import SMMTError
    from smmt_gui import jobs

    def refuse(*_args):
        raise SMMTError("the scan failed quality control")

    monkeypatch.setattr(jobs, "predict_job", refuse)
    window = loaded
    window.cohort_panel.select_row(1)
    qtbot.waitUntil(lambda: window.controller.shown.refusal is not None and not window.is_busy(), timeout=60000)
    message = window.statusBar().currentMessage()
    assert not message.startswith("Loading"), message
    assert "failed quality control" in message and window.subject.key in message


def test_a_refused_prediction_is_in_the_log_panel(loaded, qtbot, monkeypatch):
    from smmt_core.errors import SMMTError
    from smmt_gui import jobs

    def refuse(*_args):
        raise SMMTError("the scan failed quality control (registration score 0.21)")

    monkeypatch.setattr(jobs, "predict_job", refuse)
    window = loaded
    window.cohort_panel.select_row(1)
    qtbot.waitUntil(lambda: any("failed quality control" in line for line in window.log_panel.lines()),
                    timeout=60000)
    qtbot.waitUntil(lambda: not window.is_busy(), timeout=60000)


def test_a_qc_failure_in_the_intake_dialog_is_in_the_log_panel(qtbot, tmp_path):
    from types import SimpleNamespace

    from smmt_gui.intake_dialog import IntakeDialog
    from smmt_gui.panels.log import LogPanel

    panel = LogPanel()
    qtbot.addWidget(panel)
    dialog = IntakeDialog(tmp_path / "raw_T1w.nii.gz")
    qtbot.addWidget(dialog)
    qc = SimpleNamespace(verdict="fail", score=0.21, reason="the brain outline misses the scan")
    picture = tmp_path / "qc.png"
    dialog._on_result((SimpleNamespace(qc=qc, device="", notes=[], picture=picture), None))
    qtbot.waitUntil(lambda: any("misses the scan" in line for line in panel.lines()), timeout=2000)
    assert any(str(picture) in line for line in panel.lines())
    panel.detach()


def test_predict_all_leaves_its_summary_and_failures_in_the_log_panel(loaded, qtbot, monkeypatch):
    from smmt_core.errors import SMMTError

    window = loaded
    predictor = window.predictor
    subjects = window.session.subjects()
    bad = subjects[-1].key
    real_predict = predictor.predict

    def predict(subject, **kwargs):
        if subject.key == bad:
            raise SMMTError("unreadable scan")
        return real_predict(subject, **kwargs)

    monkeypatch.setattr(predictor, "predict", predict)
    with qtbot.waitSignal(window.idle, timeout=120000):
        window.predict_all()
    qtbot.waitUntil(lambda: window.controller._predict_all is None, timeout=10000)
    message = window.statusBar().currentMessage()
    assert "see the log" in message
    lines = window.log_panel.lines()
    assert any(bad in line and "unreadable scan" in line for line in lines)
    assert any(message in line for line in lines)


DEFAULT_SIZE = (1500, 900)


def _header_fits(table, column: int) -> bool:
    header = table.horizontalHeader()
    text = table.model().headerData(column, Qt.Orientation.Horizontal)
    return header.sectionSize(column) >= header.fontMetrics().horizontalAdvance(text) + 8


def _default_window(window, qtbot):
    window.resize(*DEFAULT_SIZE)
    window.resizeDocks([window.cohort_dock], [COHORT_DOCK_WIDTH], Qt.Orientation.Horizontal)
    window.show()
    qtbot.waitExposed(window)
    qtbot.wait(50)


def test_the_cohort_headers_are_readable_and_explained(main_window, qtbot, tmp_path):
    from smmt_core.data.subject import Cohort, Subject

    window = main_window
    _default_window(window, qtbot)
    table = window.cohort_panel.table
    model = table.model()
    columns = [c for c in range(model.columnCount()) if not table.isColumnHidden(c)]
    for column in columns:  # the empty table
        assert _header_fits(table, column), model.headerData(column, Qt.Orientation.Horizontal)
    for column in range(model.columnCount()):
        assert model.headerData(column, Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole)
    subjects = [Subject(f"sub-{i:03d}", label="CN", t1_path=tmp_path / f"{i}.nii", numeric={"MMSE": 25.0},
                        categorical={"PTGENDER": "Male"}) for i in range(60)]
    window.cohort_panel.set_cohort(Cohort(subjects, layout="bids", root=tmp_path, name="c"))
    window.cohort_panel.set_prediction(subjects[0].key, "borderline (leaning AD)", 0.55, ["mri"])
    qtbot.wait(50)
    for column in [c for c in range(model.columnCount()) if not table.isColumnHidden(c)]:
        assert _header_fits(table, column), model.headerData(column, Qt.Orientation.Horizontal)
    assert table.horizontalScrollBar().maximum() == 0


def test_the_test_metrics_are_whole_at_the_default_size(main_window, qtbot, tmp_path):
    from tests.gui.test_training_dashboard import scripted_events

    window = main_window
    _default_window(window, qtbot)
    window.tabs.setCurrentWidget(window.dashboard)
    for event in scripted_events(tmp_path / "run", epochs=2, batches=2):
        window.dashboard.handle_event(event)
    qtbot.wait(50)
    table = window.dashboard.metrics_table
    qtbot.waitUntil(table.isVisible, timeout=2000)
    for row in range(table.rowCount()):
        item = table.item(row, 0)
        if item is None or item.text() == "–":
            continue
        width = table.fontMetrics().horizontalAdvance(item.text())
        assert table.columnWidth(0) >= width, item.text()
        assert table.viewport().width() >= table.columnViewportPosition(0) + table.columnWidth(0), item.text()
        assert item.toolTip() and item.text() in item.toolTip()


def test_the_dashboard_title_names_the_folder_actually_created(qtbot, tmp_path):
    from smmt_core.train.config import TrainConfig
    from smmt_core.train.events import RunStarted
    from smmt_gui.panels.training import TrainingDashboard

    dashboard = TrainingDashboard()
    qtbot.addWidget(dashboard)
    config = TrainConfig.build("demo", dataset="demo", out=str(tmp_path), run_name="wiz-2ep", epochs=2)
    dashboard.handle_event(RunStarted(tmp_path / "wiz-2ep-2", 2, 2, n_train=20, n_val=5, n_test=6, device="cpu",
                                      config=config.to_dict()))
    assert dashboard.title_label.text() == strings.TRAINING_TITLE_RUN.format(name="wiz-2ep-2")


def test_the_wizard_states_the_demo_size_and_what_the_fraction_shrinks():
    from smmt_core.data.demo_defaults import DEFAULT_SUBJECTS

    demo_hint = dict((k, h) for k, _, h in strings.WIZARD_DATA_SOURCES)["demo"]
    assert f"{DEFAULT_SUBJECTS} synthetic subjects" in demo_hint
    assert f"{DEFAULT_SUBJECTS} synthetic subjects" in strings.WIZARD_DATA_DEMO_PENDING_SUMMARY
    assert "only" not in strings.WIZARD_FRACTION_HINT and "validation" in strings.WIZARD_FRACTION_HINT


def test_a_broken_file_opened_from_the_menu_is_not_called_dropped(main_window, qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    broken = tmp_path / "broken_T1w.nii.gz"
    broken.write_bytes(b"not a NIfTI image")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *args, **kwargs: (str(broken), ""))
    window = main_window
    window.act_open_file.trigger()
    qtbot.waitUntil(lambda: not window.is_busy(), timeout=30000)
    text = window.message_bar.label.text()  # the window is not shown: read the bar's label
    assert "dropped" not in text
    assert text.startswith(strings.ERROR_OPEN["file"].format(path=broken, message="").rstrip())
    assert str(broken) in text


def test_a_short_run_shows_its_energy_in_wh_and_whole_epochs(qtbot, tmp_path):
    from smmt_core.train.events import EnergyUpdate, RunFinished, RunStarted
    from smmt_gui.panels.training import TrainingDashboard, format_energy

    assert format_energy(4.12e-05) == "0.0412 Wh"
    assert format_energy(0.5) == "500 Wh" and format_energy(2.5) == "2.5 kWh"
    dashboard = TrainingDashboard()
    qtbot.addWidget(dashboard)
    dashboard.resize(1100, 800)
    dashboard.show()
    qtbot.waitExposed(dashboard)
    dashboard.handle_event(RunStarted(tmp_path / "run", 2, 2, n_train=20, n_val=5, n_test=6, device="cpu"))
    dashboard.handle_event(EnergyUpdate(1, elapsed_s=30.0, energy_kwh=4.12e-05, power_w=5.0, estimated=False))
    assert "0.0412 Wh" in dashboard.energy_label.text() and "0.0000" not in dashboard.energy_label.text()
    dashboard.handle_event(RunFinished(tmp_path / "run", stopped_early=False, test_metrics={}, energy_kwh=4.12e-05,
                                       duration_s=60.0))
    assert "0.0412 Wh" in dashboard.status_label.text()
    for plot in (dashboard.loss_plot, dashboard.acc_plot):
        axis = plot.getAxis("bottom")
        low, high = plot.getViewBox().viewRange()[0]
        ticks = [v for _spacing, values in axis.tickValues(low, high, axis.width() or 400) for v in values]
        assert ticks and all(float(v).is_integer() for v in ticks), ticks


def test_the_exported_png_carries_the_disclaimer_and_the_report_names_its_own_qc_copy(qtbot, tmp_path):
    import csv
    import dataclasses
    import json

    from PySide6.QtGui import QColor

    from smmt_gui.export import export_report, with_disclaimer
    from tests.gui.test_export import CONTEXT, image, make_prediction

    views = image()
    stamped = with_disclaimer(views, make_prediction(), CONTEXT)
    assert stamped.height() > views.height()
    band = [QColor(stamped.pixel(x, y)) for y in range(views.height(), stamped.height())
            for x in range(0, stamped.width(), 2)]
    assert any(c.red() > 100 and c.green() < 60 for c in band)  # dark red disclaimer text in the band

    picture = tmp_path / "cache" / "qc.png"
    picture.parent.mkdir()
    views.save(str(picture))
    through_intake = dataclasses.replace(make_prediction(), intake={"qc": "pass", "score": 0.8,
                                                                    "picture": str(picture)})
    (tmp_path / "out").mkdir()
    export_report(tmp_path / "out" / "report", through_intake, views, CONTEXT)
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert data["prediction"]["intake"]["picture"] == "report.qc.png"
    rows = list(csv.DictReader((tmp_path / "out" / "report.csv").read_text().splitlines()))
    assert {"section": "qc", "name": "picture", "value": "report.qc.png"} in rows
    assert (tmp_path / "out" / "report.qc.png").is_file()


def test_the_rendered_views_have_no_empty_block(main_window, qtbot):
    import numpy as np

    window = main_window
    window.resize(*DEFAULT_SIZE)
    window.show()
    qtbot.waitExposed(window)
    window.viewer_stack.setCurrentWidget(window.viewer)
    window.viewer.set_volume(np.random.default_rng(0).random((20, 24, 20)).astype(np.float32), np.eye(4))
    qtbot.wait(50)
    rendered = window.viewer.render_views()
    top = max(window.viewer.views[p].height() for p in window.viewer.views)
    assert rendered.height() <= top + window.viewer.model_input_title.height() + 2


def test_diagnostics_say_torch_is_not_loaded_without_importing_it(tmp_path):
    from smmt_core import __version__
    from smmt_core.diagnostics import NOT_LOADED, diagnostics_text

    text = diagnostics_text(qt_version="6.9", data_folder=tmp_path / "data", runs_folder=tmp_path / "runs",
                            cache_folder=tmp_path / "cache", log_lines=[f"line {i}" for i in range(100)],
                            modules={})
    assert __version__ in text and "6.9" in text and str(tmp_path / "cache") in text
    assert "torch" in text and NOT_LOADED in text
    assert "line 99" in text and "line 10\n" not in text  # the last lines only
    from types import SimpleNamespace

    torch = SimpleNamespace(__version__="9.9", cuda=SimpleNamespace(is_available=lambda: False),
                            get_num_threads=lambda: 1, get_num_interop_threads=lambda: 2)
    loaded = diagnostics_text(cache_folder=tmp_path, modules={"torch": torch})
    assert "9.9" in loaded and "1 (interop 2)" in loaded and NOT_LOADED not in loaded


def test_help_copies_the_diagnostics_to_the_clipboard(main_window, qtbot):
    from PySide6.QtGui import QGuiApplication

    window = main_window
    assert window.act_diagnostics in window.menuBar().actions()[-1].menu().actions()
    window.act_diagnostics.trigger()
    copied = QGuiApplication.clipboard().text()
    assert copied.startswith("SMMT Studio diagnostics") and "cache folder" in copied
