"""The intake dialog: progress per step, the QC picture and the prediction; Cancel; no thread left."""

from __future__ import annotations

from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest

from smmt_core.data.intake import IntakeCache
from smmt_core.data.template import mni_template
from smmt_gui.intake_dialog import IntakeDialog, needs_intake


@pytest.fixture
def mni_t1(tmp_path):
    tpl = mni_template(2.0)
    path = tmp_path / "mni_T1w.nii.gz"
    nib.save(nib.Nifti1Image((tpl.data * 1000).astype(np.float32), tpl.affine), str(path))
    return path


def test_a_registered_brain_ends_with_qc_picture_and_prediction(qtbot, tmp_path, mni_t1):
    assert not needs_intake(mni_t1)
    calls = []

    def predict(path):
        calls.append(path)
        return SimpleNamespace(prediction="AD", probabilities={"AD": 0.8, "CN": 0.2})

    dialog = IntakeDialog(mni_t1, predict, cache=IntakeCache(tmp_path / "cache"))
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.worker.finished, timeout=120_000):
        dialog.start()
    assert calls == [mni_t1]
    assert dialog.result.qc.verdict == "pass" and not dialog.picture.pixmap().isNull()
    assert "Prediction: AD (P(AD) = 0.80)" in dialog.message.text()
    assert dialog.status["register"].text().startswith("skipped") and dialog.status["predict"].text() == "done"
    assert dialog.button.text() == "Close"


def test_cancel_stops_the_job_and_says_so(qtbot, tmp_path, mni_t1):
    dialog = IntakeDialog(mni_t1, lambda path: pytest.fail("predicted after Cancel"),
                          cache=IntakeCache(tmp_path / "cache"))
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.worker.finished, timeout=120_000):
        dialog.start()
        dialog.button.click()  # Cancel, while the child process is still starting
    assert dialog.message.text() == "Cancelled. Nothing was saved for this scan."
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("result.json"))


def test_the_result_names_the_device_brain_extraction_ran_on(qtbot, tmp_path, mni_t1):
    from smmt_core.data.intake import IntakeResult, qc

    dialog = IntakeDialog(mni_t1, None, cache=IntakeCache(tmp_path / "cache"))  # not started: no worker runs
    qtbot.addWidget(dialog)
    result = IntakeResult(source=mni_t1, t1_mni=mni_t1, native=mni_t1, qc=qc.verdict(0.7, 0.95),
                          steps_run=["measure", "brain", "bias", "register", "qc"], steps_skipped={}, measures={},
                          mni_to_native=np.eye(4), device="cpu")
    with qtbot.waitSignal(dialog.completed):
        dialog._on_result((result, None))
    assert "Quality control: PASS" in dialog.message.text()
    assert "Brain extraction ran on cpu." in dialog.message.text()
