"""The Qt-free controller: its scheduling rules and what the viewer holds, driven without a window."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

from smmt_gui import jobs
from smmt_gui.controller import Controller
from smmt_gui.session import Session


class FakeJob:
    """What `start` returns: a job the test finishes by hand (result, then finished)."""

    def __init__(self, fn, args, handlers):
        self.fn, self.args, self.handlers = fn, args, handlers
        self.stopped = self.done = False

    def request_stop(self):
        self.stopped = True

    def is_done(self):
        return self.done

    def finish(self, value=None, error=None):
        handler = self.handlers.get("error" if error is not None else "result")
        if handler is not None:
            handler(error if error is not None else value)
        self.done = True
        if self.handlers.get("finished") is not None:
            self.handlers["finished"](self)


def make_controller(modalities=("mri", "clinical")):
    started: list[FakeJob] = []

    def start(fn, *args, name, progress_kw=None, stop_kw=None, **handlers):
        started.append(FakeJob(fn, args, handlers))
        return started[-1]

    session = Session()
    switched_on = set(modalities)
    return Controller(session, start, lambda: switched_on), session, started, switched_on


def subject(key="sub-1"):
    return SimpleNamespace(key=key, t1_path=f"/data/{key}.nii.gz", modalities=[])


def prediction(volume="grid", intake=None):
    return SimpleNamespace(volume=volume, intake=intake)


def test_the_controller_imports_no_qt_and_no_torch():
    code = ("import sys, smmt_gui.controller; "
            "bad = [m for m in ('PySide6', 'torch') if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_one_prediction_in_flight_and_the_latest_request_runs_next():
    controller, session, started, switched_on = make_controller()
    session.set_model(SimpleNamespace(synthetic=False))
    session.set_subject(subject())
    drawn = []
    controller.prediction_ready.connect(lambda s, p, new_volume: drawn.append((p, new_volume)))
    for _ in range(3):
        controller.request_prediction()
    assert [job.fn for job in started] == [jobs.predict_job]  # the others wait for it
    switched_on.discard("clinical")
    started[0].finish(prediction())  # stale: a newer request came meanwhile
    assert drawn == [] and len(started) == 2 and started[1].args[2] == ["mri"]  # the latest switches
    started[1].finish(prediction())
    assert len(drawn) == 1 and drawn[0][1] is True  # the first volume of this subject
    assert controller.shown.volume_key == "sub-1" and session.last_prediction is drawn[0][0]


def test_a_refused_prediction_is_remembered_and_the_scan_previewed():
    controller, session, started, _ = make_controller()
    session.set_model(SimpleNamespace(synthetic=False))
    session.set_subject(subject("sub-2"))
    controller.request_prediction()
    started[0].finish(error="failed quality control")
    assert controller.shown.refusal == ("sub-2", "failed quality control")
    assert started[-1].fn is jobs.preview_job  # the scan is shown without a prediction
    assert "failed quality control" in controller.preview_status(subject("sub-2"))


def test_predict_all_and_the_demo_build_run_one_at_a_time():
    controller, session, started, _ = make_controller()
    session.set_model(SimpleNamespace(synthetic=False))
    session.set_single_subject(subject(), "/data")
    run = controller.predict_all()
    assert controller.predict_all() is None and run.stopped  # a second click stops it
    demo = controller.open_demo()
    assert controller.open_demo() is demo  # a second request joins the running build
    demo.finish(None)
    assert controller.open_demo() is not demo
