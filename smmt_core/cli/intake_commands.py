"""`smmt preprocess`: the intake over one subject or a whole dataset, in parallel, with qc.csv.

Each scan goes through `smmt_core.data.intake.run_intake` in a worker process (brain extraction
and registration are CPU-bound and hold the interpreter), with the same on-disk cache training
and prediction use, so a re-run is instant and an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from smmt_core.cli.exit_codes import EXIT_BAD_INPUT, EXIT_OK
from smmt_core.device import DEFAULT_DEVICE, DEVICE_CHOICES, configure_worker_process
from smmt_core.errors import ConfigError, DataError, SMMTError
from smmt_core.fileio import atomic_write

QC_COLUMNS = ["subject", "session", "qc", "score", "mask_dice", "steps", "input_mni_score",
              "input_foreground_ml", "t1_mni", "qc_picture", "device", "seconds", "message"]


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "preprocess",
        help="bring raw scans (DICOM, native space, skull on) into MNI space with QC",
        description=(
            "Convert DICOM, extract the brain (deepbet), correct the bias field (N4) and register "
            "affinely to MNI152 (ANTs) for one subject (T1 file, DICOM folder, subject folder) or a "
            "whole dataset; writes DIR/qc.csv, and per scan the registered T1 and its QC picture. "
            "Scans already in MNI space with the brain extracted skip the steps they do not need "
            "(measured; see --intake). Needs the 'intake' extra for anything but MNI-space input."
        ),
    )
    p.add_argument("path", help="T1 file, DICOM folder, subject folder or dataset folder")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (qc.csv, <subject>/t1_mni.nii.gz, qc.png)")
    p.add_argument("--workers", type=int, default=max(1, min(4, os.cpu_count() or 1)),
                   help="parallel worker processes (default: CPU cores, at most 4)")
    p.add_argument("--intake", choices=("auto", "full", "off"), default="auto",
                   help="auto: run the steps the measurement says a scan needs (default); full: every step; "
                        "off: trust the scans are in MNI space with the brain extracted")
    p.add_argument("--device", choices=DEVICE_CHOICES, default=DEFAULT_DEVICE,
                   help="device for brain extraction (default auto: CUDA when there is one; recorded in qc.csv)")
    p.add_argument("--cache", metavar="DIR", help="intake cache folder (default: the user's cache)")
    p.add_argument("--adnimerge", metavar="CSV", help="ADNIMERGE table for an ADNI download")
    p.set_defaults(handler=_preprocess)


def _scans(path: Path, adnimerge):
    """[(subject, session, T1 path)] for a single scan or every scan of a dataset with a T1."""
    from smmt_core.data.intake.dicom import is_dicom_subject_folder
    from smmt_core.data.loaders import detect_layout, load_dataset

    layout = detect_layout(path)
    if layout == "folder" and is_dicom_subject_folder(path):
        return [(path.name, "", path)], []
    if layout == "file":
        from smmt_core.data.layouts.common import volume_stem

        return [(volume_stem(path), "", path)], []
    cohort = load_dataset(path, adnimerge=adnimerge)
    scans = [(s.subject_id, s.session or "", s.t1_path) for s in cohort.subjects if s.t1_path is not None]
    if not scans:
        raise DataError("no scan with a T1 image in this dataset", path)
    return scans, list(cohort.problems)


def _worker_init(threads: int) -> None:
    """Each worker gets its share of the cores (torch for deepbet, ITK for ANTs)."""
    configure_worker_process(threads)


def _work(t1: str, settings: dict, cache_root: str | None) -> dict:
    """One scan in a worker: the result as a plain dict, or {"error": one line}."""
    from smmt_core.data.intake import IntakeCache, IntakeSettings, run_intake

    try:
        result = run_intake(t1, IntakeSettings(**settings), cache=IntakeCache(cache_root))
    except SMMTError as error:
        return {"error": str(error)}
    except Exception as error:  # a library failing on a strange image: one line, not a traceback
        return {"error": f"{t1}: {type(error).__name__}: {error}"}
    return {**result.to_dict(), "from_cache": result.from_cache}


def _row(subject: str, session: str, out: Path, result: dict) -> dict:
    """Copy the scan's outputs under `out` and return its qc.csv row."""
    row = {"subject": subject, "session": session}
    if "error" in result:
        return {**row, "qc": "fail", "message": result["error"]}
    folder = out / subject / session if session else out / subject
    folder.mkdir(parents=True, exist_ok=True)
    t1_out = folder / "t1_mni.nii.gz"
    src = Path(result["t1_mni"])
    if src.name.endswith(".nii.gz"):
        atomic_write(t1_out, lambda tmp: shutil.copyfile(src, tmp), suffix=".nii.gz")
    else:  # an MNI-space input in another format: written as NIfTI
        import nibabel as nib

        img = nib.load(str(src))
        atomic_write(t1_out, lambda tmp: nib.save(nib.Nifti1Image(img.get_fdata(dtype="float32"), img.affine),
                                                  str(tmp)), suffix=".nii.gz")
    pic = folder / "qc.png"
    if result.get("picture"):
        atomic_write(pic, lambda tmp: shutil.copyfile(result["picture"], tmp), suffix=".png")
    q, m = result["qc"], result["measures"]
    steps = "+".join(s for s in result["steps_run"] if s not in ("measure", "qc")) or "none"
    return {**row, "qc": q["verdict"], "score": round(q["score"], 4),
            "mask_dice": round(q["mask_dice"], 4) if q["mask_dice"] is not None else "",
            "steps": steps, "input_mni_score": m.get("input_mni_score"),
            "input_foreground_ml": m.get("input_foreground_ml"),
            "t1_mni": str(t1_out.relative_to(out)), "qc_picture": str(pic.relative_to(out)) if pic.exists() else "",
            "device": result.get("device") or "",
            "seconds": round(sum(result["seconds"].values()), 2),
            "message": "; ".join([q["reason"], *result["notes"]])}


def _write_csv(out: Path, rows: list[dict]) -> None:
    import pandas as pd

    frame = pd.DataFrame(rows, columns=QC_COLUMNS).sort_values(["subject", "session"])
    atomic_write(out / "qc.csv", lambda tmp: frame.to_csv(tmp, index=False), suffix=".csv")


def _run_workers(todo, settings, cache, out: Path, rows: list[dict], workers: int) -> None:
    """The scans not in the cache, in `workers` processes; a row (and qc.csv) after each one."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from tqdm import tqdm

    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")  # torch and ITK threads do not survive fork
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_init, initargs=(threads,)) as pool:
        futures = {pool.submit(_work, str(t1), settings.to_dict(), cache): (subject, session)
                   for subject, session, t1 in todo}
        try:
            for future in tqdm(as_completed(futures), total=len(futures), desc="preprocess", unit="scan",
                               file=sys.stderr, disable=None):
                subject, session = futures[future]
                rows.append(_row(subject, session, out, future.result()))
                _write_csv(out, rows)  # after each scan: an interrupted run still has its table
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _preprocess(args) -> int:
    from tqdm import tqdm

    from smmt_core.data.intake import IntakeCache, IntakeSettings
    from smmt_core.data.intake.pipeline import input_digest

    if args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    path, out = Path(args.path).expanduser(), Path(args.out).expanduser()
    settings = IntakeSettings(mode=args.intake, device=args.device)
    scans, problems = _scans(path, Path(args.adnimerge).expanduser() if args.adnimerge else None)
    for problem in problems:
        print(f"smmt preprocess: note: {problem}", file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    cache = str(Path(args.cache).expanduser()) if args.cache else None
    rows: list[dict] = []
    # Scans already in the cache are answered here, without starting a worker (a re-run is instant).
    store, todo = IntakeCache(cache), []
    for subject, session, t1 in tqdm(scans, desc="cache", unit="scan", file=sys.stderr, disable=None):
        try:
            done = store.load(input_digest(Path(t1)), settings, Path(t1))
        except SMMTError as error:
            rows.append(_row(subject, session, out, {"error": str(error)}))
            continue
        if done is None:
            todo.append((subject, session, t1))
        else:
            rows.append(_row(subject, session, out, {**done.to_dict(), "from_cache": True}))
    if rows:
        _write_csv(out, rows)
    if todo:
        _run_workers(todo, settings, cache, out, rows, min(args.workers, len(todo)))
    counts = {v: sum(r["qc"] == v for r in rows) for v in ("pass", "warn", "fail")}
    print(f"{len(rows)} scan(s): {counts['pass']} pass, {counts['warn']} warn, {counts['fail']} fail; "
          f"table: {out / 'qc.csv'}")
    for r in rows:
        if r["qc"] == "fail":
            print(f"  fail {r['subject']}{'/' + r['session'] if r['session'] else ''}: {r['message']}", file=sys.stderr)
    return EXIT_OK if counts["fail"] < len(rows) else EXIT_BAD_INPUT
