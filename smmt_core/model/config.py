"""`ModelConfig`: everything that shapes the network (not the data); stored with every checkpoint.

Declared once with its bounds (see `smmt_core.settings`); the training config holds one as its
`model` section, the CLI's flags and the wizard's ranges are read from these declarations. The
bounds are also a safety net for stored checkpoints: a tampered best.json asking for ten million
layers is refused here, before anything is built. Imports no torch, so the GUI may read it.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import field_validator, model_validator

from smmt_core.modalities import MODALITY_NAMES
from smmt_core.settings import Settings, setting
from smmt_core.variants import MASK_MODES, VARIANT_NAMES, variant

# K-Means assignment of tokens to clusters: plain nearest centroid, or equal-size clusters.
ASSIGNMENT_MODES = ("exact", "balanced")
# MRI readout: "pixels" adds linear readout tokens over the flattened, standardised slices (MRIEncoder).
MRI_READOUTS = ("none", "pixels")
# Linear path (`smmt_core.model.linear_path`): "logistic" adds a fitted, frozen logistic regression
# on the model's own inputs to its logits, so fusion starts from, and can keep, what it knows.
LINEAR_PATHS = ("none", "logistic")
# Calibration of the output probabilities: "temperature" divides the logits by one number fitted on
# the validation persons after training (`smmt_core.train.calibration`), stored with the weights.
CALIBRATIONS = ("none", "temperature")


class ModelConfig(Settings):
    variant: Literal[VARIANT_NAMES] = setting(
        "smmt", "model: smmt (the paper's method), an ablation, or the dense 3mt baseline")
    d_model: int = setting(128, "token width d", ge=8, le=2048)
    n_heads: int = setting(4, "attention heads (must divide d_model)", ge=1, le=64)
    n_layers: int = setting(1, "intra-modal transformer layers per modality", ge=0, le=24)
    n_fusion_tokens: int = setting(4, "learned fusion tokens of the cascade", ge=1, le=64)
    cascade_order: tuple[str, ...] = setting(
        MODALITY_NAMES, "order in which the fusion tokens visit the modalities (comma-separated)")
    attention_mode: Literal[ASSIGNMENT_MODES] = setting(
        "exact", "K-Means assignment: exact (nearest centroid) or balanced (equal-size clusters)")
    cluster_size: int | None = setting(None, "fixed tokens per cluster (default: k = ceil(log2 n) clusters)",
                                       ge=1, le=1_000_000)
    kmeans_iters: int = setting(3, "Lloyd iterations of K-Means per forward pass", ge=0, le=100)
    mask_ratio: float = setting(0.3, "modality masking ratio (training only)", ge=0.0, le=0.9)
    mask_mode: Literal[MASK_MODES] = setting(
        "dimension", "mask single dimensions (the paper) or whole modalities")
    dropout: float = setting(0.1, "dropout in the transformer layers and the head", ge=0.0, le=0.9)
    # MRI branch (see `MRIEncoder`). The defaults are the original token-only encoder, so that
    # checkpoints written before these fields existed still load; the demo preset turns them on
    # (without them the MRI-only model output a constant on the demo cohort: docs/experiments.md).
    mri_readout: Literal[MRI_READOUTS] = setting(
        "none", "MRI readout: 'pixels' adds linear readout tokens over the standardised slices (keeps position)")
    mri_readout_tokens: int = setting(1, "number of MRI pixel-readout tokens", ge=1, le=64)
    mri_readout_share: float = setting(
        0.0, "share of the cascade's attention that the MRI readout tokens get before training "
        "(0: none, every token alike)", ge=0.0, le=0.9)
    mri_input_norm: bool = setting(
        False, "standardise each MRI pixel with the training images' mean and SD (stored with the weights)",
        flag="--mri-input-norm")

    linear_path: Literal[LINEAR_PATHS] = setting(
        "none", "linear path to the logits: 'logistic' adds a logistic regression on the model's own inputs, "
        "fitted on the training persons before the network trains (the network learns what it misses)")
    calibration: Literal[CALIBRATIONS] = setting(
        "none", "probability calibration: 'temperature' scales the logits by a temperature fitted on the "
        "validation persons after training")

    SECTION: ClassVar[str] = "model"  # names the section in error messages

    @field_validator("cascade_order", mode="before")
    @classmethod
    def _split_order(cls, value):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        return tuple(str(v) for v in value)

    @field_validator("cascade_order")
    @classmethod
    def _known_distinct(cls, value: tuple[str, ...]):
        unknown = [m for m in value if m not in MODALITY_NAMES]
        if unknown or len(set(value)) != len(value) or not value:
            raise ValueError(f"must list distinct modalities from {', '.join(MODALITY_NAMES)}")
        return value

    @model_validator(mode="after")
    def _heads_divide_width(self):
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        return self

    @property
    def sparse(self) -> bool:
        return variant(self.variant).sparse

    @property
    def masking(self) -> bool:
        return variant(self.variant).masking
