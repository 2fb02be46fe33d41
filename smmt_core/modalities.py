"""The modality vocabulary: SMMT's three inputs and the MRI's three planes, declared once.

The order is the one everything uses: the model's modality index, the masks, the GUI's toggles and
every table. Kept apart from data/ (and below it) so that the batch, the model's settings, the
command line and the GUI can name a modality without importing the data readers.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from enum import Enum


class Modality(str, Enum):
    """The three input modalities of SMMT. Any of them may be absent for a subject."""

    MRI = "mri"
    CLINICAL = "clinical"  # numeric clinical scores (MMSE, CDR, FAQ, age, ...)
    CATEGORICAL = "categorical"  # categorical variables (sex, APOE4, ...)


ALL_MODALITIES: tuple[Modality, ...] = tuple(Modality)
MODALITY_NAMES: tuple[str, ...] = tuple(m.value for m in ALL_MODALITIES)
# The planes of the MRI slices and of the viewer, in display order.
PLANES: tuple[str, ...] = ("axial", "coronal", "sagittal")
ALL_NAME = "+".join(MODALITY_NAMES)  # "mri+clinical+categorical": a subset's name in every table


def modality_subsets() -> list[tuple[Modality, ...]]:
    """Every non-empty subset of the three modalities, largest first, in the canonical order."""
    out = []
    for size in range(len(ALL_MODALITIES), 0, -1):
        out.extend(itertools.combinations(ALL_MODALITIES, size))
    return out


def subset_name(modalities: Sequence[Modality]) -> str:
    return "+".join(Modality(m).value for m in modalities)


# The share of each modality's features masked in a robustness sweep (0 to 0.9, as the paper's).
DEFAULT_MASK_RATIOS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
