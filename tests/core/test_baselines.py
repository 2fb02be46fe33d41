"""Baselines on the same persons as the model, bootstrap CIs, paired differences, honest predictions."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from smmt_core.baselines import BASELINES, BaselineRecord, run_baseline
from smmt_core.data.loaders import load_cohort
from smmt_core.data.splits import split_for_config
from smmt_core.train.metrics import bootstrap_ci
from smmt_core.train.run_record import RunRecord
from tests.core.c1_support import one_thread, shared_tiny_run, sixteen_person_bids, tiny_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    with sixteen_person_bids(tmp_path_factory.mktemp("baselines")) as made:
        yield made


@pytest.mark.parametrize("name", list(BASELINES))
def test_each_baseline_is_fitted_on_the_training_persons_and_scored_on_the_test_persons(tiny, tmp_path, name,
                                                                                       monkeypatch):
    import smmt_core.baselines as baselines

    data, _ = tiny
    config = tiny_config(data, tmp_path, features=["paper"], resolution_mm=4.0, image_size=16, seed=3)
    split = split_for_config(load_cohort(str(data)).subjects, config.data, config.optim.seed)
    seen = []
    real = baselines._features
    monkeypatch.setattr(baselines, "_features",
                        lambda n, enc, subjects, *a: seen.append({s.subject_id for s in subjects}) or real(n, enc, subjects, *a))
    with one_thread():
        metrics = run_baseline(name, config, tmp_path / name)
    assert seen[0] == set(split.train)  # fitted on the training persons only
    assert seen[1] == set(split.test)  # scored on the test persons
    assert seen[2:] == ([set(split.val)] if name == "cnn" else [])  # the CNN stops early on validation
    record = BaselineRecord(tmp_path / name)
    assert record.finished()
    assert set(record.predictions()["subject_id"]) == set(split.test)
    assert record.persons("test") == sorted(split.test) and record.persons("train") == sorted(split.train)
    assert 0.0 <= metrics["balanced_accuracy"] <= 1.0 and metrics["n_subjects"] == len(split.test)
    assert set(metrics["ci95"]) >= {"balanced_accuracy", "roc_auc"}


def test_smmt_train_baselines_are_scored_on_the_runs_own_split_and_stored(tiny, tmp_path, capsys):
    from smmt_core.cli import main

    data, _ = tiny
    code = main(["train", "--data", str(data), "--out", str(tmp_path), "--name", "r", "--epochs", "1",
                 "--resolution", "4", "--image-size", "16", "--slices", "2", "--d-model", "32", "--n-heads", "2",
                 "--test-size", "0.25", "--val-size", "0.2", "--no-energy", "--features", "paper", "-q",
                 "--baselines", "lr-clinical,lr-regional"])
    out = capsys.readouterr().out
    assert code == 0
    assert "baseline lr-clinical" in out and "baseline lr-regional" in out and "[" in out  # CIs printed
    run = RunRecord(tmp_path / "r")
    stored = run.summary()["baselines"]
    assert set(stored) == {"lr-clinical", "lr-regional"}
    for name in stored:
        folder = BaselineRecord(tmp_path / "r" / "baselines" / name)
        assert folder.persons("test") == run.persons("test") and folder.persons("train") == run.persons("train")
    assert run.summary()["test_metrics"]["ci95"]["balanced_accuracy"] is not None


def test_an_mri_only_run_says_why_the_clinical_baseline_is_not_scored(tiny, tmp_path):
    data, _ = tiny
    config = tiny_config(data, tmp_path, features=["none"])
    from smmt_core.baselines import BaselineUnavailable

    with pytest.raises(BaselineUnavailable, match="no clinical features"):
        run_baseline("lr-clinical", config, tmp_path / "b")


# -- bootstrap CI -------------------------------------------------------------------------------
def test_bootstrap_ci_equals_a_direct_numpy_computation():
    rng = np.random.default_rng(1)
    y = np.array([0] * 14 + [1] * 11)
    p1 = np.clip(0.35 * y + rng.random(len(y)) * 0.65, 0, 1)
    prob = np.stack([1 - p1, p1], axis=1)
    got = bootstrap_ci(y, prob, ["CN", "AD"], n_resamples=300, seed=4)

    draws = np.random.default_rng(4)
    acc, bacc, auc = [], [], []
    for _ in range(300):
        idx = draws.integers(0, len(y), len(y))
        yy, pp = y[idx], p1[idx]
        pred = (pp > 1 - pp).astype(int)  # argmax of [1 - p, p]; ties go to class 0
        acc.append((pred == yy).mean())
        recalls = [(pred[yy == c] == c).mean() for c in (0, 1) if (yy == c).any()]
        bacc.append(np.mean(recalls))
        pos, neg = pp[yy == 1], pp[yy == 0]
        if len(pos) and len(neg):  # AUC = P(score of a positive > score of a negative), ties half
            auc.append(((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()))
    for name, values in (("accuracy", acc), ("balanced_accuracy", bacc), ("roc_auc", auc)):
        expected = np.quantile(values, [0.025, 0.975])
        assert got[name] == pytest.approx(list(expected), abs=1e-12), name
    assert got["accuracy"][0] < ((prob.argmax(1) == y).mean()) < got["accuracy"][1]


def test_bootstrap_ci_of_too_few_persons_is_none():
    assert bootstrap_ci([1], np.array([[0.2, 0.8]]), ["CN", "AD"])["accuracy"] is None


# -- paired differences -------------------------------------------------------------------------
def _write_method(root, name, split_seed, ids, labels, p_ad):
    record = RunRecord(root / f"{name}_{split_seed}")
    record.run_dir.mkdir(parents=True)
    record.write_summary({"status": "finished"})
    table = pd.DataFrame({"subject_id": ids, "label": labels, "p_CN": 1 - p_ad, "p_AD": p_ad})
    record.write_predictions(table)
    return {"variant": name, "kind": "model", "fraction": 1.0, "mask_ratio": 0.0, "split_seed": split_seed,
            "fold": "", "status": "finished", "run_dir": str(record.run_dir)}


def test_paired_differences_compare_methods_on_the_same_persons(tmp_path):
    from smmt_core.experiments.summary import paired_differences

    rng = np.random.default_rng(0)
    rows = []
    direct = []
    for split_seed in (0, 1):
        ids = [f"s{split_seed}-{i:02d}" for i in range(30)]
        labels = np.array(["CN"] * 15 + ["AD"] * 15)
        y = (labels == "AD").astype(float)
        good = np.clip(0.3 + 0.4 * y + rng.normal(0, 0.1, 30), 0.01, 0.99)
        coin = rng.random(30)
        rows.append(_write_method(tmp_path, "good", split_seed, ids, labels, good))
        rows.append(_write_method(tmp_path, "coin", split_seed, ids, labels, coin))
        bacc = lambda p: 0.5 * ((p[y == 1] >= 0.5).mean() + (p[y == 0] < 0.5).mean())  # noqa: E731
        direct.append(bacc(good) - bacc(coin))
    table = paired_differences(pd.DataFrame(rows), ["good", "coin"], n_resamples=200)
    row = table[table["metric"] == "balanced_accuracy"].iloc[0]
    assert (row["a"], row["b"], row["n_units"], row["n_persons"]) == ("good", "coin", 2, 60)
    assert row["difference"] == pytest.approx(np.mean(direct))
    assert row["ci_lo"] < row["difference"] < row["ci_hi"] and row["ci_lo"] > 0  # clearly better than a coin


def test_paired_differences_never_pair_different_persons(tmp_path):
    from smmt_core.experiments.summary import paired_differences

    labels = np.array(["CN", "AD"] * 5)
    rows = [_write_method(tmp_path, "a", 0, [f"x{i}" for i in range(10)], labels, np.full(10, 0.6)),
            _write_method(tmp_path, "b", 0, [f"y{i}" for i in range(10)], labels, np.full(10, 0.4))]
    assert paired_differences(pd.DataFrame(rows), n_resamples=20).empty


# -- the app never presents a guess as a finding -------------------------------------------------
def test_a_prediction_from_modalities_at_chance_carries_a_note(tmp_path_factory):
    from smmt_core.predict import Predictor, reliability

    assert reliability({"mri": {"balanced_accuracy": 0.5, "ci95": {"balanced_accuracy": [0.3, 0.7]}}},
                       ["mri"])["at_chance"] is True
    sure = reliability({"mri+clinical": {"balanced_accuracy": 0.9, "ci95": {"balanced_accuracy": [0.8, 0.97]}}},
                       ["mri", "clinical"])
    assert sure["at_chance"] is False and sure["note"] is None
    cohort_root, run_dir, _ = shared_tiny_run(tmp_path_factory)
    subsets = json.loads((run_dir / "best.json").read_text())["subset_metrics"]
    assert "mri" in subsets and "mri+clinical+categorical" in subsets
    with one_thread():
        predictor = Predictor.load(run_dir, device="cpu")
        subject = load_cohort(str(cohort_root)).subjects[0]
        result = predictor.predict(subject, modalities=["mri"])
    ci = subsets["mri"]["ci95"]["balanced_accuracy"]
    expected = ci is None or ci[0] <= 0.5 <= ci[1]
    assert result.reliability["at_chance"] is expected
    assert (result.guess_note is not None) is expected
    assert result.to_dict()["reliability"]["modalities"] == "mri"


@pytest.mark.parametrize("kind", ["noise", "sphere", "crop"])
def test_an_image_that_is_not_a_registered_brain_gets_no_class(tmp_path_factory, tmp_path, kind):
    import nibabel as nib
    from nilearn import datasets

    from smmt_core.errors import DataError
    from smmt_core.predict import Predictor

    _, run_dir, _ = shared_tiny_run(tmp_path_factory)
    tpl = datasets.load_mni152_template(resolution=2)
    shape = tpl.shape
    if kind == "noise":
        data = np.random.default_rng(0).random(shape)
    elif kind == "sphere":
        grids = np.meshgrid(*[np.arange(n) - n / 2 for n in shape], indexing="ij")
        data = (sum(g**2 for g in grids) < 35**2) * 100.0
    else:
        data = tpl.get_fdata().copy()
        data[:, :, shape[2] // 2:] = 0
    path = tmp_path / f"{kind}.nii.gz"
    nib.save(nib.Nifti1Image(data.astype(np.float32), tpl.affine), str(path))
    with one_thread():
        predictor = Predictor.load(run_dir, device="cpu")
        with pytest.raises(DataError, match="no prediction") as info:
            predictor.predict(path)
    assert str(path) in str(info.value) and len(str(info.value).splitlines()) == 1


def test_the_template_itself_passes_the_brain_check():
    from nilearn import datasets

    from smmt_core.data.preprocess import brain_check

    data = datasets.load_mni152_template(resolution=2).get_fdata().astype(np.float32)
    assert brain_check(data / data.max(), 2.0) is None
