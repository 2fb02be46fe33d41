"""One 2D view of a volume: image, crosshair, optional cluster overlay, orientation letters.

A thin pyqtgraph widget that knows nothing of the volume: `OrthoViewer` hands it slices (already
contiguous float32, with explicit levels, per the project's pyqtgraph conventions) and listens to
its `clicked` / `hovered` signals, which carry display coordinates in mm.
Left-click sets the crosshair, left-drag pans, the wheel zooms (pyqtgraph's ViewBox defaults).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal

from smmt_gui import strings

CROSSHAIR_PEN = pg.mkPen((80, 200, 255, 200), width=1)
# letters at (left, right, bottom, top) of each plane, RAS volume in neurological display
ORIENTATION = {
    "axial": ("L", "R", "P", "A"),
    "coronal": ("L", "R", "I", "S"),
    "sagittal": ("P", "A", "I", "S"),
}


class SliceView(pg.GraphicsLayoutWidget):
    """A titled view box with an image, a crosshair and a cluster overlay."""

    clicked = Signal(float, float)  # display mm
    hovered = Signal(float, float)
    activated = Signal(str)  # plane, when the user clicks into this view

    def __init__(self, plane: str, parent=None):
        super().__init__(parent=parent)
        self.plane = plane
        self.setBackground((12, 12, 16))
        self.setMinimumSize(160, 160)
        self.title = self.addLabel(strings.PLANE_NAMES[plane], row=0, col=0, color=(200, 200, 210), size="9pt")
        self.view: pg.ViewBox = self.addViewBox(row=1, col=0, lockAspect=True, enableMenu=False)
        self.view.setDefaultPadding(0.02)
        self.image = pg.ImageItem(axisOrder="col-major")
        self.overlay = pg.ImageItem(axisOrder="col-major")
        self.overlay.setZValue(5)
        self.overlay.setVisible(False)
        self.view.addItem(self.image)
        self.view.addItem(self.overlay)
        self.h_line = pg.InfiniteLine(angle=0, pen=CROSSHAIR_PEN, movable=False)
        self.v_line = pg.InfiniteLine(angle=90, pen=CROSSHAIR_PEN, movable=False)
        for line in (self.h_line, self.v_line):
            line.setZValue(10)
            self.view.addItem(line, ignoreBounds=True)
        self.letters = [pg.TextItem(text, color=(230, 200, 80), anchor=anchor) for text, anchor in
                        zip(ORIENTATION[plane], ((0, 0.5), (1, 0.5), (0.5, 1), (0.5, 0)))]
        for item in self.letters:
            item.setZValue(11)
            item.setVisible(False)  # no image, no letters (they piled up in empty views)
            self.view.addItem(item, ignoreBounds=True)
        self._extent = (1.0, 1.0)
        # The letters sit at the edges of what is visible, so zooming or panning never hides them.
        self.view.sigRangeChanged.connect(lambda *_: self._place_letters())
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.scene().sigMouseClicked.connect(self._on_mouse_clicked)

    # --- drawing ----------------------------------------------------------------------------
    def set_image(self, image: np.ndarray, extent_mm: tuple[float, float], levels: tuple[float, float],
                  lut: np.ndarray | None = None) -> None:
        first = self.image.image is None
        self.image.setImage(np.ascontiguousarray(image, dtype=np.float32), levels=levels, lut=lut,
                            autoLevels=False)
        self.image.setRect(QRectF(0.0, 0.0, float(extent_mm[0]), float(extent_mm[1])))
        changed = tuple(extent_mm) != self._extent
        self._extent = tuple(extent_mm)
        self._place_letters()
        if first or changed:
            self.reset_zoom()

    def set_slice_number(self, index: int, count: int) -> None:
        """The view's title says which slice it shows, e.g. "Axial 45/91"."""
        self.title.setText(strings.VIEWER_SLICE_TITLE.format(plane=strings.PLANE_NAMES[self.plane],
                                                             index=index, count=count))

    def clear_image(self) -> None:
        self.title.setText(strings.PLANE_NAMES[self.plane])
        for item in self.letters:
            item.setVisible(False)
        self.image.clear()
        self.overlay.clear()
        self.overlay.setVisible(False)

    def set_levels(self, levels: tuple[float, float]) -> None:
        if self.image.image is not None:
            self.image.setLevels(levels)

    def set_lut(self, lut: np.ndarray | None) -> None:
        self.image.setLookupTable(lut)

    def set_crosshair(self, x_mm: float, y_mm: float) -> None:
        self.v_line.setPos(x_mm)
        self.h_line.setPos(y_mm)

    def set_overlay(self, ids: np.ndarray | None, rect: QRectF | None = None, lut: np.ndarray | None = None,
                    opacity: float = 0.45) -> None:
        """Draw integer ids (2D, [horizontal, vertical]) with a discrete table; None hides it."""
        if ids is None:
            self.overlay.setVisible(False)
            return
        n = len(lut) if lut is not None else int(np.max(ids)) + 1
        self.overlay.setImage(np.ascontiguousarray(ids, dtype=np.float32), levels=(0, n), lut=lut, autoLevels=False)
        self.overlay.setRect(rect or QRectF(0.0, 0.0, *self._extent))
        self.overlay.setOpacity(opacity)
        self.overlay.setVisible(True)

    def reset_zoom(self) -> None:
        self.view.setRange(QRectF(0.0, 0.0, *self._extent), padding=0.02)

    def _place_letters(self) -> None:
        """Each letter at the middle of its edge of the visible range (inside the image's extent)."""
        if self.image.image is None:
            return
        (x0, x1), (y0, y1) = self.view.viewRange()
        w, h = self._extent
        left, right = max(x0, 0.0), min(x1, w)
        bottom, top = max(y0, 0.0), min(y1, h)
        if left >= right or bottom >= top:  # the image is panned out of sight
            left, right, bottom, top = x0, x1, y0, y1
        mid_x, mid_y = (left + right) / 2, (bottom + top) / 2
        for item, pos in zip(self.letters, (QPointF(left, mid_y), QPointF(right, mid_y),
                                            QPointF(mid_x, bottom), QPointF(mid_x, top))):
            item.setPos(pos)
            item.setVisible(True)

    # --- mouse --------------------------------------------------------------------------------
    def _to_view(self, scene_pos) -> QPointF | None:
        if not self.view.sceneBoundingRect().contains(scene_pos):
            return None
        return self.view.mapSceneToView(scene_pos)

    def _on_mouse_moved(self, scene_pos) -> None:
        point = self._to_view(scene_pos)
        if point is not None:
            self.hovered.emit(point.x(), point.y())

    def _on_mouse_clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        point = self._to_view(event.scenePos())
        self.activated.emit(self.plane)
        if point is not None:
            self.clicked.emit(point.x(), point.y())
