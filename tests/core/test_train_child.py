"""Training in a child process keeps `train`'s contract (events in the calling thread, stop after
the current batch, one-line errors) and leaves no orphan process behind; a stop reaches the child at
once and at most the batch in progress finishes after it; an abort (the app is closing) ends the run
at once, recorded as stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from smmt_core.errors import TrainingError
from smmt_core.train.child import stop_flag, train_in_child
from smmt_core.train.events import BatchProgress, EpochEnd, RunFailed, RunFinished, RunResult, RunStarted, StopSeen
from tests.core.c1_support import make_tiny_bids, tiny_config


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return make_tiny_bids(tmp_path_factory.mktemp("child-cohort") / "cohort", n_per_class=6)


@pytest.mark.slow
def test_events_arrive_in_the_calling_thread_and_the_result_comes_back(cohort, tmp_path):
    config = tiny_config(cohort, tmp_path / "runs", run_name="child", epochs=1)
    threads, kinds = set(), []

    def on_event(event):
        threads.add(threading.get_ident())
        kinds.append(type(event))

    result = train_in_child(config, on_event=on_event)
    assert threads == {threading.get_ident()}
    assert kinds[0] is RunStarted and kinds[-1] is RunFinished and BatchProgress in kinds
    assert result.run_dir == tmp_path / "runs" / "child" and (result.run_dir / "best.safetensors").is_file()


@pytest.mark.slow
def test_stop_ends_the_child_after_the_current_batch(cohort, tmp_path):
    config = tiny_config(cohort, tmp_path / "runs", run_name="stopped", epochs=200, batch_size=2)
    stop = threading.Event()
    events = []

    def on_event(event):
        events.append(event)
        if isinstance(event, BatchProgress):
            stop.set()

    train_in_child(config, on_event=on_event, stop=stop)
    finished = [e for e in events if isinstance(e, RunFinished)]
    assert finished and finished[0].stopped_early
    assert len([e for e in events if isinstance(e, BatchProgress)]) < 200


@pytest.mark.slow
def test_a_stop_flag_ends_the_run_within_one_batch(cohort, tmp_path):
    """The child notes how many batches were done when the flag arrived (StopSeen.batches_at_request)
    and when its loop saw it (batches_done): at most the batch in progress lies between them, and no
    batch is reported after it."""
    config = tiny_config(cohort, tmp_path / "runs", run_name="one-batch", epochs=200, batch_size=2)
    stop = stop_flag()
    events = []

    def on_event(event):
        events.append(event)
        if isinstance(event, BatchProgress) and event.epoch == 2 and event.batch == 1:
            stop.set()

    result = train_in_child(config, on_event=on_event, stop=stop)
    assert isinstance(result, RunResult) and result.stopped_early
    seen = [e for e in events if isinstance(e, StopSeen)]
    assert len(seen) == 1
    assert seen[0].batches_at_request is not None
    assert 0 <= seen[0].batches_done - seen[0].batches_at_request <= 1
    after = events[events.index(seen[0]):]
    assert not any(isinstance(e, BatchProgress) for e in after)
    assert sum(isinstance(e, BatchProgress) for e in events) == seen[0].batches_done
    assert isinstance(events[-1], RunFinished) and events[-1].stopped_early
    assert json.loads((result.run_dir / "run.json").read_text())["status"] == "stopped"


@pytest.mark.slow
def test_an_abort_ends_the_run_at_once_recorded_as_stopped(cohort, tmp_path):
    """An app that closes sets stop and abort; the child skips the test evaluation a
    stop would still do, keeps the checkpoint of the finished epoch and says "stopped"."""
    config = tiny_config(cohort, tmp_path / "runs", run_name="abort", epochs=200, batch_size=2)
    stop, abort = stop_flag(), stop_flag()
    events = []

    def on_event(event):
        events.append(event)
        if isinstance(event, EpochEnd):
            abort.set()
            stop.set()

    # As when the app was started as a background job: the child inherits an ignored SIGINT, which
    # must not disable the abort (it reaches the training thread through SIGINT's handler).
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with pytest.raises(TrainingError, match="interrupted"):
            train_in_child(config, on_event=on_event, stop=stop, abort=abort)
    finally:
        signal.signal(signal.SIGINT, previous)
    run_dir = tmp_path / "runs" / "abort"
    run = json.loads((run_dir / "run.json").read_text())
    assert run["status"] == "stopped" and run["error"] == "interrupted"
    assert not run.get("test_metrics")  # the test evaluation was skipped
    assert (run_dir / "best.safetensors").is_file()
    assert not list(run_dir.glob("*.tmp*"))
    assert not any(isinstance(e, RunFinished) for e in events)
    assert isinstance(events[-1], RunFailed) and events[-1].message == "interrupted"


def test_a_bad_config_fails_with_the_childs_one_line_message(tmp_path):
    config = tiny_config(tmp_path / "missing", tmp_path / "runs", run_name="bad")
    with pytest.raises(TrainingError, match="missing"):
        train_in_child(config)


PARENT = """
import sys, threading
from pathlib import Path
from smmt_core.train.child import train_in_child
from tests.core.c1_support import tiny_config

def on_event(event):
    print("EVENT", flush=True)

train_in_child(tiny_config(Path(sys.argv[1]), Path(sys.argv[2]), run_name="orphan", epochs=500, batch_size=2),
               on_event=on_event)
"""


@pytest.mark.slow
def test_no_orphan_when_the_parent_is_killed(cohort, tmp_path):
    """The parent dies without a chance to clean up (SIGKILL): its training child ends too."""
    import psutil

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(cohort), str(tmp_path / "runs")],
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert parent.stdout.readline().strip() == "EVENT"  # the child is training
        children = psutil.Process(parent.pid).children(recursive=True)
        trainers = [c for c in children if "spawn_main" in " ".join(c.cmdline())]
        assert trainers
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        parent.stdout.close()
    gone, alive = psutil.wait_procs(trainers, timeout=60)
    assert alive == []
