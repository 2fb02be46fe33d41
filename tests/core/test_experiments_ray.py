"""The Ray backend: the same results as the local backend, retry once, input errors, stop and Ctrl-C.

One local Ray instance (2 CPUs) is shared by the module, because starting Ray takes seconds on
this machine; it is shut down at teardown, so no Ray process outlives the tests. Skipped when
the `ray` extra is not installed.
"""

from __future__ import annotations

import json
import os
import threading

import pandas as pd
import pytest

ray = pytest.importorskip("ray")

import tests.core.grid_fakes as grid_fakes  # noqa: E402
from smmt_core.errors import DataError  # noqa: E402
from smmt_core.experiments.backends import make_backend  # noqa: E402
from smmt_core.experiments.grid import CellFinished, ExperimentSpec, run_experiment  # noqa: E402
from tests.core.grid_fakes import BlockingRunner, CrashingRunner, FakeRunner  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Columns that legitimately differ between backends: where the run folder is, and how long it took.
WHERE_AND_WHEN = ["run_dir", "duration_s"]


@pytest.fixture(scope="module", autouse=True)
def ray_instance():
    import cloudpickle

    cloudpickle.register_pickle_by_value(grid_fakes)  # workers need not import the tests package
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()
    cloudpickle.unregister_pickle_by_value(grid_fakes)


def spec(runner, **kw) -> ExperimentSpec:
    base = dict(data="demo", variants=["smmt", "3mt"], fractions=[0.5, 1.0], seeds=[0], epochs=2, runner=runner)
    base.update(kw)
    return ExperimentSpec(**base)


def backend():
    return make_backend("ray", cpus_per_cell=1)


def same_rows(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.drop(columns=WHERE_AND_WHEN), b.drop(columns=WHERE_AND_WHEN))


def test_ray_grid_writes_the_same_results_as_the_local_one_and_resumes(tmp_path):
    run_experiment(spec(FakeRunner()), tmp_path / "local", make_plots=False)
    events = []
    remote = run_experiment(spec(FakeRunner()), tmp_path / "ray", on_event=events.append, make_plots=False,
                            backend=backend())
    assert remote.complete and remote.n_trained == 4
    same_rows(pd.read_csv(tmp_path / "local" / "results.csv"), pd.read_csv(tmp_path / "ray" / "results.csv"))
    assert (tmp_path / "ray" / "summary.md").read_text() == (tmp_path / "local" / "summary.md").read_text()
    assert sorted(e.index for e in events if isinstance(e, CellFinished)) == [0, 1, 2, 3]
    again = run_experiment(spec(FakeRunner()), tmp_path / "ray", make_plots=False, backend=backend())
    assert again.n_reused == 4 and again.n_trained == 0


def test_ray_cells_match_local_cells_with_the_real_trainer(tmp_path, monkeypatch):
    """On the CPU a cell trained in a Ray task gives exactly the metrics of the same cell trained
    locally (same config and seed, one torch thread each)."""
    from tests.core.c1_support import make_tiny_bids

    monkeypatch.setenv("SMMT_CACHE_DIR", str(tmp_path / "cache"))  # forwarded to the tasks
    data = make_tiny_bids(tmp_path / "bids", n_per_class=6)
    tiny = dict(batch_size=4, d_model=32, n_heads=2, n_fusion_tokens=2, image_size=16, n_slices=2,
                resolution_mm=8.0, test_size=0.25, val_size=0.2, measure_energy=False, device="cpu")
    s = ExperimentSpec(data=str(data), variants=["smmt", "3mt"], fractions=[1.0], seeds=[0], epochs=1,
                       overrides=tiny)
    local = run_experiment(s, tmp_path / "local", make_plots=False)
    remote = run_experiment(s, tmp_path / "ray", make_plots=False, backend=backend())
    assert local.complete and remote.complete
    same_rows(local.results, remote.results)
    for name in local.results["cell"]:
        a = pd.read_csv(tmp_path / "local" / "runs" / name / "metrics.csv")
        b = pd.read_csv(tmp_path / "ray" / "runs" / name / "metrics.csv")
        pd.testing.assert_frame_equal(a.drop(columns=["elapsed_s"]), b.drop(columns=["elapsed_s"]))


def test_a_crashed_cell_is_retried_once_then_recorded_as_failed(tmp_path):
    once = run_experiment(spec(CrashingRunner(tmp_path / "a", crashes=1), variants=["smmt"], fractions=[1.0]),
                          tmp_path / "once", make_plots=False, backend=backend())
    assert once.complete and len(list((tmp_path / "a").iterdir())) == 2  # crashed, then trained

    always = run_experiment(spec(CrashingRunner(tmp_path / "b", crashes=5), variants=["smmt"], fractions=[1.0]),
                            tmp_path / "always", make_plots=False, backend=backend())
    assert always.n_failed == 1 and len(list((tmp_path / "b").iterdir())) == 2  # tried twice, no more
    row = pd.read_csv(tmp_path / "always" / "results.csv").iloc[0]
    assert row["status"] == "failed" and row["error"] == "RuntimeError: crash on attempt 2"


def test_a_cell_whose_worker_died_is_retried_once(tmp_path):
    result = run_experiment(spec(CrashingRunner(tmp_path / "a", crashes=1, hard=True), variants=["smmt"],
                                 fractions=[1.0]), tmp_path / "exp", make_plots=False, backend=backend())
    assert result.complete and len(list((tmp_path / "a").iterdir())) == 2  # died, then trained


def test_an_input_error_stops_the_grid(tmp_path):
    runner = FakeRunner(fail_on="smmt", error=DataError("participants.tsv has no diagnosis column", "/d"))
    with pytest.raises(DataError, match="diagnosis"):
        run_experiment(spec(runner, variants=["smmt"], fractions=[1.0]), tmp_path, make_plots=False,
                       backend=backend())
    assert (tmp_path / "results.csv").exists()


def _wait_until_dead(pid: int) -> bool:
    """True once process `pid` is gone (waits on the process itself, at most a minute)."""
    import psutil

    try:
        psutil.Process(pid).wait(timeout=60)
    except psutil.NoSuchProcess:
        pass
    except psutil.TimeoutExpired:
        return False
    return True


@pytest.mark.parametrize("how", ["ctrl-c", "stop flag"])
def test_ctrl_c_or_stop_cancels_outstanding_cells_and_keeps_finished_ones(tmp_path, how):
    pids = tmp_path / "pids"
    runner = BlockingRunner(quick="smmt", pid_dir=pids)
    stop = threading.Event()

    def on_event(event):
        if isinstance(event, CellFinished):  # the quick cell is done; the slow one is running
            while not (pids / "3mt_frac1_seed0_mask0").exists():
                threading.Event().wait(0.05)
            if how == "ctrl-c":
                raise KeyboardInterrupt
            stop.set()

    s = spec(runner, fractions=[1.0])
    if how == "ctrl-c":
        with pytest.raises(KeyboardInterrupt):
            run_experiment(s, tmp_path / "exp", on_event=on_event, make_plots=False, backend=backend())
    else:
        result = run_experiment(s, tmp_path / "exp", on_event=on_event, stop=stop, make_plots=False,
                                backend=backend())
        assert result.stopped and not result.complete
    rows = pd.read_csv(tmp_path / "exp" / "results.csv")
    assert list(rows["cell"]) == ["smmt_frac1_seed0_mask0.3"] and list(rows["status"]) == ["finished"]
    pid = int((pids / "3mt_frac1_seed0_mask0").read_text())
    assert pid != os.getpid() and _wait_until_dead(pid)  # the running task was cancelled
    run = json.loads((tmp_path / "exp" / "runs" / "smmt_frac1_seed0_mask0.3" / "run.json").read_text())
    assert run["status"] == "finished"
    resumed = run_experiment(spec(FakeRunner(), fractions=[1.0]), tmp_path / "exp", make_plots=False,
                             backend=backend())
    assert (resumed.n_reused, resumed.n_trained) == (1, 1)
