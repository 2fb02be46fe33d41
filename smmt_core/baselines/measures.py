"""Design matrices for the baselines: clinical features, regional image measures, pixels.

Regional measures are the field's classic hippocampal-volume baseline, computed in MNI space from
the preprocessed scan (the MNI-grid volume the model's slices are cut from, intensities scaled to
[0, 1]), in regions defined on the template alone (`demo_anatomy.template_region`: the template's
hippocampal grey matter inside two ellipsoids around (±27, −24, −12) mm, and the template's
ventricle core), never on a subject's labels or on the demo's generating parameters:

- hippocampus: mean tissue fraction inside the template hippocampal region — each voxel's
  intensity placed between this scan's CSF level (median in the ventricle core) and white-matter
  level (median in deep white matter), so atrophy (tissue turning to CSF) lowers it;
- ventricle shell: mean tissue fraction in a 2-voxel shell around the template ventricles — the
  ventricles widening into that shell lowers it.

A subject without a T1 gets NaN rows; the pipelines impute the training mean and add a missing
indicator.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from smmt_core.data.subject import Subject
from smmt_core.errors import DataError

REGIONAL_MEASURES = ("hippocampus_tissue", "ventricle_shell_tissue")
SHELL_VOXELS = 2


@functools.lru_cache(maxsize=4)
def _regions(shape: tuple[int, int, int], affine_key: tuple) -> dict[str, np.ndarray]:
    """Template regions on the preprocessed grid (cached: the same grid for every scan of a run)."""
    import nibabel as nib
    from scipy import ndimage as ndi

    from smmt_core.data.demo_anatomy import template_region

    reference = nib.Nifti1Image(np.zeros(shape, dtype=np.uint8), np.asarray(affine_key).reshape(4, 4))
    hippocampus = template_region("hippocampus", reference)
    ventricles = template_region("csf", reference)
    white = template_region("white_matter", reference)
    shell = ndi.binary_dilation(ventricles, iterations=SHELL_VOXELS) & ~ventricles
    return {"hippocampus": hippocampus, "ventricles": ventricles, "white_matter": white, "shell": shell}


def regional_measures(volume: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """(hippocampal tissue fraction, ventricle-shell tissue fraction) of one MNI-grid volume."""
    regions = _regions(tuple(volume.shape), tuple(np.asarray(affine, dtype=float).ravel()))
    brain = volume > 0
    levels = []
    for name in ("ventricles", "white_matter"):
        inside = regions[name] & brain
        if inside.sum() < 10:
            raise DataError(f"the template {name} region holds almost no brain voxels (not in MNI space?)")
        levels.append(float(np.median(volume[inside])))
    csf, wm = levels
    if wm <= csf:
        raise DataError("white matter is not brighter than CSF (not a T1-weighted image?)")

    def tissue(mask):
        values = volume[mask & brain]
        return float(np.clip((values - csf) / (wm - csf), 0.0, 1.0).mean()) if values.size else np.nan

    return np.array([tissue(regions["hippocampus"]), tissue(regions["shell"])], dtype=np.float64)


def image_arrays(subjects: Sequence[Subject], preprocess, cache, *, volumes: bool, pixels: bool):
    """(regional measures (N, 2) or None, pixels (N, S·H·W) or None) from the model's preprocessing.

    Rows of subjects without a T1 are NaN.
    """
    s, _, h, w = preprocess.mri_shape
    measures = np.full((len(subjects), len(REGIONAL_MEASURES)), np.nan) if volumes else None
    flat = np.full((len(subjects), s * h * w), np.nan, dtype=np.float32) if pixels else None
    for i, subject in enumerate(subjects):
        if subject.t1_path is None:
            continue
        result = cache.get(subject.t1_path, preprocess, load_volume=volumes)
        if volumes:
            measures[i] = regional_measures(result.volume, result.affine)
        if pixels:
            flat[i] = result.slices[:, 0].reshape(-1)
    return measures, flat


def clinical_matrix(encoder, subjects: Sequence[Subject]) -> np.ndarray:
    """Numeric features (encoder-normalised; NaN where missing) and one-hot categorical codes.

    A missing (or unseen) category makes its whole one-hot block NaN, not zero: the pipelines then
    impute the training persons' category shares and add a missing indicator, as for a number,
    instead of reading "missing" as a category of its own that training may never have shown.
    """
    numeric, missing, categorical = encoder.transform(list(subjects))
    numeric = np.where(missing.astype(bool), np.nan, numeric).astype(np.float64)
    columns = [numeric]
    for j, name in enumerate(encoder.categorical_names):
        size = len(encoder.categories.get(name, []))
        onehot = np.zeros((len(subjects), size), dtype=np.float64)
        codes = categorical[:, j]
        known = (codes > 0) & (codes <= size)
        onehot[np.flatnonzero(known), codes[known] - 1] = 1.0
        onehot[~known] = np.nan
        columns.append(onehot)
    return np.concatenate(columns, axis=1) if columns else np.zeros((len(subjects), 0))
