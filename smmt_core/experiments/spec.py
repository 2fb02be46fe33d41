"""What an experiment grid runs: its spec, its cells, and a cell waiting for a backend.

Plain values below both the grid that plans and books the cells (`grid`) and the code that runs
one cell wherever a backend puts it (`cell`, `backends`): all of them read these, and none of
these needs the trainer or pandas.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Sequence

from smmt_core.errors import ConfigError, DataError
from smmt_core.experiments.grid_keys import GRID_KEYS
from smmt_core.train.config import PRESETS, TrainConfig
from smmt_core.variants import BASELINES, MASKING_VARIANTS, VARIANT_NAMES


def _fmt(x: float) -> str:
    return f"{float(x):g}"


@dataclass(frozen=True)
class ExperimentCell:
    """One run (or one baseline fit) of the grid. `variant` is a model variant or a baseline name."""

    variant: str
    fraction: float
    seed: int
    mask_ratio: float
    fold: int | None = None
    split_seed: int = 0

    @property
    def is_baseline(self) -> bool:
        return self.variant not in VARIANT_NAMES

    @property
    def name(self) -> str:
        """Folder name, e.g. ``smmt_frac0.2_seed1_mask0.3`` (+ ``_fold2``, + ``_split1`` when not 0)."""
        if self.is_baseline:
            parts = [self.variant, f"frac{_fmt(self.fraction)}"]
        else:
            parts = [self.variant, f"frac{_fmt(self.fraction)}", f"seed{self.seed}", f"mask{_fmt(self.mask_ratio)}"]
        if self.fold is not None:
            parts.append(f"fold{self.fold}")
        if self.split_seed:
            parts.append(f"split{self.split_seed}")
        return "_".join(parts)


@dataclass
class ExperimentSpec:
    """What to run: the grid axes plus the settings every cell shares.

    data: dataset path or "demo". variants/fractions/seeds/mask_ratios: the grid axes
    (mask_ratios None: the preset's ratio). epochs: None keeps the preset's. n_folds: k-fold
    cross-validation by person instead of one test set per split seed. split_seeds: the
    person-level splits the whole grid is repeated over. baselines: names from
    `smmt_core.baselines.BASELINES`, scored on the same persons. test_missing: shares of test persons
    lacking a modality; each finished run is then compared with the baselines on the same incomplete
    persons (`smmt_core.experiments.missing.grid_missing`). overrides: any other TrainConfig
    settings (e.g. features, d_model, device). runner: the training function,
    `train(config, on_event, stop)` by default; tests inject a fake one.
    """

    data: str
    variants: Sequence[str] = ("smmt", "3mt")
    fractions: Sequence[float] = (1.0,)
    seeds: Sequence[int] = (0,)
    mask_ratios: Sequence[float] | None = None
    epochs: int | None = None
    preset: str = "demo"
    n_folds: int | None = None
    split_seeds: Sequence[int] = (0,)
    baselines: Sequence[str] = ()
    test_missing: Sequence[float] | None = None
    overrides: dict = field(default_factory=dict)
    runner: Callable[..., Any] | None = field(default=None, repr=False, compare=False)

    def validate(self) -> "ExperimentSpec":
        """Check the spec and every cell's config before anything is trained (ConfigError)."""
        if not str(self.data).strip():
            raise ConfigError("no dataset given: pass a dataset path or 'demo'")
        if self.data_location() != "demo" and not Path(self.data_location()).exists():
            raise DataError("dataset not found (give a dataset folder or 'demo')", self.data_location())
        if self.preset not in PRESETS:
            raise ConfigError(f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        for axis in ("variants", "fractions", "seeds", "split_seeds"):
            values = list(getattr(self, axis))
            if not values:
                raise ConfigError(f"the experiment needs at least one value in {axis}")
            if len(set(values)) != len(values):
                raise ConfigError(f"{axis} lists a value twice: {values}")
        unknown = [v for v in self.variants if v not in VARIANT_NAMES]
        if unknown:
            raise ConfigError(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANT_NAMES)}")
        unknown = [b for b in self.baselines if b not in BASELINES]
        if unknown:
            raise ConfigError(f"unknown baseline(s) {', '.join(unknown)}; choose from {', '.join(BASELINES)}")
        if len(set(self.baselines)) != len(list(self.baselines)):
            raise ConfigError(f"baselines lists a name twice: {list(self.baselines)}")
        if self.mask_ratios is not None:
            if not list(self.mask_ratios):
                raise ConfigError("mask_ratios is empty; leave it out to use the preset's ratio")
            if len(set(self.mask_ratios)) != len(list(self.mask_ratios)):
                raise ConfigError(f"mask_ratios lists a value twice: {list(self.mask_ratios)}")
        if self.test_missing is not None:
            from smmt_core.experiments.missing import parse_shares

            parse_shares(self.test_missing)
        if self.n_folds is not None and self.n_folds < 2:
            raise ConfigError(f"k-fold needs at least 2 folds, got {self.n_folds}")
        grid = sorted(set(self.overrides) & set(GRID_KEYS))
        if grid:
            raise ConfigError(f"set {', '.join(grid)} through the experiment itself, not as overrides")
        for cell in self.cells():
            if not cell.is_baseline:
                self.config_for(cell, "runs")  # validates each config (fraction, mask ratio, ...)
        return self

    def data_location(self) -> str:
        """"demo", or the dataset path made absolute (runs stay valid whatever the working folder)."""
        data = str(self.data).strip()
        return "demo" if data.lower() == "demo" else str(Path(data).expanduser().resolve())

    def base_config(self) -> TrainConfig:
        """The settings every cell shares (preset + epochs + overrides)."""
        extra = dict(self.overrides)
        if self.epochs is not None:
            extra["epochs"] = int(self.epochs)
        return TrainConfig.build(self.preset, dataset=self.data_location(), **extra)

    def cells(self) -> list[ExperimentCell]:
        """Every run of the grid, in the order they are trained, then the baselines of each split.

        Split seeds, then model seeds (and folds) are the outer loops: a grid stopped half-way
        holds complete replicates rather than a few cells with many seeds.
        """
        base_ratio = self.base_config().model.mask_ratio
        ratios = [float(r) for r in self.mask_ratios] if self.mask_ratios is not None else [base_ratio]
        folds: list[int | None] = list(range(self.n_folds)) if self.n_folds else [None]
        out = []
        for split_seed in self.split_seeds:
            for seed in self.seeds:
                for fold in folds:
                    for fraction in self.fractions:
                        for variant in self.variants:
                            for ratio in (ratios if variant in MASKING_VARIANTS else [0.0]):
                                out.append(ExperimentCell(variant, float(fraction), int(seed), float(ratio), fold,
                                                          int(split_seed)))
            for fold in folds:
                for fraction in self.fractions:
                    for name in self.baselines:
                        out.append(ExperimentCell(name, float(fraction), 0, 0.0, fold, int(split_seed)))
        return out

    def config_for(self, cell: ExperimentCell, runs_dir: str | Path) -> TrainConfig:
        """The TrainConfig of one cell, its run going to runs_dir/<cell name>.

        A baseline cell has no model: its config is the shared settings on the cell's split."""
        split = dict(fraction=cell.fraction, seed=cell.seed, split_seed=cell.split_seed, fold=cell.fold,
                     n_folds=self.n_folds)
        if cell.is_baseline:
            return self.base_config().updated(**split)
        return self.base_config().updated(out=str(runs_dir), run_name=cell.name, variant=cell.variant,
                                          mask_ratio=cell.mask_ratio, **split)

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "runner"}
        for key in ("variants", "fractions", "seeds", "mask_ratios", "split_seeds", "baselines", "test_missing"):
            if d[key] is not None:
                d[key] = list(d[key])
        d["overrides"] = dict(self.overrides)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ExperimentSpec":
        d = dict(d)
        if "split_seed" in d:  # SMMT Studio 0.1: one split seed
            d["split_seeds"] = [d.pop("split_seed")]
        known = {f.name for f in fields(cls)} - {"runner"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown experiment keys: {', '.join(unknown)}")
        return cls(**d)


@dataclass(frozen=True)
class PendingCell:
    """A cell the backend has to run: its position in the grid and the folder it writes."""

    index: int
    cell: ExperimentCell
    folder: Path
