"""The training settings that an experiment grid sets per cell (`GRID_KEYS`): they cannot be given as
overrides, so `smmt experiment` offers no flag for them. Apart from `grid` (pandas, the trainer) so
that the command line's parser reads them without importing the experiment machinery."""

# TrainConfig settings that the grid itself sets per cell: they cannot be given as overrides.
GRID_KEYS = ("dataset", "out", "run_name", "variant", "fraction", "seed", "split_seed", "mask_ratio", "fold",
             "n_folds")
