"""Subjects -> model tensors: preloading through the cache, presence flags, toggles, collation."""

from __future__ import annotations

import math

import nibabel as nib
import pytest
import torch
from torch.utils.data import DataLoader

from smmt_core.batch import ModelInputs
from smmt_core.data.dataset import SubjectDataset, collate, encode_subject, parse_modalities
from smmt_core.data.features import FeatureEncoder
from smmt_core.data.preprocess import MRICache, PreprocessConfig
from smmt_core.data.subject import Modality, Subject
from smmt_core.data.template import mni_template
from smmt_core.errors import ConfigError, DataError

CFG = PreprocessConfig(image_size=16, n_slices=2, channels=3)


@pytest.fixture(scope="module")
def t1_files(tmp_path_factory):
    tpl = mni_template(2.0)
    root = tmp_path_factory.mktemp("t1")
    files = []
    for i in range(2):
        f = root / f"sub-{i}_T1w.nii.gz"
        nib.save(nib.Nifti1Image(tpl.data * (100 + 50 * i), tpl.affine), str(f))
        files.append(f)
    return files


@pytest.fixture()
def subjects(t1_files):
    return [
        Subject("p1", "CN", t1_path=t1_files[0], numeric={"MMSE": 29.0, "AGE": 70.0},
                categorical={"PTGENDER": "Male", "APOE4": "0"}),
        Subject("p2", "AD", t1_path=t1_files[1], numeric={"MMSE": 22.0, "AGE": math.nan},
                categorical={"PTGENDER": None, "APOE4": None}),
        Subject("p3", "AD", t1_path=None, numeric={"MMSE": math.nan, "AGE": math.nan},
                categorical={"PTGENDER": "Female", "APOE4": "1"}),
        Subject("p4", None, t1_path=t1_files[0], numeric={"AGE": 81.0}),
        Subject("p5", "MCI", t1_path=None),
    ]


def encoder(subjects):
    return FeatureEncoder(["MMSE", "AGE", "PTGENDER", "APOE4"]).fit(subjects[:3])


def test_items_presence_labels_and_progress(subjects, tmp_path):
    progress = []
    cache = MRICache(tmp_path / "cache")
    ds = SubjectDataset(subjects, encoder(subjects), ["CN", "AD"], CFG, cache,
                        on_progress=lambda d, t: progress.append((d, t)))
    assert progress == [(i, 5) for i in range(1, 6)]
    assert (cache.misses, cache.hits) == (2, 1)  # p4 reuses p1's file
    assert len(ds) == 5 and ds.mri_shape == (2, 3, 16, 16)
    item = ds[0]
    assert set(item) == {"mri", "numeric", "numeric_missing", "categorical", "present", "label", "index"}
    assert item["mri"].shape == (2, 3, 16, 16) and item["mri"].dtype == torch.float32
    assert 0.0 <= float(item["mri"].min()) and float(item["mri"].max()) <= 1.0 and float(item["mri"].max()) > 0.5
    assert torch.equal(item["mri"][:, 0], item["mri"][:, 2])
    presence = [ds[i]["present"].tolist() for i in range(5)]
    assert presence == [
        [True, True, True],
        [True, True, False],  # no categorical value at all
        [False, False, True],  # no MRI, no numeric value
        [True, True, False],
        [False, False, False],
    ]
    assert torch.count_nonzero(ds[2]["mri"]) == 0
    assert [ds[i]["label"] for i in range(5)] == [0, 1, 1, -1, -1]  # unknown and MCI -> -1
    assert ds[-1]["index"] == 4
    assert ds.class_counts() == {"CN": 1, "AD": 2}
    assert ds.warnings == [] and ds.problems == []


def test_dataloader_collate_gives_model_inputs(subjects, tmp_path):
    ds = SubjectDataset(subjects, encoder(subjects), ["CN", "AD"], CFG, MRICache(tmp_path / "c"))
    batches = list(DataLoader(ds, batch_size=2, shuffle=False, collate_fn=collate))
    assert len(batches) == 3
    inputs, labels = batches[0]
    assert isinstance(inputs, ModelInputs) and inputs.batch_size == 2
    assert inputs.mri.shape == (2, 2, 3, 16, 16) and inputs.mri.is_contiguous()
    assert inputs.numeric.shape == (2, 2) and inputs.numeric.dtype == torch.float32
    assert inputs.numeric_missing.dtype == torch.bool and inputs.categorical.dtype == torch.int64
    assert inputs.present.shape == (2, 3) and labels.tolist() == [0, 1]
    assert inputs.numeric_missing[1].tolist() == [False, True]
    with pytest.raises(ValueError):
        collate([])


def test_no_cache_means_nothing_written(subjects, tmp_path, monkeypatch):
    monkeypatch.setenv("SMMT_CACHE_DIR", str(tmp_path / "never"))
    ds = SubjectDataset(subjects[:2], encoder(subjects), ["CN", "AD"], CFG, cache=None)
    assert ds.present[:, 0].all() and not (tmp_path / "never").exists()


def test_unreadable_mri_raises_or_is_left_out(subjects, tmp_path):
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(b"not an image")
    bad = [Subject("px", "CN", t1_path=broken, numeric={"MMSE": 28.0})]
    with pytest.raises(DataError, match="broken.nii.gz"):
        SubjectDataset(bad, encoder(subjects), ["CN", "AD"], CFG)
    ds = SubjectDataset(bad, encoder(subjects), ["CN", "AD"], CFG, skip_unreadable=True)
    assert ds.present[0].tolist() == [False, True, False]
    assert len(ds.problems) == 1 and "px: MRI left out" in ds.problems[0] and "broken.nii.gz" in ds.problems[0]


def test_encode_subject_with_modalities_switched_off(subjects, tmp_path):
    enc, cache = encoder(subjects), MRICache(tmp_path / "c")
    inputs, pre = encode_subject(subjects[0], enc, CFG, cache)
    assert inputs.batch_size == 1 and inputs.mri.shape == (1, 2, 3, 16, 16)
    assert inputs.present.tolist() == [[True, True, True]]
    assert pre.volume.shape == (99, 117, 95) and pre.slices.shape == (2, 3, 16, 16)
    # the same numbers the dataset gives
    ds = SubjectDataset(subjects[:1], enc, ["CN", "AD"], CFG, cache)
    assert torch.allclose(ds[0]["mri"], inputs.mri[0]) and torch.equal(ds[0]["numeric"], inputs.numeric[0])

    off, pre_off = encode_subject(subjects[0], enc, CFG, cache, modalities=["clinical", Modality.CATEGORICAL])
    assert off.present.tolist() == [[False, True, True]] and torch.count_nonzero(off.mri) == 0
    assert pre_off is not None  # still returned for the viewer
    only_mri, _ = encode_subject(subjects[0], enc, CFG, cache, modalities={"MRI"})
    assert only_mri.present.tolist() == [[True, False, False]]
    none, pre_none = encode_subject(subjects[2], enc, CFG, cache)
    assert none.present.tolist() == [[False, False, True]] and pre_none is None


def test_encode_subject_broken_mri_only_matters_when_used(subjects, tmp_path):
    broken = tmp_path / "broken.nii"
    broken.write_text("nope")
    s = Subject("q", t1_path=broken, numeric={"MMSE": 25.0})
    enc = encoder(subjects)
    with pytest.raises(DataError, match="broken.nii"):
        encode_subject(s, enc, CFG)
    inputs, pre = encode_subject(s, enc, CFG, modalities=["clinical"])
    assert pre is None and inputs.present.tolist() == [[False, True, False]]


def test_unknown_modality_names():
    assert parse_modalities(None) == set(Modality)
    assert parse_modalities("mri") == {Modality.MRI}
    with pytest.raises(ConfigError, match="unknown modality 'pet'"):
        parse_modalities(["mri", "pet"])
