"""DICOM folders in, one T1 NIfTI out: dcm2niix converts, the series metadata choose the T1.

Why dcm2niix: it is the converter the field trusts (BIDS, fMRIPrep, Clinica use it); it handles
vendor quirks, mosaics, gantry tilt and slice order that a hand-written reader would get wrong,
and the `dcm2niix` wheel ships the binary. It writes one NIfTI + JSON sidecar per series; the
sidecar (SeriesDescription, ProtocolName, MRAcquisitionType, EchoTime, ...) says which series is
the T1. The choice is returned as a sentence so the user sees which series was used and why.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from smmt_core.data.image_files import find_volumes_below
from smmt_core.data.intake import deps
from smmt_core.errors import DataError
from smmt_core.fileio import hash_file_into

_MAX_DEPTH = 6
_DICOM_SUFFIXES = {".dcm", ".ima", ".dicom"}
_T1_WORDS = re.compile(r"(t1|mp-?rage|mprage|\bmpr\b|spgr|bravo|tfe|mp2rage|3d[-_ ]?t1)", re.IGNORECASE)
_NOT_T1_WORDS = re.compile(r"(t2|flair|dwi|dti|diffusion|bold|fmri|rest|pd\b|swi|asl|perf|loc|scout|survey|"
                           r"calib|field ?map|b1map|mask|seg)", re.IGNORECASE)


def is_dicom_file(path: Path) -> bool:
    """A Part-10 DICOM file ("DICM" after the 128-byte preamble), or a .dcm/.ima file."""
    if not path.is_file() or path.name.startswith("."):
        return False
    if path.suffix.lower() in _DICOM_SUFFIXES:
        return True
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def find_dicom_files(folder, max_depth: int = _MAX_DEPTH, limit: int | None = None) -> list[Path]:
    """DICOM files in `folder` and its sub-folders (sorted; at most `limit` when given)."""
    out: list[Path] = []
    stack = [(Path(folder), 0)]
    while stack:
        current, depth = stack.pop()
        try:
            entries = sorted(current.iterdir())
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                if depth < max_depth:
                    stack.append((entry, depth + 1))
            elif is_dicom_file(entry):
                out.append(entry)
                if limit is not None and len(out) >= limit:
                    return sorted(out)
    return sorted(out)


def is_dicom_folder(folder) -> bool:
    """A folder with DICOM files somewhere below it (cheap: stops at the first one)."""
    folder = Path(folder)
    return folder.is_dir() and bool(find_dicom_files(folder, limit=1))


def _patient_id(path: Path) -> str | None:
    try:
        import pydicom

        return str(pydicom.dcmread(str(path), stop_before_pixels=True, specific_tags=["PatientID"]).get("PatientID"))
    except Exception:  # no pydicom, or not readable: unknown
        return None


def is_dicom_subject_folder(folder) -> bool:
    """DICOM files below `folder`, all of one patient, and no image volumes (a folder of patients,
    or DICOM beside NIfTI subject folders, is a dataset).

    The patient is read (PatientID, with pydicom when installed) from the first DICOM file in the
    folder and in each sub-folder, so a large export costs one small read per sub-folder.
    """
    folder = Path(folder)
    if not is_dicom_folder(folder) or find_volumes_below(folder, 2):  # NIfTI subjects beside it: a dataset
        return False
    firsts = find_dicom_files(folder, max_depth=0, limit=1)
    try:
        children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return False
    for child in children[:64]:
        firsts.extend(find_dicom_files(child, limit=1))
    patients = {pid for pid in (_patient_id(f) for f in firsts) if pid}
    return len(patients) <= 1


def folder_digest(folder) -> str:
    """sha256 over the DICOM files' relative paths and contents: the cache key of a DICOM folder."""
    folder = Path(folder)
    h = hashlib.sha256(b"dicom-folder-v1")
    files = find_dicom_files(folder)
    if not files:
        raise DataError("no DICOM files found in this folder", folder)
    for f in files:
        h.update(str(f.relative_to(folder)).encode() + b"\0")
        hash_file_into(h, f, "DICOM file")
    return h.hexdigest()


@dataclass
class Series:
    nifti: Path
    meta: dict
    shape: tuple[int, ...]

    @property
    def name(self) -> str:
        desc = self.meta.get("SeriesDescription") or self.meta.get("ProtocolName") or self.nifti.name
        number = self.meta.get("SeriesNumber")
        return f"series {number} '{desc}'" if number is not None else f"'{desc}'"


def t1_evidence(series: Series) -> tuple[float, list[str]]:
    """A score (higher = more T1-like) and the reasons, from the sidecar metadata and the shape."""
    meta = series.meta
    text = " ".join(str(meta.get(k, "")) for k in ("SeriesDescription", "ProtocolName", "SequenceName",
                                                    "PulseSequenceDetails"))
    score, why = 0.0, []
    if _NOT_T1_WORDS.search(text):
        score -= 5
        why.append("name says another contrast or a localizer")
    if _T1_WORDS.search(text):
        score += 3
        why.append("name says T1")
    if str(meta.get("MRAcquisitionType", "")).upper() == "3D":
        score += 1
        why.append("3D acquisition")
    te, tr = meta.get("EchoTime"), meta.get("RepetitionTime")
    if isinstance(te, (int, float)) and te < 0.01 and isinstance(tr, (int, float)) and tr < 3.5:
        score += 1
        why.append(f"short TE ({te * 1000:.1f} ms) and TR ({tr * 1000:.0f} ms)")
    if "IR" in str(meta.get("ScanningSequence", "")).upper() or meta.get("InversionTime"):
        score += 1
        why.append("inversion recovery")
    if len(series.shape) != 3 or min(series.shape[:3]) < 40:
        score -= 10
        why.append(f"not a 3D volume (shape {series.shape})")
    return score, why


def convert(folder, out_dir) -> tuple[Path, str]:
    """Convert a DICOM folder with dcm2niix and choose the T1 series.

    Returns (the T1 NIfTI under `out_dir`, a sentence saying which series was chosen and why).
    DataError naming the folder when it holds no DICOM, dcm2niix fails, or no series is a T1.
    """
    import nibabel as nib

    folder, out_dir = Path(folder), Path(out_dir)
    deps.require("DICOM conversion", folder, names=("dcm2niix",))
    import dcm2niix

    if not find_dicom_files(folder, limit=1):
        raise DataError("no DICOM files found in this folder", folder)
    out_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([dcm2niix.bin, "-z", "y", "-b", "y", "-ba", "y", "-f", "%s_%p_%t", "-d", str(_MAX_DEPTH),
                           "-o", str(out_dir), str(folder)], capture_output=True, text=True, check=False)
    niftis = sorted(out_dir.glob("*.nii.gz"))
    if not niftis:
        last = (proc.stderr or proc.stdout or "").strip().splitlines()[-1:] or ["no output"]
        raise DataError(f"dcm2niix could not convert this DICOM folder ({last[0]})", folder)
    series = []
    for nii in niftis:
        sidecar = nii.with_name(nii.name[:-len(".nii.gz")] + ".json")
        try:
            meta = json.loads(sidecar.read_text()) if sidecar.exists() else {}
        except (OSError, ValueError):
            meta = {}
        try:
            shape = tuple(int(n) for n in nib.load(str(nii)).shape)
        except Exception:  # a series dcm2niix wrote but nibabel cannot read: not a candidate
            continue
        series.append(Series(nii, meta, shape))
    scored = sorted(((t1_evidence(s), s) for s in series), key=lambda item: -item[0][0])
    if not scored or scored[0][0][0] <= 0:
        names = ", ".join(s.name for s in series[:6]) or "none readable"
        raise DataError(f"no T1 series among the {len(series)} series in this DICOM folder ({names})", folder)
    (best_score, why), chosen = scored[0]
    ties = [s for (sc, _), s in scored[1:] if sc == best_score]
    if ties:
        names = ", ".join(s.name for s in [chosen, *ties])
        raise DataError(f"several series look equally like the T1 ({names}); put one series per folder", folder)
    note = f"DICOM: used {chosen.name} as the T1 ({', '.join(why)})"
    if len(series) > 1:
        note += f"; {len(series) - 1} other series ignored ({', '.join(s.name for s in series if s is not chosen)[:200]})"
    return chosen.nifti, note
