"""The MRI viewer widget: three linked orthogonal views, window/level, colormap, cluster overlay.

Layout: axial · coronal · sagittal side by side with a slice slider under each, the intensity
histogram with draggable levels on the right (it drives all three views), the cursor read-out,
two control rows (space, what the model saw, radiological display, linked zoom; colormap,
cluster overlay on/off, layer, opacity, reset), and below them the strip of slices the model saw
with their K-Means cluster ids (`ModelInputView`).

What is shown (FSLeyes habits): the subject's scan at its *own* resolution
(`set_scans`: the 1 mm registered T1 in MNI space, or the scan as acquired in native space), with
the model's 2 mm grid (`set_volume`) laid over it: its voxels as a toggleable "what the model saw"
layer, its attention clusters and slice positions. Until a scan arrives the model's grid itself is
shown. In native space the crosshair goes through the intake's MNI -> native transform, so one
point is the same anatomy in both spaces (`cursor_mni_mm`). Radiological display mirrors the
axial and coronal views; zooming or panning one view zooms and pans the other two alike.

State lives in Qt-free `VolumeGeometry` / `GridLink` objects; this widget only turns their state
into pixels, so the crosshair, slice and coordinate logic is tested without drawing.
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
from smmt_gui.viewer.colormaps import COLORMAPS, cluster_color, cluster_lut, colormap, model_input_lut
from smmt_gui.viewer.model_input import ModelInputView
from smmt_gui.viewer.slice_view import SliceView
from smmt_gui.viewer.volume import PLANE_AXES, PLANES, GridLink, VolumeGeometry, resample_slice, robust_levels
from smmt_gui.widgets import ElidedLabel

SPACES = ("mni", "native")

HISTOGRAM_MAX_VOXELS = 400_000  # the histogram is computed on a strided sample of the volume

# Maps one (h, w) id grid of a model input slice to the [horizontal, vertical] order of the ortho
# view of the same plane. Set by whoever knows how the slices were cut (see MriViewer.set_clusters).
GridToView = Callable[[np.ndarray], np.ndarray]


def image_grid_to_view(grid: np.ndarray) -> np.ndarray:
    """Default mapping: the model slice is an image whose row 0 is the top of the view."""
    return np.ascontiguousarray(np.asarray(grid).T[:, ::-1])


class MriViewer(QWidget):
    """Orthogonal views + histogram + controls + the model-input strip."""

    cursor_changed = Signal(object)  # (i, j, k) of the image shown
    status_text = Signal(str)
    image_changed = Signal()  # another image is shown (a new subject, its scan arrived, the space changed)
    radiological_changed = Signal(bool)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._init_state()
        self._build_views()
        self._build_controls()
        self._build_model_strip()
        self._lay_out()
        self.set_colormap("grey")
        self._update_overlay_controls()

    def _init_state(self) -> None:
        """The images and the model's grid, what the model saw, the display settings, the overlay."""
        self.geometry_: VolumeGeometry | None = None  # the image shown
        self.model_grid: VolumeGeometry | None = None  # the model's grid (MNI, 2 mm): what it saw
        self.scans: dict[str, VolumeGeometry] = {}  # "mni" / "native": the scan at its own resolution
        self.mni_to_native = np.eye(4)  # the intake's transform (RAS mm -> RAS mm)
        self.space = "mni"
        self.link: GridLink | None = None  # the model's grid in the shown image's display frame (MNI only)
        self._cursor_mni: np.ndarray | None = None  # the crosshair in MNI mm (kept unsnapped across spaces)
        self._space_note = ""
        self._model_source: VolumeGeometry | None = None  # the model's grid, zero where it saw nothing
        self._seen: tuple[str, list[int]] | None = None  # (plane, slice indices) the model saw
        self.model_opacity = 0.5
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

    def _build_views(self) -> None:
        """The three slice views with their sliders, and the histogram that sets window/level."""
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
        # The window/level handles are what a user should grab: thick, yellow on
        # hover. The colour bar's triangle ticks (which open Qt's colour picker) are hidden; the
        # colormap box chooses colours.
        for line in self.histogram.item.region.lines:
            line.setPen(pg.mkPen((240, 240, 240), width=3))
            line.setHoverPen(pg.mkPen((255, 210, 0), width=5))
        self.histogram.item.region.setToolTip(strings.VIEWER_WINDOW_LEVEL_TIP)
        self.histogram.item.gradient.showTicks(False)
        for plane in PLANES:
            view, slider = self.views[plane], self.sliders[plane]
            view.clicked.connect(lambda x, y, p=plane: self._on_view_clicked(p, x, y))
            view.hovered.connect(lambda x, y, p=plane: self._on_view_hovered(p, x, y))
            view.activated.connect(self._set_active)
            view.zoomed.connect(self._on_view_zoomed)
            slider.setObjectName(f"slider_{plane}")
            slider.setEnabled(False)
            slider.valueChanged.connect(lambda value, p=plane: self._on_slider(p, value))

    def _build_controls(self) -> None:
        """The cursor read-out, the synthetic-data badge and the controls of the two rows under the views."""
        self.cursor_label = QLabel(strings.VIEWER_EMPTY)
        self.cursor_label.setObjectName("cursorLabel")
        self.cursor_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.space_label = ElidedLabel(strings.VIEWER_SPACE_TIP)  # "…" and a tooltip on a narrow window
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
        self.layer_box.setMaximumWidth(60)
        self.layer_box.currentIndexChanged.connect(self._on_layer_changed)
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(int(self.opacity * 100))
        self.opacity_slider.setMaximumWidth(100)
        self.opacity_slider.setToolTip(strings.VIEWER_OVERLAY_OPACITY)
        self.opacity_slider.valueChanged.connect(lambda v: self.set_opacity(v / 100.0))
        self.reset_button = QPushButton(strings.VIEWER_RESET)
        self.reset_button.clicked.connect(self.reset_view)
        self.space_box = QComboBox()
        self.space_box.setObjectName("spaceBox")
        for space in SPACES:
            self.space_box.addItem(strings.VIEWER_SPACE_NAMES[space], space)
        self.space_box.setToolTip(strings.VIEWER_SPACE_TIP)
        self.space_box.setEnabled(False)
        self.space_box.currentIndexChanged.connect(lambda i: self.set_space(self.space_box.itemData(i)))
        self.model_input_check = QCheckBox(strings.VIEWER_MODEL_LAYER)
        self.model_input_check.setObjectName("modelLayerCheck")
        self.model_input_check.setToolTip(strings.VIEWER_MODEL_LAYER_TIP)
        self.model_input_check.setEnabled(False)
        self.model_input_check.toggled.connect(lambda _on: self._draw_model_layer(PLANES))
        self.model_opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.model_opacity_slider.setRange(0, 100)
        self.model_opacity_slider.setValue(round(self.model_opacity * 100))
        self.model_opacity_slider.setMaximumWidth(100)
        self.model_opacity_slider.setToolTip(strings.VIEWER_MODEL_LAYER_OPACITY)
        self.model_opacity_slider.valueChanged.connect(lambda v: self.set_model_opacity(v / 100.0))
        self.radiological_check = QCheckBox(strings.VIEWER_RADIOLOGICAL)
        self.radiological_check.setObjectName("radiologicalCheck")
        self.radiological_check.setToolTip(strings.VIEWER_RADIOLOGICAL_TIP)
        self.radiological_check.toggled.connect(self.set_radiological)
        self.link_zoom_check = QCheckBox(strings.VIEWER_LINK_ZOOM)
        self.link_zoom_check.setToolTip(strings.VIEWER_LINK_ZOOM_TIP)
        self.link_zoom_check.setChecked(True)
        self.cursor_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.synthetic_badge = QLabel(strings.SYNTHETIC_BADGE)
        self.synthetic_badge.setObjectName("syntheticBadge")
        self.synthetic_badge.setToolTip(strings.SYNTHETIC_TOOLTIP)
        self.synthetic_badge.setVisible(False)

    def _build_model_strip(self) -> None:
        """The strip of slices the model saw, its title and the cluster legend."""
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

    def _lay_out(self) -> None:
        """Views and histogram on top; under them the read-out, the two control rows, the model strip."""
        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(4)
        for col, plane in enumerate(PLANES):
            grid.addWidget(self.views[plane], 0, col)
            grid.addWidget(self.sliders[plane], 1, col)
            grid.setColumnStretch(col, 1)
        grid.addWidget(self.histogram, 0, 3, 2, 1)
        readout = QHBoxLayout()
        readout.addWidget(self.synthetic_badge)
        readout.addWidget(self.cursor_label, 1)
        # Row 1: how the image is shown. Row 2: what of the model is drawn over it.
        display = QHBoxLayout()
        display.addWidget(QLabel(strings.VIEWER_SPACE))
        display.addWidget(self.space_box)
        display.addWidget(self.space_label, 1)
        display.addWidget(self.radiological_check)
        display.addWidget(self.link_zoom_check)
        display.addSpacing(8)
        display.addWidget(QLabel(strings.VIEWER_COLORMAP))
        display.addWidget(self.colormap_box)
        display.addWidget(self.reset_button)
        controls = QHBoxLayout()
        controls.addWidget(self.model_input_check)
        controls.addWidget(self.model_opacity_slider)
        controls.addSpacing(16)
        controls.addWidget(self.overlay_check)
        controls.addWidget(QLabel(strings.VIEWER_OVERLAY_LAYER))
        controls.addWidget(self.layer_box)
        controls.addWidget(QLabel(strings.VIEWER_OVERLAY_OPACITY))
        controls.addWidget(self.opacity_slider)
        controls.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(grid, 1)
        layout.addLayout(readout)
        layout.addLayout(display)
        layout.addLayout(controls)
        title_row = QHBoxLayout()
        title_row.addWidget(self.model_input_title, 1)
        title_row.addWidget(self.legend)
        layout.addLayout(title_row)
        layout.addWidget(self.model_input)

    # --- volume -----------------------------------------------------------------------------
    @property
    def has_volume(self) -> bool:
        return self.geometry_ is not None

    def set_volume(self, volume: np.ndarray, affine: np.ndarray | None = None, *, space: str = "",
                   keep_cursor: bool = False) -> None:
        """The model's grid (any 3D float array, e.g. the 2 mm MNI volume a prediction carries) of a
        new subject: shown as it is until `set_scans` brings the scan itself. The crosshair goes to
        the centre unless kept (same MNI point)."""
        geometry = VolumeGeometry(volume, np.eye(4) if affine is None else affine)
        cursor = self._cursor_mni if keep_cursor else None
        self.model_grid = geometry
        self.scans, self.mni_to_native, self.space = {}, np.eye(4), "mni"
        self._space_note = space
        self._set_seen(self._seen)
        self._update_space_box()
        self._show(geometry, cursor_mni=cursor, reset_zoom=not keep_cursor)

    def set_scans(self, mni: tuple[np.ndarray, np.ndarray] | None, native: tuple[np.ndarray, np.ndarray] | None = None,
                  mni_to_native: np.ndarray | None = None) -> None:
        """The subject's scan at its own resolution: `mni` (volume, affine) in MNI space and, for a
        scan that went through the intake, `native` (volume, affine) as acquired, with the intake's
        4x4 MNI -> native transform (RAS mm). The crosshair stays on the same MNI point."""
        scans = {}
        if mni is not None:
            scans["mni"] = VolumeGeometry(*mni)
        if native is not None:
            scans["native"] = VolumeGeometry(*native)
        matrix = np.eye(4) if mni_to_native is None else np.asarray(mni_to_native, dtype=float)
        if matrix.shape != (4, 4) or abs(np.linalg.det(matrix[:3, :3])) < 1e-8:
            raise ValueError("mni_to_native must be an invertible 4x4 matrix")
        cursor = self._cursor_mni
        self.scans, self.mni_to_native = scans, matrix
        if self.space not in self.available_spaces():
            self.space = "mni"
        self._update_space_box()
        self._show(self._image_for(self.space), cursor_mni=cursor, reset_zoom=True)

    def available_spaces(self) -> list[str]:
        """The spaces the subject can be shown in: MNI always, native for a scan the intake moved."""
        return ["mni", *(["native"] if "native" in self.scans else [])]

    def set_space(self, space: str) -> None:
        """Show the subject in MNI space or in its own (native) space; the crosshair keeps its anatomy."""
        if space == self.space or space not in self.available_spaces() or self.geometry_ is None:
            self._update_space_box()
            return
        self.space = space
        self._update_space_box()
        self._show(self._image_for(space), cursor_mni=self._cursor_mni, reset_zoom=True)

    def _image_for(self, space: str) -> VolumeGeometry:
        return self.scans.get(space) or self.model_grid

    def _update_space_box(self) -> None:
        self.space_box.blockSignals(True)
        self.space_box.setCurrentIndex(SPACES.index(self.space))
        self.space_box.blockSignals(False)
        self.space_box.setEnabled(len(self.available_spaces()) > 1)

    def cursor_mni_mm(self) -> tuple[float, float, float] | None:
        """The crosshair as an MNI point (mm), whichever space is shown."""
        return None if self._cursor_mni is None else tuple(float(v) for v in self._cursor_mni)

    def shown_to_mni_mm(self, xyz_mm) -> np.ndarray:
        """A point of the shown image's space (mm) as an MNI point (mm)."""
        p = np.array([*xyz_mm, 1.0])
        return (np.linalg.solve(self.mni_to_native, p) if self.space == "native" else p)[:3]

    def mni_to_shown_mm(self, xyz_mm) -> np.ndarray:
        p = np.array([*xyz_mm, 1.0])
        return (self.mni_to_native @ p if self.space == "native" else p)[:3]

    def _show(self, geometry: VolumeGeometry, *, cursor_mni=None, reset_zoom: bool = True) -> None:
        """Make `geometry` the image on screen; the crosshair on `cursor_mni` (MNI mm) or the centre."""
        self.geometry_ = geometry
        if cursor_mni is not None:
            geometry.cursor = geometry.clamp(geometry.voxel_of_mm(self.mni_to_shown_mm(cursor_mni)))
        self.link = None
        if self.model_grid is not None and self.space == "mni":
            try:
                self.link = GridLink(geometry, self.model_grid)
            except ValueError:  # an oblique grid: the model's voxels cannot be laid over it exactly
                self.link = None
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
        self.set_levels(self._default_levels())
        self._cursor_mni = (np.asarray(cursor_mni, dtype=float) if cursor_mni is not None
                            else self.shown_to_mni_mm(geometry.to_mm(geometry.cursor)))
        self.model_input_check.setEnabled(self.model_grid is not None)
        self.space_label.setText(self._space_text())
        self._redraw(PLANES)
        self._draw_view_overlay()
        self._draw_markers()
        self._show_cursor(geometry.cursor)
        if reset_zoom:
            for view in self.views.values():
                view.reset_zoom()
        self.image_changed.emit()

    def _space_text(self) -> str:
        g = self.geometry_
        if g is None:
            return ""
        if g is self.model_grid:
            return self._space_note
        shown = _voxel_text(g.spacing)
        if self.space == "native":
            return strings.SPACE_NATIVE_SCAN.format(voxel=shown)
        if self.model_grid is None or self._on_model_grid():
            return strings.SPACE_MNI_SCAN_ON_GRID.format(voxel=shown)
        return strings.SPACE_MNI_SCAN.format(voxel=shown, model=_voxel_text(self.model_grid.spacing))

    def _on_model_grid(self) -> bool:
        """The image shown has the model's own voxels (a 2 mm demo scan): one voxel index for both."""
        g, model = self.geometry_, self.model_grid
        return g is not None and model is not None and g.shape == model.shape and np.allclose(g.affine, model.affine)

    def set_synthetic(self, synthetic: bool) -> None:
        """Mark the image on screen as SYNTHETIC (demo cohort) or not."""
        self.synthetic_badge.setVisible(bool(synthetic))

    def clear(self) -> None:
        self.geometry_ = self.model_grid = self.link = self._cursor_mni = None
        self.scans, self.mni_to_native, self.space = {}, np.eye(4), "mni"
        self._update_space_box()
        self.model_input_check.setEnabled(False)
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
        """Move the crosshair to voxel `ijk` of the image shown."""
        if self.geometry_ is None:
            return
        old = self.geometry_.cursor
        self.geometry_.cursor = self.geometry_.clamp(ijk)
        self._cursor_mni = self.shown_to_mni_mm(self.geometry_.to_mm(self.geometry_.cursor))
        changed = [p for p in PLANES if old[PLANE_AXES[p][0]] != self.geometry_.cursor[PLANE_AXES[p][0]]]
        for plane in PLANES:
            slider = self.sliders[plane]
            slider.blockSignals(True)
            slider.setValue(self.geometry_.slice_index(plane))
            slider.blockSignals(False)
        self._redraw(changed)  # crosshairs move in every view, images only where the slice changed
        self._show_cursor(self.geometry_.cursor)
        self.cursor_changed.emit(self.geometry_.cursor)

    def set_cursor_mni(self, xyz_mm) -> None:
        """Move the crosshair to an MNI point (mm), in whichever space is shown: the voxel nearest
        to it, while the point itself is kept (a switch of space maps it, not the voxel centre)."""
        if self.geometry_ is not None:
            self.set_cursor(self.geometry_.voxel_of_mm(self.mni_to_shown_mm(xyz_mm)))
            self._cursor_mni = np.asarray(xyz_mm, dtype=float)

    def set_slice(self, plane: str, index: int) -> None:
        if self.geometry_ is None:
            return
        ijk = list(self.geometry_.cursor)
        ijk[PLANE_AXES[plane][0]] = index
        self.set_cursor(ijk)

    # --- display conventions ----------------------------------------------------------------------
    def set_radiological(self, on: bool) -> None:
        """Radiological display (the patient's right on the screen's left in the axial and coronal
        views) or neurological (left on the left, the default); the letters follow."""
        on = bool(on)
        if self.radiological_check.isChecked() != on:
            self.radiological_check.blockSignals(True)
            self.radiological_check.setChecked(on)
            self.radiological_check.blockSignals(False)
        for view in self.views.values():
            view.set_radiological(on)
        self.model_input.set_mirrored(on)  # the strip's axial and coronal slices too, so the clusters match
        self.radiological_changed.emit(on)

    @property
    def radiological(self) -> bool:
        return self.radiological_check.isChecked()

    def _on_view_zoomed(self, plane: str) -> None:
        """The user zoomed or panned one view: the other two show the same magnification, centred
        on the same point along the axes they share with it."""
        if not self.link_zoom_check.isChecked() or self.geometry_ is None:
            return
        magnification, (cx, cy) = self.views[plane].zoom()
        _, h, v = PLANE_AXES[plane]
        centre = {h: cx, v: cy}
        for other in PLANES:
            if other == plane:
                continue
            _, h2, v2 = PLANE_AXES[other]
            _, (ox, oy) = self.views[other].zoom()
            self.views[other].set_zoom(magnification, (centre.get(h2, ox), centre.get(v2, oy)))

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
        boxes."""
        from PySide6.QtGui import QColor, QImage, QPainter

        top = [self.views[plane].grab() for plane in PLANES]
        # Only what has something to show: an empty legend or a strip without slices is a white block.
        shown = [self.model_input_title]
        if self.legend.text():
            shown.append(self.legend)
        if self.model_input.slices is not None:
            shown.append(self.model_input)
        bottom = [w.grab() for w in shown if not w.isHidden() and w.width() > 0]
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
            self.set_levels(self._default_levels())

    def _default_levels(self) -> tuple[float, float]:
        """The robust window of the image shown (on a strided sample: a 1 mm scan has ~8 M voxels)."""
        volume = self.geometry_.volume
        step = max(1, int(np.ceil((volume.size / HISTOGRAM_MAX_VOXELS) ** (1 / 3))))
        return robust_levels(volume[::step, ::step, ::step])

    # --- what the model saw -------------------------------------------------------------------
    def set_model_opacity(self, opacity: float) -> None:
        self.model_opacity = float(min(max(opacity, 0.0), 1.0))
        if self.model_opacity_slider.value() != round(self.model_opacity * 100):
            self.model_opacity_slider.blockSignals(True)
            self.model_opacity_slider.setValue(round(self.model_opacity * 100))
            self.model_opacity_slider.blockSignals(False)
        for view in self.views.values():
            view.model_layer.setOpacity(self.model_opacity)

    def set_model_layer_visible(self, on: bool) -> None:
        self.model_input_check.setChecked(bool(on))

    def _set_seen(self, seen: tuple[str, list[int]] | None) -> None:
        """What of the model's grid the model saw: a slice model's slices (plane, indices), or all of
        it (None: a whole-brain model, or no prediction yet)."""
        self._seen = seen
        grid = self.model_grid
        if grid is None:
            self._model_source = None
            return
        volume = grid.volume
        if seen is not None:
            plane, indices = seen
            axis = PLANE_AXES[plane][0]
            keep = np.zeros(grid.shape[axis], dtype=bool)
            keep[[i for i in indices if 0 <= i < grid.shape[axis]]] = True
            shape = [1, 1, 1]
            shape[axis] = -1
            volume = volume * keep.reshape(shape)
        self._model_source = VolumeGeometry(volume, grid.affine)

    def model_index(self, plane: str) -> int | None:
        """The slice of the model's grid through the crosshair, or None where its grid cannot be
        laid over the image shown (native space)."""
        return None if self.link is None else self.link.other_index(plane)

    def model_rect(self, plane: str, rect=None) -> QRectF | None:
        """A rectangle of the model's display frame (default: its whole slice) in the shown image's."""
        return None if self.link is None else QRectF(*self.link.rect(plane, rect))

    def model_voxel_at(self, plane: str, x: float, y: float) -> tuple[int, int, int] | None:
        """The voxel of the model's grid under a display position, or None (no grid, outside it)."""
        if self.link is None:
            return None
        ijk = self.link.other_voxel_at(plane, x, y)
        return ijk if self.model_grid.contains(ijk) else None

    def model_layer_image(self, plane: str) -> np.ndarray | None:
        """What the model saw on the current slice of `plane`, as drawn ([horizontal, vertical], in
        the model's voxels in MNI space, in the shown image's voxels in native space), or None."""
        if not (self.model_input_check.isChecked() and self._model_source is not None and self.geometry_):
            return None
        if self.link is not None:
            index = self.link.other_index(plane)
            if not 0 <= index < self._model_source.n_slices(plane):
                return None
            if self._seen is not None and plane == self._seen[0] and index not in self._seen[1]:
                return None  # a slice model did not see this slice
            return self._model_source.slice_image(plane, index)
        if self.space == "native":
            return resample_slice(self.geometry_, plane, self._model_source, np.linalg.inv(self.mni_to_native))
        return None

    def _draw_model_layer(self, planes) -> None:
        lut = model_input_lut()
        for plane in planes:
            view = self.views[plane]
            image = self.model_layer_image(plane)
            if image is None:
                view.set_model_layer(None)
                continue
            rect = self.model_rect(plane) if self.link is not None else None
            view.set_model_layer(image, rect, lut, self.model_opacity)
        if tuple(planes) == PLANES:
            self._draw_markers()

    def _draw_markers(self) -> None:
        """Dashed lines where a slice model's slices cut the other two views (MNI space, layer on)."""
        show = self._seen is not None and self.link is not None and self.model_input_check.isChecked()
        for plane, view in self.views.items():
            if not show or plane == self._seen[0]:
                view.set_markers([], vertical=False)
                continue
            _, h, v = PLANE_AXES[plane]
            axis = PLANE_AXES[self._seen[0]][0]
            spacing, offset = self.model_grid.spacing[axis], self.link.offset[axis]
            positions = [(i + 0.5) * spacing + offset for i in self._seen[1]]
            view.set_markers(positions, vertical=(axis == h))

    # --- cluster overlay --------------------------------------------------------------------
    def set_clusters(self, prediction_like=None, *, grid_to_view: GridToView | None = None,
                     cluster_rect: Callable[[int], QRectF] | None = None) -> None:
        """Show the model's input slices and cluster ids (an object with slices, cluster_ids,
        slice_indices, plane: e.g. a `smmt_core.predict.Prediction`); None clears them.

        grid_to_view / cluster_rect say where one slice's id grid lies in the ortho view of that
        plane; by default the grid is an image (rows top-down) over the padded square that
        `smmt_core.data.preprocess` cuts (see `VolumeGeometry.model_slice_rect_mm`)."""
        slices = getattr(prediction_like, "slices", None)
        # A whole-brain (volume) model saw no slices; its 3D clusters belong to the parcellation.
        whole_brain = slices is None and getattr(prediction_like, "patch_grid", None) is not None
        ids = [] if whole_brain else list(getattr(prediction_like, "cluster_ids", None) or [])
        indices = list(getattr(prediction_like, "slice_indices", None) or [])
        plane = getattr(prediction_like, "plane", "axial") or "axial"
        self.cluster_ids = [np.asarray(a) for a in ids]
        self.cluster_slice_indices = indices
        self.cluster_plane = plane if (ids and indices) else None
        self._set_seen((plane, indices) if (slices is not None and indices) else None)
        self._draw_model_layer(PLANES)
        self.grid_to_view = grid_to_view or image_grid_to_view
        self.cluster_rect = cluster_rect
        self.model_input.set_input(slices, self.cluster_ids, indices, plane)
        self.model_input.set_opacity(self.opacity)
        self.model_input.set_overlay_visible(self.overlay_check.isChecked())
        self.model_input.setVisible(not whole_brain)  # a volume model saw no slices: nothing to show there
        if whole_brain:
            self.model_input_title.setText(strings.VIEWER_WHOLE_BRAIN_MODEL)
        elif slices is None:
            self.model_input_title.setText(strings.VIEWER_OVERLAY_NONE)
        else:
            self.model_input_title.setText(strings.VIEWER_MODEL_INPUT.format(
                plane=strings.PLANE_NAMES.get(plane, plane).lower(), indices=", ".join(map(str, indices))))
        self._update_overlay_controls()
        self._draw_view_overlay()

    def go_to_model_slice(self, number: int = 0) -> None:
        """Move the crosshair to a slice the model saw, so its cluster overlay is in view."""
        if not (self.cluster_plane and self.cluster_slice_indices and self.geometry_ is not None
                and self.model_grid is not None and self._cursor_mni is not None):
            return
        index = self.cluster_slice_indices[min(number, len(self.cluster_slice_indices) - 1)]
        axis = PLANE_AXES[self.cluster_plane][0]
        ijk = list(self.model_grid.voxel_of_mm(self._cursor_mni))
        ijk[axis] = index
        target = np.array(self._cursor_mni, dtype=float)
        target[axis] = self.model_grid.to_mm(ijk)[axis]  # the slice's centre, the rest of the point kept
        self.set_cursor_mni(target)

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
        if not (self.cluster_plane and self.cluster_ids and self.overlay_check.isChecked() and self.link):
            return None
        index = self.link.other_index(self.cluster_plane)
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
        s = self.cluster_slice_indices.index(self.link.other_index(self.cluster_plane))
        if self.cluster_rect is not None:
            r = self.cluster_rect(s)
            rect = self.model_rect(self.cluster_plane, (r.x(), r.y(), r.width(), r.height()))
        else:
            rect = self.model_rect(self.cluster_plane, self.model_grid.model_slice_rect_mm(self.cluster_plane))
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
        self._draw_model_layer(planes)

    def _show_cursor(self, ijk, model_ijk=None) -> None:
        """The read-out: the voxel of the image shown, in its own grid and in mm, its intensity; in
        native space the same point in MNI mm; and the model's own voxel when its grid differs."""
        g = self.geometry_
        if g is None or not g.contains(ijk):
            self.cursor_label.setText(strings.VIEWER_CURSOR_OUTSIDE)
            return
        x, y, z = g.to_mm(ijk)
        text = strings.VIEWER_CURSOR.format(i=ijk[0], j=ijk[1], k=ijk[2], x=x, y=y, z=z,
                                            value=_intensity_text(g.value_at(ijk)))
        if self.space == "native":
            mx, my, mz = self.shown_to_mni_mm((x, y, z))
            text += strings.VIEWER_CURSOR_MNI.format(x=mx, y=my, z=mz)
        model = self.model_grid
        if model is not None and model is not g and self.link is not None:
            m = model_ijk if model_ijk is not None else model.voxel_of_mm((x, y, z))
            if model.contains(m) and self._on_model_grid():
                text += strings.VIEWER_CURSOR_MODEL_SAME.format(value=model.value_at(m))  # same grid: the value
            elif model.contains(m):
                text += strings.VIEWER_CURSOR_MODEL.format(i=m[0], j=m[1], k=m[2], value=model.value_at(m))
        self.cursor_label.setText(text)

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
            self._show_cursor(self.geometry_.voxel_at(plane, x, y), self.model_voxel_at(plane, x, y))

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
        elif name in keys["toggle_model_layer"]:
            self.model_input_check.setChecked(not self.model_input_check.isChecked())
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
    Qt.Key.Key_M: "M",
}


def _key_name(key) -> str:
    try:
        return _KEY_NAMES.get(Qt.Key(key), "")
    except ValueError:
        return ""


def _intensity_text(value: float) -> str:
    """0.757 on the model's [0, 1] scale, 1234 or 101005 in scanner units (never 1.01e+05)."""
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.4g}" if abs(value) >= 1 else f"{value:.3f}"


def _voxel_text(spacing) -> str:
    """'1 mm' for isotropic voxels, '0.9 x 0.9 x 1.2 mm' otherwise."""
    values = [f"{float(v):.2g}" for v in spacing]
    return f"{values[0]} mm" if len(set(values)) == 1 else f"{' x '.join(values)} mm"


OrthoViewer = MriViewer  # the name the package exports
