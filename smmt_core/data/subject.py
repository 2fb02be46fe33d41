"""The one subject model that every data layout maps to.

A loader (subject folder, BIDS, ADNI + ADNIMERGE, OASIS-1, demo cohort) turns what it finds on
disk into `Subject` records collected in a `Cohort`. Everything downstream (preprocessing,
features, splits, training, prediction, the GUI tables) reads only these two classes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from smmt_core.modalities import ALL_MODALITIES, Modality  # noqa: F401 (the subject model's vocabulary, re-exported)

if TYPE_CHECKING:
    import pandas as pd


DIAGNOSES: tuple[str, ...] = ("CN", "MCI", "AD")
# Label sets a model can be trained on: name -> classes in logit order.
LABEL_SETS: dict[str, list[str]] = {"ad-cn": ["CN", "AD"], "cn-mci-ad": ["CN", "MCI", "AD"]}


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


@dataclass
class Subject:
    """One scan of one person, with the clinical data matched to it.

    `subject_id` identifies the *person* (splits group on it); `session` tells visits apart.
    Missing numeric values are NaN, missing categorical values are None.
    """

    subject_id: str
    label: str | None = None  # "CN", "MCI", "AD" or None when unknown
    t1_path: Path | None = None
    numeric: dict[str, float] = field(default_factory=dict)
    categorical: dict[str, str | None] = field(default_factory=dict)
    session: str | None = None
    source: str = ""  # which layout produced it: "folder", "bids", "adni", "oasis", "demo"
    notes: list[str] = field(default_factory=list)  # e.g. which of several scans was chosen
    synthetic: bool = False  # from a dataset that says it is SYNTHETIC (the demo cohort): the UI must say so

    @property
    def key(self) -> str:
        """Unique per scan: subject id plus session when there is one."""
        return f"{self.subject_id}/{self.session}" if self.session else self.subject_id

    def has(self, modality: Modality) -> bool:
        if modality is Modality.MRI:
            return self.t1_path is not None
        if modality is Modality.CLINICAL:
            return any(not _is_missing(v) for v in self.numeric.values())
        return any(not _is_missing(v) for v in self.categorical.values())

    @property
    def modalities(self) -> set[Modality]:
        return {m for m in ALL_MODALITIES if self.has(m)}


@dataclass
class Cohort:
    """A table of subjects from one dataset, plus what the loader noticed on the way."""

    subjects: list[Subject]
    layout: str  # "folder", "bids", "adni", "oasis"
    root: Path
    name: str = ""
    synthetic: bool = False  # True for the demo cohort: the UI must say SYNTHETIC
    problems: list[str] = field(default_factory=list)  # non-fatal findings, shown by `validate`

    def __len__(self) -> int:
        return len(self.subjects)

    def __iter__(self):
        return iter(self.subjects)

    def labels(self) -> list[str | None]:
        return [s.label for s in self.subjects]

    def to_frame(self) -> pd.DataFrame:
        """One row per scan: id, session, label, modalities and every clinical value."""
        import pandas as pd  # heavy, and only this method needs it: reading LABEL_SETS stays light

        rows = []
        for s in self.subjects:
            row = {
                "subject_id": s.subject_id,
                "session": s.session,
                "label": s.label,
                "t1_path": str(s.t1_path) if s.t1_path else None,
                "modalities": ",".join(sorted(m.value for m in s.modalities)),
            }
            row.update(s.numeric)
            row.update(s.categorical)
            rows.append(row)
        return pd.DataFrame(rows)
