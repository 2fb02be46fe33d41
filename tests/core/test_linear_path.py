"""The linear path: a logistic regression on the model's own inputs that the network adds to."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from sklearn.metrics import roc_auc_score

from smmt_core.batch import FeatureSchema, ModelInputs
from smmt_core.model.config import ModelConfig
from smmt_core.model.smmt import build_model
from smmt_core.train.linear_fit import fit_linear_path
from smmt_core.train.trainer import train
from tests.core.c1_support import make_tiny_bids, mri_cache_at, one_thread, tiny_config

SHAPE = (2, 1, 16, 16)


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


def _model(**overrides):
    config = ModelConfig(d_model=16, n_heads=2, n_fusion_tokens=2, linear_path="logistic", **overrides)
    schema = FeatureSchema(numeric=["AGE"], categorical={"APOE4": ["0", "1", "2"]}, mri_shape=SHAPE)
    torch.manual_seed(0)
    return build_model(config, schema).eval()


def _items(n=80, seed=0):
    """Scans whose label is carried by one image region and by AGE, both noisy."""
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n):
        label = i % 2
        mri = rng.random(SHAPE).astype(np.float32) * 0.3
        mri[:, :, 4:8, 4:8] += 0.4 * label + rng.normal(0, 0.25)
        items.append({"mri": torch.from_numpy(mri),
                      "numeric": torch.tensor([label + rng.normal(0, 1.0)], dtype=torch.float32),
                      "numeric_missing": torch.tensor([False]),
                      "categorical": torch.tensor([int(rng.integers(0, 4))]),
                      "present": torch.tensor([True, True, True]), "label": label})
    return items


def _batch(items):
    from smmt_core.data.dataset import collate

    return collate(items)


def test_before_training_the_model_is_exactly_its_fitted_logistic_regression():
    model = _model()
    items = _items()
    summary, offsets = fit_linear_path(model, items, [f"p{i}" for i in range(len(items))],
                                       [it["label"] for it in items])
    inputs, labels = _batch(items)
    with torch.no_grad():
        logits = model(inputs)
        linear = model.linear_path(model.linear_features(inputs), model.available(inputs))
    assert torch.allclose(logits, linear, atol=1e-5)  # the head starts at zero
    assert float(linear.abs().max()) > 0.1  # and the path was fitted
    assert roc_auc_score(labels.numpy(), (logits[:, 1] - logits[:, 0]).numpy()) > 0.9
    assert summary["n_features"] == 2 * 16 * 16 + 2 + 3 and summary["cross_fitted"]
    # persons never in their own fold: out of fold the fit is less sure than on its own scans
    assert summary["cv_log_loss"] > summary["in_sample_log_loss"]
    assert offsets.shape == (len(items), 2) and np.abs(offsets).max() > 0


def test_an_absent_modality_contributes_the_training_mean_whatever_its_values():
    model = _model()
    items = _items()
    fit_linear_path(model, items, [f"p{i}" for i in range(len(items))], [it["label"] for it in items])
    inputs, _ = _batch(items[:4])
    without_mri = inputs.without("mri")
    other = ModelInputs(torch.rand_like(inputs.mri), inputs.numeric, inputs.numeric_missing, inputs.categorical,
                        without_mri.present)
    path = model.linear_path
    with torch.no_grad():
        a = path(model.linear_features(without_mri), model.available(without_mri))
        b = path(model.linear_features(other), model.available(other))
        with_mri = path(model.linear_features(inputs), model.available(inputs))
    assert torch.allclose(a, b)
    assert not torch.allclose(a, with_mri)


def test_a_missing_clinical_value_is_the_training_mean_plus_its_missing_flag():
    model = _model()
    items = _items()
    fit_linear_path(model, items, [f"p{i}" for i in range(len(items))], [it["label"] for it in items])
    inputs, _ = _batch(items[:2])
    missing = ModelInputs(inputs.mri, torch.full_like(inputs.numeric, float("nan")), torch.ones_like(inputs.numeric_missing),
                          inputs.categorical, inputs.present)
    with torch.no_grad():
        logits = model.linear_path(model.linear_features(missing), model.available(missing))
    assert torch.isfinite(logits).all()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    cohort = make_tiny_bids(tmp_path_factory.mktemp("cohort") / "bids", n_per_class=8)
    with mri_cache_at(tmp_path_factory.getbasetemp() / "linear-path-cache"), one_thread():
        result = train(tiny_config(cohort, tmp_path_factory.mktemp("runs"), run_name="lp", epochs=2, val_size=0.4))
    return cohort, result


def test_a_demo_run_stores_its_linear_path_calibration_and_what_the_network_added(trained):
    _, result = trained
    summary = json.loads((result.run_dir / "run.json").read_text())
    path = summary["linear_path"]
    assert path["cross_fitted"] in (True, False) and path["C"] > 0
    assert set(path["test_metrics"]) >= {"balanced_accuracy", "roc_auc", "ece", "ci95"}
    calibration = summary["calibration"]
    assert calibration["method"] == "temperature" and calibration["temperature"] > 0
    weights = load_file(result.run_dir / "best.safetensors")
    assert float(weights["linear_path.weight"].abs().max()) > 0
    assert float(weights["logit_temperature"]) == pytest.approx(calibration["temperature"])
    best = json.loads((result.run_dir / "best.json").read_text())
    if "note" not in calibration:  # enough validation persons: the stored checkpoint says how it was fitted
        assert best["calibration"]["temperature"] == pytest.approx(calibration["temperature"])
    assert {"brier", "ece", "reliability"} <= set(summary["test_metrics"])


def test_a_prediction_says_whether_it_is_borderline_and_calibrated(trained):
    from smmt_core.data.loaders import load_cohort
    from smmt_core.predict import Predictor

    cohort, result = trained
    predictor = Predictor.load(result.run_dir, device="cpu")
    subject = load_cohort(str(cohort)).subjects[0]
    prediction = predictor.predict(subject)
    shown = prediction.to_dict()
    top = max(prediction.probabilities.values())
    assert shown["borderline"] is (top <= 0.6)
    assert prediction.verdict == (f"borderline (leaning {prediction.prediction})" if prediction.borderline
                                  else prediction.prediction)
    assert shown["calibrated"] is predictor.calibrated
