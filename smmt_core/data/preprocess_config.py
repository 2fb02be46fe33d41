"""`PreprocessConfig`: the MRI preprocessing settings, declared once with their bounds and help.

Part of every checkpoint and of every cache key; the training config holds one as its
`preprocess` section, and the CLI's flags and the wizard's ranges are read from these
declarations. Kept apart from the preprocessing itself (`smmt_core.data.preprocess`, which needs
numpy, nibabel and nilearn) so that reading the settings imports nothing heavy: building the
`smmt` parser, or a GUI form, must not load the science stack.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import model_validator

from smmt_core.modalities import PLANES  # noqa: F401 (the planes the slices are cut in; re-exported)
from smmt_core.settings import Settings, setting

# Bump when the algorithm or the slice positions change, so that old cache entries are not
# reused. 2: the axial band moved up to include the lateral ventricles (was z = -20..+4 mm).
PREPROCESS_VERSION = 2

# What the model gets: a few 2D slices (demo, paper presets) or the whole brain as 3D patches.
INPUT_KINDS = ("slices", "volume")


class PreprocessConfig(Settings):
    """The preprocessing settings; part of every checkpoint and of every cache key."""

    resolution_mm: float = setting(2.0, "MNI grid spacing in mm", flag="--resolution", ge=0.5, le=8.0)
    plane: Literal[PLANES] = setting("axial", "slice plane")
    n_slices: int = setting(3, "slices per scan", flag="--slices", ge=1, le=64)
    image_size: int = setting(64, "slice size in pixels", ge=8, le=1024)
    channels: int = setting(1, "channels per slice (the paper replicates to 3)", ge=1, le=4)
    input: Literal[INPUT_KINDS] = setting(
        "slices", "MRI input: 2D slices, or the whole brain cropped from the MNI grid and cut into 3D patch tokens",
        flag="--mri-input")
    patch_mm: float = setting(8.0, "volume input: side of a 3D patch token in mm (a multiple of the grid spacing)",
                              ge=1.0, le=64.0)

    SECTION: ClassVar[str] = "preprocess"  # names the section in error messages

    @model_validator(mode="after")
    def _whole_voxel_patches(self):
        if self.input == "volume":
            ratio = self.patch_mm / self.resolution_mm
            if abs(ratio - round(ratio)) > 1e-6 or round(ratio) < 1:
                raise ValueError(f"patch_mm ({self.patch_mm:g}) must be a whole number of voxels of "
                                 f"resolution_mm ({self.resolution_mm:g}), e.g. 8 mm patches at 2 mm")
        return self

    @property
    def is_volume(self) -> bool:
        return self.input == "volume"

    @property
    def mri_shape(self) -> tuple[int, ...]:
        """The model's MRI input: (slices, channels, height, width), or (X, Y, Z) of the brain crop."""
        if self.is_volume:
            from smmt_core.data.volume import volume_geometry

            return volume_geometry(self.resolution_mm, self.patch_mm).shape
        return (self.n_slices, self.channels, self.image_size, self.image_size)

    @property
    def volume_spec(self) -> dict | None:
        """What a model needs to rebuild the token geometry (`FeatureSchema.mri_volume`); None for slices."""
        if not self.is_volume:
            return None
        return {"resolution_mm": float(self.resolution_mm), "patch_mm": float(self.patch_mm)}

    def key(self) -> str:
        """A stable string for cache keys and file names (same settings -> same key)."""
        if self.is_volume:  # the crop is grown to whole patches, so it depends on the patch size
            return f"v{PREPROCESS_VERSION}-res{self.resolution_mm:g}mm-volume-p{self.patch_mm:g}"
        return (
            f"v{PREPROCESS_VERSION}-res{self.resolution_mm:g}mm-{self.plane}-s{self.n_slices}"
            f"-i{self.image_size}-c{self.channels}"
        )

    def to_dict(self) -> dict:
        """The settings plus the algorithm version, so that a checkpoint can tell it is out of date."""
        return {**super().to_dict(), "version": PREPROCESS_VERSION}


    @classmethod
    def from_dict(cls, d: dict) -> "PreprocessConfig":
        return cls(**{k: v for k, v in d.items() if k != "version"})
