"""Brain extraction with deepbet: a learned skull-stripper whose weights ship inside its wheel.

Why deepbet: it is MIT-licensed, needs no download at run time (TorchScript models in the
package), runs on CPU and on CUDA, and handles scans with the skull in native space, which is what
the registration to the skull-stripped MNI template needs: an affine fit with the skull on matches
scalp to cortex (measured: r 0.62 -> 0.40).

Resolution: deepbet resizes the brain's bounding box (plus 10 %) to a cube before its segmentation
network; its default, 256 voxels a side, upsamples a 1 mm scan (the box is ~170-215 mm). At
MODEL_SIDE = 192 (about the scan's own 1 mm) the network costs less than half as much and the mask
on Colin27 overlaps the 256 one by Dice 0.990 (docs/intake.md).

Device: the app's own choice (`smmt_core.device.select_device`: "auto" is CUDA when there is one,
"cuda" without a GPU is refused); the device used is returned so the result can record it.
"""

from __future__ import annotations

import functools

import numpy as np

from smmt_core.data.intake import deps
from smmt_core.errors import DataError

MODEL_SIDE = 192  # voxels a side of the cube deepbet's segmentation network sees (deepbet's default: 256)


@functools.lru_cache(maxsize=2)
def _extractor(device: str):
    """One deepbet model per process and device (loading it costs ~0.3 s; worker processes keep theirs)."""
    import warnings

    import torch
    from deepbet import BrainExtraction

    with warnings.catch_warnings():  # torch >= 2.10 deprecates torch.jit.load, which deepbet's models need
        warnings.simplefilter("ignore", DeprecationWarning)
        bet = BrainExtraction(no_gpu=True)  # loaded on the CPU, then moved: deepbet alone would pick any GPU
    bet.model.to(torch.device(device))
    bet.bbox_model.to(torch.device(device))
    return bet


def extract_brain(img, *, device: str = "auto", path=None):
    """(brain image, brain mask image, device used) of a 3D `Nifti1Image`; both images on the
    input's grid, the device as torch names it ("cpu", "cuda:0").

    device: "auto", "cpu" or "cuda" (`smmt_core.device.select_device`). DataError (naming `path`)
    when deepbet finds no brain at all.
    """
    import nibabel as nib

    from smmt_core.device import select_device

    deps.require("brain extraction", path, names=("deepbet",))
    used = str(select_device(device))
    bet = _extractor(used)
    canonical = nib.as_closest_canonical(img)  # deepbet's networks expect RAS
    data = np.asarray(canonical.dataobj, dtype=np.float32)
    try:
        probability = bet.run_model(data.copy(), shape=(MODEL_SIDE,) * 3)
        mask_data = bet.postprocess(probability > 0.5)
    except (AssertionError, ValueError, RuntimeError) as exc:  # e.g. "Not enough foreground" (no head)
        raise DataError(f"brain extraction found no brain in this image ({exc})", path) from None
    if mask_data.sum() == 0:
        raise DataError("brain extraction found no brain in this image", path)
    mask_data = mask_data.astype(bool)
    back = nib.orientations.ornt_transform(nib.io_orientation(canonical.affine), nib.io_orientation(img.affine))
    mask_data = nib.apply_orientation(mask_data, back)  # onto the input's own voxel order
    brain_data = np.where(mask_data, np.asarray(img.dataobj, dtype=np.float32), 0.0).astype(np.float32)
    return (nib.Nifti1Image(brain_data, img.affine),
            nib.Nifti1Image(mask_data.astype(np.uint8), img.affine), used)
