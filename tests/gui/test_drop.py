"""Dropping a subject folder, a T1 file or a dataset anywhere on the window; bad drops say why."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication


def drop(widget, *paths, urls=None):
    """Deliver a real drag-enter then drop carrying file URLs to `widget`; returns (entered, dropped)."""
    mime = QMimeData()
    mime.setUrls(urls if urls is not None else [QUrl.fromLocalFile(str(p)) for p in paths])
    centre = widget.rect().center()
    enter = QDragEnterEvent(QPoint(centre), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    event = QDropEvent(QPointF(centre), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)
    return enter.isAccepted(), event.isAccepted()


def write_subject(folder, shape=(20, 24, 20)):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    data = rng.random(shape).astype(np.float32)
    data[5:15, 6:18, 5:15] += 2.0  # a bright "brain" so the intensity scaling has something to scale
    nib.save(nib.Nifti1Image(data, np.diag([8.0, 8.0, 8.0, 1.0])), str(folder / "T1w.nii.gz"))
    (folder / "clinical.json").write_text('{"MMSE": 28, "AGE": 71, "PTGENDER": "Female", "label": "CN"}')
    return folder


@pytest.fixture
def shown_window(main_window, qtbot):
    main_window.show()
    qtbot.waitExposed(main_window)
    return main_window


def test_dropping_a_subject_folder_loads_and_shows_it(shown_window, qtbot, tmp_path):
    folder = write_subject(tmp_path / "subject-07")
    with qtbot.waitSignal(shown_window.subject_shown, timeout=60000) as blocker:
        entered, dropped = drop(shown_window, folder)
    assert entered and dropped
    assert blocker.args[0].subject_id == "subject-07"
    assert shown_window.viewer.has_volume
    assert shown_window.viewer_stack.currentWidget() is shown_window.viewer
    assert shown_window.cohort_panel.model.rowCount() == 1
    assert shown_window.settings.recent_folders()[0] == str(folder.resolve())
    assert not shown_window.message_bar.isVisible()


def test_drop_on_a_child_widget_reaches_the_window(shown_window, qtbot, tmp_path):
    folder = write_subject(tmp_path / "subject-08")
    with qtbot.waitSignal(shown_window.subject_shown, timeout=60000):
        drop(shown_window.cohort_panel.table.viewport(), folder)
    with qtbot.waitSignal(shown_window.subject_shown, timeout=60000):
        drop(shown_window.viewer.views["axial"].viewport(), folder / "T1w.nii.gz")
    assert shown_window.subject.subject_id == "T1w"


def test_a_text_file_is_refused_with_a_message(shown_window, qtbot, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    drop(shown_window, notes)
    qtbot.waitUntil(lambda: shown_window.message_bar.isVisible(), timeout=30000)
    text = shown_window.message_bar.text()
    assert "notes.txt" in text and "not a T1 image" in text
    assert shown_window.subject is None


def test_a_corrupt_nifti_is_refused_and_the_app_carries_on(shown_window, qtbot, tmp_path):
    bad = tmp_path / "broken" / "T1w.nii"
    bad.parent.mkdir()
    bad.write_bytes(b"\x00garbage" * 100)
    drop(shown_window, bad.parent)
    qtbot.waitUntil(lambda: shown_window.message_bar.isVisible(), timeout=30000)
    assert "T1w.nii" in shown_window.message_bar.text()
    qtbot.waitUntil(lambda: not shown_window.is_busy(), timeout=30000)
    # a good drop afterwards still works
    good = write_subject(tmp_path / "good")
    with qtbot.waitSignal(shown_window.subject_shown, timeout=60000):
        drop(shown_window, good)
    assert shown_window.subject.subject_id == "good" and not shown_window.message_bar.isVisible()


def test_several_items_or_remote_urls_are_refused(shown_window, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    drop(shown_window, a, b)
    assert "one folder or file at a time (2 were dropped)" in shown_window.message_bar.text()
    drop(shown_window, urls=[QUrl("https://example.org/t1.nii.gz")])
    assert "Only local files" in shown_window.message_bar.text()
    assert not shown_window.is_busy()


def test_dropping_a_missing_path_names_it(shown_window, qtbot, tmp_path):
    drop(shown_window, tmp_path / "gone")
    qtbot.waitUntil(lambda: shown_window.message_bar.isVisible(), timeout=30000)
    assert "gone" in shown_window.message_bar.text() and "no such file" in shown_window.message_bar.text()


def test_drag_without_urls_is_ignored(shown_window):
    mime = QMimeData()
    mime.setText("hello")
    enter = QDragEnterEvent(QPoint(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(shown_window, enter)
    assert not enter.isAccepted()


def test_a_subject_folder_of_a_synthetic_dataset_says_synthetic(shown_window, qtbot, tmp_path):
    from tests.core.fakes import make_bids

    root = make_bids(tmp_path / "demo", [{"participant_id": "sub-001", "diagnosis": "AD", "AGE": "70"}],
                     name="Demo cohort (SYNTHETIC, not patient data)")
    with qtbot.waitSignal(shown_window.subject_shown, timeout=60000) as blocker:
        drop(shown_window, root / "sub-001")
    assert blocker.args[0].synthetic and blocker.args[0].numeric["AGE"] == 70.0
    assert shown_window.cohort_panel.synthetic_badge.isVisibleTo(shown_window)
    assert shown_window.synthetic_badge_action.isVisible()


def test_a_dropped_noise_volume_is_refused_by_the_intake_naming_why(loaded, qtbot, tmp_path):
    """The real intake, on a volume of noise: refused at its first measurement (no brain extraction,
    no registration), and the window says why, not "register it to MNI152 first"."""
    noise = np.random.default_rng(0).random((48, 56, 48)).astype(np.float32) * 1000
    path = tmp_path / "noise.nii.gz"
    nib.save(nib.Nifti1Image(noise, np.diag([3.0, 3.0, 3.0, 1.0])), str(path))
    loaded.show()
    qtbot.waitExposed(loaded)
    shown_before = loaded.subject
    entered, dropped = drop(loaded, path)
    assert entered and dropped
    qtbot.waitUntil(lambda: "failed quality control" in loaded.message_bar.text(), timeout=120_000)
    text = loaded.message_bar.text()
    assert "noise.nii.gz" in text and "looks like noise, not an MRI" in text and "Register" not in text
    dialog = loaded.intake_dialog
    assert dialog.status["brain"].text() == dialog.status["register"].text() == "skipped: not an image of a head"
    assert loaded.subject is shown_before  # nothing was predicted on it
    qtbot.waitUntil(dialog.worker.is_done, timeout=30_000)


def test_a_dropped_dicom_folder_goes_through_the_intake_to_a_prediction(loaded, qtbot, tmp_path):
    pytest.importorskip("dcm2niix")
    pytest.importorskip("SimpleITK")
    from smmt_core.data.template import mni_template
    from tests.core.test_intake import write_dicom_series

    tpl = mni_template(4.0)
    img = nib.Nifti1Image((tpl.data * 1000).astype(np.float32), tpl.affine)
    folder = tmp_path / "patient07"
    write_dicom_series(img, folder / "study" / "s2_mprage", "T1 MPRAGE", 2, "7")
    loaded.show()
    qtbot.waitExposed(loaded)
    with qtbot.waitSignal(loaded.prediction_shown, timeout=180_000):
        entered, dropped = drop(loaded, folder)
    assert entered and dropped
    dialog = loaded.intake_dialog
    assert dialog.status["convert"].text() in ("done", "done (cached)")
    assert dialog.result.qc.ok
    assert loaded.subject.t1_path == folder and loaded.last_prediction is not None
    qtbot.waitUntil(dialog.worker.is_done, timeout=30_000)
