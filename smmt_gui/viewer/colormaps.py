"""Lookup tables: continuous colormaps for the MRI and a discrete palette for cluster ids.

The cluster overlay draws integer ids; a discrete table with one colour per id, and the image's
levels set to (0, n), maps id k exactly to colour k (pyqtgraph scales values into the table).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

COLORMAPS = ("grey", "inferno", "viridis", "magma", "cividis")

# A qualitative palette (Okabe-Ito first, then Tableau), readable on a grey brain.
_PALETTE = [
    (230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66), (0, 114, 178), (213, 94, 0),
    (204, 121, 167), (255, 255, 255), (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40),
    (148, 103, 189), (140, 86, 75), (227, 119, 194), (188, 189, 34), (23, 190, 207), (127, 127, 127),
]


def colormap(name: str) -> pg.ColorMap:
    if name == "grey":
        return pg.ColorMap(pos=[0.0, 1.0], color=[(0, 0, 0), (255, 255, 255)], name="grey")
    if name not in COLORMAPS:
        raise ValueError(f"unknown colormap {name!r}; choose one of {', '.join(COLORMAPS)}")
    return pg.colormap.get(name)


def cluster_color(cluster_id: int) -> tuple[int, int, int]:
    """RGB of one cluster id (the palette repeats after 18 ids)."""
    return _PALETTE[int(cluster_id) % len(_PALETTE)]


def cluster_lut(n_clusters: int) -> np.ndarray:
    """(n, 4) uint8 RGBA table: row k is the colour of cluster k, fully opaque."""
    n = max(int(n_clusters), 1)
    lut = np.zeros((n, 4), dtype=np.uint8)
    for k in range(n):
        lut[k, :3] = cluster_color(k)
        lut[k, 3] = 255
    return lut
