"""Prediction reports: PNG, CSV, JSON and PDF, each naming the model, the data and the disclaimer."""

from __future__ import annotations

import csv
import json
import os

import pytest
from PySide6.QtGui import QColor, QImage

from smmt_core.errors import SMMTError
from smmt_core.predict import Prediction
from smmt_gui import strings
from smmt_gui.export import ReportContext, export_report

pytestmark = pytest.mark.usefixtures("qapp")  # fonts and the PDF writer need a QApplication


def make_prediction() -> Prediction:
    return Prediction(subject_id="sub-042", prediction="CN", probabilities={"CN": 0.91, "AD": 0.09},
                      modalities_used=["mri", "categorical"], modalities_missing=["clinical"],
                      contributions={"mri": 1.25, "categorical": 0.05}, warnings=["low template correlation"],
                      model_name="smmt-demo", synthetic_model=True)


def image() -> QImage:
    img = QImage(320, 200, QImage.Format.Format_RGB32)
    img.fill(QColor(30, 60, 90))
    return img


CONTEXT = ReportContext(model_name="smmt-demo", model_dir="/runs/smmt-demo", data_path="/data/sub-042",
                        synthetic_data=True, synthetic_model=True, device="CPU")


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_writes_four_files_with_model_data_and_disclaimer(tmp_path, umask_022):
    files = export_report(tmp_path / "report.pdf", make_prediction(), image(), CONTEXT)  # extension dropped
    assert [p.name for p in files] == ["report.png", "report.csv", "report.json", "report.pdf"]
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["prediction"]["probabilities"] == {"CN": 0.91, "AD": 0.09}
    assert data["model"]["name"] == "smmt-demo" and data["data"]["path"] == "/data/sub-042"
    assert data["disclaimer"] == strings.DISCLAIMER and data["synthetic"] is True
    rows = list(csv.DictReader((tmp_path / "report.csv").read_text().splitlines()))
    assert {"section": "probability", "name": "CN", "value": "0.9100"} in rows
    assert {"section": "contribution", "name": "mri", "value": "1.2500"} in rows
    assert any(r["section"] == "disclaimer" and r["value"] == strings.DISCLAIMER for r in rows)
    assert any(r["section"] == "model" and r["value"] == "smmt-demo" for r in rows)
    png = QImage(str(tmp_path / "report.png"))
    assert png.width() >= 320 and png.height() > 200  # the views, and the disclaimer band below them
    pdf = (tmp_path / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and len(pdf) > 2000
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left
    assert all((p.stat().st_mode & 0o044) == 0o044 for p in files)  # readable like any document (umask 022)


def test_without_an_image_skips_the_png(tmp_path):
    files = export_report(tmp_path / "r", make_prediction(), None, CONTEXT, formats=("png", "json", "pdf"))
    assert [p.suffix for p in files] == [".json", ".pdf"]


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(SMMTError, match="does not exist") as info:
        export_report(tmp_path / "nowhere" / "r", make_prediction(), image(), CONTEXT)
    assert "nowhere" in str(info.value)


def test_read_only_folder_is_a_clear_error(tmp_path, monkeypatch):
    import smmt_core.report as report

    monkeypatch.setattr(report.os, "access", lambda path, mode: False)  # as for a non-root user on a 0500 folder
    with pytest.raises(SMMTError, match="not writable") as info:
        export_report(tmp_path / "r", make_prediction(), image(), CONTEXT)
    assert str(tmp_path) in str(info.value)


def test_failure_midway_leaves_no_partial_file(tmp_path, monkeypatch):
    import smmt_core.report as report  # the CSV's rows are built there, for the GUI and the CLI alike

    def broken(prediction, context):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report, "report_rows", broken)
    with pytest.raises(SMMTError, match="No space left"):
        export_report(tmp_path / "r", make_prediction(), image(), CONTEXT)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # all or nothing: no file, no temp file


def test_nothing_to_export(tmp_path):
    with pytest.raises(SMMTError, match="Nothing to export"):
        export_report(tmp_path / "r", None, image(), CONTEXT)


def test_a_scan_from_the_intake_has_its_qc_picture_in_the_pdf_and_beside_the_report(tmp_path):
    import dataclasses

    from matplotlib.image import imread

    from smmt_core.data.intake import qc
    from smmt_core.data.template import mni_template

    picture = tmp_path / "intake-cache" / "qc.png"  # what the intake draws, here for the template at 4 mm
    picture.parent.mkdir()
    qc.qc_picture(mni_template(4.0).data, picture, title="sub-042: QC PASS", resolution_mm=4.0)
    plain = make_prediction()
    through_intake = dataclasses.replace(plain, intake={
        "qc": "pass", "score": 0.81, "steps": "brain+bias+register", "reason": "registration score 0.81",
        "picture": str(picture), "device": "cpu"})
    export_report(tmp_path / "plain", plain, image(), CONTEXT)
    files = export_report(tmp_path / "intake", through_intake, image(), CONTEXT)
    assert [p.name for p in files] == ["intake.png", "intake.csv", "intake.json", "intake.pdf", "intake.qc.png"]
    copy = imread(str(tmp_path / "intake.qc.png"))
    assert copy.shape[:2] == imread(str(picture)).shape[:2] and copy[..., :3].std() > 0.05  # a picture, not blank

    def images_in(name: str) -> int:
        return (tmp_path / f"{name}.pdf").read_bytes().count(b"/Subtype /Image")

    assert images_in("plain") == 1 and images_in("intake") == 2  # the views, and the views + the QC picture
    rows = list(csv.DictReader((tmp_path / "intake.csv").read_text().splitlines()))
    assert {"section": "qc", "name": "brain_extraction_device", "value": "cpu"} in rows
    picture.unlink()  # the intake cache was cleared: the report says what it can and leaves the picture out
    files = export_report(tmp_path / "later", through_intake, image(), CONTEXT)
    assert not any(p.name.endswith(".qc.png") for p in files) and images_in("later") == 1
