"""Seed ensembles: members on the same persons, the mean probability scored and predicted as one."""

import json

import numpy as np
import pandas as pd
import pytest

from smmt_core.errors import ConfigError
from smmt_core.train import events as ev
from smmt_core.train.trainer import train
from tests.core.c1_support import make_tiny_bids, mri_cache_at, one_thread, tiny_config


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory):
    cohort = make_tiny_bids(tmp_path_factory.mktemp("cohort") / "bids", n_per_class=6)
    events = []
    with mri_cache_at(tmp_path_factory.getbasetemp() / "ensemble-cache"), one_thread():
        result = train(tiny_config(cohort, tmp_path_factory.mktemp("runs"), run_name="ens", epochs=1, seed=3,
                                   ensemble=2), on_event=events.append)
    return cohort, result, events


def test_members_train_on_the_same_persons_and_the_ensemble_scores_their_mean(ensemble):
    _, result, events = ensemble
    folder = result.run_dir
    summary = json.loads((folder / "run.json").read_text())
    assert summary["kind"] == "ensemble" and summary["status"] == "finished"
    assert summary["members"] == ["members/seed-3", "members/seed-4"]
    splits = [pd.read_csv(folder / m / "split.csv") for m in summary["members"]]
    pd.testing.assert_frame_equal(splits[0], splits[1])  # one split for every member
    pd.testing.assert_frame_equal(pd.read_csv(folder / "split.csv"), splits[0])
    member_tables = [pd.read_csv(folder / m / "predictions.csv").sort_values("subject_id").reset_index(drop=True)
                     for m in summary["members"]]
    table = pd.read_csv(folder / "predictions.csv")
    expected = (member_tables[0]["p_AD"] + member_tables[1]["p_AD"]) / 2
    assert np.allclose(table.sort_values("subject_id")["p_AD"].to_numpy(), expected.to_numpy())
    assert (table["spread"] >= 0).all()
    assert {"balanced_accuracy", "roc_auc", "ci95", "ece", "brier"} <= set(summary["test_metrics"])
    finished = [e for e in events if isinstance(e, ev.RunFinished)]
    assert len(finished) == 1 and finished[0].run_dir == folder  # one end, for the ensemble
    assert sum(isinstance(e, ev.RunStarted) for e in events) == 2


def test_an_ensemble_predicts_the_mean_of_its_members_with_their_spread(ensemble):
    from smmt_core.data.loaders import load_cohort
    from smmt_core.predict import EnsemblePredictor, Predictor

    cohort, result, _ = ensemble
    subject = load_cohort(str(cohort)).subjects[0]
    predictor = Predictor.load(result.run_dir, device="cpu")
    assert isinstance(predictor, EnsemblePredictor) and predictor.run_name == "ens"
    prediction = predictor.predict(subject)
    members = [Predictor.load(result.run_dir / "members" / name, device="cpu").predict(subject)
               for name in ("seed-3", "seed-4")]
    for c in prediction.probabilities:
        assert prediction.probabilities[c] == pytest.approx(np.mean([m.probabilities[c] for m in members]))
        assert prediction.ensemble["spread"][c] == pytest.approx(np.std([m.probabilities[c] for m in members]))
    assert prediction.to_dict()["ensemble"]["members"] == 2 and prediction.model_name == "ens"


def test_an_ensemble_cannot_be_resumed_or_spread_over_processes(ensemble, tmp_path):
    cohort, result, _ = ensemble
    with pytest.raises(ConfigError, match="ensemble"):
        train(tiny_config(cohort, tmp_path, ensemble=2), resume=result.run_dir)
