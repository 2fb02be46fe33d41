"""Robustness of a trained run: how its test accuracy holds up when modalities go missing.

Why: SMMT's claim is that masking during training makes the model tolerate incomplete data. A
researcher needs to see that for *their* run, on the run's own held-out test subjects:

1. every non-empty subset of {mri, clinical, categorical}: the other modalities are marked absent
   (exactly what happens to a subject that lacks them), no masking;
2. all modalities, with the model's modality masking forced on at test time at ratio r for a range
   of r (`SMMT.forward(force_mask_ratio=r)`); masking is random, so each ratio is evaluated
   `repeats` times with seeded generators and the mean and SD are reported.

The test subjects are rebuilt from the run folder: the dataset named in config.json (or "demo")
is loaded again and the scans listed as `test` in split.csv are taken from it, so nothing here can
leak training subjects into the figures. Scores are per person (soft vote over a person's scans,
`smmt_core.train.metrics.soft_vote`), like every figure the trainer reports.

The returned DataFrame has one row per (modalities, mask_ratio): the subset rows at mask ratio 0
and the sweep rows with all modalities (`ALL_NAME`); the all-modality row at ratio 0 is shared by
both views. Columns: modalities, mask_ratio, accuracy, balanced_accuracy, n_subjects, plus
accuracy_sd, balanced_accuracy_sd (over repeats; 0 for deterministic rows), repeats.
"""

from __future__ import annotations

import itertools
import threading
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from smmt_core.data.subject import ALL_MODALITIES, Modality, Subject
from smmt_core.errors import ConfigError, DataError

DEFAULT_MASK_RATIOS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
ALL_NAME = "+".join(m.value for m in ALL_MODALITIES)  # "mri+clinical+categorical"
COLUMNS = ["modalities", "mask_ratio", "accuracy", "balanced_accuracy", "n_subjects",
           "accuracy_sd", "balanced_accuracy_sd", "repeats"]


def modality_subsets() -> list[tuple[Modality, ...]]:
    """Every non-empty subset of the three modalities, largest first, in the canonical order."""
    out = []
    for size in range(len(ALL_MODALITIES), 0, -1):
        out.extend(itertools.combinations(ALL_MODALITIES, size))
    return out


def subset_name(modalities: Sequence[Modality]) -> str:
    return "+".join(Modality(m).value for m in modalities)


def load_test_subjects(run_dir: str | Path, data: str) -> list[Subject]:
    """The run's test scans, in split.csv order, taken from a fresh load of `data` (a path or "demo").

    DataError when split.csv is missing or malformed, lists no test scans, or names scans that the
    dataset does not hold (e.g. a different dataset than the run was trained on, or one that moved).
    """
    from smmt_core.train.config import TrainConfig
    from smmt_core.train.trainer import load_training_cohort

    split_path = Path(run_dir) / "split.csv"
    try:
        split = pd.read_csv(split_path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise DataError("split.csv is missing: cannot tell which subjects were held out for testing", split_path) from None
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise DataError(f"cannot read the split table ({error})", split_path) from None
    missing_cols = {"subject_id", "part"} - set(split.columns)
    if missing_cols:
        raise DataError(f"split table lacks column(s) {', '.join(sorted(missing_cols))}", split_path)
    if "session" not in split.columns:
        split["session"] = ""
    test = split[split["part"].str.strip().str.lower() == "test"]
    if test.empty:
        raise DataError("split table lists no test subjects", split_path)
    if str(data).strip().lower() != "demo" and not Path(data).expanduser().exists():
        raise DataError("the run's dataset is not there any more; pass its current location (--data)", data)
    cohort = load_training_cohort(TrainConfig(data=str(data)))  # same loading as the trainer
    by_key = {(s.subject_id, s.session or ""): s for s in cohort.subjects}
    subjects, unknown = [], []
    for sid, session in zip(test["subject_id"], test["session"]):
        subject = by_key.get((sid, session or ""))
        if subject is None:
            unknown.append(f"{sid}/{session}" if session else sid)
        else:
            subjects.append(subject)
    if unknown:
        shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        raise DataError(f"{len(unknown)} test scan(s) of the run are not in the dataset {data}: {shown}; "
                        "is this the dataset the run was trained on?", split_path)
    return subjects


class _Evaluator:
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
        self.person_ids = [subjects[i].subject_id for i in keep]
        self.labels = np.array([int(item["label"]) for item in items], dtype=np.int64)
        self.batches = [collate(items[i:i + batch_size])[0].to(self.device) for i in range(0, len(items), batch_size)]

    @torch.inference_mode()
    def score(self, absent: Sequence[Modality], force_mask_ratio: float | None) -> tuple[float, float, int]:
        from smmt_core.train.metrics import compute_metrics, soft_vote

        probs = []
        for inputs in self.batches:
            if absent:
                inputs = inputs.without(*absent)
            logits = self.model(inputs, force_mask_ratio=force_mask_ratio)
            probs.append(torch.softmax(logits.float(), dim=-1).cpu().numpy())
        ids, labels, prob = soft_vote(self.person_ids, self.labels, np.concatenate(probs))
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

    on_progress(done, total) is called after each evaluation pass. stop: when set, evaluation ends
    after the current pass and the rows computed so far are returned with `attrs["stopped"] = True`.
    data: the dataset's location when it has moved since training (default: the run's config.data).
    cache: an MRICache (default: the user's cache, so the training run's preprocessing is reused).
    `attrs` also holds run_dir, classes and majority_rate (accuracy of always guessing the larger class).
    """
    ratios = sorted({float(r) for r in mask_ratios})
    if any(not 0.0 <= r < 1.0 for r in ratios):
        raise ConfigError(f"mask ratios must be in [0, 1), got {ratios}")
    if repeats < 1:
        raise ConfigError(f"repeats must be at least 1, got {repeats}")
    if batch_size < 1:
        raise ConfigError(f"batch size must be at least 1, got {batch_size}")
    cuda = [torch.device(device).index or 0] if str(device).startswith("cuda") else []
    # Rebuilding the model and the masking draws consume random numbers: keep the caller's RNG as it was.
    with torch.random.fork_rng(devices=cuda):
        return _evaluate(run_dir, ratios, on_progress, stop, repeats, seed, device, batch_size, data, cache)


def _evaluate(run_dir, ratios, on_progress, stop, repeats, seed, device, batch_size, data, cache) -> pd.DataFrame:
    from smmt_core.data.preprocess import MRICache
    from smmt_core.train.checkpoints import load_run

    loaded = load_run(run_dir, device=device)
    subjects = load_test_subjects(run_dir, data if data is not None else loaded.config.data)
    evaluator = _Evaluator(loaded, subjects, batch_size, cache if cache is not None else MRICache())

    subsets = modality_subsets()
    sweep = [r for r in ratios if r > 0]
    total = len(subsets) + len(sweep) * repeats
    done = 0
    rows: list[dict] = []
    stopped = False

    def progress() -> None:
        if on_progress is not None:
            on_progress(done, total)

    def should_stop() -> bool:
        return stop is not None and stop.is_set()

    progress()
    for subset in subsets:
        if should_stop():
            stopped = True
            break
        absent = [m for m in ALL_MODALITIES if m not in subset]
        acc, bacc, n = evaluator.score(absent, None)
        rows.append(dict(modalities=subset_name(subset), mask_ratio=0.0, accuracy=acc, balanced_accuracy=bacc,
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
            # A fixed seed per (seed, ratio, repeat): the same call gives the same masks.
            torch.manual_seed(seed * 100_003 + rep * 1_009 + int(round(ratio * 1000)))
            scores.append(evaluator.score([], ratio))
            done += 1
            progress()
        if len(scores) < repeats:
            break  # a partial set of repeats is not reported as if it were complete
        acc = np.array([s[0] for s in scores])
        bacc = np.array([s[1] for s in scores])
        rows.append(dict(modalities=ALL_NAME, mask_ratio=ratio, accuracy=float(acc.mean()),
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
