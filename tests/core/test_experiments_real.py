"""The experiment grid with the real trainer on a tiny cohort: one test set for all cells, resume."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from smmt_core.experiments.grid import ExperimentSpec, run_experiment
from tests.core.c1_support import make_tiny_bids

TINY = dict(batch_size=4, d_model=32, n_heads=2, n_fusion_tokens=2, image_size=16, n_slices=2,
            resolution_mm=8.0, test_size=0.25, val_size=0.2, measure_energy=False)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_real_grid_keeps_the_test_set_and_resumes(tmp_path, monkeypatch):
    monkeypatch.setenv("SMMT_CACHE_DIR", str(tmp_path / "cache"))
    data = make_tiny_bids(tmp_path / "bids", n_per_class=6)
    spec = ExperimentSpec(data=str(data), variants=["smmt", "3mt"], fractions=[1.0], seeds=[0, 1], epochs=1,
                          split_seeds=[3], overrides=TINY)
    result = run_experiment(spec, tmp_path / "exp", make_plots=False)
    results = result.results
    assert result.complete and list(results["status"]) == ["finished"] * 4
    assert results["test_set"].nunique() == 1 and (results["n_test"] == 3).all()
    assert results["accuracy"].between(0, 1).all()
    for run_dir in results["run_dir"]:
        run = json.loads((tmp_path / "exp" / "runs" / run_dir.split("/")[-1] / "run.json").read_text())
        assert run["status"] == "finished" and run["split_seed"] == 3
    assert set(results["mask_ratio"][results["variant"] == "3mt"]) == {0.0}
    summary = pd.read_csv(tmp_path / "exp" / "summary.csv")
    assert list(summary["n_runs"]) == [2, 2]

    again = run_experiment(spec, tmp_path / "exp", make_plots=False)
    assert again.n_reused == 4 and again.n_trained == 0
    pd.testing.assert_series_equal(again.results["accuracy"], results["accuracy"])
