"""The Slurm backend through submitit's local executor: one array per grid, the same results as
the local backend, resume, retry once, input errors and stop. Skipped without the `slurm` extra.

Each job is a fresh Python process (as on a cluster), so the grids here are kept to a few cells.
"""

from __future__ import annotations

import threading

import pandas as pd
import pytest

submitit = pytest.importorskip("submitit")

import tests.core.grid_fakes as grid_fakes  # noqa: E402
from smmt_core.errors import ConfigError, DataError  # noqa: E402
from smmt_core.experiments.backends import make_backend  # noqa: E402
from smmt_core.experiments.backends.slurm import job_error_line  # noqa: E402
from smmt_core.experiments.grid import CellFinished, ExperimentSpec, run_experiment  # noqa: E402
from tests.core.grid_fakes import BlockingRunner, CrashingRunner, FakeRunner  # noqa: E402

WHERE_AND_WHEN = ["run_dir", "duration_s"]


@pytest.fixture(autouse=True)
def fakes_by_value():
    import cloudpickle

    cloudpickle.register_pickle_by_value(grid_fakes)  # jobs need not import the tests package
    yield
    cloudpickle.unregister_pickle_by_value(grid_fakes)


def spec(runner, **kw) -> ExperimentSpec:
    base = dict(data="demo", variants=["smmt", "3mt"], fractions=[1.0], seeds=[0], epochs=2, runner=runner)
    base.update(kw)
    return ExperimentSpec(**base)


def backend(**kw):
    return make_backend("slurm", cluster="local", poll_s=0.2, **kw)


def test_slurm_array_writes_the_same_results_as_local_and_resumes(tmp_path):
    run_experiment(spec(FakeRunner()), tmp_path / "local", make_plots=False)
    result = run_experiment(spec(FakeRunner()), tmp_path / "slurm", make_plots=False, backend=backend())
    assert result.complete and result.n_trained == 2
    a, b = (pd.read_csv(tmp_path / d / "results.csv") for d in ("local", "slurm"))
    pd.testing.assert_frame_equal(a.drop(columns=WHERE_AND_WHEN), b.drop(columns=WHERE_AND_WHEN))
    assert list((tmp_path / "slurm" / "slurm").iterdir())  # submitit's job files and logs
    again = run_experiment(spec(FakeRunner()), tmp_path / "slurm", make_plots=False, backend=backend())
    assert again.n_reused == 2 and again.n_trained == 0


def test_a_crashed_job_is_submitted_once_more_then_recorded_as_failed(tmp_path):
    once = run_experiment(spec(CrashingRunner(tmp_path / "a", crashes=1), variants=["smmt"]), tmp_path / "once",
                          make_plots=False, backend=backend())
    assert once.complete and len(list((tmp_path / "a").iterdir())) == 2
    always = run_experiment(spec(CrashingRunner(tmp_path / "b", crashes=5), variants=["smmt"]), tmp_path / "always",
                            make_plots=False, backend=backend())
    assert always.n_failed == 1 and len(list((tmp_path / "b").iterdir())) == 2
    assert always.results.iloc[0]["error"] == "RuntimeError: crash on attempt 2"


def test_an_input_error_stops_the_grid(tmp_path):
    runner = FakeRunner(fail_on="smmt", error=DataError("participants.tsv has no diagnosis column", "/d"))
    with pytest.raises(DataError, match="diagnosis"):
        run_experiment(spec(runner, variants=["smmt"]), tmp_path, make_plots=False, backend=backend())


def test_stop_cancels_the_outstanding_jobs_and_keeps_finished_cells(tmp_path):
    pids = tmp_path / "pids"
    stop = threading.Event()

    def on_event(event):
        if isinstance(event, CellFinished):
            stop.set()

    result = run_experiment(spec(BlockingRunner(quick="smmt", pid_dir=pids)), tmp_path / "exp", on_event=on_event,
                            stop=stop, make_plots=False, backend=backend())
    assert result.stopped and list(result.results["cell"]) == ["smmt_frac1_seed0_mask0.3"]
    resumed = run_experiment(spec(FakeRunner()), tmp_path / "exp", make_plots=False, backend=backend())
    assert (resumed.n_reused, resumed.n_trained) == (1, 1)


def test_bad_slurm_settings_and_error_lines():
    with pytest.raises(ConfigError, match="whole number of GPUs"):
        make_backend("slurm", gpus_per_cell=0.5)
    with pytest.raises(ConfigError, match="cluster"):
        make_backend("slurm", cluster="pbs")
    text = ("Job (task=0) failed during processing with trace:\n----------------------\nTraceback (most recent "
            "call last):\n  File \"x.py\", line 1\nValueError: bad\n----------------------\nYou can check ...")
    assert job_error_line(RuntimeError(text)) == "ValueError: bad"
