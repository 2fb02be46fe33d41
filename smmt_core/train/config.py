"""Everything that defines a training run, as one JSON-serialisable dataclass.

The wizard fills it, the CLI fills it from flags, `config.json` in the run folder stores it.
Presets (`demo`, `paper`) are starting points; every field can be overridden.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

from smmt_core.errors import ConfigError, reject_unknown_keys

VARIANTS = ("smmt", "smmt-no-sparse", "smmt-no-mask", "3mt")
LABEL_SETS = {"ad-cn": ["CN", "AD"], "cn-mci-ad": ["CN", "MCI", "AD"]}
MASK_MODES = ("dimension", "modality")  # per-dimension Bernoulli (paper) or whole-modality drop


@dataclass
class TrainConfig:
    data: str = ""  # dataset path (BIDS, ADNI tree, OASIS, folder of subjects) or "demo"
    adnimerge: str | None = None  # ADNI only: the ADNIMERGE table when it is not inside the download
    date_window_days: int = 180  # ADNI only: max days between a scan and the EXAMDATE matched to it
    out: str = "runs"  # parent folder; the run gets its own sub-folder
    run_name: str = ""  # empty: generated from variant, fraction, seed and time
    variant: str = "smmt"
    label_set: str = "ad-cn"
    features: list[str] | None = None  # None: the paper's set; names of clinical columns
    fraction: float = 1.0  # of the *training* subjects; test subjects never change
    mask_ratio: float = 0.3
    mask_mode: str = "dimension"
    epochs: int = 12
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0
    # Seed of the subject split. None: use `seed`. Experiment grids fix it so that the test set
    # stays the same in every cell while `seed` varies the model init and the training order.
    split_seed: int | None = None
    device: str = "auto"  # "auto", "cpu", "cuda"
    val_size: float = 0.15
    test_size: float = 0.2
    fold: int | None = None  # k-fold: which fold is the test fold
    n_folds: int | None = None
    # model
    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 1
    n_fusion_tokens: int = 4
    cascade_order: list[str] = field(default_factory=lambda: ["mri", "clinical", "categorical"])
    attention_mode: str = "exact"  # "exact" or "balanced" K-Means assignment
    cluster_size: int | None = None  # None: k = ceil(log2 n) clusters
    # MRI preprocessing
    image_size: int = 64
    n_slices: int = 3
    channels: int = 1
    plane: str = "axial"
    resolution_mm: float = 2.0
    preset: str = "demo"
    energy_country: str = "USA"  # ISO code for codecarbon's CO2 intensity (offline mode)
    measure_energy: bool = True
    num_workers: int = 0

    def validate(self) -> "TrainConfig":
        if self.variant not in VARIANTS:
            raise ConfigError(f"unknown variant {self.variant!r}; choose one of {', '.join(VARIANTS)}")
        if self.label_set not in LABEL_SETS:
            raise ConfigError(f"unknown label set {self.label_set!r}; choose one of {', '.join(LABEL_SETS)}")
        if not 0.0 < self.fraction <= 1.0:
            raise ConfigError(f"data fraction must be in (0, 1], got {self.fraction}")
        if not 0.0 <= self.mask_ratio < 1.0:
            raise ConfigError(f"mask ratio must be in [0, 1), got {self.mask_ratio}")
        if self.mask_mode not in MASK_MODES:
            raise ConfigError(f"unknown mask mode {self.mask_mode!r}; choose one of {', '.join(MASK_MODES)}")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ConfigError("epochs and batch size must be at least 1 and the learning rate positive")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        reject_unknown_keys(d, (f.name for f in fields(cls)), "config")
        return cls(**d)

    def with_(self, **changes) -> "TrainConfig":
        return replace(self, **changes)


PRESETS: dict[str, dict] = {
    # Trains the demo cohort to a meaningful result in a few minutes on 2 CPU cores.
    "demo": dict(epochs=12, batch_size=8, lr=1e-3, d_model=128, n_heads=4, image_size=64,
                 n_slices=3, channels=1, resolution_mm=2.0),
    # The paper's Table I: Adam, lr 1e-3, batch 8, 50 epochs, d = 512, 256x256 3-channel slices.
    "paper": dict(epochs=50, batch_size=8, lr=1e-3, d_model=512, n_heads=8, image_size=256,
                  n_slices=3, channels=3, resolution_mm=1.0),
}


def from_preset(name: str, **overrides) -> TrainConfig:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return TrainConfig(preset=name, **{**PRESETS[name], **overrides}).validate()
