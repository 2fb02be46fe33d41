"""What a new user saw on screen, fixed: one test per problem a test can see (event-based)."""

from __future__ import annotations

import threading

from PySide6.QtCore import Qt

from smmt_gui import strings
from tests.core.test_resolve_run_dir import make_run


def test_the_title_names_the_app_once(main_window):
    """No application display name is appended to the title."""
    from smmt_gui.app import create_app

    app = create_app()
    assert app.applicationDisplayName() in ("", app.applicationName()) or \
        app.applicationDisplayName() not in main_window.windowTitle()
    assert main_window.windowTitle().count(strings.APP_NAME) == 1


def test_the_message_bar_paints_its_error_style(main_window, qtbot):
    """The style sheet's red background reaches the screen (a plain QWidget needs
    WA_StyledBackground for that)."""
    main_window.setStyleSheet('QWidget#messageBar[error="true"] { background: #fbe3e1; }')
    main_window.show()
    bar = main_window.message_bar
    assert bar.testAttribute(Qt.WidgetAttribute.WA_StyledBackground)
    main_window.show_error("something went wrong")
    qtbot.waitUntil(bar.isVisible, timeout=2000)
    colour = bar.grab().toImage().pixelColor(bar.width() - 40, 2)
    assert (colour.red(), colour.green(), colour.blue()) == (0xFB, 0xE3, 0xE1)


def test_the_demo_cannot_be_built_twice_at_once(main_window, qtbot, monkeypatch):
    """The demo button and menu entry are disabled while the cohort builds."""
    from smmt_gui import jobs

    release, calls = threading.Event(), []

    def slow_demo(progress, stop):
        calls.append(1)
        release.wait(30)
        return None  # no cohort: nothing to open

    monkeypatch.setattr(main_window.session, "set_cohort", lambda cohort: None)
    monkeypatch.setattr(jobs, "demo_cohort_job", slow_demo)
    errors = []
    main_window.show_error = errors.append
    worker = main_window.open_demo_cohort()
    assert not main_window.welcome.demo_button.isEnabled() and not main_window.act_demo_data.isEnabled()
    assert main_window.open_demo_cohort() is worker  # a second request joins the running build
    release.set()
    qtbot.waitUntil(worker.is_done, timeout=10000)
    assert calls == [1]
    assert main_window.welcome.demo_button.isEnabled() and main_window.act_demo_data.isEnabled()


def test_stopped_runs_are_marked_and_never_loaded_unasked(main_window, qtbot, tmp_path, monkeypatch):
    """The model list marks a stopped run; the newest *finished* run is the one loaded."""
    runs = tmp_path / "runs"
    finished = make_run(runs, "finished-run", "finished", "2026-01-01T00:00:00+00:00")
    make_run(runs, "cancelled-run", "stopped", "2026-01-02T00:00:00+00:00")
    loads = []
    monkeypatch.setattr(main_window.controller, "load_model", loads.append)
    from smmt_core.train.run_record import list_runs

    main_window.controller._on_runs_listed(list_runs(runs), load_newest=True)
    labels = [main_window.model_box.itemText(i) for i in range(main_window.model_box.count())]
    assert "cancelled-run  [stopped]" in labels and "finished-run" in labels
    assert loads == [finished]


def test_a_folder_of_runs_loads_its_newest_finished_run(main_window, qtbot, tiny_run):
    """The GUI, like the CLI, takes a folder of runs and loads the newest finished one."""
    _cohort, run_dir = tiny_run
    with qtbot.waitSignal(main_window.model_loaded, timeout=60000) as blocker:
        main_window.load_model(run_dir.parent)
    assert blocker.args[0].run_dir == run_dir


def test_smmt_predict_takes_a_folder_of_runs(tiny_run, capsys):
    """The CLI side of the same: `smmt predict --model RUNS` uses the newest finished run in RUNS."""
    from smmt_core.cli import main

    cohort, run_dir = tiny_run
    assert main(["predict", "sub-001", "--cohort", str(cohort), "--model", str(run_dir.parent)]) == 0
    captured = capsys.readouterr()
    assert f"using the newest finished run in {run_dir.parent}: {run_dir}" in captured.err
    assert captured.out.startswith("sub-001: ")
