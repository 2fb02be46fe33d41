"""Reading an experiment grid: result rows, mean ± SD per method, paired differences, energy, Markdown.

Pure functions of the results table and the run (or baseline) folders it points to: no training
here, so the same code summarises a grid run locally, on a cluster, or read back from disk.

How a figure is built, and why:
- A *unit* is one person-level test set: one split seed (and fold). Runs of one unit differ only
  in the model seed. The summary first averages a method over the model seeds of each unit, then
  gives the mean ± SD over units: the spread that a reader should expect from another sample of
  persons, not just from another initialisation.
- Paired differences compare two methods on the very same test persons: per unit, the metric of
  A minus the metric of B (each averaged over model seeds), averaged over units. Its 95 % CI comes
  from a paired bootstrap that resamples the persons of every unit (the same draw for A and B), so
  it accounts for how few test persons there are. A CI that excludes 0 is a difference the data
  support; one that includes 0 is not.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from smmt_core.data.feature_sets import circularity_warning
from smmt_core.fileio import atomic_write_text
from smmt_core.variants import BASELINE_VARIANT, MASKING_VARIANTS, VARIANT_NAMES

# Metrics copied from a run's test metrics into results.csv (results name -> metrics key).
RESULT_METRICS = {
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced_accuracy",
    "auc": "roc_auc",
    "sensitivity": "sensitivity",
    "specificity": "specificity",
    "f1": "f1",
    "brier": "brier",
    "ece": "ece",
}
CI_COLUMNS = {"balanced_accuracy": "balanced_accuracy", "auc": "roc_auc"}  # results name -> metrics key

# Columns summarised as mean +- SD.
SUMMARY_METRICS = ("accuracy", "balanced_accuracy", "auc", "sensitivity", "specificity", "brier", "ece", "energy_kwh",
                   "duration_s")
PAIRED_METRICS = ("balanced_accuracy", "auc")
PAIRED_RESAMPLES = 1000

RESULT_COLUMNS = [
    "cell", "kind", "variant", "fraction", "seed", "mask_ratio", "fold", "split_seed", "status",
    *RESULT_METRICS, *(f"{c}_{end}" for c in CI_COLUMNS for end in ("lo", "hi")),
    "majority_rate", "n_test", "test_set", "energy_kwh", "cpu_kwh", "gpu_kwh", "ram_kwh",
    "energy_estimated", "duration_s", "best_epoch", "run_dir", "error",
]
_DONE = ("finished", "reused")


def _float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _majority_rate(metrics: dict) -> float:
    """Accuracy of always predicting the largest test class, from the confusion matrix."""
    cm = metrics.get("confusion_matrix")
    try:
        counts = np.asarray(cm, dtype=float).sum(axis=1)
    except (TypeError, ValueError):
        return math.nan
    return float(counts.max() / counts.sum()) if counts.size and counts.sum() > 0 else math.nan


def result_row(cell, status: str, record, error: str = "") -> dict:
    """One results.csv row for a cell, from its run or baseline folder (`record.result_fields()`)."""
    fields = record.result_fields() if status != "failed" else {}
    metrics = fields.get("test_metrics") or {}
    energy = fields.get("energy") or {}
    test_set, n_test = record.test_set_fingerprint()
    estimated = energy.get("estimated")
    row = {
        "cell": cell.name, "kind": "baseline" if cell.is_baseline else "model", "variant": cell.variant,
        "fraction": cell.fraction, "seed": "" if cell.is_baseline else cell.seed, "mask_ratio": cell.mask_ratio,
        "fold": cell.fold if cell.fold is not None else "", "split_seed": cell.split_seed, "status": status,
    }
    for column, key in RESULT_METRICS.items():
        row[column] = _float(metrics.get(key))
    ci = metrics.get("ci95") or {}
    for column, key in CI_COLUMNS.items():
        bounds = ci.get(key) or [math.nan, math.nan]
        row[f"{column}_lo"], row[f"{column}_hi"] = _float(bounds[0]), _float(bounds[1])
    best = fields.get("best_epoch")
    row.update(
        majority_rate=_majority_rate(metrics), n_test=n_test, test_set=test_set,
        energy_kwh=_float(energy.get("energy_kwh")), cpu_kwh=_float(energy.get("cpu_kwh")),
        gpu_kwh=_float(energy.get("gpu_kwh")), ram_kwh=_float(energy.get("ram_kwh")),
        energy_estimated="" if estimated is None else bool(estimated), duration_s=_float(fields.get("duration_s")),
        best_epoch=best if best is not None else "", run_dir=str(record.run_dir), error=error,
    )
    return row


def _done(results: pd.DataFrame) -> pd.DataFrame:
    return results[results["status"].isin(_DONE)] if len(results) else results


def _unit_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in ("split_seed", "fold") if c in frame.columns]


def summarise(results: pd.DataFrame, variant_order: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean and SD per (method, fraction, mask_ratio): over units (split seeds / folds) of the
    per-unit means over model seeds (see the module docstring). NaN SD for a single unit.

    Only finished runs ("finished" or "reused") count; `n_runs` says how many did, `n_units` over
    how many test sets the SD is taken.
    """
    columns = ["variant", "kind", "fraction", "mask_ratio", "n_runs", "n_units"]
    for metric in SUMMARY_METRICS:
        columns += [f"{metric}_mean", f"{metric}_sd"]
    columns += ["energy_kwh_total", "majority_rate", "n_test"]
    done = _done(results)
    if done.empty:
        return pd.DataFrame(columns=columns)
    done = done.copy()
    for c in _unit_columns(done):
        done[c] = done[c].fillna("").astype(str)
    for metric in SUMMARY_METRICS:  # results.csv of an older version lacks the newer metrics (Brier, ECE)
        if metric not in done.columns:
            done[metric] = math.nan
    rows = []
    for (variant, fraction, ratio), group in done.groupby(["variant", "fraction", "mask_ratio"], sort=False):
        kind = str(group["kind"].iloc[0]) if "kind" in group else "model"
        row = {"variant": variant, "kind": kind, "fraction": float(fraction), "mask_ratio": float(ratio),
               "n_runs": len(group)}
        units = group.groupby(_unit_columns(group), sort=False) if _unit_columns(group) else [(None, group)]
        per_unit = []
        for _, unit in units:
            per_unit.append({m: pd.to_numeric(unit[m], errors="coerce").mean() for m in SUMMARY_METRICS})
        per_unit = pd.DataFrame(per_unit)
        row["n_units"] = len(per_unit)
        for metric in SUMMARY_METRICS:
            values = per_unit[metric].dropna()
            if len(per_unit) == 1:  # one test set: the spread over model seeds is all there is
                values = pd.to_numeric(group[metric], errors="coerce").dropna()
            row[f"{metric}_mean"] = float(values.mean()) if len(values) else math.nan
            row[f"{metric}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        energy = pd.to_numeric(group["energy_kwh"], errors="coerce").dropna()
        row["energy_kwh_total"] = float(energy.sum()) if len(energy) else math.nan
        row["majority_rate"] = float(pd.to_numeric(group["majority_rate"], errors="coerce").mean())
        row["n_test"] = int(pd.to_numeric(group["n_test"], errors="coerce").fillna(0).max())
        rows.append(row)
    summary = pd.DataFrame(rows, columns=columns)
    order = list(variant_order) if variant_order else list(dict.fromkeys(summary["variant"]))
    rank = {v: i for i, v in enumerate(order)}
    summary["_rank"] = summary["variant"].map(lambda v: rank.get(v, len(rank)))
    summary = summary.sort_values(["_rank", "fraction", "mask_ratio"]).drop(columns="_rank")
    return summary.reset_index(drop=True)


# -- paired differences --------------------------------------------------------------------------
def _binary_scores(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """(balanced accuracy, AUC) of binary labels y (0/1) and P(positive) p; NaN unless both classes occur."""
    from smmt_core.train.metrics import rank_auc

    pos, neg = y == 1, y == 0
    if not pos.any() or not neg.any():
        return math.nan, math.nan
    pred = p >= 0.5
    return float(0.5 * (pred[pos].mean() + (~pred[neg]).mean())), rank_auc(y, p)


def _method_predictions(done: pd.DataFrame, method: str, fraction: float, mask_ratio: float | None):
    """{unit: [(person ids, labels 0/1, P(positive)), … one per model seed]} of one method."""
    from smmt_core.train.run_record import RunRecord

    rows = done[(done["variant"] == method) & np.isclose(pd.to_numeric(done["fraction"]), fraction)]
    if mask_ratio is not None and method in MASKING_VARIANTS:
        rows = rows[np.isclose(pd.to_numeric(rows["mask_ratio"]), mask_ratio)]
    out: dict = {}
    for _, row in rows.iterrows():
        try:
            table = RunRecord(row["run_dir"]).predictions()
        except Exception:  # noqa: BLE001 - a missing table only drops that run from the pairing
            continue
        prob_columns = [c for c in table.columns if c.startswith("p_")]
        if len(prob_columns) != 2:
            return None  # paired differences are computed for binary label sets
        positive = prob_columns[1][2:]
        unit = (str(row.get("split_seed", "")), str(row.get("fold", "")))
        table = table.sort_values("subject_id")
        out.setdefault(unit, []).append((table["subject_id"].astype(str).to_numpy(),
                                         (table["label"].astype(str) == positive).to_numpy().astype(int),
                                         table[prob_columns[1]].to_numpy(dtype=float)))
    return out


def paired_differences(results: pd.DataFrame, methods: Sequence[str] | None = None, *,
                       n_resamples: int = PAIRED_RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """A − B for every pair of methods at the largest fraction, on the same test persons.

    Columns: a, b, metric, difference, ci_lo, ci_hi, n_units, n_persons. Binary label sets only
    (empty otherwise). See the module docstring for the bootstrap.
    """
    columns = ["a", "b", "metric", "difference", "ci_lo", "ci_hi", "n_units", "n_persons"]
    done = _done(results)
    if done.empty:
        return pd.DataFrame(columns=columns)
    fraction = float(pd.to_numeric(done["fraction"]).max())
    ratios = pd.to_numeric(done.loc[done["variant"].isin(MASKING_VARIANTS), "mask_ratio"])
    mask_ratio = float(ratios.mode().iloc[0]) if len(ratios) else None
    names = [m for m in (methods or dict.fromkeys(done["variant"])) if m in set(done["variant"])]
    predictions = {m: _method_predictions(done, m, fraction, mask_ratio) for m in names}
    if any(p is None for p in predictions.values()):
        return pd.DataFrame(columns=columns)
    rng = np.random.default_rng(seed)
    rows = []
    for a, b in itertools.combinations(names, 2):
        units = sorted(set(predictions[a]) & set(predictions[b]))
        paired = []
        for unit in units:
            ids = predictions[a][unit][0][0]
            if any(not np.array_equal(t[0], ids) for t in predictions[a][unit] + predictions[b][unit]):
                continue  # not the same persons: never compare
            paired.append((predictions[a][unit], predictions[b][unit], len(ids)))
        if not paired:
            continue
        draws = [[rng.integers(0, n, n) for _, _, n in paired] for _ in range(n_resamples)]
        for k, metric in enumerate(PAIRED_METRICS):
            def diff(indices):
                values = []
                for (runs_a, runs_b, _n), idx in zip(paired, indices):
                    score_a = np.nanmean([_binary_scores(y[idx], p[idx])[k] for _, y, p in runs_a])
                    score_b = np.nanmean([_binary_scores(y[idx], p[idx])[k] for _, y, p in runs_b])
                    values.append(score_a - score_b)
                return float(np.nanmean(values)) if np.isfinite(values).any() else math.nan

            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN draws (one class drawn)
                point = diff([np.arange(n) for _, _, n in paired])
                boot = np.array([diff(idx) for idx in draws])
            boot = boot[np.isfinite(boot)]
            lo, hi = (np.quantile(boot, [0.025, 0.975]) if len(boot) >= n_resamples / 2 else (math.nan, math.nan))
            rows.append({"a": a, "b": b, "metric": metric, "difference": point, "ci_lo": float(lo),
                         "ci_hi": float(hi), "n_units": len(paired), "n_persons": int(sum(n for *_, n in paired))})
    return pd.DataFrame(rows, columns=columns)


# -- energy --------------------------------------------------------------------------------------
def pooled_calibration(results: pd.DataFrame, methods: Sequence[str] | None = None) -> dict[str, dict]:
    """Per method at the largest fraction: ECE, Brier and reliability bins over the pooled test persons.

    80 test persons give a jumpy ECE; pooling every split's (and model seed's) test predictions
    gives one figure per method with a few hundred persons behind it. Binary label sets only.
    Returns {method: {"n_persons", "brier", "ece", "reliability", "ece_if_calibrated"}} (see
    `train.calibration`; the last is the noise floor: what a perfectly calibrated model would show).
    """
    from smmt_core.train.calibration import calibration_metrics, ece_if_calibrated

    done = _done(results)
    if not len(done):
        return {}
    fraction = float(pd.to_numeric(done["fraction"]).max())
    methods = list(methods) if methods is not None else list(dict.fromkeys(done["variant"]))
    out = {}
    for method in methods:
        units = _method_predictions(done, method, fraction, None)
        if not units:
            continue
        labels = np.concatenate([y for runs in units.values() for _, y, _ in runs])
        positive = np.concatenate([p for runs in units.values() for _, _, p in runs])
        figures = calibration_metrics(labels, np.stack([1 - positive, positive], 1))
        out[method] = {"n_persons": int(len(labels)), **figures, "ece_if_calibrated": ece_if_calibrated(positive)}
    return out


def calibration_markdown(calibration: dict[str, dict]) -> list[str]:
    """The pooled calibration as Markdown lines: ECE and Brier per method, then each reliability diagram."""
    if not calibration:
        return []
    any_figures = next(iter(calibration.values()))
    bins = (any_figures.get("reliability") or {}).get("bins") or []
    lines = ["", "## Calibration, pooled over the test persons of every split", "",
             f"ECE over {len(bins)} equal-width bins of P(positive class); Brier score (lower is better). "
             "On a few hundred persons even exact probabilities show an ECE above 0: the last column is "
             "what a perfectly calibrated model with the same probabilities would show (median [95th "
             "percentile] over outcomes drawn from them).", "",
             "| method | persons | ECE | Brier | ECE if perfectly calibrated |", "|---|---|---|---|---|"]
    for method, figures in calibration.items():
        floor = figures.get("ece_if_calibrated") or {}
        lines.append(f"| {method} | {figures['n_persons']} | {figures['ece']:.3f} | {figures['brier']:.3f} | "
                     f"{floor.get('median', float('nan')):.3f} [{floor.get('q95', float('nan')):.3f}] |")
    lines += ["", "Reliability diagram (each bin: persons, mean predicted P, observed share positive):", "",
              "| method | " + " | ".join(f"{lo:.1f}–{hi:.1f}" for lo, hi in bins) + " |",
              "|---|" + "---|" * len(bins)]
    for method, figures in calibration.items():
        table = figures.get("reliability") or {}
        cells = []
        for n, predicted, observed in zip(table.get("count", []), table.get("mean_predicted", []),
                                          table.get("observed", [])):
            cells.append(f"{n}: {predicted:.2f}/{observed:.2f}" if n else "0")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


def energy_table(results: pd.DataFrame, variant_order: Sequence[str] | None = None) -> pd.DataFrame:
    """Energy per model variant over the finished runs at the largest fraction (Table V of the paper).

    Columns: variant, n_runs, energy_kwh_total, energy_kwh_mean (per run), energy_kwh_sd (ddof=1),
    vs_3mt (relative difference of the mean per run against the 3mt baseline, NaN without 3mt).
    `attrs["fraction"]` says which fraction. Baselines (no energy measured) are not in it.
    """
    done = _done(results)
    if not done.empty:
        done = done[done["variant"].isin(VARIANT_NAMES)]
    if done.empty:
        return pd.DataFrame()
    done = done.assign(energy_kwh=pd.to_numeric(done["energy_kwh"], errors="coerce"),
                       fraction=pd.to_numeric(done["fraction"], errors="coerce"))
    if done["energy_kwh"].isna().all():
        return pd.DataFrame()
    fraction = float(done["fraction"].max())
    at = done[done["fraction"] == fraction]
    rows = []
    for variant, group in at.groupby("variant", sort=False):
        energy = group["energy_kwh"].dropna()
        rows.append({"variant": variant, "n_runs": len(energy), "energy_kwh_total": float(energy.sum()),
                     "energy_kwh_mean": float(energy.mean()) if len(energy) else math.nan,
                     "energy_kwh_sd": float(energy.std(ddof=1)) if len(energy) > 1 else math.nan})
    table = pd.DataFrame(rows)
    if variant_order:
        rank = {v: i for i, v in enumerate(variant_order)}
        table = table.sort_values("variant", key=lambda s: s.map(lambda v: rank.get(v, len(rank)))).reset_index(drop=True)
    base = table.loc[table["variant"] == BASELINE_VARIANT, "energy_kwh_mean"]
    ref = float(base.iloc[0]) if len(base) else math.nan
    table["vs_3mt"] = table["energy_kwh_mean"] / ref - 1 if ref > 0 else math.nan
    table.attrs["fraction"] = fraction
    return table


# -- Markdown ------------------------------------------------------------------------------------
def _fmt(x: float) -> str:
    return f"{float(x):g}"


def _pm(mean: float, sd: float, scale: float = 1.0, digits: int = 1) -> str:
    if mean is None or math.isnan(mean):
        return "–"
    text = f"{mean * scale:.{digits}f}"
    if sd is not None and not math.isnan(sd):
        text += f" ± {sd * scale:.{digits}f}"
    return text


def _protocol_lines(spec, synthetic: bool | None) -> list[str]:
    """What was run: the data, the protocol, the preset's settings, and a circularity warning."""
    splits = ", ".join(str(s) for s in spec.split_seeds)
    protocol = (f"{spec.n_folds}-fold cross-validation by person (split seed(s) {splits})" if spec.n_folds else
                f"person-level hold-out test set(s), split seed(s) {splits}; every method of one split is "
                "scored on the same test persons")
    base = spec.base_config()
    lines = [
        f"- data: `{spec.data}`" + (" (SYNTHETIC demo cohort, not patient data)" if synthetic else ""),
        f"- protocol: {protocol}; model seed(s) {', '.join(str(s) for s in spec.seeds)} (initialisation and "
        "training order)",
        f"- preset `{spec.preset}`: {base.optim.epochs} epochs, batch {base.optim.batch_size}, "
        f"lr {base.optim.lr:g}, d_model {base.model.d_model}, features "
        f"{', '.join(base.data.features) if base.data.features else 'none (MRI only)'}",
    ]
    warning = circularity_warning(base.data.features or [])
    if warning:
        lines.append(f"- WARNING: {warning}")
    return lines


def _paired_markdown(paired: pd.DataFrame, fraction: float) -> list[str]:
    """The paired differences table: A − B with its bootstrap CI, per pair of methods."""
    lines = ["", f"## Paired differences (same test persons, fraction {fraction * 100:.0f}%)", "",
             "A − B, averaged over splits; 95 % CI from a paired bootstrap over persons. A CI that "
             "contains 0 means the data do not tell A and B apart.", "",
             "| A | B | Δ balanced acc. (pts) | 95 % CI | Δ AUC | 95 % CI | splits | persons |",
             "|---|---|---|---|---|---|---|---|"]

    def cell(r, scale, digits):
        if r is None or math.isnan(r["difference"]):
            return "–", "–"
        ci = "–" if math.isnan(r["ci_lo"]) else f"[{r['ci_lo'] * scale:+.{digits}f}, {r['ci_hi'] * scale:+.{digits}f}]"
        return f"{r['difference'] * scale:+.{digits}f}", ci

    for (a, b), group in paired.groupby(["a", "b"], sort=False):
        by = {r["metric"]: r for _, r in group.iterrows()}
        ba, auc = by.get("balanced_accuracy"), by.get("auc")
        d1, c1 = cell(ba, 100, 1)
        d2, c2 = cell(auc, 1, 3)
        any_row = ba if ba is not None else auc
        lines.append(f"| {a} | {b} | {d1} | {c1} | {d2} | {c2} | {int(any_row['n_units'])} | "
                     f"{int(any_row['n_persons'])} |")
    return lines


def summary_markdown(summary: pd.DataFrame, results: pd.DataFrame, spec=None, synthetic: bool | None = None,
                     paired: pd.DataFrame | None = None, calibration: dict | None = None) -> str:
    """The summary as a Markdown document: what was run, the mean ± SD table, paired differences,
    energy per variant."""
    lines = ["# Experiment summary", "", *(_protocol_lines(spec, synthetic) if spec is not None else [])]
    done = _done(results)
    failed = results[results["status"] == "failed"] if len(results) else results
    n_test = int(pd.to_numeric(done["n_test"], errors="coerce").max()) if len(done) else 0
    lines.append(f"- runs: {len(done)} finished, {len(failed)} failed, {len(results) - len(done) - len(failed)} "
                 "not finished")
    if len(done):
        per_unit_sets = done.groupby(_unit_columns(done))["test_set"].nunique() if _unit_columns(done) else None
        if per_unit_sets is not None and (per_unit_sets > 1).any():
            lines.append("- WARNING: runs of one split used different test sets; cells are not strictly comparable")
        else:
            lines.append(f"- test persons per split: {n_test}")
    lines.append("")
    if summary.empty:
        lines.append("No finished runs yet.")
        return "\n".join(lines) + "\n"
    show_mask = summary["mask_ratio"].nunique() > 1
    header = ["method", "fraction"] + (["mask ratio"] if show_mask else []) + [
        "runs", "splits", "accuracy %", "balanced acc. %", "AUC", "sensitivity %", "specificity %",
        "energy/run (Wh)", "time/run (s)"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join("---" for _ in header) + "|")
    for _, r in summary.iterrows():
        name = str(r["variant"]) + (" (baseline)" if r.get("kind") == "baseline" else "")
        cells = [name, f"{r['fraction'] * 100:.0f}%"] + ([_fmt(r["mask_ratio"])] if show_mask else [])
        cells += [
            str(int(r["n_runs"])), str(int(r["n_units"])),
            _pm(r["accuracy_mean"], r["accuracy_sd"], 100),
            _pm(r["balanced_accuracy_mean"], r["balanced_accuracy_sd"], 100),
            _pm(r["auc_mean"], r["auc_sd"], 1, 3),
            _pm(r["sensitivity_mean"], r["sensitivity_sd"], 100),
            _pm(r["specificity_mean"], r["specificity_sd"], 100),
            _pm(r["energy_kwh_mean"], r["energy_kwh_sd"], 1000, 2),
            _pm(r["duration_s_mean"], r["duration_s_sd"], 1, 0),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "± is the SD over test sets (split seeds or folds) of the per-split means over model seeds; "
                  "with a single test set, the SD over model seeds."]
    if len(done) and "energy_estimated" in done and done["energy_estimated"].astype(str).eq("True").any():
        lines += ["", "Energy: codecarbon *estimated* the power (no RAPL/NVML energy counter on this machine), "
                      "so energy follows run time rather than measured watts."]
    majority = pd.to_numeric(summary["majority_rate"], errors="coerce").dropna()
    if len(majority):
        lines += ["", f"Majority-class rate of the test set (accuracy of always guessing the larger class): "
                      f"{majority.mean() * 100:.1f}%."]
    if paired is not None and not paired.empty:
        lines += _paired_markdown(paired, float(summary["fraction"].max()))
    lines += calibration_markdown(calibration or {})
    energy = energy_table(results, spec.variants if spec is not None else None)
    if not energy.empty:
        lines += ["", f"## Energy per variant (fraction {energy.attrs['fraction'] * 100:.0f}%)", "",
                  f"| variant | runs | total (Wh) | per run (Wh) | vs {BASELINE_VARIANT} |", "|---|---|---|---|---|"]
        for _, r in energy.iterrows():
            rel = "–" if math.isnan(r["vs_3mt"]) else f"{r['vs_3mt'] * 100:+.1f}%"
            lines.append(f"| {r['variant']} | {int(r['n_runs'])} | {r['energy_kwh_total'] * 1000:.2f} | "
                         f"{_pm(r['energy_kwh_mean'], r['energy_kwh_sd'], 1000, 2)} | {rel} |")
    if len(failed):
        lines += ["", "## Failed runs", ""]
        lines += [f"- `{r['cell']}`: {r['error']}" for _, r in failed.iterrows()]
    return "\n".join(lines) + "\n"


def _is_synthetic(spec, results: pd.DataFrame) -> bool:
    from smmt_core.errors import SMMTError
    from smmt_core.train.run_record import RunRecord

    if spec.data_location() == "demo":
        return True
    for run_dir in results.get("run_dir", []):
        try:
            if RunRecord(run_dir).run_summary().synthetic:
                return True
        except SMMTError:
            continue
    return False


def write_outputs(spec, out_dir: Path, results: pd.DataFrame,
                  make_plots: bool = True) -> tuple[pd.DataFrame, dict[str, Path]]:
    """results.csv, summary.csv, paired.csv, calibration.json, summary.md and (unless make_plots is
    False) the plots."""
    import json

    from smmt_core.experiments import plots
    from smmt_core.train.metrics import json_safe

    order = [*spec.variants, *spec.baselines]
    atomic_write_text(out_dir / "results.csv", results.to_csv(index=False))
    summary = summarise(results, order)
    atomic_write_text(out_dir / "summary.csv", summary.to_csv(index=False))
    paired = paired_differences(results, order)
    atomic_write_text(out_dir / "paired.csv", paired.to_csv(index=False))
    calibration = pooled_calibration(results, order)
    atomic_write_text(out_dir / "calibration.json", json.dumps(json_safe(calibration), indent=2))
    atomic_write_text(out_dir / "summary.md",
                      summary_markdown(summary, results, spec, _is_synthetic(spec, results), paired, calibration))
    made: dict[str, Path] = {}
    if make_plots and not summary.empty:
        base = spec.base_config()
        ref_ratio, n_classes = base.model.mask_ratio, len(base.data.classes)
        made["accuracy_vs_fraction"] = plots.plot_accuracy_vs_fraction(
            summary, out_dir / "accuracy_vs_fraction.png", mask_ratio=ref_ratio)
        made["balanced_accuracy_vs_fraction"] = plots.plot_accuracy_vs_fraction(
            summary, out_dir / "balanced_accuracy_vs_fraction.png", metric="balanced_accuracy",
            mask_ratio=ref_ratio, n_classes=n_classes)
        models = summary[summary["kind"] == "model"]
        if not models["energy_kwh_mean"].isna().all():
            made["energy_per_variant"] = plots.plot_energy_per_variant(models, out_dir / "energy_per_variant.png")
        if models["mask_ratio"][models["variant"].isin(MASKING_VARIANTS)].nunique() > 1:
            made["mask_ratio_sweep"] = plots.plot_mask_ratio_sweep(models, out_dir / "mask_ratio_sweep.png")
    return summary, made
