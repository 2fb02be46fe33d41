"""Which clinical columns exist, which are circular, and the named feature presets.

Kept apart from the encoder (features.py, which needs numpy and torch) because the config, the
CLI and the wizard read these names without loading any of that.

- `PAPER_FEATURES`: the paper's inputs (MMSE, global CDR, FAQ, age, sex, APOE4).
- `NON_CIRCULAR_FEATURES`: inputs that are not part of how ADNI *defines* the diagnostic groups.
  MMSE, CDR (and the scores built from the same interviews) are circular: a model given them
  scores near-perfectly without learning anything about the brain. See `CIRCULAR_FEATURES`.
- `DEFAULT_FEATURE_PRESET`: non-circular, everywhere (CLI, wizard, experiments, one-click demo),
  so that a default run measures what the model learns from the brain and the non-circular scores.
"""

from __future__ import annotations

from collections.abc import Iterable

PAPER_FEATURES: list[str] = ["MMSE", "CDGLOBAL", "FAQ", "AGE", "PTGENDER", "APOE4"]
NON_CIRCULAR_FEATURES: list[str] = ["AGE", "PTEDUCAT", "PTGENDER", "APOE4"]
# Scores that ADNI's diagnostic criteria (or the clinician's judgement they rest on) use directly.
CIRCULAR_FEATURES: set[str] = {"MMSE", "CDGLOBAL", "CDRSB", "FAQ", "ADAS11", "ADAS13"}
CATEGORICAL_FEATURES: set[str] = {"PTGENDER", "APOE4"}
NUMERIC_FEATURES: list[str] = ["MMSE", "CDGLOBAL", "CDRSB", "FAQ", "ADAS13", "AGE", "PTEDUCAT"]
KNOWN_FEATURES: list[str] = NUMERIC_FEATURES + ["PTGENDER", "APOE4"]

FEATURE_PRESETS: dict[str, list[str]] = {
    "paper": PAPER_FEATURES,
    "non-circular": NON_CIRCULAR_FEATURES,
    "all": KNOWN_FEATURES,
    "none": [],
}
DEFAULT_FEATURE_PRESET = "non-circular"


def resolve_features(features) -> list[str]:
    """Feature names from a config value, a flag or a wizard value.

    None -> the default preset (non-circular). A list (or comma-separated string) may mix column
    names with the preset words of `FEATURE_PRESETS` ("paper", "non-circular", "all", "none");
    "none" alone means MRI only.
    """
    if features is None:
        return list(FEATURE_PRESETS[DEFAULT_FEATURE_PRESET])
    if isinstance(features, str):
        features = features.replace(";", ",").split(",")
    out: list[str] = []
    for name in features:
        name = str(name).strip()
        if not name:
            continue
        key = name.lower().replace("_", "-")
        expanded = FEATURE_PRESETS.get("non-circular" if key == "noncircular" else key)
        for item in expanded if expanded is not None else [name]:
            if item not in out:
                out.append(item)
    return out


def circular_features_in(features: Iterable[str]) -> list[str]:
    """The requested features that are part of the diagnostic definition (for warnings)."""
    return [f for f in features if f in CIRCULAR_FEATURES]


def circularity_warning(features: Iterable[str]) -> str | None:
    """The one-line warning every surface shows (CLI, wizard, run.json, report), or None."""
    circular = circular_features_in(features)
    if not circular:
        return None
    return (f"circular features: {', '.join(circular)} are part of how the diagnosis is made (ADNI's groups are "
            "defined with MMSE and CDR), so a model given them scores high without learning from the brain; "
            "use the non-circular preset to measure what the model learns")
