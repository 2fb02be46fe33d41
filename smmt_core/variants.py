"""The one table of model variants and masking modes; everything else reads it.

A variant is SMMT with one or both of its two ideas switched off:

    name            sparse attention   modality masking   what it is
    smmt            yes                yes                the paper's method
    smmt-no-sparse  no (dense)         yes                ablation: what sparsity costs or saves
    smmt-no-mask    yes                no                 ablation: what masking adds
    3mt             no (dense)         no                 the dense 3MT baseline (Liu et al. 2023)

Why a table of its own: the model builds its attention and masking from it, the config validates
names against it, experiment grids give a mask-ratio axis only to the variants that mask, and the
wizard lists it. Adding a variant is one row here (and its user-facing text in the GUI's strings).
The names of the simple baselines (`BASELINES`) are listed here too. This module imports nothing
heavy, so every layer (including the GUI and the CLI's parser) may read it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Variant:
    name: str
    sparse: bool  # intra-modal attention is K-Means cluster-sparse (else dense SDPA)
    masking: bool  # modality-wise masking in training (else the mask ratio is unused)
    baseline: bool = False  # the reference that energy and accuracy are compared against


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("smmt", sparse=True, masking=True),
        Variant("smmt-no-sparse", sparse=False, masking=True),
        Variant("smmt-no-mask", sparse=True, masking=False),
        Variant("3mt", sparse=False, masking=False, baseline=True),
    )
}
VARIANT_NAMES: tuple[str, ...] = tuple(VARIANTS)
MASKING_VARIANTS: tuple[str, ...] = tuple(v.name for v in VARIANTS.values() if v.masking)
BASELINE_VARIANT: str = next(v.name for v in VARIANTS.values() if v.baseline)

# How masking drops information: per-dimension Bernoulli (the paper's formula) or whole modality.
MASK_MODES: tuple[str, ...] = ("dimension", "modality")

# The simple baselines scored on a run's own persons (not model variants: `smmt_core.baselines`
# fits them, with scikit-learn and torch). The table lives here, beside the variants, so that the
# CLI's flags and the wizard can list them without importing numpy, pandas or scikit-learn;
# `smmt_core.baselines.BASELINES` is this same dict.
BASELINES: dict[str, str] = {
    "lr-clinical": "logistic regression, clinical features",
    "lr-regional": "logistic regression, hippocampal + ventricle-shell tissue fractions",
    "lr-clinical-regional": "logistic regression, clinical features + the 2 regional measures",
    "lr-pixels": "L2 logistic regression on the model's own slices",
    "cnn": "plain CNN on the model's own slices",
}


def variant(name: str) -> Variant:
    """The table row for `name`; ConfigError naming the choices when there is none."""
    try:
        return VARIANTS[name]
    except KeyError:
        from smmt_core.errors import ConfigError

        raise ConfigError(f"unknown model variant {name!r}; choose one of {', '.join(VARIANT_NAMES)}") from None
