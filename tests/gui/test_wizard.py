"""The training wizard, walked page by page as a user would: the values reach the TrainConfig."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QWizard

from smmt_core.data.feature_sets import CIRCULAR_FEATURES, NON_CIRCULAR_FEATURES, PAPER_FEATURES
from smmt_gui.wizard import TrainingWizard
from smmt_gui.wizard.pages import parse_seeds
from smmt_gui.wizard.wizard import SETTINGS_KEY


def make_bids(root, n=6):
    """A tiny BIDS dataset: n subjects with an 8x8x8 T1 and a participants.tsv row each."""
    root.mkdir(parents=True)
    (root / "dataset_description.json").write_text(json.dumps({"Name": "tiny", "BIDSVersion": "1.8.0"}))
    rng = np.random.default_rng(0)
    rows = ["participant_id\tdiagnosis\tAGE\tPTGENDER\tPTEDUCAT\tAPOE4\tMMSE"]
    for i in range(n):
        sub = f"sub-{i:02d}"
        anat = root / sub / "anat"
        anat.mkdir(parents=True)
        volume = rng.random((8, 8, 8)).astype(np.float32)
        nib.save(nib.Nifti1Image(volume, np.eye(4)), anat / f"{sub}_T1w.nii.gz")
        label = "AD" if i % 2 else "CN"
        rows.append(f"{sub}\t{label}\t{70 + i}\t{'Male' if i % 3 else 'Female'}\t16\t{i % 3}\t{22 if i % 2 else 29}")
    (root / "participants.tsv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture
def settings(tmp_path):
    return QSettings(str(tmp_path / "wizard.ini"), QSettings.Format.IniFormat)


def next_button(wizard):
    return wizard.button(QWizard.WizardButton.NextButton)


def choose_dataset(qtbot, wizard, source, path):
    page = wizard.data_page
    with qtbot.waitSignal(page.validated, timeout=15_000):
        page.source_buttons[source].setChecked(True)
        page.path_edit.setText(str(path))
        page.validate_now()  # skip the typing pause
    qtbot.waitUntil(lambda: not page.is_checking(), timeout=5000)


def test_walk_the_wizard_page_by_page(qtbot, tmp_path, settings):
    data = make_bids(tmp_path / "bids")
    wizard = TrainingWizard(settings=settings, cuda_available=False)
    qtbot.addWidget(wizard)
    wizard.show()
    assert wizard.currentPage() is wizard.data_page

    # Page 1: a BIDS folder, validated on a worker before Next is enabled.
    choose_dataset(qtbot, wizard, "bids", data)
    assert wizard.data_page.report is not None and wizard.data_page.report.usable
    assert "Usable: 6 subjects" in wizard.data_page.status_label.text()
    assert "layout: bids" in wizard.data_page.summary.toPlainText()
    assert next_button(wizard).isEnabled()
    next_button(wizard).click()

    # Page 2: features; the circularity warning follows the choice.
    page = wizard.features_page
    assert wizard.currentPage() is page
    page.preset_buttons["non-circular"].click()
    assert page.features() == [f for f in page.features() if f in NON_CIRCULAR_FEATURES]
    assert set(page.features()) == set(NON_CIRCULAR_FEATURES)
    assert page.warning.isHidden()
    page.checks["MMSE"].setChecked(True)
    assert not page.warning.isHidden()
    assert page.circular_selected() == ["MMSE"]
    next_button(wizard).click()

    # Page 3: variant and the two sliders, with their values shown.
    page = wizard.model_page
    assert wizard.currentPage() is page
    page.fraction_slider.setValue(12)  # 12 steps of 5 %
    page.mask_slider.setValue(9)  # 9 steps of 0.05
    assert page.fraction_label.text() == "60 %"
    assert page.mask_label.text() == "0.45"
    page.variant_buttons["smmt-no-sparse"].setChecked(True)
    assert page.mask_slider.isEnabled()
    next_button(wizard).click()

    # Page 4: run settings; three seeds give three configs.
    page = wizard.run_page
    assert wizard.currentPage() is page
    page.epochs_spin.setValue(2)
    page.batch_spin.setValue(4)
    page.lr_spin.setValue(0.0005)
    page.seeds_edit.setText("1-3")
    assert "3 runs" in page.seeds_note.text()
    page.out_edit.setText(str(tmp_path / "runs"))
    finish = wizard.button(QWizard.WizardButton.FinishButton)
    assert finish.isEnabled() and finish.text() == "Start training"

    config = wizard.config()
    assert config.data.dataset == str(data)
    assert config.model.variant == "smmt-no-sparse"
    assert config.data.fraction == pytest.approx(0.6)
    assert config.model.mask_ratio == pytest.approx(0.45)
    assert config.data.features == ["MMSE", "AGE", "PTEDUCAT", "PTGENDER", "APOE4"]
    assert (config.optim.epochs, config.optim.batch_size, config.optim.lr, config.optim.seed) == (
        2, 4, pytest.approx(0.0005), 1)
    assert config.run.device == "auto" and config.run.out == str(tmp_path / "runs")
    assert [c.optim.seed for c in wizard.configs()] == [1, 2, 3]

    with qtbot.waitSignal(wizard.accepted, timeout=5000):
        finish.click()


def test_last_values_are_remembered(qtbot, tmp_path, settings):
    wizard = TrainingWizard(settings=settings, cuda_available=False)
    qtbot.addWidget(wizard)
    wizard.features_page.preset_buttons["non-circular"].click()
    wizard.features_page.label_set_combo.setCurrentIndex(wizard.features_page.label_set_combo.findData("cn-mci-ad"))
    wizard.model_page.set_fraction(0.4)
    wizard.model_page.set_mask_ratio(0.2)
    wizard.model_page.variant_buttons["3mt"].setChecked(True)
    wizard.run_page.preset_combo.setCurrentIndex(wizard.run_page.preset_combo.findData("paper"))
    wizard.run_page.epochs_spin.setValue(7)
    wizard.run_page.seeds_edit.setText("3, 5")
    wizard.run_page.run_name_edit.setText("remembered")
    wizard.save_settings()
    assert settings.value(SETTINGS_KEY)

    again = TrainingWizard(settings=settings, cuda_available=False)
    qtbot.addWidget(again)
    config = again.config()
    assert set(config.data.features) == set(NON_CIRCULAR_FEATURES)
    assert config.data.label_set == "cn-mci-ad"
    assert config.data.fraction == pytest.approx(0.4) and config.model.mask_ratio == pytest.approx(0.2)
    assert config.model.variant == "3mt" and config.preset == "paper"
    assert config.optim.epochs == 7 and config.model.d_model == 512  # the preset's model size comes along
    assert [c.run.run_name for c in again.configs()] == ["remembered-seed3", "remembered-seed5"]
    assert not again.model_page.mask_slider.isEnabled()  # 3MT does not mask


def test_damaged_settings_fall_back_to_defaults(qtbot, settings):
    settings.setValue(SETTINGS_KEY, "{not json")
    wizard = TrainingWizard(settings=settings, cuda_available=False)
    qtbot.addWidget(wizard)
    assert set(wizard.config().data.features) == set(NON_CIRCULAR_FEATURES)  # the honest default
    assert wizard.config().model.variant == "smmt"


def test_paper_preset_warns_about_circular_features(qtbot, settings):
    wizard = TrainingWizard(settings=settings, cuda_available=False)
    qtbot.addWidget(wizard)
    wizard.show()
    page = wizard.features_page
    page.preset_buttons["paper"].click()
    assert not page.warning.isHidden()
    assert set(page.circular_selected()) == set(PAPER_FEATURES) & CIRCULAR_FEATURES
    assert "MMSE" in page.warning.text() and "CDR" in page.warning.text()
    page.preset_buttons["none"].click()
    assert page.features() == [] and page.warning.isHidden()
    assert "MRI only" in page.count_label.text()


def test_unusable_or_missing_data_blocks_next(qtbot, tmp_path, settings):
    wizard = TrainingWizard(settings=settings, cuda_available=False)
    qtbot.addWidget(wizard)
    wizard.show()
    page = wizard.data_page
    page.source_buttons["folders"].setChecked(True)
    page.path_edit.setText(str(tmp_path / "nowhere"))
    page.validate_now()
    assert "does not exist" in page.status_label.text()
    assert not next_button(wizard).isEnabled()

    empty = tmp_path / "empty"
    empty.mkdir()
    choose_dataset(qtbot, wizard, "folders", empty)
    assert page.status_label.text().startswith("✗")
    assert not page.isComplete() and not next_button(wizard).isEnabled()


def test_gpu_choice_only_when_available(qtbot, settings):
    wizard = TrainingWizard(settings=settings, cuda_available=False)
    qtbot.addWidget(wizard)
    combo = wizard.run_page.device_combo
    item = combo.model().item(combo.findData("cuda"))
    assert not item.isEnabled()
    with_gpu = TrainingWizard(settings=settings, cuda_available=True)
    qtbot.addWidget(with_gpu)
    combo = with_gpu.run_page.device_combo
    assert combo.model().item(combo.findData("cuda")).isEnabled()
    combo.setCurrentIndex(combo.findData("cuda"))
    assert with_gpu.config().run.device == "cuda"


def test_bad_seeds_disable_finish(qtbot, settings):
    wizard = TrainingWizard(settings=settings, cuda_available=False)
    qtbot.addWidget(wizard)
    wizard.run_page.seeds_edit.setText("1, x")
    assert not wizard.run_page.isComplete()
    assert "'x'" in wizard.run_page.seeds_note.text()


def test_parse_seeds():
    assert parse_seeds("0") == [0]
    assert parse_seeds("0, 1,2") == [0, 1, 2]
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("5 2 2-3") == [2, 3, 5]
    for bad in ("", "a", "3-1", "-1", "0-500"):
        with pytest.raises(ValueError):
            parse_seeds(bad)


def test_an_adnimerge_table_outside_the_download_reaches_validation_and_the_config(qtbot, tmp_path, settings):
    from tests.core.fakes import make_adni, write_table
    from tests.core.test_loaders_adni import MERGE, SCANS

    download = make_adni(tmp_path / "download", SCANS, None)
    table = write_table(tmp_path / "tables" / "ADNIMERGE_01Feb2025.csv", MERGE)
    wizard = TrainingWizard(settings=settings, cuda_available=False)
    qtbot.addWidget(wizard)
    wizard.show()
    page = wizard.data_page
    assert not page.adnimerge_row.isVisible()  # only for ADNI downloads
    choose_dataset(qtbot, wizard, "adni", download)
    assert page.adnimerge_row.isVisible()
    assert page.report is None or not page.report.labels.get("AD")  # no table found: no labels
    with qtbot.waitSignal(page.validated, timeout=15_000):
        page.adnimerge_edit.setText(str(table))
        page.validate_now()
    qtbot.waitUntil(lambda: not page.is_checking(), timeout=5000)
    assert page.report.labels.get("AD") and page.report.labels.get("CN")
    assert wizard.config().data.adnimerge == str(table)
    page.source_buttons["bids"].setChecked(True)
    assert page.adnimerge_value() is None  # a table only means something for ADNI


def test_a_dataset_fit_for_prediction_only_blocks_training(qtbot, tmp_path, settings):
    from tests.core.fakes import make_bids

    data = make_bids(tmp_path / "one-class", [{"participant_id": f"sub-{i}", "diagnosis": "CN", "AGE": "70"}
                                              for i in range(4)])
    wizard = TrainingWizard(settings=settings, cuda_available=False)
    qtbot.addWidget(wizard)
    wizard.show()
    choose_dataset(qtbot, wizard, "bids", data)
    page = wizard.data_page
    assert page.report.usable and not page.report.usable_for_training
    assert "not for training" in page.status_label.text()
    assert not page.isComplete() and not next_button(wizard).isEnabled()


def test_ranges_and_defaults_come_from_the_config_declarations(qtbot, settings):
    from smmt_core.train.config import PRESETS, preset_value, setting_accepts
    from smmt_gui.wizard.pages import FRACTION_STEP, MASK_STEP

    wizard = TrainingWizard(settings=settings, cuda_available=False)
    qtbot.addWidget(wizard)
    model, run = wizard.model_page, wizard.run_page
    for slider, name, step in ((model.fraction_slider, "fraction", FRACTION_STEP / 100), (model.mask_slider, "mask_ratio", MASK_STEP)):
        assert setting_accepts(name, round(slider.minimum() * step, 10)) and setting_accepts(name, slider.maximum() * step)
        assert not setting_accepts(name, round((slider.minimum() - 1) * step, 10))
        assert not setting_accepts(name, round((slider.maximum() + 1) * step, 10))
    assert (model.fraction(), model.mask_ratio()) == (preset_value("fraction"), preset_value("mask_ratio"))
    for preset in PRESETS:
        run.preset_combo.setCurrentIndex(run.preset_combo.findData(preset))
        assert (run.epochs_spin.value(), run.batch_spin.value()) == (preset_value("epochs", preset),
                                                                     preset_value("batch_size", preset))
        assert run.lr_spin.value() == pytest.approx(preset_value("lr", preset))
