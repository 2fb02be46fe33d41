"""Keep Python's garbage collector from freezing the window.

Why: a full collection scans every container object the process holds. In SMMT Studio that is
about 300,000 objects once the window is built and 370,000 once torch is imported for a model
(measured: a full collection took 0.3-0.5 s on an idle core, 1.1 s on a busy machine), and it
holds the interpreter lock, so the GUI thread stalls wherever the collection runs. Nearly all of
those objects (modules, classes, widgets, a loaded model) live as long as the app.

`freeze_long_lived()` moves every object alive now into the collector's permanent generation
(`gc.freeze()`): later collections scan only what is newer. Objects are still freed as soon as
nothing refers to them (reference counting); only a reference cycle among frozen objects would
outlive its use, and a replaced model has none (a Predictor is freed on its own).

Called when the window has been built (`smmt_gui.app`) and after each model load (its job, on the
worker thread). The GUI benchmark calls it the same way.
"""

from __future__ import annotations

import gc


def freeze_long_lived() -> None:
    """Leave every object alive now out of future garbage collections (see the module docstring)."""
    gc.freeze()
