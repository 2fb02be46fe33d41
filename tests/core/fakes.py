"""Tiny fake datasets on disk, with the real file and folder names of each layout.

Volumes are 8x8x8 by default so a whole tree is written in milliseconds. Used by the loader and
validate tests (and by anyone who needs a small real-looking dataset in a test).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nibabel as nib
import numpy as np


def volume_data(shape=(8, 8, 8), seed: int = 0) -> np.ndarray:
    """A blob brighter in the middle, plus noise: finite, non-constant, brain-ish."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    blob = np.exp(-sum(g**2 for g in grids) * 2)
    return (blob * 100 + rng.random(shape) * 5).astype(np.float32)


def write_volume(path, shape=(8, 8, 8), *, kind: str = "ok", seed: int = 0) -> Path:
    """Write an image whose format follows the extension (.nii/.nii.gz/.mgz/.mgh/.hdr).

    kind: "ok", "nan" (some NaN voxels), "constant", "4d" (two volumes), "2d" (a single slice).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = volume_data(shape, seed)
    if kind == "nan":
        data[0, 0, :] = np.nan
    elif kind == "constant":
        data[:] = 7.0
    elif kind == "4d":
        data = np.stack([data, data], axis=-1)
    elif kind == "2d":
        data = data[:, :, 0]
    elif kind != "ok":
        raise ValueError(kind)
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    name = path.name.lower()
    if name.endswith((".mgz", ".mgh")):
        image = nib.MGHImage(data, affine)
    elif name.endswith(".hdr") or name.endswith(".img"):
        image = nib.AnalyzeImage(data, affine)
    else:
        image = nib.Nifti1Image(data, affine)
    nib.save(image, str(path))
    return path


def truncate(path, keep: int = 600) -> Path:
    """Cut a file short, as an interrupted copy or download would."""
    path = Path(path)
    path.write_bytes(path.read_bytes()[:keep])
    return path


def write_table(path, rows: list[dict], *, sep: str = ",", columns: list[str] | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = columns or list(dict.fromkeys(k for row in rows for k in row))
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, columns, delimiter=sep, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in columns})
    return path


def make_subject_folder(root, name: str = "subject01", *, clinical: dict | None = None,
                        clinical_format: str = "json", images=("T1.nii.gz",), kind: str = "ok") -> Path:
    """A folder with the given image files and an optional clinical.json / clinical.csv / clinical.tsv."""
    folder = Path(root) / name
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        write_volume(folder / image, kind=kind, seed=i)
    if clinical is not None:
        if clinical_format == "json":
            (folder / "clinical.json").write_text(json.dumps(clinical))
        else:
            write_table(folder / f"clinical.{clinical_format}", [clinical], sep="\t" if clinical_format == "tsv" else ",")
    return folder


def make_bids(root, participants: list[dict], *, name: str = "Test BIDS dataset",
              sessions: dict[str, list[dict]] | None = None, images: dict[str, list[str | None]] | None = None,
              description: dict | None = None) -> Path:
    """A BIDS tree. participants: rows with participant_id first. sessions: pid -> sessions.tsv rows.

    images: pid -> list of session ids (None = no session level) that get a T1w; by default every
    participant gets one T1w without sessions (or one per listed session when sessions are given).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text(
        json.dumps(description or {"Name": name, "BIDSVersion": "1.8.0", "DatasetType": "raw"}))
    columns = ["participant_id"] + [k for k in dict.fromkeys(k for r in participants for k in r) if k != "participant_id"]
    write_table(root / "participants.tsv", participants, sep="\t", columns=columns)
    sessions = sessions or {}
    for row in participants:
        pid = row["participant_id"]
        if pid in sessions:
            write_table(root / pid / f"{pid}_sessions.tsv", sessions[pid], sep="\t")
        default = [s["session_id"] for s in sessions.get(pid, [])] or [None]
        for i, ses in enumerate((images or {}).get(pid, default)):
            anat = root / pid / ses / "anat" if ses else root / pid / "anat"
            stem = f"{pid}_{ses}" if ses else pid
            write_volume(anat / f"{stem}_T1w.nii.gz", seed=i)
    return root


def adni_scan_path(root, ptid: str, description: str, date: str, series: int, image: int,
                   leaf: str = "I") -> Path:
    """Where LONI IDA puts one scan: ADNI/<PTID>/<desc>/<date>_HH_MM_SS.0/<I… or S…>/ADNI_…nii."""
    stamp = date.replace("-", "") + "123456789"
    leaf_dir = f"I{image}" if leaf == "I" else f"S{series}"
    name = f"ADNI_{ptid}_MR_{description}_Br_{stamp}_S{series}_I{image}.nii"
    return Path(root) / "ADNI" / ptid / description / f"{date}_10_22_35.0" / leaf_dir / name


def make_adni(root, scans: list[dict], merge_rows: list[dict] | None,
              merge_name: str = "ADNIMERGE_15Jan2024.csv") -> Path:
    """scans: dicts with ptid, description, date (YYYY-MM-DD), series, image, optional leaf/kind."""
    root = Path(root)
    for scan in scans:
        path = adni_scan_path(root, scan["ptid"], scan.get("description", "MPR__GradWarp__B1_Correction__N3__Scaled"),
                              scan["date"], scan["series"], scan["image"], scan.get("leaf", "I"))
        write_volume(path, kind=scan.get("kind", "ok"), seed=scan["image"] % 7)
    if merge_rows is not None:
        write_table(root / merge_name, merge_rows)
    return root


OASIS_COLUMNS = ["ID", "M/F", "Hand", "Age", "Educ", "SES", "MMSE", "CDR", "eTIV", "nWBV", "ASF", "Delay"]


def make_oasis(root, rows: list[dict], *, with_images=None, csv_name: str = "oasis_cross-sectional.csv",
               disc: str | None = "disc1") -> Path:
    """OASIS-1: [disc1/]OAS1_XXXX_MRn/PROCESSED/MPRAGE/T88_111/<id>_mpr_n4_anon_111_t88_{gfc,masked_gfc}.hdr/.img."""
    root = Path(root)
    base = root / disc if disc else root
    ids = with_images if with_images is not None else [r["ID"] for r in rows]
    for i, sid in enumerate(ids):
        t88 = base / sid / "PROCESSED" / "MPRAGE" / "T88_111"
        write_volume(t88 / f"{sid}_mpr_n4_anon_111_t88_gfc.hdr", seed=i)
        write_volume(t88 / f"{sid}_mpr_n4_anon_111_t88_masked_gfc.hdr", seed=i + 1)
    write_table(root / csv_name, rows, columns=OASIS_COLUMNS)
    return root
