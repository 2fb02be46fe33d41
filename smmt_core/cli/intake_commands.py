"""`smmt preprocess`: the intake over one subject or a whole dataset, in parallel, with qc.csv.

Each scan goes through `smmt_core.data.intake.run_intake` in a worker process (brain extraction
and registration are CPU-bound and hold the interpreter), with the same on-disk cache training
and prediction use, so a re-run is instant and an interrupted run resumes where it stopped.
Ctrl-C or SIGTERM stops within about one scan: no new scan starts, the scans in flight stop at
their next step, the workers end (they never outlive the command, even a SIGKILLed one: see
`smmt_core.data.intake.pool`), qc.csv keeps the scans done, and the exit code is 130.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
from pathlib import Path

from smmt_core.cli.exit_codes import EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_OK
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
            "(measured; see --intake). Needs the 'intake' extra for anything but MNI-space input. "
            "Ctrl-C or SIGTERM stops within about one scan and keeps the scans done (qc.csv, cache); "
            "the same command continues. Exit codes: 0 done, 2 bad input or every scan failed, "
            "130 stopped by Ctrl-C or SIGTERM."
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
        from smmt_core.data.image_files import volume_stem

        return [(volume_stem(path), "", path)], []
    cohort = load_dataset(path, adnimerge=adnimerge)
    scans = [(s.subject_id, s.session or "", s.t1_path) for s in cohort.subjects if s.t1_path is not None]
    if not scans:
        raise DataError("no scan with a T1 image in this dataset", path)
    return scans, list(cohort.problems)


def _worker_init(threads: int) -> None:
    """Each worker gets its share of the cores (torch for deepbet, ITK for ANTs)."""
    configure_worker_process(threads)


def _work(scan: tuple, stop, *, settings: dict, cache_root: str | None) -> dict:
    """One scan (subject, session, T1) in a worker: the result as a plain dict, or {"error": one line}.
    IntakeCancelled (`stop` set: the caller is stopping) propagates; nothing was cached."""
    from smmt_core.data.intake import IntakeCache, IntakeCancelled, IntakeSettings, run_intake

    t1 = scan[2]
    try:
        result = run_intake(t1, IntakeSettings(**settings), cache=IntakeCache(cache_root), stop=stop)
    except IntakeCancelled:
        raise
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


def preprocess_scans(scans, out: Path, settings, *, cache: str | None = None, workers: int = 1,
                     stop: threading.Event | None = None, work=_work, progress: bool = True) -> tuple[list[dict], list]:
    """The intake for `scans` [(subject, session, T1)]: outputs under `out`, qc.csv rewritten
    (atomically) after every scan. Returns (qc.csv rows, the scans not done).

    Scans already in the intake cache are answered here, without a worker (a re-run is instant); the
    others run in `workers` processes (`smmt_core.data.intake.pool`). Once `stop` is set no new scan
    starts and the scans in flight stop at their next step (or finish, and are kept), so a run ends
    within about one scan; what was done is in qc.csv and the cache, and the same call continues
    from there. `work(scan, stop, settings=..., cache_root=...)` is the per-scan step (tests pass a fake).
    """
    from functools import partial

    from tqdm import tqdm

    from smmt_core.data.intake import IntakeCache
    from smmt_core.data.intake.pipeline import input_digest
    from smmt_core.data.intake.pool import run_in_workers

    def stopping() -> bool:
        return stop is not None and stop.is_set()

    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    store, todo = IntakeCache(cache), []
    for index, (subject, session, t1) in enumerate(tqdm(scans, desc="cache", unit="scan", file=sys.stderr,
                                                       disable=None if progress else True)):
        if stopping():
            todo.extend(scans[index:])
            break
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
    if not todo or stopping():
        return rows, todo
    bar = tqdm(total=len(todo), desc="preprocess", unit="scan", file=sys.stderr, disable=None if progress else True)

    def record(scan, result: dict) -> None:
        subject, session, _ = scan
        rows.append(_row(subject, session, out, result))
        _write_csv(out, rows)  # after each scan: an interrupted run keeps its table
        bar.update()

    workers = min(workers, len(todo))
    threads = max(1, (os.cpu_count() or 1) // workers)
    try:
        left = run_in_workers([(subject, session, str(t1)) for subject, session, t1 in todo],
                              partial(work, settings=settings.to_dict(), cache_root=cache), workers=workers,
                              stop=stop, on_result=record,
                              on_failure=lambda scan, line: record(scan, {"error": f"{scan[2]}: {line}"}),
                              initializer=_worker_init, initargs=(threads,))
    finally:
        bar.close()
    return rows, left


def _preprocess(args) -> int:
    from smmt_core.cli.train_commands import stop_on_signals
    from smmt_core.data.intake import IntakeSettings

    if args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    path, out = Path(args.path).expanduser(), Path(args.out).expanduser()
    settings = IntakeSettings(mode=args.intake, device=args.device)
    # Ctrl-C / SIGTERM: no new scan starts, the scans in flight stop at their next step (or finish and
    # are kept), the workers end with this process; qc.csv and the cache hold what was done (exit 130).
    stop = threading.Event()
    with stop_on_signals(stop, "stopping: no new scan starts, the scans in progress stop at their next step"):
        scans, problems = _scans(path, Path(args.adnimerge).expanduser() if args.adnimerge else None)
        for problem in problems:
            print(f"smmt preprocess: note: {problem}", file=sys.stderr)
        cache = str(Path(args.cache).expanduser()) if args.cache else None
        rows, left = preprocess_scans(scans, out, settings, cache=cache, workers=args.workers, stop=stop)
    counts = {v: sum(r["qc"] == v for r in rows) for v in ("pass", "warn", "fail")}
    print(f"{len(rows)} scan(s): {counts['pass']} pass, {counts['warn']} warn, {counts['fail']} fail; "
          f"table: {out / 'qc.csv'}" + (" (not written: no scan done)" if not rows else ""))
    for r in rows:
        if r["qc"] == "fail":
            print(f"  fail {r['subject']}{'/' + r['session'] if r['session'] else ''}: {r['message']}", file=sys.stderr)
    if stop.is_set():
        print(f"smmt preprocess: stopped with {len(left)} of {len(scans)} scan(s) not done; run the same command "
              "again to continue", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK if counts["fail"] < len(rows) else EXIT_BAD_INPUT
