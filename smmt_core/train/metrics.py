"""Classification metrics, always per subject, computed with scikit-learn.

Why "per subject": a person may have several scans (sessions) and each scan is one sample, so a
scan-level figure would count some people more than others. `soft_vote` therefore averages the
class probabilities of all scans of one person (with one diagnosis) before any metric is computed,
and every figure the trainer reports (epoch curves, `metrics.csv`, test metrics in `run.json`)
comes from these per-person probabilities. Within one scan, the MRI slices are tokens of a single
sample, so the model already returns one probability vector per scan.

Binary label sets (["CN", "AD"]): the positive class is the *last* class (AD); sensitivity is its
recall, specificity the recall of the first class, precision / F1 / ROC AUC are for the positive
class. Three classes (["CN", "MCI", "AD"]): sensitivity, specificity, precision and F1 are
macro-averages over the classes (one-vs-rest), ROC AUC is the one-vs-rest macro AUC and the ROC
curve is the micro-average. Figures that are undefined for the data (e.g. AUC with one class only)
are NaN, never a made-up number. Every result also carries its Brier score, ECE and reliability
bins (`smmt_core.train.calibration`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from sklearn.metrics import confusion_matrix, roc_auc_score, roc_curve
from sklearn.preprocessing import label_binarize

from smmt_core.jsonsafe import json_safe  # noqa: F401 (re-exported; lives apart so that JSON writers need no sklearn)
from smmt_core.train.calibration import calibration_metrics

# Metrics that are single numbers (what the epoch curves and metrics.csv hold).
SCALAR_METRICS = ("accuracy", "balanced_accuracy", "sensitivity", "specificity", "precision", "f1", "roc_auc")


def _as_indices(y_true, classes: Sequence[str]) -> np.ndarray:
    """Class indices from indices or class names; ValueError for anything else."""
    y = np.asarray(y_true)
    if y.size == 0:
        return y.astype(np.int64)
    if y.dtype.kind in "iu":
        if y.min() < 0 or y.max() >= len(classes):
            raise ValueError(f"label indices must be in [0, {len(classes)}), got {y.min()}..{y.max()}")
        return y.astype(np.int64)
    lookup = {c: i for i, c in enumerate(classes)}
    try:
        return np.array([lookup[str(v)] for v in y], dtype=np.int64)
    except KeyError as error:
        raise ValueError(f"label {error.args[0]!r} is not one of the classes {list(classes)}") from None


def soft_vote(
    person_ids: Sequence[str], y_true: Sequence[int], prob: np.ndarray
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Average the probabilities of all scans of one person with one diagnosis.

    Returns (person ids, labels, probabilities) with one row per (person, label), in the order the
    persons first appear. A person whose diagnosis changed between visits (a converter) appears
    once per diagnosis, so no scan is ever scored against a label it does not have.
    """
    prob = np.asarray(prob, dtype=np.float64)
    y = np.asarray(y_true, dtype=np.int64)
    if len(person_ids) != len(y) or len(y) != len(prob):
        raise ValueError(f"{len(person_ids)} ids, {len(y)} labels and {len(prob)} probability rows differ")
    groups: dict[tuple[str, int], list[int]] = {}
    for i, (pid, label) in enumerate(zip(person_ids, y)):
        groups.setdefault((str(pid), int(label)), []).append(i)
    ids = [pid for pid, _ in groups]
    labels = np.array([label for _, label in groups], dtype=np.int64)
    probs = np.stack([prob[idx].mean(axis=0) for idx in groups.values()]) if groups else prob[:0]
    return ids, labels, probs


def _nan() -> float:
    return float("nan")


def compute_metrics(y_true, prob, classes: Sequence[str]) -> dict:
    """Accuracy, balanced accuracy, sensitivity, specificity, precision, F1, ROC AUC, confusion
    matrix (rows = true class, columns = predicted, in `classes` order) and ROC curve.

    y_true: class indices or class names, one per subject (already soft-voted, see `soft_vote`).
    prob:   (N, n_classes) class probabilities in `classes` order.
    """
    classes = list(classes)
    n_classes = len(classes)
    if n_classes < 2:
        raise ValueError("need at least two classes")
    y = _as_indices(y_true, classes)
    p = np.asarray(prob, dtype=np.float64).reshape(len(y), n_classes) if len(y) else np.zeros((0, n_classes))
    if not np.all(np.isfinite(p)):
        raise ValueError("probabilities contain NaN or infinity")
    out: dict = {"n_subjects": int(len(y))}
    labels = list(range(n_classes))
    if len(y) == 0:
        out.update({name: _nan() for name in SCALAR_METRICS})
        out["confusion_matrix"] = np.zeros((n_classes, n_classes), dtype=int).tolist()
        out["roc_curve"] = {"fpr": [], "tpr": []}
        return out
    pred = p.argmax(axis=1)
    cm = confusion_matrix(y, pred, labels=labels)
    out["accuracy"] = float(np.trace(cm) / cm.sum())
    present = np.unique(y)

    # per-class recall (sensitivity) and specificity from the confusion matrix (one-vs-rest)
    with np.errstate(invalid="ignore", divide="ignore"):
        tp = np.diag(cm).astype(float)
        support = cm.sum(axis=1).astype(float)
        fp = cm.sum(axis=0) - tp
        tn = cm.sum() - support - fp
        recall = np.where(support > 0, tp / np.maximum(support, 1), np.nan)
        negatives = tn + fp
        specificity = np.where(negatives > 0, tn / np.maximum(negatives, 1), np.nan)
        # precision and F1 as scikit-learn defines them with zero_division=0 (read off the one confusion
        # matrix: each of its metric functions costs a validation pass, and a run computes metrics often)
        precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0)
        f1 = np.where(2 * tp + fp + (support - tp) > 0, 2 * tp / np.maximum(2 * tp + fp + (support - tp), 1), 0.0)
    # balanced accuracy: mean recall over the classes that occur in y_true (scikit-learn's
    # definition; computed here because scikit-learn warns when a prediction is a class not in y)
    out["balanced_accuracy"] = float(np.nanmean(recall))

    if n_classes == 2:
        pos = 1
        out["sensitivity"] = float(recall[pos])
        out["specificity"] = float(recall[0])
        out["precision"], out["f1"] = float(precision[pos]), float(f1[pos])
        if len(present) == 2:
            out["roc_auc"] = float(roc_auc_score(y, p[:, pos]))
            fpr, tpr, _ = roc_curve(y, p[:, pos])
        else:
            out["roc_auc"], fpr, tpr = _nan(), np.array([]), np.array([])
    else:
        out["sensitivity"] = float(np.nanmean(recall)) if np.any(np.isfinite(recall)) else _nan()
        out["specificity"] = float(np.nanmean(specificity)) if np.any(np.isfinite(specificity)) else _nan()
        out["precision"], out["f1"] = float(precision.mean()), float(f1.mean())  # macro over all classes
        if len(present) == n_classes:
            out["roc_auc"] = float(roc_auc_score(y, p, multi_class="ovr", average="macro", labels=labels))
            onehot = label_binarize(y, classes=labels)
            fpr, tpr, _ = roc_curve(onehot.ravel(), p.ravel())
        else:
            out["roc_auc"], fpr, tpr = _nan(), np.array([]), np.array([])
    out["per_class_recall"] = {c: (float(r) if math.isfinite(r) else _nan()) for c, r in zip(classes, recall)}
    out.update(calibration_metrics(y, p))  # Brier score, ECE and the reliability diagram's bins
    out["confusion_matrix"] = cm.astype(int).tolist()
    out["roc_curve"] = {"fpr": [float(v) for v in fpr], "tpr": [float(v) for v in tpr]}
    return out


def scalar_metrics(metrics: dict) -> dict[str, float]:
    """Only the single-number metrics (for events, curves and CSV rows)."""
    return {k: float(metrics[k]) for k in SCALAR_METRICS if k in metrics}


# -- uncertainty -----------------------------------------------------------------------------
CI_METRICS = ("accuracy", "balanced_accuracy", "roc_auc", "sensitivity", "specificity")
BOOTSTRAP_RESAMPLES = 1000


def rank_auc(y: np.ndarray, p_positive: np.ndarray) -> float:
    """Binary ROC AUC from ranks (Mann-Whitney; ties count half): what roc_auc_score gives, without
    its per-call overhead, for the thousands of resamples a bootstrap draws. NaN without both classes."""
    from scipy.stats import rankdata

    positive = np.asarray(y) == 1
    n1, n0 = int(positive.sum()), int((~positive).sum())
    if n1 == 0 or n0 == 0:
        return _nan()
    return float((rankdata(p_positive)[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _rank_aucs(positive: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Binary ROC AUC of each row (Mann-Whitney, as `rank_auc`); NaN for a row without both classes."""
    from scipy.stats import rankdata

    n1 = positive.sum(axis=1)
    n0 = positive.shape[1] - n1
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = ((rankdata(score, axis=1) * positive).sum(axis=1) - n1 * (n1 + 1) / 2) / (n1 * n0)
    return np.where((n1 > 0) & (n0 > 0), auc, np.nan)


def _ci_points(y: np.ndarray, p: np.ndarray, n_classes: int) -> dict[str, np.ndarray]:
    """The CI_METRICS of each resample at once, the same definitions as `compute_metrics`.

    y: (R, N) class indices, p: (R, N, n_classes) probabilities, one row per resample. Vectorised
    over the resamples because a bootstrap draws a thousand of them for every figure it reports
    (test metrics and each modality subset at the end of every run).
    """
    pred = p.argmax(axis=2)
    truth = y[..., None] == np.arange(n_classes)  # (R, N, K)
    called = pred[..., None] == np.arange(n_classes)
    support = truth.sum(axis=1).astype(np.float64)  # (R, K)
    hits = (truth & called).sum(axis=1)
    false_alarms = (~truth & called).sum(axis=1)
    negatives = y.shape[1] - support
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support > 0, hits / support, np.nan)
        specificity = np.where(negatives > 0, (negatives - false_alarms) / negatives, np.nan)
        out = {"accuracy": (pred == y).mean(axis=1), "balanced_accuracy": np.nanmean(recall, axis=1)}
        if n_classes == 2:
            out["sensitivity"], out["specificity"] = recall[:, 1], recall[:, 0]
            out["roc_auc"] = _rank_aucs(truth[..., 1], p[..., 1])
        else:  # macro one-vs-rest, as roc_auc_score(multi_class="ovr", average="macro") defines it
            out["sensitivity"], out["specificity"] = np.nanmean(recall, axis=1), np.nanmean(specificity, axis=1)
            aucs = np.stack([_rank_aucs(truth[..., k], p[..., k]) for k in range(n_classes)], axis=1)
            out["roc_auc"] = np.where((support > 0).all(axis=1), aucs.mean(axis=1), np.nan)
    return out


def bootstrap_ci(y_true, prob, classes: Sequence[str], *, n_resamples: int = BOOTSTRAP_RESAMPLES,
                 seed: int = 0, level: float = 0.95) -> dict[str, list[float] | None]:
    """Percentile bootstrap CI of each CI_METRIC, resampling persons (rows) with replacement.

    y_true / prob are per person (soft-voted). Resamples in which a metric is undefined (e.g. AUC
    with one class drawn) are left out of that metric's interval; None when too few remain.
    """
    import warnings

    classes = list(classes)
    y = _as_indices(y_true, classes)
    p = np.asarray(prob, dtype=np.float64).reshape(len(y), len(classes)) if len(y) else np.zeros((0, len(classes)))
    if len(y) < 2:
        return {m: None for m in CI_METRICS}
    idx = np.random.default_rng(seed).integers(0, len(y), (n_resamples, len(y)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nanmean of an all-NaN row in a degenerate draw
        draws = _ci_points(y[idx], p[idx], len(classes))
    alpha = (1 - level) / 2
    out: dict[str, list[float] | None] = {}
    for name in CI_METRICS:
        finite = draws[name][np.isfinite(draws[name])]
        out[name] = ([float(np.quantile(finite, alpha)), float(np.quantile(finite, 1 - alpha))]
                     if len(finite) >= 0.5 * n_resamples else None)
    return out


def bootstrap_person_ci(per_person, classes: Sequence[str], *, seed: int = 0,
                        n_resamples: int = BOOTSTRAP_RESAMPLES) -> dict:
    """`bootstrap_ci` of a per-person prediction table (columns label, p_<class> …)."""
    prob = per_person[[f"p_{c}" for c in classes]].to_numpy(dtype=float)
    return bootstrap_ci(per_person["label"].tolist(), prob, classes, seed=seed, n_resamples=n_resamples)


def format_ci(metrics: dict, name: str, scale: float = 1.0, digits: int = 1) -> str:
    """'81.2 [72.0–89.5]' for a metric and its CI from a test-metrics dict ('–' when undefined)."""
    value = metrics.get(name)
    if value is None or not math.isfinite(float(value)):
        return "–"
    text = f"{float(value) * scale:.{digits}f}"
    ci = (metrics.get("ci95") or {}).get(name)
    if ci:
        text += f" [{ci[0] * scale:.{digits}f}–{ci[1] * scale:.{digits}f}]"
    return text
