"""BIDS datasets (also what Clinica's adni-to-bids, OASIS-3 and our synthetic demo cohort produce).

`dataset_description.json`, `participants.tsv` (first column `participant_id`), optional
`sub-X/sub-X_sessions.tsv`, images at `sub-X[/ses-Y]/anat/sub-X[_ses-Y][_...]_T1w.nii[.gz]`.
One Subject per (participant, session) that has a T1; a participant without any T1 still appears,
without MRI, so its clinical data can be used. Session rows override participant values (age and
scores change between visits; sex and APOE do not).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from smmt_core.data.image_files import check_image_header, is_volume
from smmt_core.data.layouts.common import clinical_from_record, is_missing, read_json_object, read_table
from smmt_core.data.subject import Cohort, Subject
from smmt_core.errors import DataError

DESCRIPTION = "dataset_description.json"
PARTICIPANTS = "participants.tsv"
_T1W = re.compile(r"_T1w\.nii(\.gz)?$")
_RUN = re.compile(r"_run-(\d+)")


def looks_like_bids(root: Path) -> bool:
    if (root / DESCRIPTION).is_file() or (root / PARTICIPANTS).is_file():
        return True
    return any(p.is_dir() and p.name.startswith("sub-") for p in root.iterdir())


def _with_prefix(value: str, prefix: str) -> str:
    value = str(value).strip()
    return value if value.startswith(prefix) else prefix + value


def dataset_name(root: Path, problems: list[str]) -> tuple[str, bool]:
    """(Name, synthetic): synthetic when the name or any description field says SYNTHETIC."""
    path = root / DESCRIPTION
    if not path.is_file():
        problems.append(f"{path}: missing (a BIDS dataset should describe itself); using the folder name")
        return root.name, False
    try:
        description = read_json_object(path)
    except DataError as error:
        problems.append(f"{error}; using the folder name")
        return root.name, False
    name = str(description.get("Name") or root.name)
    texts = [v for v in description.values() if isinstance(v, str)]
    for generator in description.get("GeneratedBy") or []:
        if isinstance(generator, dict):
            texts.extend(v for v in generator.values() if isinstance(v, str))
    synthetic = any("synthetic" in t.lower() for t in texts)
    return name, synthetic


def _read_participants(root: Path, problems: list[str]) -> dict[str, dict]:
    """participant_id -> row (dict of strings), in file order."""
    path = root / PARTICIPANTS
    if not path.is_file():
        problems.append(f"{path}: missing; subjects have no clinical data or labels")
        return {}
    frame = read_table(path, sep="\t")
    if len(frame.columns) == 0 or frame.columns[0] != "participant_id":
        found = frame.columns[0] if len(frame.columns) else "nothing"
        if len(frame.columns) == 1 and "," in found:
            raise DataError("not tab-separated (participants.tsv must use tabs, found commas)", path)
        raise DataError(f"missing column participant_id (the first column must be participant_id, found {found!r})", path)
    rows: dict[str, dict] = {}
    for index, row in enumerate(frame.to_dict("records"), start=2):
        raw = row.pop("participant_id")
        if is_missing(raw):
            problems.append(f"{path}: line {index}: empty participant_id; row skipped")
            continue
        pid = _with_prefix(raw, "sub-")
        if pid in rows:
            problems.append(f"{path}: line {index}: {pid} appears twice; the first row is used")
            continue
        rows[pid] = row
    return rows


def _read_sessions(subject_dir: Path) -> tuple[Path | None, dict[str, dict]]:
    """session_id -> row from sub-X/sub-X_sessions.tsv (or sessions.tsv)."""
    for name in (f"{subject_dir.name}_sessions.tsv", "sessions.tsv"):
        path = subject_dir / name
        if path.is_file():
            frame = read_table(path, sep="\t")
            if "session_id" not in frame.columns:
                found = ", ".join(frame.columns[:8])
                raise DataError(f"missing column session_id (found: {found})", path)
            rows = {}
            for row in frame.to_dict("records"):
                sid = row.pop("session_id")
                if not is_missing(sid):
                    rows.setdefault(_with_prefix(sid, "ses-"), row)
            return path, rows
    return None, {}


def _pick_t1(anat: Path) -> tuple[Path | None, str | None]:
    """The T1w image of an anat folder; with several runs the lowest run (noted)."""
    if not anat.is_dir():
        return None, None
    t1s = sorted(p for p in anat.iterdir() if p.is_file() and _T1W.search(p.name))
    if not t1s:
        return None, None
    if len(t1s) == 1:
        return t1s[0], None

    def order(p: Path):
        run = _RUN.search(p.name)
        return (int(run.group(1)) if run else 0, "_acq-" in p.name, p.name)

    chosen = min(t1s, key=order)
    return chosen, f"picked {chosen.name} among {len(t1s)} T1w images ({', '.join(p.name for p in t1s)})"


def _merge(base: tuple[dict, dict, str | None], extra: tuple[dict, dict, str | None]):
    """Values from `extra` (a session) override `base` (the participant) where they are present."""
    numeric = dict(base[0])
    numeric.update({k: v for k, v in extra[0].items() if not math.isnan(v)})
    categorical = dict(base[1])
    categorical.update({k: v for k, v in extra[1].items() if v is not None})
    return numeric, categorical, extra[2] or base[2]


def load_bids(root: Path, *, only: str | None = None) -> Cohort:
    """The whole dataset, or with `only` ("sub-X") that one participant (its sessions, its
    participants.tsv row), as when a single sub-X folder is opened; DataError if it is not there."""
    root = Path(root)
    problems: list[str] = []
    name, synthetic = dataset_name(root, problems)
    participants = _read_participants(root, problems)
    participants_path = root / PARTICIPANTS
    folders = {p.name: p for p in sorted(root.iterdir()) if p.is_dir() and p.name.startswith("sub-")}
    listed = set(participants)
    if only is not None:
        only = _with_prefix(only, "sub-")
        if only not in participants and only not in folders:
            raise DataError(f"no participant {only} in this BIDS dataset", root)
        participants = {k: v for k, v in participants.items() if k == only}
        folders = {k: v for k, v in folders.items() if k == only}
    for pid in folders:
        if listed and pid not in listed:
            problems.append(f"{root / pid}: not listed in participants.tsv; no clinical data for it")
    subjects: list[Subject] = []
    for pid in list(participants) + [p for p in folders if p not in participants]:
        row = participants.get(pid, {})
        numeric, categorical, label, _ = clinical_from_record(row, where=f"{participants_path}: {pid}", problems=problems)
        base = (numeric, categorical, label)
        folder = folders.get(pid)
        if folder is None:
            subjects.append(Subject(pid, label, None, numeric, categorical, None, "bids",
                                    ["no image folder for this participant"]))
            continue
        sessions_path, session_rows = _read_sessions(folder)
        session_dirs = sorted(p for p in folder.iterdir() if p.is_dir() and p.name.startswith("ses-"))
        scans: list[tuple[str | None, Path, str | None]] = []
        if session_dirs:
            for ses in session_dirs:
                t1, note = _pick_t1(ses / "anat")
                if t1 is not None:
                    scans.append((ses.name, t1, note))
        else:
            t1, note = _pick_t1(folder / "anat")
            if t1 is not None:
                scans.append((None, t1, note))
        if not scans:
            first_session = next(iter(session_rows), None)
            merged = base
            if first_session:
                extra = clinical_from_record(session_rows[first_session], where=f"{sessions_path}: {first_session}",
                                             problems=problems)[:3]
                merged = _merge(base, extra)
            others = [p.name for p in sorted(folder.rglob("*")) if is_volume(p)]
            if others:  # images, but none named *_T1w: probably a naming mistake
                problems.append(f"{folder}: no *_T1w.nii[.gz] image (found {', '.join(others[:3])}); {pid} has no MRI")
            subjects.append(Subject(pid, merged[2], None, merged[0], merged[1], first_session, "bids",
                                    ["no T1w image for this participant"]))
            continue
        for session, t1, note in scans:
            merged = base
            if session is not None and session in session_rows:
                extra = clinical_from_record(session_rows[session], where=f"{sessions_path}: {session}",
                                             problems=problems)[:3]
                merged = _merge(base, extra)
            notes = [note] if note else []
            problem = check_image_header(t1)
            if problem:
                problems.append(f"{t1}: {problem}; this scan has no MRI")
                t1 = None
            subjects.append(Subject(pid, merged[2], t1, merged[0], merged[1], session, "bids", notes))
    if not subjects:
        raise DataError("no participants: participants.tsv is empty and there is no sub-* folder", root)
    for subject in subjects:
        subject.synthetic = synthetic  # travels with a subject shown on its own
    return Cohort(subjects, "bids", root, name=name, synthetic=synthetic, problems=problems)
