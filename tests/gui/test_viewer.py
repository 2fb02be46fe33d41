"""The MRI viewer: geometry, linked crosshair, sliders, keys, window/level, cluster overlay."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from PySide6.QtCore import QPointF, QRectF, Qt

from smmt_gui.viewer import OrthoViewer
from smmt_gui.viewer.colormaps import cluster_color, cluster_lut
from smmt_gui.viewer.ortho import image_grid_to_view
from smmt_gui.viewer.volume import PLANES, VolumeGeometry, robust_levels


def ramp_volume(shape=(20, 24, 16)) -> np.ndarray:
    i, j, k = np.indices(shape)
    return (i * 10000 + j * 100 + k).astype(np.float32)  # every voxel tells its own index


AFFINE = np.array([[2.0, 0, 0, -20], [0, 3.0, 0, -36], [0, 0, 4.0, -32], [0, 0, 0, 1]])


# --- geometry (no Qt) ----------------------------------------------------------------------------------

def test_slices_follow_ras_display_conventions():
    g = VolumeGeometry(ramp_volume(), AFFINE, cursor=(3, 5, 7))
    axial, coronal, sagittal = (g.slice_image(p) for p in PLANES)
    assert axial.shape == (20, 24) and axial[2, 4] == 2 * 10000 + 4 * 100 + 7
    assert coronal.shape == (20, 16) and coronal[2, 4] == 2 * 10000 + 5 * 100 + 4
    assert sagittal.shape == (24, 16) and sagittal[2, 4] == 3 * 10000 + 2 * 100 + 4
    assert all(s.flags.c_contiguous and s.dtype == np.float32 for s in (axial, coronal, sagittal))


def test_voxel_mm_round_trip_with_anisotropic_voxels():
    g = VolumeGeometry(ramp_volume(), AFFINE, cursor=(3, 5, 7))
    assert g.plane_extent_mm("coronal") == (40.0, 64.0)
    x, y = g.plane_cursor_mm("sagittal")  # voxel centre of (j=5, k=7)
    assert (x, y) == (5.5 * 3.0, 7.5 * 4.0)
    assert g.voxel_at("sagittal", x, y) == (3, 5, 7)
    assert g.voxel_at("axial", 1.9, 2.9) == (0, 0, 7)
    assert g.to_mm((3, 5, 7)) == (-14.0, -21.0, -4.0)
    assert not g.contains(g.voxel_at("axial", -0.5, 1.0))


def test_geometry_refuses_non_3d():
    with pytest.raises(ValueError, match="3D"):
        VolumeGeometry(np.zeros((4, 4, 4, 2)))


def test_robust_levels_ignore_background_and_outliers():
    data = np.zeros((30, 30, 30), np.float32)
    data[5:25, 5:25, 5:25] = np.linspace(100, 200, 20 ** 3).reshape(20, 20, 20)
    data[0, 0, 0] = 1e6
    low, high = robust_levels(data)
    assert 100 <= low < 102 and 198 < high <= 200


def test_model_slice_rect_matches_core_preprocessing():
    """A marker voxel must fall in the overlay cell of the model-image pixel that holds it."""
    from smmt_core.data.preprocess import _square_resize
    from smmt_core.data.template import extract_slice

    shape = (10, 6, 5)
    g = VolumeGeometry(np.zeros(shape), np.diag([2.0, 2.0, 2.0, 1.0]), cursor=(0, 0, 2))
    for plane, voxel in (("axial", (7, 1, 2)), ("coronal", (2, 3, 4)), ("sagittal", (4, 5, 1))):
        volume = np.zeros(shape, np.float32)
        volume[voxel] = 1.0
        fixed = {"axial": 2, "coronal": 1, "sagittal": 0}[plane]
        image = extract_slice(volume, plane, voxel[fixed])
        side = max(image.shape)
        padded = _square_resize(image[None], side)[0]  # same size: padding only
        row, col = np.argwhere(padded == 1.0)[0]
        ids = np.arange(side * side).reshape(side, side)
        view_ids = image_grid_to_view(ids)
        g.cursor = voxel
        x0, y0, w, h = g.model_slice_rect_mm(plane)
        cx, cy = g.plane_cursor_mm(plane)
        hx, vy = int((cx - x0) // (w / side)), int((cy - y0) // (h / side))
        assert view_ids[hx, vy] == ids[row, col], plane


def test_cluster_lut_is_discrete_and_exact():
    lut = cluster_lut(5)
    assert lut.shape == (5, 4) and lut.dtype == np.uint8
    assert tuple(lut[3, :3]) == cluster_color(3) and (lut[:, 3] == 255).all()
    assert len({tuple(row) for row in lut}) == 5


# --- the widget ----------------------------------------------------------------------------------------------

@pytest.fixture
def viewer(qtbot):
    widget = OrthoViewer()
    qtbot.addWidget(widget)
    widget.resize(1000, 700)
    widget.show()
    widget.set_volume(ramp_volume(), AFFINE)
    return widget


def fake_prediction(n_layers=2, indices=(4, 8, 12)):
    rng = np.random.default_rng(1)
    return SimpleNamespace(
        slices=rng.random((3, 32, 32)).astype(np.float32),
        cluster_ids=[rng.integers(0, 5, (3, 4, 4)) for _ in range(n_layers)],
        slice_indices=list(indices), plane="axial",
    )


def test_views_show_the_slices_through_the_cursor(viewer):
    assert viewer.cursor == (10, 12, 8)
    for plane in PLANES:
        image = viewer.views[plane].image.image
        np.testing.assert_array_equal(image, viewer.geometry_.slice_image(plane))
        assert image.dtype == np.float32
    assert "voxel (10, 12, 8)" in viewer.cursor_label.text()


def test_click_moves_the_linked_crosshair(viewer, qtbot):
    axial = viewer.views["axial"]
    with qtbot.waitSignal(viewer.cursor_changed) as blocker:
        axial.clicked.emit(3 * 2.0 + 1.0, 7 * 3.0 + 1.0)  # display mm of voxel (3, 7)
    assert blocker.args[0] == (3, 7, 8)
    coronal = viewer.views["coronal"].image.image
    np.testing.assert_array_equal(coronal, viewer.geometry_.slice_image("coronal", 7))
    assert viewer.views["sagittal"].image.image[0, 0] == 3 * 10000
    assert viewer.sliders["sagittal"].value() == 3 and viewer.sliders["coronal"].value() == 7
    assert viewer.views["coronal"].v_line.value() == pytest.approx(3.5 * 2.0)
    assert "voxel (3, 7, 8)" in viewer.cursor_label.text()
    assert "-14.0, -15.0, 0.0 mm" in viewer.cursor_label.text()


def test_real_mouse_click_on_a_view(viewer, qtbot):
    view = viewer.views["axial"]
    qtbot.waitExposed(viewer)
    target = view.view.mapViewToScene(QPointF(5 * 2.0 + 1.0, 9 * 3.0 + 1.0))
    pos = view.mapFromScene(target)
    with qtbot.waitSignal(viewer.cursor_changed, timeout=2000) as blocker:
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    assert blocker.args[0][:2] == (5, 9)


def test_slider_and_keys_change_slices(viewer, qtbot):
    viewer.sliders["axial"].setValue(3)
    assert viewer.cursor[2] == 3
    assert viewer.views["axial"].image.image[0, 0] == 3
    viewer.setFocus()
    viewer.active_plane = "axial"
    qtbot.keyClick(viewer, Qt.Key.Key_Up)
    assert viewer.cursor[2] == 4
    qtbot.keyClick(viewer, Qt.Key.Key_C)
    qtbot.keyClick(viewer, Qt.Key.Key_PageDown)
    assert viewer.cursor[1] == 11
    for _ in range(30):
        qtbot.keyClick(viewer, Qt.Key.Key_Down)
    assert viewer.cursor[1] == 0  # clamped at the edge
    assert viewer.sliders["coronal"].value() == 0


def test_window_level_drives_all_views(viewer):
    viewer.histogram.item.setLevels(100.0, 5000.0)
    for view in viewer.views.values():
        assert tuple(view.image.levels) == pytest.approx((100.0, 5000.0))
    viewer.reset_view()
    assert viewer.levels == pytest.approx(robust_levels(viewer.geometry_.volume))


def test_colormap_changes_every_lookup_table(viewer):
    viewer.set_colormap("inferno")
    luts = [view.image.lut for view in viewer.views.values()]
    assert all(lut is not None and len(lut) == 256 for lut in luts)
    assert not np.array_equal(luts[0][128, :3], [128, 128, 128])
    viewer.colormap_box.setCurrentText("grey")
    lut = viewer.views["axial"].image.lut
    assert lut[255, :3].tolist() == [255, 255, 255] and lut[0, :3].tolist() == [0, 0, 0]


def test_overlay_matches_the_cluster_ids(viewer):
    prediction = fake_prediction()
    viewer.set_clusters(prediction)
    strip = viewer.model_input
    assert len(strip.images) == 3 and viewer.layer_box.count() == 2
    for s in range(3):
        np.testing.assert_array_equal(strip.overlays[s].image, prediction.cluster_ids[0][s])
    viewer.layer_box.setCurrentIndex(1)
    np.testing.assert_array_equal(strip.overlays[2].image, prediction.cluster_ids[1][2])
    # the ortho view shows the grid of the model slice it is on, and nothing elsewhere
    viewer.set_slice("axial", 8)
    np.testing.assert_array_equal(viewer.view_overlay_ids(), image_grid_to_view(prediction.cluster_ids[1][1]))
    assert viewer.views["axial"].overlay.isVisible()
    np.testing.assert_array_equal(viewer.views["axial"].overlay.image,
                                  image_grid_to_view(prediction.cluster_ids[1][1]))
    viewer.set_slice("axial", 9)
    assert viewer.view_overlay_ids() is None and not viewer.views["axial"].overlay.isVisible()
    viewer.go_to_model_slice(2)
    assert viewer.cursor[2] == 12 and viewer.views["axial"].overlay.isVisible()


def test_overlay_lut_opacity_and_toggle(viewer, qtbot):
    viewer.set_clusters(fake_prediction())
    overlay = viewer.model_input.overlays[0]
    n = viewer.model_input.n_clusters
    assert tuple(overlay.levels) == (0, n) and overlay.lut.shape == (n, 4)
    viewer.opacity_slider.setValue(80)
    assert overlay.opacity() == pytest.approx(0.8)
    viewer.set_slice("axial", 4)
    assert viewer.views["axial"].overlay.opacity() == pytest.approx(0.8)
    viewer.setFocus()
    qtbot.keyClick(viewer, Qt.Key.Key_O)
    assert not viewer.overlay_check.isChecked()
    assert not overlay.isVisible() and not viewer.views["axial"].overlay.isVisible()
    viewer.set_clusters(None)
    assert viewer.model_input.images == [] and not viewer.layer_box.isEnabled()


def test_hovering_a_patch_names_its_cluster(viewer, qtbot):
    prediction = fake_prediction()
    viewer.set_clusters(prediction)
    strip = viewer.model_input
    row, col, cluster = strip.cluster_at(1, x=17.0, y=9.0)  # 32 px, 4x4 grid: 8 px per patch
    assert (row, col) == (1, 2) and cluster == prediction.cluster_ids[0][1, 1, 2]
    assert strip.cluster_at(1, x=40.0, y=1.0) is None
    qtbot.waitExposed(viewer)
    scene_pos = strip.views[1].mapViewToScene(QPointF(17.0, 9.0))
    with qtbot.waitSignal(viewer.status_text) as blocker:
        strip.scene().sigMouseMoved.emit(scene_pos)
    # the slice by the name shown above it; patch and cluster counted from 1 alike
    assert blocker.args[0].startswith(f"{strip.slice_names[1]}, patch row 2, column 3: cluster {cluster + 1} of")


def test_cluster_colours_are_distinct():
    """A qualitative palette; no two of the first ten colours look alike."""
    colours = [np.array(cluster_color(k), float) for k in range(10)]
    closest = min(np.linalg.norm(a - b) for i, a in enumerate(colours) for b in colours[i + 1:])
    assert closest > 60


def test_mismatched_cluster_ids_are_refused(viewer):
    bad = fake_prediction()
    bad.cluster_ids = [np.zeros((2, 4, 4), int)]
    with pytest.raises(ValueError, match="do not match"):
        viewer.set_clusters(bad)


def test_clear_and_new_volume(viewer):
    viewer.clear()
    assert not viewer.has_volume and viewer.views["axial"].image.image is None
    viewer.set_volume(np.random.default_rng(0).random((8, 9, 10)), np.eye(4))
    assert viewer.cursor == (4, 4, 5) and viewer.sliders["sagittal"].maximum() == 7


def test_new_ids_for_the_same_slices_update_in_place(viewer):
    first = fake_prediction()
    viewer.set_clusters(first)
    items = list(viewer.model_input.images)
    second = fake_prediction()
    second.cluster_ids = [ids[::-1].copy() for ids in first.cluster_ids]
    viewer.set_clusters(second)
    assert viewer.model_input.images == items  # same items, not rebuilt
    np.testing.assert_array_equal(viewer.model_input.overlays[0].image, second.cluster_ids[0][0])
    moved = fake_prediction(indices=(5, 9, 13))
    viewer.set_clusters(moved)
    assert viewer.model_input.images != items  # other slices: new items with new titles


def test_the_colour_bar_offers_window_level_handles_not_colour_pickers(viewer):
    """The gradient's ticks (which open Qt's colour dialog on click) are hidden, also
    after a colormap change; the window/level bars are the handles."""
    gradient = viewer.histogram.item.gradient
    assert gradient.ticks and not any(tick.isVisible() for tick in gradient.ticks)
    viewer.set_colormap("inferno")
    assert gradient.ticks and not any(tick.isVisible() for tick in gradient.ticks)
    assert all(line.pen.width() == 3 for line in viewer.histogram.item.region.lines)


def test_views_number_their_slices_and_keep_their_letters_in_sight(viewer, qtbot):
    """Slice numbers on the views; orientation letters follow zoom and pan,
    and an empty view shows none."""
    from smmt_gui.viewer.slice_view import SliceView

    axial = viewer.views["axial"]
    g = viewer.geometry_
    assert axial.title.text == f"Axial {g.slice_index('axial')}/{g.n_slices('axial')}"
    w, h = axial._extent
    axial.view.setRange(QRectF(w * 0.4, h * 0.4, w * 0.2, h * 0.2), padding=0)  # zoom in
    (x0, x1), (y0, y1) = axial.view.viewRange()
    for letter in axial.letters:
        assert letter.isVisible()
        assert x0 - 1e-6 <= letter.pos().x() <= x1 + 1e-6 and y0 - 1e-6 <= letter.pos().y() <= y1 + 1e-6
    empty = SliceView("coronal")
    qtbot.addWidget(empty)
    assert not any(letter.isVisible() for letter in empty.letters)
