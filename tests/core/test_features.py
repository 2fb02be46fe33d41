"""Clinical feature encoding: statistics from training subjects only, explicit missing values."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from smmt_core.batch import FeatureSchema
from smmt_core.data.features import (
    CATEGORICAL_FEATURES,
    CIRCULAR_FEATURES,
    NON_CIRCULAR_FEATURES,
    PAPER_FEATURES,
    FeatureEncoder,
    circular_features_in,
)
from smmt_core.data.subject import Subject
from smmt_core.errors import CheckpointError, ConfigError, DataError


def subj(sid, **values):
    numeric = {k: v for k, v in values.items() if k not in CATEGORICAL_FEATURES}
    categorical = {k: v for k, v in values.items() if k in CATEGORICAL_FEATURES}
    return Subject(sid, "CN", numeric=numeric, categorical=categorical)


TRAIN = [
    subj("a", MMSE=30.0, AGE=70.0, PTGENDER="Male", APOE4="0"),
    subj("b", MMSE=24.0, AGE=80.0, PTGENDER="Female", APOE4="1"),
    subj("c", MMSE=math.nan, AGE=75.0, PTGENDER=None, APOE4="1"),
]


def test_presets_and_circularity():
    assert PAPER_FEATURES == ["MMSE", "CDGLOBAL", "FAQ", "AGE", "PTGENDER", "APOE4"]
    assert NON_CIRCULAR_FEATURES == ["AGE", "PTEDUCAT", "PTGENDER", "APOE4"]
    assert not CIRCULAR_FEATURES & set(NON_CIRCULAR_FEATURES)
    assert circular_features_in(PAPER_FEATURES) == ["MMSE", "CDGLOBAL", "FAQ"]


def test_statistics_come_from_training_subjects_only():
    enc = FeatureEncoder(["MMSE", "AGE", "PTGENDER", "APOE4"]).fit(TRAIN)
    assert enc.numeric_names == ["MMSE", "AGE"] and enc.categorical_names == ["PTGENDER", "APOE4"]
    assert enc.means["MMSE"] == pytest.approx(27.0) and enc.stds["MMSE"] == pytest.approx(3.0)
    assert enc.means["AGE"] == pytest.approx(75.0)
    assert enc.categories == {"PTGENDER": ["Female", "Male"], "APOE4": ["0", "1"]}
    # a test subject with extreme values does not move the statistics
    test = [subj("t", MMSE=12.0, AGE=90.0, PTGENDER="Male", APOE4="2")]
    num, miss, cat = enc.transform(test)
    assert num.dtype == np.float32 and miss.dtype == bool and cat.dtype == np.int64
    assert num[0, 0] == pytest.approx((12 - 27) / 3)
    assert num[0, 1] == pytest.approx((90 - 75) / enc.stds["AGE"])
    assert cat.tolist() == [[2, 0]]  # "Male" -> 2; APOE4 "2" was never seen in training -> 0


def test_missing_values_are_explicit():
    enc = FeatureEncoder(["MMSE", "AGE", "PTGENDER", "APOE4"]).fit(TRAIN)
    num, miss, cat = enc.transform(TRAIN + [Subject("empty")])
    assert miss.tolist() == [[False, False], [False, False], [True, False], [True, True]]
    assert num[2, 0] == 0.0 and num[3].tolist() == [0.0, 0.0]
    assert cat[2].tolist() == [0, 2] and cat[3].tolist() == [0, 0]


def test_value_forms_are_normalised():
    enc = FeatureEncoder(["MMSE", "APOE4"]).fit(TRAIN)
    odd = Subject("x", numeric={"MMSE": "27", "APOE4": 1.0}, categorical={})
    num, miss, cat = enc.transform([odd])
    assert num[0, 0] == 0.0 and not miss[0, 0]
    assert cat.tolist() == [[2]]  # 1.0 reads as category "1"
    with pytest.raises(DataError, match="MMSE='high' is not a number"):
        enc.transform([Subject("y", numeric={"MMSE": "high"})])
    inf = enc.transform([Subject("z", numeric={"MMSE": math.inf})])
    assert inf[1][0, 0]  # infinite counts as missing


def test_unknown_features_name_themselves_and_list_available():
    with pytest.raises(ConfigError) as info:
        FeatureEncoder(["MMSE", "HIPPO_VOL", "SHOE_SIZE"]).fit(TRAIN)
    msg = str(info.value)
    assert "HIPPO_VOL, SHOE_SIZE" in msg and "available:" in msg and "PTEDUCAT" in msg
    with pytest.raises(ConfigError, match="twice"):
        FeatureEncoder(["AGE", "AGE"])
    with pytest.raises(ConfigError):
        FeatureEncoder("AGE")
    with pytest.raises(ConfigError, match="not fitted"):
        FeatureEncoder(PAPER_FEATURES).transform(TRAIN)


def test_extra_columns_from_a_dataset_are_usable():
    subjects = [Subject(f"s{i}", numeric={"eTIV": 1400.0 + 10 * i}, categorical={"SITE": f"site{i % 2}"})
                for i in range(4)]
    enc = FeatureEncoder(["eTIV", "SITE"]).fit(subjects)
    assert enc.numeric_names == ["eTIV"] and enc.categories == {"SITE": ["site0", "site1"]}


def test_feature_without_training_values_is_kept_and_reported():
    enc = FeatureEncoder(["FAQ", "AGE"]).fit(TRAIN)
    assert enc.warnings == ["FAQ has no values in the 3 training subjects; it will always count as missing"]
    num, miss, _ = enc.transform([subj("t", FAQ=3.0, AGE=75.0)])
    assert not miss[0, 0] and num[0, 0] == pytest.approx(3.0)  # mean 0, std 1


def test_round_trip_through_json_and_schema():
    enc = FeatureEncoder(PAPER_FEATURES).fit(TRAIN)
    again = FeatureEncoder.from_dict(json.loads(json.dumps(enc.to_dict())))
    probe = TRAIN + [subj("t", MMSE=20.0, AGE=66.0, PTGENDER="Female", APOE4="0")]
    for a, b in zip(enc.transform(probe), again.transform(probe)):
        assert np.array_equal(a, b)
    schema = again.schema(["CN", "AD"], (3, 1, 64, 64))
    assert schema == FeatureSchema(numeric=["MMSE", "CDGLOBAL", "FAQ", "AGE"],
                                   categorical={"PTGENDER": ["Female", "Male"], "APOE4": ["0", "1"]},
                                   mri_shape=(3, 1, 64, 64), classes=["CN", "AD"])
    assert FeatureSchema.from_dict(schema.to_dict()) == schema


@pytest.mark.parametrize("broken", [
    {},
    {"features": ["AGE"], "numeric": [{"name": "AGE", "mean": 1.0, "std": 0.0}], "categorical": []},
    {"features": ["AGE", "MMSE"], "numeric": [{"name": "AGE", "mean": 1.0, "std": 1.0}], "categorical": []},
    {"features": ["AGE"], "numeric": "nope", "categorical": []},
    {"format": 99, "features": [], "numeric": [], "categorical": []},
])
def test_malformed_stored_encoder_is_a_checkpoint_error(broken):
    with pytest.raises(CheckpointError, match="feature encoder is malformed"):
        FeatureEncoder.from_dict(broken)


def test_no_clinical_features_at_all():
    enc = FeatureEncoder([]).fit(TRAIN)
    num, miss, cat = enc.transform(TRAIN)
    assert num.shape == (3, 0) and miss.shape == (3, 0) and cat.shape == (3, 0)
    assert enc.schema(["CN", "AD"], None).numeric == []
