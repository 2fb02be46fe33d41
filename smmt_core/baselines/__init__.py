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
a missing indicator. A baseline's folder (BaselineRecord) holds split.csv, predictions.csv and
baseline.json (status, test metrics with CIs), read like a run folder.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from smmt_core.errors import SMMTError
from smmt_core.train.run_folder import BASELINE_SUMMARY_FILE, BASELINES_DIR
from smmt_core.train.run_record import RunRecord, utc_now
from smmt_core.variants import BASELINES  # the names, declared with the variants (read there without this package)

PIXEL_CS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)


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


def _features(name: str, encoder, subjects, preprocess, cache):
    from smmt_core.baselines.measures import clinical_matrix, image_arrays

    blocks = []
    if name in ("lr-clinical", "lr-clinical-regional"):
        clinical = clinical_matrix(encoder, subjects)
        if clinical.shape[1] == 0:
            raise BaselineUnavailable(f"{name}: the run has no clinical features (features 'none')")
        blocks.append(clinical)
    if name in ("lr-regional", "lr-clinical-regional", "lr-pixels", "cnn"):
        if not any(s.t1_path is not None for s in subjects):
            raise BaselineUnavailable(f"{name}: no subject has a T1 image")
        measures, pixels = image_arrays(subjects, preprocess, cache, volumes=name != "lr-pixels" and name != "cnn",
                                        pixels=name in ("lr-pixels", "cnn"))
        blocks.append(measures if measures is not None else pixels)
    return np.concatenate(blocks, axis=1)


def run_baseline(name: str, config, folder: str | Path, *, split=None, cohort_cache: dict | None = None,
                 cache=None) -> dict:
    """Fit baseline `name` on the training persons of `config`'s split and score its test persons.

    split: the split to use (e.g. read from a run's split.csv); None computes it from `config`
    exactly as the trainer does. Writes folder/split.csv, predictions.csv, baseline.json; returns
    the test metrics (with `ci95`). BaselineUnavailable when the data cannot feed the baseline.
    """
    from smmt_core.data.features import FeatureEncoder
    from smmt_core.data.loaders import load_cohort
    from smmt_core.data.preprocess import MRICache
    from smmt_core.data.splits import split_for_config
    from smmt_core.train.metrics import bootstrap_person_ci, compute_metrics, soft_vote

    if name not in BASELINES:
        raise SMMTError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
    started = time.perf_counter()
    if config.preprocess.is_volume:
        # The baselines are defined on slices (pixels, CNN) and on the MNI volume (regional
        # measures): at the volume preset they keep their slice settings, on the same persons.
        config = config.updated(input="slices")
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
    train_s, val_s, test_s = (split.select(cohort.subjects, part) for part in ("train", "val", "test"))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    record = BaselineRecord(folder)
    record.write_split(split.to_frame(cohort.subjects))

    encoder = FeatureEncoder(data.features).fit(train_s)
    cache = cache if cache is not None else MRICache()
    index = {c: i for i, c in enumerate(classes)}
    y_train = np.array([index[s.label] for s in train_s])
    x_train = _features(name, encoder, train_s, config.preprocess, cache)
    x_test = _features(name, encoder, test_s, config.preprocess, cache)
    if name == "cnn":
        from smmt_core.baselines.cnn import fit_predict_cnn

        x_val = _features(name, encoder, val_s, config.preprocess, cache) if val_s else x_train[:0]
        y_val = np.array([index[s.label] for s in val_s], dtype=int)
        s, _, h, w = config.preprocess.mri_shape
        prob = fit_predict_cnn(x_train, y_train, x_val, y_val, x_test, len(classes), (s, h, w),
                               seed=config.optim.seed)
    else:
        groups = ([s.subject_id for s in train_s], y_train) if name == "lr-pixels" else None
        model = _logistic(pixels=name == "lr-pixels", groups=groups).fit(x_train, y_train)
        prob = np.zeros((len(test_s), len(classes)))
        prob[:, model.classes_] = model.predict_proba(x_test)
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
