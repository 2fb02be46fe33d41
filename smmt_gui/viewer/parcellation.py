"""The volume preset's K-Means clusters as a 3D parcellation over the three orthogonal views.

Why separate from `MriViewer.set_clusters`: a slice model's clusters live on a few 2D slices, a
volume model's on a 3D patch grid covering the whole brain, so they are drawn in *every* view at
*every* slice. This module is self-contained: `VolumeParcellation` draws on an existing
`MriViewer`'s view overlays, on the viewer's model grid (laid over a 1 mm scan with the model's own
voxel size; not drawn in native space), and follows its crosshair; `ClusterLegend` is the palette legend with
a layer choice and opacity. The label volume comes from the core
(`Prediction.cluster_label_volume`), so this module only turns labels into pixels.

Labels are drawn shifted by one so that "no token" (-1) is the transparent row 0 of the table.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from smmt_gui import strings
from smmt_gui.viewer.colormaps import cluster_color
from smmt_gui.viewer.volume import PLANE_AXES, PLANES


def parcellation_lut(n_clusters: int) -> np.ndarray:
    """(n + 1, 4) RGBA: row 0 transparent (no token), row k + 1 the opaque colour of cluster k."""
    lut = np.zeros((max(int(n_clusters), 0) + 1, 4), dtype=np.uint8)
    for k in range(int(n_clusters)):
        lut[k + 1, :3] = cluster_color(k)
        lut[k + 1, 3] = 255
    return lut


def cluster_hover_text(label: int, sizes: dict[int, int], layer: int) -> str:
    """What hovering a voxel says: the cluster and its size in tokens, or that no token is there."""
    if label < 0:
        return strings.PARCELLATION_NO_TOKEN
    return strings.PARCELLATION_HOVER.format(cluster=label, size=sizes.get(label, 0), layer=layer + 1)


class VolumeParcellation(QObject):
    """Draws per-layer 3D cluster label volumes on an `MriViewer`'s three views.

    set_prediction(prediction): a `smmt_core.predict.Prediction` of a volume model (or None to
    clear); its label volumes must be on the grid of the volume shown in the viewer.
    """

    hover_text = Signal(str)
    changed = Signal()  # layers or sizes changed (the legend listens)

    def __init__(self, viewer, parent=None):
        super().__init__(parent or viewer)
        self.viewer = viewer
        self.labels: list[np.ndarray] = []  # per layer, (X, Y, Z) int32, -1 = no token
        self.sizes: list[dict[int, int]] = []  # per layer: cluster id -> tokens
        self.layer = 0
        self.opacity = 0.45
        self.visible = True
        self._drawn: set[str] = set()  # planes whose overlay this object drew
        viewer.cursor_changed.connect(lambda _ijk: self.redraw())
        viewer.image_changed.connect(self.redraw)
        for plane, view in viewer.views.items():
            view.hovered.connect(lambda x, y, p=plane: self._on_hover(p, x, y))

    @property
    def n_clusters(self) -> int:
        return max((max(s) + 1 for s in self.sizes if s), default=0)

    def set_prediction(self, prediction) -> None:
        labels, sizes = [], []
        if prediction is not None and getattr(prediction, "patch_grid", None) is not None:
            for layer in range(len(prediction.cluster_ids)):
                labels.append(prediction.cluster_label_volume(layer))
                sizes.append(prediction.cluster_sizes(layer))
        self.set_labels(labels, sizes)

    def set_labels(self, labels: list[np.ndarray], sizes: list[dict[int, int]]) -> None:
        """Per-layer label volumes and cluster sizes (tokens); empty lists clear the overlay."""
        shape = self.viewer.model_grid.shape if self.viewer.model_grid is not None else None
        for volume in labels:
            if volume.ndim != 3 or (shape is not None and tuple(volume.shape) != tuple(shape)):
                raise ValueError(f"cluster labels of shape {volume.shape} do not match the volume {shape}")
        self.labels, self.sizes = [np.asarray(v, dtype=np.int32) for v in labels], list(sizes)
        self.layer = min(self.layer, max(len(self.labels) - 1, 0))
        self.changed.emit()
        self.redraw()

    def set_layer(self, layer: int) -> None:
        self.layer = int(min(max(layer, 0), max(len(self.labels) - 1, 0)))
        self.redraw()

    def set_opacity(self, opacity: float) -> None:
        self.opacity = float(min(max(opacity, 0.0), 1.0))
        self.redraw()

    def set_visible(self, visible: bool) -> None:
        self.visible = bool(visible)
        self.redraw()

    def slice_labels(self, plane: str) -> np.ndarray | None:
        """The labels of the model-grid slice through the crosshair, [horizontal, vertical], or None
        (no labels, or a space the model's grid is not drawn in)."""
        index = self.viewer.model_index(plane)
        if not self.labels or index is None:
            return None
        fixed = PLANE_AXES[plane][0]
        if not 0 <= index < self.labels[self.layer].shape[fixed]:
            return None
        return np.take(self.labels[self.layer], index, axis=fixed)

    def redraw(self) -> None:
        lut = parcellation_lut(self.n_clusters)
        for plane in PLANES:
            view = self.viewer.views[plane]
            ids = self.slice_labels(plane) if self.visible else None
            rect = self.viewer.model_rect(plane)
            if ids is None or rect is None:
                if plane in self._drawn:  # hide only what this overlay drew (slice clusters stay)
                    view.set_overlay(None)
                    self._drawn.discard(plane)
                continue
            view.set_overlay(ids + 1, rect, lut, self.opacity)
            self._drawn.add(plane)

    def _on_hover(self, plane: str, x: float, y: float) -> None:
        if not self.labels:
            return
        ijk = self.viewer.model_voxel_at(plane, x, y)
        if ijk is None:
            return
        label = int(self.labels[self.layer][tuple(ijk)])
        text = cluster_hover_text(label, self.sizes[self.layer], self.layer)
        self.viewer.views[plane].setToolTip(text)
        self.hover_text.emit(text)


class ClusterLegend(QWidget):
    """Palette legend of a `VolumeParcellation`: layer choice, opacity, one swatch per cluster."""

    def __init__(self, parcellation: VolumeParcellation, parent=None):
        super().__init__(parent)
        self.parcellation = parcellation
        self.setObjectName("parcellationLegend")
        self.title = QLabel(strings.PARCELLATION_TITLE)
        self.layer_box = QComboBox()
        self.layer_box.setToolTip(strings.PARCELLATION_LAYER_TIP)
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(round(parcellation.opacity * 100))
        self.opacity_slider.setToolTip(strings.VIEWER_OVERLAY_OPACITY)
        self.swatches = QGridLayout()
        row = QHBoxLayout()
        row.addWidget(QLabel(strings.PARCELLATION_LAYER))
        row.addWidget(self.layer_box)
        row.addWidget(self.opacity_slider)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addLayout(row)
        layout.addLayout(self.swatches)
        layout.addStretch(1)
        self.layer_box.currentIndexChanged.connect(self._on_layer)
        self.opacity_slider.valueChanged.connect(lambda v: parcellation.set_opacity(v / 100.0))
        parcellation.changed.connect(self.refresh)
        self.refresh()

    def entries(self) -> list[str]:
        """The legend's text, one line per cluster of the shown layer (what the swatches say)."""
        p = self.parcellation
        if not p.sizes:
            return []
        sizes = p.sizes[p.layer]
        return [strings.PARCELLATION_ENTRY.format(cluster=k, size=n) for k, n in sorted(sizes.items())]

    def refresh(self) -> None:
        p = self.parcellation
        self.layer_box.blockSignals(True)
        self.layer_box.clear()
        self.layer_box.addItems([str(i + 1) for i in range(len(p.labels))])
        if p.labels:
            self.layer_box.setCurrentIndex(p.layer)
        self.layer_box.blockSignals(False)
        self.layer_box.setEnabled(bool(p.labels))
        self.opacity_slider.setEnabled(bool(p.labels))
        self._fill_swatches()

    def _fill_swatches(self) -> None:
        while self.swatches.count():
            item = self.swatches.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        p = self.parcellation
        if not p.sizes:
            self.swatches.addWidget(QLabel(strings.PARCELLATION_EMPTY), 0, 0)
            return
        columns = 2
        for i, (k, text) in enumerate(zip(sorted(p.sizes[p.layer]), self.entries())):
            label = QLabel(f"<span style='color: rgb{cluster_color(k)}'>&#9632;</span>&nbsp;{text}")
            label.setTextFormat(Qt.TextFormat.RichText)
            self.swatches.addWidget(label, i // columns, i % columns)

    def _on_layer(self, index: int) -> None:
        if index >= 0:
            self.parcellation.set_layer(index)
            self._fill_swatches()
