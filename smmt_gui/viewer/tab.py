"""The main window's Viewer tab: the welcome page until a subject is shown, then the ortho viewer,
with a volume model's K-Means clusters as a 3D parcellation over it (its legend goes in a dock).

Why a widget of its own: how a preview, the scan's own-resolution views and a prediction become
pixels (the model's grid, a slice model's cluster overlay and slice strip, a volume model's
parcellation) is the viewer's business; the window only says what to show.
"""

from __future__ import annotations

from PySide6.QtWidgets import QStackedWidget

from smmt_gui import strings
from smmt_gui.viewer.ortho import OrthoViewer
from smmt_gui.viewer.parcellation import ClusterLegend, VolumeParcellation
from smmt_gui.widgets import WelcomePage


class ViewerTab(QStackedWidget):
    """`welcome` or `viewer`; `parcellation` draws on the viewer, `cluster_legend` explains it."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.welcome = WelcomePage()
        self.viewer = OrthoViewer()
        self.parcellation = VolumeParcellation(self.viewer)
        self.cluster_legend = ClusterLegend(self.parcellation)
        self.addWidget(self.welcome)
        self.addWidget(self.viewer)

    def show_preview(self, volume, affine) -> None:
        """A scan on the model's grid, before (or without) a prediction: no clusters."""
        self.viewer.set_volume(volume, affine, space=strings.SPACE_MNI)
        self.viewer.set_clusters(None)

    def show_scans(self, views) -> None:
        """The scan at its own resolution (`smmt_core.data.scan_views.ScanViews`) under the model's grid."""
        native = (views.native.volume, views.native.affine) if views.native is not None else None
        self.viewer.set_scans((views.mni.volume, views.mni.affine), native, views.mni_to_native)

    def show_prediction(self, prediction, new_volume: bool) -> bool:
        """Draw what the model saw and its clusters; `new_volume`: the prediction's grid replaces the
        volume shown. Returns whether the clusters are a volume model's parcellation."""
        if new_volume:
            self.viewer.set_volume(prediction.volume, prediction.volume_affine, space=strings.SPACE_MNI)
        volume_clusters = "mri" in prediction.modalities_used and getattr(prediction, "patch_grid", None) is not None
        saw_mri = (prediction.slices is not None or volume_clusters) and "mri" in prediction.modalities_used
        # MRI off: the model saw no image. A whole-brain model: the viewer hides its slice strip.
        self.viewer.set_clusters(prediction if saw_mri else None)
        self.parcellation.set_prediction(prediction if volume_clusters else None)
        if new_volume:
            self.viewer.go_to_model_slice(len(prediction.slice_indices) // 2)
        return volume_clusters

    def clear_clusters(self) -> None:
        """No prediction (refused, or nothing switched on): no clusters of an older one stay."""
        self.viewer.set_clusters(None)
        self.parcellation.set_prediction(None)
