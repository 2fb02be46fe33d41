"""Experiment grids: many training runs and the simple baselines, scored on the same persons.

`grid` runs the cells (`run_experiment`, `ExperimentSpec`); `summary` turns the results table into
mean ± SD per method, paired differences with CIs and Markdown; `plots` draws them. This package
sits above `train` and `baselines`: it orchestrates both, neither knows about it.
"""

# Imported on first use (as in smmt_core.model): `smmt experiment --help` reads `grid_keys` and
# `backends` from this package without loading pandas and the trainer through `grid`.
_LAZY = ("CellFinished", "CellStarted", "ExperimentCell", "ExperimentResult", "ExperimentSpec", "load_results",
         "run_experiment")


def __getattr__(name):
    if name in _LAZY:
        from smmt_core.experiments import grid

        return getattr(grid, name)
    raise AttributeError(f"module 'smmt_core.experiments' has no attribute {name!r}")


__all__ = sorted(_LAZY)
