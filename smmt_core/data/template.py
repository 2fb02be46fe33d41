"""The MNI152 template every scan is resampled onto: its grid, brain mask and display slices.

One floor below preprocessing, the intake's QC and the volume geometry, which all measure against
the same template (loaded once per process and resolution). nilearn is imported only when a
template is first loaded or an image resampled.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from pathlib import Path

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
            data, affine = _template_arrays(res)
            mask = data > BRAIN_MASK_THRESHOLD
            centred = data[mask].astype(np.float64)
            centred -= centred.mean()
            _TEMPLATES[res] = MNITemplate(data=data, affine=affine, mask=mask, centred=centred,
                                          norm=float(np.sqrt(centred @ centred)))
        return _TEMPLATES[res]


TEMPLATE_CACHE_VERSION = 1


def template_cache_file(resolution_mm: float) -> Path:
    """Where the template at `resolution_mm` is kept between processes: beside the MRI cache, named
    by nilearn's version (whose template it is) and the resolution."""
    from importlib.metadata import version

    from smmt_core.data.cache_root import default_cache_dir

    name = f"mni152-v{TEMPLATE_CACHE_VERSION}-nilearn{version('nilearn')}-{float(resolution_mm):g}mm.npz"
    return default_cache_dir() / "templates" / name


def _template_arrays(res: float) -> tuple[np.ndarray, np.ndarray]:
    """The template scaled to 0..1 (float32) and its affine: from the disk cache, else from nilearn
    (then cached). Why a disk cache: loading it through nilearn.datasets imports scikit-learn and
    scipy.stats (about 1.8 s) and resampling the 1 mm template to the model's grid takes about 1.3 s,
    which was most of a fresh `smmt predict`. A cache file that cannot be read or does not hold a
    plausible template is ignored and written again; a cache that cannot be written is not an error."""
    path = template_cache_file(res)
    try:
        with np.load(path, allow_pickle=False) as stored:
            data, affine = np.asarray(stored["data"]), np.asarray(stored["affine"])
        if (data.ndim == 3 and data.dtype == np.float32 and affine.shape == (4, 4) and np.isfinite(affine).all()
                and np.isfinite(data).all() and 0.99 <= float(data.max()) <= 1.0 and float(data.min()) >= -1e-6):
            return np.ascontiguousarray(data), affine
    except (OSError, KeyError, ValueError, EOFError):
        pass
    data, affine = _template_from_nilearn(res)
    try:
        from smmt_core.fileio import atomic_write

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as handle:
                np.savez(handle, data=data, affine=affine)

        atomic_write(path, write)
    except OSError:
        pass  # a read-only or full cache: the next process loads it from nilearn again
    return data, affine


def _template_from_nilearn(res: float) -> tuple[np.ndarray, np.ndarray]:
    from nilearn import datasets, image

    if res.is_integer():
        img = datasets.load_mni152_template(resolution=int(res))
    else:  # what load_mni152_template does for integer resolutions
        img = image.resample_img(datasets.load_mni152_template(resolution=1), np.eye(3) * res,
                                 interpolation="continuous", **resample_kwargs())
    data = np.asarray(img.get_fdata(), dtype=np.float32)
    data = np.ascontiguousarray(data / max(float(data.max()), 1e-6))
    return data, np.asarray(img.affine, dtype=np.float64)


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
