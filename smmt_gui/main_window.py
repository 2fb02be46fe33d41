"""The main window: SMMT Studio's public surface (what the app, the tests and the docs drive), the
wiring of its widgets, and the drawing of what the session and the controller report.

Why it is built this way: the window owns neither the science nor the state. What is open (cohort,
subject, model, last prediction) is the Qt-free `Session` (`smmt_gui.session`); which jobs run, the
rules about them (the latest request wins, one prediction in flight) and what the viewer holds are
the Qt-free `Controller`'s (`smmt_gui.controller`), whose jobs (`smmt_gui.jobs`) the window's
`JobRunner` (`smmt_gui.workers`) runs on worker threads. The widgets are laid out by
`smmt_gui.window_layout`, the menus, toolbar and dialogs are `smmt_gui.actions`, and closing without
blocking is `smmt_gui.closing`. The window forwards requests (its public methods, the panels'
signals, drops) and redraws its widgets from the session's and the controller's events; of its own
it keeps only the training wizard and intake dialog while they are open. Errors reach the user in
a message bar at the top (never a crash, never a modal dialog that blocks a drop).
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QMainWindow, QMessageBox

from smmt_gui import actions, strings, window_layout
from smmt_gui.closing import WindowCloser, running_jobs
from smmt_gui.controller import Controller
from smmt_gui.session import Session
from smmt_gui.settings import AppSettings, runs_dir
from smmt_gui.workers import FunctionWorker, JobRunner, describe_error

log = logging.getLogger(__name__)


class MainWindow(QMainWindow):
    """SMMT Studio's window. Public methods are what the app, the tests and the docs drive."""

    subject_shown = Signal(object)  # a Subject, once its volume or prediction is on screen
    prediction_shown = Signal(object)  # each Prediction drawn
    model_loaded = Signal(object)  # the Predictor
    idle = Signal()  # no job left running
    closed = Signal()  # the window has closed, after every job of the app had ended

    def __init__(self, settings: AppSettings | None = None, *, scan_runs: bool = True):
        super().__init__()
        self.setObjectName("SMMTStudioMainWindow")
        self.setWindowTitle(strings.WINDOW_TITLE)
        self.setAcceptDrops(True)
        self.settings = settings or AppSettings()
        self.session = Session()
        self.runner = JobRunner(self.statusBar(), lambda message: self.show_error(message),
                                lambda: self.session.closing, self)
        self.intake_dialog = None  # the intake of a raw scan, while it runs
        self.wizard = None  # the training wizard while it is open
        self._closer = WindowCloser(self)
        window_layout.build(self)
        actions.install(self)
        window_layout.restore(self)
        self.controller = Controller(self.session, self.runner.start, self.prediction_panel.enabled_modalities)
        self._connect_widgets()
        self._observe()
        self._update_synthetic_badge()
        actions.fill_model_box(self, [])
        # After the first event-loop turn: importing torch (device check, runs scan) slowed the window.
        QTimer.singleShot(0, lambda: self._after_first_show(scan_runs))

    def _after_first_show(self, scan_runs: bool) -> None:
        if self.session.closing:
            return
        self.controller.check_device()
        if scan_runs:
            self.refresh_runs(load_newest=True)

    # ================================================================ session
    # Read-only views of the session, for the app, the tests and the docs.
    @property
    def predictor(self):
        return self.session.predictor

    @property
    def cohort(self):
        return self.session.cohort

    @property
    def subject(self):
        return self.session.subject

    @property
    def last_prediction(self):
        return self.session.last_prediction

    @property
    def data_path(self) -> str:
        return self.session.data_path

    def _observe(self) -> None:
        """Redraw from the job runner's, the session's and the controller's events."""
        self.runner.idle.connect(lambda: self.progress.setVisible(False))
        self.runner.idle.connect(self.idle)
        session, controller = self.session, self.controller
        session.cohort_changed.connect(self._on_cohort_changed)
        session.subject_changed.connect(self._on_subject_changed)
        session.model_changed.connect(self._on_model_changed)
        session.prediction_changed.connect(self._on_prediction_changed)
        session.device_changed.connect(self._on_device_changed)
        controller.error.connect(lambda message: self.show_error(message))
        controller.notice.connect(lambda message: self.show_notice(message))
        controller.status.connect(lambda text, timeout_ms: self.statusBar().showMessage(text, timeout_ms))
        controller.opened.connect(self._remember_folder)
        controller.intake_needed.connect(lambda path, subject, raw: actions.run_intake(self, path, subject, raw))
        controller.preview_ready.connect(self._on_preview)
        controller.scans_ready.connect(lambda views: self.viewer_stack.show_scans(views))
        controller.prediction_started.connect(lambda _subject: self.prediction_panel.set_busy(True))
        controller.prediction_ready.connect(self._on_prediction)
        controller.prediction_failed.connect(lambda _subject, message: self._on_refused(message))
        controller.nothing_to_predict.connect(self._on_nothing_to_predict)
        controller.subject_shown.connect(self.subject_shown.emit)
        controller.predict_all_started.connect(self._on_predict_all_started)
        controller.predict_all_progress.connect(self._on_predict_all_progress)
        controller.predict_all_ended.connect(
            lambda: self.cohort_panel.predict_all_button.setText(strings.COHORT_PREDICT_ALL))
        controller.runs_listed.connect(lambda runs: actions.fill_model_box(self, runs))
        controller.demo_started.connect(self._on_demo_started)
        controller.demo_progress.connect(self._on_demo_progress)
        controller.demo_ended.connect(lambda: self._set_demo_enabled(True))

    # ================================================================ widgets
    def _connect_widgets(self) -> None:
        """What the widgets laid out by `window_layout` ask for (the actions connect their own)."""
        self.viewer.status_text.connect(lambda text: self.statusBar().showMessage(text, 4000))
        self.parcellation.hover_text.connect(lambda text: self.statusBar().showMessage(text, 3000))
        self.welcome.demo_button.clicked.connect(self.open_demo_cohort)
        self.welcome.train_button.clicked.connect(lambda: actions.train_demo_model(self))
        if hasattr(self.dashboard, "start"):  # else a label says why training is unavailable
            self.dashboard.finished.connect(self._on_training_finished)
            self.dashboard.failed.connect(lambda message: self.show_error(message))
            self.dashboard.status.connect(lambda text: self.statusBar().showMessage(text, 5000))
        self.cohort_panel.subject_selected.connect(self.show_subject)
        self.cohort_panel.predict_all_requested.connect(self.predict_all)
        self.prediction_panel.modalities_changed.connect(lambda _mods: self.controller.request_prediction())

    # ================================================================ jobs and messages
    def is_busy(self) -> bool:
        """True while any job of this window (not the training dashboard) is running."""
        return self.runner.is_busy()

    def show_error(self, message: str) -> None:
        log.warning("%s", message)
        self.message_bar.show_message(message, error=True)
        self.statusBar().showMessage(message.splitlines()[-1] if message else "", 8000)

    def show_notice(self, message: str) -> None:
        self.message_bar.show_message(message, error=False)

    # ================================================================ opening data
    def open_path(self, path, how: str = "path") -> FunctionWorker:
        """Open a subject folder, a single T1 file or a dataset folder (on a worker).

        `how` the user asked (a key of strings.ERROR_OPEN: "drop", "file", "folder", "path"): a
        failure says what the user did, not what someone else might have."""
        self.message_bar.hide()
        return self.controller.open_path(path, how)

    def _remember_folder(self, path: str) -> None:
        self.settings.add_recent_folder(path)
        self.settings.set("recent/last_open_dir", str(Path(path).parent if Path(path).is_file() else path))
        actions.fill_recent_menus(self)

    def set_cohort(self, cohort, path: str | None = None) -> None:
        self.session.set_cohort(cohort, path)

    def _on_cohort_changed(self, opened) -> None:
        """A cohort (or a lone subject) was opened: fill the table and show its first row."""
        from smmt_core.data.subject import Cohort

        if isinstance(opened, Cohort):
            self.cohort_panel.set_cohort(opened)
        elif opened is not None:
            self.cohort_panel.set_single_subject(opened)
        if opened is not None:
            self._update_synthetic_badge()
        if self.controller.report_opened(opened):
            self.cohort_panel.select_row(0)

    def show_subject(self, subject) -> None:
        """Make `subject` the current one: predict with the loaded model, else show its MRI."""
        self.session.set_subject(subject)

    def _on_subject_changed(self, subject) -> None:
        self.act_export.setEnabled(False)
        if subject is None:
            return
        self.prediction_panel.set_subject(subject.key, {m.value for m in subject.modalities})
        self.viewer_stack.setCurrentWidget(self.viewer)
        if subject.t1_path is None:
            self.viewer.clear()
        self.controller.present(subject)

    def _on_preview(self, subject, volume, affine, warnings) -> None:
        self.viewer_stack.show_preview(volume, affine)
        if warnings:
            self.prediction_panel.warnings.setText("\n".join(f"⚠ {w}" for w in warnings))

    # ================================================================ prediction
    def request_prediction(self) -> None:
        """Predict the current subject with the switched-on modalities; the latest request wins."""
        self.controller.request_prediction()

    def _on_prediction(self, subject, prediction, new_volume: bool) -> None:
        self.clusters_dock.setVisible(self.viewer_stack.show_prediction(prediction, new_volume))
        p = prediction.probabilities.get(prediction.prediction, float("nan"))
        switched_off = self.prediction_panel.switched_off(prediction.modalities_used)
        self.cohort_panel.set_prediction(subject.key, prediction.verdict, p, switched_off)
        self.statusBar().showMessage(f"{subject.key}: {prediction.verdict} ({p * 100:.1f}%)", 5000)
        self.prediction_shown.emit(prediction)

    def _on_prediction_changed(self, prediction) -> None:
        self.act_export.setEnabled(prediction is not None)
        if prediction is not None:
            self.prediction_panel.set_prediction(prediction)

    def _on_nothing_to_predict(self, subject) -> None:
        self.prediction_panel.show_nothing_to_predict()
        self.cohort_panel.set_prediction(subject.key, None)
        self.viewer_stack.clear_clusters()

    def _on_refused(self, message: str) -> None:
        self.prediction_panel.set_error(message)
        self.viewer_stack.clear_clusters()

    def predict_all(self) -> FunctionWorker | None:
        """Predict every scan of the table on a worker; a second click stops it."""
        return self.controller.predict_all()

    def _on_predict_all_started(self, n: int) -> None:
        self.progress.setRange(0, n)
        self.progress.setValue(0)
        self.progress.setFormat("predicting %v/%m")
        self.progress.setVisible(True)
        self.cohort_panel.predict_all_button.setText(strings.COHORT_PREDICT_ALL_RUNNING)

    def _on_predict_all_progress(self, value) -> None:
        done, _total, key, label, detail = value
        self.progress.setValue(done)
        if label is not None:
            self.cohort_panel.set_prediction(key, label, detail)

    # ================================================================ models
    def refresh_runs(self, load_newest: bool = False) -> None:
        self.controller.list_runs(runs_dir(), load_newest)

    def load_model(self, run_dir) -> FunctionWorker:
        """Load a run (or the newest finished run of a folder of runs) on a worker; when several
        loads overlap, the latest request wins."""
        return self.controller.load_model(run_dir)

    def _on_model_changed(self, predictor) -> None:
        """Whatever the old model computed is stale: the table's predictions go, "Predict all"
        stops (its tickets were dropped by the session), and the current subject is predicted."""
        self.controller.stop_predict_all()
        self.cohort_panel.clear_predictions()
        self.act_export.setEnabled(False)
        if predictor is None:
            self.prediction_panel.set_model(None)
            return
        self.settings.add_recent_model(predictor.run_dir)
        actions.fill_recent_menus(self)
        self.refresh_runs()
        actions.fill_model_box(self, [])
        device = "GPU" if str(predictor.run.device).startswith("cuda") else "CPU"
        self.device_label.setText(strings.DEVICE_LABEL.format(device=device))
        self.prediction_panel.set_model(predictor.run_name, predictor.classes, synthetic=predictor.synthetic,
                                        modalities=predictor.model_modalities)
        if hasattr(self.robustness, "set_run"):
            self.robustness.set_run(predictor.run_dir)
        self._update_synthetic_badge()
        self.statusBar().showMessage(strings.STATUS_LOADED_MODEL.format(name=predictor.run_name), 5000)
        self.model_loaded.emit(predictor)
        subject = self.session.subject
        if subject is not None:
            self.prediction_panel.set_subject(subject.key, {m.value for m in subject.modalities})
            self.controller.request_prediction()

    def _on_device_changed(self, cuda_available: bool) -> None:
        if self.session.predictor is None:
            self.device_label.setText(strings.DEVICE_LABEL.format(device="GPU" if cuda_available else "CPU"))
        wizard = self.wizard
        if wizard is not None:
            try:
                wizard.run_page.set_cuda_available(cuda_available)
            except RuntimeError:  # the wizard was closed and deleted meanwhile
                self.wizard = None

    # ================================================================ demo & training
    def open_demo_cohort(self) -> FunctionWorker:
        """Build the synthetic demo cohort on first use (progress in the status bar), then open it.

        While it builds, its button and menu entry are disabled: a second build would race the
        first and silently reload the cohort."""
        return self.controller.open_demo()

    def _on_demo_started(self) -> None:
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self._set_demo_enabled(False)

    def _set_demo_enabled(self, enabled: bool) -> None:
        enabled = enabled and not self.session.closing
        self.welcome.demo_button.setEnabled(enabled)
        self.act_demo_data.setEnabled(enabled)

    def _on_demo_progress(self, value) -> None:
        done, total = value
        self.progress.setRange(0, max(int(total), 1))
        self.progress.setValue(int(done))
        self.progress.setFormat("demo cohort %v/%m")

    def start_training(self, config) -> None:
        """Train one TrainConfig (or a list, one after another) in the Training tab."""
        if self.session.closing:
            return
        if not hasattr(self.dashboard, "start"):
            self.show_error(self.dashboard.text())
            return
        if self.dashboard.is_running():
            self.tabs.setCurrentWidget(self.dashboard)
            return
        self.tabs.setCurrentWidget(self.dashboard)
        try:
            self.dashboard.start(config)
        except Exception as error:  # noqa: BLE001 - ConfigError and friends: tell the user
            self.show_error(describe_error(error))

    def open_training_wizard(self) -> None:
        actions.open_training_wizard(self)

    def _on_training_finished(self, run_dir) -> None:
        if run_dir:
            self.load_model(run_dir)
            self.tabs.setCurrentIndex(0)
            if self.session.subject is None and not self.session.subjects():
                self.viewer_stack.setCurrentWidget(self.welcome)

    # ================================================================ export, badges, About
    def export_report_to(self, base) -> list[Path]:
        """Write the PNG/CSV/JSON/PDF report of the current prediction next to `base`."""
        return actions.export_report_to(self, base)

    def _update_predict_all(self) -> None:
        self.cohort_panel.predict_all_button.setEnabled(
            self.predictor is not None and bool(self.cohort_panel.subjects()))

    def _update_synthetic_badge(self) -> None:
        synthetic_data = self.session.data_is_synthetic()
        self.synthetic_badge_action.setVisible(synthetic_data or self.session.model_is_synthetic())
        self.viewer.set_synthetic(synthetic_data)
        self._update_predict_all()

    def show_about(self) -> QMessageBox:
        return actions.show_about(self)

    # ================================================================ drag and drop
    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt API
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:  # noqa: N802 - Qt API
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt API
        urls = event.mimeData().urls()
        event.acceptProposedAction()
        path = actions.dropped_path(self, urls)
        if path:
            self.open_path(path, how="drop")

    # ================================================================ closing
    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        """Close only once every job has ended (`smmt_gui.closing`): a thread left running would
        crash the app on exit, and the GUI thread never waits for one."""
        if self._closer.closed:
            super().closeEvent(event)
            return
        if not self._closer.may_close():
            event.ignore()
            return
        window_layout.save(self)
        self.log_panel.detach()
        super().closeEvent(event)
        self.closed.emit()

    def running_jobs(self) -> list[str]:
        """Names of the jobs whose thread is still running (any worker of the app)."""
        return running_jobs()

    def is_closed(self) -> bool:
        """True once the window has really closed (every job had ended)."""
        return self._closer.closed
