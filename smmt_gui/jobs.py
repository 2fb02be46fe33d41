"""The GUI's jobs: plain functions over `smmt_core` that run on worker threads.

Each is what one `FunctionWorker` (`smmt_gui.workers`) runs for the window: open a path, preview a
scan, load its own-resolution views, load a model, predict one subject or all of them, build the
demo cohort, list the runs, check the device. They live apart from the window because they touch
no widget: they return plain values, take a progress callback and a stop flag where they are long,
and import `smmt_core`'s heavy modules (torch, nibabel, the model) inside, so that importing this
module is cheap and a test can replace one of them (`monkeypatch.setattr(jobs, "predict_job", ...)`).
"""

from __future__ import annotations

from smmt_core.errors import SMMTError


def open_path_job(path: str):
    """(a Subject or a Cohort, the raw scan that needs the intake first or None).

    A single T1 file or subject folder (a DICOM folder included) is a Subject, any dataset layout
    a Cohort. A subject whose scan is DICOM, or a T1 not yet a skull-stripped brain in MNI space,
    is marked for the intake dialog (measured here, off the GUI thread).
    """
    from smmt_core.data.loaders import detect_layout, load_dataset, load_subject

    layout = detect_layout(path)
    if layout not in ("file", "folder"):
        return load_dataset(path), None
    subject = load_subject(path)
    raw = None
    if subject.t1_path is not None:
        try:
            from smmt_gui.intake_dialog import needs_intake

            raw = subject.t1_path if needs_intake(subject.t1_path) else None
        except ImportError:  # the [intake] extra is absent: the model path will say so when it needs it
            raw = None
        except SMMTError:
            raw = None  # an unreadable scan: the normal path reports it, naming the file
    return subject, raw


def preview_job(t1_path):
    """The MNI-grid volume of a T1 (the model's own preprocessing), for showing before a model exists.

    A preview: the scan as it is (intake mode "off", a QC failure is only a warning); bringing a
    raw scan into MNI space is the intake dialog's job (smmt_gui/intake_dialog.py).
    """
    from smmt_core.data.intake import IntakeSettings
    from smmt_core.data.preprocess import MRICache, PreprocessConfig

    result = MRICache(intake=IntakeSettings(mode="off"), require_qc=False).get(t1_path, PreprocessConfig())
    return result.volume, result.affine, list(result.warnings)


def scan_views_job(t1_path, intake: dict | None):
    """The subject's scan at its own resolution, in MNI space and (after the intake) as acquired:
    what the viewer shows under the model's 2 mm grid (`smmt_core.data.scan_views`)."""
    from smmt_core.data.scan_views import load_scan_views

    return load_scan_views(t1_path, intake)


def load_model_job(run_dir: str):
    """The Predictor of a run folder, or of the newest finished run in a folder of runs."""
    from smmt_core.predict import Predictor
    from smmt_core.train.run_record import resolve_run_dir
    from smmt_gui.memory import freeze_long_lived

    predictor = Predictor.load(resolve_run_dir(run_dir), device="auto")
    freeze_long_lived()  # torch's modules and the model: out of full garbage collections, which stall the GUI
    return predictor


def demo_cohort_job(progress, stop):
    """Build the demo cohort (stoppable between subjects, nothing left behind) and open it."""
    from smmt_core.data.demo import ensure_demo_cohort
    from smmt_core.data.loaders import load_dataset

    return load_dataset(ensure_demo_cohort(progress=progress, stop=stop))


def predict_all_job(predictor, subjects, progress, stop):
    """Predict every subject (all modalities on); reports (done, total, key, label, probability or error)."""
    done = failed = 0
    for subject in subjects:
        if stop.is_set():
            break
        try:
            prediction = predictor.predict(subject)
        except SMMTError as error:
            failed += 1
            progress((done + 1, len(subjects), subject.key, None, str(error)))
        else:
            progress((done + 1, len(subjects), subject.key, prediction.verdict,
                      prediction.probabilities[prediction.prediction]))
        done += 1
    return done, failed


def predict_job(predictor, subject, modalities):
    """One subject's Prediction from the switched-on modalities."""
    return predictor.predict(subject, modalities=modalities)


def device_job() -> bool:
    """Whether CUDA is available; also sets the thread count of the GUI process's torch.

    torch runs in this process only for interactive work (one prediction at a time; training runs
    in a child process): on a busy machine one thread answers sooner than several competing ones
    (measured: first prediction 0.24-0.45 s on 1 thread vs 1.6-4.2 s on 2, on a loaded 2-core
    machine)."""
    from smmt_core.device import prepare_interactive

    return prepare_interactive()


def list_runs_job(root):
    """The runs under `root`, for the model list (a run folder that cannot be read is listed as such)."""
    from smmt_core.train.run_record import list_runs

    return list_runs(root)
