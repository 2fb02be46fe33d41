"""Probability calibration and its measures: temperature scaling, Brier score, ECE, reliability bins.

Temperature scaling (Guo et al. 2017): the logits are divided by one number T, fitted after
training by minimising the log-loss of the validation persons' scans. It changes no ranking (the
AUC and the predicted class stay) and only makes "70 %" mean about 70 %. One parameter fits on
the few dozen validation persons a cohort has; Platt scaling's two would not gain much more.

ECE here is the expected calibration error of the positive class's probability (binary) or of the
top-class confidence (three classes), over RELIABILITY_BINS equal-width bins of [0, 1]: the mean
|observed frequency - mean predicted probability| weighted by the bin's share of persons.
"""

from __future__ import annotations

import math

import numpy as np

RELIABILITY_BINS = 10
MIN_PERSONS_TO_CALIBRATE = 10  # fewer validation persons than this: T stays 1 (a note says so)
BORDERLINE = (0.4, 0.6)  # a calibrated probability in this range is borderline, never a diagnosis
TEMPERATURE_BOUNDS = (0.05, 20.0)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """T > 0 minimising the mean cross-entropy of softmax(logits / T) against labels."""
    from scipy.optimize import minimize_scalar
    from scipy.special import log_softmax

    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)

    def loss(log_t: float) -> float:
        return float(-log_softmax(logits / math.exp(log_t), axis=1)[np.arange(len(labels)), labels].mean())

    low, high = (math.log(b) for b in TEMPERATURE_BOUNDS)
    return float(math.exp(minimize_scalar(loss, bounds=(low, high), method="bounded").x))


def _scored_probability(y: np.ndarray, prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(probability judged, whether it came true): P(positive class) for two classes, else top-class confidence."""
    if prob.shape[1] == 2:
        return prob[:, 1], (y == 1).astype(float)
    return prob.max(1), (prob.argmax(1) == y).astype(float)


def calibration_metrics(y_true, prob) -> dict:
    """{"brier", "ece", "reliability": {"bins": [[lo, hi], …], "count", "mean_predicted", "observed"}}."""
    y = np.asarray(y_true, dtype=np.int64)
    prob = np.asarray(prob, dtype=np.float64)
    if len(y) == 0:
        return {"brier": float("nan"), "ece": float("nan"), "reliability": None}
    onehot = np.eye(prob.shape[1])[y]
    brier = float(((prob - onehot) ** 2).sum(1).mean() / (2 if prob.shape[1] == 2 else 1))
    p, hit = _scored_probability(y, prob)
    edges = np.linspace(0.0, 1.0, RELIABILITY_BINS + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, RELIABILITY_BINS - 1)
    count, mean_predicted, observed = [], [], []
    ece = 0.0
    for b in range(RELIABILITY_BINS):
        inside = which == b
        n = int(inside.sum())
        count.append(n)
        mean_predicted.append(float(p[inside].mean()) if n else None)
        observed.append(float(hit[inside].mean()) if n else None)
        if n:
            ece += n / len(y) * abs(float(hit[inside].mean()) - float(p[inside].mean()))
    return {"brier": brier, "ece": float(ece),
            "reliability": {"bins": [[float(edges[b]), float(edges[b + 1])] for b in range(RELIABILITY_BINS)],
                            "count": count, "mean_predicted": mean_predicted, "observed": observed,
                            "judged": "P(positive class)" if prob.shape[1] == 2 else "top-class confidence"}}


def ece_if_calibrated(positive: np.ndarray, draws: int = 500, seed: int = 0) -> dict:
    """The ECE a *perfectly* calibrated model with these P(positive) would show on this many persons.

    ECE is biased upwards on few persons: even when every probability is exact, the observed share
    of a bin scatters around it. Drawing outcomes from the probabilities themselves gives the
    median and 95th percentile of that noise floor, to read a measured ECE against.
    """
    p = np.asarray(positive, dtype=np.float64)
    if not len(p):
        return {"median": float("nan"), "q95": float("nan")}
    rng = np.random.default_rng(seed)
    probs = np.stack([1 - p, p], 1)
    eces = [calibration_metrics((rng.random(len(p)) < p).astype(int), probs)["ece"] for _ in range(draws)]
    return {"median": float(np.median(eces)), "q95": float(np.quantile(eces, 0.95))}


def is_borderline(prob_row) -> bool:
    """Whether a (calibrated) prediction is too close to call: its top probability below BORDERLINE's upper end.

    For two classes that is P in [0.4, 0.6]; for three classes, a top class under 0.6.
    """
    top = float(np.max(np.asarray(prob_row, dtype=np.float64)))
    return top <= BORDERLINE[1]
