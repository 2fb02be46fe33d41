"""The intake pipeline: a raw scan (DICOM folder or NIfTI, native space, skull on) in, a brain-
extracted, bias-corrected T1 in MNI space with a QC verdict out; cached.

Steps, in order (each reported to `progress(step, state, detail)` with state "start", "done" or
"skipped"; `stop` (a threading/multiprocessing Event) is checked between steps):

    convert   DICOM folder -> NIfTI with dcm2niix, T1 series chosen from the metadata (dicom.py)
    measure   is the image already in MNI space? already brain-extracted? (qc.measure_input)
    brain     deepbet brain extraction (brain.py)
    bias      N4 bias-field correction inside the brain mask (register.py)
    register  affine registration to the MNI152 2009 template (register.py)
    qc        registration score + mask overlap -> pass / warn / fail, and the QC picture (qc.py)

`IntakeResult.seconds` times the parts without overlap, so they add up to the run: load (read +
reorient), convert, measure, brain, bias, register (the fit), resample (onto the output grid), qc
(the score), picture, write. `IntakeResult.device` is the device brain extraction ran on.

Mode "auto" (default) skips what the measurement says an image does not need: the demo cohort and
Clinica t1-linear output (MNI space, brain extracted) go straight to QC; "full" runs every step;
"off" trusts the input to be in MNI space with the brain extracted and only scores it.

Cache: one folder per (input content hash, settings key) under `IntakeCache.root`, written in a
temporary folder and renamed into place when complete, so a re-run is instant and an interrupted
run resumes with the subjects that were not finished. Training and prediction reach this module
through `smmt_core.data.preprocess.MRICache`, so they use the same pipeline and the same cache.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from smmt_core.data.cache_root import default_cache_dir
from smmt_core.data.intake import deps, dicom, qc
from smmt_core.data.t1 import file_digest, read_t1
from smmt_core.data.template import mni_template, resample_kwargs
from smmt_core.device import DEFAULT_DEVICE, DEVICE_CHOICES
from smmt_core.errors import DataError, SMMTError
from smmt_core.settings import Settings, setting

log = logging.getLogger(__name__)

INTAKE_VERSION = 3  # bump when a step changes, so old cache folders are not reused (3: seeded registration)
STEPS: tuple[str, ...] = ("convert", "measure", "brain", "bias", "register", "qc")
STEP_TITLES = {"convert": "DICOM conversion", "measure": "checking the image", "brain": "brain extraction",
               "bias": "bias-field correction", "register": "registration to MNI152", "qc": "quality control"}
MODES = ("auto", "full", "off")

Progress = Callable[[str, str, str], None]


class IntakeCancelled(SMMTError):
    """The stop event was set; nothing was written to the cache."""

    def __init__(self, path=None):
        super().__init__("cancelled", path)


class IntakeSettings(Settings):
    """How raw scans are brought into MNI space; part of the intake cache key."""

    mode: Literal[MODES] = setting("auto", "intake steps: auto (measure what the image needs), full (all), "
                                   "off (trust the image is in MNI space, brain extracted)", flag="--intake")
    device: Literal[DEVICE_CHOICES] = setting(DEFAULT_DEVICE, "device for brain extraction (auto: CUDA when "
                                              "there is one), as smmt_core.device selects it", cli=False)
    template_mm: float = setting(2.0, "MNI template resolution the registration fits (mm)", ge=1.0, le=4.0, cli=False)
    output_mm: float = setting(1.0, "MNI grid of the registered T1 that is written (mm)", ge=0.5, le=4.0, cli=False)

    @classmethod
    def _section_name(cls) -> str:
        return "intake"

    def key(self) -> str:
        return f"in{INTAKE_VERSION}-{self.mode}-t{self.template_mm:g}-o{self.output_mm:g}"


@dataclass
class IntakeResult:
    """What the intake made of one input (plain data: the CLI, the GUI and the report read it)."""

    source: Path  # what the user gave: a NIfTI file or a DICOM folder
    t1_mni: Path  # the T1 in MNI space, brain extracted (the input itself when it needed nothing)
    native: Path | None  # the T1 in its own space (the converted NIfTI for DICOM, else the input)
    qc: qc.QCResult
    steps_run: list[str]
    steps_skipped: dict[str, str]  # step -> why it was skipped
    measures: dict[str, float]
    mni_to_native: np.ndarray | None  # 4x4 RAS mm (the identity when the image was in MNI space already)
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    picture: Path | None = None
    device: str | None = None  # what brain extraction ran on ("cpu", "cuda:0"); None when it did not run
    from_cache: bool = False

    @property
    def steps_label(self) -> str:
        """'brain+bias+register' or 'none (in MNI space, brain extracted)': the qc.csv column."""
        return "+".join(s for s in self.steps_run if s not in ("measure", "qc")) or "none"

    def to_dict(self) -> dict:
        return {
            "source": str(self.source), "t1_mni": str(self.t1_mni), "native": str(self.native) if self.native else None,
            "qc": {"verdict": self.qc.verdict, "score": self.qc.score, "mask_dice": self.qc.mask_dice,
                   "reason": self.qc.reason},
            "steps_run": self.steps_run, "steps_skipped": self.steps_skipped, "measures": self.measures,
            "mni_to_native": self.mni_to_native.tolist() if self.mni_to_native is not None else None,
            "notes": self.notes, "seconds": self.seconds,
            "picture": str(self.picture) if self.picture else None, "device": self.device,
        }

    @classmethod
    def from_dict(cls, d: dict, *, folder: Path | None = None) -> IntakeResult:
        q = d["qc"]

        def local(p):  # files of a cache entry are stored by name, relative to its folder
            if p is None:
                return None
            p = Path(p)
            return folder / p if folder is not None and not p.is_absolute() else p

        return cls(
            source=Path(d["source"]), t1_mni=local(d["t1_mni"]), native=local(d["native"]),
            qc=qc.QCResult(q["verdict"], float(q["score"]), q["mask_dice"], q["reason"]),
            steps_run=list(d["steps_run"]), steps_skipped=dict(d["steps_skipped"]),
            measures={k: float(v) for k, v in d["measures"].items()},
            mni_to_native=np.asarray(d["mni_to_native"], dtype=np.float64) if d["mni_to_native"] else None,
            notes=list(d["notes"]), seconds={k: float(v) for k, v in d["seconds"].items()},
            picture=local(d.get("picture")), device=d.get("device"), from_cache=True,
        )

    def mni_point_to_native(self, xyz_mm) -> np.ndarray:
        """Where an MNI point (mm) lies in the scan's own space (mm): for the viewer's native view."""
        p = np.asarray([*xyz_mm, 1.0], dtype=np.float64)
        return (self.mni_to_native @ p)[:3] if self.mni_to_native is not None else p[:3]


# ----------------------------------------------------------------------------------------------
# Cache


def default_intake_cache_dir() -> Path:
    return default_cache_dir() / "intake"


def input_digest(path: Path) -> str:
    return dicom.folder_digest(path) if path.is_dir() else file_digest(path)


WORK_PREFIX = ".work-"  # a scan's folder in the cache while its steps run: .work-<process id>-<random>


class IntakeCache:
    """Finished intake results on disk: `root/<2 hex>/<digest>-<settings key>/result.json` + images."""

    def __init__(self, root=None):
        self.root = Path(root).expanduser() if root is not None else default_intake_cache_dir()

    def folder(self, digest: str, settings: IntakeSettings) -> Path:
        return self.root / digest[:2] / f"{digest}-{settings.key()}"

    def load(self, digest: str, settings: IntakeSettings, source: Path) -> IntakeResult | None:
        folder = self.folder(digest, settings)
        try:
            result = IntakeResult.from_dict(json.loads((folder / "result.json").read_text()), folder=folder)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable intake cache entry %s (%s)", folder, exc)
            return None
        if not all(p is None or p.exists() for p in (result.t1_mni, result.picture)):
            return None
        result.source = source
        if result.native is None or not result.native.exists():
            result.native = source if source.is_file() else None
        return result

    def new_work_folder(self) -> Path:
        """A fresh (not yet created) work folder in the cache, named after this process, after
        removing those whose process died before it could clean up (a worker killed outright)."""
        self.remove_abandoned_work()
        return self.root / f"{WORK_PREFIX}{os.getpid()}-{uuid.uuid4().hex}"

    def remove_abandoned_work(self) -> None:
        """Remove the work folders of processes that no longer run. One without a process id in its
        name (SMMT Studio 0.2) goes once it is a day old."""
        import psutil

        for folder in self.root.glob(f"{WORK_PREFIX}*"):
            owner, separator, _ = folder.name[len(WORK_PREFIX):].partition("-")
            try:
                if separator and owner.isdigit():
                    abandoned = not psutil.pid_exists(int(owner))
                else:
                    abandoned = time.time() - folder.stat().st_mtime > 86400
            except OSError:
                continue
            if abandoned and folder.is_dir() and not folder.is_symlink():
                shutil.rmtree(folder, ignore_errors=True)

    def store(self, work: Path, digest: str, settings: IntakeSettings) -> Path:
        """Move a finished work folder into place (atomic rename); returns the entry folder."""
        folder = self.folder(digest, settings)
        folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(work, folder)
        except OSError:  # another process finished the same input first: keep theirs
            if not (folder / "result.json").exists():
                raise
            shutil.rmtree(work, ignore_errors=True)
        return folder


# ----------------------------------------------------------------------------------------------
# The pipeline


def _save(img, path: Path) -> None:
    import nibabel as nib

    nib.save(img, str(path))


def run_intake(path, settings: IntakeSettings | None = None, *, cache: IntakeCache | None = None,
               progress: Progress | None = None, stop=None, picture: bool | None = True) -> IntakeResult:
    """Bring one T1 (NIfTI file or DICOM folder) into MNI space with QC; see the module doc.

    cache: None uses the default cache folder. An input that needs no step (in MNI space, brain
    extracted) is only measured and scored; nothing is written for it unless `picture` is True.
    picture: True always draws the QC picture, None only when a step ran (what training and
    prediction ask for), False never.
    Raises DataError naming the input for unusable input, IntakeCancelled when `stop` is set.
    QC failure is not an exception here: `result.qc.verdict == "fail"` (callers refuse to predict).
    """

    settings = settings or IntakeSettings()
    cache = cache if cache is not None else IntakeCache()
    source = Path(path).expanduser()
    report = progress or (lambda step, state, detail: None)

    def check_stop():
        if stop is not None and stop.is_set():
            raise IntakeCancelled(source)

    if not source.exists():
        raise DataError("no such file or folder", source)
    is_dicom = source.is_dir()
    if is_dicom and not dicom.is_dicom_folder(source):
        raise DataError("a folder without DICOM files; expected a DICOM folder or a T1 image file", source)
    if is_dicom:
        deps.require("a DICOM folder", source, names=("dcm2niix",))
    digest = input_digest(source)
    cached = cache.load(digest, settings, source)
    if cached is not None:
        for step in STEPS:
            report(step, "done" if step in cached.steps_run else "skipped", "from cache")
        return cached

    # Created by the first step that writes (an input that needs nothing writes nothing at all).
    work = cache.new_work_folder()
    try:
        result = _run_steps(source, is_dicom, work, settings, report, check_stop, picture)
        check_stop()
        if work.exists():
            (work / "result.json").write_text(json.dumps(_relative(result.to_dict(), work), indent=1))
            folder = cache.store(work, digest, settings)
            stored = cache.load(digest, settings, source)
            if stored is not None:
                stored.from_cache = False
                return stored
            log.warning("intake cache entry %s could not be read back", folder)
        return result
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


def _relative(d: dict, work: Path) -> dict:
    """File paths inside the work folder stored by name (the folder is renamed afterwards), any
    other (the input itself, when it needed no step) as an absolute path: a relative one would be
    read back relative to the entry's folder."""
    out = dict(d)
    for key in ("t1_mni", "native", "picture"):
        if out.get(key):
            out[key] = Path(out[key]).name if Path(out[key]).parent == work else str(Path(out[key]).absolute())
    return out


class _StepLog:
    """What the steps did and how long each part took (IntakeResult's steps_run, steps_skipped,
    seconds, notes), with the progress report and the stop check around each step."""

    def __init__(self, report: Progress, check_stop):
        self.report, self.check_stop = report, check_stop
        self.seconds: dict[str, float] = {}
        self.skipped: dict[str, str] = {}
        self.run: list[str] = []
        self.notes: list[str] = []

    def lap(self, part: str, t0: float) -> float:
        """Record the seconds of `part` since t0; returns now (the start of the next part)."""
        now = time.perf_counter()
        self.seconds[part] = round(self.seconds.get(part, 0.0) + now - t0, 3)
        return now

    def begin(self, step: str) -> float:
        self.check_stop()
        self.report(step, "start", STEP_TITLES[step])
        return time.perf_counter()

    def end(self, step: str, t0: float | None = None, detail: str = "") -> None:
        if t0 is not None:
            self.lap(step, t0)
        self.run.append(step)
        self.report(step, "done", detail)

    def skip(self, step: str, why: str) -> None:
        self.skipped[step] = why
        self.report(step, "skipped", why)

    def result(self, **fields) -> IntakeResult:
        return IntakeResult(steps_run=self.run, steps_skipped=self.skipped, notes=self.notes, seconds=self.seconds,
                            **fields)


def _run_steps(source: Path, is_dicom: bool, work: Path, settings: IntakeSettings, report: Progress,
               check_stop, picture: bool | None) -> IntakeResult:
    steps = _StepLog(report, check_stop)
    native_path = _convert(source, is_dicom, work, steps)
    img = _load_native(native_path, steps)

    t0 = steps.begin("measure")
    m = qc.measure_input(img, settings.template_mm)
    measures = {"input_mni_score": round(m.mni_score, 4), "input_foreground_ml": round(m.foreground_ml, 1),
                "input_neighbour_r": round(m.neighbour_r, 4)}
    steps.end("measure", t0, f"MNI score {m.mni_score:.2f}, foreground {m.foreground_ml:.0f} mL, "
                             f"neighbour r {m.neighbour_r:.2f}")
    if not m.is_image_of_something:
        return _refuse_at_once(source, native_path, m, measures, steps)
    mode = settings.mode
    need_brain = mode == "full" or (mode == "auto" and not m.stripped)
    need_register = mode == "full" or (mode == "auto" and not m.in_mni)
    if not (need_brain or need_register):
        return _score_as_it_is(source, native_path, img, m, measures, work, settings, picture, steps)

    missing = [step for step, needed in (("brain extraction", need_brain), ("registration to MNI152", need_register))
               if needed]
    deps.require(f"this image is not {'in MNI space' if need_register else 'brain extracted'}; "
                 f"{' and '.join(missing)}", source, names=("deepbet", "ants"))
    brain, mask, device = _brain(img, need_brain, settings, source, steps)
    registered, reg_mask, matrix = _to_mni(brain, mask, need_register, m, settings, source, steps)
    return _check_and_write(source, native_path, registered, reg_mask, matrix, measures, work, settings, picture,
                            device, steps)


def _convert(source: Path, is_dicom: bool, work: Path, steps: _StepLog) -> Path:
    """Step convert: a DICOM folder's T1 series as work/native.nii.gz; a NIfTI file is used as it is."""
    if not is_dicom:
        steps.skip("convert", "not DICOM")
        return source
    t0 = steps.begin("convert")
    work.mkdir(parents=True, exist_ok=True)
    nifti, note = dicom.convert(source, work / "dicom")
    native_path = work / "native.nii.gz"
    shutil.move(str(nifti), native_path)
    shutil.rmtree(work / "dicom", ignore_errors=True)
    steps.notes.append(note)
    steps.end("convert", t0, note)
    return native_path


def _load_native(native_path: Path, steps: _StepLog):
    """The native T1, reoriented to RAS and C-ordered (the `load` part of the timings)."""
    import nibabel as nib

    t0 = time.perf_counter()
    img, warnings = read_t1(native_path)
    steps.notes.extend(warnings)
    img = nib.as_closest_canonical(img)
    img = nib.Nifti1Image(np.ascontiguousarray(np.asarray(img.dataobj)), img.affine)  # flipped views -> C order
    steps.lap("load", t0)
    return img


def _score_as_it_is(source: Path, native_path: Path, img, m: qc.InputMeasures, measures: dict, work: Path,
                    settings: IntakeSettings, picture: bool | None, steps: _StepLog) -> IntakeResult:
    """An image that needs no step (or mode off): its measured score is its QC; the picture only
    when asked for (`picture` True)."""
    mode = settings.mode
    why = "mode off" if mode == "off" else "already brain extracted" if m.stripped else ""
    steps.skip("brain", why or "not needed")
    steps.skip("bias", "mode off" if mode == "off" else "already in MNI space")
    steps.skip("register", "mode off" if mode == "off" else f"already in MNI space (score {m.mni_score:.2f})")
    t0 = steps.begin("qc")
    verdict = qc.verdict(m.mni_score)
    t0 = steps.lap("qc", t0)
    pic = None
    if picture:
        vol = qc.robust_scale(qc.on_template_grid(img, settings.template_mm))
        work.mkdir(parents=True, exist_ok=True)
        pic = work / "qc.png"
        qc.qc_picture(vol, pic, title=_picture_title(source, verdict), resolution_mm=settings.template_mm)
        steps.lap("picture", t0)
    steps.end("qc", None, f"{verdict.verdict}: {verdict.reason}")
    return steps.result(source=source, t1_mni=native_path, native=native_path, qc=verdict, measures=measures,
                        mni_to_native=np.eye(4), picture=pic)


def _refuse_at_once(source: Path, native_path: Path, m: qc.InputMeasures, measures: dict,
                    steps: _StepLog) -> IntakeResult:
    """Noise, or a constant: QC fails with the reason, before the long steps (brain extraction
    finds a "brain" even in noise, and the advice that followed was to register it)."""
    why = "not an image of a head"
    for step in ("brain", "bias", "register"):
        steps.skip(step, why)
    t0 = steps.begin("qc")
    verdict = qc.QCResult("fail", 0.0, None,
                          f"neighbouring voxels are unrelated (correlation {m.neighbour_r:.2f}; a scan of a head has "
                          f"more than {qc.NEIGHBOUR_R_MIN:.1f}): this looks like noise, not an MRI")
    steps.end("qc", t0, f"{verdict.verdict}: {verdict.reason}")
    return steps.result(source=source, t1_mni=native_path, native=native_path, qc=verdict, measures=measures,
                        mni_to_native=np.eye(4), picture=None)


def _brain(img, need_brain: bool, settings: IntakeSettings, source: Path, steps: _StepLog):
    """Step brain: (brain, mask, device) by deepbet, or the image itself and its foreground."""
    import nibabel as nib

    if not need_brain:
        steps.skip("brain", "already brain extracted")
        return img, nib.Nifti1Image(qc.foreground(img).astype(np.uint8), img.affine), None
    from smmt_core.data.intake.brain import extract_brain

    t0 = steps.begin("brain")
    brain, mask, device = extract_brain(img, device=settings.device, path=source)
    steps.end("brain", t0, f"{int(np.asarray(mask.dataobj).sum())} brain voxels ({device})")
    return brain, mask, device


def _to_mni(brain, mask, need_register: bool, m: qc.InputMeasures, settings: IntakeSettings, source: Path,
            steps: _StepLog):
    """Steps bias and register: (registered T1, its mask, MNI -> native matrix) on the output grid;
    an image already in MNI space is only resampled onto it."""
    import nibabel as nib

    output_grid = _mni_grid(settings.output_mm)
    if need_register:
        from smmt_core.data.intake.register import n4, register_affine, resample_to_mni

        tpl = mni_template(settings.template_mm)
        t0 = steps.begin("bias")
        corrected = n4(brain, mask)
        steps.end("bias", t0)
        t0 = steps.begin("register")
        fit = register_affine(corrected, nib.Nifti1Image(tpl.data, tpl.affine), path=source)
        steps.end("register", t0)
        steps.check_stop()
        t0 = time.perf_counter()
        registered = resample_to_mni(fit, corrected, output_grid)
        reg_mask = resample_to_mni(fit, mask, output_grid, nearest=True)
        steps.lap("resample", t0)
        return registered, reg_mask, fit.mni_to_native
    from nilearn import image

    steps.skip("bias", "already in MNI space")
    steps.skip("register", f"already in MNI space (score {m.mni_score:.2f})")
    t0 = time.perf_counter()
    registered = image.resample_img(brain, target_affine=output_grid.affine, target_shape=output_grid.shape,
                                    interpolation="linear", fill_value=0.0, **resample_kwargs())
    reg_mask = image.resample_img(mask, target_affine=output_grid.affine, target_shape=output_grid.shape,
                                  interpolation="nearest", fill_value=0.0, **resample_kwargs())
    steps.lap("resample", t0)
    return registered, reg_mask, np.eye(4)  # already in MNI space: the identity map


def _check_and_write(source: Path, native_path: Path, registered, reg_mask, matrix, measures: dict, work: Path,
                     settings: IntakeSettings, picture: bool | None, device, steps: _StepLog) -> IntakeResult:
    """Step qc: score and mask overlap on the template grid, the picture (unless `picture` is
    False), and the registered T1 written as work/t1_mni.nii.gz."""
    import nibabel as nib

    t0 = steps.begin("qc")
    vol = qc.robust_scale(qc.on_template_grid(registered, settings.template_mm))
    mask_vol = qc.on_template_grid(reg_mask, settings.template_mm, "nearest")
    score = qc.registration_score(vol, settings.template_mm)
    verdict = qc.verdict(score, qc.mask_dice(mask_vol, settings.template_mm))
    t0 = steps.lap("qc", t0)
    pic = None
    work.mkdir(parents=True, exist_ok=True)
    if picture is not False:
        pic = work / "qc.png"
        qc.qc_picture(vol, pic, title=_picture_title(source, verdict), resolution_mm=settings.template_mm)
        t0 = steps.lap("picture", t0)
    t1_mni = work / "t1_mni.nii.gz"
    data = np.asarray(registered.dataobj, dtype=np.float32)
    _save(nib.Nifti1Image(np.clip(data, 0, None), registered.affine), t1_mni)
    steps.lap("write", t0)
    steps.end("qc", None, f"{verdict.verdict}: {verdict.reason}")
    return steps.result(source=source, t1_mni=t1_mni, native=native_path, qc=verdict, measures=measures,
                        mni_to_native=matrix, picture=pic, device=device)


def _picture_title(source: Path, verdict: qc.QCResult) -> str:
    dice = f", mask overlap {verdict.mask_dice:.2f}" if verdict.mask_dice is not None else ""
    return f"{source.name}: QC {verdict.verdict.upper()} (score {verdict.score:.2f}{dice})"


def _mni_grid(resolution_mm: float):
    """An empty image on the MNI152 template grid at `resolution_mm` (what registration resamples onto)."""
    import nibabel as nib

    tpl = mni_template(resolution_mm)
    return nib.Nifti1Image(np.zeros(tpl.data.shape, dtype=np.float32), tpl.affine)
