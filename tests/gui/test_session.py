"""The Qt-free session: one owner of the window's state, one latest-request-wins rule."""

from __future__ import annotations

import sys
from types import SimpleNamespace

from smmt_gui.session import MODEL, PREDICT, PREDICT_ALL, PREVIEW, Requests, Session


def test_the_session_imports_no_qt_and_no_torch():
    import subprocess

    code = ("import sys, smmt_gui.session; "
            "bad = [m for m in ('PySide6', 'torch') if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_a_new_ticket_makes_older_ones_stale():
    requests = Requests()
    first = requests.new(PREDICT)
    second = requests.new(PREDICT)
    other = requests.new(MODEL)
    assert not requests.is_current(first) and requests.is_current(second) and requests.is_current(other)
    requests.drop(PREDICT)
    assert not requests.is_current(second) and requests.is_current(other)
    assert requests.current(PREVIEW) == requests.current(PREVIEW)  # asking does not invalidate
    assert not requests.is_current(None)


def test_a_new_subject_or_model_drops_the_results_that_belong_to_the_old_one():
    session = Session()
    seen = []
    for name in ("subject_changed", "model_changed", "prediction_changed"):
        getattr(session, name).connect(lambda value, n=name: seen.append((n, value)))
    predict, preview, predict_all = (session.requests.new(c) for c in (PREDICT, PREVIEW, PREDICT_ALL))
    session.set_subject(SimpleNamespace(key="sub-2"))
    assert not session.is_current(predict) and not session.is_current(preview)
    assert session.is_current(predict_all)  # "Predict all" does not depend on the subject shown
    session.set_prediction("a prediction")
    model = SimpleNamespace(synthetic=True)
    assert session.set_model(model) is True
    assert not session.is_current(predict_all) and session.last_prediction is None
    assert session.set_model(model) is False  # the same model again: nothing becomes stale
    assert [n for n, _ in seen] == ["subject_changed", "prediction_changed", "model_changed", "model_changed"]
    assert session.model_is_synthetic()


def test_nothing_is_current_once_the_window_closes():
    session = Session()
    ticket = session.requests.new(MODEL)
    session.begin_closing()
    assert not session.is_current(ticket)


def test_subjects_of_a_cohort_or_of_a_lone_subject():
    session = Session()
    assert session.subjects() == [] and not session.data_is_synthetic()
    lone = SimpleNamespace(key="x", synthetic=True)
    session.set_single_subject(lone, "/data/x")
    assert session.subjects() == [lone] and session.data_is_synthetic() and session.data_path == "/data/x"
    cohort = SimpleNamespace(subjects=[lone, lone], synthetic=False, root="/data")
    session.set_cohort(cohort)
    assert session.subjects() == [lone, lone] and not session.data_is_synthetic() and session.data_path == "/data"
