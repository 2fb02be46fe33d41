"""The MRI viewer widget: three linked orthogonal views, window/level, colormap, cluster overlay.

Layout: axial · coronal · sagittal side by side with a slice slider under each, the intensity
histogram with draggable levels on the right (it drives all three views), a control row
(cursor read-out, colormap, cluster overlay on/off, layer, opacity, reset), and below it the strip
of slices the model saw with their K-Means cluster ids (`ModelInputView`).

State lives in a Qt-free `VolumeGeometry`; this widget only turns its state into pixels, so the
crosshair, slice and coordinate logic is tested without drawing.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from smmt_gui import shortcuts, strings
from smmt_gui.viewer.colormaps import COLORMAPS, cluster_color, cluster_lut, colormap
from smmt_gui.viewer.model_input import ModelInputView
from smmt_gui.viewer.slice_view import SliceView
from smmt_gui.viewer.volume import PLANE_AXES, PLANES, VolumeGeometry, robust_levels

HISTOGRAM_MAX_VOXELS = 400_000  # the histogram is computed on a strided sample of the volume

# Maps one (h, w) id grid of a model input slice to the [horizontal, vertical] order of the ortho
# view of the same plane. Set by whoever knows how the slices were cut (see MriViewer.set_clusters).
GridToView = Callable[[np.ndarray], np.ndarray]


def image_grid_to_view(grid: np.ndarray) -> np.ndarray:
    """Default mapping: the model slice is an image whose row 0 is the top of the view."""
    return np.ascontiguousarray(np.asarray(grid).T[:, ::-1])


class MriViewer(QWidget):
    """Orthogonal views + histogram + controls + the model-input strip."""

    cursor_changed = Signal(object)  # (i, j, k)
    status_text = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.geometry_: VolumeGeometry | None = None
        self.levels: tuple[float, float] = (0.0, 1.0)
        self.lut: np.ndarray | None = None
        self.active_plane = "axial"
        # cluster overlay on the ortho views
        self.cluster_plane: str | None = None
        self.cluster_slice_indices: list[int] = []
        self.cluster_ids: list[np.ndarray] = []
        self.grid_to_view: GridToView = image_grid_to_view
        self.cluster_rect: Callable[[int], QRectF] | None = None
        self.opacity = 0.45

        self.views = {plane: SliceView(plane) for plane in PLANES}
        self.sliders = {plane: QSlider(Qt.Orientation.Horizontal) for plane in PLANES}
        self.histogram = pg.HistogramLUTWidget(orientation="vertical")
        self.histogram.setMinimumWidth(110)
        self.histogram.setMaximumWidth(140)
        self._histogram_source = pg.ImageItem()  # never shown: feeds the histogram the whole volume
        self.histogram.setImageItem(self._histogram_source)
        self.histogram.item.sigLevelsChanged.connect(self._on_histogram_levels)
        self.histogram.item.sigLevelChangeFinished.connect(self._on_histogram_levels)
        self.histogram.item.sigLookupTableChanged.connect(self._on_histogram_lut)
        # The window/level handles are what a user should grab (issue 11.7): thick, yellow on
        # hover. The colour bar's triangle ticks (which open Qt's colour picker) are hidden; the
        # colormap box chooses colours.
        for line in self.histogram.item.region.lines:
            line.setPen(pg.mkPen((240, 240, 240), width=3))
            line.setHoverPen(pg.mkPen((255, 210, 0), width=5))
        self.histogram.item.region.setToolTip(strings.VIEWER_WINDOW_LEVEL_TIP)
        self.histogram.item.gradient.showTicks(False)

        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(4)
        for col, plane in enumerate(PLANES):
            view, slider = self.views[plane], self.sliders[plane]
            view.clicked.connect(lambda x, y, p=plane: self._on_view_clicked(p, x, y))
            view.hovered.connect(lambda x, y, p=plane: self._on_view_hovered(p, x, y))
            view.activated.connect(self._set_active)
            slider.setObjectName(f"slider_{plane}")
            slider.setEnabled(False)
            slider.valueChanged.connect(lambda value, p=plane: self._on_slider(p, value))
            grid.addWidget(view, 0, col)
            grid.addWidget(slider, 1, col)
            grid.setColumnStretch(col, 1)
        grid.addWidget(self.histogram, 0, 3, 2, 1)

        self.cursor_label = QLabel(strings.VIEWER_EMPTY)
        self.cursor_label.setObjectName("cursorLabel")
        self.cursor_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.space_label = QLabel("")
        self.space_label.setObjectName("spaceLabel")
        self.colormap_box = QComboBox()
        self.colormap_box.addItems(COLORMAPS)
        self.colormap_box.setToolTip(strings.VIEWER_COLORMAP)
        self.colormap_box.currentTextChanged.connect(self.set_colormap)
        self.overlay_check = QCheckBox(strings.VIEWER_OVERLAY)
        self.overlay_check.setChecked(True)
        self.overlay_check.toggled.connect(self._on_overlay_toggled)
        self.layer_box = QComboBox()
        self.layer_box.setToolTip(strings.VIEWER_OVERLAY_LAYER)
        self.layer_box.currentIndexChanged.connect(self._on_layer_changed)
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(int(self.opacity * 100))
        self.opacity_slider.setMaximumWidth(120)
        self.opacity_slider.setToolTip(strings.VIEWER_OVERLAY_OPACITY)
        self.opacity_slider.valueChanged.connect(lambda v: self.set_opacity(v / 100.0))
        self.reset_button = QPushButton(strings.VIEWER_RESET)
        self.reset_button.clicked.connect(self.reset_view)

        for label in (self.cursor_label, self.space_label):
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.synthetic_badge = QLabel(strings.SYNTHETIC_BADGE)
        self.synthetic_badge.setObjectName("syntheticBadge")
        self.synthetic_badge.setToolTip(strings.SYNTHETIC_TOOLTIP)
        self.synthetic_badge.setVisible(False)
        readout = QHBoxLayout()
        readout.addWidget(self.synthetic_badge)
        readout.addWidget(self.cursor_label, 3)
        readout.addWidget(self.space_label, 2)
        controls = QHBoxLayout()
        controls.addStretch(1)
        controls.addWidget(QLabel(strings.VIEWER_COLORMAP))
        controls.addWidget(self.colormap_box)
        controls.addSpacing(12)
        controls.addWidget(self.overlay_check)
        controls.addWidget(QLabel(strings.VIEWER_OVERLAY_LAYER))
        controls.addWidget(self.layer_box)
        controls.addWidget(QLabel(strings.VIEWER_OVERLAY_OPACITY))
        controls.addWidget(self.opacity_slider)
        controls.addWidget(self.reset_button)

        self.model_input = ModelInputView()
        self.model_input.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.model_input.setMaximumHeight(200)
        self.model_input.hover_text.connect(self._show_hover)
        self.model_input_title = QLabel(strings.VIEWER_OVERLAY_NONE)
        self.model_input_title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.model_input_title.setObjectName("modelInputTitle")
        self.legend = QLabel("")
        self.legend.setObjectName("clusterLegend")
        self.legend.setTextFormat(Qt.TextFormat.RichText)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(grid, 1)
        layout.addLayout(readout)
        layout.addLayout(controls)
        title_row = QHBoxLayout()
        title_row.addWidget(self.model_input_title, 1)
        title_row.addWidget(self.legend)
        layout.addLayout(title_row)
        layout.addWidget(self.model_input)
        self.set_colormap("grey")
        self._update_overlay_controls()

    # --- volume -----------------------------------------------------------------------------
    @property
    def has_volume(self) -> bool:
        return self.geometry_ is not None

    def set_volume(self, volume: np.ndarray, affine: np.ndarray | None = None, *, space: str = "",
                   keep_cursor: bool = False) -> None:
        """Show a 3D volume (any float array); the crosshair goes to the centre unless kept."""
        old = self.geometry_
        geometry = VolumeGeometry(volume, np.eye(4) if affine is None else affine)
        if keep_cursor and old is not None and old.shape == geometry.shape:
            geometry.cursor = old.cursor
        self.geometry_ = geometry
        self.space_label.setText(space)
        step = max(1, int(np.ceil((geometry.volume.size / HISTOGRAM_MAX_VOXELS) ** (1 / 3))))
        sample = geometry.volume[::step, ::step, ::step]
        self._histogram_source.setImage(_histogram_sample(sample), autoLevels=False, levels=robust_levels(sample))
        for plane in PLANES:
            slider = self.sliders[plane]
            slider.blockSignals(True)
            slider.setRange(0, geometry.n_slices(plane) - 1)
            slider.setValue(geometry.slice_index(plane))
            slider.setEnabled(True)
            slider.blockSignals(False)
        self.set_levels(robust_levels(geometry.volume))
        self._redraw(PLANES)
        self._show_cursor(geometry.cursor)
        if not keep_cursor:
            for view in self.views.values():
                view.reset_zoom()

    def set_synthetic(self, synthetic: bool) -> None:
        """Mark the image on screen as SYNTHETIC (demo cohort) or not."""
        self.synthetic_badge.setVisible(bool(synthetic))

    def clear(self) -> None:
        self.geometry_ = None
        for plane in PLANES:
            self.views[plane].clear_image()
            self.sliders[plane].setEnabled(False)
        self.cursor_label.setText(strings.VIEWER_EMPTY)
        self.space_label.setText("")
        self.set_clusters(None)

    @property
    def cursor(self) -> tuple[int, int, int] | None:
        return None if self.geometry_ is None else self.geometry_.cursor

    def set_cursor(self, ijk) -> None:
        if self.geometry_ is None:
            return
        old = self.geometry_.cursor
        self.geometry_.cursor = self.geometry_.clamp(ijk)
        changed = [p for p in PLANES if old[PLANE_AXES[p][0]] != self.geometry_.cursor[PLANE_AXES[p][0]]]
        for plane in PLANES:
            slider = self.sliders[plane]
            slider.blockSignals(True)
            slider.setValue(self.geometry_.slice_index(plane))
            slider.blockSignals(False)
        self._redraw(changed)  # crosshairs move in every view, images only where the slice changed
        self._show_cursor(self.geometry_.cursor)
        self.cursor_changed.emit(self.geometry_.cursor)

    def set_slice(self, plane: str, index: int) -> None:
        if self.geometry_ is None:
            return
        ijk = list(self.geometry_.cursor)
        ijk[PLANE_AXES[plane][0]] = index
        self.set_cursor(ijk)

    # --- window / level / colormap -------------------------------------------------------
    def set_levels(self, levels: tuple[float, float]) -> None:
        low, high = float(levels[0]), float(levels[1])
        if not high > low:
            high = low + 1e-6
        self.levels = (low, high)
        self.histogram.item.blockSignals(True)
        self.histogram.item.setLevels(low, high)
        self.histogram.item.blockSignals(False)
        for view in self.views.values():
            view.set_levels(self.levels)

    def render_views(self):
        """A QImage of what a report should show: the three slice views side by side and, below,
        the model's input slices with their cluster overlay and legend; no sliders, buttons or
        boxes (issue 11.13)."""
        from PySide6.QtGui import QColor, QImage, QPainter

        top = [self.views[plane].grab() for plane in PLANES]
        bottom = [w.grab() for w in (self.model_input_title, self.legend, self.model_input)
                  if not w.isHidden() and w.width() > 0]
        width = max(sum(p.width() for p in top), max((p.width() for p in bottom), default=0), 1)
        height = max((p.height() for p in top), default=0) + sum(p.height() for p in bottom)
        image = QImage(width, max(height, 1), QImage.Format.Format_RGB32)
        image.fill(QColor("white"))
        painter = QPainter(image)
        x = 0
        for pixmap in top:
            painter.drawPixmap(x, 0, pixmap)
            x += pixmap.width()
        y = max((p.height() for p in top), default=0)
        for pixmap in bottom:
            painter.drawPixmap(0, y, pixmap)
            y += pixmap.height()
        painter.end()
        return image

    def set_colormap(self, name: str) -> None:
        cmap = colormap(name)
        if self.colormap_box.currentText() != name:
            self.colormap_box.blockSignals(True)
            self.colormap_box.setCurrentText(name)
            self.colormap_box.blockSignals(False)
        self.histogram.item.gradient.setColorMap(cmap)  # emits sigLookupTableChanged -> _on_histogram_lut
        self.histogram.item.gradient.showTicks(False)  # the new colormap's ticks too
        self._on_histogram_lut()

    def _on_histogram_levels(self, *_) -> None:
        low, high = self.histogram.item.getLevels()
        self.levels = (float(low), float(high))
        for view in self.views.values():
            view.set_levels(self.levels)

    def _on_histogram_lut(self, *_) -> None:
        self.lut = self.histogram.item.getLookupTable(n=256)
        for view in self.views.values():
            view.set_lut(self.lut)

    def reset_view(self) -> None:
        """Zoom to fit, window/level back to the robust default."""
        for view in self.views.values():
            view.reset_zoom()
        if self.geometry_ is not None:
            self.set_levels(robust_levels(self.geometry_.volume))

    # --- cluster overlay --------------------------------------------------------------------
    def set_clusters(self, prediction_like=None, *, grid_to_view: GridToView | None = None,
                     cluster_rect: Callable[[int], QRectF] | None = None) -> None:
        """Show the model's input slices and cluster ids (an object with slices, cluster_ids,
        slice_indices, plane: e.g. a `smmt_core.predict.Prediction`); None clears them.

        grid_to_view / cluster_rect say where one slice's id grid lies in the ortho view of that
        plane; by default the grid is an image (rows top-down) over the padded square that
        `smmt_core.data.preprocess` cuts (see `VolumeGeometry.model_slice_rect_mm`)."""
        slices = getattr(prediction_like, "slices", None)
        ids = list(getattr(prediction_like, "cluster_ids", None) or [])
        indices = list(getattr(prediction_like, "slice_indices", None) or [])
        plane = getattr(prediction_like, "plane", "axial") or "axial"
        self.cluster_ids = [np.asarray(a) for a in ids]
        self.cluster_slice_indices = indices
        self.cluster_plane = plane if (ids and indices) else None
        self.grid_to_view = grid_to_view or image_grid_to_view
        self.cluster_rect = cluster_rect
        self.model_input.set_input(slices, self.cluster_ids, indices, plane)
        self.model_input.set_opacity(self.opacity)
        self.model_input.set_overlay_visible(self.overlay_check.isChecked())
        if slices is None:
            self.model_input_title.setText(strings.VIEWER_OVERLAY_NONE)
        else:
            self.model_input_title.setText(strings.VIEWER_MODEL_INPUT.format(
                plane=strings.PLANE_NAMES.get(plane, plane).lower(), indices=", ".join(map(str, indices))))
        self._update_overlay_controls()
        self._draw_view_overlay()

    def go_to_model_slice(self, number: int = 0) -> None:
        """Move the crosshair to a slice the model saw, so its cluster overlay is in view."""
        if self.cluster_plane and self.cluster_slice_indices and self.geometry_ is not None:
            index = self.cluster_slice_indices[min(number, len(self.cluster_slice_indices) - 1)]
            self.set_slice(self.cluster_plane, index)

    @property
    def layer(self) -> int:
        return max(self.layer_box.currentIndex(), 0)

    def set_opacity(self, opacity: float) -> None:
        self.opacity = float(min(max(opacity, 0.0), 1.0))
        if self.opacity_slider.value() != round(self.opacity * 100):
            self.opacity_slider.blockSignals(True)
            self.opacity_slider.setValue(round(self.opacity * 100))
            self.opacity_slider.blockSignals(False)
        self.model_input.set_opacity(self.opacity)
        for view in self.views.values():
            view.overlay.setOpacity(self.opacity)

    def view_overlay_ids(self) -> np.ndarray | None:
        """The ids drawn over the ortho view of the cluster plane now ([horizontal, vertical]), or None."""
        if not (self.cluster_plane and self.cluster_ids and self.overlay_check.isChecked() and self.geometry_):
            return None
        index = self.geometry_.slice_index(self.cluster_plane)
        if index not in self.cluster_slice_indices:
            return None
        s = self.cluster_slice_indices.index(index)
        return self.grid_to_view(self.cluster_ids[self.layer][s])

    def _draw_view_overlay(self) -> None:
        for plane, view in self.views.items():
            if plane != self.cluster_plane:
                view.set_overlay(None)
        if self.cluster_plane is None or self.geometry_ is None:
            return
        ids = self.view_overlay_ids()
        view = self.views[self.cluster_plane]
        if ids is None:
            view.set_overlay(None)
            return
        s = self.cluster_slice_indices.index(self.geometry_.slice_index(self.cluster_plane))
        if self.cluster_rect is not None:
            rect = self.cluster_rect(s)
        else:
            rect = QRectF(*self.geometry_.model_slice_rect_mm(self.cluster_plane))
        n = max(int(a.max()) for a in self.cluster_ids) + 1
        view.set_overlay(ids, rect, cluster_lut(n), self.opacity)

    def _update_overlay_controls(self) -> None:
        n_layers = len(self.cluster_ids)
        self.layer_box.blockSignals(True)
        current = self.layer_box.currentIndex()
        self.layer_box.clear()
        self.layer_box.addItems([str(i + 1) for i in range(n_layers)])
        if n_layers:
            self.layer_box.setCurrentIndex(min(max(current, 0), n_layers - 1))
        self.layer_box.blockSignals(False)
        has = n_layers > 0
        for widget in (self.layer_box, self.opacity_slider, self.overlay_check):
            widget.setEnabled(has)
        if has:
            n = max(int(a.max()) for a in self.cluster_ids) + 1
            swatches = " ".join(
                f"<span style='color: rgb{cluster_color(k)}'>&#9632;</span>&nbsp;{k + 1}" for k in range(n))
            self.legend.setText(f"clusters: {swatches}")
        else:
            self.legend.setText("")

    def _on_layer_changed(self, index: int) -> None:
        if index >= 0:
            self.model_input.set_layer(index)
            self._draw_view_overlay()

    def _on_overlay_toggled(self, on: bool) -> None:
        self.model_input.set_overlay_visible(on)
        self._draw_view_overlay()

    # --- drawing ------------------------------------------------------------------------------
    def _redraw(self, planes) -> None:
        g = self.geometry_
        if g is None:
            return
        for plane in planes:
            self.views[plane].set_image(g.slice_image(plane), g.plane_extent_mm(plane), self.levels, self.lut)
            self.views[plane].set_slice_number(g.slice_index(plane), g.n_slices(plane))
        for plane in PLANES:
            self.views[plane].set_crosshair(*g.plane_cursor_mm(plane))
        if self.cluster_plane in planes:
            self._draw_view_overlay()

    def _show_cursor(self, ijk) -> None:
        g = self.geometry_
        if g is None or not g.contains(ijk):
            self.cursor_label.setText(strings.VIEWER_CURSOR_OUTSIDE)
            return
        x, y, z = g.to_mm(ijk)
        self.cursor_label.setText(strings.VIEWER_CURSOR.format(i=ijk[0], j=ijk[1], k=ijk[2], x=x, y=y, z=z,
                                                               value=g.value_at(ijk)))

    def _show_hover(self, text: str) -> None:
        self.model_input.setToolTip(text)
        self.status_text.emit(text)

    # --- input ------------------------------------------------------------------------------------
    def _set_active(self, plane: str) -> None:
        self.active_plane = plane
        self.setFocus()

    def _on_view_clicked(self, plane: str, x: float, y: float) -> None:
        if self.geometry_ is None:
            return
        ijk = self.geometry_.voxel_at(plane, x, y)
        if self.geometry_.contains(ijk):
            self.set_cursor(ijk)

    def _on_view_hovered(self, plane: str, x: float, y: float) -> None:
        if self.geometry_ is not None:
            self._show_cursor(self.geometry_.voxel_at(plane, x, y))

    def _on_slider(self, plane: str, value: int) -> None:
        self.set_slice(plane, value)

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if self.geometry_ is None:
            return super().keyPressEvent(event)
        key = event.key()
        keys = shortcuts.VIEWER_KEYS
        name = _key_name(key)
        plane = self.active_plane
        if name in keys["next_slice"]:
            self.set_slice(plane, self.geometry_.slice_index(plane) + 1)
        elif name in keys["previous_slice"]:
            self.set_slice(plane, self.geometry_.slice_index(plane) - 1)
        elif name in keys["focus_axial"]:
            self.active_plane = "axial"
        elif name in keys["focus_coronal"]:
            self.active_plane = "coronal"
        elif name in keys["focus_sagittal"]:
            self.active_plane = "sagittal"
        elif name in keys["toggle_overlay"]:
            self.overlay_check.setChecked(not self.overlay_check.isChecked())
        elif name in keys["reset"]:
            self.reset_view()
        else:
            return super().keyPressEvent(event)
        event.accept()


def _histogram_sample(sample: np.ndarray) -> np.ndarray:
    """The voxels the histogram shows, as a square 2D array (ImageItem's histogram wants 2D):
    those above the background (2% of the range) when there are enough, so the background spike
    does not flatten the curve."""
    values = sample[np.isfinite(sample)]
    floor = values.min() + 0.02 * (values.max() - values.min()) if values.size else 0.0
    inside = values[values > floor]
    values = inside if inside.size > 100 else values
    if values.size == 0:
        values = np.zeros(1, dtype=np.float32)
    side = max(int(np.sqrt(values.size)), 1)
    return np.ascontiguousarray(values[: side * side].reshape(side, side), dtype=np.float32)


_KEY_NAMES = {
    Qt.Key.Key_Up: "Up", Qt.Key.Key_Down: "Down", Qt.Key.Key_PageUp: "PgUp", Qt.Key.Key_PageDown: "PgDown",
    Qt.Key.Key_A: "A", Qt.Key.Key_C: "C", Qt.Key.Key_S: "S", Qt.Key.Key_O: "O", Qt.Key.Key_R: "R",
}


def _key_name(key) -> str:
    try:
        return _KEY_NAMES.get(Qt.Key(key), "")
    except ValueError:
        return ""


OrthoViewer = MriViewer  # the name the package exports
