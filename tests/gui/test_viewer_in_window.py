"""The main window hands the viewer the subject's scan itself (own resolution, and native space
after the intake), under the model's grid the prediction carries."""

from __future__ import annotations

import dataclasses

import nibabel as nib
import numpy as np
import pytest


def test_the_viewer_shows_the_scan_file_under_the_models_grid(loaded, qtbot):
    viewer = loaded.viewer
    qtbot.waitUntil(lambda: "mni" in viewer.scans, timeout=30000)
    scan = nib.as_closest_canonical(nib.load(str(loaded.subject.t1_path)))
    assert viewer.geometry_ is viewer.scans["mni"] and viewer.geometry_.shape == scan.shape
    np.testing.assert_allclose(viewer.geometry_.affine, scan.affine)
    assert viewer.model_grid.shape == loaded.last_prediction.volume.shape
    assert viewer.available_spaces() == ["mni"]  # the demo scan needed no intake: nothing else to show


def write(path, data, affine) -> str:
    nib.save(nib.Nifti1Image(np.asarray(data, np.float32), affine), str(path))
    return str(path)


def with_intake(window, monkeypatch, intake: dict) -> None:
    """Every prediction from now on carries `intake` (as one of a scan that went through it would)."""
    predictor = window.session.predictor
    original = predictor.predict
    monkeypatch.setattr(predictor, "predict",
                        lambda *args, **kwargs: dataclasses.replace(original(*args, **kwargs), intake=intake))


def test_after_the_intake_the_registered_scan_and_the_native_scan_are_offered(loaded, qtbot, monkeypatch, tmp_path):
    window, viewer = loaded, loaded.viewer
    grid = window.last_prediction.volume_affine
    fine = np.diag([4.0, 4.0, 4.0, 1.0])  # a finer MNI image than the tiny model's 8 mm grid
    fine[:3, 3] = grid[:3, 3] - 2.0
    shape = tuple(2 * n for n in window.last_prediction.volume.shape)
    native_affine = np.diag([3.0, 3.0, 3.0, 1.0])
    native_affine[:3, 3] = (-90.0, -120.0, -70.0)
    mni_to_native = np.eye(4)
    mni_to_native[:3, 3] = (6.0, -4.0, 3.0)
    rng = np.random.default_rng(0)
    intake = {"t1_mni": write(tmp_path / "t1_mni.nii.gz", rng.random(shape) + 1, fine),
              "native": write(tmp_path / "native.nii.gz", rng.random((60, 72, 60)) + 1, native_affine),
              "mni_to_native": mni_to_native.tolist(), "steps": "brain+bias+register", "qc": "pass"}
    with_intake(window, monkeypatch, intake)
    window.cohort_panel.select_row(1)
    qtbot.waitUntil(lambda: "native" in viewer.scans, timeout=60000)
    assert viewer.space == "mni" and viewer.geometry_.shape == shape and viewer.space_box.isEnabled()
    assert viewer.space_label.text() == "scan 4 mm · model grid 8 mm"
    before = viewer.cursor_mni_mm()
    viewer.space_box.setCurrentIndex(viewer.space_box.findData("native"))
    assert viewer.geometry_.shape == (60, 72, 60) and viewer.cursor_mni_mm() == pytest.approx(before)
    native_mm = viewer.geometry_.to_mm(viewer.cursor)
    assert np.abs(np.subtract(native_mm, np.add(before, (6.0, -4.0, 3.0)))).max() <= 1.5  # half a 3 mm voxel


def test_a_scan_that_cannot_be_shown_leaves_the_grid_and_says_why(loaded, qtbot, monkeypatch, tmp_path):
    window, viewer = loaded, loaded.viewer
    missing = tmp_path / "gone" / "t1_mni.nii.gz"
    with_intake(window, monkeypatch, {"t1_mni": str(missing), "mni_to_native": np.eye(4).tolist()})
    window.cohort_panel.select_row(1)
    qtbot.waitUntil(lambda: "gone" in window.message_bar.label.text(), timeout=60000)
    assert "t1_mni.nii.gz" in window.message_bar.label.text()
    assert viewer.geometry_ is viewer.model_grid and not viewer.scans


def test_the_radiological_display_is_remembered(qtbot):
    from smmt_gui.main_window import MainWindow

    first = MainWindow(scan_runs=False)
    qtbot.addWidget(first)
    assert not first.viewer.radiological  # neurological by default
    first.viewer.radiological_check.setChecked(True)
    first.close()
    second = MainWindow(scan_runs=False)
    qtbot.addWidget(second)
    assert second.viewer.radiological and second.viewer.views["axial"].view.xInverted()
    second.close()
