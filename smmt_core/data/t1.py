"""Reading one T1 file: the checks every reader shares, and the file's content digest.

Below preprocessing, the intake and the viewers, which all read T1 files the same way, so that a
file refused by one is refused by all with the same message; and below the caches, which key
their entries by `file_digest`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from smmt_core.data.image_files import image_size_problem, image_stream_problem
from smmt_core.errors import DataError
from smmt_core.fileio import hash_file_into


def is_analyze_pair_member(path: Path) -> bool:
    """An Analyze image is two files (.hdr header, .img data): both make up its content."""
    return path.suffix.lower() in (".hdr", ".img")


def load_t1(path) -> "nibabel.Nifti1Image":  # noqa: F821 (nibabel imported lazily)
    """Read one T1 volume as a float32 `Nifti1Image`; `DataError` naming the file otherwise.

    Accepts NIfTI-1/2 (.nii, .nii.gz), MGH (.mgz) and Analyze (.hdr/.img). Trailing singleton
    dimensions (x, y, z, 1) are dropped. Refused: missing or unreadable files, anything that is
    not one 3D volume, data without a finite value, constant data and unusable affines.
    Isolated NaN/inf voxels become 0.
    """
    img, _ = read_t1(path)
    return img


def read_t1(path) -> tuple["nibabel.Nifti1Image", list[str]]:  # noqa: F821
    """`load_t1` plus its warnings (voxels set to 0), for callers that pass them on to the researcher."""
    import nibabel as nib
    from nibabel.filebasedimages import ImageFileError

    path = Path(path)
    if not path.exists():
        raise DataError("T1 image file not found", path)
    if path.is_dir():
        raise DataError("is a folder, expected a T1 image file (.nii, .nii.gz, .mgz, .hdr/.img)", path)
    try:
        img = nib.load(str(path))
    except ImageFileError as exc:
        raise DataError(f"not a readable MRI image ({exc})", path) from None
    except Exception as exc:  # corrupt headers raise many kinds of errors
        raise DataError(f"cannot read MRI header ({type(exc).__name__}: {exc})", path) from None
    # before the data are read: a lying header or a short compressed stream allocates nothing
    problem = image_size_problem(img, path) or image_stream_problem(img, path)
    if problem:
        raise DataError(problem, path)
    try:
        data = np.asarray(img.dataobj, dtype=np.float32)
    except Exception as exc:  # truncated gzip (EOFError), zlib.error, short file (OSError), ...
        raise DataError(f"cannot read image data, the file may be truncated or corrupt "
                        f"({type(exc).__name__}: {exc})", path) from None

    shape = data.shape
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        if data.ndim == 4:
            raise DataError(f"is a 4D image with {shape[3]} volumes (shape {shape}); "
                            "expected a single 3D T1 volume", path)
        raise DataError(f"has {len(shape)} dimension(s) (shape {shape}); expected a 3D T1 volume", path)
    if min(data.shape) < 2:
        raise DataError(f"has shape {shape}; a 3D T1 volume needs at least 2 voxels along each axis", path)

    warnings: list[str] = []
    finite = np.isfinite(data)
    if not finite.any():
        raise DataError("holds no finite values (all NaN or infinite)", path)
    if not finite.all():
        n_bad = int(data.size - finite.sum())
        warnings.append(f"{path.name}: {n_bad} NaN/infinite voxels were set to 0")
        data = np.where(finite, data, np.float32(0))
    if float(data.max()) == float(data.min()):
        raise DataError(f"is constant (every voxel is {float(data.min()):g}); not a T1 image", path)

    affine = np.asarray(img.affine, dtype=np.float64)
    if affine.shape != (4, 4) or not np.isfinite(affine).all() or abs(np.linalg.det(affine[:3, :3])) < 1e-8:
        raise DataError("has no usable voxel-to-world affine (singular or non-finite)", path)
    return nib.Nifti1Image(np.ascontiguousarray(data), affine), warnings


def companion_file(path: Path) -> Path | None:
    """The other half of an Analyze .hdr/.img pair, if it exists (either suffix case)."""
    if not is_analyze_pair_member(path):
        return None
    other = ".img" if path.suffix.lower() == ".hdr" else ".hdr"
    for suffix in (other, other.upper()):
        cand = path.with_suffix(suffix)
        if cand.exists():
            return cand
    return None


def file_digest(path) -> str:
    """sha256 of the file's contents (both halves for an Analyze .hdr/.img pair)."""
    path = Path(path)
    parts = [path]
    comp = companion_file(path)
    if comp is not None:
        parts = sorted([path, comp], key=lambda p: p.suffix.lower())  # .hdr before .img
    h = hashlib.sha256()
    for p in parts:
        hash_file_into(h, p)
    return h.hexdigest()
