"""Missing modalities, for every method: the run's model and the simple baselines on the same persons.

Why: SMMT's claim is that it copes when a modality is missing. That claim means something only
beside what a simple method does with the same incomplete persons, so this module scores the
run's model and the baselines (`smmt_core.baselines`) on the run's own test persons with a share
p of them lacking one modality, for several p.

How, and why so:
- Who loses a modality is drawn once per split, not per method: the test persons (sorted ids)
  are permuted by a generator seeded with (the run's split seed, the modality), and the first
  round(p * n) lose it. So every method sees the same incomplete persons, the shares are nested
  (whoever lacks the MRI at 20 % lacks it at 40 % too: the curves differ by persons added, not
  by a new draw), and a split gives the same draw every time. A person losing a modality loses
  it in every scan. The share is of all test persons; one who lacks the modality in the data
  lacks it at every share (column `n_missing` counts the persons without it, all told).
- "mri" removes the T1; "clinical" removes every non-image column (the model's clinical and
  categorical modalities; all of a baseline's clinical columns).
- The model is scored through its own missing-modality path (the modality marked absent, as for
  a subject who lacks it; `train.robustness`). The baselines are fitted again on the run's
  training persons (imputer included) and predict the test persons with the modality's columns
  missing; a person with none of a baseline's inputs gets its training prior, counted in
  `n_prior` (why: the baselines module docstring).
- Per person (soft vote over scans), balanced accuracy and ROC AUC with 95 % bootstrap CIs over
  persons; every method of one (modality, share) is resampled with the same seed, so the CIs
  are over the same resamples.
- A seed ensemble is scored through its first member, as `evaluate_robustness` does.
"""

from __future__ import annotations

import math
import threading
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from smmt_core.errors import ConfigError, SMMTError
from smmt_core.modalities import Modality

# What losing each modality means for the model (its modalities marked absent).
MISSING_MODALITIES: dict[str, tuple[Modality, ...]] = {
    "mri": (Modality.MRI,),
    "clinical": (Modality.CLINICAL, Modality.CATEGORICAL),
}
DEFAULT_SHARES = (0.0, 0.2, 0.4, 0.6)
MODEL = "model"  # in `methods`: the run's own model
COLUMNS = ["method", "kind", "modality", "share", "n_persons", "n_missing", "n_prior",
           "balanced_accuracy", "balanced_accuracy_lo", "balanced_accuracy_hi",
           "roc_auc", "roc_auc_lo", "roc_auc_hi", "accuracy"]


def parse_shares(shares: Sequence[float]) -> list[float]:
    """Sorted distinct shares in [0, 1] (ConfigError otherwise)."""
    values = sorted({float(p) for p in shares})
    if not values or any(not (0.0 <= p <= 1.0) or not math.isfinite(p) for p in values):
        raise ConfigError(f"shares of persons missing a modality must be in [0, 1], got {list(shares)}")
    return values


def draw_missing(person_ids: Sequence[str], shares: Sequence[float], seed: int, modality: str) -> dict[float, list[str]]:
    """{share: the persons who lose `modality`}: nested across shares, the same for a (seed, modality)."""
    persons = sorted(set(map(str, person_ids)))
    order = np.random.default_rng([int(seed), zlib.crc32(modality.encode())]).permutation(len(persons))
    ranked = [persons[i] for i in order]
    return {float(p): sorted(ranked[:math.floor(p * len(persons) + 0.5)]) for p in shares}


@dataclass
class MethodProbabilities:
    """One method's class probabilities per scan: with every modality, and without each one.

    no_input / no_input_without: scans that had none of the method's inputs (given the prior).
    """

    name: str
    kind: str  # "model" or "baseline"
    full: np.ndarray
    without: dict[str, np.ndarray]
    no_input: np.ndarray | None = None
    no_input_without: dict[str, np.ndarray] = field(default_factory=dict)


def score_missing_shares(methods: Sequence[MethodProbabilities], person_ids: Sequence[str], labels,
                         classes: Sequence[str], shares: Sequence[float], seed: int,
                         modalities: Sequence[str] = tuple(MISSING_MODALITIES),
                         n_resamples: int | None = None, lacking: dict[str, set] | None = None) -> pd.DataFrame:
    """One row per (method, modality, share): the share's persons (`draw_missing`) get the method's
    probabilities without the modality, the others its full ones; metrics per person with CIs.

    lacking: {modality: persons who lack it in the data already}; `n_missing` counts them with the
    drawn ones (persons without the modality, all told).

    `attrs["missing"]` holds {modality: {share: person ids}}: the persons every method lost it for.
    """
    from smmt_core.train.metrics import BOOTSTRAP_RESAMPLES, bootstrap_ci, compute_metrics, soft_vote

    shares = parse_shares(shares)
    ids = np.asarray([str(p) for p in person_ids])
    labels = np.asarray(labels, dtype=np.int64)
    drawn = {m: draw_missing(ids, shares, seed, m) for m in modalities}
    rows = []
    for method in methods:
        no_input_full = method.no_input if method.no_input is not None else np.zeros(len(ids), dtype=bool)
        for modality in modalities:
            for share in shares:
                lost = np.isin(ids, drawn[modality][share])
                prob = np.where(lost[:, None], method.without[modality], method.full)
                no_input = np.where(lost, method.no_input_without.get(modality, no_input_full), no_input_full)
                voted_ids, y, p = soft_vote(ids, labels, prob)
                metrics = compute_metrics(y, p, classes)
                ci = bootstrap_ci(y, p, classes, seed=seed, n_resamples=n_resamples or BOOTSTRAP_RESAMPLES)
                prior_persons = {pid for pid in set(ids[no_input]) if no_input[ids == pid].all()}
                row = dict(method=method.name, kind=method.kind, modality=modality, share=share,
                           n_persons=len(voted_ids), n_missing=len(set(ids[lost]) | (lacking or {}).get(modality, set())),
                           n_prior=len(prior_persons),
                           accuracy=metrics["accuracy"])
                for name in ("balanced_accuracy", "roc_auc"):
                    bounds = ci.get(name) or [math.nan, math.nan]
                    row.update({name: metrics[name], f"{name}_lo": bounds[0], f"{name}_hi": bounds[1]})
                rows.append(row)
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame.attrs.update(missing=drawn, classes=list(classes), seed=int(seed))
    return frame


def _without(subject, modality: str):
    """The scan as a subject who lacks `modality` would be (the same person, same label)."""
    if modality == "mri":
        return replace(subject, t1_path=None)
    return replace(subject, numeric={}, categorical={})


def evaluate_missing_shares(
    run_dir: str | Path,
    data: str | None = None,
    shares: Sequence[float] = DEFAULT_SHARES,
    methods: Sequence[str] | None = None,
    *,
    modalities: Sequence[str] = tuple(MISSING_MODALITIES),
    device: str = "cpu",
    batch_size: int = 32,
    cache=None,
    on_progress: Callable[[int, int], None] | None = None,
    stop: threading.Event | None = None,
    n_resamples: int | None = None,
) -> pd.DataFrame:
    """The run's model and the baselines, each with a share of the run's test persons missing one
    modality (the same persons for every method): see the module docstring.

    methods: "model" (the run's model) and baseline names; default all of them. data: the dataset's
    location if it moved since training (default: the run's). on_progress(done, total) after each
    method; stop: ends after the current method, the methods done so far are scored and
    `attrs["stopped"]` is True. A baseline the data cannot feed (e.g. lr-clinical for an MRI-only
    run) (or fails on them) is left out and named in `attrs["errors"]`. Rows: COLUMNS; `attrs` also holds run_dir,
    split_seed, missing (the drawn persons), majority_rate, synthetic and, for an ensemble, note.
    """
    from smmt_core.baselines import BASELINES, BaselineUnavailable, fit_baseline
    from smmt_core.data.preprocess import MRICache
    from smmt_core.data.splits import Split
    from smmt_core.train.robustness import scored_run, test_set_evaluator
    from smmt_core.train.run_record import RunRecord

    shares = parse_shares(shares)
    methods = list(methods) if methods is not None else [MODEL, *BASELINES]
    unknown = [m for m in methods if m != MODEL and m not in BASELINES]
    if unknown:
        raise ConfigError(f"unknown method(s) {', '.join(unknown)}; choose from {MODEL}, {', '.join(BASELINES)}")
    bad = [m for m in modalities if m not in MISSING_MODALITIES]
    if bad or not modalities:
        raise ConfigError(f"modalities to leave out: {', '.join(MISSING_MODALITIES)}; got {list(modalities)}")
    run_dir, note = scored_run(run_dir)
    cache = cache if cache is not None else MRICache()  # the model's test persons and the baselines' fits
    loaded, cohort, evaluator = test_set_evaluator(run_dir, data, device, batch_size, cache)
    config = loaded.config
    split_seed = config.data.split_seed if config.data.split_seed is not None else config.optim.seed
    split = Split.from_frame(RunRecord(run_dir).split(), seed=split_seed, fraction=config.data.fraction)
    split.classes = list(config.data.classes)
    tests = [evaluator.subjects] + [[_without(s, m) for s in evaluator.subjects] for m in modalities]

    total, done = len(methods), 0
    scored: list[MethodProbabilities] = []
    errors: dict[str, str] = {}
    stopped = False
    if on_progress is not None:
        on_progress(0, total)
    for name in methods:
        if stop is not None and stop.is_set():
            stopped = True
            break
        if name == MODEL:
            scored.append(MethodProbabilities(
                config.model.variant, "model", evaluator.probabilities(),
                {m: evaluator.probabilities(MISSING_MODALITIES[m]) for m in modalities}))
        else:
            try:
                fit = fit_baseline(name, config, split, cohort.subjects, tests, cache)
            except (BaselineUnavailable, SMMTError) as error:  # the others can still be compared
                errors[name] = str(error)
            else:
                scored.append(MethodProbabilities(
                    name, "baseline", fit.probabilities[0], dict(zip(modalities, fit.probabilities[1:])),
                    fit.no_input[0], dict(zip(modalities, fit.no_input[1:]))))
        done += 1
        if on_progress is not None:
            on_progress(done, total)
    had = {m: {s.subject_id for s in evaluator.subjects if any(s.has(x) for x in MISSING_MODALITIES[m])}
           for m in modalities}
    lacking = {m: set(evaluator.person_ids) - had[m] for m in modalities}
    frame = score_missing_shares(scored, evaluator.person_ids, evaluator.labels, evaluator.classes, shares,
                                 split_seed, modalities, n_resamples, lacking)
    frame.attrs.update(run_dir=str(run_dir), split_seed=int(split_seed), errors=errors, stopped=stopped,
                       majority_rate=evaluator.majority_rate(), synthetic=bool(loaded.synthetic))
    if note:
        frame.attrs["note"] = note
    return frame


def _ci_text(value: float, lo: float, hi: float) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    text = f"{value * 100:.1f}"
    if math.isfinite(lo) and math.isfinite(hi):
        text += f" [{lo * 100:.1f}–{hi * 100:.1f}]"
    return text


def missing_table(frame: pd.DataFrame) -> str:
    """Plain text, one line per (method, modality, share): balanced accuracy and AUC with 95 % CIs."""
    lines = [f"{'method':<22} {'missing':<9} {'share':>5} {'balanced acc. % [95% CI]':>26} "
             f"{'AUC % [95% CI]':>22} {'persons':>7} {'lacking':>7} {'prior':>5}"]
    for r in frame.itertuples(index=False):
        bacc = _ci_text(r.balanced_accuracy, r.balanced_accuracy_lo, r.balanced_accuracy_hi)
        auc = _ci_text(r.roc_auc, r.roc_auc_lo, r.roc_auc_hi)
        lines.append(f"{r.method:<22} {r.modality:<9} {r.share:>5.2f} {bacc:>26} {auc:>22} "
                     f"{int(r.n_persons):>7} {int(r.n_missing):>7} {int(r.n_prior):>5}")
    return "\n".join(lines)


def missing_json(frame: pd.DataFrame) -> dict:
    """The rows and how they were made (drawn persons, errors), JSON-ready."""
    import json

    return {
        "run": frame.attrs.get("run_dir"),
        "classes": frame.attrs.get("classes", []),
        "split_seed": frame.attrs.get("split_seed"),
        "synthetic": frame.attrs.get("synthetic", False),
        "majority_rate": frame.attrs.get("majority_rate"),
        "missing_persons": {m: {f"{p:g}": ids for p, ids in d.items()}
                            for m, d in frame.attrs.get("missing", {}).items()},
        "errors": frame.attrs.get("errors", {}),
        "note": frame.attrs.get("note"),
        "rows": json.loads(frame.to_json(orient="records")),
    }


def grid_missing(spec, out_dir: Path, results: pd.DataFrame, on_progress: Callable[[str], None] | None = None,
                 stop: threading.Event | None = None) -> pd.DataFrame:
    """The missing-data comparison for every finished model run of an experiment grid: each run
    beside the grid's baselines, fitted again on that run's own training persons.

    Writes out_dir/missing.csv (one row per run, method, modality and share) and appends a section
    to summary.md: per method, modality and share, the mean ± SD of balanced accuracy over the runs.
    """
    from smmt_core.fileio import atomic_write_text

    runs = results[(results["kind"] == "model") & results["status"].isin(("finished", "reused"))]
    frames = []
    for i, row in enumerate(runs.itertuples(index=False)):
        if stop is not None and stop.is_set():
            break
        if on_progress is not None:
            on_progress(f"missing data {i + 1}/{len(runs)}: {row.cell}")
        frame = evaluate_missing_shares(row.run_dir, data=spec.data_location(), shares=spec.test_missing,
                                        methods=[MODEL, *spec.baselines])
        frame.insert(0, "cell", row.cell)
        for column in ("variant", "fraction", "seed", "mask_ratio", "fold", "split_seed"):
            frame.insert(1, column, getattr(row, column))
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["cell", *COLUMNS])
    atomic_write_text(out_dir / "missing.csv", table.to_csv(index=False))
    if frames:
        summary = out_dir / "summary.md"
        text = summary.read_text(encoding="utf-8") if summary.is_file() else ""
        atomic_write_text(summary, text.rstrip("\n") + "\n\n" + grid_missing_markdown(table) + "\n")
    return table


def grid_missing_markdown(table: pd.DataFrame) -> str:
    """A summary.md section: balanced accuracy (mean ± SD over runs) per method × modality × share."""
    # the model's rows are named by variant; baselines by name; "method" already says which
    grouped = table.groupby(["method", "modality", "share"], sort=False)["balanced_accuracy"]
    stats = grouped.agg(["mean", "std", "count"]).reset_index()
    shares = sorted(stats["share"].unique())
    lines = ["## Missing modalities: the models and the baselines on the same persons", "",
             "Balanced accuracy % (mean ± SD over runs) with that share of each run's test persons lacking the "
             "modality; the same persons for every method of a run (drawn from its split seed). Baselines are "
             "fitted again on each run's training persons; an image-only baseline gives a person without an MRI "
             "its training prior. Per-run rows with 95 % CIs: missing.csv.", "",
             "| method | lacking | " + " | ".join(f"{p * 100:g} %" for p in shares) + " | runs |",
             "|---|---|" + "---|" * len(shares) + "---|"]
    for (method, modality), group in stats.groupby(["method", "modality"], sort=False):
        cells = []
        for p in shares:
            hit = group[group["share"] == p]
            if hit.empty or not math.isfinite(hit["mean"].iloc[0]):
                cells.append("–")
                continue
            sd = hit["std"].iloc[0]
            cells.append(f"{hit['mean'].iloc[0] * 100:.1f}" + (f" ± {sd * 100:.1f}" if math.isfinite(sd) else ""))
        lines.append(f"| {method} | {modality} | " + " | ".join(cells) + f" | {int(group['count'].max())} |")
    return "\n".join(lines)
