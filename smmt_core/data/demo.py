"""The SYNTHETIC demo cohort: a small BIDS dataset that lets anyone try SMMT Studio offline.

Why synthetic: ADNI and OASIS cannot be redistributed and no registry ships patient MRI. The demo
cohort is built on the user's machine from the MNI152 2009 template bundled with nilearn, so the
app works on first launch with no download. It is labelled SYNTHETIC everywhere (dataset name,
description, README, every NIfTI header) so nobody mistakes it for patient data.

What is in it (see docs/demo-cohort.md for the calibration and what a classifier can reach):
each subject has a diagnosis (CN/AD, or CN/MCI/AD), a disease severity that drives the clinical
scores (demo_clinical) and the hippocampal shrinkage and ventricle enlargement in the T1 image
(demo_anatomy), plus nuisance variation (head size, a smooth random warp, bias field, noise).

Reproducibility: everything about subject i comes from random streams keyed by (seed, i), so the
same seed gives byte-identical files, and the first n subjects of a larger cohort are the same as
a cohort of n. Diagnoses are assigned in permuted blocks, so every block of subjects has the same
class mix. The dataset is written to a temporary folder next to the output and renamed into place
at the end: an interrupted build leaves nothing half-written (a killed one leaves its staging
folder, removed by the next build of that folder). One process builds a folder at a time (it is
locked, `smmt_core.folder_lock`): a second is refused, naming the first. A build can be stopped from another
thread (the `stop` event, checked between subjects); it then raises `DemoBuildStopped`.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import nibabel as nib
import numpy as np

from smmt_core import __version__
from smmt_core.data.demo_clinical import ClinicalDraw, draw_clinical
from smmt_core.data.demo_defaults import (  # noqa: F401 (re-exported: the CLI reads them without this module)
    DEFAULT_MISSING_RATE,
    DEFAULT_SEED,
    DEFAULT_SUBJECTS,
    DEMO_DIR_ENV,
    default_demo_dir,
)
from smmt_core.errors import ConfigError, DataError, SMMTError
from smmt_core.fileio import read_json
from smmt_core.folder_lock import FolderInUse, lock_folder
from smmt_core.modalities import MODALITY_NAMES

MAX_MISSING_RATE = 1.0 / 3.0  # three modalities, at most one missing per subject
GENERATOR_VERSION = 1  # bump when the same parameters would produce different files
MARKER = "smmt-demo.json"  # parameters of a finished build; written last

# Columns of participants.tsv, in order. `severity` is the hidden disease variable, kept for
# transparency; it is not a feature (the loaders ignore columns they do not know).
NUMERIC_COLUMNS = ("AGE", "PTEDUCAT", "MMSE", "CDGLOBAL", "CDRSB", "ADAS13", "FAQ")
CATEGORICAL_COLUMNS = ("PTGENDER", "APOE4")
PARTICIPANT_COLUMNS = ("participant_id", "diagnosis", "AGE", "PTGENDER", "PTEDUCAT", "APOE4", "MMSE",
                       "CDGLOBAL", "CDRSB", "ADAS13", "FAQ", "severity")
_FORMATS = {"AGE": "{:.1f}", "PTEDUCAT": "{:.0f}", "MMSE": "{:.0f}", "CDGLOBAL": "{:.1f}",
            "CDRSB": "{:.1f}", "ADAS13": "{:.2f}", "FAQ": "{:.0f}", "severity": "{:.3f}"}

# Permuted blocks of diagnoses: CN:AD about 55:45 as in ADNI-1 (229 CN, 188 AD); with MCI a
# balanced 3:4:3 mix.
_BLOCKS = {False: ("CN",) * 6 + ("AD",) * 5, True: ("CN",) * 3 + ("MCI",) * 4 + ("AD",) * 3}

# Independent random streams, so that e.g. the missing rate never changes scores or images.
_STREAM_BLOCKS, _STREAM_CLINICAL, _STREAM_IMAGE, _STREAM_MISSING = range(4)

SYNTHETIC_DESCRIPTOR = "SYNTHETIC demo subject (smmt-studio) - not patient data"  # NIfTI descrip, < 80 bytes

Progress = Callable[[int, int], None]


class DemoBuildStopped(SMMTError):
    """The build was stopped on request (its `stop` event was set); nothing was written."""


@dataclass
class DemoSubject:
    """One planned subject: who they are and which modality is missing (if any)."""

    participant_id: str
    index: int
    clinical: ClinicalDraw
    missing: str | None  # None, "mri", "clinical" or "categorical"

    @property
    def diagnosis(self) -> str:
        return self.clinical.diagnosis

    def row(self) -> dict[str, str]:
        """The participants.tsv row, formatted ("n/a" where missing)."""
        values: dict[str, object] = {"participant_id": self.participant_id, "diagnosis": self.diagnosis,
                                     "severity": self.clinical.severity}
        values.update(self.clinical.numeric)
        values.update(self.clinical.categorical)
        blank = {"clinical": NUMERIC_COLUMNS, "categorical": CATEGORICAL_COLUMNS}.get(self.missing or "", ())
        row = {}
        for column in PARTICIPANT_COLUMNS:
            value = values[column]
            if column in blank:
                row[column] = "n/a"
            elif column in _FORMATS:
                row[column] = _FORMATS[column].format(value)
            else:
                row[column] = str(value)
        return row


def _rng(seed: int, stream: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stream, index)))


def _check_parameters(n_subjects, seed, missing_rate) -> None:
    if isinstance(n_subjects, bool) or not isinstance(n_subjects, (int, np.integer)) or n_subjects < 1:
        raise ConfigError(f"the demo cohort needs at least 1 subject, got {n_subjects!r}")
    if n_subjects > 99_999:
        raise ConfigError(f"at most 99999 demo subjects, got {n_subjects}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"the seed must be a non-negative integer, got {seed!r}")
    if not isinstance(missing_rate, (int, float)) or not 0.0 <= missing_rate <= MAX_MISSING_RATE:
        raise ConfigError(
            f"missing rate must be between 0 and 1/3 (each modality is missing for that fraction of "
            f"subjects, at most one per subject), got {missing_rate!r}"
        )


def participant_id(index: int, n_subjects: int) -> str:
    """sub-001 ... ; three digits up to 999 subjects, more only when needed."""
    return f"sub-{index + 1:0{max(3, len(str(n_subjects)))}d}"


def plan_cohort(n_subjects: int = DEFAULT_SUBJECTS, seed: int = DEFAULT_SEED, missing_rate: float = 0.0,
                with_mci: bool = False) -> list[DemoSubject]:
    """Diagnoses, scores and missing modalities of every subject, without making images (fast)."""
    _check_parameters(n_subjects, seed, missing_rate)
    block = _BLOCKS[bool(with_mci)]
    subjects = []
    for i in range(n_subjects):
        b, position = divmod(i, len(block))
        diagnosis = block[int(_rng(seed, _STREAM_BLOCKS, b).permutation(len(block))[position])]
        clinical = draw_clinical(diagnosis, _rng(seed, _STREAM_CLINICAL, i))
        u = float(_rng(seed, _STREAM_MISSING, i).random())
        missing = None
        for k, modality in enumerate(MODALITY_NAMES):
            if k * missing_rate <= u < (k + 1) * missing_rate:
                missing = modality
        subjects.append(DemoSubject(participant_id(i, n_subjects), i, clinical, missing))
    return subjects


def _parameters(n_subjects, seed, missing_rate, with_mci) -> dict:
    return {"generator": "smmt-studio demo-data", "generator_version": GENERATOR_VERSION,
            "n_subjects": int(n_subjects), "seed": int(seed), "missing_rate": float(missing_rate),
            "with_mci": bool(with_mci)}


def read_demo_parameters(path: str | Path) -> dict | None:
    """The parameters a finished demo cohort was built with, or None if `path` is not one."""
    marker = Path(path) / MARKER
    if not marker.is_file():
        return None
    try:
        parameters = read_json(marker, "demo cohort marker")
    except DataError:
        return None
    return parameters if isinstance(parameters, dict) and parameters.get("generator") == "smmt-studio demo-data" else None


def make_demo_cohort(out, n_subjects: int = DEFAULT_SUBJECTS, seed: int = DEFAULT_SEED, missing_rate: float = 0.0,
                     with_mci: bool = False, progress: Progress | None = None, *, overwrite: bool = False,
                     stop: threading.Event | None = None, wait: bool = False) -> Path:
    """Build the SYNTHETIC demo cohort as a BIDS dataset in `out` and return its path.

    `out` must not exist, be an empty folder, or already hold a demo cohort: with the same
    parameters it is returned as it is; with other parameters it is replaced only when
    `overwrite` is true. A folder holding anything else is never touched.
    `progress(done, total)` is called after each subject. Setting `stop` (from any thread) ends
    the build before the next subject: the temporary folder is removed, `out` is left as it was,
    and DemoBuildStopped is raised. Once every subject is written the build is completed (a few
    small files) and returned, as is a cohort that already exists.
    One build writes `out` at a time (`smmt_core.folder_lock`): while another process builds it,
    FolderInUse naming that process, or with `wait` this call waits for it and then looks again.
    """
    _check_parameters(n_subjects, seed, missing_rate)
    out = Path(out).expanduser().absolute()
    wanted = _parameters(n_subjects, seed, missing_rate, with_mci)
    if out.is_dir() and read_demo_parameters(out) == wanted:  # complete (renamed into place whole): no lock needed
        if progress:
            progress(n_subjects, n_subjects)
        return out
    try:
        lock = lock_folder(out, "demo cohort folder", wait=wait, stop=stop)
    except FolderInUse:
        _check_stop(stop, out)  # stopped while waiting for another build
        raise
    with lock:
        _remove_abandoned_builds(out)
        replace = _check_existing(out, wanted, overwrite)
        if replace is None:
            if progress:
                progress(n_subjects, n_subjects)
            return out
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f"{_staging_prefix(out)}", dir=out.parent))
        os.chmod(staging, 0o755)  # mkdtemp makes it private; the cohort is ordinary data
        try:
            _write_cohort(staging, wanted, progress, lambda: _check_stop(stop, out))
            _move_into_place(staging, out, wanted, replace)
        except OSError as error:
            if error.filename is None:  # a write into an open file (a full disk) names no path: name the cohort's
                raise OSError(error.errno, error.strerror or str(error), str(out)) from error
            raise
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return out


def _staging_prefix(out: Path) -> str:
    return f".{out.name}.building-"


def _remove_abandoned_builds(out: Path) -> None:
    """Remove the staging and set-aside folders of builds of `out` that died (SIGKILL, power cut)
    before they could clean up. Called with `out` locked: no live build of it can own one."""
    for pattern in (f"{_staging_prefix(out)}*", f".{out.name}.old-*"):
        for leftover in out.parent.glob(pattern):
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)


def _check_existing(out: Path, wanted: dict, overwrite: bool) -> bool | None:
    """What to do with `out`: None when it already holds the wanted cohort, False to build into
    an absent or empty folder, True to replace another demo cohort; DataError when it may not
    be touched."""
    if not out.exists():
        return False
    if not out.is_dir():
        raise DataError("exists and is not a folder; choose a new folder for the demo cohort", out)
    existing = read_demo_parameters(out)
    if existing == wanted:
        return None
    if existing is None and any(out.iterdir()):
        raise DataError("is not empty and is not a demo cohort; choose a new or empty folder", out)
    if existing is not None and not overwrite:
        raise DataError(
            f"already holds a demo cohort built with other settings ({_describe(existing)}); "
            "use another folder or overwrite it", out)
    return existing is not None


def ensure_demo_cohort(progress: Progress | None = None, stop: threading.Event | None = None) -> Path:
    """The app's default demo cohort (400 subjects, seed 0, 15 % missing), built on first use;
    while another process builds it, this waits for that build (every cell of a grid may ask).

    `stop`: as in `make_demo_cohort` (a stopped build raises DemoBuildStopped, writes nothing)."""
    return make_demo_cohort(default_demo_dir(), DEFAULT_SUBJECTS, DEFAULT_SEED, DEFAULT_MISSING_RATE, False,
                            progress, overwrite=True, stop=stop, wait=True)


def _check_stop(stop: threading.Event | None, out: Path) -> None:
    if stop is not None and stop.is_set():
        raise DemoBuildStopped("building the demo cohort was stopped; nothing was written", out)


def _describe(parameters: dict) -> str:
    return (f"{parameters.get('n_subjects')} subjects, seed {parameters.get('seed')}, "
            f"missing rate {parameters.get('missing_rate')}, with MCI {parameters.get('with_mci')}")


def _move_into_place(staging: Path, out: Path, wanted: dict, replace: bool) -> None:
    """Rename the finished build to `out`. An old demo cohort there is moved aside first, but only
    when `replace` (the caller found it there before the build and may overwrite it): whatever
    appeared in `out` during the build (written by something that does not take the folder's
    lock) is left as it is, and the build is refused."""
    old = None
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        found = read_demo_parameters(out) if out.is_dir() else None
        if found == wanted:
            return  # the same cohort, finished by someone else: as good as ours
        if not replace or found is None:
            raise DataError("something was written into the folder while the demo cohort was being built; "
                            "it was left as it is and the new cohort discarded", out)
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, old)
    try:
        os.replace(staging, out)
    except OSError:
        if old is not None:
            os.replace(old, out)
            old = None
        if read_demo_parameters(out) == wanted:
            return
        if out.exists():  # a folder that appeared after the check above: renaming onto it failed
            raise DataError("something was written into the folder while the demo cohort was being built; "
                            "it was left as it is and the new cohort discarded", out) from None
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _write_cohort(root: Path, parameters: dict, progress: Progress | None,
                  check_stop: Callable[[], None] = lambda: None) -> None:
    """Write the whole dataset into `root`; `check_stop()` raises to abandon the build."""
    from smmt_core.data.demo_anatomy import ImageParameters, template_anatomy

    subjects = plan_cohort(parameters["n_subjects"], parameters["seed"], parameters["missing_rate"],
                           parameters["with_mci"])
    total = len(subjects)
    if progress:
        progress(0, total)
    check_stop()
    anatomy = template_anatomy() if any(s.missing != "mri" for s in subjects) else None
    truth_rows = []
    for done, subject in enumerate(subjects, start=1):
        check_stop()
        if subject.missing != "mri":
            image = anatomy.synthesize(
                ImageParameters(hippocampal_change=subject.clinical.hippocampal_size,
                                hippocampal_atrophy=subject.clinical.hippocampal_atrophy,
                                ventricle_change=subject.clinical.ventricle_change,
                                head_scale=subject.clinical.head_scale),
                _rng(parameters["seed"], _STREAM_IMAGE, subject.index),
            )
            anat = root / subject.participant_id / "anat"
            anat.mkdir(parents=True)
            _write_nifti(anat / f"{subject.participant_id}_T1w.nii.gz", image.data, image.affine)
            truth_rows.append([subject.participant_id, f"{subject.clinical.head_scale:.4f}",
                               f"{image.hippocampal_change:.4f}", f"{image.hippocampus_mm3:.1f}",
                               f"{image.ventricle_change:.4f}", f"{image.ventricles_mm3:.1f}"])
        if progress:
            progress(done, total)
    _write_tsv(root / "participants.tsv", PARTICIPANT_COLUMNS, [list(s.row().values()) for s in subjects])
    _write_json(root / "participants.json", _participants_sidecar())
    truth_dir = root / "derivatives" / "synthetic-truth"
    truth_dir.mkdir(parents=True)
    _write_tsv(truth_dir / "image_truth.tsv",
               ("participant_id", "head_scale", "hippocampal_change", "hippocampus_mm3", "ventricle_change",
                "ventricles_mm3"), truth_rows)
    _write_json(truth_dir / "dataset_description.json", {
        "Name": "SYNTHETIC demo cohort: ground truth of the image deformations",
        "BIDSVersion": "1.9.0", "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "smmt-studio demo-data", "Version": __version__}],
        "Description": "What each SYNTHETIC image was made with: head scale, hippocampal and ventricle "
                       "volume change relative to the MNI152 template, and the true volumes (mm3).",
    })
    _write_json(root / "dataset_description.json", _dataset_description(parameters))
    (root / "README").write_text(_readme(parameters, subjects), encoding="utf-8")
    (root / ".bidsignore").write_text(f"{MARKER}\n", encoding="utf-8")
    _write_json(root / MARKER, parameters)  # last: marks the build as complete


def _write_nifti(path: Path, data: np.ndarray, affine: np.ndarray) -> None:
    """A gzipped NIfTI-1 with fixed header fields and gzip mtime 0, so builds are byte-identical."""
    image = nib.Nifti1Image(data, affine)
    header = image.header
    header.set_xyzt_units("mm", "sec")
    header["descrip"] = SYNTHETIC_DESCRIPTOR.encode("ascii")
    header["aux_file"] = b"SYNTHETIC"
    image.set_sform(affine, code=4)  # 4 = MNI152 space
    image.set_qform(affine, code=4)
    path.write_bytes(gzip.compress(image.to_bytes(), compresslevel=4, mtime=0))


def _write_tsv(path: Path, columns, rows) -> None:
    lines = ["\t".join(columns)] + ["\t".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _write_json(path: Path, content: dict) -> None:
    path.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")


def _dataset_description(parameters: dict) -> dict:
    from smmt_core.data.demo_anatomy import MNI_NOTICE

    return {
        "Name": "SMMT Studio demo cohort (SYNTHETIC, not patient data)",
        "BIDSVersion": "1.9.0",
        "DatasetType": "raw",
        "Description": (
            "SYNTHETIC data generated by SMMT Studio for demonstration and testing. No person was "
            "scanned or examined: the T1 images are the MNI ICBM152 2009 template deformed per "
            "subject and the clinical scores are random draws calibrated to ADNI-1 baseline "
            "summary figures. Not patient data; not for clinical or scientific conclusions."
        ),
        "Authors": ["SMMT Studio (generated)"],
        "License": "Generated data; the template-derived images carry the MNI ICBM152 notice (see HowToAcknowledge).",
        "HowToAcknowledge": MNI_NOTICE,
        "GeneratedBy": [{
            "Name": "smmt-studio demo-data",
            "Version": __version__,
            "Description": (f"SYNTHETIC cohort: {_describe(parameters)}, generator version "
                            f"{parameters['generator_version']}"),
        }],
        "ReferencesAndLinks": [
            "Fonov et al., Unbiased average age-appropriate atlases for pediatric studies, NeuroImage 54(1), 2011",
            "Fonov et al., Unbiased nonlinear average age-appropriate brain templates from birth to adulthood, "
            "NeuroImage 47 Suppl 1, 2009",
        ],
    }


def _participants_sidecar() -> dict:
    return {
        "participant_id": {"Description": "SYNTHETIC subject identifier"},
        "diagnosis": {"Description": "Diagnostic group", "Levels": {
            "CN": "cognitively normal", "MCI": "mild cognitive impairment", "AD": "Alzheimer's disease"}},
        "AGE": {"Description": "Age", "Units": "years"},
        "PTGENDER": {"Description": "Sex", "Levels": {"Male": "male", "Female": "female"}},
        "PTEDUCAT": {"Description": "Education", "Units": "years"},
        "APOE4": {"Description": "Number of APOE e4 alleles", "Levels": {"0": "none", "1": "one", "2": "two"}},
        "MMSE": {"Description": "Mini-Mental State Examination total (0-30)"},
        "CDGLOBAL": {"Description": "Global Clinical Dementia Rating (0, 0.5, 1, 2, 3)"},
        "CDRSB": {"Description": "CDR sum of boxes (0-18)"},
        "ADAS13": {"Description": "ADAS-Cog 13-item total (0-85)"},
        "FAQ": {"Description": "Functional Activities Questionnaire total (0-30)"},
        "severity": {"Description": "The hidden disease severity (0-1) that generated the scores and the "
                                    "atrophy; for transparency only, NOT a feature"},
    }


def _readme(parameters: dict, subjects: list[DemoSubject]) -> str:
    from smmt_core.data.demo_anatomy import MNI_NOTICE, OUTPUT_RESOLUTION_MM

    counts = {d: sum(s.diagnosis == d for s in subjects) for d in ("CN", "MCI", "AD")}
    missing = {m: sum(s.missing == m for s in subjects) for m in MODALITY_NAMES}
    mix = ", ".join(f"{n} {d}" for d, n in counts.items() if n)
    return f"""SMMT Studio demo cohort -- SYNTHETIC DATA, NOT PATIENT DATA
=============================================================

Every file in this folder was generated by `smmt demo-data` (SMMT Studio {__version__}).
No person was scanned or examined. Use it to try the software, never to draw clinical or
scientific conclusions.

Contents ({_describe(parameters)}): {len(subjects)} subjects ({mix}).
Missing modalities: {missing['mri']} without MRI (no image file), {missing['clinical']} without
numeric clinical scores, {missing['categorical']} without sex/APOE4 ("n/a" in participants.tsv).

- participants.tsv: diagnosis, AGE, PTGENDER, PTEDUCAT, APOE4, MMSE, CDGLOBAL, CDRSB, ADAS13,
  FAQ (ADNIMERGE column names), and `severity`, the hidden disease variable that generated the
  scores and the atrophy (kept for transparency; it is not a feature).
- sub-*/anat/sub-*_T1w.nii.gz: T1-weighted images, {OUTPUT_RESOLUTION_MM} mm isotropic, in MNI152 space
  (sform/qform code 4), skull-stripped, int16. The NIfTI `descrip` field says SYNTHETIC.
- derivatives/synthetic-truth/image_truth.tsv: what each image was made with (head scale,
  hippocampal and ventricle volume change, true volumes).

How the images are made: the MNI ICBM152 2009 template (bundled with nilearn) is deformed per
subject -- hippocampal shrinkage and ventricle enlargement that grow with the disease severity
and age, a smooth random deformation, head size +-5 % -- then given a smooth bias field, a
contrast change and Rician noise. The clinical scores follow ADNI-1 baseline summary figures per
diagnosis and share the same severity. Same parameters, same files (byte for byte).

Template copyright notice
-------------------------
{MNI_NOTICE}
"""
