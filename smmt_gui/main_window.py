"""The main window: toolbar, cohort dock, viewer / training / robustness tabs, prediction dock,
log dock, status bar; drag-and-drop of subjects and datasets anywhere on the window.

Why it is built this way: the window owns no science and no state of its own. What is open and
shown (cohort, subject, model, last prediction) lives in a Qt-free `Session`
(`smmt_gui.session`) that the window observes: each change goes through one session method and
the window redraws from the session's events. Every job (open a path, load a model, predict,
build the demo cohort) is a call into `smmt_core` run by a `FunctionWorker`
(`smmt_gui.workers`) and carries a ticket from `session.requests`; its result is shown only
while the ticket is current ("the latest request wins", one rule for every kind of request).
Closing never blocks the GUI thread: the window stops every job, says "stopping…" and closes
itself once the last one has ended (no thread may outlive the window). Errors reach the user in a
message bar at the top of the window (never a crash, never a modal dialog that blocks a drop).
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from smmt_core.modalities import MODALITY_NAMES
from smmt_gui import actions, jobs, strings
from smmt_gui.panels.cohort import CohortPanel
from smmt_gui.panels.log import LogPanel
from smmt_gui.panels.prediction import PredictionPanel
from smmt_gui.session import MODEL, PREDICT, PREDICT_ALL, PREVIEW, SCANS, Session
from smmt_gui.settings import AppSettings, runs_dir
from smmt_gui.viewer import OrthoViewer
from smmt_gui.widgets import MessageBar, WelcomePage
from smmt_gui.workers import FunctionWorker, JobRunner, live_workers

log = logging.getLogger(__name__)

# The docks' widths on first launch: the cohort table's columns (a "borderline (leaning AD) *" row, its
# headers) whole beside a vertical scroll bar, at the default window width.
COHORT_DOCK_WIDTH, PREDICTION_DOCK_WIDTH = 450, 320
CLOSE_POLL_MS = 50  # while "stopping…", how often the window checks whether the jobs have ended


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
        self.intake_dialog = None  # the intake of a raw scan, while it runs
        self._shown_intake_image = None  # the intake's MNI image behind the viewer's volume (None: a preview)
        self.session = Session()
        self._predict_worker: FunctionWorker | None = None  # at most one prediction in flight
        self._predict_all_worker: FunctionWorker | None = None  # so that a second click stops it
        self._demo_worker: FunctionWorker | None = None  # one demo build at a time
        self._open_how = "path"  # how the user asked for what is being opened (strings.ERROR_OPEN)
        self._refusal: tuple[str, str] | None = None  # (subject key, why) of the last failed prediction
        self.wizard = None  # the training wizard while it is open
        self._closed = False  # set once the window has really closed
        self._close_timer: QTimer | None = None  # polls the jobs while the window is "stopping…"
        self.runner = JobRunner(self.statusBar(), lambda message: self.show_error(message),
                                lambda: self.session.closing, self)
        self.runner.idle.connect(lambda: self.progress.setVisible(False))
        self.runner.idle.connect(self.idle)

        self._build_central()
        self._build_docks()
        actions.install(self)
        self._build_status_bar()
        self._restore_layout()
        self._observe_session()
        self._update_synthetic_badge()
        actions.fill_model_box(self, [])
        self._start(FunctionWorker(jobs.device_job, name="device"), result=self.session.set_cuda_available)
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

    def _observe_session(self) -> None:
        session = self.session
        session.cohort_changed.connect(self._on_cohort_changed)
        session.subject_changed.connect(self._on_subject_changed)
        session.model_changed.connect(self._on_model_changed)
        session.prediction_changed.connect(self._on_prediction_changed)
        session.device_changed.connect(self._on_device_changed)

    # ================================================================ layout
    def _build_central(self) -> None:
        self.message_bar = MessageBar()
        self.viewer = OrthoViewer()
        self.viewer.status_text.connect(lambda text: self.statusBar().showMessage(text, 4000))
        # A volume model's K-Means clusters as a 3D parcellation in all three views.
        from smmt_gui.viewer.parcellation import ClusterLegend, VolumeParcellation

        self.parcellation = VolumeParcellation(self.viewer)
        self.parcellation.hover_text.connect(lambda text: self.statusBar().showMessage(text, 3000))
        self.cluster_legend = ClusterLegend(self.parcellation)
        self.welcome = WelcomePage()
        self.welcome.demo_button.clicked.connect(self.open_demo_cohort)
        self.welcome.train_button.clicked.connect(lambda: actions.train_demo_model(self))
        self.viewer_stack = QStackedWidget()
        self.viewer_stack.addWidget(self.welcome)
        self.viewer_stack.addWidget(self.viewer)
        self.tabs = QTabWidget()
        self.tabs.setObjectName("mainTabs")
        self.tabs.addTab(self.viewer_stack, strings.TAB_VIEWER)
        self.dashboard = self._make_dashboard()
        self.tabs.addTab(self.dashboard, strings.TAB_TRAINING)
        self.robustness = self._make_robustness()
        self.tabs.addTab(self.robustness, strings.TAB_ROBUSTNESS)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.message_bar)
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)

    def _make_dashboard(self) -> QWidget:
        try:
            from smmt_gui.panels.training import TrainingDashboard
        except Exception as error:  # noqa: BLE001 - a broken optional view must not stop the app
            log.error("training dashboard unavailable: %s", error)
            return QLabel(strings.ERROR_TRAINING_UNAVAILABLE.format(message=error))
        dashboard = TrainingDashboard()
        dashboard.finished.connect(self._on_training_finished)
        dashboard.failed.connect(lambda message: self.show_error(message))
        dashboard.status.connect(lambda text: self.statusBar().showMessage(text, 5000))
        return dashboard

    def _make_robustness(self) -> QWidget:
        try:
            from smmt_gui.panels.robustness import RobustnessPanel
        except Exception as error:  # noqa: BLE001
            log.error("robustness view unavailable: %s", error)
            return QLabel(strings.ERROR_TRAINING_UNAVAILABLE.format(message=error))
        return RobustnessPanel()

    def _build_docks(self) -> None:
        self.cohort_panel = CohortPanel()
        self.cohort_panel.subject_selected.connect(self.show_subject)
        self.cohort_panel.predict_all_requested.connect(self.predict_all)
        self.prediction_panel = PredictionPanel()
        self.prediction_panel.modalities_changed.connect(lambda _mods: self.request_prediction())
        self.log_panel = LogPanel()
        self.cohort_dock = self._dock(strings.DOCK_COHORT, self.cohort_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.prediction_dock = self._dock(strings.DOCK_PREDICTION, self.prediction_panel,
                                          Qt.DockWidgetArea.RightDockWidgetArea)
        self.log_dock = self._dock(strings.DOCK_LOG, self.log_panel, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.log_dock.hide()
        self.clusters_dock = self._dock(strings.DOCK_CLUSTERS, self.cluster_legend, Qt.DockWidgetArea.RightDockWidgetArea)
        self.clusters_dock.hide()  # shown for a volume model's prediction
        self.resizeDocks([self.cohort_dock, self.prediction_dock], [COHORT_DOCK_WIDTH, PREDICTION_DOCK_WIDTH],
                         Qt.Orientation.Horizontal)

    def _dock(self, title: str, widget: QWidget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{title.lower()}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_status_bar(self) -> None:
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setVisible(False)
        self.statusBar().addPermanentWidget(self.progress)
        self.statusBar().showMessage(strings.STATUS_READY)

    def _restore_layout(self) -> None:
        geometry, state = self.settings.window_geometry(), self.settings.window_state()
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1500, 900)
        if state is not None:
            self.restoreState(state)
        from smmt_gui.viewer.colormaps import COLORMAPS

        colormap = self.settings.viewer_colormap()
        if colormap in COLORMAPS:
            self.viewer.set_colormap(colormap)
        opacity = self.settings.overlay_opacity()
        if opacity is not None:
            self.viewer.set_opacity(opacity)
        self.viewer.set_radiological(self.settings.viewer_radiological())
        self.viewer.radiological_changed.connect(self.settings.save_viewer_radiological)

    # ================================================================ jobs
    def _start(self, worker: FunctionWorker, **handlers) -> FunctionWorker:
        return self.runner.start_worker(worker, **handlers)

    def is_busy(self) -> bool:
        """True while any job of this window (not the training dashboard) is running."""
        return self.runner.is_busy()

    # ================================================================ messages
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
        path = str(Path(path).expanduser())
        self.message_bar.hide()
        self._open_how = how
        return self._start(FunctionWorker(jobs.open_path_job, path, name="open"),
                           result=lambda value, p=path: self._on_opened(p, value),
                           error=lambda message, p=path: self.show_error(self._open_error(how, p, message)),
                           busy=strings.STATUS_LOADING.format(path=path))

    @staticmethod
    def _open_error(how: str, path: str, message: str) -> str:
        return strings.ERROR_OPEN.get(how, strings.ERROR_OPEN["path"]).format(path=path, message=message)

    def _on_opened(self, path: str, opened) -> None:
        from smmt_core.data.subject import Cohort

        value, raw = opened
        if raw is not None and self.session.predictor is not None:
            self._run_intake(path, value, raw)
            return
        self.settings.add_recent_folder(path)
        self.settings.set("recent/last_open_dir", str(Path(path).parent if Path(path).is_file() else path))
        actions.fill_recent_menus(self)
        if isinstance(value, Cohort):
            self.set_cohort(value, path)
        else:
            self.session.set_single_subject(value, path)

    def _run_intake(self, path: str, subject, raw) -> None:
        """A raw scan (DICOM, native space, skull on): the intake dialog shows each step, can be
        cancelled, and ends with the QC picture beside the prediction; then the subject opens as
        usual (its intake is cached, so the viewer and the prediction come at once)."""
        from smmt_gui.intake_dialog import IntakeDialog

        predictor = self.session.predictor
        dialog = IntakeDialog(raw, predict=lambda p: predictor.predict(p), settings=predictor.intake_settings,
                              parent=self)  # brain extraction on the model's device
        dialog.completed.connect(lambda result, prediction, p=path, s=subject: self._on_intake_done(p, s, prediction))
        dialog.start()
        dialog.open()
        self.intake_dialog = dialog

    def _on_intake_done(self, path: str, subject, prediction) -> None:
        self.settings.add_recent_folder(path)
        self.session.set_single_subject(subject, path)

    def set_cohort(self, cohort, path: str | None = None) -> None:
        self.session.set_cohort(cohort, path)

    def _on_cohort_changed(self, opened) -> None:
        """A cohort (or a lone subject) was opened: fill the table and show its first row."""
        from smmt_core.data.subject import Cohort

        if isinstance(opened, Cohort):
            cohort = opened
            self.cohort_panel.set_cohort(cohort)
            self._update_synthetic_badge()
            for problem in cohort.problems:
                log.info("%s: %s", cohort.root, problem)
            if not len(cohort):
                self.show_error(self._open_error(self._open_how, str(cohort.root),
                                                 strings.ERROR_NO_SUBJECTS.format(path=cohort.root)))
                return
            self.statusBar().showMessage(strings.STATUS_LOADED_COHORT.format(
                n=len(cohort), layout=cohort.layout, path=self.session.data_path), 5000)
            if cohort.problems:
                self.show_notice(f"{len(cohort.problems)} problem(s) noted while reading {cohort.root} (see the log).")
        elif opened is not None:
            self.cohort_panel.set_single_subject(opened)
            self._update_synthetic_badge()
            self.statusBar().showMessage(strings.STATUS_LOADED_SUBJECT.format(subject=opened.key), 5000)
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
            self.session.shown_volume_key = None
        if self.session.predictor is not None:
            self.request_prediction()
        elif subject.t1_path is not None:
            self._preview(subject)
        else:
            self.subject_shown.emit(subject)

    def _preview(self, subject) -> None:
        if self.session.shown_volume_key == subject.key:
            return
        ticket = self.session.requests.new(PREVIEW)
        self._start(FunctionWorker(jobs.preview_job, subject.t1_path, name="preview"),
                    result=lambda value, s=subject, t=ticket: self.session.is_current(t) and self._on_preview(s, value),
                    busy=strings.STATUS_LOADING.format(path=subject.t1_path))

    def _on_preview(self, subject, value) -> None:
        volume, affine, warnings = value
        self.viewer.set_volume(volume, affine, space=strings.SPACE_MNI)
        self.viewer.set_clusters(None)
        self.session.shown_volume_key, self._shown_intake_image = subject.key, None
        self._load_scans(subject, None)
        if warnings:
            self.prediction_panel.warnings.setText("\n".join(f"⚠ {w}" for w in warnings))
        self.statusBar().showMessage(self._preview_status(subject))
        self.subject_shown.emit(subject)

    def _preview_status(self, subject) -> str:
        """What the status bar ends on when a scan is shown without a prediction: why there is none."""
        if self.session.predictor is None:
            return strings.STATUS_SHOWN_NO_MODEL.format(subject=subject.key)
        if self._refusal is not None and self._refusal[0] == subject.key:
            why = " ".join(line.strip() for line in self._refusal[1].splitlines() if line.strip())
            return strings.STATUS_SHOWN_REFUSED.format(subject=subject.key, message=why)
        return strings.STATUS_LOADED_SUBJECT.format(subject=subject.key)

    def _load_scans(self, subject, intake: dict | None) -> None:
        """Bring the scan itself (own resolution; native space after the intake) under the model's
        grid that the viewer already shows; a scan that cannot be shown leaves the grid and a notice."""
        if subject.t1_path is None:
            return
        ticket = self.session.requests.new(SCANS)
        self._start(FunctionWorker(jobs.scan_views_job, subject.t1_path, intake, name="scans"),
                    result=lambda views, t=ticket: self.session.is_current(t) and self._on_scans(views),
                    error=lambda message, t=ticket: self.session.is_current(t) and self.show_notice(
                        strings.NOTICE_SCAN_NOT_SHOWN.format(message=message)))

    def _on_scans(self, views) -> None:
        native = (views.native.volume, views.native.affine) if views.native is not None else None
        self.viewer.set_scans((views.mni.volume, views.mni.affine), native, views.mni_to_native)
        for note in views.notes:
            log.info("%s", note)

    # ================================================================ prediction
    def request_prediction(self) -> None:
        """Predict the current subject with the switched-on modalities; the latest request wins.

        Each request takes a new ticket, so whatever is still in flight is stale on arrival. At
        most one prediction runs at a time: when one is in flight, the latest request starts as
        soon as it ends (fast toggling never queues more than one extra prediction)."""
        session = self.session
        if not session.can_predict():
            return
        session.requests.new(PREDICT)
        if not self.prediction_panel.enabled_modalities():
            # Everything switched off: nothing to predict from; the old result must not linger.
            session.set_prediction(None)
            self.prediction_panel.show_nothing_to_predict()
            self.cohort_panel.set_prediction(session.subject.key, None)
            self.viewer.set_clusters(None)
            self.parcellation.set_prediction(None)
            return
        if self._predict_worker is None:
            self._run_prediction()

    def _run_prediction(self) -> None:
        session = self.session
        subject, predictor, ticket = session.subject, session.predictor, session.requests.current(PREDICT)
        modalities = sorted(self.prediction_panel.enabled_modalities())
        self.prediction_panel.set_busy(True)
        worker = FunctionWorker(jobs.predict_job, predictor, subject, modalities, name="predict")
        self._predict_worker = worker
        worker.finished.connect(lambda t=ticket: self._on_predict_finished(t))
        self._start(worker, result=lambda p, s=subject, t=ticket: session.is_current(t) and self._on_prediction(s, p),
                    error=lambda message, s=subject, t=ticket: (
                        session.is_current(t) and self._on_predict_error(s, message)),
                    busy=strings.STATUS_PREDICTING.format(subject=subject.key))

    def _on_predict_finished(self, ticket) -> None:
        self._predict_worker = None
        # A newer request came while this one ran: run it now (with the latest toggles).
        if not self.session.requests.is_current(ticket) and self.session.can_predict() \
                and self.prediction_panel.enabled_modalities():
            self._run_prediction()

    def _on_prediction(self, subject, prediction) -> None:
        # A new subject, or the first prediction of a previewed one (the intake may have registered it).
        intake_image = (prediction.intake or {}).get("t1_mni")
        new_volume = prediction.volume is not None and (
            self.session.shown_volume_key != subject.key or intake_image != self._shown_intake_image)
        if new_volume:
            self.viewer.set_volume(prediction.volume, prediction.volume_affine, space=strings.SPACE_MNI)
            self.session.shown_volume_key, self._shown_intake_image = subject.key, intake_image
            self._load_scans(subject, prediction.intake)
        volume_clusters = "mri" in prediction.modalities_used and getattr(prediction, "patch_grid", None) is not None
        saw_mri = (prediction.slices is not None or volume_clusters) and "mri" in prediction.modalities_used
        # MRI off: the model saw no image. A whole-brain model: the viewer hides its slice strip.
        self.viewer.set_clusters(prediction if saw_mri else None)
        self.parcellation.set_prediction(prediction if volume_clusters else None)
        self.clusters_dock.setVisible(volume_clusters)
        if new_volume:
            self.viewer.go_to_model_slice(len(prediction.slice_indices) // 2)
        self.session.set_prediction(prediction)
        p = prediction.probabilities.get(prediction.prediction, float("nan"))
        self.cohort_panel.set_prediction(subject.key, prediction.verdict, p, self._switched_off(prediction))
        self.statusBar().showMessage(f"{subject.key}: {prediction.verdict} ({p * 100:.1f}%)", 5000)
        self.prediction_shown.emit(prediction)
        self.subject_shown.emit(subject)

    def _switched_off(self, prediction) -> list[str]:
        """The modalities the subject has and the model takes that the user switched off."""
        panel = self.prediction_panel
        usable = panel.available & panel.model_modalities
        return [m for m in MODALITY_NAMES if m in usable and m not in prediction.modalities_used]

    def _on_prediction_changed(self, prediction) -> None:
        self.act_export.setEnabled(prediction is not None)
        if prediction is not None:
            self.prediction_panel.set_prediction(prediction)

    def _on_predict_error(self, subject, message: str) -> None:
        self._refusal = (subject.key, message)
        self.session.set_prediction(None)
        self.prediction_panel.set_error(message)
        self.viewer.set_clusters(None)
        self.parcellation.set_prediction(None)
        text = strings.ERROR_PREDICT.format(subject=subject.key, message=message)
        log.warning("%s", " ".join(line.strip() for line in text.splitlines()))
        self.statusBar().showMessage(text, 8000)
        if subject.t1_path is not None and self.session.shown_volume_key != subject.key:
            self._preview(subject)

    def predict_all(self) -> FunctionWorker | None:
        """Predict every scan of the table on a worker; a second click stops it."""
        if self._predict_all_worker is not None:
            self._predict_all_worker.request_stop()
            return None
        subjects = self.session.subjects()
        if self.session.predictor is None or not subjects:
            return None
        self.progress.setRange(0, len(subjects))
        self.progress.setValue(0)
        self.progress.setFormat("predicting %v/%m")
        self.progress.setVisible(True)
        self.cohort_panel.predict_all_button.setText(strings.COHORT_PREDICT_ALL_RUNNING)
        ticket = self.session.requests.new(PREDICT_ALL)
        worker = FunctionWorker(jobs.predict_all_job, self.session.predictor, subjects, progress_kw="progress",
                                stop_kw="stop", name="predict-all")
        self._predict_all_worker = worker
        worker.finished.connect(lambda w=worker: self._on_predict_all_finished(w))
        # Reports of a run whose ticket went stale (the model changed) are dropped.
        current = self.session.is_current
        return self._start(worker, progress=lambda value, t=ticket: current(t) and self._on_predict_all_progress(value),
                           result=lambda value, t=ticket, n=len(subjects): (
                               current(t) and self._on_predict_all_done(value, n)))

    def _on_predict_all_progress(self, value) -> None:
        done, total, key, label, detail = value
        self.progress.setValue(done)
        if label is None:
            log.warning("%s: %s", key, detail)
        else:
            self.cohort_panel.set_prediction(key, label, detail)

    def _on_predict_all_done(self, value, n: int) -> None:
        """The summary goes to the log too: the failures it sends the user to are listed there."""
        done, failed = value
        text = (strings.STATUS_PREDICTED_ALL_FAILED if failed else strings.STATUS_PREDICTED_ALL).format(
            done=done, n=n, failed=failed)
        log.info("%s", text)
        self.statusBar().showMessage(text, 10000)

    def _on_predict_all_finished(self, worker) -> None:
        if worker is self._predict_all_worker:
            self._predict_all_worker = None
            self.cohort_panel.predict_all_button.setText(strings.COHORT_PREDICT_ALL)

    # ================================================================ models
    def refresh_runs(self, load_newest: bool = False) -> None:
        root = runs_dir()
        self._start(FunctionWorker(jobs.list_runs_job, root, name="list-runs"),
                    result=lambda runs: self._on_runs_listed(runs, load_newest))

    def _on_runs_listed(self, runs, load_newest: bool) -> None:
        from smmt_core.train.run_record import newest_finished

        actions.fill_model_box(self, runs)
        if load_newest and self.session.predictor is None:
            best = newest_finished(runs)  # a stopped or failed run is never loaded unasked
            if best is not None:
                self.load_model(best.run_dir)

    def load_model(self, run_dir) -> FunctionWorker:
        """Load a run (or the newest finished run of a folder of runs) on a worker; when several
        loads overlap, the latest request wins."""
        run_dir = str(Path(run_dir).expanduser())
        ticket = self.session.requests.new(MODEL)
        current = self.session.is_current
        return self._start(FunctionWorker(jobs.load_model_job, run_dir, name="load-model"),
                           result=lambda predictor, t=ticket: current(t) and self.session.set_model(predictor),
                           error=lambda message, t=ticket: (
                               current(t) and self.show_error(strings.ERROR_MODEL.format(message=message))),
                           busy=strings.STATUS_LOADING_MODEL.format(path=run_dir))

    def _on_model_changed(self, predictor) -> None:
        """Whatever the old model computed is stale: the table's predictions go, "Predict all"
        stops (its tickets were dropped by the session), and the current subject is predicted."""
        if self._predict_all_worker is not None:
            self._predict_all_worker.request_stop()
            self._predict_all_worker = None
            self.cohort_panel.predict_all_button.setText(strings.COHORT_PREDICT_ALL)
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
            self.request_prediction()

    def _on_device_changed(self, cuda_available: bool) -> None:
        if self.session.predictor is None:
            self.device_label.setText(strings.DEVICE_LABEL.format(device="GPU" if cuda_available else "CPU"))
        wizard = getattr(self, "wizard", None)
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
        running = self._demo_worker
        if running is not None and not running.is_done():
            return running
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self._set_demo_enabled(False)
        worker = FunctionWorker(jobs.demo_cohort_job, progress_kw="progress", stop_kw="stop", name="demo")
        self._demo_worker = worker
        worker.finished.connect(lambda: self._set_demo_enabled(True))
        return self._start(worker, result=lambda cohort: self.set_cohort(cohort),
                           error=lambda message: self.show_error(strings.ERROR_DEMO.format(message=message)),
                           progress=self._on_demo_progress, busy=strings.STATUS_BUILDING_DEMO)

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
            from smmt_gui.workers import describe_error

            self.show_error(describe_error(error))

    def open_training_wizard(self) -> None:
        actions.open_training_wizard(self)

    def _on_training_finished(self, run_dir) -> None:
        if run_dir:
            self.load_model(run_dir)
            self.tabs.setCurrentIndex(0)
            if self.session.subject is None and not self.session.subjects():
                self.viewer_stack.setCurrentWidget(self.welcome)

    # ================================================================ export
    def export_report_to(self, base) -> list[Path]:
        """Write the PNG/CSV/JSON/PDF report of the current prediction next to `base`."""
        return actions.export_report_to(self, base)

    # ================================================================ misc
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
        if len(urls) != 1:
            self.show_error(strings.ERROR_DROP.format(message=strings.ERROR_DROP_MANY.format(n=len(urls))))
            return
        if not urls[0].isLocalFile():
            self.show_error(strings.ERROR_DROP.format(message=strings.ERROR_DROP_NOT_LOCAL))
            return
        self.open_path(urls[0].toLocalFile(), how="drop")

    # ================================================================ closing
    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        """Close only once every job has ended: a thread left running would crash the app on exit.

        The first close request asks every job to stop (training and robustness included) and
        returns at once: the GUI thread never waits for a job. When a job is still winding down
        (a batch, a subject being written), the window stays open, its controls disabled, saying
        "stopping…", and a timer closes it as soon as the last job has ended. Further close
        requests meanwhile are ignored.
        """
        if self._closed:
            super().closeEvent(event)
            return
        if not self.session.closing:
            self._stop_all_jobs()
        running = self.running_jobs()
        if running:
            event.ignore()
            self._show_stopping(running)
            return
        if self._close_timer is not None:
            self._close_timer.stop()
        self._closed = True
        self.settings.save_viewer(self.viewer.colormap_box.currentText(), self.viewer.opacity)
        self.settings.save_window(self.saveGeometry(), self.saveState())
        self.settings.sync()
        self.log_panel.detach()
        super().closeEvent(event)
        self.closed.emit()

    def running_jobs(self) -> list[str]:
        """Names of the jobs whose thread is still running (any worker of the app)."""
        return [worker.name for worker in live_workers()]

    def is_closed(self) -> bool:
        """True once the window has really closed (every job had ended)."""
        return self._closed

    def _stop_all_jobs(self) -> None:
        self.session.begin_closing()
        self.statusBar().showMessage(strings.STATUS_STOPPING)
        self.statusBar().repaint()  # visible at once, without running the event loop from here
        for panel in (self.dashboard, self.robustness):
            stop = getattr(panel, "stop_now", None) or getattr(panel, "cancel", None)  # training: at once
            if stop is not None:
                stop()
        # Every worker of the app, not only this window's: none may outlive the window.
        for worker in live_workers():
            worker.request_stop()

    def _show_stopping(self, running: list[str]) -> None:
        text = f"{strings.STATUS_STOPPING} ({', '.join(sorted(set(running)))})"
        if self.message_bar.text() != text:
            self.message_bar.show_message(text, error=False)
            self.statusBar().showMessage(text)
        # Nothing new may start (no menu, toolbar, shortcut or button); the message bar stays readable.
        for widget in (self.menuBar(), self.toolbar, self.tabs, self.cohort_dock, self.prediction_dock):
            widget.setEnabled(False)
        for action in self.actions():
            action.setEnabled(False)
        if self._close_timer is None:
            self._close_timer = QTimer(self)
            self._close_timer.setInterval(CLOSE_POLL_MS)
            self._close_timer.timeout.connect(self._close_when_stopped)
        self._close_timer.start()

    def _close_when_stopped(self) -> None:
        running = self.running_jobs()
        if running:
            self._show_stopping(running)
        else:
            self._close_timer.stop()
            self.close()
