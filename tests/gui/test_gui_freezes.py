"""The wizard never imports torch on the GUI thread, and closing it never waits for a
dataset check (a large ADNI tree can take minutes). Event-based: no timing assertions."""

from __future__ import annotations

import sys
import threading

import pytest
from PySide6.QtCore import QSettings

from smmt_gui import strings
from smmt_gui.wizard import TrainingWizard
from smmt_gui.workers import live_workers


@pytest.fixture
def settings(tmp_path):
    return QSettings(str(tmp_path / "wizard.ini"), QSettings.Format.IniFormat)


def test_the_wizard_does_not_import_torch(qtbot, settings, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # any `import torch` now raises ImportError
    wizard = TrainingWizard(settings=settings)  # CUDA not known yet
    qtbot.addWidget(wizard)
    page = wizard.run_page
    cuda = page.device_combo.model().item(page.device_combo.findData("cuda"))
    assert not cuda.isEnabled() and cuda.text() == strings.WIZARD_CUDA_CHECKING
    page.set_cuda_available(True)
    assert cuda.isEnabled() and cuda.text() == dict(strings.WIZARD_DEVICES)["cuda"]
    page.device_combo.setCurrentIndex(page.device_combo.findData("cuda"))
    page.set_cuda_available(False)
    assert not cuda.isEnabled() and page.device() == "auto"


def test_the_window_tells_the_wizard_whether_cuda_exists(main_window, qtbot):
    qtbot.waitUntil(lambda: main_window.session.cuda_available is not None, timeout=60000)
    main_window.open_training_wizard()
    page = main_window.wizard.run_page
    assert page.cuda_available == main_window.session.cuda_available
    main_window.session.set_cuda_available(True)  # e.g. the answer arrives after the wizard opened
    assert page.cuda_available is True
    main_window.wizard.reject()
    assert main_window.wizard is None


def test_closing_the_wizard_does_not_wait_for_a_dataset_check(qtbot, settings, tmp_path, monkeypatch):
    import smmt_core.data.validate as validate

    started, release, ended = threading.Event(), threading.Event(), threading.Event()
    stop_flags = []

    def slow_check(path, *, check_images=True, adnimerge=None, stop=None):
        stop_flags.append(stop)
        started.set()
        release.wait(30)  # e.g. listing a large ADNI tree, which no flag can interrupt
        ended.set()
        raise validate.DataError("stopped", path)

    monkeypatch.setattr(validate, "validate_path", slow_check)
    wizard = TrainingWizard(settings=settings, cuda_available=False)
    qtbot.addWidget(wizard)
    wizard.show()
    page = wizard.data_page
    page.source_buttons["folders"].setChecked(True)
    page.path_edit.setText(str(tmp_path))
    page.validate_now()
    assert started.wait(10)
    reports = []
    page.validated.connect(reports.append)
    wizard.reject()  # returns although the check cannot end before `release`
    assert not ended.is_set() and not wizard.isVisible()
    assert stop_flags[0] is not None and stop_flags[0].is_set()  # asked to stop at its next check
    release.set()
    qtbot.waitUntil(lambda: live_workers() == [], timeout=10000)
    assert reports == []  # the late result was dropped, never shown
