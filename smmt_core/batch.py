"""The tensor contract between the data layer and the model.

`smmt_core.data` turns subjects into `ModelInputs`; `smmt_core.model` consumes them. Keeping this
in one small module lets both sides change freely as long as this shape holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch

from smmt_core.modalities import ALL_MODALITIES, Modality

# Column order of `ModelInputs.present`.
MODALITY_INDEX: dict[Modality, int] = {m: i for i, m in enumerate(ALL_MODALITIES)}
# A bound on every name list of a schema read from a file (features, categories, classes).
MAX_SCHEMA_NAMES = 1000


@dataclass
class FeatureSchema:
    """What the model was built for; stored in every checkpoint and compared on load.

    numeric: names of numeric clinical features, in column order.
    categorical: name -> list of category values (code i+1 is categories[i]; 0 = missing).
    mri_shape: (slices, channels, height, width) of the MRI slices, (X, Y, Z) of a whole-brain
               volume crop, or None without MRI.
    classes: class names in logit order, e.g. ["CN", "AD"].
    mri_volume: for a volume input, {"resolution_mm", "patch_mm"}: what fixes the crop and which
               3D patches are tokens (`smmt_core.data.volume.volume_geometry`); None for slices.
    """

    numeric: list[str] = field(default_factory=list)
    categorical: dict[str, list[str]] = field(default_factory=dict)
    mri_shape: tuple[int, ...] | None = None
    classes: list[str] = field(default_factory=lambda: ["CN", "AD"])
    mri_volume: dict | None = None

    @property
    def is_volume(self) -> bool:
        return self.mri_volume is not None

    def to_dict(self) -> dict:
        out = {
            "numeric": list(self.numeric),
            "categorical": {k: list(v) for k, v in self.categorical.items()},
            "mri_shape": list(self.mri_shape) if self.mri_shape else None,
            "classes": list(self.classes),
        }
        if self.mri_volume is not None:  # absent for slices: older schemas compare equal
            out["mri_volume"] = dict(self.mri_volume)
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureSchema":
        """Rebuild from `to_dict`; ValueError saying which entry is malformed (e.g. a hand-edited file)."""
        if not isinstance(d, dict):
            raise ValueError(f"schema must be a JSON object, got {type(d).__name__}")

        def names(value, what: str) -> list[str]:
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"schema {what} must be a list of names, got {str(value)[:200]}")
            if len(value) > MAX_SCHEMA_NAMES:
                raise ValueError(f"schema {what} lists {len(value)} names (at most {MAX_SCHEMA_NAMES})")
            return list(value)

        categorical = d.get("categorical", {})
        if isinstance(categorical, dict) and len(categorical) > MAX_SCHEMA_NAMES:
            raise ValueError(f"schema categorical lists {len(categorical)} variables (at most {MAX_SCHEMA_NAMES})")
        if not isinstance(categorical, dict):
            raise ValueError(f"schema categorical must map names to category lists, got {categorical!r}")
        volume = d.get("mri_volume")
        if volume is not None and not (
            isinstance(volume, dict) and set(volume) == {"resolution_mm", "patch_mm"}
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 64 for v in volume.values())
        ):
            raise ValueError(f"schema mri_volume must be null or {{resolution_mm, patch_mm}} in mm, got {volume!r}")
        shape = d.get("mri_shape")
        rank = 3 if volume is not None else 4
        if shape is not None and not (
            isinstance(shape, (list, tuple)) and len(shape) == rank
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape)
        ):
            raise ValueError(f"schema mri_shape must be null or {rank} positive integers, got {shape!r}")
        return cls(
            numeric=names(d.get("numeric", []), "numeric"),
            categorical={k: names(v, f"categories of {k}") for k, v in categorical.items()},
            mri_shape=tuple(shape) if shape else None,
            classes=names(d.get("classes", ["CN", "AD"]), "classes"),
            mri_volume={k: float(v) for k, v in volume.items()} if volume is not None else None,
        )

    def differences(self, other: "FeatureSchema") -> list[str]:
        """Human-readable differences, empty when the two schemas match."""
        out = []
        a, b = self.to_dict(), other.to_dict()
        for key in a:
            if a[key] != b[key]:
                out.append(f"{key}: {a[key]} != {b[key]}")
        return out


@dataclass
class ModelInputs:
    """A batch of B samples.

    mri:             (B, S, C, H, W) slices or (B, X, Y, Z) a volume crop, float32 in [0, 1];
                     zeros where a sample has no MRI.
    numeric:         (B, F) float32, normalised with training statistics; 0 where missing.
    numeric_missing: (B, F) bool, True where a value is missing.
    categorical:     (B, G) int64 category codes, 0 = missing/unknown.
    present:         (B, 3) bool, which modalities a sample has (column order MODALITY_INDEX).
                     A modality switched off by the user is simply marked absent here.
    """

    mri: torch.Tensor
    numeric: torch.Tensor
    numeric_missing: torch.Tensor
    categorical: torch.Tensor
    present: torch.Tensor

    def to(self, device) -> "ModelInputs":
        return ModelInputs(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    @property
    def batch_size(self) -> int:
        return self.present.shape[0]

    def without(self, *modalities: Modality) -> "ModelInputs":
        """The same batch with some modalities marked absent (for toggles and contributions)."""
        present = self.present.clone()
        for m in modalities:
            present[:, MODALITY_INDEX[Modality(m)]] = False
        return ModelInputs(self.mri, self.numeric, self.numeric_missing, self.categorical, present)
