"""The viewer against FSLeyes habits: the scan at its own resolution with the
model's grid over it, native space through the intake's transform, radiological display, linked zoom."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from smmt_gui.viewer import OrthoViewer
from smmt_gui.viewer.volume import PLANES, GridLink, VolumeGeometry, resample_slice


def ramp(shape) -> np.ndarray:
    i, j, k = np.indices(shape)
    return (1 + i * 10000 + j * 100 + k).astype(np.float32)  # every voxel tells its own index


def affine(voxel: float, origin) -> np.ndarray:
    a = np.diag([voxel, voxel, voxel, 1.0])
    a[:3, 3] = origin
    return a


# The model's grid: 2 mm, voxel centres from (-10, -12, -8) mm, outer corner at (-11, -13, -9). The
# scan: 1 mm, a wider field of view with its outer corner at (-15, -15, -9), so the model's grid sits
# at an offset of (4, 2, 0) mm in the scan's display frame.
MODEL_SHAPE, MODEL_AFFINE = (10, 12, 8), affine(2.0, (-10.0, -12.0, -8.0))
SCAN_SHAPE, SCAN_AFFINE = (28, 28, 16), affine(1.0, (-14.5, -14.5, -8.5))


def model_volume() -> np.ndarray:
    volume = np.full(MODEL_SHAPE, 0.5, np.float32)
    volume[3, 4, 2] = 1.0  # a marker voxel: world centre (-4, -4, -4) mm
    return volume


@pytest.fixture
def viewer(qtbot):
    widget = OrthoViewer()
    qtbot.addWidget(widget)
    widget.resize(1100, 750)
    widget.show()
    qtbot.waitExposed(widget)
    widget.set_volume(model_volume(), MODEL_AFFINE)
    widget.set_scans((ramp(SCAN_SHAPE), SCAN_AFFINE))
    return widget


# --- geometry (no Qt) ---------------------------------------------------------------------------------

def test_grid_link_lays_the_model_voxels_where_their_anatomy_is():
    shown = VolumeGeometry(ramp(SCAN_SHAPE), SCAN_AFFINE)
    model = VolumeGeometry(model_volume(), MODEL_AFFINE)
    link = GridLink(shown, model)
    np.testing.assert_allclose(link.offset, (4.0, 2.0, 0.0))
    shown.cursor = shown.voxel_of_mm((-4.0, -4.0, -4.0))
    assert link.other_index("axial") == 2 and link.other_index("coronal") == 4
    # the model voxel drawn under the display position of the scan voxel at (-4, -4, -4) mm is the marker
    x, y = shown.plane_cursor_mm("axial")
    assert link.other_voxel_at("axial", x, y) == (3, 4, 2)
    rx, ry, w, h = link.rect("axial")
    assert (rx, ry, w, h) == (4.0, 2.0, 20.0, 24.0)
    assert rx + 3 * 2.0 <= x < rx + 4 * 2.0 and ry + 4 * 2.0 <= y < ry + 5 * 2.0
    assert link.shown_index_of("axial", 2) == shown.voxel_of_mm((0, 0, -4.0))[2]
    rotated = SCAN_AFFINE.copy()
    rotated[0, 1] = 0.3
    with pytest.raises(ValueError, match="axis-aligned"):
        GridLink(VolumeGeometry(ramp(SCAN_SHAPE), rotated), model)


def test_resample_slice_goes_through_the_world_map():
    model = VolumeGeometry(model_volume(), MODEL_AFFINE)
    shift = np.eye(4)
    shift[:3, 3] = (6.0, 0.0, 0.0)  # native = MNI + 6 mm in x
    native = VolumeGeometry(ramp(SCAN_SHAPE), SCAN_AFFINE)
    native.cursor = native.voxel_of_mm((2.0, -4.0, -4.0))  # the marker's anatomy, 6 mm to the right
    image = resample_slice(native, "axial", model, np.linalg.inv(shift))
    assert image.shape == (SCAN_SHAPE[0], SCAN_SHAPE[1]) and image.dtype == np.float32
    i, j, _ = native.cursor
    assert image[i, j] == 1.0 and image[i - 6, j] == 0.5  # 6 mm to the left: an ordinary model voxel
    assert image[0, 0] == 0.0  # outside the model's grid


# --- own resolution + what the model saw --------------------------------------------------------------

def test_the_scan_is_shown_at_its_own_resolution_and_read_out_on_its_own_grid(viewer):
    assert viewer.geometry_.shape == SCAN_SHAPE and viewer.model_grid.shape == MODEL_SHAPE
    assert viewer.views["axial"].image.image.shape == (28, 28)  # 1 mm pixels, not the model's 2 mm
    viewer.set_cursor_mni((-4.2, -4.2, -4.2))
    assert viewer.cursor == (10, 10, 4)  # the 1 mm voxel whose centre (-4.5, -4.5, -4.5) is nearest
    text = viewer.cursor_label.text()
    assert "voxel (10, 10, 4)" in text and "-4.5, -4.5, -4.5 mm" in text
    assert f"intensity {1 + 10 * 10000 + 10 * 100 + 4}" in text  # the scan's own value
    assert "model voxel (3, 4, 2) 1.000" in text  # and the 2 mm voxel the model had there (the marker)
    assert viewer.space_label.text() == "scan 1 mm · model grid 2 mm"


def test_what_the_model_saw_is_its_own_grid_over_the_scan_and_can_be_switched_off(viewer, qtbot):
    axial = viewer.views["axial"]
    assert not axial.model_layer.isVisible()
    viewer.set_cursor_mni((-4.0, -4.0, -4.0))
    qtbot.keyClick(viewer, Qt.Key.Key_M)  # the key toggles it
    assert viewer.model_input_check.isChecked() and axial.model_layer.isVisible()
    np.testing.assert_array_equal(axial.model_layer.image, model_volume()[:, :, 2])  # 2 mm voxels, unresampled
    rect = axial.model_layer.mapRectToParent(axial.model_layer.boundingRect())
    assert (rect.x(), rect.y(), rect.width(), rect.height()) == pytest.approx((4.0, 2.0, 20.0, 24.0))
    viewer.set_model_opacity(0.3)
    assert axial.model_layer.opacity() == pytest.approx(0.3)
    viewer.model_input_check.setChecked(False)
    assert not any(view.model_layer.isVisible() for view in viewer.views.values())


def test_a_slice_model_shows_only_the_slices_it_saw_and_marks_them(viewer):
    rng = np.random.default_rng(0)
    prediction = SimpleNamespace(slices=rng.random((2, 16, 16)).astype(np.float32),
                                 cluster_ids=[rng.integers(0, 4, (2, 4, 4))], slice_indices=[2, 5], plane="axial")
    viewer.set_clusters(prediction)
    viewer.set_model_layer_visible(True)
    viewer.go_to_model_slice(0)
    assert viewer.model_index("axial") == 2 and viewer.views["axial"].model_layer.isVisible()
    # the cluster overlay of that slice sits on the model's square, moved into the scan's frame
    overlay = viewer.views["axial"].overlay
    rect = overlay.mapRectToParent(overlay.boundingRect())
    x0, y0, w, h = viewer.model_grid.model_slice_rect_mm("axial")
    assert (rect.x(), rect.y(), rect.width()) == pytest.approx((x0 + 4.0, y0 + 2.0, w))
    coronal = viewer.views["coronal"].model_layer.image  # [x, z]: only z = 2 and z = 5 are drawn
    assert np.flatnonzero(coronal.any(axis=0)).tolist() == [2, 5]
    markers = [line.value() for line in viewer.views["coronal"].markers]
    assert markers == pytest.approx([2.5 * 2.0, 5.5 * 2.0]) and viewer.views["coronal"].markers[0].angle == 0
    assert not viewer.views["axial"].markers
    viewer.set_slice("axial", viewer.link.shown_index_of("axial", 3))  # a slice the model did not see
    assert viewer.model_index("axial") == 3 and not viewer.views["axial"].model_layer.isVisible()


# --- native space ------------------------------------------------------------------------------------

def rigid(degrees: float, shift) -> np.ndarray:
    a = np.deg2rad(degrees)
    m = np.eye(4)
    m[:3, :3] = [[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]]
    m[:3, 3] = shift
    return m


NATIVE_SHAPE, NATIVE_AFFINE = (40, 40, 24), affine(1.0, (-15.0, -20.0, -10.0))
MNI_TO_NATIVE = rigid(12.0, (5.0, -3.0, 2.0))


@pytest.fixture
def with_native(viewer):
    viewer.set_scans((ramp(SCAN_SHAPE), SCAN_AFFINE), (ramp(NATIVE_SHAPE), NATIVE_AFFINE), MNI_TO_NATIVE)
    return viewer


def test_without_a_native_scan_there_is_only_mni(viewer):
    assert viewer.available_spaces() == ["mni"] and not viewer.space_box.isEnabled()
    viewer.set_space("native")
    assert viewer.space == "mni"


def test_native_space_shows_the_scan_as_acquired_and_maps_the_crosshair(with_native, qtbot):
    viewer = with_native
    point = np.array([-4.2, -3.7, -4.1])
    viewer.set_cursor_mni(point)
    assert viewer.cursor_mni_mm() == pytest.approx(tuple(point))
    mni_voxel = viewer.cursor
    assert viewer.space_box.isEnabled()
    with qtbot.waitSignal(viewer.image_changed):
        viewer.space_box.setCurrentIndex(viewer.space_box.findData("native"))
    assert viewer.space == "native" and viewer.geometry_.shape == NATIVE_SHAPE
    expected = (MNI_TO_NATIVE @ [*point, 1.0])[:3]
    assert viewer.cursor == viewer.geometry_.voxel_of_mm(expected)  # the same anatomy, in native voxels
    assert np.linalg.norm(np.subtract(viewer.geometry_.to_mm(viewer.cursor), expected)) <= np.sqrt(3) / 2
    assert viewer.cursor_mni_mm() == pytest.approx(tuple(point))  # not snapped to a native voxel
    text = viewer.cursor_label.text()
    assert "= MNI" in text and viewer.space_label.text() == "scan as acquired, 1 mm"
    assert viewer.model_index("axial") is None and viewer.view_overlay_ids() is None  # the 2 mm grid is not laid flat
    viewer.set_space("mni")
    assert viewer.cursor == mni_voxel  # back where it was: no drift from round trips
    viewer.set_space("native")
    viewer.set_cursor((20, 10, 12))  # a click in native space: the MNI point follows the inverse map
    native_mm = viewer.geometry_.to_mm((20, 10, 12))
    np.testing.assert_allclose(viewer.cursor_mni_mm(), (np.linalg.inv(MNI_TO_NATIVE) @ [*native_mm, 1.0])[:3])


def test_in_native_space_what_the_model_saw_is_mapped_back_through_the_transform(with_native):
    viewer = with_native
    viewer.set_model_layer_visible(True)
    viewer.set_space("native")
    viewer.set_cursor_mni((-4.0, -4.0, -4.0))  # the marker voxel's centre
    layer = viewer.views["axial"].model_layer
    assert layer.isVisible() and layer.image.shape == NATIVE_SHAPE[:2]
    i, j, _ = viewer.cursor
    assert layer.image[i, j] == 1.0  # the marker lands on its anatomy in the scan as acquired
    rows, cols = np.nonzero(layer.image == 1.0)
    assert np.hypot(rows - i, cols - j).max() < 3.0  # one 2 mm voxel, turned by 12 degrees


# --- radiological display ---------------------------------------------------------------------------

def screen_x(view, item) -> float:
    return view.view.mapViewToScene(item.pos()).x()


def test_radiological_mirrors_axial_and_coronal_and_the_letters_follow(viewer, qtbot):
    axial, sagittal = viewer.views["axial"], viewer.views["sagittal"]
    rng = np.random.default_rng(0)
    viewer.set_clusters(SimpleNamespace(slices=rng.random((2, 16, 16)).astype(np.float32),
                                        cluster_ids=[rng.integers(0, 4, (2, 4, 4))], slice_indices=[2, 5],
                                        plane="axial"))
    left, right = axial.letters[0], axial.letters[1]  # "L", "R"
    assert left.textItem.toPlainText() == "L" and screen_x(axial, left) < screen_x(axial, right)
    with qtbot.waitSignal(viewer.radiological_changed) as blocker:
        viewer.radiological_check.setChecked(True)
    assert blocker.args == [True]
    assert axial.view.xInverted() and viewer.views["coronal"].view.xInverted() and not sagittal.view.xInverted()
    assert screen_x(axial, right) < screen_x(axial, left)  # R on the screen's left
    assert all(view.xInverted() for view in viewer.model_input.views)  # the strip below follows
    coronal = viewer.views["coronal"]
    assert screen_x(coronal, coronal.letters[1]) < screen_x(coronal, coronal.letters[0])
    p, a = sagittal.letters[0], sagittal.letters[1]
    assert screen_x(sagittal, p) < screen_x(sagittal, a)  # sagittal unchanged
    # a click on the screen's left half of the axial view lands in the patient's right half
    target = axial.view.mapViewToScene(QPointF(0.0, 0.0))
    width = axial.view.sceneBoundingRect()
    pos = axial.mapFromScene(QPointF(width.left() + width.width() * 0.2, target.y() - 30))
    with qtbot.waitSignal(viewer.cursor_changed, timeout=2000):
        qtbot.mouseClick(axial.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    assert viewer.cursor[0] > SCAN_SHAPE[0] // 2
    viewer.set_radiological(False)
    assert not axial.view.xInverted() and screen_x(axial, left) < screen_x(axial, right)
    assert not any(view.xInverted() for view in viewer.model_input.views)


# --- linked zoom ----------------------------------------------------------------------------------------

def wheel(view, clicks: int) -> None:
    centre = view.viewport().rect().center()
    event = QWheelEvent(QPointF(centre), QPointF(view.viewport().mapToGlobal(centre)), QPoint(0, 0),
                        QPoint(0, 120 * clicks), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(view.viewport(), event)


def test_zooming_one_view_zooms_the_other_two(viewer, qtbot):
    axial, coronal, sagittal = (viewer.views[p] for p in PLANES)
    for view in (axial, coronal, sagittal):
        assert view.zoom()[0] == pytest.approx(1.0, rel=1e-3)
    wheel(axial, 3)
    magnification, (cx, cy) = axial.zoom()
    assert magnification > 1.5
    assert coronal.zoom()[0] == pytest.approx(magnification, rel=1e-3)
    assert sagittal.zoom()[0] == pytest.approx(magnification, rel=1e-3)
    assert coronal.zoom()[1][0] == pytest.approx(cx)  # x, shared by axial and coronal
    assert sagittal.zoom()[1][0] == pytest.approx(cy)  # y, shared by axial and sagittal
    viewer.reset_view()
    viewer.link_zoom_check.setChecked(False)
    wheel(axial, 3)
    assert axial.zoom()[0] > 1.5 and coronal.zoom()[0] == pytest.approx(1.0, rel=1e-3)
