"""T1 MRI preprocessing: any readable T1 file in, MNI-grid volume and model-ready 2D slices out.

Why these steps (the paper registers every scan linearly to MNI152, resizes slices to 256x256,
scales them to [0, 1] and replicates them to 3 channels):

1. `read_t1` (`smmt_core.data.t1`) reads with nibabel and refuses what cannot be a single T1
   volume (4D series, all-NaN or constant data, broken files), with a message that names the file.
2. Reorient to RAS (`nibabel.as_closest_canonical`) and resample onto the nilearn MNI152 grid
   (`smmt_core.data.template`) at `resolution_mm` with `nilearn.image.resample_img` (linear
   interpolation). We do not register: images are expected to be in MNI space already (as ADNI
   "Spatially Normalized" downloads, Clinica/fMRIPrep outputs and the demo cohort are). A
   registration check correlates the result with the template inside the brain mask and warns
   when it is low, so a native-space scan is never used silently.
3. Robust intensity scaling to [0, 1]: the 0.5th and 99.5th percentiles of the voxels inside the
   MNI brain mask map to 0 and 1 (outliers and scanner scaling no longer matter).
4. Slices: `n_slices` slices of `plane`, spread evenly over a band that runs from the hippocampi
   (the structure that shrinks first in AD) up through the lateral ventricles (which widen as
   the brain around them shrinks), see `SLICE_BANDS_MM`. Each slice is padded to a square
   (aspect ratio kept), resized to `image_size` with `torch.nn.functional.interpolate` and
   replicated to `channels`.

`MRICache` stores the result on disk keyed by the file's content hash and the settings, so a
training epoch never reads NIfTI again.

The settings themselves (`PreprocessConfig`, `PREPROCESS_VERSION`) are declared in
`smmt_core.data.preprocess_config`, which imports no numpy, and re-exported here.
"""

from __future__ import annotations

import json
import logging
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from smmt_core.data.cache_root import default_cache_dir
from smmt_core.data.intake.pipeline import IntakeCache, IntakeSettings, input_digest, run_intake
from smmt_core.data.preprocess_config import (  # noqa: F401 (re-exported)
    INPUT_KINDS,
    PLANES,
    PREPROCESS_VERSION,
    PreprocessConfig,
)
from smmt_core.data.t1 import companion_file, read_t1
from smmt_core.data.template import extract_slice, mni_template, resample_kwargs
from smmt_core.errors import DataError
from smmt_core.fileio import atomic_write

log = logging.getLogger(__name__)

# Where the slices go, in MNI mm along the plane's axis. The two places where AD shows on a T1
# are the hippocampi (x = +-20..35, y = -40..-10, z = -25..0 mm in MNI152 space) and the
# lateral ventricles (bodies at z = about 0..+30 mm, widest at z = +10..+25 mm).
#   axial:    z from -14 to +22 mm: hippocampal body and temporal horns (-14), the frontal horns
#             and third ventricle (+4), the bodies of the lateral ventricles (+22). A band through
#             the hippocampi alone (the old -20..+4) left a slice classifier near chance: per-slice
#             logistic regression on the demo cohort gave CV AUC 0.40 at z = -20 and -8 and 0.64
#             at +4, but 0.76 at +10 and +16 and 0.75 at +22 (docs/demo-cohort.md).
#   coronal:  y from -38 to -10 mm (hippocampal tail to head; the ventricles are in every slice)
#   sagittal: x from -28 to +28 mm (left hippocampus, midline, right hippocampus)
# One slice sits at the band's centre; several are spread evenly from one end to the other.
SLICE_BANDS_MM: dict[str, tuple[float, float]] = {
    "axial": (-14.0, 22.0),
    "coronal": (-38.0, -10.0),
    "sagittal": (-28.0, 28.0),
}
_PLANE_AXIS = {"sagittal": 0, "coronal": 1, "axial": 2}

# Below this Pearson correlation with the template (inside the brain mask) we warn that the scan
# does not look registered to MNI space.
REGISTRATION_WARN_BELOW = 0.5

@dataclass
class PreprocessedMRI:
    """One preprocessed T1: the MNI-grid volume (for viewers) and the slices (for the model).

    volume: (X, Y, Z) float32 in [0, 1], RAS, on the MNI152 grid at the configured resolution
            (None only when read from the cache with `load_volume=False`).
    affine: 4x4 voxel -> MNI mm of `volume`.
    slices: the model's MRI input, float32 in [0, 1]: (S, C, H, W) slices; display orientation:
            for axial slices anterior is up and the subject's right is on the right
            (neurological), for coronal and sagittal slices superior is up. With
            `input="volume"`: the (X, Y, Z) brain crop of `volume` (`smmt_core.data.volume`).
    slice_indices: index of each slice along the plane's axis of `volume` (empty for a volume).
    template_correlation: Pearson r with the MNI152 template inside the brain mask.
    """

    volume: np.ndarray | None
    affine: np.ndarray
    slices: np.ndarray
    slice_indices: list[int]
    plane: str
    template_correlation: float
    warnings: list[str] = field(default_factory=list)
    intake: dict | None = None  # what the intake did (steps, QC verdict/score/reason, files); None: not run


# ----------------------------------------------------------------------------------------------
# Slices


def slice_positions_mm(plane: str, n_slices: int) -> list[float]:
    """MNI coordinates (mm along the plane's axis) of the slices, evenly spread over the band."""
    lo, hi = SLICE_BANDS_MM[plane]
    if n_slices == 1:
        return [(lo + hi) / 2.0]
    return [float(v) for v in np.linspace(lo, hi, n_slices)]


def slice_indices_for(plane: str, n_slices: int, affine: np.ndarray, shape: tuple[int, ...]) -> list[int]:
    """Voxel indices along the plane's axis of an MNI-grid volume for `slice_positions_mm`.

    When the band holds fewer voxels than slices (many slices, coarse grid), the slices become
    neighbouring voxels centred on the band instead of repeating one voxel.
    """
    axis = _PLANE_AXIS[plane]
    step, origin = affine[axis, axis], affine[axis, 3]
    size = shape[axis]
    out = [int(round((mm - origin) / step)) for mm in slice_positions_mm(plane, n_slices)]
    if len(set(out)) < n_slices:
        centre = int(round((sum(SLICE_BANDS_MM[plane]) / 2.0 - origin) / step))
        first = min(max(centre - n_slices // 2, 0), max(size - n_slices, 0))
        out = list(range(first, first + n_slices))
    return [min(max(idx, 0), size - 1) for idx in out]


def _square_resize(slices: np.ndarray, size: int) -> np.ndarray:
    """(S, H, W) -> (S, size, size): zero-pad to a square (aspect kept), then resize (torch)."""
    import torch
    import torch.nn.functional as F

    s, h, w = slices.shape
    side = max(h, w)
    padded = np.zeros((s, side, side), dtype=np.float32)
    top, left = (side - h) // 2, (side - w) // 2
    padded[:, top:top + h, left:left + w] = slices
    if side == size:
        return padded
    t = torch.from_numpy(padded)[:, None]
    out = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False, antialias=side > size)
    return np.clip(out[:, 0].numpy(), 0.0, 1.0)


# ----------------------------------------------------------------------------------------------
# The pipeline


def preprocess_t1(path, config: PreprocessConfig | None = None) -> PreprocessedMRI:
    """Read, reorient, resample to MNI, scale to [0, 1] and slice one T1 file (see module doc)."""
    import nibabel as nib
    from nilearn import image

    config = config or PreprocessConfig()
    path = Path(path)
    img, warnings = read_t1(path)
    img = nib.as_closest_canonical(img)
    data = np.asarray(img.dataobj)
    if not data.flags.c_contiguous:  # flipped views; resampling a C-ordered array is ~4x faster
        img = nib.Nifti1Image(np.ascontiguousarray(data), img.affine)
    tpl = mni_template(config.resolution_mm)
    try:
        resampled = image.resample_img(
            img, target_affine=tpl.affine, target_shape=tpl.data.shape, interpolation="linear",
            fill_value=0.0, clip=False, **resample_kwargs(),
        )
    except Exception as exc:
        raise DataError(f"cannot resample onto the MNI152 grid ({type(exc).__name__}: {exc})", path) from None
    volume = np.asarray(resampled.dataobj, dtype=np.float32)

    inside = volume[tpl.mask]
    lo, hi = np.percentile(inside, [0.5, 99.5]) if inside.size else (0.0, 0.0)
    if not hi > lo:  # nothing inside the brain region: fall back to the whole field of view
        nonzero = volume[volume != 0]
        if nonzero.size:
            lo, hi = np.percentile(nonzero, [0.5, 99.5])
    if not hi > lo:
        raise DataError("has no intensity contrast inside the MNI152 brain region after resampling; "
                        "is it a T1 image in MNI space?", path)
    volume -= np.float32(lo)
    volume *= np.float32(1.0 / (hi - lo))
    np.clip(volume, 0.0, 1.0, out=volume)

    corr = tpl.correlation(volume[tpl.mask])
    if corr < REGISTRATION_WARN_BELOW:
        warnings.append(
            f"{path.name} does not look registered to MNI space (correlation {corr:.2f} with the "
            f"MNI152 template); the slices may miss the hippocampus. Register it to MNI152 first."
        )

    if config.is_volume:
        from smmt_core.data.volume import crop_volume, volume_geometry

        crop = crop_volume(volume, volume_geometry(config.resolution_mm, config.patch_mm))
        return PreprocessedMRI(
            volume=volume, affine=np.asarray(tpl.affine, dtype=np.float64), slices=crop, slice_indices=[],
            plane=config.plane, template_correlation=corr, warnings=warnings,
        )
    indices = slice_indices_for(config.plane, config.n_slices, tpl.affine, volume.shape)
    raw = np.stack([extract_slice(volume, config.plane, i) for i in indices])
    slices = _square_resize(raw, config.image_size)[:, None]  # (S, 1, H, W)
    if config.channels > 1:
        slices = np.repeat(slices, config.channels, axis=1)
    return PreprocessedMRI(
        volume=volume, affine=np.asarray(tpl.affine, dtype=np.float64), slices=np.ascontiguousarray(slices),
        slice_indices=indices, plane=config.plane, template_correlation=corr, warnings=warnings,
    )


def preprocess_scan(path, config: PreprocessConfig | None = None, intake=None, *, intake_cache=None,
                    progress=None, stop=None, require_qc: bool = True) -> PreprocessedMRI:
    """The intake (DICOM, brain extraction, N4, registration to MNI, QC), then `preprocess_t1`.

    What training and prediction call for a subject's T1 (a NIfTI file or a DICOM folder). An image
    already in MNI space with the brain extracted costs one extra resampling (the measurement);
    anything else goes through `smmt_core.data.intake.run_intake` and its cache. A scan that fails
    QC raises DataError saying why: it is never given to the model. `require_qc=False` (a preview
    for the viewer, not for the model) turns that into a warning.
    """
    intake = intake or IntakeSettings()
    path = Path(path)
    if intake.mode == "off" and not path.is_dir():
        return preprocess_t1(path, config)
    done = run_intake(path, intake, cache=intake_cache, progress=progress, stop=stop, picture=None)
    if done.qc.verdict == "fail" and require_qc:
        raise DataError(f"failed quality control, so no prediction: {done.qc.reason}", path)
    result = preprocess_t1(done.t1_mni, config)
    registered = "register" in done.steps_run
    kept = [w for w in result.warnings if not (registered and "does not look registered" in w)]
    if done.qc.verdict != "pass":
        kept.append(f"{path.name}: QC {done.qc.verdict}: {done.qc.reason}")
    result.warnings = [*done.notes, *kept]
    result.intake = {"steps": done.steps_label, "qc": done.qc.verdict, "score": round(done.qc.score, 4),
                     "reason": done.qc.reason, "t1_mni": str(done.t1_mni),
                     "native": str(done.native) if done.native is not None else None,
                     "picture": str(done.picture) if done.picture is not None else None, "device": done.device,
                     "mni_to_native": done.mni_to_native.tolist() if done.mni_to_native is not None else None}
    return result


# ----------------------------------------------------------------------------------------------
# Is it a brain in MNI space? (the Predictor refuses to classify anything else)

# Below this correlation with the template a scan is not treated as a registered brain at all
# (noise: ~0; a geometric phantom: ~0.2-0.4; the demo cohort: > 0.8; real registered brains ~0.6-0.9).
BRAIN_REFUSE_BELOW = 0.35
BRAIN_MIN_COVERAGE = 0.85  # share of the template brain that must hold signal (a crop fails)
BRAIN_MIN_CONTRAST = 0.1  # white matter above CSF, on the [0, 1] scale (a T1 contrast)


def brain_check(volume: np.ndarray, resolution_mm: float) -> str | None:
    """None for a plausible skull-stripped T1 brain on the MNI grid, else what is wrong (a phrase).

    Three checks any real registered T1 passes: it covers the template brain, its intensities rise
    from CSF to white matter as in the template, and it correlates with the template.
    """
    tpl = mni_template(resolution_mm)
    if volume is None or volume.shape != tpl.data.shape:
        return "is not on the MNI grid of this model"
    inside = volume[tpl.mask]
    coverage = float((inside > 0.02).mean()) if inside.size else 0.0
    if coverage < BRAIN_MIN_COVERAGE:
        return f"covers only {coverage * 100:.0f} % of the MNI brain (a crop, or not registered)"
    white = volume[tpl.mask & (tpl.data > 0.75)]
    csf = volume[tpl.mask & (tpl.data < 0.35)]
    contrast = float(np.median(white) - np.median(csf)) if white.size and csf.size else 0.0
    if contrast < BRAIN_MIN_CONTRAST:
        return f"has no T1 brain contrast where the template has white matter and CSF (difference {contrast:.2f})"
    corr = tpl.correlation(inside)
    if corr < BRAIN_REFUSE_BELOW:
        return f"does not look like a brain registered to MNI space (correlation {corr:.2f} with the template)"
    return None


# ----------------------------------------------------------------------------------------------
# Disk cache


class MRICache:
    """Preprocessed MRI on disk, keyed by file contents + settings, so NIfTI is read only once.

    One `.npz` per (file hash, config key) under `root/<2 hex>/`. Writes go to a temporary file
    then `os.replace`, so an interrupted run never leaves a half-written entry; an unreadable
    entry is treated as a miss and rewritten. Digests are memoised per (path, size, mtime) so a
    second pass in the same process does not even re-hash the files.
    """

    def __init__(self, root=None, intake=None, *, require_qc: bool = True):
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        self.intake = intake or IntakeSettings()
        self.require_qc = require_qc  # False: a scan failing QC is still returned, with a warning (previews)
        self.intake_cache = IntakeCache(self.root / "intake")
        self.hits = 0
        self.misses = 0
        self._digests: dict[tuple[str, int, int], str] = {}
        self._lock = threading.Lock()

    def _digest(self, path: Path) -> str:
        try:
            st = path.stat()
        except OSError:
            raise DataError("T1 image file not found", path) from None
        comp = companion_file(path)
        stamp = (str(path.resolve()), st.st_size, st.st_mtime_ns + (comp.stat().st_mtime_ns if comp else 0))
        with self._lock:
            cached = self._digests.get(stamp)
        if cached is None:
            cached = input_digest(path)  # a DICOM folder: its files' contents
            with self._lock:
                self._digests[stamp] = cached
        return cached

    def entry_path(self, path, config: PreprocessConfig) -> Path:
        """Where the entry for this file and these settings lives (it may not exist yet)."""
        digest = self._digest(Path(path))
        return self.root / digest[:2] / f"{digest}-{config.key()}-{self.intake.key()}.npz"

    def get(self, path, config: PreprocessConfig | None = None, *, load_volume: bool = True) -> PreprocessedMRI:
        """The preprocessed image, from disk when cached, else computed and stored.

        `load_volume=False` skips reading the volume (volume=None): what training needs.
        """
        config = config or PreprocessConfig()
        path = Path(path)
        if not path.exists():
            raise DataError("T1 image file not found", path)
        entry = self.entry_path(path, config)
        if entry.exists():
            result = self._read(entry, config, load_volume)
            if result is not None:
                with self._lock:
                    self.hits += 1
                return result
        result = preprocess_scan(path, config, self.intake, intake_cache=self.intake_cache,
                                 require_qc=self.require_qc)
        with self._lock:
            self.misses += 1
        self._write(entry, config, result)
        if not load_volume:
            result.volume = None
        return result

    @staticmethod
    def _read(entry: Path, config: PreprocessConfig, load_volume: bool) -> PreprocessedMRI | None:
        try:
            with np.load(entry, allow_pickle=False) as npz:
                meta = json.loads(str(npz["meta"]))
                if meta.get("key") != config.key():
                    return None
                slices = npz["slices"].astype(np.float32)
                if not config.is_volume and config.channels > 1:
                    slices = np.repeat(slices, config.channels, axis=1)
                result = PreprocessedMRI(
                    volume=npz["volume"].astype(np.float32) if load_volume else None,
                    affine=npz["affine"].astype(np.float64),
                    slices=slices,
                    slice_indices=[int(i) for i in meta["slice_indices"]],
                    plane=str(meta["plane"]),
                    template_correlation=float(meta["template_correlation"]),
                    warnings=[str(w) for w in meta["warnings"]],
                    intake=meta.get("intake"),
                )
        except (OSError, ValueError, KeyError, TypeError, RecursionError, zipfile.BadZipFile, EOFError) as exc:
            log.warning("ignoring unreadable MRI cache entry %s (%s)", entry, exc)
            return None
        n_slices = 0 if config.is_volume else config.n_slices
        if result.slices.shape != config.mri_shape or len(result.slice_indices) != n_slices:
            log.warning("ignoring MRI cache entry %s with unexpected shape %s", entry, result.slices.shape)
            return None
        return result

    @staticmethod
    def _write(entry: Path, config: PreprocessConfig, result: PreprocessedMRI) -> None:
        meta = {
            "key": config.key(),
            "slice_indices": list(result.slice_indices),
            "plane": result.plane,
            "template_correlation": result.template_correlation,
            "warnings": list(result.warnings),
            "intake": result.intake,
        }
        def write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.savez_compressed(
                    fh,
                    meta=np.array(json.dumps(meta)),
                    # slices: channels are copies; a volume crop is stored at the volume's precision
                    slices=(result.slices.astype(np.float16) if config.is_volume
                            else result.slices[:, :1].astype(np.float32)),
                    volume=result.volume.astype(np.float16),  # display only; 1e-3 precision
                    affine=result.affine,
                )

        try:
            atomic_write(entry, write, suffix=".npz")
        except OSError as exc:  # a full or read-only cache must not stop the work
            log.warning("could not write MRI cache entry %s (%s)", entry, exc)
