"""MRI preprocessing and its disk cache, on real-format files made from the MNI152 template."""

from __future__ import annotations

import gzip
import json
import os

import nibabel as nib
import numpy as np
import pytest

from smmt_core.data import preprocess as pp
from smmt_core.data.preprocess import MRICache, PreprocessConfig, preprocess_t1, slice_positions_mm
from smmt_core.data.t1 import file_digest, load_t1
from smmt_core.data.template import extract_slice, mni_template
from smmt_core.errors import ConfigError, DataError
from smmt_core.train.config import TrainConfig


@pytest.fixture(scope="module")
def template2():
    """The 2 mm MNI152 template as (data scaled like a scanner would, affine)."""
    tpl = mni_template(2.0)
    return tpl.data * 800.0 + 20.0, tpl.affine


def save(path, data, affine, cls=nib.Nifti1Image):
    nib.save(cls(np.asarray(data, dtype=np.float32), affine), str(path))
    return path


# -- settings ------------------------------------------------------------------------------------


def test_config_presets_key_and_validation():
    cpu = TrainConfig.build("demo").preprocess
    paper = TrainConfig.build("paper").preprocess
    assert cpu == PreprocessConfig()
    assert cpu.mri_shape == (3, 1, 64, 64)
    assert paper.mri_shape == (3, 3, 256, 256) and paper.resolution_mm == 1.0
    assert cpu.key() == PreprocessConfig().key() != paper.key()
    assert PreprocessConfig(resolution_mm=2).key() == cpu.key()  # int and float spell the same
    assert PreprocessConfig(image_size=np.int64(64)) == cpu  # numpy integers are fine
    assert PreprocessConfig.from_dict(paper.to_dict()) == paper
    cfg = TrainConfig.build("demo", image_size=96, n_slices=5, channels=3, plane="coronal", resolution_mm=1.5)
    assert cfg.preprocess == PreprocessConfig(resolution_mm=1.5, plane="coronal", n_slices=5, image_size=96,
                                              channels=3)
    for bad in (dict(plane="oblique"), dict(n_slices=0), dict(image_size=4), dict(channels=0),
                dict(resolution_mm=0.1), dict(resolution_mm="x"), dict(image_size=64.5), dict(n_slices="3")):
        with pytest.raises(ConfigError):
            PreprocessConfig(**bad)


def test_slice_positions_cover_hippocampi_and_ventricles():
    assert slice_positions_mm("axial", 1) == [4.0]
    assert slice_positions_mm("axial", 3) == [-14.0, 4.0, 22.0]  # hippocampi .. ventricle bodies
    assert slice_positions_mm("coronal", 2) == [-38.0, -10.0]
    tpl = mni_template(2.0)
    many = pp.slice_indices_for("axial", 20, tpl.affine, tpl.data.shape)  # band holds 19 voxels
    assert many == list(range(28, 48))  # neighbours centred on z = +4 mm (index 38)


# -- the pipeline --------------------------------------------------------------------------------


def test_registered_scan_gives_mni_volume_slices_and_no_warning(tmp_path, template2):
    data, affine = template2
    f = save(tmp_path / "sub-01_T1w.nii.gz", data, affine)
    cfg = PreprocessConfig(n_slices=3, image_size=32, channels=3)
    out = preprocess_t1(f, cfg)
    assert out.volume.shape == (99, 117, 95) and out.volume.dtype == np.float32
    assert 0.0 <= out.volume.min() and out.volume.max() <= 1.0 and out.volume.max() > 0.99
    assert out.slices.shape == (3, 3, 32, 32) and out.slices.dtype == np.float32
    assert np.array_equal(out.slices[:, 0], out.slices[:, 2])  # replicated channels
    assert out.template_correlation > 0.99 and out.warnings == []
    # slice indices are where the documented MNI positions are
    z_mm = [(out.affine @ [0, 0, k, 1])[2] for k in out.slice_indices]
    assert np.allclose(z_mm, [-14, 4, 22], atol=1.0)
    assert out.slices[1, 0].mean() > 0.1  # the slice shows brain


def test_display_orientation_of_slices():
    vol = np.zeros((4, 5, 6), dtype=np.float32)
    vol[3, 4, 2] = 1.0  # right, anterior
    vol[0, 1, 5] = 2.0  # left, superior
    ax = extract_slice(vol, "axial", 2)
    assert ax.shape == (5, 4) and ax[0, 3] == 1.0  # anterior on top, right on the right
    cor = extract_slice(vol, "coronal", 1)
    assert cor.shape == (6, 4) and cor[0, 0] == 2.0  # superior on top, left on the left
    sag = extract_slice(vol, "sagittal", 0)
    assert sag.shape == (6, 5) and sag[0, 1] == 2.0  # superior on top


def test_intensity_scaling_is_robust_to_scanner_units_and_outliers(tmp_path, template2):
    data, affine = template2
    a = preprocess_t1(save(tmp_path / "a.nii", data, affine))
    spiked = data * 3.7 + 100.0
    spiked[50, 60, 40] = 1e7  # one hot voxel must not squash the contrast
    b = preprocess_t1(save(tmp_path / "b.nii", spiked, affine))
    diff = np.abs(a.volume - b.volume)
    diff[49:52, 59:62, 39:42] = 0  # the spike itself is clipped to 1
    assert float(diff.max()) < 0.02


def test_reoriented_file_gives_the_same_volume(tmp_path, template2):
    data, affine = template2
    a = preprocess_t1(save(tmp_path / "ras.nii.gz", data, affine))
    # Same brain stored left-to-right flipped (LAS) with the affine saying so.
    flip = np.diag([-1.0, 1.0, 1.0, 1.0])
    flip[0, 3] = data.shape[0] - 1
    b = preprocess_t1(save(tmp_path / "las.nii.gz", data[::-1], affine @ flip))
    assert np.abs(a.volume - b.volume).max() < 1e-4
    # A 1 mm version of the same brain resamples onto the same 2 mm grid.
    tpl1 = mni_template(1.0)
    c = preprocess_t1(save(tmp_path / "one_mm.nii.gz", tpl1.data, tpl1.affine))
    assert c.volume.shape == a.volume.shape
    assert np.corrcoef(a.volume.ravel(), c.volume.ravel())[0, 1] > 0.98


def test_unregistered_scan_is_used_but_warned_with_the_correlation(tmp_path, template2):
    data, affine = template2
    shifted = affine.copy()
    shifted[:3, 3] += [45.0, -50.0, 40.0]  # a native-space scan far from MNI alignment
    out = preprocess_t1(save(tmp_path / "native.nii.gz", data, shifted))
    assert out.template_correlation < 0.5
    assert len(out.warnings) == 1
    msg = out.warnings[0]
    assert "native.nii.gz does not look registered to MNI space" in msg
    assert f"correlation {out.template_correlation:.2f}" in msg


@pytest.mark.parametrize("plane,axis", [("coronal", 1), ("sagittal", 0)])
def test_other_planes(tmp_path, template2, plane, axis):
    data, affine = template2
    out = preprocess_t1(save(tmp_path / "t1.nii", data, affine), PreprocessConfig(plane=plane, n_slices=2))
    assert out.plane == plane and out.slices.shape == (2, 1, 64, 64)
    mm = [(out.affine[axis, axis] * k + out.affine[axis, 3]) for k in out.slice_indices]
    assert np.allclose(mm, slice_positions_mm(plane, 2), atol=1.0)


def test_other_formats_mgh_analyze_and_trailing_singleton(tmp_path, template2):
    data, affine = template2
    ref = preprocess_t1(save(tmp_path / "ref.nii", data, affine)).volume
    for name, cls, arr in [
        ("t1.mgz", nib.MGHImage, data),
        ("t1_4d.nii.gz", nib.Nifti1Image, data[..., None]),  # (X, Y, Z, 1)
    ]:
        out = preprocess_t1(save(tmp_path / name, arr, affine, cls))
        assert float(np.abs(out.volume - ref).max()) < 1e-3, name
    # Analyze stores no orientation, only voxel sizes: read as nibabel reads it
    save(tmp_path / "t1.hdr", data, affine, nib.AnalyzeImage)
    assert (tmp_path / "t1.img").exists()
    as_read = nib.load(str(tmp_path / "t1.hdr"))
    expected = preprocess_t1(save(tmp_path / "same.nii", np.asarray(as_read.dataobj), as_read.affine)).volume
    assert float(np.abs(preprocess_t1(tmp_path / "t1.hdr").volume - expected).max()) < 1e-6


def write_singular_affine_nifti(path):
    """A NIfTI whose sform (in use) is all zeros; nibabel cannot save one, so patch the header."""
    img = nib.Nifti1Image(np.random.default_rng(0).random((8, 8, 8)).astype(np.float32), np.eye(4))
    img.header.set_qform(None, code=0)
    nib.save(img, str(path))
    raw = bytearray(path.read_bytes())
    raw[280:328] = bytes(48)  # srow_x, srow_y, srow_z
    path.write_bytes(bytes(raw))


# -- refusals -----------------------------------------------------------------------------------


def test_load_t1_refuses_bad_files_naming_file_and_problem(tmp_path, template2):
    data, affine = template2
    cases = {}
    cases["missing.nii.gz"] = ("not found", None)
    (tmp_path / "text.nii").write_text("this is not an image\n")
    cases["text.nii"] = ("", None)
    good = save(tmp_path / "good.nii.gz", data, affine)
    raw = good.read_bytes()
    (tmp_path / "truncated.nii.gz").write_bytes(raw[: len(raw) // 3])
    cases["truncated.nii.gz"] = ("", None)
    save(tmp_path / "fmri.nii.gz", np.stack([data, data], axis=-1), affine)
    cases["fmri.nii.gz"] = ("4D image with 2 volumes", None)
    save(tmp_path / "nan.nii.gz", np.full((8, 8, 8), np.nan), np.eye(4))
    cases["nan.nii.gz"] = ("no finite values", None)
    save(tmp_path / "flat.nii.gz", np.full((8, 8, 8), 3.0), np.eye(4))
    cases["flat.nii.gz"] = ("constant", None)
    save(tmp_path / "flat2d.nii.gz", np.random.default_rng(0).random((8, 8)), np.eye(4))
    cases["flat2d.nii.gz"] = ("expected a 3D T1 volume", None)
    write_singular_affine_nifti(tmp_path / "singular.nii")
    cases["singular.nii"] = ("affine", None)
    cases["folder"] = ("is a folder", None)
    (tmp_path / "folder").mkdir()
    for name, (text, _) in cases.items():
        with pytest.raises(DataError) as info:
            load_t1(tmp_path / name)
        assert name in str(info.value), str(info.value)
        assert text in str(info.value)
        assert info.value.path == tmp_path / name


def test_isolated_nans_are_zeroed_with_a_warning(tmp_path, template2):
    data, affine = template2
    holes = data.copy()
    holes[0, 0, :5] = np.nan
    img = load_t1(save(tmp_path / "holes.nii.gz", holes, affine))
    assert np.isfinite(img.get_fdata()).all()
    out = preprocess_t1(tmp_path / "holes.nii.gz")
    assert any("5 NaN/infinite voxels" in w for w in out.warnings)


# -- cache ----------------------------------------------------------------------------------------


def test_cache_second_pass_reads_no_nifti_and_returns_the_same(tmp_path, template2, monkeypatch):
    data, affine = template2
    files = [save(tmp_path / f"s{i}.nii.gz", data * (1 + i), affine) for i in range(2)]
    cfg = PreprocessConfig(image_size=32, channels=3)
    cache = MRICache(tmp_path / "cache")
    first = [cache.get(f, cfg) for f in files]
    assert (cache.hits, cache.misses) == (0, 2)
    assert not list((tmp_path / "cache").rglob(".tmp-*"))  # atomic writes leave no temp files

    loads = []
    real_load = nib.load
    monkeypatch.setattr(nib, "load", lambda *a, **k: loads.append(a) or real_load(*a, **k))
    again = MRICache(tmp_path / "cache")  # a new process: no in-memory state
    second = [again.get(f, cfg) for f in files]
    assert loads == [] and (again.hits, again.misses) == (2, 0)
    for a, b in zip(first, second):
        assert b.slices.shape == (3, 3, 32, 32)
        assert np.array_equal(a.slices, b.slices)
        assert np.abs(a.volume - b.volume).max() < 1e-3  # stored as float16
        assert a.slice_indices == b.slice_indices and a.plane == b.plane
        assert a.template_correlation == pytest.approx(b.template_correlation)
    assert again.get(files[0], cfg, load_volume=False).volume is None

    # other settings or changed contents are misses
    again.get(files[0], PreprocessConfig(image_size=16))
    save(files[1], data * 5, affine)
    os.utime(files[1], ns=(1, 1))
    again.get(files[1], cfg)
    assert again.misses == 2


def test_cache_default_root_and_corrupt_entry(tmp_path, template2, monkeypatch):
    monkeypatch.setenv("SMMT_CACHE_DIR", str(tmp_path / "envcache"))
    assert MRICache().root == tmp_path / "envcache"
    data, affine = template2
    f = save(tmp_path / "t1.nii.gz", data, affine)
    cache = MRICache()
    cache.get(f)
    entry = cache.entry_path(f, PreprocessConfig())
    entry.write_bytes(b"garbage")  # e.g. a disk that filled up in an older version
    fresh = MRICache()
    out = fresh.get(f)
    assert fresh.misses == 1 and out.slices.shape == (3, 1, 64, 64)
    assert MRICache().get(f).slices.shape == (3, 1, 64, 64)  # rewritten, readable again
    # a well-formed archive with the wrong content is a miss too
    meta = json.dumps({"key": PreprocessConfig().key()})
    np.savez(entry, meta=np.array(meta), slices=np.zeros((1, 1, 8, 8), np.float32))
    third = MRICache()
    assert third.get(f).slices.shape == (3, 1, 64, 64) and third.misses == 1


def test_analyze_digest_covers_the_image_half(tmp_path, template2):
    data, affine = template2
    hdr = save(tmp_path / "scan.hdr", data, affine, nib.AnalyzeImage)
    before = file_digest(hdr)
    save(tmp_path / "scan.hdr", data * 2, affine, nib.AnalyzeImage)  # header identical, image differs
    assert file_digest(hdr) != before
    assert file_digest(tmp_path / "scan.img") == file_digest(hdr)


def test_cache_refuses_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        MRICache(tmp_path / "c").get(tmp_path / "nope.nii.gz")


def test_gzip_of_garbage_is_a_clear_error(tmp_path):
    bad = tmp_path / "zip.nii.gz"
    with gzip.open(bad, "wb") as fh:
        fh.write(b"\x00" * 400)
    with pytest.raises(DataError) as info:
        preprocess_t1(bad)
    assert "zip.nii.gz" in str(info.value)
