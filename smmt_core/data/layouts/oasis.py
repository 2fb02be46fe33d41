"""OASIS-1 (cross-sectional): Analyze images plus the oasis_cross-sectional CSV.

Tree: `[disc*/]OAS1_XXXX_MR1/PROCESSED/MPRAGE/T88_111/*.hdr|.img` (atlas-registered, gain-field
corrected; the brain-masked version is preferred). CSV columns: ID, M/F, Hand, Age, Educ (1-5 code),
SES, MMSE, CDR, eTIV, nWBV, ASF. CDR > 0 (very mild or mild dementia) -> AD, CDR = 0 -> CN, no CDR
(the young controls) -> unknown. Educ is a 1-5 code, not years, so it is kept apart as EDUC_CODE.
Repeat scans (MR2) take missing clinical values from the same person's MR1 row.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from smmt_core.data.image_files import check_image_header, find_volumes, volume_stem
from smmt_core.data.layouts.common import is_missing, parse_number, parse_score, parse_sex, read_table, require_columns
from smmt_core.data.subject import Cohort, Subject
from smmt_core.errors import DataError

SESSION_DIR = re.compile(r"^(OAS1_\d{4})_(MR\d+)$")
CSV_REQUIRED = ("ID", "M/F", "Age", "Educ", "MMSE", "CDR")


def find_session_dirs(root: Path, depth: int = 3) -> list[Path]:
    """OAS1_XXXX_MRn folders in root or a few levels below (the download comes as disc1, disc2, ...)."""
    found: list[Path] = []
    for child in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if SESSION_DIR.match(child.name):
            found.append(child)
        elif depth > 1:
            found.extend(find_session_dirs(child, depth - 1))
    return found


def find_csv(root: Path) -> Path | None:
    tables = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() == ".csv")
    if not tables:
        return None
    return min(tables, key=lambda p: ("cross" not in p.name.lower(), "oasis" not in p.name.lower(), p.name))


def pick_image(session_dir: Path) -> tuple[Path | None, str | None]:
    """The T88_111 atlas-registered image, brain-masked if present."""
    folder = session_dir / "PROCESSED" / "MPRAGE" / "T88_111"
    if not folder.is_dir():
        return None, None
    volumes = [v for v in find_volumes(folder) if v.name.lower().endswith(".hdr")] or find_volumes(folder)
    if not volumes:
        return None, None

    def order(v: Path):
        stem = volume_stem(v).lower()
        return ("masked_gfc" not in stem, "gfc" not in stem, stem)

    chosen = min(volumes, key=order)
    note = f"picked {chosen.name} among {len(volumes)} T88_111 images" if len(volumes) > 1 else None
    return chosen, note


def _clinical(row: dict, where: str, problems: list[str]) -> tuple[dict, dict]:
    numeric: dict[str, float] = {}
    for column, name in (("Age", "AGE"), ("MMSE", "MMSE"), ("CDR", "CDGLOBAL")):
        numeric[name], problem = parse_score(name, row.get(column))
        if problem:
            problems.append(f"{where}: {column}: {problem}")
    educ, problem = parse_number(row.get("Educ"))
    if problem or not (math.isnan(educ) or 1 <= educ <= 5):
        problems.append(f"{where}: Educ: {problem or f'{educ:g} is not an education code 1-5'}")
        educ = math.nan
    numeric["EDUC_CODE"] = educ
    sex, problem = parse_sex(row.get("M/F"))
    if problem:
        problems.append(f"{where}: M/F: {problem}")
    return numeric, {"PTGENDER": sex}


def load_oasis(root: Path) -> Cohort:
    root = Path(root)
    problems: list[str] = []
    sessions = find_session_dirs(root)
    if not sessions:
        raise DataError("not an OASIS-1 download: no OAS1_XXXX_MR1 folders", root)
    csv = find_csv(root)
    rows: dict[str, dict] = {}
    if csv is None:
        problems.append(f"{root}: no OASIS CSV (oasis_cross-sectional.csv) found; subjects have no clinical data or labels")
    else:
        frame = read_table(csv)
        require_columns(frame, CSV_REQUIRED, csv)
        for record in frame.to_dict("records"):
            if not is_missing(record["ID"]):
                rows.setdefault(record["ID"].strip(), record)
    subjects: list[Subject] = []
    for session_dir in sessions:
        person, visit = SESSION_DIR.match(session_dir.name).groups()
        notes: list[str] = []
        t1, note = pick_image(session_dir)
        if note:
            notes.append(note)
        if t1 is None:
            problems.append(f"{session_dir}: no PROCESSED/MPRAGE/T88_111 image; this scan has no MRI")
        else:
            problem = check_image_header(t1)
            if problem:
                problems.append(f"{t1}: {problem}; this scan has no MRI")
                t1 = None
        numeric, categorical, label = {}, {}, None
        row = rows.get(session_dir.name)
        if row is None and csv is not None:
            problems.append(f"{csv}: no row for {session_dir.name}; this scan has no clinical data")
        elif row is not None:
            where = f"{csv}: {session_dir.name}"
            numeric, categorical = _clinical(row, where, problems)
            first = rows.get(f"{person}_MR1")
            if visit != "MR1" and first is not None:
                base_numeric, base_categorical = _clinical(first, f"{csv}: {person}_MR1", [])
                filled = [k for k, v in numeric.items() if math.isnan(v) and not math.isnan(base_numeric[k])]
                numeric.update({k: base_numeric[k] for k in filled})
                if categorical["PTGENDER"] is None and base_categorical["PTGENDER"] is not None:
                    categorical["PTGENDER"] = base_categorical["PTGENDER"]
                    filled.append("PTGENDER")
                if filled:
                    notes.append(f"{', '.join(filled)} taken from {person}_MR1 (repeat scan)")
            cdr = numeric["CDGLOBAL"]
            label = None if math.isnan(cdr) else ("AD" if cdr > 0 else "CN")
        subjects.append(Subject(person, label, t1, numeric, categorical, visit, "oasis", notes))
    if csv is not None:
        listed = {s.name for s in sessions}
        unmatched = [i for i in rows if i not in listed]
        if unmatched:
            problems.append(f"{csv}: {len(unmatched)} row(s) without an image folder here (other discs?), "
                            f"e.g. {unmatched[0]}")
    return Cohort(subjects, "oasis", root, name=f"OASIS-1 ({root.name})", problems=problems)
