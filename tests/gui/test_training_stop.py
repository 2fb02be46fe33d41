"""Stopping a real training run from the GUI: Cancel ends it within one batch;
closing the window ends it at once and leaves no training process behind."""

from __future__ import annotations

import json

import psutil
import pytest

from smmt_core.train.events import BatchProgress, StopSeen
from smmt_gui.panels.training import TrainingDashboard
from tests.core.c1_support import make_tiny_bids, one_thread, tiny_config


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return make_tiny_bids(tmp_path_factory.mktemp("stop-cohort") / "cohort", n_per_class=6)


@pytest.fixture
def one_torch_thread():
    with one_thread():
        yield


def training_processes() -> list[psutil.Process]:
    """This process's spawned training children (not multiprocessing's resource tracker)."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            command = " ".join(child.cmdline())
        except psutil.NoSuchProcess:
            continue
        if "spawn_main" in command:
            found.append(child)
    return found


def record_events(dashboard: TrainingDashboard) -> list:
    """Every event the dashboard handles, in order (the worker's signal is connected in start())."""
    events = []
    handle = dashboard.handle_event

    def recording(event):
        events.append(event)
        handle(event)

    dashboard.handle_event = recording
    return events


@pytest.mark.slow
def test_cancel_ends_a_real_run_within_one_batch(qtbot, tmp_path, cohort, one_torch_thread):
    config = tiny_config(cohort, tmp_path / "runs", run_name="cancel-one-batch", epochs=200, batch_size=2)
    dashboard = TrainingDashboard()
    qtbot.addWidget(dashboard)
    events = record_events(dashboard)
    dashboard.start(config)
    qtbot.waitUntil(lambda: len(dashboard.epochs) >= 1 and len(dashboard.batch_x) > len(dashboard.epochs) * 3,
                    timeout=120_000)
    with qtbot.waitSignal(dashboard.cancelled, timeout=120_000) as blocker:
        dashboard.cancel()
    qtbot.waitUntil(lambda: not dashboard.is_running(), timeout=10_000)

    seen = [e for e in events if isinstance(e, StopSeen)]
    assert len(seen) == 1
    # At most the batch in progress when the flag reached the child finished after it...
    assert 0 <= seen[0].batches_done - seen[0].batches_at_request <= 1
    # ...and no batch was reported after the run saw the flag.
    assert not any(isinstance(e, BatchProgress) for e in events[events.index(seen[0]):])
    assert len(dashboard.batch_x) == seen[0].batches_done
    run_dir = blocker.args[0]
    assert json.loads((run_dir / "run.json").read_text())["status"] == "stopped"
    assert dashboard.title_label.text().startswith("Cancelled")


@pytest.mark.slow
def test_closing_the_window_during_training_ends_the_training_process(main_window, qtbot, tmp_path, cohort,
                                                                       one_torch_thread):
    config = tiny_config(cohort, tmp_path / "runs", run_name="closing", epochs=200, batch_size=2)
    main_window.show()
    main_window.start_training(config)
    dashboard = main_window.dashboard
    qtbot.waitUntil(lambda: len(dashboard.epochs) >= 1 and len(dashboard.batch_x) > len(dashboard.epochs) * 3,
                    timeout=120_000)
    trainers = training_processes()
    assert len(trainers) == 1  # the run trains in its own process
    failures = []
    dashboard.failed.connect(failures.append)

    main_window.close()
    qtbot.waitUntil(main_window.is_closed, timeout=120_000)

    # The window closed only once the training worker had ended, and it joined its process.
    gone, alive = psutil.wait_procs(trainers, timeout=10)
    assert alive == []
    assert training_processes() == []
    run_dir = tmp_path / "runs" / "closing"
    run = json.loads((run_dir / "run.json").read_text())
    assert run["status"] == "stopped"  # recorded as stopped by the user, not failed and not "running"
    assert (run_dir / "best.safetensors").is_file() and not list(run_dir.glob("*.tmp*"))
    assert failures == []  # the interrupted run is a cancelled one, not a failure
