"""Missing modalities for every method: who loses a modality, the baselines without one, the table, the CLI."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from smmt_core.experiments.missing import (
    COLUMNS,
    MethodProbabilities,
    draw_missing,
    evaluate_missing_shares,
    score_missing_shares,
)
from tests.core.c1_support import make_tiny_bids, one_thread, sixteen_person_bids, tiny_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 16-person BIDS cohort (4 mm grid, so the regional measures find their template regions)."""
    with sixteen_person_bids(tmp_path_factory.mktemp("missing")) as made:
        yield made


@pytest.fixture(scope="module")
def run(tiny):
    from smmt_core.train.trainer import train

    data, base = tiny
    with one_thread():
        return train(tiny_config(data, base / "runs", run_name="tiny", epochs=1, features=["paper"],
                                 resolution_mm=4.0, seed=2))


def _test_lists(data, tmp_path):
    """(config, subjects, split, [the test persons, the same without their MRI, without their clinical data])."""
    config = tiny_config(data, tmp_path, features=["paper"], resolution_mm=4.0, seed=3)
    subjects, split = _split(data, config)
    test = split.select(subjects, "test")
    no_mri = [replace(s, t1_path=None) for s in test]
    no_clinical = [replace(s, numeric={}, categorical={}) for s in test]
    return config, subjects, split, [test, no_mri, no_clinical]


def _split(data, config):
    from smmt_core.data.loaders import load_cohort
    from smmt_core.data.splits import split_for_config

    subjects = load_cohort(str(data)).subjects
    return subjects, split_for_config(subjects, config.data, config.optim.seed)


# -- who loses a modality ------------------------------------------------------------------------
def test_the_persons_drawn_are_nested_across_shares_and_fixed_by_the_seed():
    ids = [f"p{i:02d}" for i in range(40)]
    shares = (0.0, 0.2, 0.4, 0.6, 1.0)
    drawn = draw_missing(ids, shares, seed=3, modality="mri")
    assert [len(drawn[p]) for p in shares] == [0, 8, 16, 24, 40]
    for small, large in zip(shares, shares[1:]):
        assert set(drawn[small]) <= set(drawn[large])
    assert draw_missing(list(reversed(ids)), shares, seed=3, modality="mri") == drawn  # input order is irrelevant
    assert draw_missing(ids, shares, seed=4, modality="mri")[0.2] != drawn[0.2]
    assert draw_missing(ids, shares, seed=3, modality="clinical")[0.2] != drawn[0.2]


def test_every_method_loses_the_modality_for_the_same_persons():
    """Each method is right with every modality and wrong without it, so its score says exactly
    which persons lost it: the drawn ones, for every method alike."""
    rng = np.random.default_rng(0)
    ids = [f"p{i:02d}" for i in range(30) for _ in range(2)]  # two scans per person
    labels = np.repeat(rng.integers(0, 2, 30), 2)
    right = np.eye(2)[labels]
    methods = [MethodProbabilities(name, "baseline", right * (0.6 + 0.1 * k) + (1 - right) * (0.4 - 0.1 * k),
                                   {"mri": 1 - right, "clinical": 1 - right})
               for k, name in enumerate(("a", "b", "c"))]
    frame = score_missing_shares(methods, ids, labels, ["CN", "AD"], (0.0, 0.3, 0.5), seed=7, n_resamples=50)
    assert list(frame.columns) == COLUMNS and len(frame) == 3 * 2 * 3
    person_label = dict(zip(ids, labels))
    for modality in ("mri", "clinical"):
        for share in (0.0, 0.3, 0.5):
            lost = draw_missing(ids, [share], 7, modality)[share]
            assert frame.attrs["missing"][modality][share] == lost
            recall = [1 - sum(person_label[p] == c for p in lost) / sum(v == c for v in person_label.values())
                      for c in (0, 1)]
            rows = frame[(frame["modality"] == modality) & (frame["share"] == share)]
            assert list(rows["method"]) == ["a", "b", "c"]
            assert (rows["n_missing"] == len(lost)).all() and (rows["n_persons"] == 30).all()
            assert rows["accuracy"].tolist() == pytest.approx([1 - len(lost) / 30] * 3)
            assert rows["balanced_accuracy"].tolist() == pytest.approx([np.mean(recall)] * 3)


# -- baselines without a modality ---------------------------------------------------------------
def test_a_baselines_imputer_is_fitted_on_the_training_persons_only(tiny, tmp_path, monkeypatch):
    import smmt_core.baselines as baselines

    data, _ = tiny
    config, subjects, split, lists = _test_lists(data, tmp_path)
    test = lists[0]  # then the same persons without their MRI, without their clinical data
    matrices = []
    real = baselines._features
    monkeypatch.setattr(baselines, "_features", lambda *a: matrices.append(real(*a)) or matrices[-1])
    fit = baselines.fit_baseline("lr-clinical-regional", config, split, subjects, lists)
    x_train, x_test, x_no_mri, x_no_clinical = matrices
    imputer = fit.model[0]
    assert imputer.statistics_ == pytest.approx(np.nanmean(x_train, axis=0))  # the training persons' means
    assert not np.allclose(imputer.statistics_, np.nanmean(np.vstack([x_train, x_test]), axis=0))
    # a whole modality absent: every one of its columns is missing (regional measures last, the
    # clinical columns, one-hot categories included, first) and is imputed with the training mean
    assert np.isnan(x_no_mri[:, -2:]).all() and not np.isnan(x_no_mri[:, :-2]).all()
    assert np.isnan(x_no_clinical[:, :-2]).all() and not np.isnan(x_no_clinical[:, -2:]).any()
    filled = imputer.transform(x_no_mri)[:, :x_train.shape[1]]
    assert filled[:, -2:] == pytest.approx(np.tile(imputer.statistics_[-2:], (len(test), 1)))
    # the other modality still speaks: these are predictions, not the prior
    assert not fit.no_input[1].any() and not fit.no_input[2].any()
    assert np.ptp(fit.probabilities[1][:, 1]) > 0 and np.ptp(fit.probabilities[2][:, 1]) > 0


@pytest.mark.parametrize("name", ["lr-regional", "lr-pixels", "cnn"])
def test_an_image_only_baseline_gives_a_person_without_an_mri_the_training_prior(tiny, tmp_path, name):
    from smmt_core.baselines import fit_baseline

    data, _ = tiny
    config, subjects, split, lists = _test_lists(data, tmp_path)
    test = lists[0]  # then the same persons without their MRI, without their clinical data
    fit = fit_baseline(name, config, split, subjects, lists)
    train_labels = {s.subject_id: s.label for s in split.select(subjects, "train")}
    ad_share = sum(v == "AD" for v in train_labels.values()) / len(train_labels)
    assert fit.prior == pytest.approx([1 - ad_share, ad_share])
    assert fit.no_input[1].all() and fit.probabilities[1] == pytest.approx(np.tile(fit.prior, (len(test), 1)))
    assert not fit.no_input[0].any() and not fit.no_input[2].any()  # the clinical data are not its input
    assert fit.probabilities[2] == pytest.approx(fit.probabilities[0])
    assert np.ptp(fit.probabilities[0][:, 1]) > 0


# -- the model and the baselines on one run -----------------------------------------------------
def test_the_model_and_the_baselines_lose_a_modality_for_the_same_drawn_persons(run):
    from smmt_core.train.robustness import evaluate_robustness

    shares = (0.0, 0.5, 1.0)
    progress = []
    frame = evaluate_missing_shares(run.run_dir, shares=shares, methods=["model", "lr-clinical", "lr-regional"],
                                    n_resamples=100, on_progress=lambda done, total: progress.append((done, total)))
    assert progress == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert list(dict.fromkeys(frame["method"])) == ["smmt", "lr-clinical", "lr-regional"]
    assert len(frame) == 3 * 2 * 3 and frame.attrs["errors"] == {} and frame.attrs["split_seed"] == 2
    split = pd.read_csv(run.run_dir / "split.csv", dtype=str)
    test_ids = sorted(split.loc[split["part"] == "test", "subject_id"].unique())
    assert (frame["n_persons"] == len(test_ids)).all()
    for modality in ("mri", "clinical"):
        drawn = draw_missing(test_ids, shares, 2, modality)  # the run's split seed
        assert frame.attrs["missing"][modality] == drawn
        for share in shares:
            rows = frame[(frame["modality"] == modality) & (frame["share"] == share)]
            assert (rows["n_missing"] == len(drawn[share])).all()

    def row(method, modality, share):
        return frame[(frame["method"] == method) & (frame["modality"] == modality) & (frame["share"] == share)].iloc[0]

    # the model through its own missing-modality path: all absent = the robustness subset without it
    subsets = evaluate_robustness(run.run_dir, mask_ratios=(0.0,)).set_index("modalities")
    assert row("smmt", "mri", 0.0)["balanced_accuracy"] == pytest.approx(run.test_metrics["balanced_accuracy"])
    assert row("smmt", "mri", 1.0)["balanced_accuracy"] == pytest.approx(
        subsets.loc["clinical+categorical", "balanced_accuracy"])
    assert row("smmt", "clinical", 1.0)["balanced_accuracy"] == pytest.approx(subsets.loc["mri", "balanced_accuracy"])
    # an image-only baseline without any MRI: the prior for everybody, i.e. chance
    everyone = row("lr-regional", "mri", 1.0)
    assert everyone["n_prior"] == len(test_ids) and everyone["balanced_accuracy"] == 0.5
    assert everyone["roc_auc"] == 0.5
    assert row("lr-regional", "mri", 0.0)["n_prior"] == 0
    # a baseline that does not read the modality is not changed by its absence
    assert frame[(frame["method"] == "lr-clinical") & (frame["modality"] == "mri")]["balanced_accuracy"].nunique() == 1


def test_smmt_robustness_test_missing_prints_and_writes_the_table(run, tmp_path, capsys):
    from smmt_core.cli import main

    out = tmp_path / "missing.csv"
    code = main(["robustness", str(run.run_dir), "--test-missing", "0,0.5", "--baselines", "lr-clinical",
                 "--out", str(out), "--plot", str(tmp_path / "missing.png"), "--quiet"])
    printed = capsys.readouterr().out
    assert code == 0
    lines = [line for line in printed.splitlines() if line.startswith(("smmt ", "lr-clinical "))]
    assert len(lines) == 2 * 2 * 2 and all("[" in line for line in lines)  # value [95 % CI]
    assert "balanced acc." in printed and "split seed 2" in printed
    table = pd.read_csv(out)
    assert list(table.columns) == COLUMNS and len(table) == 8
    assert set(table["method"]) == {"smmt", "lr-clinical"}
    stored = json.loads(out.with_suffix(".json").read_text())
    assert set(stored["missing_persons"]) == {"mri", "clinical"}
    assert len(stored["missing_persons"]["mri"]["0.5"]) == table["n_missing"].max()
    assert len(stored["rows"]) == 8
    assert (tmp_path / "missing.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("argv, message", [
    (["--test-missing", "0,1.5"], "shares of persons"),
    (["--test-missing", "0,0.5", "--baselines", "lr-magic"], "unknown baseline"),
])
def test_smmt_robustness_test_missing_refuses_bad_input(run, capsys, argv, message):
    from smmt_core.cli import main

    assert main(["robustness", str(run.run_dir), *argv]) == 2
    assert message in capsys.readouterr().err


def test_an_experiment_grid_adds_the_missing_data_table_per_run(tmp_path, monkeypatch):
    from smmt_core.experiments.grid import ExperimentSpec, run_experiment

    monkeypatch.setenv("SMMT_CACHE_DIR", str(tmp_path / "cache"))
    data = make_tiny_bids(tmp_path / "bids", n_per_class=6)
    spec = ExperimentSpec(data=str(data), variants=["smmt"], seeds=[0], epochs=1, baselines=["lr-clinical"],
                          test_missing=[0.0, 0.5],
                          overrides=dict(batch_size=4, d_model=32, n_heads=2, n_fusion_tokens=2, image_size=16,
                                         n_slices=2, resolution_mm=8.0, test_size=0.25, val_size=0.2,
                                         measure_energy=False))
    assert ExperimentSpec.from_dict(spec.to_dict()).test_missing == [0.0, 0.5]
    result = run_experiment(spec, tmp_path / "exp", make_plots=False)
    table = pd.read_csv(result.missing_csv)
    assert len(table) == 1 * 2 * 2 * 2  # one run x (model, lr-clinical) x two modalities x two shares
    assert set(table["cell"]) == {"smmt_frac1_seed0_mask0.3"} and set(table["method"]) == {"smmt", "lr-clinical"}
    summary = (tmp_path / "exp" / "summary.md").read_text()
    assert "## Missing modalities" in summary and "| lr-clinical | clinical |" in summary
    with pytest.raises(Exception, match="shares of persons"):
        ExperimentSpec(data=str(data), variants=["smmt"], test_missing=[2.0]).validate()
