"""The trainer end to end on a tiny BIDS cohort: events, files, stop flag, reproducibility, failures."""

import json
import threading

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from smmt_core.data.feature_sets import resolve_features
from smmt_core.errors import ConfigError, DataError, SMMTError, TrainingError
from smmt_core.train import events as ev
from smmt_core.train.trainer import train
from tests.core.c1_support import make_tiny_bids, mri_cache_at, one_thread, tiny_config


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return make_tiny_bids(tmp_path_factory.mktemp("cohort") / "bids", n_per_class=6)


@pytest.fixture(autouse=True)
def _fast_and_isolated(tmp_path_factory):
    cache = tmp_path_factory.getbasetemp() / "c1-train-mri-cache"
    with mri_cache_at(cache), one_thread():
        yield


def _collect():
    events = []
    return events, events.append


def test_a_run_emits_events_in_order_and_writes_its_folder(cohort, tmp_path):
    events, on_event = _collect()
    result = train(tiny_config(cohort, tmp_path, run_name="r1", epochs=2), on_event=on_event)
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "RunStarted" and kinds[-1] == "RunFinished"
    started = events[0]
    assert started.run_dir == result.run_dir and started.total_epochs == 2
    assert started.n_train + started.n_val + started.n_test == 12
    batches = [e for e in events if isinstance(e, ev.BatchProgress)]
    assert len(batches) == 2 * started.batches_per_epoch
    assert batches[-1].eta_s == pytest.approx(0.0, abs=1e-6)
    assert all(np.isfinite(b.loss) for b in batches)
    epochs = [e for e in events if isinstance(e, ev.EpochEnd)]
    # epoch 0: the fitted linear path alone, before any training step (the demo recipe)
    assert [e.epoch for e in epochs] == [0, 1, 2] and epochs[0].is_best
    assert set(epochs[0].val_metrics) >= {"accuracy", "balanced_accuracy", "roc_auc"}
    saved = [(e.kind, e.epoch) for e in events if isinstance(e, ev.CheckpointSaved)]
    assert ("best", 0) in saved and ("last", 1) in saved and ("last", 2) in saved
    assert any(isinstance(e, ev.DataProgress) and e.done == e.total for e in events)
    assert not result.stopped_early and result.best_epoch in (0, 1, 2)

    run = result.run_dir
    for name in ("config.json", "split.csv", "metrics.csv", "best.safetensors", "best.json",
                 "last.safetensors", "last.json", "run.json", "predictions.csv"):
        assert (run / name).is_file(), name
    assert not list(run.glob(".*.tmp"))  # no temporary files left behind

    split = pd.read_csv(run / "split.csv")
    parts_per_person = split.groupby("subject_id")["part"].nunique()
    assert (parts_per_person == 1).all()  # split by person, never across parts

    metrics = pd.read_csv(run / "metrics.csv")
    assert metrics["epoch"].tolist() == [0, 1, 2]
    assert {"train_loss", "val_loss", "val_balanced_accuracy", "train_accuracy", "is_best"} <= set(metrics.columns)

    summary = json.loads((run / "run.json").read_text())
    assert summary["status"] == "finished" and summary["classes"] == ["CN", "AD"]
    assert summary["test_metrics"] == json.loads(json.dumps(summary["test_metrics"]))
    test_persons = set(split.loc[split["part"] == "test", "subject_id"])
    predictions = pd.read_csv(run / "predictions.csv")
    assert set(predictions["subject_id"]) == test_persons  # one row per test person
    assert np.allclose(predictions[["p_CN", "p_AD"]].sum(axis=1), 1.0)
    assert result.test_metrics["n_subjects"] == len(test_persons)
    best = json.loads((run / "best.json").read_text())
    assert best["test_metrics"]["n_subjects"] == len(test_persons)
    assert best["encoder"] and best["schema"]["classes"] == ["CN", "AD"] and best["seed"] == 0


def test_the_same_seed_gives_identical_results_on_cpu(cohort, tmp_path):
    a = train(tiny_config(cohort, tmp_path, run_name="a", epochs=2, seed=3))
    b = train(tiny_config(cohort, tmp_path, run_name="b", epochs=2, seed=3))
    c = train(tiny_config(cohort, tmp_path, run_name="c", epochs=2, seed=4))
    # Discrete results (what a user compares) are identical; continuous ones equal to float
    # precision (BLAS kernels may round differently with memory alignment, ~1e-7 at most).
    for key in ("accuracy", "balanced_accuracy", "confusion_matrix", "n_subjects"):
        assert a.test_metrics[key] == b.test_metrics[key], key
    assert a.best_epoch == b.best_epoch
    cols = ["train_loss", "val_loss", "train_accuracy", "val_accuracy", "val_roc_auc", "is_best"]
    ma, mb, mc = (pd.read_csv(r.run_dir / "metrics.csv")[cols] for r in (a, b, c))
    pd.testing.assert_frame_equal(ma, mb, rtol=1e-6)
    wa, wb = (load_file(r.run_dir / "last.safetensors") for r in (a, b))
    differing = {k: float((wa[k] - wb[k]).abs().max()) for k in wa if not torch.allclose(wa[k], wb[k], atol=1e-6)}
    assert not differing, f"weights differ between identical runs: {differing}"
    assert not np.allclose(ma["train_loss"], mc["train_loss"])  # a different seed does change things


def test_the_stop_flag_ends_the_run_cleanly_and_keeps_checkpoints(cohort, tmp_path):
    stop = threading.Event()
    events = []

    def on_event(event):
        events.append(event)
        if isinstance(event, ev.BatchProgress) and event.epoch == 2:
            stop.set()

    result = train(tiny_config(cohort, tmp_path, run_name="s", epochs=4), on_event=on_event, stop=stop)
    assert result.stopped_early
    # it stopped within epoch 2 (between batches), so epoch 1 is the last complete one
    assert max(e.epoch for e in events if isinstance(e, ev.BatchProgress)) == 2
    assert [e.epoch for e in events if isinstance(e, ev.EpochEnd)] == [0, 1]  # 0: the linear path alone
    finished = events[-1]
    assert isinstance(finished, ev.RunFinished) and finished.stopped_early
    run = result.run_dir
    assert json.loads((run / "last.json").read_text())["epoch"] == 1
    assert json.loads((run / "best.json").read_text())["epoch"] in (0, 1)
    assert json.loads((run / "run.json").read_text())["status"] == "stopped"
    assert result.test_metrics["n_subjects"] > 0  # the best checkpoint was still evaluated


def test_stopping_before_the_first_epoch_leaves_no_checkpoint_and_no_test_result(cohort, tmp_path):
    stop = threading.Event()
    stop.set()
    events, on_event = _collect()
    result = train(tiny_config(cohort, tmp_path, run_name="early"), on_event=on_event, stop=stop)
    assert result.stopped_early and result.test_metrics == {} and result.best_epoch is None
    assert not (result.run_dir / "best.safetensors").exists()
    assert isinstance(events[-1], ev.RunFinished) and events[-1].stopped_early


def test_missing_data_emits_run_failed_and_raises_a_data_error(tmp_path):
    events, on_event = _collect()
    with pytest.raises(DataError, match="not found"):
        train(tiny_config(tmp_path / "nowhere", tmp_path / "runs"), on_event=on_event)
    assert isinstance(events[-1], ev.RunFailed) and "nowhere" in events[-1].message
    assert not (tmp_path / "runs").exists()  # nothing was created for a run that never started


def test_a_corrupt_image_fails_the_run_naming_the_file_and_records_it(cohort, tmp_path):
    import gzip
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(cohort, broken)
    images = sorted(broken.glob("sub-*/anat/*_T1w.nii.gz"))
    unreadable, truncated = images[0], images[1]
    unreadable.write_bytes(b"\x1f\x8b this is not a NIfTI file")  # the loader drops its MRI, noting why
    raw = gzip.decompress(truncated.read_bytes())
    truncated.write_bytes(gzip.compress(raw[: len(raw) // 2]))  # header fine, data cut: unusable
    events, on_event = _collect()
    with pytest.raises(DataError) as info:
        train(tiny_config(broken, tmp_path / "runs", run_name="bad"), on_event=on_event)
    assert truncated.name in str(info.value)
    failed = events[-1]
    assert isinstance(failed, ev.RunFailed) and failed.run_dir is not None
    assert truncated.name in failed.message and "\n" not in failed.message
    summary = json.loads((failed.run_dir / "run.json").read_text())
    assert summary["status"] == "failed" and truncated.name in summary["error"]
    assert any(unreadable.name in problem for problem in summary["data"]["problems"])


def test_three_classes_and_kfold(tmp_path):
    cohort3 = make_tiny_bids(tmp_path / "three", n_per_class=5, with_mci=True, seed=1)
    result = train(tiny_config(cohort3, tmp_path / "runs", label_set="cn-mci-ad", epochs=1,
                               n_folds=3, fold=1, val_size=0.15))
    summary = json.loads((result.run_dir / "run.json").read_text())
    assert summary["classes"] == ["CN", "MCI", "AD"]
    assert summary["split"]["fold"] == 1 and summary["split"]["n_folds"] == 3
    assert np.array(result.test_metrics["confusion_matrix"]).shape == (3, 3)


def test_ad_cn_runs_leave_mci_subjects_out(tmp_path):
    cohort3 = make_tiny_bids(tmp_path / "three", n_per_class=4, with_mci=True, seed=2)
    result = train(tiny_config(cohort3, tmp_path / "runs", epochs=1, val_size=0.0))
    summary = json.loads((result.run_dir / "run.json").read_text())
    assert summary["data"]["n_excluded_other_labels"] == 4
    split = pd.read_csv(result.run_dir / "split.csv")
    assert set(split.loc[split["label"] == "MCI", "part"]) == {"excluded"}


def test_energy_is_measured_during_a_run(cohort, tmp_path):
    events, on_event = _collect()
    result = train(tiny_config(cohort, tmp_path, run_name="e", epochs=2, measure_energy=True,
                               energy_country="DEU"), on_event=on_event)
    updates = [e for e in events if isinstance(e, ev.EnergyUpdate)]
    assert len(updates) >= 2
    assert updates[-1].energy_kwh >= updates[0].energy_kwh > 0
    assert result.energy["available"] and result.energy_kwh >= updates[-1].energy_kwh
    assert result.energy["country"] == "DEU" and result.energy["co2_kg"] > 0
    assert (result.run_dir / "emissions.csv").is_file()
    best = json.loads((result.run_dir / "best.json").read_text())
    assert best["energy"]["energy_kwh"] == pytest.approx(result.energy_kwh)
    metrics = pd.read_csv(result.run_dir / "metrics.csv")
    assert metrics["energy_kwh"].is_monotonic_increasing


def test_bad_settings_fail_before_anything_is_written(cohort, tmp_path):
    with pytest.raises(ConfigError):
        train(tiny_config(cohort, tmp_path, variant="nope"))
    with pytest.raises(ConfigError, match="country"):
        train(tiny_config(cohort, tmp_path, measure_energy=True, energy_country="ZZZ"))
    events, on_event = _collect()
    with pytest.raises(ConfigError, match="unknown clinical feature.*NOT_A_COLUMN"):
        train(tiny_config(cohort, tmp_path, features=["AGE", "NOT_A_COLUMN"]), on_event=on_event)
    assert isinstance(events[-1], ev.RunFailed) and events[-1].run_dir is None
    assert not list(tmp_path.iterdir())  # no "failed" run folder left behind


def test_an_output_folder_that_cannot_be_made_is_a_config_error_naming_it(cohort, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match="cannot create a run folder") as info:
        train(tiny_config(cohort, blocker / "runs"))
    assert str(blocker) in str(info.value)


def test_a_diverging_loss_is_a_training_error_not_bad_input(cohort, tmp_path):
    events, on_event = _collect()
    with pytest.raises(TrainingError, match="diverged") as info:
        train(tiny_config(cohort, tmp_path, run_name="boom", lr=1e30), on_event=on_event)
    assert isinstance(info.value, SMMTError)
    assert isinstance(events[-1], ev.RunFailed) and "diverged" in events[-1].message
    assert json.loads((tmp_path / "boom" / "run.json").read_text())["status"] == "failed"


def test_feature_presets_resolve_to_column_names():
    assert resolve_features(None) == ["AGE", "PTEDUCAT", "PTGENDER", "APOE4"]  # non-circular by default
    assert resolve_features("paper") == ["MMSE", "CDGLOBAL", "FAQ", "AGE", "PTGENDER", "APOE4"]
    assert resolve_features("non-circular") == ["AGE", "PTEDUCAT", "PTGENDER", "APOE4"]
    assert resolve_features("AGE, MMSE,AGE") == ["AGE", "MMSE"]
    assert resolve_features(["none"]) == []


def test_data_demo_uses_the_demo_cohort_and_marks_the_run_synthetic(cohort, tmp_path, monkeypatch):
    import smmt_core.data.demo as demo

    calls = []

    def fake_ensure_demo_cohort(progress=None):
        calls.append(progress)
        if progress is not None:
            progress(1, 1)
        return cohort

    monkeypatch.setattr(demo, "ensure_demo_cohort", fake_ensure_demo_cohort)
    events, on_event = _collect()
    stop = threading.Event()
    stop.set()  # a stop during the demo build must not break the run: it ends cleanly
    result = train(tiny_config("demo", tmp_path, run_name="demo"), on_event=on_event, stop=stop)
    assert calls and result.stopped_early
    assert any(isinstance(e, ev.DataProgress) and e.stage == "building demo cohort" for e in events)
    assert json.loads((result.run_dir / "run.json").read_text())["synthetic"] is True
