"""The modality vocabulary: SMMT's three inputs and the MRI's three planes, declared once.

The order is the one everything uses: the model's modality index, the masks, the GUI's toggles and
every table. Kept apart from data/ (and below it) so that the batch, the model's settings, the
command line and the GUI can name a modality without importing the data readers.
"""

from __future__ import annotations

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
