"""Test-wide settings: Qt renders offscreen, codecarbon never touches the network."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("CODECARBON_LOG_LEVEL", "error")
os.environ.setdefault("MPLBACKEND", "Agg")
