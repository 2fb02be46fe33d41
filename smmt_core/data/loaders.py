"""Open whatever the user points at: a T1 file, a subject folder, a folder of them, BIDS, ADNI, OASIS-1.

`detect_layout` looks at the names on disk only (cheap, no image reads); `load_dataset` returns a
`Cohort` for any layout; `load_subject` returns one `Subject` for the prediction panel. Each
layout lives in `smmt_core.data.layouts.<name>`; this module only chooses between them, so adding
a layout means adding one module and one line in `_LOADERS`.

Non-fatal findings (an unreadable cell, one corrupt image among many, a scan without clinical
data) are collected in `Cohort.problems` (and `Subject.notes` for a single subject); anything that
makes the input unusable raises `DataError` naming the file and the problem.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from smmt_core.data.image_files import find_volumes, find_volumes_below, is_volume
from smmt_core.data.intake.dicom import is_dicom_subject_folder
from smmt_core.data.layouts import adni, bids, oasis
from smmt_core.data.layouts.folder import (
    CLINICAL_JSON,
    load_single_file,
    load_subject_folder,
)
from smmt_core.data.subject import Cohort, Subject
from smmt_core.errors import ConfigError, DataError

LAYOUTS: tuple[str, ...] = ("file", "folder", "folders", "bids", "adni", "oasis")
_TABLES = (".csv", ".tsv")


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _has_clinical_file(folder: Path) -> bool:
    return any(p.is_file() and (p.name.lower() == CLINICAL_JSON or p.suffix.lower() in _TABLES)
               for p in _visible(folder))


def _is_subject_folder(folder: Path) -> bool:
    """Volumes in the folder (or a BIDS-style anat/ below it) or a clinical file."""
    if find_volumes(folder) or (folder / CLINICAL_JSON).is_file():
        return True
    if is_dicom_subject_folder(folder):
        return True
    if folder.name.startswith("sub-") and any((folder / d).is_dir() for d in ("anat",)):
        return True
    return False


def _is_dataset(folder: Path) -> bool:
    return bids.looks_like_bids(folder) or adni.image_root(folder) is not None or bool(oasis.find_session_dirs(folder, 2))


def _subject_subfolders(root: Path) -> list[Path]:
    return [p for p in _visible(root)
            if p.is_dir() and not _is_dataset(p) and (_is_subject_folder(p) or find_volumes_below(p, 2))]


def detect_layout(path) -> str:
    """"file", "folder", "folders", "bids", "adni" or "oasis"; DataError when none fits."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError("no such file or folder", path)
    if path.is_file():
        if is_volume(path):
            return "file"
        raise DataError("not a T1 image (.nii, .nii.gz, .mgz, .hdr/.img) or a dataset folder", path)
    if not path.is_dir():
        raise DataError("neither a file nor a folder", path)
    try:
        entries = _visible(path)
    except PermissionError:
        raise DataError("permission denied", path) from None
    if not entries:
        raise DataError("the folder is empty", path)
    if bids.looks_like_bids(path):
        return "bids"
    if adni.image_root(path) is not None:
        return "adni"
    if oasis.SESSION_DIR.match(path.name) is None and oasis.find_session_dirs(path):
        return "oasis"
    if _is_subject_folder(path) or oasis.SESSION_DIR.match(path.name) or _bids_position(path)[0] is not None:
        return "folder"  # (a sub-X/ses-Y folder of a BIDS dataset is one scan, not a folder of folders)
    if _has_clinical_file(path) and not any(p.is_dir() for p in entries):
        return "folder"
    if _subject_subfolders(path):
        return "folders"
    datasets = [p.name for p in entries if p.is_dir() and _is_dataset(p)]
    if datasets:
        raise DataError(f"this folder holds dataset folder(s) ({', '.join(datasets[:5])}); open one of them", path)
    raise DataError(
        "no T1 image and no known dataset layout found (expected a .nii/.nii.gz/.mgz/.hdr image, a subject "
        "folder, a folder of subject folders, BIDS, an ADNI download or OASIS-1)",
        path,
    )


def load_subject(path) -> Subject:
    """One subject from a single T1 file or a subject folder (+ optional clinical.json / one-row CSV/TSV).

    Problems that do not stop the subject from being used (an unreadable score) go to Subject.notes.
    A sub-X (or sub-X/ses-Y) folder of a BIDS dataset is read through the dataset, so its
    participants.tsv / sessions.tsv values come along (the latest session unless one is opened).
    A dataset folder (BIDS, ADNI, OASIS, a folder of subject folders) is refused: use load_dataset.
    """
    path = Path(path).expanduser()
    try:
        subject, problems = _load_subject(path, detect_layout(path))
    except OSError as error:
        raise DataError(f"cannot read: {error.strerror or error}", error.filename or path) from None
    subject.notes.extend(problems)
    return subject


def _load_subject(path: Path, layout: str) -> tuple[Subject, list[str]]:
    """(The subject, the non-fatal problems found reading it)."""
    if layout == "file":
        return load_single_file(path)
    if layout != "folder":
        raise DataError(f"this is a {layout} dataset, not a single subject; open it as a dataset", path)
    bids_root, participant, session = _bids_position(path)
    if bids_root is not None:  # sub-X or sub-X/ses-Y inside BIDS: bring its participants.tsv data along
        return _load_bids_subject(bids_root, participant, session)
    if oasis.SESSION_DIR.match(path.name):
        return _load_oasis_session(path)
    subject, problems = load_subject_folder(path)
    download = _enclosing_adni(path)
    if download is not None:
        subject.notes.append(
            f"this folder is part of an ADNI download ({download}); its ADNIMERGE clinical data are only read "
            f"when the subject is taken from the dataset (smmt predict <PTID> --cohort {download}, "
            "or open the download folder)")
    return subject, problems


def _bids_position(path: Path) -> tuple[Path | None, str | None, str | None]:
    """(BIDS root, participant, session) when `path` is a sub-X or sub-X/ses-Y folder of a BIDS
    dataset; (None, None, None) otherwise."""
    path = path.resolve()
    if path.name.startswith("sub-") and _is_bids_root(path.parent):
        return path.parent, path.name, None
    if path.name.startswith("ses-") and path.parent.name.startswith("sub-") and _is_bids_root(path.parent.parent):
        return path.parent.parent, path.parent.name, path.name
    return None, None, None


def _is_bids_root(folder: Path) -> bool:
    """A BIDS dataset folder: it describes itself or has the participants table (the clinical data)."""
    return (folder / bids.DESCRIPTION).is_file() or (folder / bids.PARTICIPANTS).is_file()


def _session_order(session: str | None):
    """Natural order of session names: ses-M006 < ses-M012, ses-2 < ses-10."""
    parts = re.split(r"(\d+)", session or "")
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts]


def _load_bids_subject(root: Path, participant: str, session: str | None) -> tuple[Subject, list[str]]:
    """One participant (and session) of a BIDS dataset, with its participants.tsv/sessions.tsv data.

    Without a session, the latest scan with a T1 is taken and a note says which (and the others).
    """
    cohort = bids.load_bids(root, only=participant)
    scans = cohort.subjects
    if session is not None:
        scans = [s for s in scans if s.session == session]
        if not scans:
            raise DataError(f"no T1w image for {participant} in this session folder", root / participant / session)
    with_mri = [s for s in scans if s.t1_path is not None] or scans
    subject = max(with_mri, key=lambda s: _session_order(s.session))
    if len(scans) > 1:
        others = ", ".join(s.session or "(no session)" for s in scans if s is not subject)
        subject.notes.append(f"{participant} has {len(scans)} sessions; using the latest, {subject.session} "
                             f"(others: {others}; open a ses-* folder to pick one)")
    return subject, list(cohort.problems)


def _enclosing_adni(folder: Path) -> Path | None:
    """The ADNI download that holds `folder` (an image folder below ADNI/<PTID>/...), else None.

    Judged from the names of the folders above (a few levels), never by scanning the disk around it."""
    for ancestor in list(folder.resolve().parents)[:5]:
        if adni.PTID.match(ancestor.name) and adni.image_root(ancestor.parent) is not None:
            images = ancestor.parent
            return images.parent if images.name == "ADNI" else images
    return None


def _load_oasis_session(folder: Path) -> tuple[Subject, list[str]]:
    """A single OASIS-1 session folder dragged on its own: its T88_111 image, no clinical data."""
    t1, note = oasis.pick_image(folder)
    if t1 is None:
        raise DataError("no PROCESSED/MPRAGE/T88_111 image in this OASIS-1 folder", folder)
    person, visit = oasis.SESSION_DIR.match(folder.name).groups()
    subject, problems = load_single_file(t1)
    subject.subject_id, subject.session, subject.source = person, visit, "oasis"
    subject.notes.extend([note] if note else [])
    subject.notes.append("an OASIS-1 session folder alone has no clinical data; take the subject from the "
                         f"dataset instead (smmt predict {subject.key} --cohort <OASIS folder>, or open the OASIS folder)")
    return subject, problems


def load_dataset(path, *, adnimerge=None, date_window_days: int = 180) -> Cohort:
    """A Cohort from any supported layout (see `LAYOUTS`).

    adnimerge: the ADNIMERGE CSV for an ADNI download, when it is not in the download folder.
    date_window_days: how far an ADNI scan date may be from the ADNIMERGE EXAMDATE it is matched to.
    """
    path = Path(path).expanduser()
    if date_window_days < 0:
        raise DataError(f"the date window must be >= 0 days, got {date_window_days}", path)
    try:
        return _load(path, detect_layout(path), adnimerge, date_window_days)
    except OSError as error:  # permissions, vanished files, I/O errors: still one clear line
        raise DataError(f"cannot read: {error.strerror or error}", error.filename or path) from None


def _load(path: Path, layout: str, adnimerge, date_window_days: int) -> Cohort:
    if layout == "adni":
        return adni.load_adni(path, adnimerge=adnimerge, date_window_days=date_window_days)
    if layout == "bids":
        cohort = bids.load_bids(path)
    elif layout == "oasis":
        cohort = oasis.load_oasis(path)
    elif layout == "folders":
        cohort = _load_folders(path)
    else:
        subject, problems = _load_subject(path, layout)
        subject.notes.extend(problems)
        root = path.parent if layout == "file" else path
        cohort = Cohort([subject], layout, root, name=subject.subject_id, problems=list(problems))
    if adnimerge is not None:
        cohort.problems.append(f"{adnimerge}: ignored; an ADNIMERGE table only applies to ADNI downloads")
    return cohort


def _load_folders(root: Path) -> Cohort:
    """A folder of subject folders. A broken subject folder is a problem, not a fatal error."""
    subjects: list[Subject] = []
    problems: list[str] = []
    for folder in _visible(root):
        if not folder.is_dir():
            continue
        if _is_dataset(folder):
            problems.append(f"{folder}: a whole dataset, not a subject folder; open it on its own. Skipped")
            continue
        if not (_is_subject_folder(folder) or find_volumes_below(folder, 2)):
            problems.append(f"{folder}: no T1 image or clinical file; skipped")
            continue
        try:
            subject, found = load_subject_folder(folder, require_image=False)
        except DataError as error:
            problems.append(f"{error}; skipped")
            continue
        subjects.append(subject)
        problems.extend(found)
    if not subjects:
        raise DataError("no readable subject folder: " + "; ".join(problems[:3]), root)
    return Cohort(subjects, "folders", root, name=root.name, problems=problems)


def load_cohort(location: str, *, adnimerge: str | None = None, date_window_days: int = 180,
                progress: Callable[[int, int], None] | None = None) -> Cohort:
    """The cohort a training run or a robustness check names: a dataset folder, or "demo".

    "demo" builds the built-in SYNTHETIC cohort the first time (`progress(done, total)` reports
    that) and marks the cohort synthetic. A single file is refused: training needs a dataset.
    """
    data = (location or "").strip()
    if not data:
        raise ConfigError("no training data given: a dataset folder, or 'demo' for the synthetic demo cohort")
    if data.lower() == "demo":
        from smmt_core.data.demo import ensure_demo_cohort

        cohort = load_dataset(ensure_demo_cohort(progress=progress))
        cohort.synthetic = True
        return cohort
    path = Path(data).expanduser()
    if not path.exists():
        raise DataError("dataset not found", path)
    if path.is_file():  # name the file itself, not the folder a one-scan "cohort" would be rooted at
        raise DataError("a single file, not a dataset; training needs a dataset folder (BIDS, ADNI, "
                        "OASIS-1 or a folder of subject folders) with labelled CN and AD subjects", path)
    merge = Path(adnimerge).expanduser() if adnimerge else None
    return load_dataset(path, adnimerge=merge, date_window_days=date_window_days)

