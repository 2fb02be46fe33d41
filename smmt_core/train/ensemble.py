"""Seed ensembles: N models of one recipe on the same persons, predicting as one (mean probability).

Why: one model's result moves with its seed (initialisation, batch order, masking) by about as
much as the differences a reader cares about; the paper reports 5 seeds. An ensemble averages
that noise out of the prediction itself, and the spread of its members says how much the
prediction depended on the seed.

An ensemble run folder:

    ENSEMBLE/run.json         kind "ensemble", status, members, test metrics of the mean
                              probability (with CIs, Brier, ECE), the members' spread
    ENSEMBLE/config.json      the recipe (the first member's seed)
    ENSEMBLE/split.csv        the persons' split, the same for every member
    ENSEMBLE/predictions.csv  test persons: mean probability, and its SD over the members
    ENSEMBLE/members/seed-S/  one complete run folder per member (seeds S, S+1, …)

Every member uses the split of the first seed (`split_seed`), so they are trained, validated and
tested on the same persons and their probabilities can be averaged person by person.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from smmt_core.train import events as ev
from smmt_core.train.events import RunResult
from smmt_core.train.run_folder import BEST_METADATA, ENSEMBLE_KIND, MEMBERS_DIR, RunSummary
from smmt_core.train.run_record import RunRecord, default_run_name, utc_now


def member_seeds(config, n_members: int) -> list[int]:
    return [config.optim.seed + i for i in range(n_members)]


def train_ensemble(config, n_members: int, train_member: Callable[..., RunResult], on_event=None,
                   stop: threading.Event | None = None) -> RunResult:
    """Train `n_members` runs of `config` (seeds seed, seed+1, …) on one split; score their mean.

    `train_member(config, on_event=, stop=)` trains one member: the trainer passes its own single-run
    entry, so that this module, which the trainer dispatches to, does not import the trainer back.

    Events are the members' own, one run after the other, except that the members' RunFinished
    are held back: one RunFinished, for the ensemble's folder, ends it (a window that opens the
    finished model opens the ensemble). A stop ends the member in progress as a single run would
    and starts no further member; the ensemble is then "stopped" and made of the members that
    have a best checkpoint.
    """
    def member_event(event) -> None:
        if on_event is not None and not isinstance(event, ev.RunFinished):
            on_event(event)

    stop = stop or threading.Event()
    started = time.perf_counter()
    name = config.run.run_name or "ensemble-" + default_run_name(config.model.variant, config.data.fraction,
                                                                  config.optim.seed)
    record = RunRecord.create(config.run.out or "runs", name)
    split_seed = config.data.split_seed if config.data.split_seed is not None else config.optim.seed
    record.write_config(config)
    summary = RunSummary(kind=ENSEMBLE_KIND, run_name=record.run_dir.name, created=utc_now(), status="running",
                         n_members=n_members, members=[], config=config.to_dict(), seed=config.optim.seed,
                         split_seed=split_seed, classes=list(config.data.classes))
    record.write_summary(summary)
    results: list[RunResult] = []
    try:
        for seed in member_seeds(config, n_members):
            if stop.is_set():
                break
            member = config.updated(seed=seed, split_seed=split_seed, out=str(record.run_dir / MEMBERS_DIR),
                                    run_name=f"seed-{seed}", ensemble=1)
            result = train_member(member, on_event=member_event, stop=stop)
            results.append(result)
            summary.members.append(f"{MEMBERS_DIR}/{result.run_dir.name}")
            record.write_summary(summary)
            if result.stopped_early:
                break
    except BaseException as error:
        summary.update(status="failed" if not isinstance(error, KeyboardInterrupt) else "stopped",
                       error=" ".join(str(error).split()) or type(error).__name__, updated=utc_now())
        record.write_summary(summary)
        raise
    finished = [r for r in results if (r.run_dir / BEST_METADATA).is_file()]
    test_metrics: dict = {}
    if finished:
        first = RunRecord(finished[0].run_dir)
        record.write_split(first.split())
        member_summary = first.run_summary()
        summary.update({k: member_summary.get(k) for k in ("data", "synthetic", "features", "split", "versions")
                        if k in member_summary})
        table, test_metrics = score_members([r.run_dir for r in finished], list(config.data.classes), config.optim.seed)
        if len(table):
            record.write_predictions(table)
        summary.member_test_metrics = {r.run_dir.name: _scalars(r.test_metrics) for r in finished}
    energy = [r.energy_kwh for r in results if r.energy_kwh is not None]
    stopped = stop.is_set() or len(finished) < n_members
    summary.update(status="stopped" if stopped else "finished", test_metrics=test_metrics,
                   energy={"energy_kwh": float(sum(energy)) if energy else None},
                   duration_s=time.perf_counter() - started, finished=utc_now(), updated=utc_now())
    record.write_summary(summary)
    if on_event is not None:
        on_event(ev.RunFinished(run_dir=record.run_dir, stopped_early=stopped, test_metrics=test_metrics,
                                energy_kwh=float(sum(energy)) if energy else 0.0,
                                duration_s=time.perf_counter() - started))
    return RunResult(run_dir=record.run_dir, test_metrics=test_metrics,
                     energy_kwh=float(sum(energy)) if energy else None, duration_s=time.perf_counter() - started,
                     stopped_early=stopped, best_epoch=None, energy=summary.energy)


def score_members(run_dirs: list[Path], classes: list[str], seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """(per-person table of the mean probability and its spread, test metrics with CIs) of members."""
    from smmt_core.train.metrics import bootstrap_person_ci, compute_metrics

    tables = [RunRecord(d).predictions().sort_values("subject_id").reset_index(drop=True) for d in run_dirs]
    columns = [f"p_{c}" for c in classes]
    persons = tables[0]["subject_id"].astype(str).tolist()
    if any(t["subject_id"].astype(str).tolist() != persons for t in tables[1:]):
        raise ValueError("ensemble members were tested on different persons")
    stacked = np.stack([t[columns].to_numpy(dtype=float) for t in tables])  # (members, persons, classes)
    mean = stacked.mean(0)
    table = pd.DataFrame({"subject_id": persons, "label": tables[0]["label"].astype(str)})
    table["prediction"] = [classes[i] for i in mean.argmax(1)]
    for j, c in enumerate(classes):
        table[f"p_{c}"] = mean[:, j]
    table["spread"] = stacked[:, np.arange(len(persons)), mean.argmax(1)].std(0) if len(tables) > 1 else 0.0
    labels = [classes.index(label) for label in table["label"]]
    metrics = compute_metrics(labels, mean, classes)
    metrics["ci95"] = bootstrap_person_ci(table, classes, seed=seed)
    metrics["mean_member_spread"] = float(table["spread"].mean())
    return table, metrics


def _scalars(metrics: dict) -> dict:
    from smmt_core.train.metrics import scalar_metrics

    return dict(scalar_metrics(metrics or {}), ece=(metrics or {}).get("ece"), brier=(metrics or {}).get("brier"))


def member_dirs(run_dir: str | Path) -> list[Path]:
    """The member run folders of an ensemble that can predict (a best checkpoint), in seed order."""
    out = []
    for relative in RunRecord(run_dir).run_summary().members or []:
        path = (Path(run_dir) / str(relative)).resolve()
        if path.parent != (Path(run_dir) / MEMBERS_DIR).resolve():
            continue  # a tampered run.json must not point outside the ensemble
        if RunRecord(path).has_best:
            out.append(path)
    return out
