"""Subjects -> tensors: a torch Dataset for training and `encode_subject` for one prediction.

Why preload: training reads every subject every epoch. Preprocessing (or even reading the disk
cache) per item would dominate the epoch, so `SubjectDataset` builds all slices and clinical
arrays once, in the constructor (through `MRICache`), and `__getitem__` only indexes arrays.
Slices are kept single-channel and replicated to `channels` on access, which keeps the paper
setting (3 channels of 256x256) affordable in memory.

Presence: a subject without a T1 file gets zero slices and present[mri] = False; clinical is
present when any of the encoder's numeric features has a value, categorical when any of its
categorical features has one. Absent modalities are what the model's cascade skips.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from smmt_core.batch import MODALITY_INDEX, ModelInputs
from smmt_core.data.features import FeatureEncoder
from smmt_core.data.preprocess import MRICache, PreprocessConfig, PreprocessedMRI, preprocess_scan
from smmt_core.data.subject import ALL_MODALITIES, Modality, Subject
from smmt_core.errors import ConfigError, DataError


def _preprocessed(path, preprocess: PreprocessConfig, cache: MRICache | None, load_volume: bool) -> PreprocessedMRI:
    if cache is not None:
        return cache.get(path, preprocess, load_volume=load_volume)
    result = preprocess_scan(path, preprocess)
    if not load_volume:
        result.volume = None
    return result


def parse_modalities(modalities: Iterable[Modality | str] | None) -> set[Modality]:
    """Modality names/enums switched on -> set of `Modality` (None = all); ConfigError if unknown."""
    if modalities is None:
        return set(ALL_MODALITIES)
    if isinstance(modalities, (str, Modality)):
        modalities = [modalities]
    out = set()
    for m in modalities:
        try:
            out.add(Modality(m.lower() if isinstance(m, str) and not isinstance(m, Modality) else m))
        except ValueError:
            raise ConfigError(
                f"unknown modality {m!r}; choose from {', '.join(x.value for x in ALL_MODALITIES)}"
            ) from None
    return out


class SubjectDataset(Dataset):
    """Model-ready samples for a list of subjects (one sample per scan), preloaded once.

    classes: class names in logit order; a subject whose label is not among them gets label -1.
    cache: where preprocessed MRI is stored (None: preprocess in memory, nothing written).
    on_progress(done, total): called after each subject's MRI is ready (for progress bars).
    skip_unreadable: True marks an unreadable MRI as absent and records why in `problems`;
                     False (default) raises the `DataError` that names the file.
    """

    def __init__(self, subjects: Sequence[Subject], encoder: FeatureEncoder, classes: Sequence[str],
                 preprocess: PreprocessConfig | None = None, cache: MRICache | None = None,
                 on_progress: Callable[[int, int], None] | None = None, *, skip_unreadable: bool = False):
        self.subjects = list(subjects)
        self.encoder = encoder
        self.classes = list(classes)
        self.preprocess = preprocess or PreprocessConfig()
        self.problems: list[str] = []
        self.warnings: list[str] = []
        n = len(self.subjects)

        self.numeric, self.numeric_missing, self.categorical = (
            torch.from_numpy(a) for a in encoder.transform(self.subjects)
        )
        if self.preprocess.is_volume:
            # Whole-brain crops in float16 (~1 MB a subject at 2 mm): converted per item.
            self.mri = torch.zeros((n, *self.preprocess.mri_shape), dtype=torch.float16)
        else:
            s, _, h, w = self.preprocess.mri_shape
            self.mri = torch.zeros((n, s, 1, h, w), dtype=torch.float32)
        self.present = torch.zeros((n, len(ALL_MODALITIES)), dtype=torch.bool)
        if self.numeric.shape[1]:  # clinical: any numeric feature has a value
            self.present[:, MODALITY_INDEX[Modality.CLINICAL]] = ~self.numeric_missing.all(dim=1)
        if self.categorical.shape[1]:  # categorical: any categorical feature has a known category
            self.present[:, MODALITY_INDEX[Modality.CATEGORICAL]] = (self.categorical > 0).any(dim=1)
        index_of = {c: i for i, c in enumerate(self.classes)}
        self.labels = torch.tensor([index_of.get(sub.label, -1) for sub in self.subjects], dtype=torch.long)

        mri_col = MODALITY_INDEX[Modality.MRI]
        for i, sub in enumerate(self.subjects):
            if sub.t1_path is not None:
                try:
                    result = _preprocessed(sub.t1_path, self.preprocess, cache, load_volume=False)
                except DataError as exc:
                    if not skip_unreadable:
                        raise
                    self.problems.append(f"{sub.key}: MRI left out: {exc}")
                else:
                    model_input = result.slices if self.preprocess.is_volume else result.slices[:, :1]
                    self.mri[i] = torch.from_numpy(np.ascontiguousarray(model_input))
                    self.present[i, mri_col] = True
                    self.warnings.extend(f"{sub.key}: {w}" for w in result.warnings)
            if on_progress is not None:
                on_progress(i + 1, n)

    def __len__(self) -> int:
        return len(self.subjects)

    def __getitem__(self, index: int) -> dict:
        if index < 0:
            index += len(self)
        channels = self.preprocess.channels
        mri = self.mri[index]
        if self.preprocess.is_volume:
            mri = mri.float()
        elif channels > 1:
            mri = mri.expand(-1, channels, -1, -1)
        return {
            "mri": mri,
            "numeric": self.numeric[index],
            "numeric_missing": self.numeric_missing[index],
            "categorical": self.categorical[index],
            "present": self.present[index],
            "label": int(self.labels[index]),
            "index": index,
        }

    @property
    def mri_shape(self) -> tuple[int, ...]:
        return self.preprocess.mri_shape

    def class_counts(self) -> dict[str, int]:
        """Samples per class (labels outside `classes` are not counted)."""
        return {c: int((self.labels == i).sum()) for i, c in enumerate(self.classes)}


def collate(items: Sequence[dict]) -> tuple[ModelInputs, torch.Tensor]:
    """A list of `SubjectDataset` items -> (ModelInputs, labels LongTensor (B,)); for DataLoader."""
    if not items:
        raise ValueError("cannot collate an empty batch")
    inputs = ModelInputs(
        mri=torch.stack([it["mri"] for it in items]).contiguous(),
        numeric=torch.stack([it["numeric"] for it in items]),
        numeric_missing=torch.stack([it["numeric_missing"] for it in items]),
        categorical=torch.stack([it["categorical"] for it in items]),
        present=torch.stack([it["present"] for it in items]),
    )
    return inputs, torch.tensor([it["label"] for it in items], dtype=torch.long)


def encode_subject(subject: Subject, encoder: FeatureEncoder, preprocess: PreprocessConfig,
                   cache: MRICache | None = None,
                   modalities: Iterable[Modality | str] | None = None) -> tuple[ModelInputs, PreprocessedMRI | None]:
    """One subject as a batch of one, with some modalities switched off (None = all on).

    A modality that is switched off, or that the subject lacks, is marked absent (zeros).
    The `PreprocessedMRI` (with its volume, for viewers) is returned whenever the subject has a
    T1; errors reading it are raised when MRI is switched on and ignored (None) when it is off,
    since the prediction then does not use it.
    """
    on = parse_modalities(modalities)
    numeric, missing, categorical = encoder.transform([subject])
    present = torch.zeros((1, len(ALL_MODALITIES)), dtype=torch.bool)
    if Modality.CLINICAL in on and numeric.shape[1] and not missing.all():
        present[0, MODALITY_INDEX[Modality.CLINICAL]] = True
    if Modality.CATEGORICAL in on and categorical.shape[1] and (categorical > 0).any():
        present[0, MODALITY_INDEX[Modality.CATEGORICAL]] = True

    mri = torch.zeros((1, *preprocess.mri_shape), dtype=torch.float32)
    pre = None
    if subject.t1_path is not None:
        try:
            pre = _preprocessed(subject.t1_path, preprocess, cache, load_volume=True)
        except DataError:
            if Modality.MRI in on:
                raise
        if pre is not None and Modality.MRI in on:
            mri[0] = torch.from_numpy(np.ascontiguousarray(pre.slices))
            present[0, MODALITY_INDEX[Modality.MRI]] = True
    inputs = ModelInputs(
        mri=mri,
        numeric=torch.from_numpy(numeric),
        numeric_missing=torch.from_numpy(missing),
        categorical=torch.from_numpy(categorical),
        present=present,
    )
    return inputs, pre
