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
are NaN, never a made-up number.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import PurePath

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_score,
    roc_auc_score,
    roc_curve,
)
from sklearn.preprocessing import label_binarize

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
    out["accuracy"] = float(accuracy_score(y, pred))
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
    # balanced accuracy: mean recall over the classes that occur in y_true (scikit-learn's
    # definition; computed here because scikit-learn warns when a prediction is a class not in y)
    out["balanced_accuracy"] = float(np.nanmean(recall))

    if n_classes == 2:
        pos = 1
        out["sensitivity"] = float(recall[pos])
        out["specificity"] = float(recall[0])
        out["precision"] = float(precision_score(y, pred, pos_label=pos, zero_division=0.0))
        out["f1"] = float(f1_score(y, pred, pos_label=pos, zero_division=0.0))
        if len(present) == 2:
            out["roc_auc"] = float(roc_auc_score(y, p[:, pos]))
            fpr, tpr, _ = roc_curve(y, p[:, pos])
        else:
            out["roc_auc"], fpr, tpr = _nan(), np.array([]), np.array([])
    else:
        out["sensitivity"] = float(np.nanmean(recall)) if np.any(np.isfinite(recall)) else _nan()
        out["specificity"] = float(np.nanmean(specificity)) if np.any(np.isfinite(specificity)) else _nan()
        out["precision"] = float(precision_score(y, pred, labels=labels, average="macro", zero_division=0.0))
        out["f1"] = float(f1_score(y, pred, labels=labels, average="macro", zero_division=0.0))
        if len(present) == n_classes:
            out["roc_auc"] = float(roc_auc_score(y, p, multi_class="ovr", average="macro", labels=labels))
            onehot = label_binarize(y, classes=labels)
            fpr, tpr, _ = roc_curve(onehot.ravel(), p.ravel())
        else:
            out["roc_auc"], fpr, tpr = _nan(), np.array([]), np.array([])
    out["per_class_recall"] = {c: (float(r) if math.isfinite(r) else _nan()) for c, r in zip(classes, recall)}
    out["confusion_matrix"] = cm.astype(int).tolist()
    out["roc_curve"] = {"fpr": [float(v) for v in fpr], "tpr": [float(v) for v in tpr]}
    return out


def scalar_metrics(metrics: dict) -> dict[str, float]:
    """Only the single-number metrics (for events, curves and CSV rows)."""
    return {k: float(metrics[k]) for k in SCALAR_METRICS if k in metrics}


def json_safe(value):
    """Replace NaN/inf with None and numpy scalars with Python ones, recursively, for strict JSON."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
