"""SMMT and its ablations / the 3MT baseline, built from one `ModelConfig`.

Data flow for a batch (`smmt_core.batch.ModelInputs`):
  MRI slices, numeric scores, categorical codes
    -> per-modality encoders (tokens of width d)
    -> n_layers intra-modal transformer layers per modality (cluster-sparse or dense attention)
    -> cascade: learned fusion tokens cross-attend to each available modality in turn, the
       update masked in training (modality-wise masking)
    -> mean of the fusion tokens -> MLP head -> logits (2 or 3 classes)
    (+ with `linear_path="logistic"`: a fitted logistic regression on the same inputs, added to the
       logits; the head starts at zero, so the network learns only what it misses. linear_path.py)

Variants (`ModelConfig.variant`): which of sparse attention and masking are on is read from the
one table in `smmt_core.variants`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from smmt_core.batch import MODALITY_INDEX, FeatureSchema, ModelInputs
from smmt_core.data.subject import ALL_MODALITIES, Modality
from smmt_core.errors import ConfigError
from smmt_core.model.config import ModelConfig
from smmt_core.model.encoders import CategoricalEncoder, MRIEncoder, NumericEncoder
from smmt_core.model.fusion import CascadeStep, IntraModalLayer
from smmt_core.model.linear_path import LinearPath
from smmt_core.model.masking import ModalityMasking
from smmt_core.model.volume_encoder import VolumeEncoder


@dataclass
class ModelOutput:
    """What the GUI draws besides the prediction.

    cluster_ids: per intra-modal MRI layer, (B, S, h, w) K-Means cluster id of each MRI patch,
                 or (B, gx, gy, gz) on the 3D patch grid of a volume model (-1: no token there);
                 empty for the dense variants or a model without MRI.
    contributions: (B, 3) in MODALITY_INDEX order: predicted-class logit minus that logit with
                 the modality left out; NaN where the modality is absent.
    """

    logits: torch.Tensor
    cluster_ids: list[torch.Tensor]
    contributions: torch.Tensor | None


class SMMT(nn.Module):
    """The multi-modal classifier; see the module docstring. Build it with `build_model`."""

    def __init__(self, config: ModelConfig, schema: FeatureSchema):
        super().__init__()
        self.config, self.schema = config, schema
        d = config.d_model
        attention = dict(sparse=config.sparse, cluster_size=config.cluster_size,
                         kmeans_iters=config.kmeans_iters, assignment=config.attention_mode)
        self.encoders = nn.ModuleDict()
        if schema.mri_shape is not None and schema.is_volume:  # the whole brain as 3D patch tokens
            self.encoders[Modality.MRI.value] = VolumeEncoder.from_spec(
                schema.mri_volume, d, input_norm=config.mri_input_norm, readout=config.mri_readout,
                n_readout_tokens=config.mri_readout_tokens, readout_dropout=config.dropout,
                readout_share=config.mri_readout_share)
        elif schema.mri_shape is not None:
            self.encoders[Modality.MRI.value] = MRIEncoder(
                tuple(schema.mri_shape), d, readout=config.mri_readout, n_readout_tokens=config.mri_readout_tokens,
                readout_dropout=config.dropout, input_norm=config.mri_input_norm)
        if schema.numeric:
            self.encoders[Modality.CLINICAL.value] = NumericEncoder(len(schema.numeric), d)
        if schema.categorical:
            sizes = [len(v) for v in schema.categorical.values()]
            self.encoders[Modality.CATEGORICAL.value] = CategoricalEncoder(sizes, d)
        if not self.encoders:
            raise ConfigError("the feature schema has no modality (no MRI, no numeric, no categorical feature)")
        self.intra = nn.ModuleDict({
            name: nn.ModuleList(IntraModalLayer(d, config.n_heads, config.dropout, **attention)
                                for _ in range(config.n_layers))
            for name in self.encoders
        })
        self.order = [m for m in config.cascade_order if m in self.encoders]
        # Every step owns a masking module: training masks only in the masking variants (ratio 0
        # otherwise), while a forced ratio (robustness sweeps) applies to every variant alike.
        mask_ratio = config.mask_ratio if config.masking else 0.0
        self.cascade = nn.ModuleDict({
            name: CascadeStep(d, config.n_heads, config.dropout, ModalityMasking(mask_ratio, config.mask_mode))
            for name in self.order
        })
        self.fusion_tokens = nn.Parameter(torch.zeros(1, config.n_fusion_tokens, d))
        nn.init.trunc_normal_(self.fusion_tokens, std=0.02)
        self.head = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d), nn.GELU(), nn.Dropout(config.dropout),
                                  nn.Linear(d, len(schema.classes)))
        self.linear_path: LinearPath | None = None
        if config.linear_path == "logistic":
            mri = self.encoders[Modality.MRI.value] if Modality.MRI.value in self.encoders else None
            self.linear_path = LinearPath(mri.n_linear_features if mri is not None else 0, len(schema.numeric),
                                          [len(v) for v in schema.categorical.values()], len(schema.classes))
            # The network starts as exactly the linear model; training adds what that misses.
            nn.init.zeros_(self.head[-1].weight)
            nn.init.zeros_(self.head[-1].bias)
        if config.calibration == "temperature":  # 1 until fitted on the validation persons after training
            self.register_buffer("logit_temperature", torch.ones(()))

    @property
    def classes(self) -> list[str]:
        return list(self.schema.classes)

    def available(self, inputs: ModelInputs) -> torch.Tensor:
        """(B, 3) bool: modality present for the sample, known to the model, and not all-missing."""
        present = inputs.present.bool().clone()
        for modality in ALL_MODALITIES:
            column = MODALITY_INDEX[modality]
            if modality.value not in self.encoders:
                present[:, column] = False
        if Modality.CLINICAL.value in self.encoders:
            present[:, MODALITY_INDEX[Modality.CLINICAL]] &= ~inputs.numeric_missing.bool().all(1)
        if Modality.CATEGORICAL.value in self.encoders:
            present[:, MODALITY_INDEX[Modality.CATEGORICAL]] &= (inputs.categorical != 0).any(1)
        return present

    def _encode(self, name: str, inputs: ModelInputs) -> torch.Tensor:
        if name == Modality.MRI.value:
            return self.encoders[name](inputs.mri)
        if name == Modality.CLINICAL.value:
            return self.encoders[name](inputs.numeric, inputs.numeric_missing.bool())
        return self.encoders[name](inputs.categorical)

    def _encode_all(self, inputs: ModelInputs, present: torch.Tensor, collect_ids: bool = False
                    ) -> tuple[dict[str, torch.Tensor], list[torch.Tensor]]:
        """Token sequences per modality after the intra-modal layers (skipping modalities nobody has).

        They do not depend on which *other* modalities are present, so contributions reuse them.
        """
        batch = present.shape[0]
        tokens_by_name: dict[str, torch.Tensor] = {}
        cluster_ids: list[torch.Tensor] = []
        for name in self.order:
            if not bool(present[:, MODALITY_INDEX[Modality(name)]].any()):
                continue  # nobody in the batch has it: skip the encoder entirely
            tokens = self._encode(name, inputs)
            for layer in self.intra[name]:
                tokens, ids = layer(tokens)
                if collect_ids and ids is not None and name == Modality.MRI.value:
                    encoder = self.encoders[name]
                    if isinstance(encoder, VolumeEncoder):
                        cluster_ids.append(encoder.ids_to_grid(ids))
                    else:  # patch tokens come first; readout tokens (no place on the grid) are left out
                        patches = ids[:, :encoder.n_patch_tokens]
                        cluster_ids.append(patches.reshape(batch, encoder.mri_shape[0], *encoder.grid))
            tokens_by_name[name] = tokens
        return tokens_by_name, cluster_ids

    def linear_features(self, inputs: ModelInputs) -> torch.Tensor | None:
        """(B, F) raw features of the linear path (None without one); see `LinearPath`."""
        if self.linear_path is None:
            return None
        mri = self.encoders[Modality.MRI.value] if Modality.MRI.value in self.encoders else None
        mri_features = mri.linear_features(inputs.mri) if mri is not None else None
        return self.linear_path.raw_features(inputs, mri_features)

    def _linear_logits(self, linear_raw: torch.Tensor | None, present: torch.Tensor) -> torch.Tensor | float:
        if self.linear_path is None or linear_raw is None:
            return 0.0
        return self.linear_path(linear_raw, present)

    def _fuse(self, tokens_by_name: dict[str, torch.Tensor], present: torch.Tensor,
              force_mask_ratio: float | None, generator: torch.Generator | None = None,
              linear_raw: torch.Tensor | None = None) -> torch.Tensor:
        """Cascade the fusion tokens through the modalities a sample has, then the head (+ the linear path)."""
        fusion = self.fusion_tokens.expand(present.shape[0], -1, -1)
        for name in self.order:
            if name in tokens_by_name:
                column = MODALITY_INDEX[Modality(name)]
                fusion = self.cascade[name](fusion, tokens_by_name[name], present[:, column], force_mask_ratio,
                                            generator, getattr(self.encoders[name], "cascade_key_bias", None))
        logits = self.head(fusion.mean(1)) + self._linear_logits(linear_raw, present)
        temperature = getattr(self, "logit_temperature", None)
        return logits / temperature if temperature is not None else logits

    def forward(self, inputs: ModelInputs, return_details: bool = False,
                force_mask_ratio: float | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor | ModelOutput:
        """Logits (B, n_classes); with return_details, a `ModelOutput` with cluster ids and contributions.

        force_mask_ratio: mask the cascade updates with this ratio even in eval mode (robustness).
        generator: draw the masks from this generator instead of torch's global RNG (a robustness
        sweep on one thread must not disturb a training on another). Dropout, active only in
        training mode, always uses the global RNG.
        """
        present = self.available(inputs)
        tokens_by_name, cluster_ids = self._encode_all(inputs, present, collect_ids=return_details)
        linear_raw = self.linear_features(inputs)
        logits = self._fuse(tokens_by_name, present, force_mask_ratio, generator, linear_raw)
        if not return_details:
            return logits
        with torch.no_grad():
            contributions = self._contributions(tokens_by_name, present, linear_raw)
        return ModelOutput(logits, cluster_ids, contributions)

    @torch.no_grad()
    def contributions(self, inputs: ModelInputs, logits: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 3): predicted-class logit minus the same logit with one modality left out.

        Positive: the modality pushed the model towards its prediction. NaN where absent.
        Masking is off (ratio 0) so the differences are deterministic in eval mode.
        `logits` is accepted for backward compatibility; the base logits are always recomputed
        without masking so that the differences are not mixed with random masks.
        """
        present = self.available(inputs)
        tokens_by_name, _ = self._encode_all(inputs, present)
        return self._contributions(tokens_by_name, present, self.linear_features(inputs))

    def _contributions(self, tokens_by_name: dict[str, torch.Tensor], present: torch.Tensor,
                       linear_raw: torch.Tensor | None = None) -> torch.Tensor:
        """Only the cascade and head are re-run per left-out modality: the encoders ran once."""
        logits = self._fuse(tokens_by_name, present, 0.0, linear_raw=linear_raw)
        predicted = logits.argmax(1, keepdim=True)
        base = logits.gather(1, predicted).squeeze(1)
        out = torch.full((present.shape[0], len(ALL_MODALITIES)), math.nan, device=logits.device, dtype=logits.dtype)
        for modality in ALL_MODALITIES:
            column = MODALITY_INDEX[modality]
            if not bool(present[:, column].any()):
                continue
            without_present = present.clone()
            without_present[:, column] = False
            without = self._fuse(tokens_by_name, without_present, 0.0, linear_raw=linear_raw).gather(1, predicted).squeeze(1)
            out[:, column] = torch.where(present[:, column], base - without, out[:, column])
        return out

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def build_model(config: ModelConfig, schema: FeatureSchema) -> SMMT:
    """The network for `config.variant`, sized for `schema` (its MRI shape, features and classes)."""
    if len(schema.classes) < 2:
        raise ConfigError(f"need at least 2 classes, got {schema.classes}")
    return SMMT(config, schema)
