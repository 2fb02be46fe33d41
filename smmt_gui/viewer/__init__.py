"""The MRI viewer: three orthogonal views with a linked crosshair, window/level, colormaps and the
K-Means attention-cluster overlay, plus a strip of the exact slices the model saw.

`volume.py` holds the geometry (Qt-free, unit-tested with numpy); `slice_view.py` is one
pyqtgraph view; `ortho.py` links three of them; `model_input.py` draws the model's input slices
with their cluster ids; `colormaps.py` builds the lookup tables.
"""

from smmt_gui.viewer.model_input import ModelInputView
from smmt_gui.viewer.ortho import OrthoViewer

__all__ = ["OrthoViewer", "ModelInputView"]
