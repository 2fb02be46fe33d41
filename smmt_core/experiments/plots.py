"""PNG plots of experiment grids and robustness sweeps, drawn with matplotlib.

Why figures are built on `matplotlib.figure.Figure` directly instead of pyplot: no global figure
state and no GUI backend, so these functions are safe in worker threads, in the CLI on a server
and next to a running Qt application. Each file is written to a temporary name and renamed, so a
crash never leaves half a PNG.

The plots mirror the paper's tables: accuracy by fraction of the training data per variant
(Table III/VI), energy per variant (Table V) and the masking-ratio sweep; plus the robustness view
(accuracy per modality subset and per test-time mask ratio) of one trained run.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from smmt_core.fileio import atomic_write
from smmt_core.variants import BASELINE_VARIANT, MASKING_VARIANTS

VARIANT_STYLE = {
    "smmt": dict(color="#1b6ca8", marker="o"),
    "smmt-no-sparse": dict(color="#e08a1e", marker="s"),
    "smmt-no-mask": dict(color="#3a9b4a", marker="^"),
    "3mt": dict(color="#b03a3a", marker="D"),
}
_FALLBACK_COLORS = ["#6a4c93", "#8c6d31", "#17becf", "#7f7f7f"]


def _style(variant: str, index: int) -> dict:
    return VARIANT_STYLE.get(variant, dict(color=_FALLBACK_COLORS[index % len(_FALLBACK_COLORS)], marker="v"))


def _save(fig: Figure, path: str | Path) -> Path:
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight"),
                        suffix=".png")


def _sd(values) -> np.ndarray:
    """SD values for error bars: NaN (a single run) becomes 0, i.e. no bar."""
    return np.nan_to_num(np.asarray(values, dtype=float), nan=0.0)


def _majority_line(ax, summary: pd.DataFrame, metric: str = "accuracy", n_classes: int = 2) -> None:
    """The score of always guessing one class: the majority rate for accuracy, 1/k for balanced accuracy."""
    if metric == "balanced_accuracy":
        ax.axhline(100 / n_classes, color="grey", linestyle=":", linewidth=1,
                   label=f"chance ({100 / n_classes:.0f}%: always one class)")
        return
    if metric != "accuracy":
        return
    rate = pd.to_numeric(summary.get("majority_rate", pd.Series(dtype=float)), errors="coerce").dropna()
    if len(rate):
        ax.axhline(rate.mean() * 100, color="grey", linestyle=":", linewidth=1,
                   label=f"majority class ({rate.mean() * 100:.0f}%)")


def plot_accuracy_vs_fraction(summary: pd.DataFrame, path: str | Path, *, metric: str = "accuracy",
                              mask_ratio: float | None = None, title: str | None = None, n_classes: int = 2) -> Path:
    """Mean test accuracy (or another summary metric) vs training-data fraction, one line per variant.

    Error bars are the SD over seeds/folds. Where a masking variant was trained with several mask
    ratios, the line shows `mask_ratio` (or the first ratio when that one is absent).
    """
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.add_subplot()
    label = metric.replace("_", " ")
    n_variants = summary["variant"].nunique()
    span = float(summary["fraction"].max() - summary["fraction"].min()) * 100 or 100.0
    for i, (variant, group) in enumerate(summary.groupby("variant", sort=False)):
        dodge = (i - (n_variants - 1) / 2) * span * 0.012  # side by side, so error bars do not hide each other
        ratios = sorted(group["mask_ratio"].unique())
        if len(ratios) > 1:
            chosen = mask_ratio if mask_ratio is not None and any(math.isclose(r, mask_ratio) for r in ratios) else ratios[0]
            group = group[np.isclose(group["mask_ratio"], chosen)]
            name = f"{variant} (mask {chosen:g})"
        else:
            name = variant
        group = group.sort_values("fraction")
        ax.errorbar(group["fraction"] * 100 + dodge, group[f"{metric}_mean"] * 100,
                    yerr=_sd(group[f"{metric}_sd"]) * 100, capsize=3, linewidth=1.6, markersize=5, label=name,
                    **_style(variant, i))
    _majority_line(ax, summary, metric, n_classes)
    ax.set_xlabel("training data used (%)")
    ax.set_ylabel(f"test {label} (%)")
    fractions = sorted(summary["fraction"].unique() * 100)
    ax.set_xticks(fractions)
    ax.set_title(title or f"Test {label} by training-data fraction (mean ± SD)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_energy_per_variant(summary: pd.DataFrame, path: str | Path, *, fraction: float | None = None,
                            title: str | None = None) -> Path:
    """Mean energy per run (Wh) per variant at one fraction (default: the largest), SD error bars.

    Rows of one variant with different mask ratios are pooled (mean of the means, weighted by runs).
    Each bar is labelled with its value and, when 3mt is present, the difference against 3mt.
    """
    fraction = float(summary["fraction"].max()) if fraction is None else float(fraction)
    at = summary[np.isclose(summary["fraction"], fraction)]
    names, means, sds = [], [], []
    for variant, group in at.groupby("variant", sort=False):
        weights = group["n_runs"].to_numpy(dtype=float)
        values = group["energy_kwh_mean"].to_numpy(dtype=float) * 1000
        ok = ~np.isnan(values)
        if not ok.any():
            continue
        names.append(variant)
        means.append(float(np.average(values[ok], weights=weights[ok])))
        sds.append(float(group["energy_kwh_sd"].to_numpy(dtype=float)[0] * 1000) if len(group) == 1
                   else float(np.std(values[ok])))
    fig = Figure(figsize=(max(5.0, 1.6 * len(names) + 1.5), 4.2))
    ax = fig.add_subplot()
    colors = [_style(v, i)["color"] for i, v in enumerate(names)]
    bars = ax.bar(names, means, yerr=_sd(sds), capsize=4, color=colors)
    ref = means[names.index(BASELINE_VARIANT)] if BASELINE_VARIANT in names else None
    for bar, value, variant in zip(bars, means, names):
        text = f"{value:.2f}"
        if ref and variant != BASELINE_VARIANT:
            text += f"\n({(value / ref - 1) * 100:+.0f}% vs {BASELINE_VARIANT})"
        ax.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom",
                    fontsize=8, xytext=(0, 3), textcoords="offset points")
    ax.tick_params(axis="x", labelsize=9)
    ax.set_ylabel("energy per run (Wh, codecarbon)")
    ax.set_title(title or f"Energy per training run, {fraction * 100:.0f}% of the training data")
    ax.margins(y=0.25)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def plot_mask_ratio_sweep(summary: pd.DataFrame, path: str | Path, *, metric: str = "accuracy",
                          title: str | None = None, n_classes: int = 2) -> Path:
    """Test accuracy vs training mask ratio, one line per masking variant, one panel per fraction.

    Variants trained without masking appear as dashed horizontal reference lines.
    """
    fractions = sorted(summary["fraction"].unique())
    fig = Figure(figsize=(4.2 * len(fractions) + 2.2, 4.2))
    axes = fig.subplots(1, len(fractions), sharey=True, squeeze=False)[0]
    label = metric.replace("_", " ")
    variants = list(dict.fromkeys(summary["variant"]))
    for ax, fraction in zip(axes, fractions):
        at = summary[np.isclose(summary["fraction"], fraction)]
        for i, variant in enumerate(variants):
            group = at[at["variant"] == variant].sort_values("mask_ratio")
            if group.empty:
                continue
            style = _style(variant, i)
            if variant in MASKING_VARIANTS:
                ax.errorbar(group["mask_ratio"], group[f"{metric}_mean"] * 100, yerr=_sd(group[f"{metric}_sd"]) * 100,
                            capsize=3, linewidth=1.6, markersize=5, label=variant, **style)
            else:
                ax.axhline(float(group[f"{metric}_mean"].mean()) * 100, color=style["color"], linestyle="--",
                           linewidth=1.2, label=f"{variant} (no masking)")
        _majority_line(ax, at, metric, n_classes)
        ax.set_xlabel("mask ratio r during training")
        ax.set_title(f"{fraction * 100:.0f}% of the training data", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"test {label} (%)")
    handles, labels = axes[-1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    fig.suptitle(title or "Mask-ratio sweep (mean ± SD)")
    fig.tight_layout()
    return _save(fig, path)


def plot_robustness(frame: pd.DataFrame, path: str | Path, *, title: str | None = None) -> Path:
    """Two panels for one run: accuracy per modality subset (mask ratio 0) and vs test-time mask ratio.

    `frame` is what `smmt_core.train.robustness.evaluate_robustness` returns.
    """
    from smmt_core.modalities import ALL_NAME

    fig = Figure(figsize=(10.0, 4.0))
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    subsets = frame[frame["mask_ratio"] == 0].copy()
    subsets = subsets.assign(n_mod=subsets["modalities"].str.count(r"\+") + 1).sort_values(
        ["n_mod", "modalities"], ascending=[False, True])
    y = np.arange(len(subsets))
    height = 0.38
    left.barh(y - height / 2, subsets["accuracy"] * 100, height, label="accuracy", color="#1b6ca8")
    left.barh(y + height / 2, subsets["balanced_accuracy"] * 100, height, label="balanced accuracy", color="#e08a1e")
    left.set_yticks(y, subsets["modalities"].str.replace("+", " + ", regex=False))
    left.invert_yaxis()
    left.set_xlim(0, 100)
    left.set_xlabel("test score (%)")
    left.set_title("Modalities given to the model")
    left.grid(axis="x", alpha=0.3)
    left.legend(fontsize=8, loc="lower right")
    sweep = frame[frame["modalities"] == ALL_NAME].sort_values("mask_ratio")
    for column, color in (("accuracy", "#1b6ca8"), ("balanced_accuracy", "#e08a1e")):
        sd = sweep[f"{column}_sd"] if f"{column}_sd" in sweep else np.zeros(len(sweep))
        right.errorbar(sweep["mask_ratio"], sweep[column] * 100, yerr=_sd(sd) * 100, marker="o", capsize=3,
                       color=color, label=column.replace("_", " "))
    majority = frame.attrs.get("majority_rate")
    if majority is not None and not math.isnan(majority):
        right.axhline(majority * 100, color="grey", linestyle=":", linewidth=1, label=f"majority class ({majority * 100:.0f}%)")
    right.set_ylim(0, 100)
    right.set_xlabel("mask ratio at test time (all modalities)")
    right.set_ylabel("test score (%)")
    right.set_title("Masking at test time (mean ± SD of repeats)")
    right.grid(alpha=0.3)
    right.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_missing(frame: pd.DataFrame, path: str | Path, *, title: str | None = None,
                 metric: str = "balanced_accuracy") -> Path:
    """One panel per modality left out: each method's score against the share of persons lacking it,
    with its 95 % CI as a band. `frame` is what `smmt_core.experiments.missing.evaluate_missing_shares`
    returns."""
    modalities = list(dict.fromkeys(frame["modality"]))
    fig = Figure(figsize=(5.0 * max(1, len(modalities)), 4.0))
    methods = list(dict.fromkeys(frame["method"]))
    for k, modality in enumerate(modalities):
        ax = fig.add_subplot(1, len(modalities), k + 1)
        for i, method in enumerate(methods):
            rows = frame[(frame["method"] == method) & (frame["modality"] == modality)].sort_values("share")
            style = _style(method, i)
            model = rows["kind"].eq("model").any()
            ax.plot(rows["share"] * 100, rows[metric] * 100, label=method, linewidth=2.2 if model else 1.3,
                    linestyle="-" if model else "--", **style)
            ax.fill_between(rows["share"] * 100, rows[f"{metric}_lo"] * 100, rows[f"{metric}_hi"] * 100,
                            color=style["color"], alpha=0.12, linewidth=0)
        n_classes = len(frame.attrs.get("classes") or [0, 0])
        chance = {"balanced_accuracy": 100 / n_classes, "roc_auc": 50.0}.get(metric)
        if chance is not None:
            ax.axhline(chance, color="grey", linestyle=":", linewidth=1)
        ax.set_ylim(0, 100)
        ax.set_xlabel(f"test persons without {modality} (%)")
        ax.set_ylabel(f"{metric.replace('_', ' ')} (%)")
        ax.set_title(f"{modality} missing (95 % CI bands)")
        ax.grid(alpha=0.3)
        if k == 0:
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return _save(fig, path)
