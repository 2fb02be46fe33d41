"""Experiment grids: many training runs and the simple baselines, scored on the same persons.

`grid` runs the cells (`run_experiment`, `ExperimentSpec`); `summary` turns the results table into
mean ± SD per method, paired differences with CIs and Markdown; `plots` draws them. This package
sits above `train` and `baselines`: it orchestrates both, neither knows about it.
"""

from smmt_core.experiments.grid import (  # noqa: F401
    CellFinished,
    CellStarted,
    ExperimentCell,
    ExperimentResult,
    ExperimentSpec,
    load_results,
    run_experiment,
)
