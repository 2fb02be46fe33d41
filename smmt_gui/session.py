"""What is open in one SMMT Studio window, without Qt: cohort, subject, model, last prediction.

Why a separate object: the window used to keep this state in a dozen attributes and to decide in
four different ways whether a late result still belonged on screen. Here the state has one owner
that the window *observes* (napari's split between Qt-free models and Qt views): a change goes
through one method, which notifies the observers, and every background request takes a ticket
from `Requests`, so "the latest request wins" is one rule, `session.is_current(ticket)`. Which
requests to make, and what the viewer holds, is the `Controller`'s (`smmt_gui.controller`).

    session = Session()
    session.model_changed.connect(lambda predictor: ...)
    ticket = session.requests.new("predict")      # older "predict" tickets are now stale
    ...
    if session.is_current(ticket): session.set_prediction(prediction)

Nothing here imports Qt or torch; the tests drive it directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

# Request channels. A new model makes every result of the old one stale; a new subject makes its
# predictions, preview and scan (the viewer's own-resolution images) stale.
MODEL, PREDICT, PREDICT_ALL, PREVIEW, SCANS = "model", "predict", "predict-all", "preview", "scans"


class Event:
    """A list of callbacks called in order with the values emitted (a tiny, Qt-free signal)."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[..., None]] = []

    def connect(self, callback: Callable[..., None]) -> None:
        self._callbacks.append(callback)

    def disconnect(self, callback: Callable[..., None]) -> None:
        self._callbacks.remove(callback)

    def emit(self, *values: Any) -> None:
        for callback in list(self._callbacks):
            callback(*values)


@dataclass(frozen=True)
class Ticket:
    """Handed to a background request; its result is shown only while the ticket is current."""

    channel: str
    number: int


class Requests:
    """Latest-request-wins bookkeeping: per channel, only the newest ticket is current."""

    def __init__(self) -> None:
        self._latest: dict[str, int] = {}

    def new(self, channel: str) -> Ticket:
        """A ticket for a new request; every older ticket of the channel becomes stale."""
        self._latest[channel] = self._latest.get(channel, 0) + 1
        return Ticket(channel, self._latest[channel])

    def current(self, channel: str) -> Ticket:
        """The channel's latest ticket (a fresh one if there has been none)."""
        if channel not in self._latest:
            return self.new(channel)
        return Ticket(channel, self._latest[channel])

    def is_current(self, ticket: Ticket | None) -> bool:
        return ticket is not None and self._latest.get(ticket.channel) == ticket.number

    def drop(self, *channels: str) -> None:
        """Make every ticket handed out so far on these channels stale."""
        for channel in channels:
            self.new(channel)


class Session:
    """Cohort, subject, model and last prediction of one window, plus its request tickets.

    Events (each called with the new value): cohort_changed (Cohort, Subject or None),
    subject_changed (Subject or None), model_changed (Predictor or None), prediction_changed
    (Prediction or None), device_changed (bool: whether CUDA is available).
    """

    def __init__(self) -> None:
        self.cohort = None  # a Cohort, when a dataset is open
        self.single_subject = None  # a Subject opened on its own (no cohort)
        self.data_path: str = ""
        self.subject = None  # the subject shown
        self.predictor = None
        self.last_prediction = None  # the prediction on screen (None after a change or an error)
        self.cuda_available: bool | None = None  # None until the device check has answered
        self.closing = False  # set by begin_closing(): no new request, no result shown
        self.requests = Requests()
        self.cohort_changed = Event()
        self.subject_changed = Event()
        self.model_changed = Event()
        self.prediction_changed = Event()
        self.device_changed = Event()

    # --- changes (each notifies its observers) -------------------------------------------------
    def set_cohort(self, cohort, path: str | None = None) -> None:
        self.cohort, self.single_subject = cohort, None
        self.data_path = str(path or (cohort.root if cohort is not None else ""))
        self.cohort_changed.emit(cohort)

    def set_single_subject(self, subject, path: str) -> None:
        self.cohort, self.single_subject = None, subject
        self.data_path = str(path)
        self.cohort_changed.emit(subject)

    def set_subject(self, subject) -> None:
        """A new current subject: its old prediction and preview requests are stale."""
        self.subject = subject
        self.requests.drop(PREDICT, PREVIEW, SCANS)
        self.last_prediction = None
        self.subject_changed.emit(subject)

    def set_model(self, predictor) -> bool:
        """Make `predictor` the model; returns whether it differs from the previous one, in
        which case whatever the old model computed (or still computes) is stale."""
        changed = predictor is not self.predictor
        if changed:
            self.requests.drop(PREDICT, PREDICT_ALL)
            self.last_prediction = None
        self.predictor = predictor
        self.model_changed.emit(predictor)
        return changed

    def set_prediction(self, prediction) -> None:
        self.last_prediction = prediction
        self.prediction_changed.emit(prediction)

    def begin_closing(self) -> None:
        """The window is closing: from now on no request is made and no result is shown."""
        self.closing = True

    def set_cuda_available(self, available: bool) -> None:
        self.cuda_available = bool(available)
        self.device_changed.emit(self.cuda_available)

    # --- questions -------------------------------------------------------------------------------
    def is_current(self, ticket: Ticket | None) -> bool:
        """Whether a result carrying `ticket` still belongs on screen."""
        return not self.closing and self.requests.is_current(ticket)

    def can_predict(self) -> bool:
        return not self.closing and self.predictor is not None and self.subject is not None

    def subjects(self) -> list:
        if self.cohort is not None:
            return list(self.cohort.subjects)
        return [self.single_subject] if self.single_subject is not None else []

    def data_is_synthetic(self) -> bool:
        """The open cohort, or the one subject shown on its own, comes from a SYNTHETIC dataset."""
        if self.cohort is not None:
            return bool(self.cohort.synthetic)
        return bool(self.single_subject is not None and self.single_subject.synthetic)

    def model_is_synthetic(self) -> bool:
        return bool(self.predictor is not None and self.predictor.synthetic)
