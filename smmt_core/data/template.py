"""The MNI152 template every scan is resampled onto: its grid, brain mask and display slices.

One floor below preprocessing, the intake's QC and the volume geometry, which all measure against
the same template (loaded once per process and resolution). nilearn is imported only when a
template is first loaded or an image resampled.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass

import numpy as np

# Voxels of the (0..1 scaled) MNI152 template above this value form the brain mask; the same
# threshold as nilearn.datasets.load_mni152_brain_mask.
BRAIN_MASK_THRESHOLD = 0.2


@functools.lru_cache(maxsize=1)
def resample_kwargs() -> dict:
    """nilearn >= 0.11 warns unless these are given explicitly; older versions do not know them."""
    import inspect

    from nilearn import image

    params = inspect.signature(image.resample_img).parameters
    return {k: True for k in ("copy_header", "force_resample") if k in params}


@dataclass(frozen=True)
class MNITemplate:
    """The MNI152 T1 template scaled to 0..1, its affine, and its brain mask (template > 0.2)."""

    data: np.ndarray  # float32, 0..1
    affine: np.ndarray
    mask: np.ndarray  # bool
    centred: np.ndarray  # template values inside the mask minus their mean (for correlations)
    norm: float  # Euclidean norm of `centred`

    def correlation(self, values: np.ndarray) -> float:
        """Pearson r between the template and `values` (taken inside the mask); 0 if undefined."""
        v = values.astype(np.float64) - float(values.mean(dtype=np.float64))
        denom = float(np.sqrt(v @ v)) * self.norm
        r = float(v @ self.centred) / denom if denom > 0 else 0.0
        return r if np.isfinite(r) else 0.0


_TEMPLATES: dict[float, MNITemplate] = {}
_TEMPLATE_LOCK = threading.Lock()


def mni_template(resolution_mm: float) -> MNITemplate:
    """The nilearn MNI152 (ICBM 2009) T1 template and its brain mask at `resolution_mm`."""
    res = float(resolution_mm)
    with _TEMPLATE_LOCK:
        if res not in _TEMPLATES:
            from nilearn import datasets, image

            if res.is_integer():
                img = datasets.load_mni152_template(resolution=int(res))
            else:  # what load_mni152_template does for integer resolutions
                img = image.resample_img(datasets.load_mni152_template(resolution=1), np.eye(3) * res,
                                         interpolation="continuous", **resample_kwargs())
            data = np.asarray(img.get_fdata(), dtype=np.float32)
            data = np.ascontiguousarray(data / max(float(data.max()), 1e-6))
            mask = data > BRAIN_MASK_THRESHOLD
            centred = data[mask].astype(np.float64)
            centred -= centred.mean()
            _TEMPLATES[res] = MNITemplate(data=data, affine=np.asarray(img.affine), mask=mask, centred=centred,
                                          norm=float(np.sqrt(centred @ centred)))
        return _TEMPLATES[res]


def extract_slice(volume: np.ndarray, plane: str, index: int) -> np.ndarray:
    """One 2D slice of a RAS volume in display orientation: axial slices with anterior up and the
    subject's right on the right (neurological), coronal and sagittal slices with superior up."""
    if plane == "axial":
        sl = volume[:, :, index]  # (X, Y)
    elif plane == "coronal":
        sl = volume[:, index, :]  # (X, Z)
    else:
        sl = volume[index, :, :]  # (Y, Z)
    # rows: last kept axis, flipped so anterior / superior is at the top; columns: first kept axis
    return np.ascontiguousarray(sl.T[::-1])
