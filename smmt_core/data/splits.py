"""Subject-level, stratified, seeded train / validation / test splits.

Why by person: several scans (sessions) of one person are nearly identical, so a person whose
scans land on both sides of a split leaks the answer; on ADNI that inflates accuracy by about
29 points (Yagis et al., Sci. Rep. 2021). Every split here groups on `Subject.subject_id`.

Why this order: the test persons are drawn first and depend only on the seed, then validation
persons are carved from the rest, and only then does the data fraction shrink the training *and
validation* persons together (each nested and stratified). So the test set is identical across
fractions, and the training and validation sets are nested (the 20% set is inside the 40% set,
... inside 100%) for the same seed: a learning curve then measures data, not a different test
set. The validation persons shrink too because they are labelled data the run uses (to choose its
best epoch): "20 %" means 20 % of the labelled persons outside the test set, not 20 % of the
training persons plus all of the validation persons.

Persons whose scans carry no usable label (unknown, or not in `classes`) are left out and
reported in `Split.excluded`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from smmt_core.data.data_config import DataConfig
from smmt_core.data.subject import DIAGNOSES, Subject
from smmt_core.errors import ConfigError, DataError
from smmt_core.settings import check_setting

PARTS = ("train", "val", "test")


@dataclass
class Split:
    """Which persons (subject ids) train, validate and test.

    unused: training and validation persons left out by `fraction` < 1. excluded: persons without a usable label.
    classes: the labels that were kept (None: every known label).
    """

    train: list[str]
    val: list[str]
    test: list[str]
    seed: int = 0
    fraction: float = 1.0
    fold: int | None = None
    n_folds: int | None = None
    unused: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    classes: list[str] | None = None
    notes: list[str] = field(default_factory=list)

    def __post_init__(self):
        self._parts = {}
        for part in PARTS:
            for sid in getattr(self, part):
                if sid in self._parts:
                    raise DataError(f"subject {sid} is in both {self._parts[sid]} and {part}")
                self._parts[sid] = part

    def part_of(self, subject_id: str) -> str | None:
        """"train", "val", "test", or None for persons the split does not use."""
        return self._parts.get(subject_id)

    def _usable(self, subject: Subject) -> bool:
        return subject.label is not None and (self.classes is None or subject.label in self.classes)

    def select(self, subjects: Iterable[Subject], part: str) -> list[Subject]:
        """The scans (with a usable label) of the persons in `part`, in input order."""
        if part not in PARTS:
            raise ConfigError(f"unknown split part {part!r}; choose one of {', '.join(PARTS)}")
        return [s for s in subjects if self.part_of(s.subject_id) == part and self._usable(s)]

    def to_frame(self, subjects: Iterable[Subject]) -> pd.DataFrame:
        """One row per scan: subject_id, session, label, part.

        part is train/val/test, "unused" (left out by the fraction) or "excluded" (no usable label).
        """
        unused = set(self.unused)
        rows = []
        for s in subjects:
            part = self.part_of(s.subject_id)
            if part is None or not self._usable(s):
                part = "unused" if s.subject_id in unused and self._usable(s) else "excluded"
            rows.append({"subject_id": s.subject_id, "session": s.session, "label": s.label, "part": part})
        return pd.DataFrame(rows, columns=["subject_id", "session", "label", "part"])

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, *, seed: int = 0, fraction: float = 1.0) -> "Split":
        """Rebuild a split from `to_frame` output (e.g. a run's split.csv)."""
        missing = {"subject_id", "part"} - set(frame.columns)
        if missing:
            raise DataError(f"split table lacks column(s): {', '.join(sorted(missing))}")
        ids: dict[str, dict[str, None]] = {p: {} for p in (*PARTS, "unused", "excluded")}  # ordered sets
        for sid, part in zip(frame["subject_id"].astype(str), frame["part"].astype(str)):
            if part not in ids:
                raise DataError(f"split table: unknown part {part!r} for subject {sid}")
            ids[part][sid] = None
        in_split = set(ids["train"]) | set(ids["val"]) | set(ids["test"])
        excluded = [s for s in ids["excluded"] if s not in in_split]
        return cls(list(ids["train"]), list(ids["val"]), list(ids["test"]), seed=seed, fraction=fraction,
                   unused=list(ids["unused"]), excluded=excluded)

    def summary(self) -> str:
        text = f"{len(self.train)} train, {len(self.val)} validation, {len(self.test)} test persons"
        if self.fold is not None:
            text += f" (fold {self.fold + 1} of {self.n_folds})"
        return text


# ----------------------------------------------------------------------------------------------


def _persons(subjects: Sequence[Subject], classes) -> tuple[list[str], list[str], list[str]]:
    """Sorted person ids with their stratification label, plus the excluded persons.

    A person's label is the most frequent label of their scans (ties: the later diagnosis,
    e.g. a CN -> AD converter counts as AD).
    """
    allowed = set(classes) if classes is not None else None
    labels: dict[str, list[str]] = {}
    all_ids: set[str] = set()
    for s in subjects:
        all_ids.add(s.subject_id)
        if s.label is not None and (allowed is None or s.label in allowed):
            labels.setdefault(s.subject_id, []).append(s.label)
    order = {d: i for i, d in enumerate(DIAGNOSES)}
    ids = sorted(labels)
    strata = []
    for sid in ids:
        counts = Counter(labels[sid])
        strata.append(max(counts, key=lambda lab: (counts[lab], order.get(lab, -1), lab)))
    excluded = sorted(all_ids - set(labels))
    return ids, strata, excluded


def _check_classes(strata: list[str], needed: int, what: str) -> None:
    counts = Counter(strata)
    if len(counts) < 2:
        found = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "none"
        raise DataError(f"need persons of at least two classes to split, found {found}")
    small = {k: v for k, v in counts.items() if v < needed}
    if small:
        text = ", ".join(f"{k} has {v}" for k, v in sorted(small.items()))
        raise DataError(f"too few persons per class for a stratified {what}: {text}; "
                        f"each class needs at least {needed}")


def _check_sizes(test_size: float | None, val_size: float, fraction: float) -> None:
    """The sizes as the data config declares them (`DataConfig`: bounds, and persons left to train),
    so a split made outside a config refuses exactly what a config would."""
    for name, value in (("test_size", test_size), ("val_size", val_size), ("fraction", fraction)):
        if value is not None:
            check_setting(DataConfig, name, value)
    problem = DataConfig.held_out_problem(val_size, test_size) if test_size is not None else None
    if problem:
        raise ConfigError(f"data: {problem}")


def _stratified_holdout(ids: list[str], strata: list[str], n_out: int, seed: int, what: str):
    """Split ids into (kept, held out) with n_out held out, stratified; DataError when impossible."""
    from sklearn.model_selection import StratifiedShuffleSplit

    n_classes = len(set(strata))
    if n_out < n_classes or len(ids) - n_out < n_classes:
        raise DataError(
            f"cannot draw a stratified {what} of {n_out} from {len(ids)} persons with {n_classes} classes; "
            "add subjects or change the split sizes"
        )
    sss = StratifiedShuffleSplit(n_splits=1, test_size=n_out, random_state=seed)
    try:
        keep_idx, out_idx = next(sss.split(np.zeros(len(ids)), strata))
    except ValueError as exc:
        raise DataError(f"cannot draw a stratified {what}: {exc}") from None
    return [ids[i] for i in sorted(keep_idx)], [ids[i] for i in sorted(out_idx)]


def _carve_val(ids, strata, n_total, val_size, seed):
    if val_size <= 0:
        return ids, [], strata
    label_of = dict(zip(ids, strata))
    n_classes = len(set(strata))
    n_val = max(int(round(val_size * n_total)), n_classes)
    rest, val = _stratified_holdout(ids, strata, n_val, seed, "validation set")
    return rest, val, [label_of[i] for i in rest]


def _subsample(ids: list[str], strata: list[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Nested, stratified subsample: per class a seeded permutation, the first round(f * n) kept.

    The permutation does not depend on `fraction`, so smaller fractions are prefixes of larger
    ones; every class keeps at least one person.
    """
    if fraction >= 1.0:
        return list(ids), []
    rng = np.random.default_rng(seed)
    keep: set[str] = set()
    for label in sorted(set(strata)):
        members = sorted(i for i, s in zip(ids, strata) if s == label)
        perm = [members[j] for j in rng.permutation(len(members))]
        n_keep = max(1, int(math.floor(fraction * len(members) + 0.5)))
        keep.update(perm[:n_keep])
    return [i for i in ids if i in keep], [i for i in ids if i not in keep]


def _shrink(train, train_strata, val, label_of, fraction, seed):
    """(train, val, unused): the data fraction applied to the training and validation persons alike."""
    train, unused_train = _subsample(train, train_strata, fraction, seed)
    val, unused_val = _subsample(val, [label_of[i] for i in val], fraction, seed + 1)
    return train, val, unused_train + unused_val


def split_subjects(subjects: Iterable[Subject], *, test_size: float = 0.2, val_size: float = 0.15,
                   seed: int = 0, fraction: float = 1.0, classes: Sequence[str] | None = None) -> Split:
    """A stratified person-level hold-out split (see the module doc for the guarantees).

    test_size and val_size are fractions of all labelled persons; `fraction` keeps that share of
    the training persons. `classes` (e.g. ["CN", "AD"]) keeps only scans with those labels.
    """
    _check_sizes(test_size, val_size, fraction)
    subjects = list(subjects)
    ids, strata, excluded = _persons(subjects, classes)
    _check_classes(strata, 3 if val_size > 0 else 2, "train/validation/test split")
    n = len(ids)
    label_of = dict(zip(ids, strata))
    n_test = max(int(round(test_size * n)), len(set(strata)))
    rest, test = _stratified_holdout(ids, strata, n_test, seed, "test set")
    rest, val, rest_strata = _carve_val(rest, [label_of[i] for i in rest], n, val_size, seed)
    train, val, unused = _shrink(rest, rest_strata, val, label_of, fraction, seed)
    return Split(train, val, test, seed=seed, fraction=fraction, unused=unused, excluded=excluded,
                 classes=list(classes) if classes is not None else None, notes=_notes(excluded))


def kfold_split(subjects: Iterable[Subject], *, n_folds: int = 5, fold: int = 0, val_size: float = 0.15,
                seed: int = 0, fraction: float = 1.0, classes: Sequence[str] | None = None) -> Split:
    """Fold `fold` of a stratified person-level k-fold: that fold tests, the rest train/validate.

    Across folds 0..n_folds-1 every labelled person is tested exactly once.
    """
    from sklearn.model_selection import StratifiedKFold

    if not (isinstance(n_folds, int) and n_folds >= 2):
        raise ConfigError(f"number of folds must be an integer of at least 2, got {n_folds!r}")
    if not (isinstance(fold, int) and 0 <= fold < n_folds):
        raise ConfigError(f"fold must be from 0 to {n_folds - 1}, got {fold!r}")
    _check_sizes(None, val_size, fraction)
    subjects = list(subjects)
    ids, strata, excluded = _persons(subjects, classes)
    _check_classes(strata, n_folds + (1 if val_size > 0 else 0), f"{n_folds}-fold split")
    skf = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    rest_idx, test_idx = list(skf.split(np.zeros(len(ids)), strata))[fold]
    label_of = dict(zip(ids, strata))
    rest = [ids[i] for i in sorted(rest_idx)]
    test = [ids[i] for i in sorted(test_idx)]
    rest, val, rest_strata = _carve_val(rest, [label_of[i] for i in rest], len(ids), val_size, seed)
    train, val, unused = _shrink(rest, rest_strata, val, label_of, fraction, seed)
    return Split(train, val, test, seed=seed, fraction=fraction, fold=fold, n_folds=n_folds, unused=unused,
                 excluded=excluded, classes=list(classes) if classes is not None else None,
                 notes=_notes(excluded))


def _notes(excluded: list[str]) -> list[str]:
    if not excluded:
        return []
    return [f"{len(excluded)} person(s) without a usable label were left out: "
            f"{', '.join(excluded[:10])}{' …' if len(excluded) > 10 else ''}"]


def split_for_config(subjects: Iterable[Subject], data: DataConfig, model_seed: int) -> Split:
    """The split a training run uses, from its data settings (`TrainConfig.data`).

    The one place that turns settings into a split, so that a run, the baselines scored beside it
    and a reader of its split.csv always mean the same persons. The split seed defaults to the
    model seed.
    """
    seed = data.split_seed if data.split_seed is not None else model_seed
    classes = list(data.classes)
    if data.n_folds:
        return kfold_split(subjects, n_folds=data.n_folds, fold=data.fold or 0, val_size=data.val_size,
                           seed=seed, fraction=data.fraction, classes=classes)
    return split_subjects(subjects, test_size=data.test_size, val_size=data.val_size, seed=seed,
                          fraction=data.fraction, classes=classes)
