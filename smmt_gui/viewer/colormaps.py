"""Lookup tables: continuous colormaps for the MRI and a discrete palette for cluster ids.

The cluster overlay draws integer ids; a discrete table with one colour per id, and the image's
levels set to (0, n), maps id k exactly to colour k (pyqtgraph scales values into the table).
"""

from __future__ import annotations

import functools

import numpy as np
import pyqtgraph as pg

COLORMAPS = ("grey", "inferno", "viridis", "magma", "cividis")

@functools.lru_cache(maxsize=1)
def _qualitative_palette() -> list[tuple[int, int, int]]:
    """A qualitative palette from matplotlib: tab10 (ten clearly distinct hues; Tableau's grey left
    out, it vanishes on a grey brain), then tab20's lighter companions, so no two of the first ten
    clusters look alike (0 and 5 were once two oranges). Read on the first cluster overlay, not at
    start-up: importing matplotlib costs the app's first window about half a second."""
    from matplotlib import colormaps

    def rgb(colour) -> tuple[int, int, int]:
        return tuple(int(round(255 * c)) for c in colour[:3])

    tab10 = [rgb(c) for i, c in enumerate(colormaps["tab10"].colors) if i != 7]
    light = [rgb(c) for i, c in enumerate(colormaps["tab20"].colors) if i % 2 == 1 and i != 15]
    return tab10 + light


def colormap(name: str) -> pg.ColorMap:
    if name == "grey":
        return pg.ColorMap(pos=[0.0, 1.0], color=[(0, 0, 0), (255, 255, 255)], name="grey")
    if name not in COLORMAPS:
        raise ValueError(f"unknown colormap {name!r}; choose one of {', '.join(COLORMAPS)}")
    return pg.colormap.get(name)


def cluster_color(cluster_id: int) -> tuple[int, int, int]:
    """RGB of one cluster id (the palette repeats after 18 ids)."""
    palette = _qualitative_palette()
    return palette[int(cluster_id) % len(palette)]


def cluster_lut(n_clusters: int) -> np.ndarray:
    """(n, 4) uint8 RGBA table: row k is the colour of cluster k, fully opaque."""
    n = max(int(n_clusters), 1)
    lut = np.zeros((n, 4), dtype=np.uint8)
    for k in range(n):
        lut[k, :3] = cluster_color(k)
        lut[k, 3] = 255
    return lut


@functools.lru_cache(maxsize=1)
def model_input_lut() -> np.ndarray:
    """(256, 4) RGBA for what the model saw, drawn over the scan: black-body red -> yellow -> white
    (a colour no grey scan has), fully transparent at 0 so the background and the voxels the model
    did not see leave the scan untouched."""
    v = np.linspace(0.0, 1.0, 256)
    lut = np.zeros((256, 4), dtype=np.uint8)
    lut[:, 0] = np.clip(0.35 + 2.0 * v, 0, 1) * 255
    lut[:, 1] = np.clip(2.0 * v - 0.45, 0, 1) * 255
    lut[:, 2] = np.clip(3.0 * v - 2.0, 0, 1) * 255
    lut[:, 3] = 255
    lut[:3, 3] = 0  # values below ~0.01: the background outside the brain
    return lut
