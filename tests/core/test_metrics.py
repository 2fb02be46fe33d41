"""Per-subject metrics: hand-checked values, soft voting, undefined cases, strict JSON."""

import json
import math

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from smmt_core.train.metrics import compute_metrics, json_safe, scalar_metrics, soft_vote

CLASSES = ["CN", "AD"]


def test_binary_metrics_match_a_hand_computed_confusion_matrix():
    # true:  CN CN CN CN AD AD AD   predicted (argmax): CN CN CN AD AD AD CN
    y = [0, 0, 0, 0, 1, 1, 1]
    p_ad = np.array([0.1, 0.2, 0.3, 0.6, 0.9, 0.8, 0.4])
    prob = np.stack([1 - p_ad, p_ad], axis=1)
    m = compute_metrics(y, prob, CLASSES)
    assert m["confusion_matrix"] == [[3, 1], [1, 2]]
    assert m["accuracy"] == pytest.approx(5 / 7)
    assert m["sensitivity"] == pytest.approx(2 / 3)  # AD recall
    assert m["specificity"] == pytest.approx(3 / 4)  # CN recall
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 3 / 4) / 2)
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, prob.argmax(1)))
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    # AUC by counting ranked pairs: 12 (AD, CN) pairs, the AD 0.4 is below CN 0.6 only
    assert m["roc_auc"] == pytest.approx(11 / 12)
    assert m["roc_curve"]["fpr"][0] == 0.0 and m["roc_curve"]["tpr"][-1] == 1.0
    assert m["n_subjects"] == 7


def test_labels_may_be_class_names_and_unknown_names_are_rejected():
    prob = np.array([[0.8, 0.2], [0.3, 0.7]])
    assert compute_metrics(["CN", "AD"], prob, CLASSES)["accuracy"] == 1.0
    with pytest.raises(ValueError, match="MCI"):
        compute_metrics(["CN", "MCI"], prob, CLASSES)


def test_auc_is_nan_not_invented_when_only_one_class_is_present():
    m = compute_metrics([0, 0], np.array([[0.9, 0.1], [0.4, 0.6]]), CLASSES)
    assert math.isnan(m["roc_auc"])
    assert math.isnan(m["sensitivity"])  # no AD subject
    assert m["specificity"] == 0.5


def test_three_classes_use_macro_averages_and_micro_roc():
    classes = ["CN", "MCI", "AD"]
    y = [0, 0, 1, 1, 2, 2]
    prob = np.array([[0.7, 0.2, 0.1], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1],
                     [0.1, 0.5, 0.4], [0.1, 0.2, 0.7], [0.2, 0.2, 0.6]])
    m = compute_metrics(y, prob, classes)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [0, 0, 2]]
    assert m["sensitivity"] == pytest.approx((0.5 + 1 + 1) / 3)
    # specificities: CN 4/4, MCI 3/4, AD 4/4
    assert m["specificity"] == pytest.approx((1 + 0.75 + 1) / 3)
    assert 0.0 < m["roc_auc"] <= 1.0 and len(m["roc_curve"]["fpr"]) > 2


def test_soft_vote_averages_scans_of_one_person_and_keeps_converters_apart():
    ids = ["p1", "p2", "p1", "p3", "p3"]
    labels = [1, 0, 1, 0, 1]  # p3 converted CN -> AD
    prob = np.array([[0.2, 0.8], [0.9, 0.1], [0.6, 0.4], [0.5, 0.5], [0.1, 0.9]])
    persons, y, p = soft_vote(ids, labels, prob)
    assert persons == ["p1", "p2", "p3", "p3"]
    assert y.tolist() == [1, 0, 0, 1]
    assert p[0] == pytest.approx([0.4, 0.6])  # mean of the two p1 scans
    m = compute_metrics(y, p, CLASSES)
    assert m["n_subjects"] == 4


def test_soft_vote_checks_lengths():
    with pytest.raises(ValueError):
        soft_vote(["a"], [0, 1], np.zeros((2, 2)))


def test_empty_input_gives_nan_metrics_and_an_empty_confusion_matrix():
    m = compute_metrics([], np.zeros((0, 2)), CLASSES)
    assert m["n_subjects"] == 0 and math.isnan(m["accuracy"])
    assert m["confusion_matrix"] == [[0, 0], [0, 0]]


def test_nan_probabilities_are_rejected():
    with pytest.raises(ValueError, match="NaN"):
        compute_metrics([0, 1], np.array([[np.nan, 0.5], [0.5, 0.5]]), CLASSES)


def test_scalar_metrics_and_json_safe():
    m = compute_metrics([0, 0], np.array([[0.9, 0.1], [0.4, 0.6]]), CLASSES)
    scalars = scalar_metrics(m)
    assert set(scalars) == {"accuracy", "balanced_accuracy", "sensitivity", "specificity", "precision", "f1", "roc_auc"}
    text = json.dumps(json_safe(m), allow_nan=False)  # NaN -> null, strict JSON
    assert json.loads(text)["roc_auc"] is None


@pytest.mark.parametrize("classes", [["CN", "AD"], ["CN", "MCI", "AD"]])
def test_the_bootstraps_fast_point_metrics_equal_scikit_learns(classes):
    """The bootstrap computes its thousands of resamples without scikit-learn's per-call overhead:
    every figure it draws must still be the one compute_metrics (scikit-learn) reports."""
    from smmt_core.train.metrics import CI_METRICS, _ci_points

    rng = np.random.default_rng(3)
    ys, probs = [], []
    for _ in range(20):
        y = rng.integers(0, len(classes), 40)
        y[: len(classes)] = np.arange(len(classes))  # every class present
        prob = rng.dirichlet(np.ones(len(classes)), 40)
        prob[:5] = prob[5]  # ties
        ys.append(y)
        probs.append(prob)
    fast = _ci_points(np.stack(ys), np.stack(probs), len(classes))
    for row, (y, prob) in enumerate(zip(ys, probs)):
        reference = compute_metrics(y, prob, classes)
        for name in CI_METRICS:
            assert fast[name][row] == pytest.approx(reference[name], abs=1e-12), name


@pytest.mark.parametrize("classes", [["CN", "AD"], ["CN", "MCI", "AD"]])
def test_accuracy_precision_and_f1_are_scikit_learns_even_with_a_class_never_predicted_or_absent(classes):
    from sklearn.metrics import accuracy_score, f1_score, precision_score

    rng = np.random.default_rng(5)
    labels = list(range(len(classes)))
    average = dict(pos_label=1) if len(classes) == 2 else dict(labels=labels, average="macro")
    for case in range(30):
        y = rng.integers(0, len(classes), 12)
        prob = rng.dirichlet(np.ones(len(classes)), 12)
        if case % 3 == 0:
            prob[:, 0] += 5  # class 0 always predicted
        if case % 3 == 1:
            y[y == len(classes) - 1] = 0  # the last class absent from the truth
        prob /= prob.sum(1, keepdims=True)
        pred = prob.argmax(1)
        got = compute_metrics(y, prob, classes)
        assert got["accuracy"] == pytest.approx(accuracy_score(y, pred))
        assert got["precision"] == pytest.approx(precision_score(y, pred, zero_division=0.0, **average))
        assert got["f1"] == pytest.approx(f1_score(y, pred, zero_division=0.0, **average))
