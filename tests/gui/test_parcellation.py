"""The volume preset's 3D cluster parcellation: drawn in all three views, legend, hover names the cluster."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from smmt_gui import strings
from smmt_gui.viewer import OrthoViewer
from smmt_gui.viewer.colormaps import cluster_color
from smmt_gui.viewer.parcellation import (
    ClusterLegend,
    VolumeParcellation,
    parcellation_lut,
)
from smmt_gui.viewer.volume import PLANES

SHAPE = (20, 24, 16)


def label_volumes(n_layers=2, k=6):
    """Blocks of 4 voxels labelled by position, -1 (no token) on the border, one volume per layer."""
    i, j, m = np.indices(SHAPE)
    out = []
    for layer in range(n_layers):
        labels = ((i // 4 + j // 4 + m // 4 + layer) % k).astype(np.int32)
        labels[:2] = -1
        out.append(labels)
    return out


def sizes_of(labels):
    ids, counts = np.unique(labels[labels >= 0], return_counts=True)
    return {int(a): int(c) // 64 for a, c in zip(ids, counts)}


@pytest.fixture
def viewer(qtbot):
    widget = OrthoViewer()
    qtbot.addWidget(widget)
    widget.resize(900, 600)
    widget.show()
    widget.set_volume(np.random.default_rng(0).random(SHAPE).astype(np.float32), np.eye(4))
    return widget


def test_the_palette_is_distinct_with_a_transparent_no_token_row():
    lut = parcellation_lut(12)
    assert lut.shape == (13, 4) and lut[0, 3] == 0 and (lut[1:, 3] == 255).all()
    assert len({tuple(row[:3]) for row in lut[1:]}) == 12
    assert tuple(lut[4, :3]) == cluster_color(3)


def test_all_three_views_show_the_current_slice_of_the_layer(viewer, qtbot):
    parcellation = VolumeParcellation(viewer)
    labels = label_volumes()
    parcellation.set_labels(labels, [sizes_of(v) for v in labels])
    for plane in PLANES:
        overlay = viewer.views[plane].overlay
        assert overlay.isVisible()
        np.testing.assert_array_equal(overlay.image, parcellation.slice_labels(plane) + 1)
    viewer.set_cursor((12, 5, 3))  # the overlay follows the crosshair
    np.testing.assert_array_equal(viewer.views["axial"].overlay.image, labels[0][:, :, 3] + 1)
    parcellation.set_layer(1)
    np.testing.assert_array_equal(viewer.views["coronal"].overlay.image, labels[1][:, 5, :] + 1)
    parcellation.set_visible(False)
    assert not any(viewer.views[p].overlay.isVisible() for p in PLANES)
    with pytest.raises(ValueError, match="do not match"):
        parcellation.set_labels([np.zeros((3, 3, 3), dtype=np.int32)], [{}])


def test_hover_names_the_cluster_and_its_size(viewer, qtbot):
    parcellation = VolumeParcellation(viewer)
    labels = label_volumes()
    sizes = [sizes_of(v) for v in labels]
    parcellation.set_labels(labels, sizes)
    viewer.set_cursor((10, 10, 8))
    cluster = int(labels[0][10, 10, 8])
    with qtbot.waitSignal(parcellation.hover_text) as blocker:
        viewer.views["axial"].hovered.emit(10.5, 10.5)  # display mm = voxels at 1 mm
    assert blocker.args[0] == strings.PARCELLATION_HOVER.format(cluster=cluster, size=sizes[0][cluster], layer=1)
    with qtbot.waitSignal(parcellation.hover_text) as blocker:
        viewer.views["axial"].hovered.emit(0.5, 10.5)
    assert blocker.args[0] == strings.PARCELLATION_NO_TOKEN


def test_legend_lists_every_cluster_of_the_layer_and_switches_layers(viewer, qtbot):
    parcellation = VolumeParcellation(viewer)
    legend = ClusterLegend(parcellation)
    qtbot.addWidget(legend)
    assert legend.entries() == [] and not legend.layer_box.isEnabled()
    labels = label_volumes(n_layers=2, k=5)
    sizes = [sizes_of(v) for v in labels]
    parcellation.set_labels(labels, sizes)
    assert legend.layer_box.count() == 2
    assert legend.entries() == [strings.PARCELLATION_ENTRY.format(cluster=k, size=n) for k, n in sorted(sizes[0].items())]
    legend.layer_box.setCurrentIndex(1)
    assert parcellation.layer == 1
    legend.opacity_slider.setValue(80)
    assert parcellation.opacity == pytest.approx(0.8)
    assert viewer.views["axial"].overlay.opacity() == pytest.approx(0.8)


def test_a_prediction_without_a_patch_grid_clears_it(viewer):
    parcellation = VolumeParcellation(viewer)
    labels = label_volumes()
    parcellation.set_labels(labels, [sizes_of(v) for v in labels])
    parcellation.set_prediction(SimpleNamespace(patch_grid=None, cluster_ids=[]))
    assert parcellation.labels == [] and not viewer.views["axial"].overlay.isVisible()


def test_over_a_finer_scan_the_parcellation_keeps_the_models_voxels_and_stays_in_mni(viewer, qtbot):
    """The labels live on the model's grid (here 1 mm, identity); a 0.5 mm scan under it changes
    where they are drawn, not what: each label voxel covers two scan voxels, and native space has none."""
    parcellation = VolumeParcellation(viewer)
    labels = label_volumes()
    parcellation.set_labels(labels, [sizes_of(v) for v in labels])
    fine = np.diag([0.5, 0.5, 0.5, 1.0])
    fine[:3, 3] = -0.25  # the same outer corner as the model's grid: offset 0
    scan = np.zeros(tuple(2 * n for n in SHAPE), np.float32)
    with qtbot.waitSignal(viewer.image_changed):
        viewer.set_scans((scan, fine), (scan, fine), np.eye(4))
    viewer.set_cursor_mni((12.0, 5.0, 3.0))
    assert viewer.cursor == (25, 11, 7)  # the 0.5 mm voxel centred at (12.25, 5.25, 3.25) mm
    overlay = viewer.views["axial"].overlay
    np.testing.assert_array_equal(overlay.image, labels[0][:, :, 3] + 1)  # the model's own slice, unresampled
    rect = overlay.mapRectToParent(overlay.boundingRect())
    assert (rect.x(), rect.y(), rect.width(), rect.height()) == pytest.approx((0.0, 0.0, 20.0, 24.0))
    viewer.set_space("native")
    assert not any(viewer.views[p].overlay.isVisible() for p in PLANES)
    viewer.set_space("mni")
    assert viewer.views["axial"].overlay.isVisible()


def test_a_whole_brain_model_gets_no_empty_slice_strip_and_says_where_its_clusters_are(viewer):
    viewer.set_clusters(SimpleNamespace(slices=None, cluster_ids=label_volumes(), slice_indices=[], plane="axial",
                                        patch_grid=SimpleNamespace()))
    assert viewer.model_input.isHidden() and viewer.model_input_title.text() == strings.VIEWER_WHOLE_BRAIN_MODEL
    assert viewer.cluster_ids == [] and not viewer.overlay_check.isEnabled()  # the 3D clusters are the parcellation's
    viewer.set_clusters(None)  # no model: the strip is back, with its usual note
    assert not viewer.model_input.isHidden() and viewer.model_input_title.text() == strings.VIEWER_OVERLAY_NONE
