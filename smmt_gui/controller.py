"""What the window computes and shows, and the rules for it, without Qt.

Why apart from the window: `Session` holds what is open (cohort, subject, model, last prediction).
The `Controller` turns the user's requests into jobs (`smmt_gui.jobs`) and keeps the rules about
them: the latest request wins (each job carries a ticket from `session.requests`), at most one
prediction is in flight and a newer request runs when it ends, one "Predict all" and one demo build
at a time; and it keeps what the viewer holds (`Shown`), which decides whether a prediction brings
a new volume and whether a failed one still needs a preview. It tells the window what to draw
through its events; the window lays out widgets, forwards requests here and draws what the events
carry. Jobs start through the `start` callable the window hands in (a `JobRunner`: `start(fn,
*args, name=..., result=..., error=..., progress=..., finished=..., busy=...)`), so nothing here
imports Qt and the rules can be tested without a window.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smmt_gui import jobs, strings
from smmt_gui.session import MODEL, PREDICT, PREDICT_ALL, PREVIEW, SCANS, Event, Session

log = logging.getLogger(__name__)


@dataclass
class Shown:
    """What the viewer holds."""

    volume_key: str | None = None  # whose MRI the viewer holds
    intake_image: str | None = None  # the intake's MNI image behind that volume (None: a preview)
    refusal: tuple[str, str] | None = None  # (subject key, why) of the last failed prediction


class Controller:
    """Requests of the window as jobs, and what their results change.

    Events (arguments in brackets): error (message), notice (message), status (text, timeout ms),
    opened (path: open it again from the recent folders), intake_needed (path, subject, raw scan),
    preview_ready (subject, volume, affine, warnings), scans_ready (ScanViews), prediction_started
    (subject), prediction_ready (subject, prediction, new volume?), prediction_failed (subject,
    message), nothing_to_predict (subject), subject_shown (subject), predict_all_started (number of
    subjects), predict_all_progress ((done, total, key, label, probability or error)),
    predict_all_ended (), runs_listed (runs), demo_started (), demo_progress ((done, total)),
    demo_ended ().
    """

    def __init__(self, session: Session, start: Callable[..., Any],
                 enabled_modalities: Callable[[], Collection[str]]):
        self.session = session
        self.shown = Shown()
        self.open_how = "path"  # how the user asked for what is being opened (a key of strings.ERROR_OPEN)
        self._start = start
        self._enabled_modalities = enabled_modalities  # the prediction panel's switches
        self._prediction = None  # the prediction job in flight (at most one)
        self._predict_all = None  # the "Predict all" job, so that a second click stops it
        self._demo = None  # the demo build (one at a time)
        self.error = Event()
        self.notice = Event()
        self.status = Event()
        self.opened = Event()
        self.intake_needed = Event()
        self.preview_ready = Event()
        self.scans_ready = Event()
        self.prediction_started = Event()
        self.prediction_ready = Event()
        self.prediction_failed = Event()
        self.nothing_to_predict = Event()
        self.subject_shown = Event()
        self.predict_all_started = Event()
        self.predict_all_progress = Event()
        self.predict_all_ended = Event()
        self.runs_listed = Event()
        self.demo_started = Event()
        self.demo_progress = Event()
        self.demo_ended = Event()

    # --- opening data ----------------------------------------------------------------------------
    def open_path(self, path, how: str = "path"):
        """Open a subject folder, a T1 file or a dataset folder; `how` the user asked (a key of
        strings.ERROR_OPEN: "drop", "file", "folder", "path"), so a failure says what they did."""
        path = str(Path(path).expanduser())
        self.open_how = how
        return self._start(jobs.open_path_job, path, name="open",
                           result=lambda value: self._on_opened(path, value),
                           error=lambda message: self.error.emit(self.open_error(path, message, how)),
                           busy=strings.STATUS_LOADING.format(path=path))

    def open_error(self, path: str, message: str, how: str | None = None) -> str:
        how = how or self.open_how
        return strings.ERROR_OPEN.get(how, strings.ERROR_OPEN["path"]).format(path=path, message=message)

    def _on_opened(self, path: str, opened) -> None:
        from smmt_core.data.subject import Cohort

        value, raw = opened
        if raw is not None and self.session.predictor is not None:
            self.intake_needed.emit(path, value, raw)  # the subject opens once the intake is done
            return
        self.opened.emit(path)
        if isinstance(value, Cohort):
            self.session.set_cohort(value, path)
        else:
            self.session.set_single_subject(value, path)

    def report_opened(self, opened) -> bool:
        """Say what was opened (the status bar; a cohort's reading problems in the log, their number
        in a notice). False for a cohort without subjects, an error: there is nothing to show."""
        from smmt_core.data.subject import Cohort

        if isinstance(opened, Cohort):
            for problem in opened.problems:
                log.info("%s: %s", opened.root, problem)
            if not len(opened):
                self.error.emit(self.open_error(str(opened.root), strings.ERROR_NO_SUBJECTS.format(path=opened.root)))
                return False
            self.status.emit(strings.STATUS_LOADED_COHORT.format(
                n=len(opened), layout=opened.layout, path=self.session.data_path), 5000)
            if opened.problems:
                self.notice.emit(f"{len(opened.problems)} problem(s) noted while reading {opened.root} (see the log).")
        elif opened is not None:
            self.status.emit(strings.STATUS_LOADED_SUBJECT.format(subject=opened.key), 5000)
        return True

    # --- the subject shown -----------------------------------------------------------------------
    def present(self, subject) -> None:
        """Once the window is ready for the new current `subject`: predict it with the model, else
        preview its scan; a subject without a scan is shown as it is."""
        if subject.t1_path is None:
            self.shown.volume_key = None
        if self.session.predictor is not None:
            self.request_prediction()
        elif subject.t1_path is not None:
            self.preview(subject)
        else:
            self.subject_shown.emit(subject)

    def preview(self, subject) -> None:
        """The subject's scan on the model's grid, shown before (or without) a prediction."""
        if self.shown.volume_key == subject.key:
            return
        ticket = self.session.requests.new(PREVIEW)
        self._start(jobs.preview_job, subject.t1_path, name="preview",
                    result=lambda value: self.session.is_current(ticket) and self._on_preview(subject, value),
                    busy=strings.STATUS_LOADING.format(path=subject.t1_path))

    def _on_preview(self, subject, value) -> None:
        volume, affine, warnings = value
        self.shown.volume_key, self.shown.intake_image = subject.key, None
        self.preview_ready.emit(subject, volume, affine, warnings)
        self._load_scans(subject, None)
        self.status.emit(self.preview_status(subject), 0)
        self.subject_shown.emit(subject)

    def preview_status(self, subject) -> str:
        """What the status bar ends on when a scan is shown without a prediction: why there is none."""
        if self.session.predictor is None:
            return strings.STATUS_SHOWN_NO_MODEL.format(subject=subject.key)
        refusal = self.shown.refusal
        if refusal is not None and refusal[0] == subject.key:
            why = " ".join(line.strip() for line in refusal[1].splitlines() if line.strip())
            return strings.STATUS_SHOWN_REFUSED.format(subject=subject.key, message=why)
        return strings.STATUS_LOADED_SUBJECT.format(subject=subject.key)

    def _load_scans(self, subject, intake: dict | None) -> None:
        """The scan itself (own resolution; native space after the intake), to go under the model's
        grid that the viewer already shows; a scan that cannot be shown leaves the grid and a notice."""
        if subject.t1_path is None:
            return
        ticket = self.session.requests.new(SCANS)
        current = self.session.is_current
        self._start(jobs.scan_views_job, subject.t1_path, intake, name="scans",
                    result=lambda views: current(ticket) and self._on_scans(views),
                    error=lambda message: current(ticket) and self.notice.emit(
                        strings.NOTICE_SCAN_NOT_SHOWN.format(message=message)))

    def _on_scans(self, views) -> None:
        self.scans_ready.emit(views)
        for note in views.notes:
            log.info("%s", note)

    # --- prediction ------------------------------------------------------------------------------
    def request_prediction(self) -> None:
        """Predict the current subject with the switched-on modalities; the latest request wins.

        Each request takes a new ticket, so whatever is still in flight is stale on arrival. At
        most one prediction runs at a time: when one is in flight, the latest request starts as
        soon as it ends (fast toggling never queues more than one extra prediction)."""
        session = self.session
        if not session.can_predict():
            return
        session.requests.new(PREDICT)
        if not self._enabled_modalities():
            # Everything switched off: nothing to predict from; the old result must not linger.
            session.set_prediction(None)
            self.nothing_to_predict.emit(session.subject)
            return
        if self._prediction is None:
            self._run_prediction()

    def _run_prediction(self) -> None:
        session = self.session
        subject, predictor, ticket = session.subject, session.predictor, session.requests.current(PREDICT)
        modalities = sorted(self._enabled_modalities())
        self.prediction_started.emit(subject)
        self._prediction = self._start(
            jobs.predict_job, predictor, subject, modalities, name="predict",
            finished=lambda _worker: self._on_predict_finished(ticket),
            result=lambda prediction: session.is_current(ticket) and self._on_prediction(subject, prediction),
            error=lambda message: session.is_current(ticket) and self._on_predict_error(subject, message),
            busy=strings.STATUS_PREDICTING.format(subject=subject.key))

    def _on_predict_finished(self, ticket) -> None:
        self._prediction = None
        # A newer request came while this one ran: run it now (with the latest switches).
        if not self.session.requests.is_current(ticket) and self.session.can_predict() \
                and self._enabled_modalities():
            self._run_prediction()

    def _on_prediction(self, subject, prediction) -> None:
        # A new subject, or the first prediction of a previewed one (the intake may have registered it).
        intake_image = (prediction.intake or {}).get("t1_mni")
        new_volume = prediction.volume is not None and (
            self.shown.volume_key != subject.key or intake_image != self.shown.intake_image)
        if new_volume:
            self.shown.volume_key, self.shown.intake_image = subject.key, intake_image
            self._load_scans(subject, prediction.intake)
        self.session.set_prediction(prediction)
        self.prediction_ready.emit(subject, prediction, new_volume)
        self.subject_shown.emit(subject)

    def _on_predict_error(self, subject, message: str) -> None:
        self.shown.refusal = (subject.key, message)
        self.session.set_prediction(None)
        self.prediction_failed.emit(subject, message)
        text = strings.ERROR_PREDICT.format(subject=subject.key, message=message)
        log.warning("%s", " ".join(line.strip() for line in text.splitlines()))
        self.status.emit(text, 8000)
        if subject.t1_path is not None and self.shown.volume_key != subject.key:
            self.preview(subject)

    def predict_all(self):
        """Predict every subject open on a worker (all modalities on); a second call stops it."""
        if self._predict_all is not None:
            self._predict_all.request_stop()
            return None
        session = self.session
        subjects = session.subjects()
        if session.predictor is None or not subjects:
            return None
        self.predict_all_started.emit(len(subjects))
        ticket = session.requests.new(PREDICT_ALL)  # reports of a run whose ticket went stale are dropped
        self._predict_all = self._start(
            jobs.predict_all_job, session.predictor, subjects, progress_kw="progress", stop_kw="stop",
            name="predict-all", finished=self._on_predict_all_finished,
            progress=lambda value: session.is_current(ticket) and self._on_predict_all_progress(value),
            result=lambda value: session.is_current(ticket) and self._on_predict_all_done(value, len(subjects)))
        return self._predict_all

    def stop_predict_all(self) -> None:
        """Stop "Predict all" (the model changed: its tickets are stale already)."""
        if self._predict_all is not None:
            self._predict_all.request_stop()
            self._predict_all = None
            self.predict_all_ended.emit()

    def _on_predict_all_progress(self, value) -> None:
        _done, _total, key, label, detail = value
        if label is None:
            log.warning("%s: %s", key, detail)
        self.predict_all_progress.emit(value)

    def _on_predict_all_done(self, value, n: int) -> None:
        """The summary goes to the log too: the failures it sends the user to are listed there."""
        done, failed = value
        text = (strings.STATUS_PREDICTED_ALL_FAILED if failed else strings.STATUS_PREDICTED_ALL).format(
            done=done, n=n, failed=failed)
        log.info("%s", text)
        self.status.emit(text, 10000)

    def _on_predict_all_finished(self, worker) -> None:
        if worker is self._predict_all:
            self._predict_all = None
            self.predict_all_ended.emit()

    # --- models and the device -------------------------------------------------------------------
    def load_model(self, run_dir):
        """Load a run (or the newest finished run of a folder of runs); when several loads
        overlap, the latest request wins."""
        run_dir = str(Path(run_dir).expanduser())
        ticket = self.session.requests.new(MODEL)
        current = self.session.is_current
        return self._start(jobs.load_model_job, run_dir, name="load-model",
                           result=lambda predictor: current(ticket) and self.session.set_model(predictor),
                           error=lambda message: current(ticket) and self.error.emit(
                               strings.ERROR_MODEL.format(message=message)),
                           busy=strings.STATUS_LOADING_MODEL.format(path=run_dir))

    def list_runs(self, root, load_newest: bool = False) -> None:
        """List the runs under `root` for the model list; `load_newest`: and load the newest
        finished one when no model is loaded (a stopped or failed run is never loaded unasked)."""
        self._start(jobs.list_runs_job, root, name="list-runs",
                    result=lambda runs: self._on_runs_listed(runs, load_newest))

    def _on_runs_listed(self, runs, load_newest: bool) -> None:
        from smmt_core.train.run_record import newest_finished

        self.runs_listed.emit(runs)
        if load_newest and self.session.predictor is None:
            best = newest_finished(runs)
            if best is not None:
                self.load_model(best.run_dir)

    def check_device(self) -> None:
        self._start(jobs.device_job, name="device", result=self.session.set_cuda_available)

    # --- the demo cohort -------------------------------------------------------------------------
    def open_demo(self):
        """Build the synthetic demo cohort on first use, then open it; a second request while it
        builds joins the running build (two would race and silently reload the cohort)."""
        running = self._demo
        if running is not None and not running.is_done():
            return running
        self.demo_started.emit()
        self._demo = self._start(jobs.demo_cohort_job, progress_kw="progress", stop_kw="stop", name="demo",
                                 finished=lambda _worker: self.demo_ended.emit(),
                                 result=lambda cohort: self.session.set_cohort(cohort),
                                 error=lambda message: self.error.emit(strings.ERROR_DEMO.format(message=message)),
                                 progress=self.demo_progress.emit, busy=strings.STATUS_BUILDING_DEMO)
        return self._demo
