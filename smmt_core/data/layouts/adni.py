"""ADNI as LONI IDA delivers it, matched to ADNIMERGE.

Tree: `ADNI/<PTID>/<series description>/<YYYY-MM-DD_HH_MM_SS.0>/<I… or S…>/ADNI_<PTID>_MR_<desc>_Br_<stamp>_S<series>_I<image>.nii`
plus `ADNIMERGE*.csv` (one row per RID and visit). A scan is matched to its row by IMAGEUID, else by
PTID and the nearest EXAMDATE within a window. Several scans of one visit (repeats, 1.5 T and 3 T)
become one Subject: the IMAGEUID scan, else the lowest series id, and Subject.notes says which and why.
Raw ADNI codes -1/-4 mean missing; cells such as ">1700" are read as numbers.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from smmt_core.data.image_files import check_image_header
from smmt_core.data.layouts.common import (
    CATEGORICAL_COLUMNS,
    NUMERIC_COLUMNS,
    clinical_from_record,
    is_missing,
    parse_label,
    parse_number,
    parse_score,
    read_table,
    require_columns,
)
from smmt_core.data.subject import Cohort, Subject
from smmt_core.errors import DataError

PTID = re.compile(r"^\d{3}_S_\d{4}$")
_FILE = re.compile(r"^ADNI_(\d{3}_S_\d{4})_MR_(.*)_Br_(\d+)_S(\d+)_I(\d+)\.nii(\.gz)?$", re.I)
_DATE_DIR = re.compile(r"^(\d{4}-\d{2}-\d{2})_\d{2}_\d{2}_\d{2}(\.\d+)?$")
_SENTINELS = (-1.0, -4.0)
_BASELINE_VISITS = {"bl", "sc", "scmri", "m0", "m00", "m000"}
MERGE_REQUIRED = ("VISCODE", "EXAMDATE")


@dataclass
class Scan:
    ptid: str
    path: Path
    description: str
    date: pd.Timestamp | None
    image_id: int | None
    series_id: int | None

    @property
    def rid(self) -> int:
        return int(self.ptid.split("_")[-1])

    def describe(self) -> str:
        parts = [f"I{self.image_id}" if self.image_id is not None else self.path.name]
        if self.series_id is not None:
            parts.append(f"S{self.series_id}")
        return " ".join(parts) + f" ({self.description})"


def image_root(path: Path) -> Path | None:
    """The folder whose children are PTID folders, or None when `path` is not an ADNI tree."""
    for candidate in (path / "ADNI", path):
        if candidate.is_dir() and any(p.is_dir() and PTID.match(p.name) for p in candidate.iterdir()):
            return candidate
    return None


def find_adnimerge(root: Path, images: Path, problems: list[str]) -> Path | None:
    """ADNIMERGE*.csv in the given folder, the image root or its parent; the last by name if several."""
    found: list[Path] = []
    for folder in dict.fromkeys([root, images, images.parent]):
        if folder.is_dir():
            found.extend(p for p in folder.iterdir()
                         if p.is_file() and p.name.upper().startswith("ADNIMERGE") and p.suffix.lower() == ".csv")
    found = sorted(set(found), key=lambda p: p.name)
    if len(found) > 1:
        problems.append(f"{found[-1]}: used; several ADNIMERGE tables found ({', '.join(p.name for p in found)})")
    return found[-1] if found else None


def find_scans(images: Path, problems: list[str]) -> list[Scan]:
    scans: list[Scan] = []
    dicom_folders: set[Path] = set()
    for ptid_dir in sorted(p for p in images.iterdir() if p.is_dir() and PTID.match(p.name)):
        for path in sorted(ptid_dir.rglob("*")):
            if not path.is_file() or path.name.startswith("."):
                continue
            name = path.name.lower()
            if name.endswith(".dcm"):
                dicom_folders.add(path.parent)
            elif name.endswith(".nii") or name.endswith(".nii.gz"):
                scans.append(_parse_scan(ptid_dir.name, path, ptid_dir))
    dicom_folders -= {scan.path.parent for scan in scans}
    if dicom_folders:
        example = min(dicom_folders)
        problems.append(f"{example}: {len(dicom_folders)} DICOM series skipped; convert them to NIfTI first "
                        "(e.g. dcm2niix) or download the NIfTI version")
    return scans


def _parse_scan(ptid: str, path: Path, ptid_dir: Path) -> Scan:
    parts = path.relative_to(ptid_dir).parts
    description = parts[0] if len(parts) > 1 else ""
    date = image_id = series_id = None
    for part in parts[:-1]:
        match = _DATE_DIR.match(part)
        if match:
            date = pd.Timestamp(match.group(1))
        elif re.fullmatch(r"I\d+", part):
            image_id = int(part[1:])
        elif re.fullmatch(r"S\d+", part):
            series_id = int(part[1:])
    match = _FILE.match(path.name)
    if match:
        series_id, image_id = int(match.group(4)), int(match.group(5))
        description = description or match.group(2)
    return Scan(ptid, path, description, date, image_id, series_id)


def read_adnimerge(path: Path, problems: list[str]) -> pd.DataFrame:
    """ADNIMERGE as strings plus helper columns _RID (int), _EXAMDATE, _EXAMDATE_BL, _IMAGEUID."""
    frame = read_table(path)
    require_columns(frame, MERGE_REQUIRED, path)
    if "PTID" not in frame.columns and "RID" not in frame.columns:
        raise DataError("missing column(s) PTID (or RID)", path)
    if "DX" not in frame.columns and "DX_bl" not in frame.columns:
        problems.append(f"{path}: no DX or DX_bl column; scans get no label")
    elif "DX" not in frame.columns:
        problems.append(f"{path}: no DX column; every visit gets the baseline diagnosis DX_bl")
    if "CDGLOBAL" not in frame.columns:
        problems.append(f"{path}: no CDGLOBAL column (global CDR lives in the separate CDR table); CDGLOBAL is missing")
    rid_source = frame["RID"] if "RID" in frame.columns else frame["PTID"].str.strip().str[-4:]
    frame["_RID"] = pd.to_numeric(rid_source.str.strip(), errors="coerce")
    frame["_EXAMDATE"] = _dates(frame["EXAMDATE"], path, "EXAMDATE", problems)
    frame["_EXAMDATE_BL"] = _dates(frame["EXAMDATE_bl"], path, "EXAMDATE_bl", problems) if "EXAMDATE_bl" in frame else pd.NaT
    frame["_IMAGEUID"] = pd.to_numeric(frame["IMAGEUID"], errors="coerce") if "IMAGEUID" in frame else math.nan
    bad_rid = frame["_RID"].isna()
    if bad_rid.any():
        problems.append(f"{path}: {int(bad_rid.sum())} row(s) without a readable RID/PTID skipped")
        frame = frame[~bad_rid]
    return frame


def _dates(column: pd.Series, path: Path, name: str, problems: list[str]) -> pd.Series:
    text = column.str.strip()
    dates = pd.to_datetime(text, errors="coerce", format="mixed")
    bad = dates.isna() & ~text.map(is_missing)
    if bad.any():
        problems.append(f"{path}: column {name}: {int(bad.sum())} unreadable date(s), e.g. {text[bad].iloc[0]!r}")
    return dates


def _row_clinical(row: pd.Series, path: Path, problems: list[str]) -> tuple[dict, dict, str | None, list[str]]:
    where = f"{path}: RID {int(row['_RID'])} {row.get('VISCODE', '')}"
    record = {c: row[c] for c in (*NUMERIC_COLUMNS, *CATEGORICAL_COLUMNS) if c in row.index}
    numeric, categorical, _, _ = clinical_from_record(record, where=where, problems=problems, sentinels=_SENTINELS)
    for column in NUMERIC_COLUMNS:
        numeric.setdefault(column, math.nan)
    notes: list[str] = []
    # ADNIMERGE AGE is the age at baseline: add the years since baseline.
    if not math.isnan(numeric["AGE"]):
        years = math.nan
        if pd.notna(row["_EXAMDATE"]) and pd.notna(row["_EXAMDATE_BL"]):
            years = (row["_EXAMDATE"] - row["_EXAMDATE_BL"]).days / 365.25
        elif "Years_bl" in row.index:
            years, _ = parse_number(row["Years_bl"])
        if not math.isnan(years) and years > 0:
            numeric["AGE"], _ = parse_score("AGE", numeric["AGE"] + years)
            notes.append(f"AGE = baseline age + {years:.2f} years since baseline")
    label = None
    viscode = str(row.get("VISCODE", "")).strip().lower()
    has_dx = "DX" in row.index
    if has_dx:
        label, problem = parse_label(row["DX"])
        if problem:
            problems.append(f"{where}: DX: {problem}")
    if label is None and "DX_bl" in row.index and (not has_dx or viscode in _BASELINE_VISITS):
        label, problem = parse_label(row["DX_bl"])
        if problem:
            problems.append(f"{where}: DX_bl: {problem}")
        elif label is not None:
            notes.append("label from DX_bl (DX is blank at this baseline visit)" if has_dx
                         else "label from DX_bl, the baseline diagnosis (the table has no DX column)")
    return numeric, categorical, label, notes


def load_adni(path: Path, *, adnimerge: Path | None = None, date_window_days: int = 180) -> Cohort:
    path = Path(path)
    problems: list[str] = []
    images = image_root(path)
    if images is None:
        raise DataError("not an ADNI download: no <PTID> folders such as 002_S_0295", path)
    scans = find_scans(images, problems)
    if not scans:
        raise DataError("no NIfTI scans (.nii/.nii.gz) in the ADNI tree", images)
    if adnimerge is not None:
        adnimerge = Path(adnimerge)
        if not adnimerge.is_file():
            raise DataError("ADNIMERGE table not found", adnimerge)
    else:
        adnimerge = find_adnimerge(path, images, problems)
    merge = None
    if adnimerge is None:
        problems.append(f"{path}: no ADNIMERGE*.csv found (pass it with --adnimerge); scans have no clinical data or labels")
    else:
        merge = read_adnimerge(adnimerge, problems)

    groups: dict[object, list[tuple[Scan, str]]] = {}
    if merge is not None:
        by_uid = {int(u): i for i, u in merge["_IMAGEUID"].items() if pd.notna(u)}
        by_rid = {rid: rows for rid, rows in merge.groupby("_RID")}
    for scan in scans:
        key = how = None
        if merge is not None:
            index = by_uid.get(scan.image_id) if scan.image_id is not None else None
            if index is not None and int(merge.at[index, "_RID"]) == scan.rid:
                key, how = index, "matched to ADNIMERGE by IMAGEUID"
            elif scan.date is not None and scan.rid in by_rid:
                rows = by_rid[scan.rid]
                gaps = (rows["_EXAMDATE"] - scan.date).abs().dt.days.dropna()
                if len(gaps) and gaps.min() <= date_window_days:
                    key = gaps.idxmin()
                    how = f"matched to ADNIMERGE by nearest EXAMDATE ({int(gaps.min())} days from the scan)"
        if key is None:
            key = (scan.ptid, scan.date)
            if merge is not None:
                when = scan.date.date() if scan.date is not None else "an unknown date"
                problems.append(f"{scan.path}: no ADNIMERGE row for {scan.ptid} within {date_window_days} days "
                                f"of {when}; scan kept without clinical data")
        groups.setdefault(key, []).append((scan, how))

    subjects: list[Subject] = []
    for key, members in groups.items():
        matched = not isinstance(key, tuple)
        row = merge.loc[key] if matched else None
        uid = row["_IMAGEUID"] if matched else math.nan
        scan, how = _choose_scan(members, uid)
        notes = [how] if how else []
        if len(members) > 1:
            reason = "its image id is the ADNIMERGE IMAGEUID" if scan.image_id == uid else "lowest series id"
            others = ", ".join(s.describe() for s, _ in members if s is not scan)
            notes.append(f"picked {scan.describe()} among {len(members)} scans of this visit ({reason}); not used: {others}")
        numeric, categorical, label = {}, {}, None
        if matched:
            numeric, categorical, label, more = _row_clinical(row, adnimerge, problems)
            notes.extend(more)
            session = str(row["VISCODE"]).strip() or None
        else:
            session = scan.date.strftime("%Y-%m-%d") if scan.date is not None else None
        t1 = scan.path
        problem = check_image_header(t1)
        if problem:
            problems.append(f"{t1}: {problem}; this scan has no MRI")
            t1 = None
        subjects.append(Subject(scan.ptid, label, t1, numeric, categorical, session, "adni", notes))
    subjects.sort(key=lambda s: (s.subject_id, s.session or ""))
    _flag_duplicate_sessions(subjects, problems)
    return Cohort(subjects, "adni", path, name=f"ADNI ({path.name})", problems=problems)


def _choose_scan(members: list[tuple[Scan, str]], uid) -> tuple[Scan, str]:
    for scan, how in members:
        if scan.image_id is not None and pd.notna(uid) and scan.image_id == int(uid):
            return scan, how
    return min(members, key=lambda m: (m[0].series_id if m[0].series_id is not None else math.inf, str(m[0].path)))


def _flag_duplicate_sessions(subjects: list[Subject], problems: list[str]) -> None:
    seen: set[str] = set()
    for subject in subjects:
        if subject.key in seen:
            problems.append(f"{subject.t1_path}: a second scan for {subject.key}; both are kept")
        seen.add(subject.key)
