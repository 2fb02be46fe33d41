"""Tiny on-disk cohorts and configs for the training / checkpoint / prediction / CLI tests.

A small BIDS dataset whose T1 images are the MNI152 template (bundled with nilearn) resampled to a
coarse 8 mm grid, with AD subjects given a darker band around the hippocampi and every image some
noise, so that the classes are learnable but the files stay tiny and quick to preprocess.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import numpy as np

from smmt_core.train.config import TrainConfig


@lru_cache(maxsize=1)
def _template() -> tuple[np.ndarray, np.ndarray]:
    from nilearn import datasets, image

    tpl = datasets.load_mni152_template()  # bundled 1 mm; resampling it is faster than resolution=2
    small = image.resample_img(tpl, target_affine=np.diag([8.0, 8.0, 8.0]), interpolation="linear",
                               copy_header=True, force_resample=True)
    data = np.asarray(small.dataobj, dtype=np.float32)
    return data, np.asarray(small.affine)


def write_t1(path: Path, rng: np.random.Generator, atrophy: float = 0.0) -> Path:
    """A small T1-like NIfTI in MNI space; `atrophy` darkens the medial temporal band."""
    import nibabel as nib

    data, affine = _template()
    data = data.copy()
    ijk = np.indices(data.shape).reshape(3, -1)
    xyz = (affine[:3, :3] @ ijk + affine[:3, 3:4]).reshape(3, *data.shape)
    band = (np.abs(np.abs(xyz[0]) - 26) < 14) & (xyz[1] > -45) & (xyz[1] < -5) & (xyz[2] > -30) & (xyz[2] < 8)
    data[band] *= 1.0 - atrophy
    data += rng.normal(0, 0.03 * float(data.max()), data.shape).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return path


def make_tiny_bids(root: Path, n_per_class: int = 6, seed: int = 0, with_mci: bool = False,
                   sessions: int = 1) -> Path:
    """A BIDS dataset with n_per_class CN and AD persons (and MCI when asked)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text(json.dumps({"Name": "tiny", "BIDSVersion": "1.8.0"}))
    rows = ["participant_id\tdiagnosis\tAGE\tPTGENDER\tAPOE4\tMMSE\tCDGLOBAL\tFAQ"]
    labels = ["CN", "AD"] + (["MCI"] if with_mci else [])
    k = 0
    for label in labels:
        for _ in range(n_per_class):
            k += 1
            pid = f"sub-{k:03d}"
            sick = {"CN": 0.0, "MCI": 0.5, "AD": 1.0}[label]
            mmse = float(np.clip(29 - 6 * sick + rng.normal(0, 1.5), 15, 30))
            cdr = 0.0 if sick == 0 else (0.5 if sick < 1 else float(rng.choice([0.5, 1.0])))
            faq = float(max(0.0, 12 * sick + rng.normal(0, 3)))
            age = float(rng.normal(75, 6))
            sex = "Male" if rng.random() < 0.5 else "Female"
            apoe = str(int(rng.choice([0, 1, 2], p=[0.7, 0.25, 0.05] if sick == 0 else [0.35, 0.45, 0.2])))
            rows.append(f"{pid}\t{label}\t{age:.1f}\t{sex}\t{apoe}\t{mmse:.0f}\t{cdr}\t{faq:.0f}")
            for s in range(sessions):
                if sessions > 1:
                    anat = root / pid / f"ses-M{6 * s:03d}" / "anat"
                    name = f"{pid}_ses-M{6 * s:03d}_T1w.nii.gz"
                else:
                    anat = root / pid / "anat"
                    name = f"{pid}_T1w.nii.gz"
                write_t1(anat / name, rng, atrophy=0.35 * sick)
    (root / "participants.tsv").write_text("\n".join(rows) + "\n")
    return root


def tiny_config(data: Path, out: Path, **overrides) -> TrainConfig:
    """A config that trains in about a second: 8 mm grid, 2 slices of 16x16, d_model 32."""
    base = dict(
        dataset=str(data), out=str(out), epochs=2, batch_size=4, d_model=32, n_heads=2, n_layers=1,
        n_fusion_tokens=2, image_size=16, n_slices=2, channels=1, resolution_mm=8.0,
        test_size=0.25, val_size=0.2, measure_energy=False, seed=0,
    )
    base.update(overrides)
    return TrainConfig.build("demo", **base)


@contextmanager
def sixteen_person_bids(base: Path):
    """(dataset, base): a 16-person BIDS cohort (8 per class, seed 5) under `base`, with the MRI disk
    cache pointed beside it while the context lasts (the baselines' tests build on it)."""
    data = make_tiny_bids(base / "bids", n_per_class=8, seed=5)
    with mri_cache_at(base / "cache"):
        yield data, base


@contextmanager
def mri_cache_at(path: Path):
    """Point the MRI disk cache ($SMMT_CACHE_DIR) at a test folder for the duration."""
    old = os.environ.get("SMMT_CACHE_DIR")
    os.environ["SMMT_CACHE_DIR"] = str(path)
    try:
        yield path
    finally:
        if old is None:
            os.environ.pop("SMMT_CACHE_DIR", None)
        else:
            os.environ["SMMT_CACHE_DIR"] = old


@contextmanager
def one_thread():
    """Torch on one thread: on a shared 2-core machine two OpenMP threads are ~10x slower."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


_SHARED: dict = {}


def shared_tiny_run(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(cohort root, run folder, MRI cache folder) of one tiny trained run, made once per session."""
    if "run" not in _SHARED:
        from smmt_core.train.trainer import train

        base = tmp_path_factory.mktemp("c1-shared")
        cohort = make_tiny_bids(base / "cohort")
        cache = base / "mri-cache"
        with mri_cache_at(cache), one_thread():
            result = train(tiny_config(cohort, base / "runs", run_name="tiny", epochs=2, features=["paper"]))
        _SHARED["run"] = (cohort, result.run_dir, cache)
    return _SHARED["run"]


@contextmanager
def peak_below(limit_bytes: int, what: str = "the code"):
    """Fail when the Python allocations inside (numpy's included) reach `limit_bytes`."""
    import tracemalloc

    tracemalloc.start()
    try:
        yield
        _, peak = tracemalloc.get_traced_memory()
        assert peak < limit_bytes, f"{what} used {peak / 2**20:.0f} MiB"
    finally:
        tracemalloc.stop()
