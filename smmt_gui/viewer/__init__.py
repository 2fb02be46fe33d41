"""The MRI viewer: three orthogonal views with a linked crosshair and zoom, window/level,
colormaps, radiological or neurological display, the scan at its own resolution (MNI or native
space) with the model's 2 mm input and K-Means attention clusters over it, plus a strip of the
exact slices the model saw.

`volume.py` holds the geometry (Qt-free, unit-tested with numpy: one grid, a second grid laid over
it, resampling through a world map); `slice_view.py` is one pyqtgraph view; `ortho.py` links three
of them; `model_input.py` draws the model's input slices with their cluster ids; `parcellation.py`
a volume model's 3D clusters; `tab.py` is the main window's Viewer tab (the welcome page, then
the viewer with the parcellation); `colormaps.py` builds the lookup tables. The images come from
`smmt_core.data.scan_views` (the scan) and `smmt_core.predict.Prediction` (the model's grid).
"""

from smmt_gui.viewer.model_input import ModelInputView
from smmt_gui.viewer.ortho import OrthoViewer

__all__ = ["OrthoViewer", "ModelInputView"]
