"""Log panel, cohort table and remembered settings."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from smmt_core.data.subject import Cohort, Subject
from smmt_gui.panels.cohort import CohortPanel
from smmt_gui.panels.log import LogPanel
from smmt_gui.settings import MAX_RECENT, AppSettings, runs_dir


def test_log_records_from_any_thread_reach_the_panel(qtbot):
    panel = LogPanel()
    qtbot.addWidget(panel)
    try:
        logger = logging.getLogger("smmt_core.train.trainer")
        thread = threading.Thread(target=lambda: logger.info("epoch 3 of 12 done"))
        thread.start()
        thread.join()
        logging.getLogger("smmt_core").debug("too chatty to show")
        qtbot.waitUntil(lambda: any("epoch 3 of 12 done" in line for line in panel.lines()), timeout=2000)
        assert "INFO" in panel.lines()[-1] and not any("chatty" in line for line in panel.lines())
    finally:
        panel.detach()
    logger.info("after detach")
    qtbot.wait(20)
    assert not any("after detach" in line for line in panel.lines())


def cohort(tmp_path, synthetic=False):
    subjects = [
        Subject("sub-02", label="AD", t1_path=tmp_path / "a.nii", numeric={"MMSE": 21.0}),
        Subject("sub-01", label="CN", numeric={"MMSE": 29.0}, categorical={"PTGENDER": "Male"}),
        Subject("sub-03", label=None, t1_path=tmp_path / "c.nii", session="M06"),
    ]
    return Cohort(subjects, layout="bids", root=tmp_path, name="mini", synthetic=synthetic)


def test_cohort_table_lists_sorts_and_selects(qtbot, tmp_path):
    panel = CohortPanel()
    qtbot.addWidget(panel)
    panel.set_cohort(cohort(tmp_path))
    assert panel.summary.text() == "mini: 3 scans · AD 1, CN 1, unlabelled 1"
    assert not panel.table.isColumnHidden(1)  # one scan has a session
    proxy = panel.proxy
    assert [proxy.index(r, 0).data() for r in range(3)] == ["sub-01", "sub-02", "sub-03"]
    assert proxy.index(0, 3).data() == "clin cat" and proxy.index(1, 3).data() == "MRI clin"
    assert proxy.index(2, 2).data() == "?"
    with qtbot.waitSignal(panel.subject_selected) as blocker:
        panel.select_row(1)
    assert blocker.args[0].subject_id == "sub-02"
    panel.set_prediction("sub-02", "AD", 0.876)
    assert proxy.index(1, 4).data() == "AD" and proxy.index(1, 5).data() == "88%"
    assert panel.synthetic_badge.isHidden()
    panel.set_cohort(cohort(tmp_path, synthetic=True))
    assert not panel.synthetic_badge.isHidden() and proxy.index(1, 4).data() == ""


def test_recent_lists_are_short_unique_and_newest_first(tmp_path):
    settings = AppSettings()
    for i in range(MAX_RECENT + 3):
        (tmp_path / f"d{i}").mkdir()
        settings.add_recent_folder(tmp_path / f"d{i}")
    settings.add_recent_folder(tmp_path / "d5")
    items = settings.recent_folders()
    assert len(items) == MAX_RECENT and items[0] == str(tmp_path / "d5") and len(set(items)) == MAX_RECENT
    settings.sync()
    assert AppSettings().recent_folders() == items  # read back from the INI file
    assert AppSettings().recent_models() == []


def test_runs_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SMMT_RUNS_DIR", str(tmp_path / "r"))
    assert runs_dir() == tmp_path / "r"
    monkeypatch.delenv("SMMT_RUNS_DIR")
    assert runs_dir() == Path.home() / ".local" / "share" / "smmt-studio" / "runs"


def _dashboard_with_a_run(qtbot):
    """A stand-alone training dashboard whose (fake) run, once stopped, winds down only when the
    test sets `release` (e.g. the batch in progress and its checkpoint)."""
    from smmt_core.train.config import TrainConfig
    from smmt_gui.panels.training import TrainingDashboard

    running, release, ended = threading.Event(), threading.Event(), threading.Event()

    def train(config, on_event, stop):
        running.set()
        stop.wait(30)
        release.wait(30)
        ended.set()

    dashboard = TrainingDashboard(train_fn=train)
    qtbot.addWidget(dashboard)
    dashboard.show()
    dashboard.start(TrainConfig.build("demo", dataset="demo"))
    assert running.wait(5)
    return dashboard, release, ended


def test_closing_a_dashboard_cancels_its_run_and_closes_once_it_ended(qtbot):
    dashboard, release, ended = _dashboard_with_a_run(qtbot)
    release.set()  # the run can wind down at once
    if not dashboard.close():  # closed at once, or as soon as the run has ended
        qtbot.waitUntil(lambda: not dashboard.isVisible(), timeout=10000)
    assert ended.is_set() and not dashboard.isVisible()


def test_closing_a_dashboard_never_waits_for_its_run(qtbot):
    dashboard, release, ended = _dashboard_with_a_run(qtbot)
    # The run cannot end before `release`: had close() waited for it, it would have timed out
    # with the run still going; it returns at once instead, the dashboard still open.
    assert dashboard.close() is False
    assert not ended.is_set() and dashboard.isVisible()
    release.set()
    qtbot.waitUntil(lambda: not dashboard.isVisible(), timeout=10000)
    assert ended.is_set()
