"""`DataConfig`: which data, which labels and features, and how persons are split.

Declared once with its bounds and help (see `smmt_core.settings`); the training config holds one
as its `data` section. It sits in the data layer, beside `preprocess_config`, so that the splits
(`smmt_core.data.splits`) check their sizes against these same declarations. Imports nothing heavy.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import field_validator, model_validator

from smmt_core.data.feature_sets import resolve_features
from smmt_core.data.subject import LABEL_SETS
from smmt_core.settings import Settings, setting


class DataConfig(Settings):
    dataset: str = setting("", "dataset folder (BIDS, ADNI download, OASIS-1, folder of subject folders) or 'demo'",
                           flag="--data")
    adnimerge: str | None = setting(None, "ADNI: the ADNIMERGE table, when it is not inside the download folder")
    date_window_days: int = setting(180, "ADNI: max days between a scan and the EXAMDATE matched to it",
                                    flag="--date-window", ge=0, le=3650)
    label_set: Literal[tuple(LABEL_SETS)] = setting("ad-cn", "ad-cn (the paper) or cn-mci-ad")
    # Stored resolved: preset words become column names, None becomes the default preset.
    features: list[str] | None = setting(
        None, "clinical inputs: 'non-circular' (default: AGE, PTEDUCAT, PTGENDER, APOE4, none of the scores that "
              "define the diagnosis), 'paper' (MMSE, CDGLOBAL, FAQ, AGE, PTGENDER, APOE4: circular), 'all', "
              "'none' (MRI only) or comma-separated column names")
    fraction: float = setting(1.0, "share of the training (and validation) persons to use", gt=0.0, le=1.0)
    val_size: float = setting(0.15, "share of persons held out for validation", ge=0.0, lt=0.9)
    test_size: float = setting(0.2, "share of persons held out for the test", gt=0.0, lt=0.9)
    # None: the model seed. Experiment grids fix it so that the test persons stay the same in
    # every cell while the model seed varies the initialisation and the training order.
    split_seed: int | None = setting(None, "seed of the person-level split (default: --seed)", ge=0)
    n_folds: int | None = setting(None, "k-fold cross-validation by person: number of folds", flag="--folds",
                                  ge=2, le=100)
    fold: int | None = setting(None, "with --folds: which fold (0-based) is the test fold", ge=0)

    SECTION: ClassVar[str] = "data"  # names the section in error messages
    MAX_HELD_OUT: ClassVar[float] = 0.95  # val_size + test_size below this: some persons are left to train

    @field_validator("features", mode="before")
    @classmethod
    def _features_list(cls, value):
        if value is not None and not isinstance(value, (str, list, tuple)):
            raise ValueError("must be a list of column names or a preset name")
        return resolve_features(value)

    @model_validator(mode="after")
    def _folds(self):
        if self.fold is not None and self.n_folds is None:
            raise ValueError("fold needs n_folds (--folds)")
        if self.fold is not None and self.n_folds is not None and self.fold >= self.n_folds:
            raise ValueError(f"fold {self.fold} does not exist with {self.n_folds} folds (0 to {self.n_folds - 1})")
        problem = self.held_out_problem(self.val_size, self.test_size)
        if problem:
            raise ValueError(problem)
        return self

    @classmethod
    def held_out_problem(cls, val_size: float, test_size: float) -> str | None:
        """Why these held-out shares leave too few persons to train on, or None."""
        if val_size + test_size >= cls.MAX_HELD_OUT:
            return f"val_size + test_size ({val_size + test_size:g}) leaves no training persons"
        return None

    @property
    def classes(self) -> list[str]:
        return list(LABEL_SETS[self.label_set])
