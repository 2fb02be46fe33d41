"""The slices the model actually saw, each with its K-Means cluster ids drawn as coloured patches.

Why a separate strip: the model works on a few resampled 2D slices, not on the volume. Drawing its
cluster ids over exactly those inputs (patch (r, c) of the id grid covers rows r*H/h … and columns
c*W/w … of the slice) shows what was clustered with no geometric guesswork. Slices are shown as
images (row 0 at the top), the way the model's tensors are laid out.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Signal

from smmt_gui import strings
from smmt_gui.viewer.colormaps import cluster_lut


class ModelInputView(pg.GraphicsLayoutWidget):
    """A row of the model's input slices with their cluster overlay; hovering names the cluster."""

    hover_text = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent=parent)
        self.setBackground((12, 12, 16))
        self.setMinimumHeight(120)
        self.slices: np.ndarray | None = None  # (S, H, W)
        self.cluster_ids: list[np.ndarray] = []  # per layer (S, h, w)
        self.layer = 0
        self._key = None  # (plane, slice indices) of the items on screen
        self.slice_names: list[str] = []  # the label above each slice, e.g. "axial 45"
        self.opacity = 0.45
        self.overlay_visible = True
        self.mirrored = False  # radiological display: left-right flipped (axial and coronal slices)
        self.plane = "axial"
        self.images: list[pg.ImageItem] = []
        self.overlays: list[pg.ImageItem] = []
        self.views: list[pg.ViewBox] = []
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)

    @property
    def n_clusters(self) -> int:
        if not self.cluster_ids:
            return 0
        return int(max(int(ids.max()) for ids in self.cluster_ids)) + 1

    def set_input(self, slices: np.ndarray | None, cluster_ids: list[np.ndarray] | None = None,
                  slice_indices: list[int] | None = None, plane: str = "axial") -> None:
        """Show (S, H, W) slices in [0, 1] and per-layer (S, h, w) cluster ids (may be empty).

        When only the ids change (same slices, e.g. a modality toggled), the existing items are
        updated in place: rebuilding the views would cost the GUI thread tens of milliseconds."""
        new_slices = None if slices is None else np.asarray(slices, dtype=np.float32)
        new_ids = [np.asarray(ids) for ids in (cluster_ids or [])]
        if new_slices is not None:
            if new_slices.ndim != 3:
                raise ValueError(f"model input slices must be (S, H, W), got {new_slices.shape}")
            for ids in new_ids:
                if ids.ndim != 3 or ids.shape[0] != new_slices.shape[0]:
                    raise ValueError(f"cluster ids {ids.shape} do not match slices {new_slices.shape}")
        indices = list(slice_indices or (range(len(new_slices)) if new_slices is not None else []))
        key = (plane, tuple(indices))
        if (new_slices is not None and self.slices is not None and self.images
                and key == self._key and new_slices.shape == self.slices.shape):
            self.slices, self.cluster_ids = new_slices, new_ids
            for item, image in zip(self.images, self.slices):
                item.setImage(np.ascontiguousarray(image), levels=(0.0, 1.0), autoLevels=False)
            self.layer = min(self.layer, max(len(self.cluster_ids) - 1, 0))
            self._draw_overlay()
            return
        self.clear()
        self.images, self.overlays, self.views = [], [], []
        self.slices, self.cluster_ids = new_slices, new_ids
        self._key = key
        self.plane = plane
        if self.slices is None:
            return
        self.layer = min(self.layer, max(len(self.cluster_ids) - 1, 0))
        height, width = self.slices.shape[1:]
        self.slice_names = []
        for s, image in enumerate(self.slices):
            label = f"{strings.PLANE_NAMES.get(plane, plane)} {indices[s] if s < len(indices) else s}"
            self.slice_names.append(label)
            self.addLabel(label, row=0, col=s, color=(200, 200, 210), size="8pt")
            view = self.addViewBox(row=1, col=s, lockAspect=True, enableMenu=False, enableMouse=False)
            view.invertY(True)
            view.invertX(self._mirror_plane())
            item = pg.ImageItem(np.ascontiguousarray(image), axisOrder="row-major", levels=(0.0, 1.0))
            overlay = pg.ImageItem(axisOrder="row-major")
            overlay.setZValue(5)
            view.addItem(item)
            view.addItem(overlay)
            view.setRange(QRectF(0, 0, width, height), padding=0.0)
            self.images.append(item)
            self.overlays.append(overlay)
            self.views.append(view)
        self._draw_overlay()

    def set_mirrored(self, mirrored: bool) -> None:
        """Radiological display: flip the slices' left and right like the ortho views (the columns of
        an axial or coronal model slice run from the patient's left to right)."""
        self.mirrored = bool(mirrored)
        for view in self.views:
            view.invertX(self._mirror_plane())

    def _mirror_plane(self) -> bool:
        return self.mirrored and self.plane in ("axial", "coronal")

    def set_layer(self, layer: int) -> None:
        self.layer = int(layer)
        self._draw_overlay()

    def set_opacity(self, opacity: float) -> None:
        self.opacity = float(opacity)
        for overlay in self.overlays:
            overlay.setOpacity(self.opacity)

    def set_overlay_visible(self, visible: bool) -> None:
        self.overlay_visible = bool(visible)
        self._draw_overlay()

    def overlay_ids(self, slice_number: int) -> np.ndarray | None:
        """The id grid drawn over one slice (what the tests compare with the model's output)."""
        if not self.cluster_ids or not self.overlay_visible:
            return None
        return self.cluster_ids[self.layer][slice_number]

    def _draw_overlay(self) -> None:
        lut = cluster_lut(self.n_clusters)
        height, width = (self.slices.shape[1:] if self.slices is not None else (1, 1))
        for s, overlay in enumerate(self.overlays):
            ids = self.overlay_ids(s)
            if ids is None:
                overlay.setVisible(False)
                continue
            overlay.setImage(np.ascontiguousarray(ids, dtype=np.float32), levels=(0, len(lut)), lut=lut,
                             autoLevels=False)
            overlay.setRect(QRectF(0, 0, width, height))
            overlay.setOpacity(self.opacity)
            overlay.setVisible(True)

    def cluster_at(self, slice_number: int, x: float, y: float) -> tuple[int, int, int] | None:
        """(row, col, cluster) of the patch under image position (x = column, y = row), or None."""
        if not self.cluster_ids or self.slices is None:
            return None
        ids = self.cluster_ids[self.layer][slice_number]
        height, width = self.slices.shape[1:]
        if not (0 <= x < width and 0 <= y < height):
            return None
        row = int(y * ids.shape[0] / height)
        col = int(x * ids.shape[1] / width)
        return row, col, int(ids[row, col])

    def hover_description(self, slice_number: int, row: int, col: int, cluster: int) -> str:
        """What the status bar says under the mouse: the slice by the name shown above it, and
        patch row/column and cluster counted from 1 like the slice numbers a user reads."""
        name = self.slice_names[slice_number] if slice_number < len(self.slice_names) else str(slice_number + 1)
        return strings.VIEWER_HOVER_CLUSTER.format(slice=name, row=row + 1, col=col + 1,
                                                   cluster=cluster + 1, n=self.n_clusters)

    def _on_mouse_moved(self, scene_pos) -> None:
        for s, view in enumerate(self.views):
            if view.sceneBoundingRect().contains(scene_pos):
                point = view.mapSceneToView(scene_pos)
                hit = self.cluster_at(s, point.x(), point.y())
                if hit is not None:
                    row, col, cluster = hit
                    self.hover_text.emit(self.hover_description(s, row, col, cluster))
                return
