"""Calibration: temperature fitting, Brier score, ECE, reliability bins, borderline predictions."""

import numpy as np
import pytest

from smmt_core.train.calibration import RELIABILITY_BINS, calibration_metrics, fit_temperature, is_borderline
from smmt_core.train.metrics import compute_metrics


def test_the_fitted_temperature_undoes_a_known_overconfidence():
    rng = np.random.default_rng(0)
    n = 4000
    true_logit = rng.normal(0.0, 2.0, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-true_logit))).astype(int)
    logits = np.stack([np.zeros(n), 3.0 * true_logit], 1)  # three times too confident
    assert fit_temperature(logits, y) == pytest.approx(3.0, rel=0.1)


def test_ece_is_small_for_calibrated_and_large_for_overconfident_probabilities():
    rng = np.random.default_rng(1)
    p = rng.random(5000)
    y = (rng.random(5000) < p).astype(int)
    calibrated = calibration_metrics(y, np.stack([1 - p, p], 1))
    sharp = np.where(p > 0.5, 0.99, 0.01)
    overconfident = calibration_metrics(y, np.stack([1 - sharp, sharp], 1))
    assert calibrated["ece"] < 0.03 < 0.2 < overconfident["ece"]
    assert calibrated["brier"] < overconfident["brier"]
    bins = calibrated["reliability"]
    assert len(bins["bins"]) == len(bins["count"]) == RELIABILITY_BINS and sum(bins["count"]) == 5000


def test_reliability_bins_hold_the_exact_counts_and_frequencies():
    y = np.array([0, 1, 1, 1])
    p = np.array([0.05, 0.05, 0.95, 0.95])
    figures = calibration_metrics(y, np.stack([1 - p, p], 1))
    table = figures["reliability"]
    assert table["count"][0] == 2 and table["count"][-1] == 2 and sum(table["count"][1:-1]) == 0
    assert table["observed"][0] == 0.5 and table["observed"][-1] == 1.0
    # |0.5 - 0.05| and |1.0 - 0.95|, each half of the persons
    assert figures["ece"] == pytest.approx(0.5 * 0.45 + 0.5 * 0.05)
    assert figures["brier"] == pytest.approx(np.mean((p - y) ** 2))


def test_every_metrics_result_carries_its_calibration():
    metrics = compute_metrics([0, 1, 1, 0], np.array([[0.8, 0.2], [0.3, 0.7], [0.1, 0.9], [0.6, 0.4]]), ["CN", "AD"])
    assert {"brier", "ece", "reliability"} <= set(metrics)


@pytest.mark.parametrize(("probabilities", "borderline"), [
    ([0.41, 0.59], True), ([0.6, 0.4], True), ([0.5, 0.5], True), ([0.39, 0.61], False), ([0.9, 0.1], False),
    ([0.5, 0.3, 0.2], True), ([0.7, 0.2, 0.1], False),
])
def test_a_probability_between_forty_and_sixty_percent_is_borderline(probabilities, borderline):
    assert is_borderline(probabilities) is borderline


def test_the_ece_noise_floor_of_exact_probabilities_is_above_zero_and_shrinks_with_more_persons():
    from smmt_core.train.calibration import ece_if_calibrated

    rng = np.random.default_rng(2)
    few, many = ece_if_calibrated(rng.random(100)), ece_if_calibrated(rng.random(5000))
    assert 0 < many["median"] < few["median"] <= few["q95"]


def test_an_experiment_pools_the_test_persons_of_every_split_for_its_calibration(tmp_path):
    import pandas as pd

    from smmt_core.experiments.summary import calibration_markdown, pooled_calibration

    rows = []
    for split in (0, 1):
        folder = tmp_path / f"run{split}"
        folder.mkdir()
        p = np.array([0.1, 0.2, 0.8, 0.9, 0.7])
        pd.DataFrame({"subject_id": [f"s{split}-{i}" for i in range(5)], "label": ["CN", "CN", "AD", "AD", "CN"],
                      "prediction": ["CN", "CN", "AD", "AD", "AD"], "p_CN": 1 - p, "p_AD": p}).to_csv(
            folder / "predictions.csv", index=False)
        rows.append({"cell": f"smmt{split}", "kind": "model", "variant": "smmt", "fraction": 1.0, "seed": 0,
                     "mask_ratio": 0.3, "fold": "", "split_seed": split, "status": "finished", "run_dir": str(folder)})
    pooled = pooled_calibration(pd.DataFrame(rows))
    assert pooled["smmt"]["n_persons"] == 10
    assert sum(pooled["smmt"]["reliability"]["count"]) == 10
    labels = np.array([0, 0, 1, 1, 0] * 2)
    probs = np.tile([0.1, 0.2, 0.8, 0.9, 0.7], 2)
    assert pooled["smmt"]["ece"] == pytest.approx(calibration_metrics(labels, np.stack([1 - probs, probs], 1))["ece"])
    text = "\n".join(calibration_markdown(pooled))
    assert "| smmt | 10 |" in text and "0.0–0.1" in text
