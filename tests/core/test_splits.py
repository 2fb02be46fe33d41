"""Person-level splits: no leakage, stratified, seeded, test fixed across fractions, nested fractions."""

from __future__ import annotations

from collections import Counter

import pandas as pd
import pytest

from smmt_core.data.splits import Split, kfold_split, split_subjects
from smmt_core.data.subject import Subject
from smmt_core.errors import ConfigError, DataError
from smmt_core.train.config import TrainConfig


def cohort(n_cn=60, n_ad=40, sessions=1, n_mci=0, unlabeled=0):
    """Persons with one or several sessions; persons are listed in an interleaved order."""
    out = []
    persons = [("CN", f"cn{i:03d}") for i in range(n_cn)] + [("AD", f"ad{i:03d}") for i in range(n_ad)]
    persons += [("MCI", f"mci{i:03d}") for i in range(n_mci)] + [(None, f"unk{i:03d}") for i in range(unlabeled)]
    for k in range(sessions):
        for label, pid in persons:
            out.append(Subject(pid, label, session=f"ses-M{6 * k:03d}"))
    return out


def persons_by_part(split):
    return {p: set(getattr(split, p)) for p in ("train", "val", "test")}


def assert_no_person_on_two_sides(split, subjects):
    parts = persons_by_part(split)
    assert not parts["train"] & parts["val"] and not parts["train"] & parts["test"]
    assert not parts["val"] & parts["test"]
    frame = split.to_frame(subjects)
    per_person = frame[frame.part.isin(["train", "val", "test"])].groupby("subject_id").part.nunique()
    assert (per_person == 1).all()


def test_sizes_stratification_and_determinism():
    subjects = cohort()
    s = split_subjects(subjects, seed=3)
    assert (len(s.train), len(s.val), len(s.test)) == (65, 15, 20)
    labels = {sub.subject_id: sub.label for sub in subjects}
    assert Counter(labels[i] for i in s.test) == {"CN": 12, "AD": 8}  # same 60:40 ratio
    assert Counter(labels[i] for i in s.val) == {"CN": 9, "AD": 6}
    assert s == split_subjects(list(reversed(subjects)), seed=3)  # input order does not matter
    assert s.test != split_subjects(subjects, seed=4).test
    assert s.summary() == "65 train, 15 validation, 20 test persons"


def test_no_person_on_two_sides_with_several_sessions():
    subjects = cohort(n_cn=30, n_ad=20, sessions=3)
    s = split_subjects(subjects, seed=0, fraction=0.6)
    assert_no_person_on_two_sides(s, subjects)
    frame = s.to_frame(subjects)
    assert list(frame.columns) == ["subject_id", "session", "label", "part"]
    assert len(frame) == 150 and set(frame.part) == {"train", "val", "test", "unused"}
    assert len(s.select(subjects, "test")) == 3 * len(s.test)


def test_test_fixed_across_fractions_train_and_val_shrink_together_nested():
    subjects = cohort(n_cn=70, n_ad=55, sessions=2)
    splits = [split_subjects(subjects, seed=7, fraction=f) for f in (0.2, 0.4, 0.6, 0.8, 1.0)]
    for s in splits:
        assert s.test == splits[-1].test
        assert_no_person_on_two_sides(s, subjects)
        # the fraction's left-out persons come from the full training and validation persons only
        assert set(s.train) | set(s.val) | set(s.unused) == set(splits[-1].train) | set(splits[-1].val)
    for small, big in zip(splits, splits[1:]):
        assert set(small.train) < set(big.train) and set(small.val) <= set(big.val)
    labels = {sub.subject_id: sub.label for sub in subjects}
    for part in ("train", "val"):  # the fraction is taken per class, in both parts
        full = Counter(labels[i] for i in getattr(splits[-1], part))
        fifth = Counter(labels[i] for i in getattr(splits[0], part))
        for label in full:
            assert fifth[label] == max(1, round(0.2 * full[label]))
    # "20 %" of the labelled persons outside the test set, not 20 % of training plus all validation
    labelled = len(splits[-1].train) + len(splits[-1].val)
    assert len(splits[0].train) + len(splits[0].val) <= 0.2 * labelled + 4


def test_unlabelled_and_other_classes_are_excluded_and_said():
    subjects = cohort(n_cn=20, n_ad=20, n_mci=10, unlabeled=3)
    s = split_subjects(subjects, classes=["CN", "AD"])
    used = set(s.train) | set(s.val) | set(s.test)
    assert not any(i.startswith(("mci", "unk")) for i in used)
    assert len(s.excluded) == 13 and "13 person(s) without a usable label were left out" in s.notes[0]
    frame = s.to_frame(subjects)
    assert (frame[frame.label.isin(["MCI"]) | frame.label.isna()].part == "excluded").all()
    three = split_subjects(subjects)  # no classes given: MCI is a class of its own
    assert any(i.startswith("mci") for i in three.test)


def test_kfold_every_person_tested_exactly_once_and_no_leak():
    subjects = cohort(n_cn=23, n_ad=17, sessions=2)
    tested = Counter()
    for fold in range(5):
        s = kfold_split(subjects, n_folds=5, fold=fold, seed=1, fraction=0.5)
        assert_no_person_on_two_sides(s, subjects)
        assert s.fold == fold and s.n_folds == 5
        assert "fold" in s.summary()
        tested.update(s.test)
        labels = Counter(sub.label for sub in s.select(subjects, "test"))
        assert abs(labels["CN"] / sum(labels.values()) - 23 / 40) < 0.1
    assert set(tested) == {sub.subject_id for sub in subjects} and set(tested.values()) == {1}


def test_kfold_fractions_keep_test_and_nest():
    subjects = cohort(n_cn=30, n_ad=30)
    a = kfold_split(subjects, n_folds=4, fold=1, fraction=0.4, seed=2)
    b = kfold_split(subjects, n_folds=4, fold=1, fraction=1.0, seed=2)
    assert a.test == b.test and set(a.val) <= set(b.val) and set(a.train) < set(b.train)


def test_tiny_or_single_classes_are_clear_errors():
    with pytest.raises(DataError, match="AD has 2"):
        split_subjects(cohort(n_cn=20, n_ad=2))
    with pytest.raises(DataError, match="at least two classes"):
        split_subjects(cohort(n_cn=20, n_ad=0))
    with pytest.raises(DataError, match="AD has 4; each class needs at least 6"):
        kfold_split(cohort(n_cn=20, n_ad=4), n_folds=5)
    with pytest.raises(DataError, match="at least two classes"):
        split_subjects(cohort(n_cn=0, n_ad=0, unlabeled=10))
    ok = split_subjects(cohort(n_cn=3, n_ad=3))  # the smallest that works: one of each per part
    assert len(ok.test) >= 2 and len(ok.val) >= 2 and len(ok.train) >= 2


@pytest.mark.parametrize("kwargs", [dict(test_size=0), dict(test_size=1.0), dict(val_size=-0.1),
                                    dict(test_size=0.5, val_size=0.5), dict(fraction=0), dict(fraction=1.5)])
def test_bad_sizes_are_config_errors(kwargs):
    with pytest.raises(ConfigError):
        split_subjects(cohort(), **kwargs)


@pytest.mark.parametrize("sizes", [dict(test_size=0.5, val_size=0.45), dict(test_size=0.85, val_size=0.15),
                                   dict(test_size=0.05, val_size=0.9)])
def test_a_split_refuses_what_the_config_refuses_with_its_message(sizes):
    """One declaration (DataConfig) for the sizes: split_subjects and TrainConfig agree."""
    with pytest.raises(ConfigError) as from_config:
        TrainConfig.build("demo", **sizes)
    with pytest.raises(ConfigError) as from_split:
        split_subjects(cohort(), **sizes)
    assert str(from_split.value) == str(from_config.value)


def test_bad_fold_settings():
    with pytest.raises(ConfigError):
        kfold_split(cohort(), n_folds=1)
    with pytest.raises(ConfigError):
        kfold_split(cohort(), n_folds=5, fold=5)


def test_no_validation_set():
    s = split_subjects(cohort(), val_size=0.0)
    assert s.val == [] and len(s.train) == 80


def test_frame_round_trip_and_part_of(tmp_path):
    subjects = cohort(n_cn=20, n_ad=20, sessions=2, unlabeled=2)
    s = split_subjects(subjects, fraction=0.5, seed=5)
    path = tmp_path / "split.csv"
    s.to_frame(subjects).to_csv(path, index=False)
    back = Split.from_frame(pd.read_csv(path, dtype={"subject_id": str}), seed=5, fraction=0.5)
    for part in ("train", "val", "test", "unused", "excluded"):
        assert sorted(getattr(back, part)) == sorted(getattr(s, part)), part
    assert s.part_of(s.test[0]) == "test" and s.part_of("nobody") is None
    with pytest.raises(DataError, match="both train and test"):
        Split(["x"], [], ["x"])
    with pytest.raises(DataError, match="lacks column"):
        Split.from_frame(pd.DataFrame({"id": ["a"]}))
