"""Where the cells of an experiment grid run: `local` (this process, one after another), `ray`
(one Ray task per cell, on this machine or a cluster) or `slurm` (one submitit job array per grid).

Every backend gets the same list of pending cells from `run_experiment` (after resume) and hands
each outcome back to the same `GridBook`, so results.csv, resume, the summary and the plots do not
depend on where a cell ran; each cell runs `grid.run_cell`, whatever the backend. A backend's
`run(spec, out_dir, pending, book, stop)` returns True when the stop flag ended the grid early.

Ray and submitit are optional extras (`pip install "smmt-studio[ray]"`, `"smmt-studio[slurm]"`):
they are imported only when their backend is made, and a missing one is a ConfigError that says
what to install.
"""

from __future__ import annotations

from smmt_core.errors import ConfigError
from smmt_core.experiments.backends.extras import require
from smmt_core.experiments.backends.local import LocalBackend

BACKENDS = ("local", "ray", "slurm")


def make_backend(name: str, **options):
    """A backend by name; `options` are that backend's own settings (see its class)."""
    if name == "local":
        return LocalBackend()
    if name == "ray":
        from smmt_core.experiments.backends.ray_backend import RayBackend

        return RayBackend(**options)
    if name == "slurm":
        from smmt_core.experiments.backends.slurm import SlurmBackend

        return SlurmBackend(**options)
    raise ConfigError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "LocalBackend", "make_backend", "require"]
