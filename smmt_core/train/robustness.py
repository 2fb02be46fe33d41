"""Robustness of a trained run: how its test accuracy holds up when modalities go missing.

Why: SMMT's claim is that masking during training makes the model tolerate incomplete data. A
researcher needs to see that for *their* run, on the run's own held-out test subjects:

1. every non-empty subset of {mri, clinical, categorical}: the other modalities are marked absent
   (exactly what happens to a subject that lacks them), no masking;
2. all modalities, with the model's modality masking forced on at test time at ratio r for a range
   of r (`SMMT.forward(force_mask_ratio=r)`); masking is random, so each ratio is evaluated
   `repeats` times with seeded generators of its own (never torch's global RNG, which a training
   on another thread may be drawing from) and the mean and SD are reported.

The test subjects are rebuilt from the run folder: the dataset named in config.json (or "demo")
is loaded again and the scans of the persons listed as `test` in split.csv are taken from it, so
nothing here can leak training subjects into the figures. Before evaluating, the dataset is
checked to still give the model the inputs it was trained on (every feature column, MRI): a
dataset that does not match is refused with the difference named. Scores are per person (soft
vote over a person's scans, `smmt_core.train.metrics.soft_vote`), like every figure the trainer
reports.

The returned DataFrame has one row per (modalities, mask_ratio): the subset rows at mask ratio 0
and the sweep rows with all modalities (`ALL_NAME`); the all-modality row at ratio 0 is shared by
both views. Columns: modalities, mask_ratio, accuracy, balanced_accuracy, n_subjects, plus
accuracy_sd, balanced_accuracy_sd (over repeats; 0 for deterministic rows), repeats.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from smmt_core.batch import FeatureSchema
from smmt_core.data.subject import ALL_MODALITIES, Modality, Subject
from smmt_core.errors import ConfigError, DataError
from smmt_core.modalities import ALL_NAME, DEFAULT_MASK_RATIOS, modality_subsets, subset_name

COLUMNS = ["modalities", "mask_ratio", "accuracy", "balanced_accuracy", "n_subjects",
           "accuracy_sd", "balanced_accuracy_sd", "repeats"]


def _load_test_cohort(run_dir: str | Path, data: str, adnimerge: str | None = None, date_window_days: int = 180):
    """(cohort, test scans): the dataset as the trainer loads it and the scans of the run's test persons."""
    from smmt_core.data.loaders import load_cohort
    from smmt_core.data.splits import Split
    from smmt_core.train.run_folder import SPLIT_FILE
    from smmt_core.train.run_record import RunRecord

    split_path = Path(run_dir) / SPLIT_FILE
    frame = RunRecord(run_dir).split()
    try:
        split = Split.from_frame(frame)
    except DataError as error:
        raise DataError(error.problem, split_path) from None
    if not split.test:
        raise DataError("split table lists no test subjects", split_path)
    if str(data).strip().lower() != "demo" and not Path(data).expanduser().exists():
        raise DataError("the run's dataset is not there any more; pass its current location (--data)", data)
    cohort = load_cohort(str(data), adnimerge=adnimerge, date_window_days=date_window_days)  # as the trainer
    in_dataset = {s.subject_id for s in cohort.subjects}
    unknown = [pid for pid in split.test if pid not in in_dataset]
    if unknown:
        shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        raise DataError(f"{len(unknown)} test subject(s) of the run are not in the dataset {data}: {shown}; "
                        "is this the dataset the run was trained on?", split_path)
    return cohort, split.select(cohort.subjects, "test")


def data_schema(loaded, subjects: Sequence[Subject]) -> tuple[FeatureSchema, list[str]]:
    """(the schema these subjects give the run's model, the feature columns they lack).

    The run's fitted encoder applied to the subjects' columns: a feature the run learned from
    (it had values in training) counts only if some subject has that column; MRI counts only if
    some subject has a T1. Compare with the run's schema (`check_data_schema`) before evaluating:
    a missing column would otherwise be silently fed to the model as "missing" for everybody.
    """
    encoder = loaded.encoder
    columns = {name for s in subjects for name in (*s.numeric, *s.categorical)}
    # Features with no value in the training subjects were always "missing" for the model: their
    # absence from the data changes nothing (the encoder records them in its warnings).
    never_seen = {name for name in encoder.features
                  if any(w.startswith(f"{name} has no values") for w in encoder.warnings)}
    never_seen |= {name for name in encoder.categorical_names if not encoder.categories.get(name)}
    lacking = [name for name in encoder.features if name not in columns and name not in never_seen]
    has_mri = any(s.t1_path is not None for s in subjects)
    schema = FeatureSchema(
        numeric=[n for n in encoder.numeric_names if n not in lacking],
        categorical={k: list(encoder.categories[k]) for k in encoder.categorical_names if k not in lacking},
        mri_shape=tuple(loaded.preprocess.mri_shape) if has_mri and loaded.schema.mri_shape is not None else None,
        classes=list(loaded.classes),
        mri_volume=loaded.schema.mri_volume if has_mri and loaded.schema.mri_shape is not None else None,
    )
    return schema, lacking


class TestSetEvaluator:
    """Holds the test batches in memory and scores the model on them with modalities switched off."""

    def __init__(self, loaded, subjects: list[Subject], batch_size: int, cache):
        from smmt_core.data.dataset import SubjectDataset, collate

        self.model = loaded.model.eval()
        self.classes = list(loaded.classes)
        self.device = next(self.model.parameters()).device
        dataset = SubjectDataset(subjects, loaded.encoder, self.classes, loaded.preprocess, cache)
        items = [dataset[i] for i in range(len(dataset))]
        keep = [i for i, item in enumerate(items) if int(item["label"]) >= 0]
        if not keep:
            raise DataError("none of the run's test subjects has a known label of this run's classes", loaded.run_dir)
        items = [items[i] for i in keep]
        self.subjects = [subjects[i] for i in keep]  # the scans scored, in row order
        self.person_ids = [subjects[i].subject_id for i in keep]
        self.labels = np.array([int(item["label"]) for item in items], dtype=np.int64)
        self.batches = [collate(items[i:i + batch_size])[0].to(self.device) for i in range(0, len(items), batch_size)]

    @torch.inference_mode()
    def probabilities(self, absent: Sequence[Modality] = (), force_mask_ratio: float | None = None,
                      generator: torch.Generator | None = None) -> np.ndarray:
        """(scans, classes) class probabilities with `absent` marked absent for every scan."""
        probs = []
        for inputs in self.batches:
            if absent:
                inputs = inputs.without(*absent)
            logits = self.model(inputs, force_mask_ratio=force_mask_ratio, generator=generator)
            probs.append(torch.softmax(logits.float(), dim=-1).cpu().numpy())
        return np.concatenate(probs)

    def score(self, absent: Sequence[Modality], force_mask_ratio: float | None,
              generator: torch.Generator | None = None) -> tuple[float, float, int]:
        from smmt_core.train.metrics import compute_metrics, soft_vote

        prob = self.probabilities(absent, force_mask_ratio, generator)
        ids, labels, prob = soft_vote(self.person_ids, self.labels, prob)
        metrics = compute_metrics(labels, prob, self.classes)
        return metrics["accuracy"], metrics["balanced_accuracy"], len(ids)

    def majority_rate(self) -> float:
        from smmt_core.train.metrics import soft_vote

        _, labels, _ = soft_vote(self.person_ids, self.labels, np.zeros((len(self.labels), len(self.classes))))
        return float(np.bincount(labels, minlength=len(self.classes)).max() / len(labels))


def evaluate_robustness(
    run_dir: str | Path,
    mask_ratios: Sequence[float] = DEFAULT_MASK_RATIOS,
    on_progress: Callable[[int, int], None] | None = None,
    on_row: Callable[[dict], None] | None = None,
    stop: threading.Event | None = None,
    *,
    repeats: int = 5,
    seed: int = 0,
    device: str = "cpu",
    batch_size: int = 32,
    data: str | None = None,
    cache=None,
) -> pd.DataFrame:
    """Accuracy and balanced accuracy of the run's best model on its test set, per modality subset
    (mask ratio 0) and per test-time mask ratio (all modalities). See the module docstring.

    on_progress(done, total) is called after each evaluation pass, on_row(row) with each finished
    row (so a view can draw the bars as they come). stop: when set, evaluation ends
    after the current pass and the rows computed so far are returned with `attrs["stopped"] = True`.
    data: the dataset's location when it has moved since training (default: the run's config.data).
    cache: an MRICache (default: the user's cache, so the training run's preprocessing is reused).
    `attrs` also holds run_dir, classes and majority_rate (accuracy of always guessing the larger class).
    A seed ensemble is scored through its first member (same persons, same recipe); `attrs["note"]`
    says so.
    """
    ratios = sorted({float(r) for r in mask_ratios})
    if any(not 0.0 <= r < 1.0 for r in ratios):
        raise ConfigError(f"mask ratios must be in [0, 1), got {ratios}")
    if repeats < 1:
        raise ConfigError(f"repeats must be at least 1, got {repeats}")
    if batch_size < 1:
        raise ConfigError(f"batch size must be at least 1, got {batch_size}")
    run_dir, note = scored_run(run_dir)
    frame = _evaluate(run_dir, ratios, on_progress, stop, repeats, seed, device, batch_size, data, cache, on_row)
    if note:
        frame.attrs["note"] = note
    return frame


def scored_run(run_dir) -> tuple[Path, str | None]:
    """The run folder an evaluation loads, and a note when it is not `run_dir` itself: a seed
    ensemble is scored through its first member (same persons, same recipe)."""
    from smmt_core.train.run_record import RunRecord

    if not RunRecord(run_dir).is_ensemble:
        return Path(run_dir), None
    from smmt_core.train.ensemble import member_dirs

    members = member_dirs(run_dir)
    if not members:
        from smmt_core.errors import CheckpointError

        raise CheckpointError("this ensemble has no member with a best checkpoint", run_dir)
    return members[0], f"an ensemble of {len(members)}: scored through its first member, {members[0].name}"


def test_set_evaluator(run_dir, data, device, batch_size: int, cache) -> tuple[object, object, TestSetEvaluator]:
    """(the run loaded, the cohort read, its test persons ready to score): the persons listed as
    test in the run's split.csv, read from `data` (None: the run's dataset), checked against the
    model's schema."""
    from smmt_core.data.preprocess import MRICache
    from smmt_core.train.checkpoints import check_data_schema, load_run

    loaded = load_run(run_dir, device=device)
    stored = loaded.config.data
    cohort, subjects = _load_test_cohort(run_dir, data if data is not None else stored.dataset,
                                         stored.adnimerge, stored.date_window_days)
    found, lacking = data_schema(loaded, subjects)
    check_data_schema(loaded.schema, found, cohort.root, missing_columns=lacking)
    return loaded, cohort, TestSetEvaluator(loaded, subjects, batch_size, cache if cache is not None else MRICache())


def _evaluate(run_dir, ratios, on_progress, stop, repeats, seed, device, batch_size, data, cache,
              on_row=None) -> pd.DataFrame:
    loaded, _cohort, evaluator = test_set_evaluator(run_dir, data, device, batch_size, cache)

    subsets = modality_subsets()
    sweep = [r for r in ratios if r > 0]
    total = len(subsets) + len(sweep) * repeats
    done = 0
    rows: list[dict] = []
    stopped = False

    def progress() -> None:
        if on_progress is not None:
            on_progress(done, total)

    def add_row(row: dict) -> None:
        rows.append(row)
        if on_row is not None:
            on_row(dict(row))

    def should_stop() -> bool:
        return stop is not None and stop.is_set()

    progress()
    for subset in subsets:
        if should_stop():
            stopped = True
            break
        absent = [m for m in ALL_MODALITIES if m not in subset]
        acc, bacc, n = evaluator.score(absent, None)
        add_row(dict(modalities=subset_name(subset), mask_ratio=0.0, accuracy=acc, balanced_accuracy=bacc,
                         n_subjects=n, accuracy_sd=0.0, balanced_accuracy_sd=0.0, repeats=1))
        done += 1
        progress()
    for ratio in sweep:
        if stopped:
            break
        scores = []
        for rep in range(repeats):
            if should_stop():
                stopped = True
                break
            # A generator of its own, seeded per (seed, ratio, repeat): the same call gives the same
            # masks, and torch's global RNG (which a training on another thread draws from) is untouched.
            generator = torch.Generator(device=evaluator.device)
            generator.manual_seed(seed * 100_003 + rep * 1_009 + int(round(ratio * 1000)))
            scores.append(evaluator.score([], ratio, generator))
            done += 1
            progress()
        if len(scores) < repeats:
            break  # a partial set of repeats is not reported as if it were complete
        acc = np.array([s[0] for s in scores])
        bacc = np.array([s[1] for s in scores])
        add_row(dict(modalities=ALL_NAME, mask_ratio=ratio, accuracy=float(acc.mean()),
                         balanced_accuracy=float(bacc.mean()), n_subjects=scores[0][2],
                         accuracy_sd=float(acc.std(ddof=1)) if repeats > 1 else 0.0,
                         balanced_accuracy_sd=float(bacc.std(ddof=1)) if repeats > 1 else 0.0, repeats=repeats))

    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame.attrs.update(run_dir=str(run_dir), classes=list(evaluator.classes), stopped=stopped,
                       majority_rate=evaluator.majority_rate(), synthetic=bool(getattr(loaded, "synthetic", False)))
    return frame


def robustness_table(frame: pd.DataFrame) -> str:
    """A plain-text table of the robustness rows, for the terminal."""
    lines = [f"{'modalities':<28} {'mask':>5} {'accuracy':>14} {'balanced acc.':>14} {'subjects':>8}"]
    for _, r in frame.iterrows():
        acc = f"{r['accuracy'] * 100:.1f}"
        bacc = f"{r['balanced_accuracy'] * 100:.1f}"
        if r["repeats"] > 1:
            acc += f" ± {r['accuracy_sd'] * 100:.1f}"
            bacc += f" ± {r['balanced_accuracy_sd'] * 100:.1f}"
        lines.append(f"{r['modalities']:<28} {r['mask_ratio']:>5.2f} {acc:>14} {bacc:>14} {int(r['n_subjects']):>8}")
    return "\n".join(lines)
