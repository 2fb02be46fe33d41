"""N4 bias-field correction and affine registration to the MNI152 template, with ANTsPy.

Why ANTs: the reference implementation the field uses (Clinica t1-linear runs the same N4 and
`antsRegistration` affine), shipped as a wheel with no run-time download. The fixed image is the
nilearn MNI152 2009 template (brain only, so the moving image must be brain-extracted first).

Coordinates: nibabel affines are RAS, ITK/ANTs physical points are LPS; `to_ants`/`from_ants`
convert, and the stored transform is a plain 4x4 matrix in RAS mm (`mni_to_native`), so the
viewer can map any MNI point back into the scan's own space without ANTs.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from dataclasses import dataclass

import numpy as np

from smmt_core.data.intake import deps
from smmt_core.errors import DataError

_LPS = np.diag([-1.0, -1.0, 1.0])  # RAS <-> LPS (its own inverse)


def to_ants(img):
    """A nibabel image as an ANTsImage (float32), same voxels, same world positions."""
    _itk_threads()  # every ITK use here starts with an image from this function
    import ants

    affine = np.asarray(img.affine, dtype=np.float64)
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    direction = _LPS @ affine[:3, :3] / spacing
    origin = _LPS @ affine[:3, 3]
    data = np.asarray(img.dataobj, dtype=np.float32)
    return ants.from_numpy(np.ascontiguousarray(data), origin=tuple(origin), spacing=tuple(spacing),
                           direction=direction)


def from_ants(aimg):
    """An ANTsImage as a float32 `Nifti1Image`."""
    import nibabel as nib

    spacing = np.asarray(aimg.spacing, dtype=np.float64)
    direction = np.asarray(aimg.direction, dtype=np.float64)
    affine = np.eye(4)
    affine[:3, :3] = _LPS @ direction * spacing
    affine[:3, 3] = _LPS @ np.asarray(aimg.origin, dtype=np.float64)
    return nib.Nifti1Image(np.asarray(aimg.numpy(), dtype=np.float32), affine)


# N4 fits the bias field on a copy shrunk to about N4_GRID_MM voxels (shrink factor 8 for a 1 mm
# scan; ANTsPy's default is 4) in three fitting levels of at most 30 iterations (ANTsPy: four of
# 50). The field is smooth (B-spline knots 200 mm apart), so the coarser grid changes nothing that
# matters and costs a quarter of the time; a fourth level fits a finer field that also flattens
# some anatomy (on Colin27 the registered scan's r with the template drops from 0.64 to 0.59).
# Measured in docs/intake.md ("Where the time went").
N4_GRID_MM = 8.0
N4_CONVERGENCE = {"iters": [30, 30, 30], "tol": 1e-6}

# The affine fit: the brain is first resampled to the template's voxel size (a 1 mm scan fitted to
# the 2 mm template gains nothing from its extra voxels, which only cost smoothing and shrinking at
# every level), then three levels (shrink 6, 4, 2; smoothing 3, 2, 1 voxels) of at most 1000, 500
# and 250 iterations, starting from the centres of mass (ANTsPy's initial transform). ANTsPy's
# default adds a full-resolution level and runs (2100, 1200, 1200, 10); on Colin27 this schedule
# lands 0.2-0.4 mm (mean over the template brain) from that default, which itself moves by 0.3 mm
# from run to run (the metric is sampled at random), in a seventh of its time.
AFF_SHRINK_FACTORS = (6, 4, 2)
AFF_SMOOTHING_SIGMAS = (3, 2, 1)
AFF_ITERATIONS = (1000, 500, 250)

# Reproducibility: the same input and settings give the same image, QC score and transform (on one
# machine). Two things varied from run to run (Colin27 with its skull: r 0.977 between two runs
# inside the brain, the centre of mass 0.4 mm apart):
# * the fit's metric is computed on a random 20 % of the voxels, and antsRegistration seeds that
#   sampler from the clock unless it is given a seed;
# * ITK's multi-threaded Mattes metric adds up its threads' parts in an order that depends on their
#   timing: with the seed fixed, two threads still moved the 4 mm test fit by up to 0.03 mm between
#   runs; one thread gives the same bits. N4 and the affine fit cost about the same on one thread
#   as on two (docs/intake.md). ITK reads its thread count once per process, at its first filter,
#   so every function here sets it first; a count set in the environment beforehand is kept.
# Changing either changes results: bump pipeline.INTAKE_VERSION with it.
REGISTRATION_SEED = 20240611
ITK_THREADS = 1

_seed_lock = threading.Lock()


def _itk_threads() -> None:
    """ITK's thread count (`ITK_THREADS`) for this process, unless the environment already sets one."""
    os.environ.setdefault("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", str(ITK_THREADS))


@contextlib.contextmanager
def _seeded(ants, seed: int):
    """ANTsPy >= 0.6 takes antsRegistration's `--random-seed` from the module-global
    `ants.config._random_seed` (its public `set_ants_deterministic` also reseeds numpy's global
    generator): set for this call only, under a lock for threads of one process."""
    with _seed_lock:
        before = ants.config._random_seed
        ants.config._random_seed = int(seed)
        try:
            yield
        finally:
            ants.config._random_seed = before


def n4(img, mask=None):
    """N4 bias-field corrected copy of `img` (inside `mask` when given, as ANTs recommends)."""
    import ants

    deps.require("bias-field correction", names=("ants",))
    aimg = to_ants(img)
    amask = to_ants(mask) if mask is not None else None
    if amask is not None:
        amask = ants.threshold_image(amask, 0.5, 1e9)
    voxel_mm = float(min(aimg.spacing))
    shrink = int(max(1, min(8, round(N4_GRID_MM / voxel_mm))))
    return from_ants(ants.n4_bias_field_correction(aimg, mask=amask, shrink_factor=shrink, convergence=N4_CONVERGENCE))


@dataclass
class AffineFit:
    """The result of `register_affine`: the fitted transform (resample with `resample_to_mni`)."""

    transform: object  # ants.ANTsTransform: a point of the template -> the same anatomy in the scan (LPS)
    mni_to_native: np.ndarray  # 4x4, RAS mm: an MNI point -> the same anatomy in the scan's space


def ants_affine_to_ras(params: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """ITK AffineTransform (12 parameters, centre) -> 4x4 RAS matrix of the same point map.

    ITK maps a point p of the fixed image to A (p - c) + c + t in the moving image (LPS).
    """
    params = np.asarray(params, dtype=np.float64)
    a = params[:9].reshape(3, 3)
    t = params[9:12]
    c = np.asarray(fixed, dtype=np.float64)[:3]
    lps = np.eye(4)
    lps[:3, :3] = a
    lps[:3, 3] = t + c - a @ c
    flip = np.eye(4)
    flip[:3, :3] = _LPS
    return flip @ lps @ flip


def register_affine(moving, fixed, *, path=None) -> AffineFit:
    """Affine registration of `moving` (brain only) to `fixed` (the template); DataError when ANTs fails."""
    import ants

    deps.require("registration to MNI space", path, names=("ants",))
    afixed, amoving = to_ants(fixed), to_ants(moving)
    if min(amoving.spacing) < min(afixed.spacing):  # finer than the template: fit at the template's voxel size
        amoving = ants.resample_image(amoving, afixed.spacing, use_voxels=False, interp_type=0)
    with tempfile.TemporaryDirectory(prefix="smmt-ants-") as tmp, _seeded(ants, REGISTRATION_SEED):
        try:
            reg = ants.registration(
                afixed, amoving, type_of_transform="Affine", outprefix=os.path.join(tmp, "reg_"),
                aff_metric="mattes", aff_iterations=AFF_ITERATIONS, aff_shrink_factors=AFF_SHRINK_FACTORS,
                aff_smoothing_sigmas=AFF_SMOOTHING_SIGMAS,
            )
            transform = ants.read_transform(reg["fwdtransforms"][0])
        except (RuntimeError, ValueError) as exc:
            raise DataError(f"affine registration to MNI152 failed ({exc})", path) from None
    return AffineFit(transform=transform,
                     mni_to_native=ants_affine_to_ras(transform.parameters, transform.fixed_parameters))


def resample_to_mni(fit: AffineFit, image, output_grid, *, nearest: bool = False):
    """`image` (in the scan's space) resampled through `fit` onto `output_grid` (a Nifti1Image
    whose grid is used): linear for intensities, nearest neighbour for masks."""
    out = fit.transform.apply_to_image(to_ants(image), to_ants(output_grid),
                                       interpolation="nearestneighbor" if nearest else "linear")
    return from_ants(out)
