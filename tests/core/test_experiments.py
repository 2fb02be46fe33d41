"""Experiment grids with a fake trainer: cells, resume, stop, failures, summary numbers and plots.

The fake runner writes what the real trainer writes that the grid reads (config.json, split.csv,
run.json), through the same RunRecord, and returns deterministic metrics, so the summary's means
and SDs can be checked exactly.
"""

from __future__ import annotations

import json
import math
import threading

import pandas as pd
import pytest

from smmt_core.errors import ConfigError, DataError
from smmt_core.experiments.grid import (
    CellFinished,
    CellStarted,
    ExperimentCell,
    ExperimentSpec,
    run_experiment,
)
from smmt_core.experiments.summary import energy_table, summarise
from smmt_core.train.run_record import RunRecord
from tests.core.grid_fakes import FakeRunner, fake_accuracy

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run(s: ExperimentSpec, out, **kw):
    """run_experiment without the (slow) plots unless asked for."""
    kw.setdefault("make_plots", False)
    return run_experiment(s, out, **kw)


def spec(runner, **kw) -> ExperimentSpec:
    base = dict(data="demo", variants=["smmt", "3mt"], fractions=[0.5, 1.0], seeds=[0, 1], epochs=2, runner=runner)
    base.update(kw)
    return ExperimentSpec(**base)


def test_cells_cross_the_axes_and_masking_free_variants_have_no_mask_axis():
    s = spec(None, mask_ratios=[0.1, 0.3], fractions=[0.2, 1.0])
    cells = s.cells()
    assert len(cells) == 2 * 2 * 2 + 2 * 2  # smmt: fraction x ratio x seed; 3mt: fraction x seed
    assert {c.mask_ratio for c in cells if c.variant == "3mt"} == {0.0}
    assert len({c.name for c in cells}) == len(cells)
    k = spec(None, n_folds=3).cells()
    assert len(k) == 3 * len(spec(None).cells())
    assert {c.fold for c in k} == {0, 1, 2}
    assert ExperimentCell("smmt", 0.2, 1, 0.3, 2).name == "smmt_frac0.2_seed1_mask0.3_fold2"


def test_every_cell_gets_its_split_seed_and_its_own_settings(tmp_path):
    s = spec(None, split_seeds=[7], mask_ratios=[0.2])
    cell = ExperimentCell("smmt", 0.5, 3, 0.2, split_seed=7)
    config = s.config_for(cell, tmp_path)
    assert (config.data.split_seed, config.optim.seed, config.data.fraction, config.model.mask_ratio) == (7, 3, 0.5, 0.2)
    assert config.optim.epochs == 2 and config.run.run_name == cell.name and config.run.out == str(tmp_path)
    assert cell.name.endswith("_split7")
    assert {c.split_seed for c in s.cells()} == {7}
    assert spec(None).config_for(ExperimentCell("smmt", 0.5, 3, 0.2), tmp_path).data.split_seed == 0


@pytest.mark.parametrize("changes, words", [
    (dict(variants=["smmt", "bogus"]), "bogus"),
    (dict(fractions=[0.0]), "fraction"),
    (dict(fractions=[0.5, 0.5]), "twice"),
    (dict(seeds=[]), "seeds"),
    (dict(mask_ratios=[1.2]), "mask_ratio"),
    (dict(n_folds=1), "2 folds"),
    (dict(overrides={"seed": 3}), "seed"),
    (dict(overrides={"no_such_setting": 1}), "no_such_setting"),
    (dict(preset="huge"), "huge"),
    (dict(data=" "), "dataset"),
])
def test_bad_specs_are_refused_before_anything_runs(tmp_path, changes, words):
    runner = FakeRunner()
    with pytest.raises(ConfigError, match=words):
        run(spec(runner, **changes), tmp_path)
    assert runner.calls == []


def test_a_missing_dataset_is_refused_before_anything_is_written(tmp_path):
    runner = FakeRunner()
    with pytest.raises(DataError, match="dataset not found"):
        run(spec(runner, data=str(tmp_path / "nowhere")), tmp_path / "exp")
    assert runner.calls == [] and not (tmp_path / "exp").exists()


def test_grid_writes_results_summary_and_plots(tmp_path):
    runner = FakeRunner()
    events = []
    result = run(spec(runner), tmp_path, on_event=events.append, make_plots=True)
    assert len(runner.calls) == 8 and result.n_trained == 8 and result.complete
    results = pd.read_csv(tmp_path / "results.csv")
    assert len(results) == 8 and set(results["status"]) == {"finished"}
    assert results["test_set"].nunique() == 1 and (results["n_test"] == 4).all()
    assert results["majority_rate"].iloc[0] == pytest.approx(0.5)
    assert list(results["cpu_kwh"] * 4) == pytest.approx(list(results["energy_kwh"]))
    assert results["energy_estimated"].all()
    assert (results["best_epoch"] == 2).all()
    summary = pd.read_csv(tmp_path / "summary.csv")
    row = summary[(summary.variant == "smmt") & (summary.fraction == 1.0)].iloc[0]
    expected = [fake_accuracy("smmt", 1.0, s, 0.3) for s in (0, 1)]
    assert row["n_runs"] == 2
    assert row["accuracy_mean"] == pytest.approx(sum(expected) / 2)
    assert row["accuracy_sd"] == pytest.approx(pd.Series(expected).std(ddof=1))
    assert list(summary["variant"]) == ["smmt", "smmt", "3mt", "3mt"]
    md = (tmp_path / "summary.md").read_text()
    assert "| smmt | 100% |" in md and "±" in md and "SYNTHETIC" in md and "Energy per variant" in md
    assert "-50.0%" in md  # smmt used half of 3mt's energy per run in the fake
    assert "*estimated*" in md
    for name in ("accuracy_vs_fraction", "energy_per_variant"):
        assert result.plots[name].read_bytes()[:8] == PNG_MAGIC
    assert "mask_ratio_sweep" not in result.plots  # one mask ratio only
    assert json.loads((tmp_path / "experiment.json").read_text())["variants"] == ["smmt", "3mt"]
    starts = [e for e in events if isinstance(e, CellStarted)]
    assert len(starts) == 8 and starts[0].total == 8
    assert "a training event" in events  # training events are passed through
    assert not list(tmp_path.glob("**/*.tmp"))
    for path in (tmp_path / "results.csv", tmp_path / "summary.md", result.plots["accuracy_vs_fraction"]):
        assert path.stat().st_mode & 0o044 == 0o044  # readable by others, unlike a bare mkstemp file


def test_mask_ratio_sweep_is_plotted(tmp_path):
    result = run(spec(FakeRunner(), fractions=[0.4], seeds=[0], mask_ratios=[0.0, 0.3, 0.6]), tmp_path, make_plots=True)
    assert result.plots["mask_ratio_sweep"].read_bytes()[:8] == PNG_MAGIC
    assert "| mask ratio |" in (tmp_path / "summary.md").read_text()


def test_rerun_skips_finished_cells_and_retrains_unfinished_ones(tmp_path):
    run(spec(FakeRunner()), tmp_path)
    again = FakeRunner()
    result = run(spec(again), tmp_path)
    assert again.calls == [] and result.n_reused == 8 and result.n_trained == 0
    assert set(result.results["status"]) == {"reused"}
    assert result.summary["accuracy_mean"].notna().all()
    # one run was interrupted: its run.json says running and a stray file is left behind
    broken = tmp_path / "runs" / "smmt_frac0.5_seed1_mask0.3"
    (broken / "run.json").write_text(json.dumps({"status": "running"}))
    (broken / "stray.txt").write_text("half")
    third = FakeRunner()
    result = run(spec(third), tmp_path)
    assert third.calls == ["smmt_frac0.5_seed1_mask0.3"]
    assert not (broken / "stray.txt").exists()
    assert (result.n_trained, result.n_reused) == (1, 7)


def test_resume_refuses_finished_runs_with_other_settings(tmp_path):
    run(spec(FakeRunner(), variants=["smmt"], fractions=[1.0], seeds=[0]), tmp_path)
    runner = FakeRunner()
    with pytest.raises(ConfigError, match="epochs"):
        run(spec(runner, variants=["smmt"], fractions=[1.0], seeds=[0], epochs=5), tmp_path)
    assert runner.calls == []


def test_stop_flag_ends_the_grid_and_a_rerun_resumes(tmp_path):
    stop = threading.Event()
    runner = FakeRunner(stop_on="smmt_frac1_seed0")
    result = run(spec(runner), tmp_path, stop=stop)
    assert result.stopped and not result.complete
    assert list(result.results["status"]) == ["finished", "finished", "stopped"]
    assert len(runner.calls) == 3
    assert pd.read_csv(tmp_path / "summary.csv")["n_runs"].sum() == 2
    resumed = FakeRunner()
    result = run(spec(resumed), tmp_path)
    assert resumed.calls[0] == "smmt_frac1_seed0_mask0.3" and len(resumed.calls) == 6
    assert result.complete and result.n_reused == 2


def test_a_crash_in_one_run_is_recorded_and_the_grid_goes_on(tmp_path):
    runner = FakeRunner(fail_on="3mt_frac1_seed1", error=RuntimeError("loss became NaN\ntraceback..."))
    events = []
    result = run(spec(runner), tmp_path, on_event=events.append)
    assert len(runner.calls) == 8 and result.n_failed == 1 and not result.complete
    failed = result.results[result.results["status"] == "failed"].iloc[0]
    assert failed["error"] == "RuntimeError: loss became NaN" and math.isnan(failed["accuracy"])
    assert "## Failed runs" in result.summary_md.read_text()
    assert any(isinstance(e, CellFinished) and e.status == "failed" for e in events)
    # the failed cell is retried on the next run; the others are reused
    retry = FakeRunner()
    assert run(spec(retry), tmp_path).complete and retry.calls == ["3mt_frac1_seed1_mask0"]


def test_input_errors_stop_the_grid_at_once(tmp_path):
    runner = FakeRunner(fail_on="smmt", error=DataError("participants.tsv has no diagnosis column", "/d"))
    with pytest.raises(DataError, match="diagnosis"):
        run(spec(runner), tmp_path)
    assert len(runner.calls) == 1
    assert (tmp_path / "results.csv").exists()


def test_summary_warns_when_the_test_set_changed_between_runs(tmp_path):
    result = run(spec(FakeRunner(test_ids_by_seed=True)), tmp_path)
    assert result.results["test_set"].nunique() == 2
    assert "WARNING" in result.summary_md.read_text()


def test_only_a_finished_run_counts_as_finished(tmp_path):
    record = RunRecord(tmp_path)
    assert record.finished_summary() is None
    (tmp_path / "run.json").write_text("{not json")
    assert record.finished_summary() is None
    record.write_summary({"status": "stopped", "stopped_early": True})
    assert record.finished_summary() is None
    (tmp_path / "run.json").write_text(json.dumps({"status": "complete"}))  # a status never written
    assert record.finished_summary() is None
    record.write_summary({"status": "finished"})
    assert record.finished_summary() == {"status": "finished"}


def test_summary_and_energy_table_numbers():
    rows = pd.DataFrame({
        "variant": ["smmt", "smmt", "3mt", "3mt", "3mt"], "fraction": [1.0] * 5, "mask_ratio": [0.3, 0.3, 0, 0, 0],
        "status": ["finished", "reused", "finished", "finished", "failed"],
        "accuracy": [0.8, 0.9, 0.6, 0.7, math.nan], "energy_kwh": [0.001, 0.003, 0.004, 0.004, math.nan],
    })
    for column in ("balanced_accuracy", "auc", "sensitivity", "specificity", "duration_s", "majority_rate", "n_test"):
        rows[column] = 1.0
    summary = summarise(rows, ["3mt", "smmt"])
    assert list(summary["variant"]) == ["3mt", "smmt"] and list(summary["n_runs"]) == [2, 2]
    assert summary.loc[1, "accuracy_mean"] == pytest.approx(0.85)
    assert summary.loc[1, "accuracy_sd"] == pytest.approx(0.0707107, rel=1e-5)
    energy = energy_table(rows, ["smmt", "3mt"])
    assert list(energy["variant"]) == ["smmt", "3mt"]
    assert energy.loc[0, "vs_3mt"] == pytest.approx(-0.5)
    assert energy.loc[1, "energy_kwh_total"] == pytest.approx(0.008)
    assert math.isnan(summarise(rows.iloc[:1]).loc[0, "accuracy_sd"])  # one run: no SD


# ------------------------------------------------------------------------------------------- CLI
def test_cli_experiment_runs_the_grid_and_resumes(tmp_path, monkeypatch, capsys):
    from smmt_core import cli
    from smmt_core.experiments import cell

    runner = FakeRunner()
    monkeypatch.setattr(cell, "_default_runner", runner)
    argv = ["experiment", "--data", "demo", "--variants", "smmt,3mt", "--fractions", "0.5,1", "--seeds", "0,1",
            "--epochs", "2", "--features", "non-circular", "--no-plots", "--out", str(tmp_path / "exp")]
    assert cli.main(argv) == 0
    out, err = capsys.readouterr()
    assert "| smmt | 100% |" in out and "results:" in out
    assert "[8/8]" in err and "test accuracy" in err
    config = json.loads((tmp_path / "exp" / "runs" / "smmt_frac1_seed1_mask0.3" / "config.json").read_text())
    assert config["data"]["features"] == ["AGE", "PTEDUCAT", "PTGENDER", "APOE4"] and config["optim"]["epochs"] == 2
    assert cli.main(argv) == 0 and len(runner.calls) == 8  # second time: everything reused
    assert "reused" in capsys.readouterr().err


@pytest.mark.parametrize("flags, words", [
    (["--fractions", "0.5,x"], "--fractions"),
    (["--variants", "smmt,nope"], "nope"),
    (["--seeds", "1.5"], "--seeds"),
    (["--folds", "1"], "folds"),
])
def test_cli_experiment_bad_flags_exit_2_with_one_line(tmp_path, capsys, flags, words):
    from smmt_core import cli

    code = cli.main(["experiment", "--data", "demo", "--out", str(tmp_path / "e"), *flags])
    err = capsys.readouterr().err
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "e").exists()


def test_cli_backend_flags_are_checked(tmp_path, capsys):
    from smmt_core import cli

    base = ["experiment", "--data", "demo", "--out", str(tmp_path / "e")]
    for flags, words in ([["--address", "auto"], "--backend ray"],
                         [["--backend", "slurm", "--slurm-option", "account"], "KEY=VALUE"],
                         [["--backend", "slurm", "--gpus-per-cell", "0.5"], "whole number"]):
        assert cli.main([*base, *flags]) == 2
        err = capsys.readouterr().err
        assert words in err and len(err.strip().splitlines()) == 1


def test_split_seeds_repeat_the_grid_and_baselines_join_the_summary(tmp_path, monkeypatch):
    import smmt_core.baselines as baselines

    fitted = []

    def fake_baseline(name, config, folder, **kwargs):
        fitted.append((name, config.data.split_seed, config.data.fraction))
        record = baselines.BaselineRecord(folder)
        folder.mkdir(parents=True, exist_ok=True)
        record.write_split(pd.DataFrame([(f"t{config.data.split_seed}-{i}", "", "AD", "test") for i in range(4)],
                                        columns=["subject_id", "session", "label", "part"]))
        metrics = {"accuracy": 0.6, "balanced_accuracy": 0.6, "roc_auc": 0.65, "confusion_matrix": [[2, 2], [0, 4]],
                   "ci95": {"balanced_accuracy": [0.4, 0.8], "roc_auc": [0.45, 0.85]}}
        record.write_summary({"status": "finished", "test_metrics": metrics, "duration_s": 1.0})
        return metrics

    monkeypatch.setattr(baselines, "run_baseline", fake_baseline)
    s = spec(FakeRunner(), fractions=[1.0], seeds=[0], split_seeds=[0, 1], baselines=["lr-clinical"])
    result = run(s, tmp_path)
    assert result.complete
    assert sorted(fitted) == [("lr-clinical", 0, 1.0), ("lr-clinical", 1, 1.0)]  # once per split, no model seed
    results = result.results
    assert list(results["kind"]).count("baseline") == 2 and set(results["split_seed"]) == {0, 1}
    baseline_rows = results[results["kind"] == "baseline"]
    assert list(baseline_rows["balanced_accuracy_lo"]) == [0.4, 0.4]
    summary = result.summary.set_index("variant")
    assert summary.loc["smmt", "n_units"] == 2 and summary.loc["lr-clinical", "n_units"] == 2
    assert "lr-clinical (baseline)" in result.summary_md.read_text()
    # each split's runs share their test persons; the two splits differ
    for _, group in results.groupby("split_seed"):
        assert group["test_set"].nunique() == 1
    assert results["test_set"].nunique() == 2
    again = run(s, tmp_path)  # resumes: nothing fitted or trained again
    assert again.n_reused == len(results) and len(fitted) == 2
