"""Experiment grids: variant x data fraction x seed (x mask ratio), or k-fold, on one cohort.

Why this module exists: the paper's tables are not single runs. Table III/VI compare variants across
fractions of the training data, Table V compares energy per variant, and the mask-ratio sweep varies
the masking ratio; each figure is a mean over several runs. `run_experiment` trains one run per grid
cell with the ordinary trainer, then writes what a researcher needs to read the grid:

    out_dir/experiment.json    the spec (to reproduce or resume the grid)
    out_dir/runs/<cell>/       one ordinary run folder per cell (config.json, split.csv, weights, ...)
    out_dir/results.csv        one row per run: cell settings, test metrics, energy, duration
    out_dir/summary.csv/.md    mean +- SD per (variant, fraction, mask ratio)
    out_dir/*.png              accuracy vs fraction, energy per variant, the mask-ratio sweep

Choices, and why:
- One fixed test set. Every cell uses the same split seed (`ExperimentSpec.split_seed`), so the
  test subjects are identical in all cells; the data fraction shrinks the training subjects only
  (nested fractions), and `seed` varies only the model initialisation and the training order.
  Differences between cells are then differences between models, not between test sets. Each
  results row carries a fingerprint of its test subjects (`test_set`) so this can be checked.
- k-fold instead (`n_folds`): every cell is trained once per fold, fold f testing on the f-th
  subject-level fold (the paper's energy table used 5 folds x 50 epochs); the summary pools folds.
- Resumable: a cell whose run folder's run.json says it finished (and whose settings match) is
  not trained again; its results are read back. An unfinished folder (crash, Ctrl+C, stop flag) is
  removed and the cell trained again.
- Variants without masking (`smmt-no-mask`, `3mt`) have no mask-ratio axis: they get one cell per
  (fraction, seed[, fold]) and record mask ratio 0.
- Input problems (a bad setting, unreadable data: any SMMTError) stop the grid at once, because
  every other cell would fail the same way; any other crash inside one run is recorded as a failed
  row and the grid goes on.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import threading
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from smmt_core.errors import ConfigError, DataError, SMMTError
from smmt_core.fileio import atomic_write_text
from smmt_core.train.config import LABEL_SETS, PRESETS, VARIANTS, TrainConfig, from_preset

# Variants whose training applies the modality-wise masking (see smmt_core.model): only these have
# a mask-ratio axis in a grid.
MASKING_VARIANTS = ("smmt", "smmt-no-sparse")

# TrainConfig fields that the grid itself sets per cell: they cannot be given as overrides.
GRID_KEYS = ("data", "out", "run_name", "variant", "fraction", "seed", "split_seed", "mask_ratio", "fold", "n_folds")

# Metrics copied from a run's test metrics into results.csv (results name -> metrics key).
RESULT_METRICS = {
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced_accuracy",
    "auc": "roc_auc",
    "sensitivity": "sensitivity",
    "specificity": "specificity",
    "f1": "f1",
}

# Columns summarised as mean +- SD.
SUMMARY_METRICS = ("accuracy", "balanced_accuracy", "auc", "sensitivity", "specificity", "energy_kwh", "duration_s")

RESULT_COLUMNS = [
    "cell", "variant", "fraction", "seed", "mask_ratio", "fold", "status",
    *RESULT_METRICS, "majority_rate", "n_test", "test_set", "energy_kwh", "cpu_kwh", "gpu_kwh", "ram_kwh",
    "energy_estimated", "duration_s", "best_epoch", "run_dir", "error",
]

# Settings that may differ between a finished run and the cell that would re-create it.
_IGNORED_WHEN_RESUMING = {"out", "run_name", "device", "num_workers"}


def _fmt(x: float) -> str:
    return f"{float(x):g}"


@dataclass(frozen=True)
class ExperimentCell:
    """One run of the grid."""

    variant: str
    fraction: float
    seed: int
    mask_ratio: float
    fold: int | None = None

    @property
    def name(self) -> str:
        """Folder name of the cell's run, e.g. ``smmt_frac0.2_seed1_mask0.3`` (+ ``_fold2``)."""
        parts = [self.variant, f"frac{_fmt(self.fraction)}", f"seed{self.seed}", f"mask{_fmt(self.mask_ratio)}"]
        if self.fold is not None:
            parts.append(f"fold{self.fold}")
        return "_".join(parts)


def _default_runner(config: TrainConfig, on_event=None, stop=None):
    from smmt_core.train.trainer import train  # imported late: the trainer pulls in torch and data

    return train(config, on_event=on_event, stop=stop)


@dataclass
class ExperimentSpec:
    """What to run: the grid axes plus the settings every cell shares.

    data: dataset path or "demo". variants/fractions/seeds/mask_ratios: the grid axes
    (mask_ratios None: the preset's ratio). epochs: None keeps the preset's. n_folds: k-fold
    cross-validation by subject instead of one fixed test set. split_seed: seed of the subject
    split, the same in every cell. overrides: any other TrainConfig fields (e.g. features,
    d_model, device). runner: the training function, `train(config, on_event, stop)` by default;
    tests inject a fake one.
    """

    data: str
    variants: Sequence[str] = ("smmt", "3mt")
    fractions: Sequence[float] = (1.0,)
    seeds: Sequence[int] = (0,)
    mask_ratios: Sequence[float] | None = None
    epochs: int | None = None
    preset: str = "demo"
    n_folds: int | None = None
    split_seed: int = 0
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
        for axis in ("variants", "fractions", "seeds"):
            values = list(getattr(self, axis))
            if not values:
                raise ConfigError(f"the experiment needs at least one value in {axis}")
            if len(set(values)) != len(values):
                raise ConfigError(f"{axis} lists a value twice: {values}")
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown:
            raise ConfigError(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
        if self.mask_ratios is not None:
            if not list(self.mask_ratios):
                raise ConfigError("mask_ratios is empty; leave it out to use the preset's ratio")
            if len(set(self.mask_ratios)) != len(list(self.mask_ratios)):
                raise ConfigError(f"mask_ratios lists a value twice: {list(self.mask_ratios)}")
        if self.n_folds is not None and self.n_folds < 2:
            raise ConfigError(f"k-fold needs at least 2 folds, got {self.n_folds}")
        known = {f.name for f in fields(TrainConfig)}
        bad = sorted(set(self.overrides) - known)
        if bad:
            raise ConfigError(f"unknown TrainConfig setting(s) in overrides: {', '.join(bad)}")
        grid = sorted(set(self.overrides) & set(GRID_KEYS))
        if grid:
            raise ConfigError(f"set {', '.join(grid)} through the experiment itself, not as overrides")
        for cell in self.cells():
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
        return from_preset(self.preset, data=self.data_location(), **extra)

    def cells(self) -> list[ExperimentCell]:
        """Every run of the grid, in the order they are trained.

        Seeds (and folds) are the outer loop: a grid stopped half-way holds complete replicates
        (every variant at every fraction for the first seeds) rather than a few cells with many seeds.
        """
        base_ratio = self.base_config().mask_ratio
        ratios = [float(r) for r in self.mask_ratios] if self.mask_ratios is not None else [base_ratio]
        folds: list[int | None] = list(range(self.n_folds)) if self.n_folds else [None]
        out = []
        for seed in self.seeds:
            for fold in folds:
                for fraction in self.fractions:
                    for variant in self.variants:
                        for ratio in (ratios if variant in MASKING_VARIANTS else [0.0]):
                            out.append(ExperimentCell(variant, float(fraction), int(seed), float(ratio), fold))
        return out

    def config_for(self, cell: ExperimentCell, runs_dir: str | Path) -> TrainConfig:
        """The TrainConfig of one cell, its run going to runs_dir/<cell name>."""
        return self.base_config().with_(
            out=str(runs_dir),
            run_name=cell.name,
            variant=cell.variant,
            fraction=cell.fraction,
            seed=cell.seed,
            split_seed=self.split_seed,
            mask_ratio=cell.mask_ratio,
            fold=cell.fold,
            n_folds=self.n_folds,
        ).validate()

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "runner"}
        for key in ("variants", "fractions", "seeds", "mask_ratios"):
            if d[key] is not None:
                d[key] = list(d[key])
        d["overrides"] = dict(self.overrides)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ExperimentSpec":
        known = {f.name for f in fields(cls)} - {"runner"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown experiment keys: {', '.join(unknown)}")
        return cls(**d)


# ----------------------------------------------------------------------------------------- events
@dataclass
class CellStarted:
    """A cell's run is about to be trained (training events of that run follow)."""

    index: int  # 0-based position in the grid
    total: int
    cell: ExperimentCell
    run_dir: Path


@dataclass
class CellFinished:
    """A cell is done: status "finished", "reused" (finished earlier), "failed" or "stopped"."""

    index: int
    total: int
    cell: ExperimentCell
    status: str
    row: dict
    message: str = ""


ExperimentEvent = CellStarted | CellFinished


@dataclass
class ExperimentResult:
    out_dir: Path
    results: pd.DataFrame  # one row per cell (RESULT_COLUMNS)
    summary: pd.DataFrame  # mean +- SD per (variant, fraction, mask_ratio)
    results_csv: Path
    summary_csv: Path
    summary_md: Path
    plots: dict[str, Path]  # "accuracy_vs_fraction", "energy_per_variant", "mask_ratio_sweep"
    n_trained: int
    n_reused: int
    n_failed: int
    stopped: bool  # True when the stop flag ended the grid early

    @property
    def complete(self) -> bool:
        return not self.stopped and self.n_failed == 0


# ------------------------------------------------------------------------------------ file helpers
def atomic_write_csv(path: Path, frame: pd.DataFrame) -> None:
    atomic_write_text(path, frame.to_csv(index=False))


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_finished_run(run_dir: str | Path) -> dict | None:
    """The run.json of a run that trained to the end, or None (missing, unfinished, stopped early).

    Accepts `"status": "finished"` or `"finished": true`; a run marked `stopped_early` does not count.
    """
    info = _read_json(Path(run_dir) / "run.json")
    if info is None:
        return None
    finished = info.get("status") in ("finished", "complete", "completed") or info.get("finished") is True
    if not finished or info.get("stopped_early"):
        return None
    return info


def test_set_fingerprint(run_dir: str | Path) -> tuple[str, int]:
    """(short hash of the sorted test subject ids, number of test subjects) from split.csv; ("", 0) if absent."""
    path = Path(run_dir) / "split.csv"
    try:
        split = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.EmptyDataError):
        return "", 0
    if "part" not in split.columns or "subject_id" not in split.columns:
        return "", 0
    ids = sorted(set(split.loc[split["part"] == "test", "subject_id"]))
    digest = hashlib.sha1("\n".join(ids).encode()).hexdigest()[:10]
    return digest, len(ids)


def _majority_rate(metrics: dict) -> float:
    """Accuracy of always predicting the largest test class, from the confusion matrix."""
    cm = metrics.get("confusion_matrix")
    try:
        counts = np.asarray(cm, dtype=float).sum(axis=1)
    except (TypeError, ValueError):
        return math.nan
    return float(counts.max() / counts.sum()) if counts.size and counts.sum() > 0 else math.nan


def _float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _result_row(cell: ExperimentCell, status: str, run_dir: Path, metrics: dict | None,
                energy_kwh=None, duration_s=None, error: str = "") -> dict:
    metrics = metrics or {}
    test_set, n_test = test_set_fingerprint(run_dir)
    row = {
        "cell": cell.name, "variant": cell.variant, "fraction": cell.fraction, "seed": cell.seed,
        "mask_ratio": cell.mask_ratio, "fold": cell.fold if cell.fold is not None else "", "status": status,
    }
    for column, key in RESULT_METRICS.items():
        row[column] = _float(metrics.get(key))
    # the energy breakdown and best epoch as the trainer recorded them in run.json (when it did)
    info = _read_json(Path(run_dir) / "run.json") or {}
    energy = info.get("energy") if isinstance(info.get("energy"), dict) else {}
    estimated = energy.get("estimated")
    row.update(
        majority_rate=_majority_rate(metrics), n_test=n_test, test_set=test_set, energy_kwh=_float(energy_kwh),
        cpu_kwh=_float(energy.get("cpu_kwh")), gpu_kwh=_float(energy.get("gpu_kwh")), ram_kwh=_float(energy.get("ram_kwh")),
        energy_estimated="" if estimated is None else bool(estimated), duration_s=_float(duration_s),
        best_epoch=info.get("best_epoch") if info.get("best_epoch") is not None else "", run_dir=str(run_dir), error=error,
    )
    return row


def _row_from_run_json(cell: ExperimentCell, run_dir: Path, info: dict) -> dict:
    results = info.get("results") if isinstance(info.get("results"), dict) else {}
    metrics = info.get("test_metrics") or results.get("test_metrics") or {}
    energy = info.get("energy_kwh", results.get("energy_kwh"))
    if energy is None and isinstance(info.get("energy"), dict):
        energy = info["energy"].get("energy_kwh", info["energy"].get("total_kwh"))
    duration = info.get("duration_s", results.get("duration_s"))
    return _result_row(cell, "reused", run_dir, metrics, energy, duration)


def _config_differences(run_dir: Path, wanted: TrainConfig) -> list[str]:
    stored = _read_json(run_dir / "config.json")
    if stored is None:
        return []
    want = wanted.to_dict()
    out = []
    for key in sorted(set(stored) & set(want) - _IGNORED_WHEN_RESUMING):
        a, b = stored[key], want[key]
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
            if math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12):
                continue
        elif a == b or (isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and list(a) == list(b)):
            continue
        out.append(f"{key} {a!r} (stored) != {b!r} (this experiment)")
    return out


# -------------------------------------------------------------------------------------- summaries
def summarise(results: pd.DataFrame, variant_order: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean and sample SD (ddof=1; NaN for a single run) per (variant, fraction, mask_ratio).

    Only finished runs ("finished" or "reused") count; `n_runs` says how many did.
    """
    columns = ["variant", "fraction", "mask_ratio", "n_runs"]
    for metric in SUMMARY_METRICS:
        columns += [f"{metric}_mean", f"{metric}_sd"]
    columns += ["energy_kwh_total", "majority_rate", "n_test"]
    done = results[results["status"].isin(["finished", "reused"])] if len(results) else results
    if done.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for (variant, fraction, ratio), group in done.groupby(["variant", "fraction", "mask_ratio"], sort=False):
        row = {"variant": variant, "fraction": float(fraction), "mask_ratio": float(ratio), "n_runs": len(group)}
        for metric in SUMMARY_METRICS:
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


def _pm(mean: float, sd: float, scale: float = 1.0, digits: int = 1) -> str:
    if mean is None or math.isnan(mean):
        return "–"
    text = f"{mean * scale:.{digits}f}"
    if sd is not None and not math.isnan(sd):
        text += f" ± {sd * scale:.{digits}f}"
    return text


def summary_markdown(summary: pd.DataFrame, results: pd.DataFrame, spec: ExperimentSpec | None = None,
                     synthetic: bool | None = None) -> str:
    """The summary as a Markdown document: what was run, the mean ± SD table, energy per variant."""
    lines = ["# Experiment summary", ""]
    if spec is not None:
        protocol = (f"{spec.n_folds}-fold cross-validation by subject (split seed {spec.split_seed})"
                    if spec.n_folds else f"one fixed test set (split seed {spec.split_seed}) shared by every run")
        base = spec.base_config()
        lines += [
            f"- data: `{spec.data}`" + (" (SYNTHETIC demo cohort, not patient data)" if synthetic else ""),
            f"- protocol: {protocol}; model seed(s) {', '.join(str(s) for s in spec.seeds)} (initialisation and training order)",
            f"- preset `{spec.preset}`: {base.epochs} epochs, batch {base.batch_size}, lr {base.lr:g}, "
            f"d_model {base.d_model}, features {', '.join(base.features) if base.features else 'paper set'}",
        ]
    done = results[results["status"].isin(["finished", "reused"])] if len(results) else results
    failed = results[results["status"] == "failed"] if len(results) else results
    test_sets = sorted({t for t in done.get("test_set", []) if t}) if len(done) else []
    n_test = int(pd.to_numeric(done["n_test"], errors="coerce").max()) if len(done) else 0
    lines.append(f"- runs: {len(done)} finished, {len(failed)} failed, {len(results) - len(done) - len(failed)} not finished")
    if spec is not None and not spec.n_folds and len(test_sets) > 1:
        lines.append(f"- WARNING: the runs used {len(test_sets)} different test sets ({', '.join(test_sets)}); "
                     "the trainer did not keep the split fixed, so cells are not strictly comparable")
    elif test_sets:
        lines.append(f"- test subjects per run: {n_test}" + (f" (test set {test_sets[0]})" if len(test_sets) == 1 else ""))
    lines.append("")
    if summary.empty:
        lines.append("No finished runs yet.")
        return "\n".join(lines) + "\n"
    show_mask = summary["mask_ratio"].nunique() > 1
    header = ["variant", "fraction"] + (["mask ratio"] if show_mask else []) + [
        "runs", "accuracy %", "balanced acc. %", "AUC", "sensitivity %", "specificity %", "energy/run (Wh)", "time/run (s)"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join("---" for _ in header) + "|")
    for _, r in summary.iterrows():
        cells = [str(r["variant"]), f"{r['fraction'] * 100:.0f}%"] + ([_fmt(r["mask_ratio"])] if show_mask else [])
        cells += [
            str(int(r["n_runs"])),
            _pm(r["accuracy_mean"], r["accuracy_sd"], 100),
            _pm(r["balanced_accuracy_mean"], r["balanced_accuracy_sd"], 100),
            _pm(r["auc_mean"], r["auc_sd"], 1, 3),
            _pm(r["sensitivity_mean"], r["sensitivity_sd"], 100),
            _pm(r["specificity_mean"], r["specificity_sd"], 100),
            _pm(r["energy_kwh_mean"], r["energy_kwh_sd"], 1000, 2),
            _pm(r["duration_s_mean"], r["duration_s_sd"], 1, 0),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if len(done) and "energy_estimated" in done and done["energy_estimated"].astype(str).eq("True").any():
        lines += ["", "Energy: codecarbon *estimated* the power (no RAPL/NVML energy counter on this machine), "
                      "so energy follows run time rather than measured watts."]
    majority = pd.to_numeric(summary["majority_rate"], errors="coerce").dropna()
    if len(majority):
        lines += ["", f"Majority-class rate of the test set (accuracy of always guessing the larger class): "
                      f"{majority.mean() * 100:.1f}%."]
    energy = energy_table(results, spec.variants if spec is not None else None)
    if not energy.empty:
        lines += ["", f"## Energy per variant (fraction {energy.attrs['fraction'] * 100:.0f}%)", "",
                  "| variant | runs | total (Wh) | per run (Wh) | vs 3mt |", "|---|---|---|---|---|"]
        for _, r in energy.iterrows():
            rel = "–" if math.isnan(r["vs_3mt"]) else f"{r['vs_3mt'] * 100:+.1f}%"
            lines.append(f"| {r['variant']} | {int(r['n_runs'])} | {r['energy_kwh_total'] * 1000:.2f} | "
                         f"{_pm(r['energy_kwh_mean'], r['energy_kwh_sd'], 1000, 2)} | {rel} |")
    if len(failed):
        lines += ["", "## Failed runs", ""]
        lines += [f"- `{r['cell']}`: {r['error']}" for _, r in failed.iterrows()]
    return "\n".join(lines) + "\n"


def energy_table(results: pd.DataFrame, variant_order: Sequence[str] | None = None) -> pd.DataFrame:
    """Energy per variant over the finished runs at the largest fraction (Table V of the paper).

    Columns: variant, n_runs, energy_kwh_total, energy_kwh_mean (per run), energy_kwh_sd (ddof=1),
    vs_3mt (relative difference of the mean per run against the 3mt baseline, NaN without 3mt).
    `attrs["fraction"]` says which fraction.
    """
    done = results[results["status"].isin(["finished", "reused"])] if len(results) else results
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
    base = table.loc[table["variant"] == "3mt", "energy_kwh_mean"]
    ref = float(base.iloc[0]) if len(base) else math.nan
    table["vs_3mt"] = table["energy_kwh_mean"] / ref - 1 if ref > 0 else math.nan
    table.attrs["fraction"] = fraction
    return table


# ----------------------------------------------------------------------------------------- runner
def _is_synthetic(spec: ExperimentSpec, results: pd.DataFrame) -> bool:
    if spec.data_location() == "demo":
        return True
    for run_dir in results.get("run_dir", []):
        info = _read_json(Path(run_dir) / "run.json") or {}
        if info.get("synthetic"):
            return True
    return False


def write_outputs(spec: ExperimentSpec, out_dir: Path, results: pd.DataFrame,
                  make_plots: bool = True) -> tuple[pd.DataFrame, dict[str, Path]]:
    """results.csv, summary.csv, summary.md and (unless make_plots is False) the plots."""
    from smmt_core.train import plots

    atomic_write_csv(out_dir / "results.csv", results)
    summary = summarise(results, spec.variants)
    atomic_write_csv(out_dir / "summary.csv", summary)
    atomic_write_text(out_dir / "summary.md", summary_markdown(summary, results, spec, _is_synthetic(spec, results)))
    made: dict[str, Path] = {}
    if make_plots and not summary.empty:
        base = spec.base_config()
        ref_ratio, n_classes = base.mask_ratio, len(LABEL_SETS[base.label_set])
        made["accuracy_vs_fraction"] = plots.plot_accuracy_vs_fraction(
            summary, out_dir / "accuracy_vs_fraction.png", mask_ratio=ref_ratio)
        made["balanced_accuracy_vs_fraction"] = plots.plot_accuracy_vs_fraction(
            summary, out_dir / "balanced_accuracy_vs_fraction.png", metric="balanced_accuracy",
            mask_ratio=ref_ratio, n_classes=n_classes)
        if not summary["energy_kwh_mean"].isna().all():
            made["energy_per_variant"] = plots.plot_energy_per_variant(summary, out_dir / "energy_per_variant.png")
        if summary["mask_ratio"][summary["variant"].isin(MASKING_VARIANTS)].nunique() > 1:
            made["mask_ratio_sweep"] = plots.plot_mask_ratio_sweep(summary, out_dir / "mask_ratio_sweep.png")
    return summary, made


def run_experiment(spec: ExperimentSpec, out_dir: str | Path, on_event: Callable[[Any], None] | None = None,
                   stop: threading.Event | None = None, *, make_plots: bool = True) -> ExperimentResult:
    """Train every cell of the grid not finished yet, then write results, summary and plots.

    on_event receives CellStarted / CellFinished and, in between, the training events of the cell's
    run (called from this thread). stop: when set, the current run stops at its next batch, the grid
    ends there and the outputs cover what finished (`ExperimentResult.stopped`). Rerunning the same
    spec into the same out_dir resumes it.
    """
    spec.validate()
    out_dir = Path(out_dir)
    runs_dir = out_dir / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "experiment.json", json.dumps(spec.to_dict(), indent=2) + "\n")
    runner = spec.runner or _default_runner
    emit = on_event or (lambda event: None)
    cells = spec.cells()
    total = len(cells)
    rows: list[dict] = []
    n_trained = n_reused = n_failed = 0
    stopped = False

    def flush() -> None:
        atomic_write_csv(out_dir / "results.csv", pd.DataFrame(rows, columns=RESULT_COLUMNS))

    for index, cell in enumerate(cells):
        config = spec.config_for(cell, runs_dir)
        run_dir = runs_dir / cell.name
        if stop is not None and stop.is_set():
            stopped = True
            break
        finished = read_finished_run(run_dir)
        if finished is not None:
            diffs = _config_differences(run_dir, config)
            if diffs:
                raise ConfigError(f"a finished run with other settings is in the way ({'; '.join(diffs)}); "
                                  "use another output folder or delete that run", run_dir)
            row = _row_from_run_json(cell, run_dir, finished)
            rows.append(row)
            n_reused += 1
            flush()
            emit(CellFinished(index, total, cell, "reused", row, "finished earlier; not trained again"))
            continue
        if run_dir.exists():
            shutil.rmtree(run_dir)  # an unfinished run of this cell: start it again from scratch
        emit(CellStarted(index, total, cell, run_dir))
        try:
            result = runner(config, on_event=emit, stop=stop)
        except SMMTError:
            flush()
            raise
        except Exception as error:  # a crash inside one run: record it, go on with the grid
            message = f"{type(error).__name__}: {error}".splitlines()[0]
            row = _result_row(cell, "failed", run_dir, None, error=message)
            rows.append(row)
            n_failed += 1
            flush()
            emit(CellFinished(index, total, cell, "failed", row, message))
            continue
        actual_dir = Path(getattr(result, "run_dir", run_dir) or run_dir)
        status = "stopped" if getattr(result, "stopped_early", False) else "finished"
        row = _result_row(cell, status, actual_dir, getattr(result, "test_metrics", None),
                          getattr(result, "energy_kwh", None), getattr(result, "duration_s", None))
        rows.append(row)
        flush()
        emit(CellFinished(index, total, cell, status, row))
        if status == "stopped":
            stopped = True
            break
        n_trained += 1

    results = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    summary, made = write_outputs(spec, out_dir, results, make_plots)
    return ExperimentResult(
        out_dir=out_dir, results=results, summary=summary, results_csv=out_dir / "results.csv",
        summary_csv=out_dir / "summary.csv", summary_md=out_dir / "summary.md", plots=made,
        n_trained=n_trained, n_reused=n_reused, n_failed=n_failed, stopped=stopped,
    )


def load_results(out_dir: str | Path) -> pd.DataFrame:
    """The results.csv of an experiment folder (SMMTError when missing or unreadable)."""
    path = Path(out_dir) / "results.csv"
    try:
        return pd.read_csv(path, keep_default_na=True)
    except FileNotFoundError:
        raise SMMTError("no results.csv here; run `smmt experiment` into this folder first", Path(out_dir)) from None
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise SMMTError(f"cannot read the results table: {error}", path) from None


__all__ = [
    "ExperimentSpec", "ExperimentCell", "ExperimentResult", "CellStarted", "CellFinished", "run_experiment",
    "summarise", "summary_markdown", "energy_table", "write_outputs", "read_finished_run", "test_set_fingerprint",
    "load_results", "MASKING_VARIANTS", "RESULT_COLUMNS",
]
