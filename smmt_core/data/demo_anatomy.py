"""Brain images for the SYNTHETIC demo cohort, made by deforming the MNI152 2009 template.

Why a template and not noise: a classifier should find its signal where Alzheimer's disease puts
it. Every synthetic T1 is the real MNI ICBM152 2009 template (bundled with nilearn, so no
download) seen through one smooth backward mapping, output voxel -> template point:

    T(x) = c + (x - c) / head_scale          head size (+-5 %) about the brain centre c
           + a_h * G_h(.) + a_v * G_v(.)     hippocampal shrinkage, ventricle enlargement
           + u(x)                            a smooth random deformation (imperfect registration)

G_h and G_v are unit displacement fields: the gradient of the smoothed structure label, so a
positive amplitude pulls neighbouring tissue into the hippocampi (they shrink) and spreads the
ventricles outwards (they grow). Amplitudes are found from the volume change asked for by
measuring the warped label on a grid of amplitudes, so "-20 % hippocampus" means -20 % of the
template hippocampal grey matter, not a guess. The template is sampled with
scipy.ndimage.map_coordinates, then a smooth multiplicative bias field, a contrast change, Rician
noise and skull-stripping to the warped brain mask are applied.

Structures are located in MNI coordinates: the hippocampi are the grey matter inside two tilted
ellipsoids around (+-27, -24, -12) mm; the ventricles are the largest connected CSF region
(brain, neither grey nor white matter) near the centre of the brain. `template_region` and
`measure_hippocampus` give the same region to benchmarks, which measure volume from the images
alone (tissue fraction from intensity, in a fixed MNI region), as an analyst would.

The template: Copyright (C) 1993-2009 Louis Collins, McConnell Brain Imaging Centre, Montreal
Neurological Institute, McGill University (see MNI_NOTICE).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage as ndi

from smmt_core.errors import DataError

MNI_NOTICE = (
    "The images are derived from the MNI ICBM152 2009 nonlinear template "
    "(Fonov et al., NeuroImage 2011; Fonov et al., NeuroImage 2009; Collins et al. 1999), "
    "as bundled with nilearn. Copyright (C) 1993-2009 Louis Collins, McConnell Brain Imaging "
    "Centre, Montreal Neurological Institute, McGill University. Permission to use, copy, modify, "
    "and distribute this software and its documentation for any purpose and without fee is "
    "hereby granted, provided that the above copyright notice appear in all copies. The authors "
    "and McGill University make no representations about the suitability of this software for "
    "any purpose. It is provided \"as is\" without express or implied warranty. The authors are "
    "not responsible for any data loss, equipment damage, property loss, or injury to subjects "
    "or patients resulting from the use or misuse of this software package."
)

OUTPUT_RESOLUTION_MM = 2  # written images: the MNI grid at 2 mm (99 x 117 x 95 voxels)

# Hippocampal region: per side, an ellipsoid around the hippocampal body whose long axis runs
# from the head (anterior, low) to the tail (posterior, high), as in MNI space.
HIPPOCAMPUS_CENTRES_MM = ((27.0, -24.0, -12.0), (-27.0, -24.0, -12.0))
HIPPOCAMPUS_SEMI_AXES_MM = (7.0, 17.0, 5.5)  # lateral, long axis, perpendicular
HIPPOCAMPUS_TILT_DEG = 28.0  # long axis rises this much above the horizontal towards the back
# Ventricles: CSF searched for inside this box (mm) around the centre of the brain.
VENTRICLE_BOX_MM = ((-30.0, 30.0), (-50.0, 35.0), (-10.0, 35.0))

# Width of the displacement field around each structure: wider for the thin ventricles, so
# they can grow a lot without folding the mapping.
HIPPOCAMPUS_SMOOTHING_MM = 2.5
VENTRICLE_SMOOTHING_MM = 4.0
# Each structure's displacement is applied as a flow of small steps (Euler integration of a
# velocity field), so large changes stay smooth and never fold; each step keeps the Jacobian
# determinant above _MIN_STEP_JACOBIAN.
FLOW_STEPS = 4
RECESSION_SHARE = 1.0 / 3.0  # of the hippocampal atrophy (log volume); the rest is density loss
MAX_AMPLITUDE_MM = 6.0  # no structure edge moves further than this
AMPLITUDE_TABLE_SIZE = 17
_MIN_STEP_JACOBIAN = 0.6


@dataclass
class ImageParameters:
    """What one synthetic T1 should show (true effects), before the random nuisance parts."""

    hippocampal_change: float = 0.0  # natural size: fraction of the template's hippocampal volume
    hippocampal_atrophy: float = 0.0  # fraction of that tissue lost to disease (replaced by CSF)
    ventricle_change: float = 0.0  # fraction of ventricle volume, e.g. +0.3
    head_scale: float = 1.0  # linear scale of the whole head about the brain centre


@dataclass
class SyntheticImage:
    """A synthetic T1 on the output grid plus the true volumes it was made with."""

    data: np.ndarray  # int16 (X, Y, Z)
    affine: np.ndarray
    hippocampus_mm3: float  # true volume of the warped template hippocampal label
    ventricles_mm3: float
    hippocampal_change: float  # achieved total change (size and atrophy, capped), relative to the template
    ventricle_change: float
    nuisance: dict = field(default_factory=dict)  # noise level, bias, gain, ...


@dataclass
class _Structure:
    """A deformable structure: its label, and its displacement for a table of amplitudes.

    The displacement for amplitude a is the flow of a * (unit field) over FLOW_STEPS small steps,
    stored on the output grid inside `out_box`; amplitudes between table entries interpolate
    linearly. `changes` holds the volume change of the label each amplitude produces.
    """

    label_box: np.ndarray  # soft label on the 1 mm template grid, cropped to `box`
    box: tuple[slice, slice, slice]  # crop of the 1 mm grid
    out_box: tuple[slice, slice, slice]  # the same region on the output grid
    amplitudes: np.ndarray  # increasing (mm)
    displacements: np.ndarray  # (n_amplitudes, 3, x, y, z) float32, mm
    changes: np.ndarray  # volume change (fraction) of the label for each amplitude
    volume_mm3: float  # undeformed volume

    def amplitude_for(self, change: float) -> tuple[float, float]:
        """(amplitude, achieved change) for a wanted volume change, capped to the table's range."""
        order = np.argsort(self.changes)
        changes, amplitudes = self.changes[order], self.amplitudes[order]
        achieved = float(np.clip(change, changes[0], changes[-1]))
        return float(np.interp(achieved, changes, amplitudes)), achieved

    def displacement(self, amplitude: float) -> np.ndarray:
        """(3, x, y, z) displacement for an amplitude inside the table's range."""
        i = int(np.clip(np.searchsorted(self.amplitudes, amplitude) - 1, 0, len(self.amplitudes) - 2))
        a0, a1 = self.amplitudes[i], self.amplitudes[i + 1]
        w = np.float32((amplitude - a0) / (a1 - a0))
        return (1 - w) * self.displacements[i] + w * self.displacements[i + 1]


class TemplateAnatomy:
    """The template, the output grid and the two deformable structures, computed once."""

    def __init__(self) -> None:
        from nilearn import datasets  # slow import, only needed when images are made

        t1_img = datasets.load_mni152_template(resolution=1)
        gm_img = datasets.load_mni152_gm_template(resolution=1)
        wm_img = datasets.load_mni152_wm_template(resolution=1)
        affine = np.asarray(t1_img.affine, dtype=float)
        if not (np.allclose(affine[:3, :3], np.eye(3)) and np.allclose(gm_img.affine, affine)):
            raise DataError("the bundled MNI152 template is not on a 1 mm RAS grid", "nilearn")
        self.template_affine = affine
        self.origin_mm = affine[:3, 3].copy()
        self.t1 = np.asarray(t1_img.dataobj, dtype=np.float32)
        gm = np.asarray(gm_img.dataobj, dtype=np.float32)
        wm = np.asarray(wm_img.dataobj, dtype=np.float32)
        self.brain = self.t1 > 0.02

        step = OUTPUT_RESOLUTION_MM
        self.out_shape = tuple(int(math.ceil(n / step)) for n in self.t1.shape)
        self.out_affine = affine.copy()
        self.out_affine[:3, :3] *= step
        self.voxel_mm3 = float(step**3)
        # World coordinates (mm) of every output voxel along each axis (the grid is axis-aligned).
        self.axes_mm = [self.origin_mm[d] + step * np.arange(n) for d, n in enumerate(self.out_shape)]
        brain_out = self.brain[::step, ::step, ::step]
        self.centre_mm = np.array([self.axes_mm[d][np.nonzero(brain_out)[d]].mean() for d in range(3)])
        # Voxels that can receive brain: the template brain grown by 14 mm (head scale + warps).
        self.work = ndi.binary_dilation(brain_out, iterations=int(14 / step))
        self.work_index = np.nonzero(self.work)
        self.work_mm = np.stack([self.axes_mm[d][self.work_index[d]] for d in range(3)]).astype(np.float32)

        # Hippocampi: grey matter inside the ellipsoids, computed in a box around them only.
        margin = 3 * HIPPOCAMPUS_SMOOTHING_MM + 6
        reach = np.array(self._ellipsoid_extent_mm()) + margin
        centres = np.array(HIPPOCAMPUS_CENTRES_MM)
        hbox = tuple(
            slice(max(0, int(centres[:, d].min() - reach[d] - self.origin_mm[d])),
                  min(n, int(centres[:, d].max() + reach[d] - self.origin_mm[d]) + 1))
            for d, n in enumerate(self.t1.shape)
        )
        ellipsoids = self._ellipsoids(hbox)
        self.hippocampus_roi_1mm = np.zeros(self.t1.shape, dtype=bool)
        self.hippocampus_roi_1mm[hbox] = (ellipsoids > 0.5) & (gm[hbox] > 0.5)
        self.hippocampus = self._structure(gm[hbox] * ellipsoids, hbox, sign=-1.0,
                                           smoothing_mm=HIPPOCAMPUS_SMOOTHING_MM)
        # Ventricles: the largest CSF region near the centre.
        ventricles = self._ventricle_mask(gm, wm)
        # Reference regions for intensity: deep white matter and the core of the ventricles.
        self.regions_1mm = {
            "hippocampus": self.hippocampus_roi_1mm,
            "white_matter": ndi.binary_erosion(wm > 0.95, iterations=3),
            "csf": ndi.binary_erosion(ventricles, iterations=1),
        }
        margin = int(3 * VENTRICLE_SMOOTHING_MM + 6)
        vbox = tuple(slice(max(0, s.start - margin), min(n, s.stop + margin))
                     for s, n in zip(ndi.find_objects(ventricles.astype(np.int8))[0], self.t1.shape))
        self.ventricles = self._structure(ventricles[vbox].astype(np.float32), vbox, sign=+1.0,
                                          smoothing_mm=VENTRICLE_SMOOTHING_MM)
        self.csf_intensity = float(np.median(self.t1[ventricles]))
        self.hippocampus_intensity = float(np.median(self.t1[self.hippocampus_roi_1mm]))

    # -- structures -------------------------------------------------------------------------
    @staticmethod
    def _ellipsoid_extent_mm() -> tuple[float, float, float]:
        """Half-extent of one tilted hippocampal ellipsoid along x, y, z."""
        a, b, c = HIPPOCAMPUS_SEMI_AXES_MM
        tilt = math.radians(HIPPOCAMPUS_TILT_DEG)
        return a, math.hypot(b * math.cos(tilt), c * math.sin(tilt)), math.hypot(b * math.sin(tilt), c * math.cos(tilt))

    def _ellipsoids(self, box: tuple[slice, slice, slice]) -> np.ndarray:
        """Soft (about 1 mm edge) indicator of both hippocampal ellipsoids in a box of the 1 mm grid."""
        axes = [self.origin_mm[d] + np.arange(s.start, s.stop) for d, s in enumerate(box)]
        x, y, z = np.meshgrid(*axes, indexing="ij", sparse=True)
        tilt = math.radians(HIPPOCAMPUS_TILT_DEG)
        # Long axis points backwards (-y) and upwards (+z); the third axis is perpendicular to it.
        long_axis = (-math.cos(tilt), math.sin(tilt))
        perp_axis = (math.sin(tilt), math.cos(tilt))
        a, b, c = HIPPOCAMPUS_SEMI_AXES_MM
        out = np.zeros(tuple(s.stop - s.start for s in box), dtype=np.float32)
        for cx, cy, cz in HIPPOCAMPUS_CENTRES_MM:
            dx, dy, dz = x - cx, y - cy, z - cz
            along = dy * long_axis[0] + dz * long_axis[1]
            across = dy * perp_axis[0] + dz * perp_axis[1]
            radius = np.sqrt((dx / a) ** 2 + (along / b) ** 2 + (across / c) ** 2)
            edge = np.clip((radius - 1.0) * 2.0 * min(a, b, c), -30.0, 30.0)
            out = np.maximum(out, (1.0 / (1.0 + np.exp(edge))).astype(np.float32))
        return out

    def _ventricle_mask(self, gm: np.ndarray, wm: np.ndarray) -> np.ndarray:
        csf = self.brain & ((1.0 - gm - wm) > 0.5)
        box = np.zeros_like(csf)
        index = tuple(
            slice(int(round(lo - self.origin_mm[d])), int(round(hi - self.origin_mm[d])) + 1)
            for d, (lo, hi) in enumerate(VENTRICLE_BOX_MM)
        )
        box[index] = True
        labels, n = ndi.label(csf & box)
        if n == 0:
            raise DataError("no ventricles found in the MNI152 template", "nilearn")
        sizes = np.bincount(labels.ravel())[1:]
        return labels == (int(np.argmax(sizes)) + 1)

    def _structure(self, label: np.ndarray, box: tuple[slice, slice, slice], *, sign: float,
                   smoothing_mm: float) -> _Structure:
        """Displacement table of a label (cropped to `box` of the 1 mm grid).

        The unit field is sign * grad(smoothed label) / max |grad|: with sign -1 a positive
        amplitude pushes samples away from the structure (it shrinks), with +1 towards it (grows).
        """
        step = OUTPUT_RESOLUTION_MM
        # Start the box on an output voxel so the 1 mm crop subsamples onto the output grid.
        pad = [s.start % step for s in box]
        label = np.pad(label.astype(np.float32), [(p, 0) for p in pad])
        box = tuple(slice(s.start - p, s.stop) for s, p in zip(box, pad))
        smooth = ndi.gaussian_filter(label, smoothing_mm)
        gradient = np.stack(np.gradient(smooth))  # per mm on the 1 mm grid
        gradient *= sign / float(np.sqrt((gradient**2).sum(axis=0)).max())
        out_box = tuple(slice(s.start // step, s.start // step + len(range(s.start, s.stop, step))) for s in box)
        field = np.ascontiguousarray(gradient[:, ::step, ::step, ::step])

        # Safe amplitudes: per flow step the Jacobian determinant of x + (a/steps)*G stays above
        # _MIN_STEP_JACOBIAN. dG/dx is a (scaled) Hessian: det(I + t*H) = prod(1 + t*eigenvalues).
        hessian = np.stack([np.stack(np.gradient(field[c], float(step))) for c in range(3)])
        hessian = np.moveaxis(hessian, (0, 1), (-2, -1)).reshape(-1, 3, 3)
        eigenvalues = np.linalg.eigvalsh(0.5 * (hessian + np.swapaxes(hessian, 1, 2)))
        scan = np.linspace(-MAX_AMPLITUDE_MM, MAX_AMPLITUDE_MM, 49)
        safe = [a for a in scan if np.prod(1.0 + a / FLOW_STEPS * eigenvalues, axis=1).min() > _MIN_STEP_JACOBIAN]
        low, high = max(min(safe), -MAX_AMPLITUDE_MM), min(max(safe), MAX_AMPLITUDE_MM)
        spacing = (high - low) / (AMPLITUDE_TABLE_SIZE - 1)
        amplitudes = np.union1d(np.arange(0.0, low - 1e-6, -spacing), np.arange(0.0, high + 1e-6, spacing))

        # Flow the output-grid points of the box for each amplitude; measure the warped label.
        shape = field.shape[1:]
        points = np.stack(np.meshgrid(*[self.axes_mm[d][out_box[d]] for d in range(3)], indexing="ij"))
        points = points.reshape(3, -1).astype(np.float32)
        lo = points[:, :1]
        corner = np.array([self.origin_mm[d] + box[d].start for d in range(3)], dtype=np.float32)[:, None]
        displacements = np.zeros((len(amplitudes), 3) + shape, dtype=np.float32)
        volumes = np.zeros(len(amplitudes))
        for i, a in enumerate(amplitudes):
            moved = points.copy()
            for _ in range(FLOW_STEPS):
                where = (moved - lo) / step
                moved += np.float32(a / FLOW_STEPS) * np.stack(
                    [ndi.map_coordinates(field[c], where, order=1, mode="constant") for c in range(3)])
            displacements[i] = (moved - points).reshape((3,) + shape)
            volumes[i] = ndi.map_coordinates(label, moved - corner, order=1, mode="constant").sum() * self.voxel_mm3
        volume0 = float(volumes[np.argmin(np.abs(amplitudes))])
        return _Structure(label, box, out_box, amplitudes, displacements, volumes / volume0 - 1.0, volume0)

    # -- image synthesis --------------------------------------------------------------------
    def synthesize(self, params: ImageParameters, rng: np.random.Generator) -> SyntheticImage:
        """One synthetic T1 (int16, output grid) showing `params`, nuisance drawn from `rng`."""
        # Disease atrophy is split (in log volume) between the hippocampus receding from its surface
        # (a third) and a loss of tissue density inside it (two thirds); CSF takes the place of the
        # lost tissue.
        atrophy = float(np.clip(params.hippocampal_atrophy, 0.0, 0.9))
        density_loss = 1.0 - (1.0 - atrophy) ** (1.0 - RECESSION_SHARE)
        a_size, _ = self.hippocampus.amplitude_for(params.hippocampal_change)
        a_h, receded = self.hippocampus.amplitude_for(
            (1.0 + params.hippocampal_change) * (1.0 - atrophy) ** RECESSION_SHARE - 1.0)
        hc = (1.0 + receded) * (1.0 - density_loss) - 1.0
        a_v, vc = self.ventricles.amplitude_for(params.ventricle_change)
        centre = self.centre_mm.astype(np.float32)[:, None]
        origin = self.origin_mm.astype(np.float32)[:, None]
        # Backward map: output voxel -> template point (mm).
        q = centre + (self.work_mm - centre) / np.float32(params.head_scale)
        base = q + self._smooth_field(rng, n_components=3, rms=1.2, order=4)[(slice(None),) + self.work_index]
        self._displace(base, q, self.ventricles, a_v)
        natural = base.copy()  # this person's anatomy before disease
        self._displace(natural, q, self.hippocampus, a_size)
        natural_vox = natural - origin  # on the 1 mm template grid
        intensity = ndi.map_coordinates(self.t1, natural_vox, order=1, mode="constant")
        inside = intensity > 0.02
        hippocampus = self._label_at(self.hippocampus, natural_vox)
        if atrophy > 0.0:
            atrophied = base
            self._displace(atrophied, q, self.hippocampus, a_h)
            lost = np.clip(hippocampus - self._label_at(self.hippocampus, atrophied - origin), 0.0, 1.0)
            lost += (hippocampus - lost) * np.float32(density_loss)
            intensity = np.maximum(intensity - lost * np.float32(self.hippocampus_intensity - self.csf_intensity),
                                   np.minimum(intensity, np.float32(self.csf_intensity)))
            hippocampus = hippocampus - lost
        ventricles = self._label_at(self.ventricles, natural_vox)

        gamma = rng.uniform(0.85, 1.15)  # tissue contrast differs between scanners
        bias_log = self._smooth_field(rng, n_components=1, rms=0.07, order=3)[0][self.work_index]
        noise_sigma = rng.uniform(0.015, 0.035)
        gain = rng.uniform(500.0, 1500.0)
        signal = np.power(np.clip(intensity, 0.0, None), gamma) * np.exp(bias_log)
        real = signal + rng.normal(0.0, noise_sigma, signal.shape)
        imaginary = rng.normal(0.0, noise_sigma, signal.shape)
        magnitude = np.sqrt(real * real + imaginary * imaginary)  # Rician noise
        values = np.where(inside, np.rint(magnitude * gain), 0.0)

        data = np.zeros(self.out_shape, dtype=np.int16)
        data[self.work_index] = np.clip(values, 0, np.iinfo(np.int16).max).astype(np.int16)
        nuisance = {"gamma": gamma, "noise_sigma": noise_sigma, "gain": gain,
                    "bias_range": float(np.ptp(bias_log))}
        return SyntheticImage(data, self.out_affine.copy(), float(hippocampus.sum()) * self.voxel_mm3,
                              float(ventricles.sum()) * self.voxel_mm3, hc, vc, nuisance)

    def _displace(self, target: np.ndarray, q: np.ndarray, structure: _Structure, amplitude: float) -> None:
        """target += the structure's displacement for `amplitude`, evaluated at q (mm)."""
        if amplitude == 0.0:
            return
        step = OUTPUT_RESOLUTION_MM
        lo = np.array([self.axes_mm[d][s.start] for d, s in enumerate(structure.out_box)], dtype=np.float32)[:, None]
        hi = np.array([self.axes_mm[d][s.stop - 1] for d, s in enumerate(structure.out_box)], dtype=np.float32)[:, None]
        near = np.nonzero(np.all((q >= lo) & (q <= hi), axis=0))[0]
        where = (q[:, near] - lo) / step
        displacement = structure.displacement(amplitude)
        for c in range(3):
            target[c, near] += ndi.map_coordinates(displacement[c], where, order=1, mode="constant")

    def _label_at(self, structure: _Structure, points_vox: np.ndarray) -> np.ndarray:
        """The structure's soft label at points (3, N) of the 1 mm template grid (0 outside its box)."""
        lo = np.array([s.start for s in structure.box], dtype=np.float32)[:, None]
        hi = np.array([s.stop for s in structure.box], dtype=np.float32)[:, None]
        near = np.nonzero(np.all((points_vox >= lo) & (points_vox < hi), axis=0))[0]
        values = np.zeros(points_vox.shape[1], dtype=np.float32)
        values[near] = ndi.map_coordinates(structure.label_box, points_vox[:, near] - lo, order=1, mode="constant")
        return values

    def _smooth_field(self, rng: np.random.Generator, *, n_components: int, rms: float, order: int) -> np.ndarray:
        """A smooth random field on the output grid: low-frequency cosines, 1/k^2 spectrum."""
        k = np.arange(order)
        weights = 1.0 / (1.0 + k[:, None, None] ** 2 + k[None, :, None] ** 2 + k[None, None, :] ** 2)
        coefficients = rng.normal(size=(n_components, order, order, order)) * weights
        bases = []
        for n in self.out_shape:
            t = (np.arange(n) + 0.5) / n
            bases.append(np.cos(np.pi * t[:, None] * k[None, :]))
        fields = np.einsum("cijk,xi,yj,zk->cxyz", coefficients, *bases, optimize=True)
        current = float(np.sqrt(np.mean(fields[(slice(None),) + self.work_index] ** 2))) or 1.0
        return (fields * (rms / current)).astype(np.float32)

    # -- measurement (what a benchmark can read back from an image) ----------------------------
    def region_image(self, name: str) -> nib.Nifti1Image:
        """A template region ("hippocampus", "white_matter", "csf") as a 1 mm mask image."""
        return nib.Nifti1Image(self.regions_1mm[name].astype(np.uint8), self.template_affine)


@functools.lru_cache(maxsize=1)
def template_anatomy() -> TemplateAnatomy:
    """The template anatomy, built once per process (a few seconds)."""
    return TemplateAnatomy()


def template_region(name: str, reference: nib.Nifti1Image) -> np.ndarray:
    """A template region ("hippocampus": GM > 0.5 inside the ellipsoids; "white_matter";
    "csf": ventricle core) resampled (nearest) onto `reference`'s grid, as a boolean array."""
    from nilearn.image import resample_to_img

    region = template_anatomy().region_image(name)
    if reference.shape[:3] != region.shape or not np.allclose(reference.affine, region.affine):
        region = resample_to_img(region, reference, interpolation="nearest", copy_header=True,
                                 force_resample=True)
    return np.asarray(region.dataobj) > 0


def measure_hippocampus(path: str | Path) -> dict:
    """Image-derived hippocampal volume, as an analyst would measure it (no ground truth used).

    Each voxel of the template hippocampal region (grey matter > 0.5 inside the ellipsoids) is
    weighted by its tissue fraction -- its intensity placed linearly between this image's CSF
    level (median of the ventricle core) and white-matter level (median of deep white matter),
    both read in template reference regions as in PET reference-region methods -- and the weights
    are summed (mm3). Why not a 3-class "probability of GM": at 2 mm most hippocampal voxels are
    part grey, part white matter, and when such a voxel loses tissue to CSF it looks more like
    grey matter, not less; the tissue fraction always falls. The region is fixed in MNI space, so
    the value needs no head-size correction. Also returns the intracranial volume (non-zero
    voxels, mm3).
    """
    path = Path(path)
    try:
        img = nib.load(str(path))
        data = np.asarray(img.dataobj, dtype=np.float32)
    except Exception as error:  # nibabel raises many types for broken files
        raise DataError(f"cannot read image ({error})", path) from error
    if data.ndim != 3:
        raise DataError(f"expected a 3D image, got shape {data.shape}", path)
    brain = data > 0
    if brain.sum() < 1000:
        raise DataError("almost no brain voxels (is this a skull-stripped T1 in MNI space?)", path)
    voxel_mm3 = float(abs(np.linalg.det(img.affine[:3, :3])))
    levels = {}
    for name in ("csf", "white_matter"):
        region = template_region(name, img) & brain
        if region.sum() < 10:
            raise DataError(f"the template {name} region holds almost no brain voxels (not in MNI space?)", path)
        levels[name] = float(np.median(data[region]))
    if levels["white_matter"] <= levels["csf"]:
        raise DataError("white matter is not brighter than CSF (not a T1-weighted image?)", path)
    roi = template_region("hippocampus", img) & brain
    tissue = np.clip((data[roi] - levels["csf"]) / (levels["white_matter"] - levels["csf"]), 0.0, 1.0)
    return {
        "hippocampus_mm3": float(tissue.sum()) * voxel_mm3,
        "icv_mm3": float(brain.sum()) * voxel_mm3,
    }
