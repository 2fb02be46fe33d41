"""One 2D view of a volume: image, crosshair, model-input layer, cluster overlay, orientation letters.

A thin pyqtgraph widget that knows nothing of the volume: `OrthoViewer` hands it slices (already
contiguous float32, with explicit levels, per the project's pyqtgraph conventions) and listens to
its `clicked` / `hovered` signals, which carry display coordinates in mm, and to `zoomed`, which
says the user zoomed or panned it (the viewer links the other two views to it).
Left-click sets the crosshair, left-drag pans, the wheel zooms (pyqtgraph's ViewBox defaults).

Layers, bottom to top: the scan (`image`), what the model saw (`model_layer`: its 2 mm grid,
drawn with its own voxel size), the attention clusters (`overlay`), the model's slice positions
(`markers`), the crosshair and the letters. Radiological display mirrors the horizontal axis of
the axial and coronal views (the ViewBox is inverted, so every coordinate stays the same and the
letters follow by themselves).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal

from smmt_gui import strings

CROSSHAIR_PEN = pg.mkPen((80, 200, 255, 200), width=1)
MARKER_PEN = pg.mkPen((255, 170, 40, 200), width=1, style=Qt.PenStyle.DashLine)
FIT_PADDING = 0.02
# letters at (left, right, bottom, top) of each plane, RAS volume in neurological display
ORIENTATION = {
    "axial": ("L", "R", "P", "A"),
    "coronal": ("L", "R", "I", "S"),
    "sagittal": ("P", "A", "I", "S"),
}
MIRRORABLE = ("axial", "coronal")  # the views whose horizontal axis is left-right


class SliceView(pg.GraphicsLayoutWidget):
    """A titled view box with an image, a crosshair and a cluster overlay."""

    clicked = Signal(float, float)  # display mm
    hovered = Signal(float, float)
    activated = Signal(str)  # plane, when the user clicks into this view
    zoomed = Signal(str)  # plane, when the user zoomed or panned this view (wheel, drag)

    def __init__(self, plane: str, parent=None):
        super().__init__(parent=parent)
        self.plane = plane
        self.setBackground((12, 12, 16))
        self.setMinimumSize(160, 160)
        self.title = self.addLabel(strings.PLANE_NAMES[plane], row=0, col=0, color=(200, 200, 210), size="9pt")
        self.view: pg.ViewBox = self.addViewBox(row=1, col=0, lockAspect=True, enableMenu=False)
        self.view.setDefaultPadding(FIT_PADDING)
        self.image = pg.ImageItem(axisOrder="col-major")
        self.model_layer = pg.ImageItem(axisOrder="col-major")
        self.model_layer.setZValue(3)
        self.model_layer.setVisible(False)
        self.overlay = pg.ImageItem(axisOrder="col-major")
        self.overlay.setZValue(5)
        self.overlay.setVisible(False)
        self.view.addItem(self.image)
        self.view.addItem(self.model_layer)
        self.view.addItem(self.overlay)
        self.markers: list[pg.InfiniteLine] = []
        self.radiological = False
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
        self.view.sigRangeChangedManually.connect(lambda *_: self.zoomed.emit(self.plane))
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
        for layer in (self.overlay, self.model_layer):
            layer.clear()
            layer.setVisible(False)
        self.set_markers([], vertical=False)

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

    def set_model_layer(self, image: np.ndarray | None, rect: QRectF | None = None, lut: np.ndarray | None = None,
                        opacity: float = 0.5) -> None:
        """Draw what the model saw (values in [0, 1], [horizontal, vertical]) over `rect`; None hides it."""
        if image is None:
            self.model_layer.setVisible(False)
            return
        self.model_layer.setImage(np.ascontiguousarray(image, dtype=np.float32), levels=(0.0, 1.0), lut=lut,
                                  autoLevels=False)
        self.model_layer.setRect(rect or QRectF(0.0, 0.0, *self._extent))
        self.model_layer.setOpacity(opacity)
        self.model_layer.setVisible(True)

    def set_markers(self, positions: list[float], *, vertical: bool) -> None:
        """Dashed lines at display positions (mm): where the model's slices cut this view."""
        while len(self.markers) > len(positions):
            self.view.removeItem(self.markers.pop())
        while len(self.markers) < len(positions):
            line = pg.InfiniteLine(pen=MARKER_PEN, movable=False)
            line.setZValue(8)
            self.view.addItem(line, ignoreBounds=True)
            self.markers.append(line)
        for line, position in zip(self.markers, positions):
            line.setAngle(90 if vertical else 0)
            line.setPos(position)

    def set_radiological(self, on: bool) -> None:
        """Mirror left and right (axial and coronal views only): the patient's right on the screen's left."""
        self.radiological = bool(on) and self.plane in MIRRORABLE
        self.view.invertX(self.radiological)
        self._place_letters()

    # --- zoom -----------------------------------------------------------------------------------
    def reset_zoom(self) -> None:
        self.view.setRange(QRectF(0.0, 0.0, *self._extent), padding=FIT_PADDING)

    def _pixels(self) -> tuple[float, float]:
        size = self.view.size()
        return max(size.width(), 1.0), max(size.height(), 1.0)

    def _fit_mm_per_pixel(self) -> float:
        """mm per screen pixel when the whole image fits (what Reset shows)."""
        (width_px, height_px), (w, h) = self._pixels(), self._extent
        return max(w / width_px, h / height_px) * (1 + 2 * FIT_PADDING)

    def zoom(self) -> tuple[float, tuple[float, float]]:
        """(magnification relative to the fitted view, centre of the visible range in display mm)."""
        (x0, x1), (y0, y1) = self.view.viewRange()
        mm_per_pixel = max((x1 - x0) / self._pixels()[0], (y1 - y0) / self._pixels()[1])
        return self._fit_mm_per_pixel() / mm_per_pixel, ((x0 + x1) / 2, (y0 + y1) / 2)

    def set_zoom(self, magnification: float, centre: tuple[float, float]) -> None:
        """Show `magnification` x the fitted view around `centre` (display mm)."""
        mm_per_pixel = self._fit_mm_per_pixel() / max(magnification, 1e-6)
        width_px, height_px = self._pixels()
        half_w, half_h = mm_per_pixel * width_px / 2, mm_per_pixel * height_px / 2
        self.view.setRange(xRange=(centre[0] - half_w, centre[0] + half_w),
                           yRange=(centre[1] - half_h, centre[1] + half_h), padding=0.0)

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
        # Mirrored, the letter at the low-x edge sits at the screen's right: it hangs inwards from there.
        low_x, high_x = ((1, 0.5), (0, 0.5)) if self.radiological else ((0, 0.5), (1, 0.5))
        for item, pos, anchor in zip(self.letters, (QPointF(left, mid_y), QPointF(right, mid_y),
                                                    QPointF(mid_x, bottom), QPointF(mid_x, top)),
                                     (low_x, high_x, (0.5, 1), (0.5, 0))):
            item.setAnchor(anchor)
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
