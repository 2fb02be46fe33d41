"""The prediction panel draws a Prediction and reports the modality switches."""

from __future__ import annotations

import math

import numpy as np
import pytest

from smmt_core.predict import Prediction
from smmt_gui import strings
from smmt_gui.panels.prediction import PredictionPanel


def make_prediction(**changes) -> Prediction:
    values = dict(subject_id="sub-01", prediction="AD", probabilities={"CN": 0.27, "AD": 0.73},
                  modalities_used=["mri", "clinical"], modalities_missing=["categorical"],
                  contributions={"mri": 0.8, "clinical": -0.3}, warnings=["template correlation is low"],
                  model_name="demo-run", synthetic_model=True)
    values.update(changes)
    return Prediction(**values)


@pytest.fixture
def panel(qtbot):
    widget = PredictionPanel()
    qtbot.addWidget(widget)
    widget.set_model("demo-run", ["CN", "AD"], synthetic=False)
    widget.set_subject("sub-01", {"mri", "clinical"})
    return widget


def test_draws_probabilities_modalities_contributions_and_warnings(panel):
    panel.set_prediction(make_prediction())
    assert panel.prob_bars["AD"].value() == 730 and panel.prob_bars["CN"].value() == 270
    assert "73.0%" in panel.prob_bars["AD"].format() and "◀" in panel.prob_bars["AD"].format()
    assert "Alzheimer" in panel.title.text() and "sub-01" in panel.title.text()
    assert panel.used_label.text() == "Used: MRI, Clinical scores"
    opts = panel.contrib_bars.opts
    np.testing.assert_allclose(opts["width"], [0.8, 0.3, 0.0])
    np.testing.assert_allclose(opts["x0"], [0.0, -0.3, 0.0])
    assert "MRI: +0.80" in panel.contrib_text.text() and "Categorical: –" in panel.contrib_text.text()
    assert "template correlation is low" in panel.warnings.text()
    assert not panel.synthetic_badge.isHidden()  # the model was trained on synthetic data


def test_missing_modality_cannot_be_switched_on(panel):
    assert panel.toggles["mri"].isEnabled() and panel.toggles["clinical"].isEnabled()
    assert not panel.toggles["categorical"].isEnabled() and not panel.toggles["categorical"].isChecked()
    assert panel.toggles["categorical"].toolTip() == strings.PRED_MISSING
    assert panel.enabled_modalities() == {"mri", "clinical"}


def test_toggles_report_the_switched_on_set(panel, qtbot):
    with qtbot.waitSignal(panel.modalities_changed) as blocker:
        panel.toggles["mri"].setChecked(False)
    assert blocker.args[0] == {"clinical"}
    with qtbot.waitSignal(panel.modalities_changed) as blocker:
        panel.toggles["mri"].setChecked(True)
    assert blocker.args[0] == {"mri", "clinical"}


def test_model_without_a_modality_disables_its_switch(panel):
    panel.set_model("no-mri", ["CN", "AD"], modalities=["clinical", "categorical"])
    panel.set_subject("sub-02", {"mri", "clinical", "categorical"})
    assert not panel.toggles["mri"].isEnabled()
    assert panel.enabled_modalities() == {"clinical", "categorical"}


def test_new_subject_clears_the_old_prediction(panel):
    panel.set_prediction(make_prediction())
    panel.set_subject("sub-02", {"mri", "clinical", "categorical"})
    assert panel.prediction is None and panel.prob_bars["AD"].value() == 0
    assert all(box.isChecked() and box.isEnabled() for box in panel.toggles.values())
    assert panel.title.text() == "sub-02" and panel.warnings.text() == ""


def test_three_classes_get_three_bars(panel):
    prediction = make_prediction(probabilities={"CN": 0.2, "MCI": 0.5, "AD": 0.3}, prediction="MCI",
                                 contributions={"mri": math.nan})
    panel.set_prediction(prediction)
    assert list(panel.prob_bars) == ["CN", "MCI", "AD"] and panel.prob_bars["MCI"].value() == 500
    assert "MRI: –" in panel.contrib_text.text()


def test_errors_and_busy_state(panel):
    panel.set_busy(True)
    assert panel.busy_label.text() == strings.PRED_UPDATING
    panel.set_error("sub-01: no usable modality left")
    assert panel.busy_label.text() == "" and "no usable modality" in panel.warnings.text()


def test_a_prediction_at_chance_shows_the_guess_note(panel):
    note = "a guess, not a finding: from mri this model's own test set is at chance"
    panel.set_prediction(make_prediction(reliability={"at_chance": True, "note": note}))
    assert note in panel.warnings.text() and panel.warnings.text().index(note) < panel.warnings.text().index("template")
    panel.set_prediction(make_prediction(reliability={"at_chance": False, "note": None}))
    assert "guess" not in panel.warnings.text()
