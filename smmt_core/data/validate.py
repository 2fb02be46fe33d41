"""Check a dataset before training on it: what layout, how many subjects, labels, modalities, problems.

`validate_path` loads the dataset with the normal loaders (so it sees exactly what training will
see) and then, unless told not to, reads every T1 fully: a NIfTI can have a fine header and still
be truncated, NaN-filled or constant. In a dataset, a bad image is a listed problem and that scan
loses its MRI; for a single subject (one file or one subject folder) it is fatal, because there is
nothing left to predict from. Fatal problems raise `DataError`; everything else is in the report.

Usable means: a dataset has at least one subject with a label and at least one modality; a single
subject (file or subject folder, used for prediction) has at least one modality, label or not.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from smmt_core.data.image_files import check_image_data
from smmt_core.data.loaders import load_dataset
from smmt_core.data.subject import ALL_MODALITIES, DIAGNOSES, LABEL_SETS, Cohort
from smmt_core.data.t1 import read_t1
from smmt_core.errors import DataError, SMMTError

UNKNOWN_LABEL = "unknown"
MAX_PROBLEMS_SHOWN = 20


@dataclass
class ValidationReport:
    """What `smmt validate` prints and the GUI shows; `usable` says whether training can start."""

    path: Path
    layout: str
    n_subjects: int  # scans (one per subject and session)
    labels: dict[str, int]  # "CN"/"MCI"/"AD"/"unknown" -> count
    modalities: dict[str, int]  # "mri"/"clinical"/"categorical" -> count of scans that have it
    problems: list[str] = field(default_factory=list)
    usable: bool = False  # for something: prediction at least (exit code 0 of `smmt validate`)
    reason: str | None = None  # why it is not usable
    # Training needs every class of a label set: which sets these data can train ("ad-cn",
    # "cn-mci-ad"), and why not when none (e.g. a one-class dataset is usable for prediction only).
    trainable_label_sets: list[str] = field(default_factory=list)
    training_reason: str | None = None
    name: str = ""
    synthetic: bool = False
    n_people: int = 0
    images_checked: int = 0

    def summary_lines(self) -> list[str]:
        name = f" \"{self.name}\"" if self.name else ""
        lines = [f"layout: {self.layout}{name}"]
        if self.synthetic:
            lines.append("SYNTHETIC data: for trying the software, not for scientific or clinical conclusions")
        people = f" ({self.n_people} people)" if self.n_people != self.n_subjects else ""
        lines.append(f"subjects: {self.n_subjects}{people}")
        lines.append("labels: " + ", ".join(f"{k} {v}" for k, v in self.labels.items()))
        lines.append("modalities: " + ", ".join(f"{k} {v}" for k, v in self.modalities.items()))
        if self.images_checked:
            lines.append(f"images checked: {self.images_checked}")
        if self.problems:
            lines.append(f"problems ({len(self.problems)}):")
            lines.extend(f"  - {p}" for p in self.problems[:MAX_PROBLEMS_SHOWN])
            if len(self.problems) > MAX_PROBLEMS_SHOWN:
                lines.append(f"  ... and {len(self.problems) - MAX_PROBLEMS_SHOWN} more (--json lists all)")
        else:
            lines.append("problems: none")
        if not self.usable:
            lines.append(f"usable: no ({self.reason})")
        elif self.trainable_label_sets:
            lines.append(f"usable: yes (prediction; training with label set {' or '.join(self.trainable_label_sets)})")
        else:
            lines.append(f"usable: for prediction yes; for training no ({self.training_reason})")
        return lines

    @property
    def usable_for_training(self) -> bool:
        return bool(self.trainable_label_sets)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["path"] = str(self.path)
        out["usable_for_training"] = self.usable_for_training
        return out


def image_problem(path: Path) -> tuple[str | None, list[str]]:
    """(fatal problem or None, warnings) for one T1, read in full.

    Uses the preprocessing loader, so validate accepts exactly what training accepts; falls back to
    a nibabel-only check (same rules) should the loader itself fail unexpectedly.
    """
    if Path(path).is_dir():  # a DICOM folder: converted by the intake; here, check it has DICOM files
        from smmt_core.data.intake.deps import missing_packages
        from smmt_core.data.intake.dicom import is_dicom_folder

        if not is_dicom_folder(path):
            return "a folder without DICOM files", []
        missing = missing_packages(("dcm2niix",))
        return (f"a DICOM folder needs the 'intake' extra ({', '.join(missing)} not installed)" if missing
                else None), []
    try:
        _, warnings = read_t1(path)
        return None, [w.split(": ", 1)[-1] if w.startswith(Path(path).name) else w for w in warnings]
    except SMMTError as error:
        return error.problem, []
    except Exception:  # a reader bug must not hide the file's real problem
        problem, warnings = check_image_data(path)
        return problem or "cannot be read", warnings


def validate_cohort(cohort: Cohort, *, check_images: bool = True,
                    on_progress: Callable[[int, int], None] | None = None,
                    stop: threading.Event | None = None) -> ValidationReport:
    """Build the report for an already loaded cohort (checking images modifies the subjects)."""
    problems = list(cohort.problems)
    single = cohort.layout in ("file", "folder")
    checked = 0
    if check_images:
        with_mri = [s for s in cohort.subjects if s.t1_path is not None]
        for done, subject in enumerate(with_mri, start=1):
            if stop is not None and stop.is_set():
                problems.append(f"{cohort.root}: image check stopped after {checked} of {len(with_mri)} images")
                break
            problem, warnings = image_problem(subject.t1_path)
            checked += 1
            problems.extend(f"{subject.t1_path}: {w}" for w in warnings)
            if problem:
                if single:
                    raise DataError(problem, subject.t1_path)
                problems.append(f"{subject.t1_path}: {problem}; {subject.key} has no MRI")
                subject.notes.append(f"MRI dropped: {problem}")
                subject.t1_path = None
            if on_progress is not None:
                on_progress(done, len(with_mri))
    keys = Counter(s.key for s in cohort.subjects)
    problems.extend(f"{cohort.root}: {key} appears {n} times" for key, n in keys.items() if n > 1)

    counts = Counter(s.label or UNKNOWN_LABEL for s in cohort.subjects)
    labels = {k: counts[k] for k in (*DIAGNOSES, UNKNOWN_LABEL) if counts[k] or k in ("CN", "AD")}
    modalities = {m.value: sum(1 for s in cohort.subjects if s.has(m)) for m in ALL_MODALITIES}
    usable_subjects = [s for s in cohort.subjects if s.label and s.modalities]
    reason = None
    if single:
        # One subject is for prediction: it needs data, not a diagnosis.
        if not cohort.subjects[0].modalities:
            reason = "no MRI and no clinical values"
    elif not usable_subjects:
        if not any(s.label for s in cohort.subjects):
            reason = "no subject has a diagnosis label (CN/MCI/AD)"
        else:
            reason = "no labelled subject has an MRI or clinical data"
    elif not (labels.get("CN") and labels.get("AD")):
        have = [k for k in ("CN", "AD") if labels.get(k)]
        problems.append(f"{cohort.root}: only {' and '.join(have) or 'MCI'} labels; AD-vs-CN training needs both CN and AD")
    trainable, training_reason = _training_check(usable_subjects, single)
    return ValidationReport(
        trainable_label_sets=trainable if reason is None else [],
        training_reason=training_reason if reason is None else reason,
        path=cohort.root,
        layout=cohort.layout,
        n_subjects=len(cohort.subjects),
        labels=labels,
        modalities=modalities,
        problems=problems,
        usable=reason is None,
        reason=reason,
        name=cohort.name,
        synthetic=cohort.synthetic,
        n_people=len({s.subject_id for s in cohort.subjects}),
        images_checked=checked,
    )


def _training_check(subjects, single: bool) -> tuple[list[str], str | None]:
    """(label sets these subjects can train, why none can): every class needs labelled persons with
    data, the check `smmt train` makes before it starts."""
    if single:
        return [], "a single subject is for prediction; training needs a dataset"
    persons = {label: len({s.subject_id for s in subjects if s.label == label}) for label in DIAGNOSES}
    trainable = [name for name, classes in LABEL_SETS.items() if all(persons.get(c, 0) for c in classes)]
    if trainable:
        return trainable, None
    have = ", ".join(f"{label} {n}" for label, n in persons.items() if n) or "none"
    return [], f"training needs labelled subjects of both CN and AD (labelled persons with data: {have})"


def validate_path(path, *, check_images: bool = True, adnimerge=None, date_window_days: int = 180,
                  on_progress: Callable[[int, int], None] | None = None,
                  stop: threading.Event | None = None) -> ValidationReport:
    """Load `path` with the matching layout and report on it.

    Raises DataError for what makes the input unreadable (unknown layout, empty folder, a table
    with missing columns, a bad image in a single-subject input). on_progress(done, total) is
    called after each image check; setting `stop` ends the image checks early (listed as a problem).
    """
    cohort = load_dataset(path, adnimerge=adnimerge, date_window_days=date_window_days)
    try:
        return validate_cohort(cohort, check_images=check_images, on_progress=on_progress, stop=stop)
    except OSError as error:
        raise DataError(f"cannot read: {error.strerror or error}", error.filename or path) from None
