"""Quality control a researcher can see: a registration score with pass / warn / fail, a picture,
and the measurements that decide which intake steps an image needs.

Score: Pearson r between the registered scan and the MNI152 template inside the template's brain
mask (the same measure `preprocess_t1` has always reported), on the template's 2 mm grid. A second
number guards against non-brains that correlate by shape alone: the Dice overlap between the
brain mask found in the scan (deepbet's, carried through the registration) and the template's.
Thresholds were set by measurement (docs/intake.md): Colin27 (one real brain, with skull) scores
r 0.61 after the pipeline (a single brain never matches the smooth average template closely), the
template itself 1.0; noise and geometric phantoms fail on the score or on the mask overlap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from smmt_core.data.template import extract_slice, mni_template, resample_kwargs
from smmt_core.fileio import atomic_write

QC_PASS_AT = 0.55  # r >= this: pass
QC_WARN_AT = 0.40  # r in [warn, pass): warn (used, flagged); below: fail (no prediction)
MASK_DICE_FAIL_BELOW = 0.70  # brain mask overlap with the template's below this: fail

# Skip decisions (auto mode). "Brain extracted": the image's foreground (voxels above 5 % of its
# robust range) is brain-sized. Measured: Colin27 with skull 3875 mL, its brain-extracted versions
# 1602-1713 mL, the MNI152 template 1867 mL, demo cohort scans 1739-1832 mL; this does not depend on
# where the head is, so a moved or native-space brain is still recognised as extracted.
# "In MNI space": its plain resampling onto the template grid scores at least REGISTERED_AT.
STRIPPED_MAX_ML = 2300.0
# The bar is the QC pass mark: the template shifted by 4 mm scores only 0.50, so anything that
# would not pass as it is gets registered (an already registered scan loses nothing but time).
REGISTERED_AT = QC_PASS_AT
_FOREGROUND_AT = 0.15
# An MRI of a head has structure: a voxel is like its neighbours (the MNI152 template: r = 0.99 at
# 1 mm, 0.89 at 8 mm; a plain cube 0.95), noise has none (r ~ 0). Below this the intake refuses the
# image at once, before brain extraction and registration (which would find a "brain" in noise).
NEIGHBOUR_R_MIN = 0.3
_NEIGHBOUR_MAX_VOXELS = 4_000_000  # larger images are measured on every 2nd (3rd, ...) voxel


@dataclass
class QCResult:
    verdict: str  # "pass", "warn" or "fail"
    score: float  # r with the template inside its brain mask
    mask_dice: float | None  # overlap of the scan's brain mask with the template's (None: not measured)
    reason: str  # one sentence a researcher can act on

    @property
    def ok(self) -> bool:
        return self.verdict != "fail"


def verdict(score: float, mask_dice: float | None = None) -> QCResult:
    """Pass / warn / fail from the score (and the mask overlap when known), with the reason."""
    if mask_dice is not None and mask_dice < MASK_DICE_FAIL_BELOW:
        return QCResult("fail", score, mask_dice,
                        f"the brain mask found in the scan overlaps the MNI152 brain by only {mask_dice:.2f} (Dice; "
                        f"at least {MASK_DICE_FAIL_BELOW:.2f} expected): this does not look like a brain, or the "
                        "registration failed")
    if score >= QC_PASS_AT:
        return QCResult("pass", score, mask_dice, f"registration score {score:.2f} (pass at {QC_PASS_AT:.2f})")
    if score >= QC_WARN_AT:
        return QCResult("warn", score, mask_dice,
                        f"registration score {score:.2f} is below {QC_PASS_AT:.2f}: check the QC picture")
    return QCResult("fail", score, mask_dice,
                    f"registration score {score:.2f} is below {QC_WARN_AT:.2f}: the scan does not match the MNI152 "
                    "brain after registration (not a T1 brain image, or registration failed)")


def robust_scale(volume: np.ndarray) -> np.ndarray:
    """0..1 by the 0.5th / 99.5th percentiles of the non-zero voxels (scanner units do not matter)."""
    v = np.asarray(volume, dtype=np.float32)
    nz = v[v > 0] if (v > 0).any() else v.ravel()
    lo, hi = np.percentile(nz, [0.5, 99.5])
    if not hi > lo:
        return np.zeros_like(v)
    return np.clip((v - lo) / (hi - lo), 0.0, 1.0)


def on_template_grid(img, resolution_mm: float = 2.0, interpolation: str = "linear"):
    """`img` (a Nifti1Image) resampled onto the MNI template grid, as float32 ("nearest" for masks)."""
    from nilearn import image

    tpl = mni_template(resolution_mm)
    out = image.resample_img(img, target_affine=tpl.affine, target_shape=tpl.data.shape,
                             interpolation=interpolation, fill_value=0.0, **resample_kwargs())
    return np.asarray(out.dataobj, dtype=np.float32)


def registration_score(volume_on_grid: np.ndarray, resolution_mm: float = 2.0) -> float:
    """Pearson r with the template inside its brain mask (volume already on the template grid)."""
    tpl = mni_template(resolution_mm)
    return tpl.correlation(volume_on_grid[tpl.mask])


def mask_dice(mask_on_grid: np.ndarray, resolution_mm: float = 2.0) -> float:
    tpl = mni_template(resolution_mm)
    m = mask_on_grid > 0.5
    denom = int(m.sum()) + int(tpl.mask.sum())
    return 2.0 * float((m & tpl.mask).sum()) / denom if denom else 0.0


@dataclass
class InputMeasures:
    """What auto mode measures on an input before deciding which steps it needs."""

    mni_score: float  # registration score of the image as it is (plain resampling, no registration)
    foreground_ml: float  # volume of the image's foreground in mL (brain ~1100-2000, head with skull ~3500+)
    neighbour_r: float = 1.0  # how alike neighbouring voxels are (neighbour_correlation)

    @property
    def is_image_of_something(self) -> bool:
        """False for noise (or a constant): nothing the intake's long steps could make a brain of."""
        return self.neighbour_r >= NEIGHBOUR_R_MIN

    @property
    def in_mni(self) -> bool:
        """In MNI space: judged only on a brain-extracted image (a skull corrupts the score)."""
        return self.stripped and self.mni_score >= REGISTERED_AT

    @property
    def stripped(self) -> bool:
        return self.foreground_ml <= STRIPPED_MAX_ML


def measure_input(img, resolution_mm: float = 2.0) -> InputMeasures:
    """Measure whether `img` is already in MNI space and already brain-extracted."""
    tpl = mni_template(resolution_mm)
    vol = robust_scale(on_template_grid(img, resolution_mm))
    score = tpl.correlation(vol[tpl.mask])
    voxel_ml = abs(float(np.linalg.det(np.asarray(img.affine)[:3, :3]))) / 1000.0
    return InputMeasures(mni_score=score, foreground_ml=float(foreground(img).sum()) * voxel_ml,
                         neighbour_r=neighbour_correlation(np.asarray(img.dataobj)))


def neighbour_correlation(data: np.ndarray) -> float:
    """The smallest over the three axes of the Pearson r between each voxel and the next one along
    that axis; 0 for a constant image. Large images are measured on a regular subsample."""
    data = np.asarray(data)
    if data.ndim != 3 or min(data.shape) < 2:
        return 0.0
    step = 1
    while data[::step, ::step, ::step].size > _NEIGHBOUR_MAX_VOXELS:
        step += 1
    data = data[::step, ::step, ::step].astype(np.float64)
    if not np.isfinite(data).all():
        return 0.0
    smallest = 1.0
    for axis in range(3):
        moved = np.moveaxis(data, axis, 0)
        x, y = moved[:-1].ravel(), moved[1:].ravel()
        x, y = x - x.mean(), y - y.mean()
        denom = float(np.sqrt((x @ x) * (y @ y)))
        smallest = min(smallest, float(x @ y) / denom if denom > 0 else 0.0)
    return smallest


def foreground(img) -> np.ndarray:
    """Voxels above 15 % of the image's robust range: the head, or the brain once extracted."""
    return robust_scale(np.asarray(img.dataobj, dtype=np.float32)) > _FOREGROUND_AT


# ----------------------------------------------------------------------------------------------
# The QC picture

QC_POINT_MM = (0.0, -18.0, 8.0)  # through the hippocampi and the lateral ventricles


def qc_picture(volume_on_grid: np.ndarray, path, *, title: str, resolution_mm: float = 2.0) -> None:
    """PNG: the registered scan in three views with the template's brain outline (red) and its
    grey/white boundary (yellow) drawn over it; written atomically."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    tpl = mni_template(resolution_mm)
    ijk = np.linalg.solve(tpl.affine, np.array([*QC_POINT_MM, 1.0]))[:3].round().astype(int)
    fig = Figure(figsize=(9, 3.4), dpi=100)
    for n, (plane, axis) in enumerate((("sagittal", 0), ("coronal", 1), ("axial", 2))):
        ax = fig.add_subplot(1, 3, n + 1)
        idx = int(np.clip(ijk[axis], 0, volume_on_grid.shape[axis] - 1))
        ax.imshow(extract_slice(volume_on_grid, plane, idx), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.contour(extract_slice(tpl.mask.astype(np.float32), plane, idx), levels=[0.5], colors="red",
                   linewidths=0.8)
        ax.contour(extract_slice(tpl.data, plane, idx), levels=[0.55], colors="yellow", linewidths=0.5)
        ax.set_title(plane, fontsize=9)
        ax.set_axis_off()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"), suffix=".png")
