"""Fitting the model's linear path on the training persons (scikit-learn), before the network trains.

The linear path (`smmt_core.model.linear_path`) is an L2 logistic regression on the model's own
inputs. Its strength, C, is chosen by cross-validation grouped by person on the training persons
only (no validation or test person is seen), as the lr-pixels baseline chooses it: by AUC for two
classes (ties: the stronger penalty; the log-loss chose weaker penalties whose pixel weights
extrapolated unusual scans to extreme logits), by log-loss for three. The fitted coefficients are copied
into the model's buffers, so the checkpoint holds them and every prediction path uses them.

Cross-fitting: on its own training scans a logistic regression on thousands of pixels is far more
confident than on new persons (demo cohort: log-loss 0.08 in-sample against 0.33 out of fold), so
a network trained on top of the in-sample logits sees almost no error left and learns nothing.
The trainer therefore trains the network against the *out-of-fold* linear logits of each
training scan (the fold models of the cross-validation, persons never in their own fold): the
network learns what the linear model misses on persons it has not seen. `train_offsets` is
out-of-fold minus in-sample logit per training scan, added to the model's logits in training
only; validation, test and prediction use the linear path fitted on all training persons.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from smmt_core.batch import MODALITY_INDEX
from smmt_core.model.linear_path import bounded

LINEAR_PATH_CS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
CV_FOLDS = 5
FIT_BATCH = 64


def _feature_matrix(model, dataset, device) -> tuple[np.ndarray, np.ndarray]:
    """(raw features (N, F), available modalities (N, 3)) of every scan of `dataset`."""
    from smmt_core.data.dataset import collate

    raws, available = [], []
    with torch.no_grad():
        for start in range(0, len(dataset), FIT_BATCH):
            inputs, _ = collate([dataset[i] for i in range(start, min(start + FIT_BATCH, len(dataset)))])
            inputs = inputs.to(device)
            raws.append(model.linear_features(inputs).float().cpu().numpy())
            available.append(model.available(inputs).cpu().numpy())
    return np.concatenate(raws), np.concatenate(available)


def fit_linear_path(model, dataset, person_ids, labels, seed: int = 0) -> tuple[dict, np.ndarray]:
    """Fit `model.linear_path` on the training scans of `dataset`: (summary for run.json, train_offsets).

    person_ids, labels: per scan, for folds grouped by person (several scans of one person never
    fall on both sides of a fold). The summary holds C, the cross-validated log-loss, and the
    feature and scan counts; train_offsets (N, n_classes) is what the trainer adds to the logits of
    each training scan (out-of-fold minus in-sample linear logits; zeros when there are too few
    persons for folds).
    """
    from sklearn.model_selection import StratifiedGroupKFold

    path = model.linear_path
    device = next(iter(path.buffers())).device
    raw, available = _feature_matrix(model, dataset, device)
    y = np.asarray(labels)
    mean = np.zeros(raw.shape[1])
    scale = np.ones(raw.shape[1])
    z = np.zeros_like(raw, dtype=np.float64)
    for modality, columns in path.blocks().items():
        rows = available[:, MODALITY_INDEX[modality]]
        if columns.stop == columns.start or not rows.any():
            continue
        block = raw[rows][:, columns].astype(np.float64)
        mean[columns] = block.mean(0)
        sd = block.std(0)
        scale[columns] = np.where(sd > 1e-6, sd, 1.0)  # a constant feature stays 0 after centring
        z[rows, columns] = (block - mean[columns]) / scale[columns]

    classes = np.unique(y)
    persons_per_class = min(len({p for p, label in zip(person_ids, y) if label == c}) for c in classes)
    n_classes = path.weight.shape[0]
    best_c, best_loss, best_auc = LINEAR_PATH_CS[1], float("nan"), float("nan")
    out_of_fold = None
    if persons_per_class >= 2:
        folds = list(StratifiedGroupKFold(n_splits=min(CV_FOLDS, persons_per_class), shuffle=True,
                                          random_state=seed).split(z, y, person_ids))
        results = {c: _cross_validated(z, y, folds, c, n_classes) for c in LINEAR_PATH_CS}
        if n_classes == 2 and len(classes) == 2:
            best_c = max(results, key=lambda c: (round(results[c][2], 6), -c))  # ties: the stronger penalty
        else:
            best_c = min(results, key=lambda c: (results[c][0], c))
        best_loss, out_of_fold, best_auc = results[best_c]
    weight, bias = _model_logit_layout(_fit(z, y, best_c), n_classes)
    path.set_fitted(mean, scale, weight, bias)
    in_sample = bounded(z @ weight.T + bias)
    offsets = out_of_fold - in_sample if out_of_fold is not None else np.zeros_like(in_sample)
    summary = {"C": best_c, "cv_log_loss": best_loss, "cv_auc": best_auc if out_of_fold is not None else None,
               "n_features": int(raw.shape[1]), "n_scans": int(len(y)),
               "in_sample_log_loss": _log_loss(in_sample, y), "cross_fitted": out_of_fold is not None}
    return summary, offsets.astype(np.float32)


def _fit(z, y, c):
    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lbfgs' ConvergenceWarning at max_iter: the fit is still usable
        return LogisticRegression(C=c, max_iter=2000).fit(z, y)


def _model_logit_layout(fitted, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(weight (K, F), bias (K,)) in the model's class order; sklearn's binary fit keeps one row."""
    weight = np.zeros((n_classes, fitted.coef_.shape[1]))
    bias = np.zeros(n_classes)
    if len(fitted.classes_) == 2:  # the logit of classes_[1] against classes_[0] (whose logit stays 0)
        weight[fitted.classes_[1]] = fitted.coef_[0]
        bias[fitted.classes_[1]] = fitted.intercept_[0]
    else:
        weight[fitted.classes_] = fitted.coef_
        bias[fitted.classes_] = fitted.intercept_
    return weight, bias


def _log_loss(logits: np.ndarray, y: np.ndarray) -> float:
    from scipy.special import log_softmax

    return float(-log_softmax(logits, axis=1)[np.arange(len(y)), y].mean())


def _cross_validated(z, y, folds, c, n_classes: int) -> tuple[float, np.ndarray, float]:
    """(out-of-fold log-loss, out-of-fold bounded logits (N, n_classes), out-of-fold AUC for two
    classes else NaN) of the L2 strength `c`."""
    from sklearn.metrics import roc_auc_score

    logits = np.zeros((len(y), n_classes))
    for train_idx, test_idx in folds:
        weight, bias = _model_logit_layout(_fit(z[train_idx], y[train_idx], c), n_classes)
        logits[test_idx] = bounded(z[test_idx] @ weight.T + bias)
    auc = float(roc_auc_score(y, logits[:, 1] - logits[:, 0])) if n_classes == 2 and len(np.unique(y)) == 2 else float("nan")
    return _log_loss(logits, y), logits, auc
