"""How much memory a training run will need, estimated from its settings before anything runs.

Why: the training data (every subject's preprocessed slices) are allocated once, up front, and a
batch's activations grow with slices x pixels; settings such as `--image-size 1024 --slices 64`
used to run for a minute and then die in a traceback asking for tens of GB. The estimate is rough
(the data tensor is exact; a batch's activations are an upper bound, torch's fused kernels may
need half of it) and refuses only what cannot fit: the data plus half that bound above the memory
that is available now.

The parts: the data tensor (N x slices x H x W float32, or the float16 brain crop of the volume
input), the CNN's activations for one batch (conv, norm and pooled maps of each of its 4 blocks,
kept for the backward pass, doubled for their gradients) and the intra-modal attention over the
MRI tokens (one score matrix per head and layer: dense n^2, cluster-sparse n^2 / k).
"""

from __future__ import annotations

import math
import os

from smmt_core.errors import ConfigError

GIB = 2**30
_FLOAT32 = 4


def available_memory_bytes() -> int | None:
    """Memory this process could still use (psutil when installed, else /proc via sysconf); None if unknown."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except (ImportError, OSError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def _mri_tokens(config) -> int:
    """MRI tokens per sample: one per 16x16 cell of each slice, or one per brain patch of the volume."""
    pre = config.preprocess
    if pre.is_volume:
        from smmt_core.data.volume import volume_geometry

        return int(volume_geometry(pre.resolution_mm, pre.patch_mm).n_tokens)
    slices, _, height, width = pre.mri_shape
    return slices * (height // 16) * (width // 16)


def training_memory(config, n_subjects: int) -> dict[str, int]:
    """Estimated bytes: {"data": the subjects' MRI tensor, "batch": one batch's activations}."""
    shape = config.preprocess.mri_shape
    batch = min(int(config.optim.batch_size), max(1, n_subjects))
    if config.preprocess.is_volume:
        data = n_subjects * math.prod(shape) * 2  # float16 crops
        cnn = batch * math.prod(shape) * _FLOAT32 * 4  # input, its float32 copy, patches, gradients
    else:
        slices, channels, height, width = shape
        data = n_subjects * slices * height * width * _FLOAT32  # one channel kept, replicated per batch
        from smmt_core.model.encoders import cnn_widths

        per_image = 0
        for block, width_k in enumerate(cnn_widths(config.model.d_model)):
            pixels = height * width / 4**block
            per_image += 2.25 * width_k * pixels  # conv and norm outputs, the pooled map
        cnn = int(2 * batch * slices * (per_image + channels * height * width) * _FLOAT32)
    tokens = _mri_tokens(config)
    clusters = 1 if not config.model.sparse else max(1, math.ceil(math.log2(max(tokens, 2))))
    if config.model.sparse and config.model.cluster_size:
        clusters = max(1, tokens // int(config.model.cluster_size))
    attention = batch * config.model.n_layers * config.model.n_heads * tokens * tokens // clusters * _FLOAT32
    token_maps = 2 * 12 * batch * tokens * config.model.d_model * max(1, config.model.n_layers) * _FLOAT32
    return {"data": int(data), "batch": int(cnn + attention + token_maps)}


def check_training_memory(config, n_subjects: int, available: int | None = None, device=None) -> None:
    """ConfigError (one line, naming the flags) when the data and one batch cannot fit in memory.

    `available` defaults to what the machine has free now (unknown: no check). On a CUDA `device`
    the batch is compared with the GPU's free memory and the data with the machine's.
    """
    available = available_memory_bytes() if available is None else available
    if not available:
        return
    gpu = _cuda_free(device)
    if _fits(config, n_subjects, available, gpu):
        return
    need = training_memory(config, n_subjects)
    total = need["data"] + need["batch"]
    pre = config.preprocess
    if pre.is_volume:
        settings = f"--mri-input volume --resolution {pre.resolution_mm:g} --batch-size {config.optim.batch_size}"
        hint = "use a coarser --resolution or a smaller --batch-size"
    else:
        settings = f"--image-size {pre.image_size} --slices {pre.n_slices} --batch-size {config.optim.batch_size}"
        hint = _what_fits(config, n_subjects, available, gpu)
    where = f"{available / GIB:,.1f} GiB is available" + (f" ({gpu / GIB:,.1f} GiB on the GPU)" if gpu else "")
    raise ConfigError(
        f"{settings} would need up to {total / GIB:,.1f} GiB ({need['data'] / GIB:,.1f} GiB for the preprocessed "
        f"MRI of {n_subjects} subjects, {need['batch'] / GIB:,.1f} GiB for one batch); {where}: {hint}")


def _cuda_free(device) -> int | None:
    """Free bytes on a CUDA device, None for any other device."""
    if device is None or getattr(device, "type", str(device).split(":")[0]) != "cuda":
        return None
    try:
        import torch

        return int(torch.cuda.mem_get_info(device)[0])
    except (RuntimeError, AssertionError):
        return None


def _what_fits(config, n_subjects: int, available: int, gpu: int | None) -> str:
    """The largest image size (same slices and batch), else the most slices at 64 pixels, that fits."""
    pre = config.preprocess
    for size in (512, 384, 256, 192, 128, 96, 64, 48, 32, 16):
        if size < pre.image_size and _fits(config, n_subjects, available, gpu, image_size=size):
            return f"--image-size {size} with --slices {pre.n_slices} would fit"
    for slices in range(pre.n_slices - 1, 0, -1):
        if _fits(config, n_subjects, available, gpu, image_size=min(pre.image_size, 64),
                 n_slices=slices):
            return f"--image-size {min(pre.image_size, 64)} with --slices {slices} would fit"
    return "even one 16-pixel slice per subject does not fit; use a smaller --batch-size or fewer subjects"


def _fits(config, n_subjects: int, available: int, gpu: int | None = None, **preprocess) -> bool:
    """The exact data and the lower end of the batch estimate fit (the batch on the GPU when given)."""
    trial = config.model_copy(update={"preprocess": config.preprocess.model_copy(update=preprocess)}) \
        if preprocess else config
    need = training_memory(trial, n_subjects)
    if gpu is not None:
        return need["data"] <= available and need["batch"] // 2 <= gpu
    return need["data"] + need["batch"] // 2 <= available
