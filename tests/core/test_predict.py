"""Predictor: same preprocessing as training, modality toggles, what the viewer needs, clear errors."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from smmt_core.data.loaders import load_dataset
from smmt_core.errors import CheckpointError, ConfigError, DataError
from smmt_core.predict import Predictor
from tests.core.c1_support import one_thread, shared_tiny_run


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    with one_thread():
        return shared_tiny_run(tmp_path_factory)


@pytest.fixture()
def predictor(shared):
    with one_thread():
        yield Predictor.load(shared[1], device="auto")


def test_predictions_for_test_subjects_match_the_training_evaluation(shared, predictor):
    cohort_root, run_dir, _ = shared
    cohort = {s.subject_id: s for s in load_dataset(cohort_root).subjects}
    table = pd.read_csv(run_dir / "predictions.csv")
    assert len(table) > 0
    for row in table.itertuples():
        result = predictor.predict(cohort[row.subject_id])
        assert result.probabilities["AD"] == pytest.approx(row.p_AD, abs=1e-5)
        assert result.prediction == row.prediction


def test_a_prediction_carries_what_the_viewer_needs(shared, predictor):
    subject = load_dataset(shared[0]).subjects[0]
    result = predictor.predict(subject)
    assert list(result.probabilities) == ["CN", "AD"] == predictor.classes
    assert sum(result.probabilities.values()) == pytest.approx(1.0)
    assert result.prediction == max(result.probabilities, key=result.probabilities.get)
    assert result.modalities_used == ["mri", "clinical", "categorical"] and result.modalities_missing == []
    assert set(result.contributions) == {"mri", "clinical", "categorical"}
    assert result.slices.shape == (2, 16, 16) and result.slices.dtype == np.float32
    assert 0.0 <= result.slices.min() and result.slices.max() <= 1.0
    assert result.cluster_ids and result.cluster_ids[0].shape[0] == 2  # (S, h, w) per layer
    assert result.volume.ndim == 3 and result.volume_affine.shape == (4, 4)
    assert len(result.slice_indices) == 2 and result.plane == "axial"
    assert result.model_name == "tiny" and result.synthetic_model is False
    summary = json.loads(json.dumps(result.to_dict()))
    assert {"subject", "prediction", "probabilities", "modalities_used"} <= set(summary)


def test_modalities_can_be_switched_off(shared, predictor):
    subject = load_dataset(shared[0]).subjects[0]
    full = predictor.predict(subject)
    no_mri = predictor.predict(subject, modalities={"clinical", "categorical"})
    assert no_mri.modalities_used == ["clinical", "categorical"]
    assert no_mri.slices is None and no_mri.cluster_ids == [] and "mri" not in no_mri.contributions
    assert no_mri.volume is not None  # the viewer still shows the scan
    mri_only = predictor.predict(subject, modalities=["mri"])
    assert mri_only.modalities_used == ["mri"]
    assert mri_only.probabilities != full.probabilities != no_mri.probabilities
    with pytest.raises(ConfigError, match="unknown modality"):
        predictor.predict(subject, modalities=["pet"])


def test_a_subject_folder_with_clinical_json_is_read_and_preprocessed_once(shared, predictor, tmp_path):
    source = sorted(shared[0].glob("sub-*/anat/*_T1w.nii.gz"))[0]
    folder = tmp_path / "patient-7"
    folder.mkdir()
    shutil.copy(source, folder / "T1w.nii.gz")
    (folder / "clinical.json").write_text(json.dumps({"MMSE": 22, "CDGLOBAL": 1, "FAQ": 14, "AGE": 80,
                                                      "PTGENDER": "Female", "APOE4": "2"}))
    first = predictor.predict(folder)
    assert first.subject_id == "patient-7"
    assert first.modalities_used == ["mri", "clinical", "categorical"]
    second = predictor.predict(folder, modalities=["mri", "clinical"])
    assert predictor._cache.hits >= 1  # toggling modalities does not re-read the NIfTI
    assert second.modalities_used == ["mri", "clinical"]


def test_a_t1_alone_reports_the_missing_modalities(shared, predictor):
    source = sorted(shared[0].glob("sub-*/anat/*_T1w.nii.gz"))[0]
    result = predictor.predict(source)
    assert result.modalities_used == ["mri"]
    assert result.modalities_missing == ["clinical", "categorical"]
    with pytest.raises(DataError, match="nothing to predict from"):
        predictor.predict(source, modalities=["clinical"])


def test_bad_paths_and_runs_give_clear_errors(shared, predictor, tmp_path):
    with pytest.raises(DataError, match="not found"):
        predictor.predict(tmp_path / "missing")
    with pytest.raises(CheckpointError, match="run folder not found"):
        Predictor.load(tmp_path / "no-run")


def test_latency_benchmark_measures_a_fresh_untrained_run(monkeypatch):
    from smmt_core.bench.predict_latency import format_report, measure_predict_latency
    from smmt_core.train.config import PRESETS

    monkeypatch.setitem(PRESETS, "tiny-test", dict(d_model=32, n_heads=2, image_size=16, n_slices=2, channels=1,
                                                   resolution_mm=8.0, n_fusion_tokens=2))
    with one_thread():
        report = measure_predict_latency(preset="tiny-test", repeats=1, device="cpu")
    assert report["t1_shape"] == (197, 233, 189)  # the 1 mm MNI152 template
    assert report["load_s"] > 0 and report["cold_first_s"] > 0 and report["without_mri_median_s"] > 0
    assert report["meets_target"] == (report["first_prediction_max_s"] <= 1.0)
    assert "first prediction of a new file" in format_report(report)


def test_modalities_missing_follows_what_the_model_could_use(shared, predictor):
    """An APOE4 value never seen in training is code 0 (absent) for the model, so it is reported missing."""
    from smmt_core.data.subject import Subject

    source = sorted(shared[0].glob("sub-*/anat/*_T1w.nii.gz"))[0]
    assert "7" not in predictor.run.encoder.categories["APOE4"]
    odd = Subject("odd", t1_path=source, numeric={"MMSE": 25.0},
                  categorical={"APOE4": "7", "PTGENDER": "Unstated"})
    result = predictor.predict(odd)
    assert result.modalities_used == ["mri", "clinical"]
    assert result.modalities_missing == ["categorical"]
    with pytest.raises(DataError, match="the subject has mri, clinical"):
        predictor.predict(odd, modalities=["categorical"])


def test_a_sub_folder_of_a_bids_dataset_uses_its_participants_row(shared, predictor):
    cohort_root = shared[0]
    from_cohort = predictor.predict(load_dataset(cohort_root).subjects[0])
    from_folder = predictor.predict(cohort_root / "sub-001")
    assert from_folder.subject_id == "sub-001"
    assert from_folder.modalities_used == ["mri", "clinical", "categorical"]
    assert from_folder.probabilities == pytest.approx(from_cohort.probabilities)


def test_smmt_predict_report_writes_what_the_gui_exports(shared, tmp_path, capsys):
    import json as _json

    from smmt_core.cli import main

    cohort_root, run_dir, _ = shared
    subject = load_dataset(cohort_root).subjects[0]
    with one_thread():
        code = main(["predict", str(subject.t1_path.parent.parent), "--model", str(run_dir), "--device", "cpu",
                     "--report", str(tmp_path)])
    assert code == 0, capsys.readouterr().err
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["report.csv", "report.json", "report.png"]
    report = _json.loads((tmp_path / "report.json").read_text())
    assert report["prediction"]["subject"] and "reliability" in report["prediction"]
    assert "Research use only" in report["disclaimer"]
    assert (tmp_path / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_smmt_predict_report_into_a_missing_folder_fails_before_predicting(shared, tmp_path, capsys):
    from smmt_core.cli import main

    _, run_dir, _ = shared
    code = main(["predict", str(tmp_path), "--model", str(run_dir), "--report", str(tmp_path / "no" / "r")])
    assert code == 2 and "the folder does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_smmt_predict_report_of_a_raw_scan_carries_its_qc_picture_and_device(shared, tmp_path, capsys):
    """A head in its own space (skull on, moved): the prediction runs the intake (deepbet on the
    chosen device, N4, registration) and the report holds the QC picture and that device."""
    pytest.importorskip("ants")
    pytest.importorskip("deepbet")
    import csv

    import nibabel as nib
    from matplotlib.image import imread

    from smmt_core.cli import main
    from tests.core.c1_support import mri_cache_at
    from tests.core.test_intake import moved, rigid, template_image, with_skull

    head = tmp_path / "raw" / "head.nii.gz"
    head.parent.mkdir()
    nib.save(moved(with_skull(template_image(4.0)), rigid(np.random.default_rng(7))), str(head))
    _, run_dir, _ = shared
    out = tmp_path / "out"
    out.mkdir()
    with mri_cache_at(tmp_path / "cache"), one_thread():
        code = main(["predict", str(head), "--model", str(run_dir), "--device", "cpu", "--report", str(out)])
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["report.csv", "report.json", "report.png", "report.qc.png"]
    picture = imread(str(out / "report.qc.png"))
    assert picture.shape[0] > 100 and picture[..., :3].std() > 0.05  # the three views, not a blank image
    intake = json.loads((out / "report.json").read_text())["prediction"]["intake"]
    assert intake["steps"] == "brain+bias+register" and intake["qc"] == "pass" and intake["device"] == "cpu"
    rows = list(csv.DictReader((out / "report.csv").read_text().splitlines()))
    assert {"section": "qc", "name": "brain_extraction_device", "value": "cpu"} in rows


def test_the_intake_of_a_raw_scan_runs_on_the_predictors_device(shared):
    with one_thread():
        on_cpu = Predictor.load(shared[1], device="cpu")
    assert on_cpu.intake_settings.device == "cpu" and on_cpu._cache.intake.device == "cpu"
