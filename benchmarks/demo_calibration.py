"""What a simple classifier can reach on the SYNTHETIC demo cohort (AD vs CN).

Why: the demo cohort must behave like a real one -- near-perfect with the circular scores that
define the diagnosis, clearly harder without them, and with real signal in the MRI -- or results
shown in the app would teach the wrong lesson. This script measures it with scikit-learn
logistic regression and subject-level stratified cross-validation on four feature sets:

  circular        MMSE, CDGLOBAL, FAQ
  non-circular    AGE, PTEDUCAT, PTGENDER, APOE4
  hippocampus     hippocampal volume measured from the images alone: tissue fraction (intensity
                  between the image's CSF and white-matter levels) summed over the template
                  hippocampal grey-matter region (demo_anatomy.measure_hippocampus)
  truth           the true hippocampal volume the generator used (an upper bound, not a feature)

Run:  python benchmarks/demo_calibration.py --subjects 100 --seed 0
Each cohort has one scan per subject, so K-fold on rows is K-fold on subjects.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from sklearn.model_selection import RepeatedStratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from smmt_core.data.demo import make_demo_cohort  # noqa: E402
from smmt_core.data.demo_anatomy import measure_hippocampus  # noqa: E402

FEATURE_SETS = {
    "circular (MMSE, CDGLOBAL, FAQ)": ["MMSE", "CDGLOBAL", "FAQ"],
    "non-circular (AGE, PTEDUCAT, PTGENDER, APOE4)": ["AGE", "PTEDUCAT", "female", "APOE4"],
    "hippocampus measured from images": ["hippo_measured"],
    "hippocampus from images + non-circular": ["hippo_measured", "AGE", "PTEDUCAT", "female", "APOE4"],
    "true hippocampal volume (generator; upper bound)": ["hippo_true"],
}


def cohort_table(root: Path) -> pd.DataFrame:
    """participants.tsv + image-derived and true hippocampal volumes, one row per subject."""
    table = pd.read_csv(root / "participants.tsv", sep="\t", na_values=["n/a"], dtype={"APOE4": "float"})
    truth = pd.read_csv(root / "derivatives" / "synthetic-truth" / "image_truth.tsv", sep="\t")
    table = table.merge(truth, on="participant_id", how="left")
    measured = []
    for pid in table["participant_id"]:
        path = root / pid / "anat" / f"{pid}_T1w.nii.gz"
        measured.append(measure_hippocampus(path) if path.exists() else {"hippocampus_mm3": np.nan, "icv_mm3": np.nan})
    table["hippo_measured"] = [m["hippocampus_mm3"] for m in measured]
    table["hippo_true"] = table["hippocampus_mm3"]
    table["female"] = (table["PTGENDER"] == "Female").astype(float)
    return table


def evaluate(table: pd.DataFrame, columns: list[str], *, folds: int, repeats: int, seed: int) -> dict:
    """Mean and SD over folds of ROC AUC and balanced accuracy (AD = positive class)."""
    data = table.dropna(subset=columns)
    x = data[columns].to_numpy(float)
    y = (data["diagnosis"] == "AD").to_numpy(int)
    aucs, baccs = [], []
    splitter = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    for train, test in splitter.split(x, y):
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        model.fit(x[train], y[train])
        prob = model.predict_proba(x[test])[:, 1]
        aucs.append(roc_auc_score(y[test], prob))
        baccs.append(balanced_accuracy_score(y[test], (prob >= 0.5).astype(int)))
    return {"n": len(data), "auc": np.mean(aucs), "auc_sd": np.std(aucs), "bacc": np.mean(baccs),
            "bacc_sd": np.std(baccs)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--smoke", action="store_true", help="12 subjects, 2 folds, 1 repeat: check that it runs")
    parser.add_argument("--cohort", type=Path, default=None,
                        help="build (or reuse) the cohort here; default: a temporary folder")
    args = parser.parse_args(argv)
    if args.smoke:
        args.subjects, args.folds, args.repeats = 12, 2, 1

    with tempfile.TemporaryDirectory() as scratch:
        root = args.cohort or Path(scratch) / "demo"
        started = time.perf_counter()
        make_demo_cohort(root, args.subjects, args.seed, missing_rate=0.0)
        built = time.perf_counter() - started
        table = cohort_table(root)
        measured = time.perf_counter() - started - built
        counts = table["diagnosis"].value_counts()
        print(f"SYNTHETIC demo cohort: {args.subjects} subjects (seed {args.seed}; "
              f"{counts.get('CN', 0)} CN, {counts.get('AD', 0)} AD), missing rate 0; "
              f"built in {built:.1f} s, images measured in {measured:.1f} s")
        print(f"Logistic regression, {args.folds}-fold stratified CV x {args.repeats} repeats "
              f"(subject-level: one scan per subject); mean +- SD over folds\n")
        print("| features | n | ROC AUC | balanced accuracy |")
        print("|---|---|---|---|")
        for name, columns in FEATURE_SETS.items():
            r = evaluate(table, columns, folds=args.folds, repeats=args.repeats, seed=args.seed)
            print(f"| {name} | {r['n']} | {r['auc']:.3f} +- {r['auc_sd']:.3f} | {r['bacc']:.3f} +- {r['bacc_sd']:.3f} |")
        cn, ad = table[table.diagnosis == "CN"], table[table.diagnosis == "AD"]
        pooled = np.sqrt((cn.hippo_measured.var() + ad.hippo_measured.var()) / 2)
        print(f"\nmeasured hippocampus: AD vs CN {ad.hippo_measured.mean() / cn.hippo_measured.mean() - 1:+.1%}, "
              f"Cohen's d {(cn.hippo_measured.mean() - ad.hippo_measured.mean()) / pooled:.2f}; "
              f"true volume AD vs CN {ad.hippo_true.mean() / cn.hippo_true.mean() - 1:+.1%}; "
              f"corr(measured, true) {table.hippo_measured.corr(table.hippo_true):.2f}")
        within = ad[["MMSE", "ADAS13", "CDRSB", "FAQ"]].corr()
        print(f"within AD: corr(MMSE, ADAS13) {within.loc['MMSE', 'ADAS13']:.2f}, "
              f"corr(CDRSB, FAQ) {within.loc['CDRSB', 'FAQ']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
