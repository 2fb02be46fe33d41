"""Clinical features: which columns the model sees and how they become numbers.

Why an encoder object (scikit-learn style fit/transform): the normalisation statistics and the
category vocabularies must come from the *training* subjects only, travel with the checkpoint
(`to_dict`/`from_dict`) and be applied unchanged at prediction time. Missing values stay
explicit: a numeric value that is missing is 0 in `numeric` and True in `numeric_missing`; a
missing or never-seen category is code 0.

Which columns exist and the feature presets: `smmt_core.data.feature_sets`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from smmt_core.batch import FeatureSchema
from smmt_core.data.feature_sets import (  # noqa: F401 (re-exported: the names live in feature_sets)
    CATEGORICAL_FEATURES,
    CIRCULAR_FEATURES,
    FEATURE_PRESETS,
    KNOWN_FEATURES,
    NON_CIRCULAR_FEATURES,
    NUMERIC_FEATURES,
    PAPER_FEATURES,
    circular_features_in,
    resolve_features,
)
from smmt_core.data.layouts.common import is_missing
from smmt_core.data.subject import Subject
from smmt_core.errors import CheckpointError, ConfigError, DataError

_ENCODER_FORMAT = 1


# The loaders' rule for a missing value, so that "missing" means the same everywhere.
_missing = is_missing


def _category_text(value) -> str | None:
    """Categories as strings; 1.0 and "1" are the same APOE4 category."""
    if _missing(value):
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(int(value))
    return str(value).strip()


def _number(subject: Subject, name: str) -> float:
    value = subject.numeric.get(name, subject.categorical.get(name))
    if _missing(value):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DataError(f"subject {subject.key}: clinical value {name}={value!r} is not a number") from None


def _no_values(name: str, n: int) -> str:
    return f"{name} has no values in the {n} training subjects; it will always count as missing"


class FeatureEncoder:
    """Turns the clinical values of subjects into model arrays; fitted on training subjects only.

    features: names of clinical columns (None = the default preset, non-circular). A name is categorical when it
    is in `CATEGORICAL_FEATURES` or, for other columns, when the training subjects hold it in
    `Subject.categorical`; otherwise numeric. Numeric features keep the requested order, as do
    categorical ones.
    """

    def __init__(self, features: Sequence[str] | None = None):
        if features is None:
            features = resolve_features(None)
        if isinstance(features, str) or not all(isinstance(f, str) and f for f in features):
            raise ConfigError(f"features must be a list of column names, got {features!r}")
        dupes = sorted({f for f in features if list(features).count(f) > 1})
        if dupes:
            raise ConfigError(f"features listed twice: {', '.join(dupes)}")
        self.features: list[str] = list(features)
        self.numeric_names: list[str] = []
        self.categorical_names: list[str] = []
        self.means: dict[str, float] = {}
        self.stds: dict[str, float] = {}
        self.categories: dict[str, list[str]] = {}
        self.warnings: list[str] = []
        self.fitted = False

    # -- fitting ---------------------------------------------------------------------------

    def fit(self, train_subjects: Iterable[Subject]) -> "FeatureEncoder":
        subjects = list(train_subjects)
        seen_numeric = {k for s in subjects for k in s.numeric}
        seen_categorical = {k for s in subjects for k in s.categorical}
        available = sorted(set(KNOWN_FEATURES) | seen_numeric | seen_categorical)
        unknown = [f for f in self.features if f not in available]
        if unknown:
            raise ConfigError(
                f"unknown clinical feature(s): {', '.join(unknown)}; available: {', '.join(available)}"
            )
        self.numeric_names = [
            f for f in self.features
            if f not in CATEGORICAL_FEATURES and not (f in seen_categorical and f not in seen_numeric)
        ]
        self.categorical_names = [f for f in self.features if f not in self.numeric_names]
        self.warnings = []
        n = len(subjects)
        for name in self.numeric_names:
            values = np.array([_number(s, name) for s in subjects], dtype=np.float64)
            values = values[np.isfinite(values)]
            if values.size == 0:
                self.warnings.append(_no_values(name, n))
                mean, std = 0.0, 1.0
            else:
                mean, std = float(values.mean()), float(values.std())
                if not std > 1e-8:
                    std = 1.0
            self.means[name], self.stds[name] = mean, std
        for name in self.categorical_names:
            vocab = {_category_text(s.categorical.get(name, s.numeric.get(name))) for s in subjects}
            vocab.discard(None)
            if not vocab:
                self.warnings.append(_no_values(name, n))
            self.categories[name] = sorted(vocab)
        self.fitted = True
        return self

    # -- applying --------------------------------------------------------------------------

    def transform(self, subjects: Iterable[Subject]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(numeric float32 (N, F), numeric_missing bool (N, F), categorical int64 (N, G))."""
        if not self.fitted:
            raise ConfigError("the feature encoder is not fitted yet; call fit(train_subjects) first")
        subjects = list(subjects)
        n, f, g = len(subjects), len(self.numeric_names), len(self.categorical_names)
        numeric = np.zeros((n, f), dtype=np.float32)
        missing = np.ones((n, f), dtype=bool)
        categorical = np.zeros((n, g), dtype=np.int64)
        codes = {name: {c: i + 1 for i, c in enumerate(self.categories[name])} for name in self.categorical_names}
        for row, s in enumerate(subjects):
            for col, name in enumerate(self.numeric_names):
                value = _number(s, name)
                if math.isfinite(value):
                    numeric[row, col] = (value - self.means[name]) / self.stds[name]
                    missing[row, col] = False
            for col, name in enumerate(self.categorical_names):
                text = _category_text(s.categorical.get(name, s.numeric.get(name)))
                categorical[row, col] = codes[name].get(text, 0) if text is not None else 0
        return numeric, missing, categorical

    # -- persistence -----------------------------------------------------------------------

    def schema(self, classes: Sequence[str], mri_shape, mri_volume: dict | None = None) -> FeatureSchema:
        """The `FeatureSchema` a model built on these features expects (mri_volume: for a volume input)."""
        if not self.fitted:
            raise ConfigError("the feature encoder is not fitted yet; call fit(train_subjects) first")
        return FeatureSchema(
            numeric=list(self.numeric_names),
            categorical={k: list(self.categories[k]) for k in self.categorical_names},
            mri_shape=tuple(int(v) for v in mri_shape) if mri_shape else None,
            classes=list(classes),
            mri_volume=dict(mri_volume) if mri_shape and mri_volume else None,
        )

    def to_dict(self) -> dict:
        if not self.fitted:
            raise ConfigError("the feature encoder is not fitted yet; call fit(train_subjects) first")
        return {
            "format": _ENCODER_FORMAT,
            "features": list(self.features),
            "numeric": [{"name": k, "mean": self.means[k], "std": self.stds[k]} for k in self.numeric_names],
            "categorical": [{"name": k, "categories": list(self.categories[k])} for k in self.categorical_names],
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureEncoder":
        """Rebuild a fitted encoder from `to_dict`; `CheckpointError` when the dict is malformed."""
        try:
            if d.get("format", _ENCODER_FORMAT) != _ENCODER_FORMAT:
                raise ValueError(f"unsupported encoder format {d.get('format')!r}")
            enc = cls(d["features"])
            for item in d["numeric"]:
                name, mean, std = str(item["name"]), float(item["mean"]), float(item["std"])
                if not (math.isfinite(mean) and math.isfinite(std) and std > 0):
                    raise ValueError(f"bad statistics for {name}")
                enc.numeric_names.append(name)
                enc.means[name], enc.stds[name] = mean, std
            for item in d["categorical"]:
                name = str(item["name"])
                enc.categorical_names.append(name)
                enc.categories[name] = [str(c) for c in item["categories"]]
            if sorted(enc.numeric_names + enc.categorical_names) != sorted(enc.features):
                raise ValueError("numeric and categorical features do not add up to the feature list")
            enc.warnings = list(d.get("warnings", []))
        except (KeyError, TypeError, ValueError, AttributeError, ConfigError) as exc:
            raise CheckpointError(f"the stored clinical feature encoder is malformed ({exc})") from None
        enc.fitted = True
        return enc

    def __repr__(self) -> str:
        state = "fitted" if self.fitted else "not fitted"
        return f"FeatureEncoder({self.features!r}, {state})"
