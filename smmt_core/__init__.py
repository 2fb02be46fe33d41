"""SMMT Studio core: data, model, training and prediction. Never imports Qt.

The GUI (`smmt_gui`) and the command line (`smmt_core.cli`) are two thin shells over the
public functions of this package.
"""

__version__ = "0.2.0"
