"""Everything that defines a training run: one nested, validated `TrainConfig`.

    TrainConfig
      preset       the starting point the values came from ("demo", "paper", "volume")
      data         `smmt_core.data.data_config.DataConfig`: which data, labels and features, how
                   persons are split (the splits check their sizes against it)
      model        `smmt_core.model.config.ModelConfig` (stored with every checkpoint)
      preprocess   `smmt_core.data.preprocess.PreprocessConfig` (part of every cache key)
      optim        epochs, batch size, learning rate, weight decay, seed
      run          where the run folder goes, device, energy measurement

Each field is declared once, with its bounds and help, in its section; the CLI's flags
(`smmt_core.cli.config_flags`), the wizard's ranges and the experiment grid all read these
declarations, and show a setting's value in the default preset (`preset_value`), which is what a
run gets when nothing else is said. Field names are unique across sections, so callers that think in flat settings
(a flag, a wizard value, an experiment override) pass `name=value` to `TrainConfig.build` or
`updated`, and the config routes each to its section: nobody copies fields by hand.

Every import here is light (pydantic and declarations: no numpy, pandas or torch), so the `smmt`
parser, its `--help` and the GUI's forms read the settings without loading the science stack;
`tests/core/test_startup_imports.py` checks it.

`config.json` in a run folder stores `to_dict()` (nested). A flat dict, as written by SMMT Studio
0.1, is still read (`from_dict`), so older run folders stay loadable.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import field_validator

from smmt_core.data.data_config import DataConfig
from smmt_core.data.preprocess_config import PreprocessConfig
from smmt_core.data.subject import LABEL_SETS  # noqa: F401 (re-exported: the config's label_set names them)
from smmt_core.errors import ConfigError
from smmt_core.model.config import ModelConfig
from smmt_core.settings import Settings, check_setting, field_bounds, setting

DEVICES = ("auto", "cpu", "cuda")
DEFAULT_PRESET = "demo"  # what `smmt train`, `smmt experiment` and the wizard start from
LR_SCHEDULES = ("constant", "cosine")
EPOCH_CRITERIA = ("val_loss", "val_balanced_accuracy")


class OptimConfig(Settings):
    epochs: int = setting(12, "training epochs", ge=1, le=10_000)
    batch_size: int = setting(8, "scans per batch", ge=1, le=4096)
    lr: float = setting(1e-3, "Adam learning rate", gt=0.0)
    weight_decay: float = setting(0.0, "weight decay", ge=0.0, le=1.0)
    seed: int = setting(0, "seed of model init, batch order, masking (and of the split, unless --split-seed)", ge=0)
    lr_schedule: Literal[LR_SCHEDULES] = setting(
        "constant", "learning rate over the run: constant, or cosine (one epoch of linear warm-up, then a "
        "cosine decay to zero at the last epoch)")
    weight_average_decay: float = setting(
        0.0, "exponential moving average of the weights, its decay per step (0: off); the average is what "
        "is validated, kept and tested", ge=0.0, lt=1.0)
    select_epoch_by: Literal[EPOCH_CRITERIA] = setting(
        "val_balanced_accuracy", "which epoch's weights the run keeps: the lowest validation loss (smooth), or the "
        "highest validation balanced accuracy (ties: lower loss)")

    SECTION: ClassVar[str] = "optim"  # names the section in error messages


class RunSettings(Settings):
    out: str = setting("runs", "parent folder of the run folder")
    run_name: str = setting("", "run folder name (default: variant-fraction-seed-time)", flag="--name")
    device: str = setting("auto", "auto (CUDA when present, else CPU), cpu, cuda or cuda:N")
    energy_country: str = setting("USA", "country for the CO2 estimate, ISO 3166 alpha-3", flag="--country")
    measure_energy: bool = setting(True, "measure energy with codecarbon", flag="--no-energy")
    num_workers: int = setting(0, "data loader workers", cli=False, ge=0, le=64)
    ensemble: int = setting(1, "train N models (seeds seed … seed+N-1) on the same persons and predict with "
                               "their mean probability (a seed ensemble; 1: one model)", ge=1, le=20)

    SECTION: ClassVar[str] = "run"  # names the section in error messages

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        value = value.strip().lower()
        if value in DEVICES or (value.startswith("cuda:") and value[5:].isdigit()):
            return value
        raise ValueError("must be auto, cpu, cuda or cuda:N")


SECTIONS: dict[str, type[Settings]] = {
    "data": DataConfig, "model": ModelConfig, "preprocess": PreprocessConfig, "optim": OptimConfig, "run": RunSettings,
}

# flat field name -> section; checked at import: a name used in two sections would be ambiguous.
FIELD_SECTION: dict[str, str] = {}
for _section, _cls in SECTIONS.items():
    for _name in _cls.model_fields:
        if _name in FIELD_SECTION:
            raise RuntimeError(f"setting {_name!r} is declared in sections {FIELD_SECTION[_name]} and {_section}")
        FIELD_SECTION[_name] = _section
_LEGACY_NAMES = {"data": "dataset"}  # SMMT Studio 0.1 wrote a flat config with "data" = the dataset path


class TrainConfig(Settings):
    preset: str = DEFAULT_PRESET
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    preprocess: PreprocessConfig = PreprocessConfig()
    optim: OptimConfig = OptimConfig()
    run: RunSettings = RunSettings()

    @classmethod
    def build(cls, preset: str = DEFAULT_PRESET, **flat) -> "TrainConfig":
        """The preset's values, then `flat` overrides (field names of any section), validated once."""
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        return cls(preset=preset, **_nest({**PRESETS[preset], **flat}))

    def updated(self, **flat) -> "TrainConfig":
        """A validated copy with flat overrides (`cfg.updated(seed=2, fraction=0.5)`)."""
        nested = self.model_dump()
        preset = flat.pop("preset", self.preset)
        for section, values in _nest(flat).items():
            nested[section].update(values)
        return TrainConfig(**{**nested, "preset": preset})

    def flat(self) -> dict:
        """Every field by its flat name (JSON types), e.g. for a table of settings."""
        out = {"preset": self.preset}
        for section in SECTIONS:
            out.update(getattr(self, section).to_dict())
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        """Read a stored config: nested (this version) or flat (SMMT Studio 0.1)."""
        if not isinstance(data, dict):
            raise ConfigError(f"config must be a JSON object, got {type(data).__name__}")
        legacy = isinstance(data.get("data"), str) or not any(isinstance(data.get(k), dict) for k in SECTIONS)
        if not legacy:
            return cls(**data)
        flat = {_LEGACY_NAMES.get(k, k): v for k, v in data.items()}
        preset = flat.pop("preset", DEFAULT_PRESET)
        return cls(preset=preset, **_nest(flat))


def _nest(flat: dict) -> dict[str, dict]:
    unknown = sorted(k for k in flat if k not in FIELD_SECTION)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
    nested: dict[str, dict] = {}
    for name, value in flat.items():
        nested.setdefault(FIELD_SECTION[name], {})[name] = value
    return nested


def setting_bounds(name: str) -> tuple[float | None, float | None]:
    """(lowest, highest) allowed value of a flat setting, e.g. for a spin box or slider."""
    return field_bounds(SECTIONS[FIELD_SECTION[name]], name)


def setting_field(name: str):
    """The pydantic FieldInfo of a flat setting (its help text, default, bounds, flag)."""
    return SECTIONS[FIELD_SECTION[name]].model_fields[name]


def setting_accepts(name: str, value) -> bool:
    """Whether a flat setting's declaration (type and bounds) accepts `value`, e.g. a slider's end."""
    try:
        check_setting(SECTIONS[FIELD_SECTION[name]], name, value)
    except ConfigError:
        return False
    return True


def preset_value(name: str, preset: str = DEFAULT_PRESET):
    """What a flat setting is in `preset`: the preset's own value, else the declared default. What
    `--help` and the wizard show, since a run started without the setting gets this, not the
    declared default (the demo preset trains at lr 3e-4, the declaration says 1e-3)."""
    values = PRESETS[preset]
    return values[name] if name in values else setting_field(name).get_default(call_default_factory=True)


# The training recipe of the demo and volume presets (docs/experiments.md): a fitted linear path
# that the network adds to, the epoch kept by validation loss, warm-up + cosine decay, an EMA of
# the weights (what is validated and kept), temperature calibration on the validation persons.
RECIPE = dict(linear_path="logistic", calibration="temperature", lr_schedule="cosine", select_epoch_by="val_loss",
              weight_average_decay=0.98)

PRESETS: dict[str, dict] = {
    # Trains the demo cohort to a meaningful result in a few minutes on 2 CPU cores.
    # MRI branch: standardised pixels + a linear readout token (see MRIEncoder); with them, lr
    # 1e-3 trained unstably (validation collapses mid-run) and 3e-4 did not; L2 1e-4 (Adam's
    # weight_decay) raised non-circular + MRI balanced accuracy 0.81 -> 0.85 (docs/experiments.md).
    "demo": dict(epochs=12, batch_size=8, lr=3e-4, weight_decay=1e-4, d_model=128, n_heads=4, image_size=64,
                 n_slices=3, channels=1, resolution_mm=2.0, mri_readout="pixels", mri_input_norm=True, **RECIPE),
    # The paper's Table I: Adam, lr 1e-3, batch 8, 50 epochs, d = 512, 256x256 3-channel slices.
    "paper": dict(epochs=50, batch_size=8, lr=1e-3, d_model=512, n_heads=8, image_size=256,
                  n_slices=3, channels=3, resolution_mm=1.0),
    # The whole brain at 2 mm as 8 mm 3D patches: ~4000 tokens inside the brain (k = 12), two
    # intra-modal layers. Where cluster-sparse attention pays off (docs/volume.md).
    "volume": dict(epochs=12, batch_size=8, lr=3e-4, weight_decay=1e-4, d_model=128, n_heads=4, n_layers=2,
                   input="volume", patch_mm=8.0, resolution_mm=2.0, mri_input_norm=True, mri_readout="pixels",
                   mri_readout_share=0.5, **RECIPE),
}
