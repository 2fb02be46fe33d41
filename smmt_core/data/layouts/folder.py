"""A subject folder (what a user drags onto the app) or a single T1 file.

A subject folder holds one T1 volume (.nii, .nii.gz, .mgz, Analyze .hdr/.img) and optionally a
small clinical file: `clinical.json` or a one-row CSV/TSV with canonical column names or common
aliases. A `diagnosis`/`DX` field gives the label. When a folder holds several volumes we pick one
only if its name says it is the T1 (and say so in Subject.notes); otherwise we refuse and list them,
because silently guessing the wrong scan would make a prediction meaningless.
"""

from __future__ import annotations

import re
from pathlib import Path

from smmt_core.data.image_files import check_image_header, find_volumes, find_volumes_below, is_volume, volume_stem
from smmt_core.data.intake.dicom import is_dicom_subject_folder
from smmt_core.data.layouts.common import clinical_from_record, read_json_object, read_table
from smmt_core.data.subject import Subject
from smmt_core.errors import DataError

CLINICAL_JSON = "clinical.json"
_TABLE_SUFFIXES = (".csv", ".tsv")
# Names that say "this is the T1": T1, T1w, MPRAGE, MP-RAGE, MPR, SPGR, IR-FSPGR, BRAVO.
_T1_NAME = re.compile(r"(^|[^a-z0-9])(t1w?|t1[-_]?weighted|mp-?rage|mpr|spgr|ir-?fspgr|bravo)([^a-z0-9]|$)", re.I)
# Names that say "this is not the T1": masks, segmentations, other contrasts, derived maps.
_NOT_T1_NAME = re.compile(
    r"(mask|seg|aparc|label|prob|pve|flair|bold|fmri|jacobian|warp)"
    r"|(^|[^a-z0-9])(t2w?|pdw?|dwi|dti|asl|pet|swi|gm|wm|csf)([^a-z0-9]|$)",
    re.I,
)


def choose_t1(volumes: list[Path], folder: Path) -> tuple[Path, str | None]:
    """The T1 among several volumes, plus a note saying why; DataError listing them if unclear."""
    if len(volumes) == 1:
        return volumes[0], None
    t1_like = [v for v in volumes if _T1_NAME.search(volume_stem(v)) and not _NOT_T1_NAME.search(volume_stem(v))]
    if len(t1_like) == 1:
        return t1_like[0], f"picked {t1_like[0].name} as the T1 (name says T1) among {len(volumes)} volumes"
    others = [v for v in volumes if not _NOT_T1_NAME.search(volume_stem(v))]
    if len(others) == 1:
        return others[0], f"picked {others[0].name} as the T1 (the others look like masks or other contrasts)"
    names = ", ".join(str(v.relative_to(folder)) for v in volumes[:8])
    if len(volumes) > 8:
        names += f", ... and {len(volumes) - 8} more"
    raise DataError(
        f"{len(volumes)} image volumes and none is clearly the T1 ({names}); keep one T1 per subject folder "
        "or name it with T1w/MPRAGE",
        folder,
    )


def find_clinical_file(folder: Path) -> Path | None:
    """clinical.json, else the only CSV/TSV in the folder; DataError when several tables compete."""
    files = [p for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")]
    for p in files:
        if p.name.lower() == CLINICAL_JSON:
            return p
    tables = [p for p in files if p.suffix.lower() in _TABLE_SUFFIXES]
    if len(tables) > 1:
        raise DataError(
            f"several clinical tables ({', '.join(p.name for p in tables)}); keep one, or use clinical.json",
            folder,
        )
    return tables[0] if tables else None


def read_clinical_file(path: Path, problems: list[str]) -> tuple[dict, dict, str | None, str | None]:
    """(numeric, categorical, label, subject_id) from clinical.json or a one-row CSV/TSV."""
    if path.suffix.lower() == ".json":
        record = read_json_object(path)
        if isinstance(record.get("clinical"), dict):  # {"subject_id": ..., "clinical": {...}}
            record = {**{k: v for k, v in record.items() if k != "clinical"}, **record["clinical"]}
        bad = [k for k, v in record.items() if isinstance(v, (dict, list))]
        for key in bad:
            problems.append(f"{path}: {key}: expected a single value, found {type(record[key]).__name__}")
            record.pop(key)
    else:
        frame = read_table(path)
        if len(frame) != 1:
            raise DataError(f"expected one row of clinical data for this subject, found {len(frame)}", path)
        record = frame.iloc[0].to_dict()
    numeric, categorical, label, subject_id = clinical_from_record(record, where=str(path), problems=problems)
    if not numeric and not categorical and label is None:
        problems.append(f"{path}: no known clinical column (e.g. MMSE, CDGLOBAL, AGE, PTGENDER, APOE4, diagnosis)")
    return numeric, categorical, label, subject_id


def load_subject_folder(folder: Path, *, source: str = "folder", require_image: bool = True) -> tuple[Subject, list[str]]:
    """One Subject from a subject folder, plus the non-fatal problems found on the way."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError("not a folder", folder)
    problems: list[str] = []
    volumes = find_volumes_below(folder)
    clinical_path = find_clinical_file(folder)
    # A folder of DICOM files (one or several series, nested) is a subject too: the intake converts
    # it and picks the T1 series from the metadata (smmt_core.data.intake.dicom).
    dicom = not volumes and is_dicom_subject_folder(folder)
    if not volumes and not dicom and clinical_path is None:
        raise DataError("no T1 image (.nii, .nii.gz, .mgz, .hdr/.img), no DICOM files and no clinical file found",
                        folder)
    notes: list[str] = []
    t1_path = None
    if dicom:
        t1_path = folder
        notes.append("DICOM folder: converted with dcm2niix, the T1 series chosen from its metadata")
    elif volumes:
        t1_path, note = choose_t1(volumes, folder)
        if note:
            notes.append(note)
        problem = check_image_header(t1_path)
        if problem:
            if require_image:
                raise DataError(problem, t1_path)
            problems.append(f"{t1_path}: {problem}; this subject has no MRI")
            t1_path = None
    numeric, categorical, label, subject_id = {}, {}, None, None
    if clinical_path is not None:
        numeric, categorical, label, subject_id = read_clinical_file(clinical_path, problems)
    subject = Subject(
        subject_id=subject_id or folder.name,
        label=label,
        t1_path=t1_path,
        numeric=numeric,
        categorical=categorical,
        source=source,
        notes=notes,
    )
    return subject, problems


def load_single_file(path: Path) -> tuple[Subject, list[str]]:
    """A Subject from one T1 file; a clinical file beside it is used only if the folder holds no other volume."""
    path = Path(path)
    if not is_volume(path):
        raise DataError("not a T1 image file (.nii, .nii.gz, .mgz, .hdr/.img)", path)
    if path.name.lower().endswith((".img", ".img.gz")):
        header = next((h for h in path.parent.iterdir() if h.name.lower() == volume_stem(path).lower() + ".hdr"), None)
        path = header or path
    problem = check_image_header(path)
    if problem:
        raise DataError(problem, path)
    problems: list[str] = []
    numeric, categorical, label, subject_id = {}, {}, None, None
    if find_volumes(path.parent) == [path]:
        clinical_path = find_clinical_file(path.parent)
        if clinical_path is not None:
            numeric, categorical, label, subject_id = read_clinical_file(clinical_path, problems)
    subject = Subject(
        subject_id=subject_id or volume_stem(path),
        label=label,
        t1_path=path,
        numeric=numeric,
        categorical=categorical,
        source="file",
    )
    return subject, problems
