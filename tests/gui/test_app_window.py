"""The main window end to end with a real (tiny) trained model: predict, toggle modalities,
overlay = model's cluster ids, export, settings, badges, closing mid-job, the smmt-gui command."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtGui import QImage

from smmt_core import __version__
from smmt_gui import shortcuts, strings
from smmt_gui.workers import FunctionWorker, live_workers


def close_and_wait(window, qtbot, timeout_ms: int = 60000) -> None:
    """Close the window; when a job still has to stop, wait until the window really closes."""
    if not window.close():
        qtbot.waitUntil(window.is_closed, timeout=timeout_ms)
    assert window.is_closed()


def test_prediction_for_the_first_subject(loaded):
    window = loaded
    prediction = window.last_prediction
    assert prediction.subject_id == window.subject.key == "sub-001"
    assert set(prediction.probabilities) == {"CN", "AD"}
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert prediction.modalities_used == ["mri", "clinical", "categorical"]
    bar = window.prediction_panel.prob_bars[prediction.prediction]
    assert bar.value() == round(prediction.probabilities[prediction.prediction] * 1000)
    assert window.cohort_panel.model.predictions["sub-001"][0] == prediction.prediction
    assert window.model_box.currentText() == "tiny" and window.act_export.isEnabled()
    assert window.device_label.text() == "device: CPU"
    assert window.viewer.has_volume and window.viewer.space_label.text() in (
        strings.SPACE_MNI, strings.SPACE_MNI_SCAN_ON_GRID.format(voxel="8 mm"))


def test_cluster_overlay_is_what_the_model_returned(loaded):
    window = loaded
    prediction = window.last_prediction
    assert prediction.cluster_ids, "the model should return cluster ids for the MRI tokens"
    strip = window.viewer.model_input
    for s in range(len(prediction.slice_indices)):
        np.testing.assert_array_equal(strip.overlay_ids(s), prediction.cluster_ids[0][s])
        np.testing.assert_array_equal(strip.overlays[s].image, prediction.cluster_ids[0][s])
        np.testing.assert_allclose(strip.images[s].image, prediction.slices[s])
    # the axial view is on a slice the model saw, with that slice's grid drawn over it
    k = window.viewer.cursor[2]
    assert k in prediction.slice_indices
    s = prediction.slice_indices.index(k)
    np.testing.assert_array_equal(window.viewer.views["axial"].overlay.image,
                                  prediction.cluster_ids[0][s].T[:, ::-1])


def test_toggling_a_modality_updates_the_prediction(loaded, qtbot):
    window = loaded
    before = window.last_prediction
    with qtbot.waitSignal(window.prediction_shown, timeout=30000) as blocker:
        window.prediction_panel.toggles["clinical"].setChecked(False)
    after = blocker.args[0]
    assert after.modalities_used == ["mri", "categorical"]
    assert after.probabilities != before.probabilities
    assert "Clinical" not in window.prediction_panel.used_label.text()
    with qtbot.waitSignal(window.prediction_shown, timeout=30000) as blocker:
        window.prediction_panel.toggles["mri"].setChecked(False)
    assert blocker.args[0].modalities_used == ["categorical"]
    assert window.viewer.model_input.images == []  # no MRI used: no clusters to draw
    # the keyboard shortcut switches MRI back on
    action = next(a for a in window.actions() if a.shortcut().toString() == shortcuts.TOGGLE_MRI)
    with qtbot.waitSignal(window.prediction_shown, timeout=30000) as blocker:
        action.trigger()
    assert blocker.args[0].modalities_used == ["mri", "categorical"]


def test_everything_off_says_so_without_crashing(loaded, qtbot):
    window = loaded
    for name in ("mri", "clinical", "categorical"):
        window.prediction_panel.toggles[name].setChecked(False)
    qtbot.waitUntil(lambda: not window.is_busy(), timeout=30000)
    assert window.last_prediction is None and not window.act_export.isEnabled()
    panel = window.prediction_panel
    # no class left in bold, no probabilities, and the reason in words
    assert panel.title.text() == strings.PRED_NOTHING_TO_PREDICT
    assert all(bar.value() == 0 and bar.format().endswith("–") for bar in panel.prob_bars.values())
    assert window.viewer.model_input.images == []
    with qtbot.waitSignal(window.prediction_shown, timeout=30000) as blocker:  # one back on: a prediction
        panel.toggles["clinical"].setChecked(True)
    assert blocker.args[0].modalities_used == ["clinical"]


def test_fast_toggling_runs_at_most_one_extra_prediction(loaded, qtbot):
    window = loaded
    calls = []
    original = window.predictor.predict

    def counting(*args, **kwargs):
        calls.append(kwargs.get("modalities"))
        return original(*args, **kwargs)

    window.predictor.predict = counting
    box = window.prediction_panel.toggles["categorical"]
    for _ in range(5):
        box.toggle()
    qtbot.waitUntil(lambda: not window.is_busy(), timeout=30000)
    assert 1 <= len(calls) <= 2
    assert calls[-1] == ["clinical", "mri"]  # the final state wins
    assert window.last_prediction.modalities_used == ["mri", "clinical"]


def test_selecting_another_subject_predicts_it(loaded, qtbot):
    window = loaded
    with qtbot.waitSignal(window.prediction_shown, timeout=30000) as blocker:
        window.cohort_panel.select_row(7)
    assert blocker.args[0].subject_id == window.subject.key == "sub-008"


def test_export_from_the_window(loaded, tmp_path):
    loaded.show()
    files = loaded.export_report_to(tmp_path / "report")
    # the window says where the files went, with a link to the folder
    assert loaded.message_bar.link() == tmp_path.resolve().as_uri()
    assert "report.pdf" in loaded.message_bar.text()
    assert sorted(p.suffix for p in files) == [".csv", ".json", ".pdf", ".png"]
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["model"]["name"] == "tiny" and data["prediction"]["subject"] == "sub-001"
    assert data["disclaimer"] == strings.DISCLAIMER
    image = QImage(str(tmp_path / "report.png"))
    assert image.width() > 400 and image.height() > 300
    # only the views and the model's input with its overlay: none of the controls below the views;
    # the PNG adds a band with the disclaimer below them
    viewer = loaded.viewer
    views = viewer.render_views()
    assert views.height() < viewer.height() - viewer.reset_button.height()
    assert image.height() > views.height()


def test_settings_remember_models_folders_and_layout(loaded, tiny_run):
    cohort, run_dir = tiny_run
    settings = loaded.settings
    assert settings.recent_models()[0] == str(run_dir.resolve())
    assert settings.recent_folders()[0] == str(cohort.resolve())
    loaded.close()
    from smmt_gui.settings import AppSettings

    fresh = AppSettings()
    assert fresh.window_geometry() is not None and fresh.window_state() is not None
    assert fresh.recent_models()[0] == str(run_dir.resolve())


def test_badges_and_about(main_window, qtbot):
    main_window.show()
    assert main_window.research_badge.isVisible()
    assert main_window.research_badge.text() == strings.RESEARCH_BADGE
    assert not main_window.synthetic_badge.isVisible()
    box = main_window.show_about()
    assert __version__ in box.text() and "not a medical device" in box.text()
    box.close()
    assert main_window.viewer_stack.currentWidget() is main_window.welcome


def test_synthetic_cohort_shows_the_badge(main_window, qtbot, tmp_path):
    from smmt_core.data.subject import Cohort, Subject

    main_window.show()
    cohort = Cohort([Subject("demo-001", label="AD")], layout="bids", root=tmp_path, name="demo", synthetic=True)
    main_window.set_cohort(cohort)
    qtbot.waitUntil(lambda: main_window.synthetic_badge.isVisible(), timeout=2000)  # toolbar lays out lazily
    assert main_window.cohort_panel.synthetic_badge.isVisible()


def test_shortcuts_are_unique():
    values = list(shortcuts.all_shortcuts().values())
    assert len(values) == len(set(values))


def test_closing_stops_and_joins_running_jobs(main_window, qtbot):
    started = threading.Event()
    stopped = []

    def slow(stop):
        started.set()
        while not stop.is_set():
            time.sleep(0.01)
        stopped.append(True)

    worker = main_window.runner.start_worker(FunctionWorker(slow, stop_kw="stop", name="slow"))
    assert started.wait(5)
    close_and_wait(main_window, qtbot)  # closes as soon as the job has seen the stop flag
    assert stopped == [True] and not worker.is_running() and live_workers() == []
    assert main_window.is_closed()


def test_closing_waits_for_a_slow_job_without_freezing(main_window, qtbot, monkeypatch):
    """A job that needs a while to stop keeps the window open, saying "stopping…" with its
    controls disabled, and the window closes by itself once the job has ended. close() never
    waits for the job: here the job cannot end before the test releases it."""
    main_window.show()
    started, release = threading.Event(), threading.Event()
    finished_cleanly = []

    def slow_to_stop(stop):
        started.set()
        stop.wait(30)
        release.wait(30)  # e.g. finishing a training batch and writing its checkpoint
        finished_cleanly.append(True)

    main_window.runner.start_worker(FunctionWorker(slow_to_stop, stop_kw="stop", name="slow-job"))
    assert started.wait(5)
    closed = []
    main_window.closed.connect(lambda: closed.append(True))
    assert main_window.close() is False  # ignored for now, and returned without waiting
    assert finished_cleanly == [] and not main_window.is_closed() and main_window.isVisible()
    assert strings.STATUS_STOPPING in main_window.message_bar.text() and "slow-job" in main_window.message_bar.text()
    assert not main_window.toolbar.isEnabled() and not main_window.act_open_folder.isEnabled()
    trainings = []
    monkeypatch.setattr(main_window.dashboard, "start", trainings.append)
    main_window.start_training("a config")
    assert trainings == []  # nothing new starts while stopping
    assert main_window.close() is False  # asking again changes nothing
    release.set()
    qtbot.waitUntil(main_window.is_closed, timeout=10000)
    assert finished_cleanly == [True] and closed == [True]
    assert live_workers() == [] and not main_window.isVisible()


def test_closing_mid_training_stops_and_joins(main_window, qtbot, tiny_run, tmp_path):
    from tests.core.c1_support import tiny_config

    cohort, _ = tiny_run
    dashboard = main_window.dashboard
    runs = tmp_path / "runs"
    config = tiny_config(cohort, runs, run_name="closing", epochs=200)
    main_window.start_training(config)
    assert main_window.tabs.currentWidget() is dashboard and dashboard.is_running()
    # wait until the run is under way (its first checkpoint is on disk), then close the window
    qtbot.waitUntil(lambda: any(runs.rglob("*.safetensors")), timeout=120000)
    close_and_wait(main_window, qtbot)
    assert live_workers() == []  # the training thread has ended before the window closed
    qtbot.waitUntil(lambda: not dashboard.is_running(), timeout=5000)  # its queued "finished" arrives
    leftovers = [p.name for p in runs.rglob("*") if p.name.startswith(".") or p.suffix in (".tmp", ".part")]
    assert leftovers == []
    run_json = json.loads(next(runs.rglob("run.json")).read_text())
    assert run_json.get("status") in ("stopped", "finished")


def test_training_to_completion_opens_the_new_model(main_window, qtbot, tiny_run, tmp_path):
    from tests.core.c1_support import tiny_config

    cohort, _ = tiny_run
    config = tiny_config(cohort, tmp_path / "runs", run_name="fresh", epochs=1)
    with qtbot.waitSignal(main_window.model_loaded, timeout=120000) as blocker:
        main_window.start_training(config)
    assert blocker.args[0].run_name == "fresh"
    assert main_window.tabs.currentIndex() == 0
    assert main_window.model_box.currentText().startswith("fresh")


def test_smmt_gui_screenshot_command(qtbot, tiny_run, tmp_path):
    from smmt_gui.app import main

    cohort, run_dir = tiny_run
    target = tmp_path / "shots" / "main.png"
    code = main([str(cohort / "sub-003"), "--model", str(run_dir), "--screenshot", str(target), "--size", "1280x800"])
    assert code == 0
    image = QImage(str(target))
    assert (image.width(), image.height()) == (1280, 800)
    from PySide6.QtGui import QGuiApplication

    assert QGuiApplication.desktopFileName() == "smmt-studio"  # packaging's .desktop file uses this name


def test_smmt_gui_screenshot_reports_a_bad_path(qtbot, tmp_path):
    from smmt_gui.app import main

    target = tmp_path / "bad.png"
    assert main([str(tmp_path / "missing"), "--no-runs", "--screenshot", str(target)]) == 1
    assert target.is_file()  # the window (with its error message) is still rendered


@pytest.fixture
def small_demo(monkeypatch, tmp_path):
    """ensure_demo_cohort builds a 4-subject demo cohort in tmp_path (the real builder, just smaller)."""
    import smmt_core.data.demo as demo

    target = tmp_path / "demo-cohort"
    monkeypatch.setattr(demo, "ensure_demo_cohort", lambda progress=None, stop=None: demo.make_demo_cohort(
        target, n_subjects=4, seed=1, missing_rate=0.0, progress=progress, stop=stop))
    return target


@pytest.mark.slow
def test_welcome_offers_the_demo_cohort_with_progress(main_window, qtbot, small_demo):
    main_window.show()
    values = []
    main_window.progress.valueChanged.connect(values.append)
    with qtbot.waitSignal(main_window.subject_shown, timeout=120000):
        main_window.welcome.demo_button.click()
    assert main_window.cohort.synthetic and len(main_window.cohort) == 4
    assert main_window.cohort_panel.model.rowCount() == 4
    assert 4 in values  # the status-bar progress bar followed the build
    assert not main_window.viewer.synthetic_badge.isHidden()
    qtbot.waitUntil(lambda: main_window.synthetic_badge.isVisible(), timeout=2000)
    assert main_window.viewer.has_volume  # no model yet: the preprocessed MRI is shown


def test_closing_while_the_demo_builds_leaves_nothing_behind(main_window, qtbot, small_demo):
    main_window.show()
    main_window.open_demo_cohort()
    qtbot.waitUntil(lambda: main_window.progress.value() >= 1, timeout=120000)
    errors = []
    main_window.show_error = errors.append
    close_and_wait(main_window, qtbot)
    assert live_workers() == []
    assert not small_demo.exists()
    assert not [p for p in small_demo.parent.iterdir() if ".building-" in p.name]
    assert errors == []  # the build stopped because the window asked it to: no error for the user


def test_first_launch_loads_the_newest_model(qtbot, tiny_run, monkeypatch):
    from smmt_gui.main_window import MainWindow

    _cohort, run_dir = tiny_run
    monkeypatch.setenv("SMMT_RUNS_DIR", str(run_dir.parent))
    window = MainWindow()  # scans $SMMT_RUNS_DIR
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.model_loaded, timeout=60000) as blocker:
        pass
    assert blocker.args[0].run_dir == run_dir
    assert window.model_box.currentData() == str(run_dir)
    assert window.prediction_panel.model_label.text().endswith("tiny")
    window.close()


def test_train_action_opens_the_wizard(main_window, qtbot):
    from smmt_gui.wizard import TrainingWizard

    main_window.show()
    main_window.act_train.trigger()
    assert isinstance(main_window.wizard, TrainingWizard)
    qtbot.waitUntil(main_window.wizard.isVisible, timeout=2000)
    main_window.wizard.reject()


def test_predict_all_fills_the_table(loaded, qtbot):
    window = loaded
    panel = window.cohort_panel
    assert panel.predict_all_button.isEnabled()
    worker = window.predict_all()
    with qtbot.waitSignal(worker.finished, timeout=120000):
        pass
    assert worker.value == (12, 0)
    predictions = panel.model.predictions
    assert set(predictions) == {s.key for s in window.cohort.subjects}
    label, p = predictions["sub-001"]
    shown = window.last_prediction  # the row says what the panel says: the class, or "borderline (leaning X)"
    assert (label, p) == (shown.verdict, pytest.approx(shown.probabilities[shown.prediction], abs=1e-6))
    assert panel.predict_all_button.text() == strings.COHORT_PREDICT_ALL


def test_one_click_demo_training_uses_the_demo_preset(main_window, monkeypatch):
    from smmt_core.train.config import PRESETS
    from smmt_gui.settings import runs_dir

    started = []
    monkeypatch.setattr(main_window.dashboard, "start", started.append)
    main_window.welcome.train_button.click()
    (config,) = started
    assert config.data.dataset == "demo" and config.preset == "demo" and config.run.out == str(runs_dir())
    assert config.optim.epochs == PRESETS["demo"]["epochs"]
    assert config.preprocess.image_size == PRESETS["demo"]["image_size"]
    assert config.data.features == ["AGE", "PTEDUCAT", "PTGENDER", "APOE4"]  # non-circular by default
    assert main_window.tabs.currentWidget() is main_window.dashboard


class MarkedPredictor:
    """A real Predictor whose predictions can be held back by a gate and are marked "OLD", so a
    test can tell whether anything this model computed reached the screen or the table."""

    def __init__(self, real, gate: threading.Event):
        self._real, self.gate = real, gate

    def __getattr__(self, name):
        return getattr(self._real, name)

    def predict(self, subject, modalities=None):
        import dataclasses

        assert self.gate.wait(30)
        prediction = self._real.predict(subject, modalities=modalities)
        return dataclasses.replace(prediction, model_name="OLD", prediction="OLD",
                                   probabilities={**prediction.probabilities, "OLD": 0.5})


def test_a_result_of_the_previous_model_is_never_shown(loaded, qtbot, tiny_run):
    window = loaded
    _cohort, run_dir = tiny_run
    gate = threading.Event()
    window.session.predictor = MarkedPredictor(window.predictor, gate)
    window.request_prediction()  # in flight with the old model, held at the gate
    shown = []
    window.prediction_shown.connect(shown.append)
    with qtbot.waitSignal(window.model_loaded, timeout=60000):
        window.load_model(run_dir)  # the user switches models meanwhile
    gate.set()  # now the old model's result arrives
    qtbot.waitUntil(lambda: bool(shown) and not window.is_busy(), timeout=60000)
    assert [p.model_name for p in shown] == ["tiny"]  # only the new model's prediction was drawn
    assert window.last_prediction.model_name == "tiny"
    assert all(label != "OLD" for label, _ in window.cohort_panel.model.predictions.values())


def test_changing_the_model_stops_predict_all_and_clears_the_table(loaded, qtbot, tiny_run):
    window = loaded
    _cohort, run_dir = tiny_run
    table = window.cohort_panel.model
    assert table.predictions  # the first subject's prediction by the loaded model
    gate = threading.Event()
    window.session.predictor = MarkedPredictor(window.predictor, gate)
    old_run = window.predict_all()
    with qtbot.waitSignal(window.model_loaded, timeout=60000):
        window.load_model(run_dir)
    assert window.cohort_panel.predict_all_button.text() == strings.COHORT_PREDICT_ALL
    gate.set()
    qtbot.waitUntil(lambda: old_run.is_done() and not window.is_busy(), timeout=60000)
    assert old_run.value[0] <= 1  # it stopped after the subject it was computing
    assert table.predictions and all(label != "OLD" for label, _ in table.predictions.values())
    new_run = window.predict_all()  # a fresh "Predict all" (not taken as a second click)
    assert new_run is not None and new_run is not old_run
    qtbot.waitUntil(lambda: len(table.predictions) >= 2, timeout=60000)  # the new model fills the table
    assert window.predict_all() is None  # this time a second click: it stops the run
    qtbot.waitUntil(new_run.is_done, timeout=60000)
    assert all(label != "OLD" for label, _ in table.predictions.values())


def test_only_the_latest_model_request_counts(main_window, qtbot, tiny_run, tmp_path):
    _cohort, run_dir = tiny_run
    errors = []
    main_window.show_error = errors.append
    main_window.load_model(tmp_path / "no-such-run")  # superseded by the next request
    with qtbot.waitSignal(main_window.model_loaded, timeout=60000):
        main_window.load_model(run_dir)
    qtbot.waitUntil(lambda: not main_window.is_busy(), timeout=30000)
    assert errors == [] and main_window.predictor.run_dir == run_dir


def test_screenshot_is_written_atomically(qtbot, tmp_path, monkeypatch):
    """A failed write leaves the previous file as it was and no temporary file behind."""
    from pathlib import Path

    from smmt_gui.app import main

    target = tmp_path / "shots" / "window.png"
    assert main(["--no-runs", "--screenshot", str(target), "--size", "1280x800"]) == 0
    assert QImage(str(target)).width() == 1280
    assert [p.name for p in target.parent.iterdir()] == ["window.png"]
    before = target.read_bytes()

    def failing_save(self, path, *args):
        Path(path).write_bytes(b"\x89PNG truncated")  # a partial write, then failure
        return False

    monkeypatch.setattr(QImage, "save", failing_save)
    assert main(["--no-runs", "--screenshot", str(target), "--size", "1200x760"]) == 2
    assert target.read_bytes() == before
    assert [p.name for p in target.parent.iterdir()] == ["window.png"]


def test_viewer_colormap_and_opacity_are_remembered(qtbot):
    from smmt_gui.main_window import MainWindow
    from smmt_gui.settings import KEY_COLORMAP, KEY_OVERLAY_OPACITY, AppSettings

    first = MainWindow(scan_runs=False)
    qtbot.addWidget(first)
    assert first.viewer.colormap_box.currentText() == "grey"
    first.viewer.colormap_box.setCurrentText("inferno")  # as the user would
    first.viewer.opacity_slider.setValue(70)
    close_and_wait(first, qtbot)
    second = MainWindow(scan_runs=False)
    qtbot.addWidget(second)
    assert second.viewer.colormap_box.currentText() == "inferno"
    assert second.viewer.opacity == pytest.approx(0.7) and second.viewer.opacity_slider.value() == 70
    close_and_wait(second, qtbot)
    settings = AppSettings()
    settings.set(KEY_COLORMAP, "no-such-map")
    settings.set(KEY_OVERLAY_OPACITY, "nan")
    settings.sync()
    third = MainWindow(scan_runs=False)
    qtbot.addWidget(third)
    assert third.viewer.colormap_box.currentText() == "grey" and third.viewer.opacity == pytest.approx(0.45)
    close_and_wait(third, qtbot)


def test_a_hostile_run_json_hides_no_model_and_a_dead_run_shows_as_interrupted(qtbot, tiny_run, tmp_path,
                                                                               monkeypatch):
    """One run.json nested 100,000 levels deep once emptied the whole model list."""
    import json
    import shutil
    import socket

    from smmt_gui.main_window import MainWindow

    _cohort, run_dir = tiny_run
    runs = tmp_path / "many-runs"
    good, hostile, dead = (shutil.copytree(run_dir, runs / name) for name in ("good", "hostile", "dead"))
    (hostile / "run.json").write_text("[" * 100_000 + "]" * 100_000)
    summary = json.loads((dead / "run.json").read_text())
    summary.update(status="running", run_name="dead", created="2000-01-01T00:00:00+00:00",
                   process={"pid": 2**22 + 12345, "host": socket.gethostname(), "started": 1.0})
    (dead / "run.json").write_text(json.dumps(summary))
    monkeypatch.setenv("SMMT_RUNS_DIR", str(runs))
    window = MainWindow()
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.model_loaded, timeout=60000):
        pass

    def labels():
        return [window.model_box.itemText(i) for i in range(window.model_box.count())]

    qtbot.waitUntil(lambda: "dead  [interrupted]" in labels(), timeout=60000)  # the list refreshes off-thread
    assert len(labels()) == 3  # "(no model)", the good run, the dead one: the hostile one hid nothing
    window.close()


def test_a_raw_scan_goes_through_the_intake_dialog_then_opens(loaded, qtbot, monkeypatch, tiny_run):
    """A T1 that is not yet a brain in MNI space opens the intake dialog (progress, cancel, QC),
    and once it is done the subject opens as usual with its prediction."""
    from PySide6.QtCore import QObject, Signal

    import smmt_gui.intake_dialog as intake_dialog

    opened, devices = [], []

    class FakeDialog(QObject):  # the real one runs deepbet and ANTs (tests/gui/test_intake_dialog.py)
        completed = Signal(object, object)

        def __init__(self, path, predict=None, parent=None, settings=None, **kwargs):
            super().__init__(parent)
            opened.append((path, predict))
            devices.append(settings.device)

        def start(self):
            return self

        def open(self):
            from types import SimpleNamespace

            self.completed.emit(SimpleNamespace(qc=SimpleNamespace(ok=True)), None)  # QC passed

    monkeypatch.setattr(intake_dialog, "needs_intake", lambda path: True)
    monkeypatch.setattr(intake_dialog, "IntakeDialog", FakeDialog)
    cohort, _ = tiny_run
    t1 = next(Path(cohort).glob("sub-002/anat/*_T1w.nii.gz"))
    with qtbot.waitSignal(loaded.prediction_shown, timeout=60000):
        loaded.open_path(t1)
    assert [p for p, _ in opened] == [t1] and callable(opened[0][1])
    model_device = "cuda" if str(loaded.predictor.run.device).startswith("cuda") else "cpu"
    assert devices == [model_device]  # brain extraction follows the model's device
    assert loaded.subject.t1_path == t1 and loaded.last_prediction is not None


def test_the_splash_comes_before_the_window_and_the_window_answers(tmp_path):
    """A fresh `smmt-gui`: the splash is shown before the heavy imports, then the window, then its
    event loop runs (what benchmarks/gui_startup.py times)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    trace = tmp_path / "trace.txt"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", SMMT_GUI_STARTUP_TRACE=str(trace),
               PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    done = subprocess.run([sys.executable, "-c", "import sys; from smmt_gui.app import main; sys.exit(main(['--no-runs']))"],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    marks = [line.split() for line in trace.read_text().splitlines()]
    assert [event for event, _ in marks] == ["splash", "window", "usable"]
    times = [float(t) for _, t in marks]
    assert times == sorted(times)
