"""What the viewer shows of a subject's scan: own resolution, RAS, MNI and native."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from smmt_core.data.scan_views import is_axis_aligned, load_display_image, load_scan_views
from smmt_core.errors import DataError


def write(path, data, affine):
    nib.save(nib.Nifti1Image(np.asarray(data, dtype=np.float32), affine), str(path))
    return path


def ramp(shape):
    i, j, k = np.indices(shape)
    return (1 + i * 10000 + j * 100 + k).astype(np.float32)


MNI_1MM = np.array([[1.0, 0, 0, -20], [0, 1.0, 0, -25], [0, 0, 1.0, -15], [0, 0, 0, 1]])


def test_an_mni_scan_is_read_at_its_own_resolution_in_ras(tmp_path):
    # stored L-R flipped (LAS): the viewer gets RAS voxel order and the same world positions
    las = MNI_1MM.copy()
    las[0, 0], las[0, 3] = -1.0, 19.0
    data = ramp((40, 50, 30))
    image, notes = load_display_image(write(tmp_path / "las.nii.gz", data, las))
    assert image.volume.shape == (40, 50, 30) and image.voxel_mm == (1.0, 1.0, 1.0) and not notes
    assert image.affine[0, 0] > 0  # RAS
    for ijk in ((0, 0, 0), (7, 3, 2), (39, 49, 29)):  # same value at the same world point
        world = las @ np.array([*ijk, 1.0])
        ras_ijk = np.round(np.linalg.solve(image.affine, world)[:3]).astype(int)
        assert image.volume[tuple(ras_ijk)] == data[ijk]


def test_an_oblique_mni_image_is_put_on_an_axis_aligned_grid_of_its_voxel_size(tmp_path):
    angle = np.deg2rad(10)
    oblique = MNI_1MM.copy()
    oblique[:3, :3] = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]]) * 1.5
    assert not is_axis_aligned(oblique)
    path = write(tmp_path / "oblique.nii.gz", ramp((20, 20, 10)), oblique)
    image, notes = load_display_image(path, axis_aligned=True)
    assert is_axis_aligned(image.affine) and np.allclose(image.voxel_mm, 1.5)
    assert any("oblique" in note and "oblique.nii.gz" in note for note in notes)
    untouched, _ = load_display_image(path)  # native space is never resampled
    assert untouched.volume.shape == (20, 20, 10) and not is_axis_aligned(untouched.affine)


def test_without_the_intake_the_file_is_shown_as_it_is_and_there_is_no_native_space(tmp_path):
    t1 = write(tmp_path / "t1.nii.gz", ramp((40, 50, 30)), MNI_1MM)
    views = load_scan_views(t1, None)
    assert views.mni.path == t1 and views.native is None and np.array_equal(views.mni_to_native, np.eye(4))


def test_after_the_intake_mni_is_its_output_and_native_is_the_scan_with_the_stored_transform(tmp_path):
    native_affine = np.diag([0.9, 0.9, 1.2, 1.0])
    native_affine[:3, 3] = (-60, -80, -50)
    source = write(tmp_path / "raw.nii.gz", ramp((120, 140, 90)), native_affine)
    t1_mni = write(tmp_path / "t1_mni.nii.gz", ramp((40, 50, 30)), MNI_1MM)
    matrix = np.eye(4)
    matrix[:3, 3] = (4.0, -2.0, 7.5)
    intake = {"t1_mni": str(t1_mni), "native": str(source), "mni_to_native": matrix.tolist()}
    views = load_scan_views(source, intake)
    assert views.mni.path == t1_mni and views.native.path == source
    assert views.native.voxel_mm == pytest.approx((0.9, 0.9, 1.2))
    np.testing.assert_allclose(views.mni_point_to_native((1.0, 2.0, 3.0)), (5.0, 0.0, 10.5))
    np.testing.assert_allclose(views.native_point_to_mni((5.0, 0.0, 10.5)), (1.0, 2.0, 3.0))
    # a cache entry written before "native" was stored: the source file is the scan as acquired
    old = {k: v for k, v in intake.items() if k != "native"}
    assert load_scan_views(source, old).native.path == source
    # an image that needed nothing: its own MNI image, no second space
    same = {"t1_mni": str(t1_mni), "native": str(t1_mni), "mni_to_native": np.eye(4).tolist()}
    assert load_scan_views(t1_mni, same).native is None


def test_a_broken_transform_or_file_is_a_data_error_naming_it(tmp_path):
    t1 = write(tmp_path / "t1.nii.gz", ramp((10, 10, 10)), MNI_1MM)
    with pytest.raises(DataError, match="t1.nii.gz.*transform"):
        load_scan_views(t1, {"t1_mni": str(t1), "mni_to_native": np.zeros((4, 4)).tolist()})
    with pytest.raises(DataError, match="gone.nii.gz"):
        load_scan_views(tmp_path / "gone.nii.gz", None)
