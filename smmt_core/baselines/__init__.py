"""Simple baselines, scored on the same persons as the model: part of the product, not a side script.

A result that a simple baseline beats is not a result. Each baseline is fitted on the training
persons of a run's split (the scans of those persons) and scored on its test persons, with the
model's own preprocessing, per-person soft voting and the same metrics and bootstrap CIs:

    lr-clinical           logistic regression on the run's clinical features
    lr-regional           logistic regression on 2 regional image measures (hippocampal and
                          ventricle-shell tissue fractions, template-defined regions in MNI space)
    lr-clinical-regional  both together
    lr-pixels             L2 logistic regression on the model's own slices (C chosen by 5-fold
                          cross-validation grouped by person, on the training persons only)
    cnn                   a plain CNN on the model's own slices (baselines.cnn)

scikit-learn for the logistic regressions; missing values are imputed with the training mean, with
a missing indicator (a missing category too: its one-hot block is missing, not zero), the imputer
fitted on the training persons only, so a test person without a whole modality (every MRI-derived
column, or every clinical column) is scored from the modality it has.

A person who has none of a baseline's inputs (no T1 for lr-regional, lr-pixels and cnn; no
clinical value for lr-clinical) cannot be scored by it: the baseline then predicts the training
persons' class shares (the prior), which is what guessing achieves (balanced accuracy 0.5, AUC 0.5
among such persons), and `BaselineFit.no_input` counts them. Why not leave them out: a comparison
with missing modalities has to keep every method on the same persons, and an image-only method
really knows nothing about a person without an image. Why not impute the mean image (what the
imputer would do) or a blank one (what a CNN would see): that is a prediction for an image nobody
has, not a statement of ignorance.

A baseline's folder (BaselineRecord) holds split.csv, predictions.csv and baseline.json (status,
test metrics with CIs), read like a run folder.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from smmt_core.errors import SMMTError
from smmt_core.train.run_folder import BASELINE_SUMMARY_FILE, BASELINES_DIR
from smmt_core.train.run_record import RunRecord, utc_now
from smmt_core.variants import BASELINES  # the names, declared with the variants (read there without this package)

PIXEL_CS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
# The inputs each baseline reads: "clinical" (every clinical column) and/or "mri".
INPUTS: dict[str, tuple[str, ...]] = {
    "lr-clinical": ("clinical",), "lr-regional": ("mri",), "lr-clinical-regional": ("clinical", "mri"),
    "lr-pixels": ("mri",), "cnn": ("mri",),
}


class BaselineUnavailable(Exception):
    """The baseline cannot be fitted on these data (e.g. no clinical features, no MRI)."""


class BaselineRecord(RunRecord):
    """A baseline's folder: split.csv, predictions.csv and baseline.json (its run.json)."""

    SUMMARY_FILE = BASELINE_SUMMARY_FILE

    def finished(self) -> bool:
        return self.finished_summary() is not None


def _logistic(pixels: bool = False, groups=None):
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    persons_per_class = min(len({p for p, y in zip(*groups) if y == c}) for c in set(groups[1])) if pixels else 0
    if pixels and persons_per_class >= 2:
        folds = min(5, persons_per_class)  # grouped by person: no person on both sides of a fold
        cv = list(StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=0).split(
            np.zeros(len(groups[1])), groups[1], groups[0]))
        classifier = GridSearchCV(LogisticRegression(max_iter=3000), {"C": list(PIXEL_CS)}, cv=cv,
                                  scoring="roc_auc" if len(set(groups[1])) == 2 else "accuracy")
    elif pixels:  # too few persons to choose C by cross-validation
        classifier = LogisticRegression(C=PIXEL_CS[1], max_iter=3000)
    else:
        classifier = LogisticRegression(C=1.0, max_iter=3000)
    return make_pipeline(SimpleImputer(strategy="mean", add_indicator=True, keep_empty_features=True),
                         StandardScaler(), classifier)


def _features(name: str, encoder, subjects, preprocess, cache, fitting: bool = True):
    """The baseline's design matrix; `fitting`: these are the persons it learns from, so they must
    have its inputs (test persons without them are allowed: they get the prior)."""
    from smmt_core.baselines.measures import clinical_matrix, image_arrays

    blocks = []
    if name in ("lr-clinical", "lr-clinical-regional"):
        clinical = clinical_matrix(encoder, subjects)
        if clinical.shape[1] == 0:
            raise BaselineUnavailable(f"{name}: the run has no clinical features (features 'none')")
        blocks.append(clinical)
    if name in ("lr-regional", "lr-clinical-regional", "lr-pixels", "cnn"):
        if fitting and not any(s.t1_path is not None for s in subjects):
            raise BaselineUnavailable(f"{name}: no subject has a T1 image")
        measures, pixels = image_arrays(subjects, preprocess, cache, volumes=name != "lr-pixels" and name != "cnn",
                                        pixels=name in ("lr-pixels", "cnn"))
        blocks.append(measures if measures is not None else pixels)
    return np.concatenate(blocks, axis=1)


@dataclass
class BaselineFit:
    """A baseline fitted on training persons and its class probabilities for each test list.

    probabilities[i]: (scans, classes) for tests[i]; no_input[i]: the scans that had none of the
    baseline's inputs and were given `prior` (the training persons' class shares). model: the
    fitted scikit-learn pipeline (None for the CNN).
    """

    name: str
    probabilities: list
    no_input: list
    prior: np.ndarray
    model: object = None


def _has_input(name: str, subject, encoder) -> bool:
    """Whether the subject has any of the inputs the baseline reads."""
    import math

    if "mri" in INPUTS[name] and subject.t1_path is not None:
        return True
    if "clinical" in INPUTS[name]:
        numbers = (subject.numeric.get(n) for n in encoder.numeric_names)
        if any(v is not None and not (isinstance(v, float) and math.isnan(v)) for v in numbers):
            return True
        return any(subject.categorical.get(n) is not None for n in encoder.categorical_names)
    return False


def _prior(train_s, index: dict[str, int], n_classes: int) -> np.ndarray:
    """Class shares of the training persons (one vote per person and diagnosis, as the metrics count)."""
    persons = {(s.subject_id, index[s.label]) for s in train_s}
    counts = np.bincount([label for _, label in persons], minlength=n_classes).astype(np.float64)
    return counts / counts.sum()


def fit_baseline(name: str, config, split, subjects, tests: Sequence[Sequence], cache=None) -> BaselineFit:
    """Fit baseline `name` on the training persons of `split` (scans from `subjects`) and give class
    probabilities for each list of test scans in `tests` (e.g. the test scans as they are, and the
    same scans without their MRI). Nothing about a test scan reaches the fit: the feature encoder,
    imputer, scaler and classifier see the training persons only (the CNN's early stopping also
    the validation persons). BaselineUnavailable when the data cannot feed the baseline.
    """
    from smmt_core.data.features import FeatureEncoder
    from smmt_core.data.preprocess import MRICache

    if name not in BASELINES:
        raise SMMTError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
    if config.preprocess.is_volume:
        # The baselines are defined on slices (pixels, CNN) and on the MNI volume (regional
        # measures): at the volume preset they keep their slice settings, on the same persons.
        config = config.updated(input="slices")
    classes = list(config.data.classes)
    index = {c: i for i, c in enumerate(classes)}
    train_s, val_s = split.select(subjects, "train"), split.select(subjects, "val")
    encoder = FeatureEncoder(config.data.features).fit(train_s)
    cache = cache if cache is not None else MRICache()
    y_train = np.array([index[s.label] for s in train_s])
    x_train = _features(name, encoder, train_s, config.preprocess, cache)
    x_tests = [_features(name, encoder, list(t), config.preprocess, cache, False) for t in tests]
    model = None
    if name == "cnn":
        from smmt_core.baselines.cnn import fit_predict_cnn

        x_val = _features(name, encoder, val_s, config.preprocess, cache) if val_s else x_train[:0]
        y_val = np.array([index[s.label] for s in val_s], dtype=int)
        s, _, h, w = config.preprocess.mri_shape
        # one fit, every test list predicted by it
        joined = fit_predict_cnn(x_train, y_train, x_val, y_val, np.concatenate(x_tests), len(classes), (s, h, w),
                                 seed=config.optim.seed)
        probs = np.split(joined, np.cumsum([len(x) for x in x_tests])[:-1])
    else:
        groups = ([s.subject_id for s in train_s], y_train) if name == "lr-pixels" else None
        model = _logistic(pixels=name == "lr-pixels", groups=groups).fit(x_train, y_train)
        probs = []
        for x in x_tests:
            prob = np.zeros((len(x), len(classes)))
            if len(x):
                prob[:, model.classes_] = model.predict_proba(x)
            probs.append(prob)
    prior = _prior(train_s, index, len(classes))
    no_input = []
    for test, prob in zip(tests, probs):
        lacking = np.array([not _has_input(name, s, encoder) for s in test], dtype=bool)
        prob[lacking] = prior
        no_input.append(lacking)
    return BaselineFit(name, list(probs), no_input, prior, model)


def run_baseline(name: str, config, folder: str | Path, *, split=None, cohort_cache: dict | None = None,
                 cache=None) -> dict:
    """Fit baseline `name` on the training persons of `config`'s split and score its test persons.

    split: the split to use (e.g. read from a run's split.csv); None computes it from `config`
    exactly as the trainer does. Writes folder/split.csv, predictions.csv, baseline.json; returns
    the test metrics (with `ci95`). BaselineUnavailable when the data cannot feed the baseline.
    """
    from smmt_core.data.loaders import load_cohort
    from smmt_core.data.splits import split_for_config
    from smmt_core.train.metrics import bootstrap_person_ci, compute_metrics, soft_vote

    if name not in BASELINES:
        raise SMMTError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
    started = time.perf_counter()
    if config.preprocess.is_volume:
        config = config.updated(input="slices")  # as fit_baseline scores it, so that baseline.json says so
    data = config.data
    cohort_cache = cohort_cache if cohort_cache is not None else {}
    key = (data.dataset, data.adnimerge, data.date_window_days)
    if key not in cohort_cache:
        cohort_cache[key] = load_cohort(data.dataset, adnimerge=data.adnimerge,
                                        date_window_days=data.date_window_days)
    cohort = cohort_cache[key]
    if split is None:
        split = split_for_config(cohort.subjects, data, config.optim.seed)
    classes = list(data.classes)
    test_s = split.select(cohort.subjects, "test")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    record = BaselineRecord(folder)
    record.write_split(split.to_frame(cohort.subjects))

    fit = fit_baseline(name, config, split, cohort.subjects, [test_s], cache)
    prob = fit.probabilities[0]
    index = {c: i for i, c in enumerate(classes)}
    ids, labels, person_prob = soft_vote([s.subject_id for s in test_s], [index[s.label] for s in test_s], prob)
    metrics = compute_metrics(labels, person_prob, classes)
    import pandas as pd

    table = pd.DataFrame({"subject_id": ids, "label": [classes[i] for i in labels],
                          "prediction": [classes[i] for i in person_prob.argmax(axis=1)]})
    for j, c in enumerate(classes):
        table[f"p_{c}"] = person_prob[:, j]
    metrics["ci95"] = bootstrap_person_ci(table, classes, seed=config.optim.seed)
    record.write_predictions(table)
    record.write_summary({"status": "finished", "baseline": name, "description": BASELINES[name],
                          "created": utc_now(), "test_metrics": metrics,
                          "n_train_persons": len(split.train), "n_test_persons": len(split.test),
                          "n_test_scans_without_input": int(fit.no_input[0].sum()),
                          "duration_s": time.perf_counter() - started, "config": config.to_dict()})
    return metrics


def score_baselines_for_run(run_dir: str | Path, names, on_progress=None) -> dict[str, dict]:
    """Score `names` on a finished run's own split (its split.csv), store them in its run.json.

    Returns {name: test metrics, or {"error": message}}; folders go to run_dir/baselines/<name>.
    """
    from smmt_core.data.splits import Split

    record = RunRecord(run_dir)
    config = record.config()
    split = Split.from_frame(record.split(), seed=config.data.split_seed or config.optim.seed,
                             fraction=config.data.fraction)
    split.classes = list(config.data.classes)
    out: dict[str, dict] = {}
    cohort_cache: dict = {}
    for i, name in enumerate(names):
        try:
            out[name] = run_baseline(name, config, Path(run_dir) / BASELINES_DIR / name, split=split,
                                     cohort_cache=cohort_cache)
        except BaselineUnavailable as error:
            out[name] = {"error": str(error)}
        if on_progress is not None:
            on_progress(i + 1, len(names))
    stored = {name: ({k: v for k, v in m.items() if k not in ("roc_curve",)} if "error" not in m else m)
              for name, m in out.items()}
    record.update_summary(baselines=stored)
    return out
