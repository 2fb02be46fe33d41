"""The robustness panel: draws what evaluate_robustness returns, computes lazily, cancels cleanly."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest

from smmt_core.modalities import ALL_NAME, modality_subsets, subset_name
from smmt_core.train.robustness import COLUMNS
from smmt_gui.panels.robustness import RobustnessPanel, subset_label


def fake_frame(run_dir, ratios, stopped=False):
    """Rows shaped like evaluate_robustness's: subsets at ratio 0, then the sweep with all modalities."""
    rows = []
    for i, subset in enumerate(modality_subsets()):
        rows.append(dict(modalities=subset_name(subset), mask_ratio=0.0, accuracy=0.9 - 0.05 * i,
                         balanced_accuracy=0.85 - 0.05 * i, n_subjects=20, accuracy_sd=0.0,
                         balanced_accuracy_sd=0.0, repeats=1))
    for r in ratios:
        if r > 0:
            rows.append(dict(modalities=ALL_NAME, mask_ratio=r, accuracy=0.9 - r / 2, balanced_accuracy=0.85 - r / 2,
                             n_subjects=20, accuracy_sd=0.01, balanced_accuracy_sd=0.02, repeats=3))
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame.attrs.update(run_dir=str(run_dir), classes=["CN", "AD"], stopped=stopped, majority_rate=0.55, synthetic=True)
    return frame


class FakeEvaluate:
    """Records its calls; reports progress and honours the stop flag like the real function."""

    def __init__(self, block: threading.Event | None = None):
        self.calls = []
        self.block = block

    def __call__(self, run_dir, mask_ratios, on_progress=None, stop=None, device="cpu", on_row=None):
        self.calls.append((run_dir, tuple(mask_ratios), device))
        total = 7 + 3 * sum(1 for r in mask_ratios if r > 0)
        for done in range(total + 1):
            if self.block is not None:
                while not stop.is_set():
                    stop.wait(0.01)
            if stop is not None and stop.is_set():
                return fake_frame(run_dir, [], stopped=True)
            on_progress(done, total)
        return fake_frame(run_dir, mask_ratios)


def test_draws_bars_sweep_and_table(qtbot, tmp_path):
    evaluate = FakeEvaluate()
    panel = RobustnessPanel(evaluate_fn=evaluate, mask_ratios=(0.0, 0.3, 0.6), device="cpu")
    qtbot.addWidget(panel)
    panel.show()
    with qtbot.waitSignal(panel.computed, timeout=10_000):
        panel.set_run(tmp_path / "run-1")
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=5000)
    assert evaluate.calls == [(tmp_path / "run-1", (0.0, 0.3, 0.6), "cpu")]
    assert panel.title_label.text() == "Robustness of run-1"

    # Balanced accuracy is shown by default: 7 bars in subset order, chance line at 1/2.
    heights = panel.bars.opts["height"]
    np.testing.assert_allclose(heights, [0.85 - 0.05 * i for i in range(7)])
    assert panel.bar_labels[0].toPlainText() == "0.85"
    assert panel.subset_chance.value() == pytest.approx(0.5)
    x, y = panel.sweep_curve.getData()
    np.testing.assert_allclose(x, [0.0, 0.3, 0.6])
    np.testing.assert_allclose(y, [0.85, 0.70, 0.55])
    assert "chance" in panel.chance_label.text()

    # Switch to accuracy: same curves redrawn, the line moves to the majority-class rate.
    panel.metric_combo.setCurrentIndex(panel.metric_combo.findData("accuracy"))
    np.testing.assert_allclose(panel.bars.opts["height"][:2], [0.9, 0.85])
    _, y = panel.sweep_curve.getData()
    np.testing.assert_allclose(y, [0.9, 0.75, 0.6])
    assert panel.sweep_chance.value() == pytest.approx(0.55)
    assert "55%" in panel.chance_label.text()

    assert panel.table.rowCount() == 9
    assert panel.table.item(0, 0).text() == "All (MRI+Clin+Cat)"
    ticks = panel.subset_plot.getAxis("bottom")._tickLevels[0]
    # one modality per line, so that neighbouring labels never run together
    assert [label for _, label in ticks] == ["All", "MRI\n+Clin", "MRI\n+Cat", "Clin\n+Cat", "MRI", "Clin", "Cat"]
    assert panel.table.item(8, 3).text() == "0.550 ± 0.020"
    assert "20 test subjects" in panel.status_label.text() and "SYNTHETIC" in panel.status_label.text()
    assert panel.compute_button.text() == "Recompute"


def test_hidden_panel_waits_until_shown_and_caches_per_run(qtbot, tmp_path):
    evaluate = FakeEvaluate()
    panel = RobustnessPanel(evaluate_fn=evaluate, mask_ratios=(0.0, 0.5), device="cpu")
    qtbot.addWidget(panel)
    panel.set_run(tmp_path / "a")
    assert evaluate.calls == [] and not panel.is_running()
    assert "when this view is shown" in panel.status_label.text()
    with qtbot.waitSignal(panel.computed, timeout=10_000):
        panel.show()
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=5000)
    with qtbot.waitSignal(panel.computed, timeout=10_000):
        panel.set_run(tmp_path / "b")
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=5000)
    panel.set_run(tmp_path / "a")  # cached: drawn at once, no new computation
    assert len(evaluate.calls) == 2
    assert panel.frame is not None and panel.frame.attrs["run_dir"] == str(tmp_path / "a")


def test_cancel_stops_the_worker(qtbot, tmp_path):
    evaluate = FakeEvaluate(block=threading.Event())
    panel = RobustnessPanel(evaluate_fn=evaluate, device="cpu")
    qtbot.addWidget(panel)
    panel.show()
    panel.set_run(tmp_path / "slow")
    qtbot.waitUntil(panel.is_running, timeout=5000)
    assert panel.compute_button.text() == "Cancel"
    with qtbot.waitSignal(panel.busy_changed, timeout=5000):
        panel.compute_button.click()
    assert not panel.is_running()
    assert panel.frame is not None and panel.frame.attrs["stopped"]
    assert "Cancelled" in panel.status_label.text()


def test_error_is_shown(qtbot, tmp_path):
    from smmt_core.errors import CheckpointError

    def broken(run_dir, mask_ratios, on_progress=None, stop=None, device="cpu", on_row=None):
        raise CheckpointError("best.safetensors is missing", run_dir)

    panel = RobustnessPanel(evaluate_fn=broken, device="cpu")
    qtbot.addWidget(panel)
    panel.show()
    with qtbot.waitSignal(panel.failed, timeout=5000) as blocker:
        panel.set_run(tmp_path / "broken")
    assert "best.safetensors is missing" in blocker.args[0]
    assert "best.safetensors is missing" in panel.status_label.text()
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=5000)
    panel.hide()
    panel.show()  # no automatic retry on every show; the user presses Compute
    assert not panel.is_running()


def test_no_run_disables_compute(qtbot):
    panel = RobustnessPanel(evaluate_fn=FakeEvaluate())
    qtbot.addWidget(panel)
    panel.set_run(None)
    assert not panel.compute_button.isEnabled()
    assert subset_label("mri+clinical") == "MRI+Clin"
    assert subset_label(ALL_NAME, short=True) == "All"


@pytest.mark.slow
def test_real_run_is_scored_and_drawn(qtbot, tmp_path_factory):
    """A tiny run trained for real (C1's shared fixture), scored by the real evaluate_robustness."""
    from tests.core.c1_support import one_thread, shared_tiny_run

    with one_thread():
        _cohort, run_dir, _cache = shared_tiny_run(tmp_path_factory)
        panel = RobustnessPanel(mask_ratios=(0.0, 0.5), device="cpu")
        qtbot.addWidget(panel)
        panel.show()
        failures = []
        panel.failed.connect(failures.append)
        with qtbot.waitSignal(panel.computed, timeout=120_000) as blocker:
            panel.set_run(run_dir)
        qtbot.waitUntil(lambda: not panel.is_running(), timeout=10_000)
    assert failures == []
    frame = blocker.args[0]
    assert len(frame) == 8  # 7 modality subsets + the sweep at 0.5
    by_name = frame[frame["mask_ratio"] == 0.0].set_index("modalities")["balanced_accuracy"]
    expected = [by_name[subset_name(s)] for s in modality_subsets()]
    np.testing.assert_allclose(panel.bars.opts["height"], np.nan_to_num(expected))
    x, _ = panel.sweep_curve.getData()
    np.testing.assert_allclose(x, [0.0, 0.5])
    assert panel.table.rowCount() == 8


def test_undefined_values_are_left_out_not_drawn_as_zero(qtbot, tmp_path):
    frame = fake_frame(tmp_path, (0.0, 0.5, 0.9))
    frame.loc[frame["mask_ratio"] == 0.5, "balanced_accuracy"] = float("nan")
    frame.loc[frame["modalities"] == "categorical", "balanced_accuracy"] = float("nan")

    def evaluate(run_dir, mask_ratios, on_progress=None, stop=None, device="cpu", on_row=None):
        return frame

    panel = RobustnessPanel(evaluate_fn=evaluate, device="cpu")
    qtbot.addWidget(panel)
    panel.show()
    with qtbot.waitSignal(panel.computed, timeout=10_000):
        panel.set_run(tmp_path / "nan-run")
    x, _ = panel.sweep_curve.getData()
    np.testing.assert_allclose(x, [0.0, 0.9])
    assert panel.bar_labels[-1].toPlainText() == ""  # categorical alone: undefined
    row = [panel.table.item(r, 0).text() for r in range(panel.table.rowCount())].index("Cat")
    assert panel.table.item(row, 3).text() == "–"
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=5000)


def test_bars_are_drawn_as_their_passes_finish(qtbot, tmp_path):
    """Each bar appears when its pass is done, not when every pass is."""
    release = threading.Event()
    full = fake_frame(tmp_path, [0.0])

    def evaluate(run_dir, mask_ratios, on_progress=None, stop=None, device="cpu", on_row=None):
        first = full.iloc[0].to_dict()
        on_row(first)
        release.wait(30)
        return full

    panel = RobustnessPanel(evaluate_fn=evaluate, mask_ratios=(0.0,), device="cpu")
    qtbot.addWidget(panel)
    panel.show()
    panel.set_run(tmp_path)
    name = full.iloc[0]["modalities"]
    index = panel._subset_names.index(name)
    qtbot.waitUntil(lambda: panel.bar_labels[index].textItem.toPlainText() != "", timeout=10_000)
    assert panel.is_running()  # drawn while the evaluation still runs
    release.set()
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=10_000)


def _points(item) -> int:
    x = item.getData()[0]
    return 0 if x is None else len(x)


def fake_missing_frame(run_dir, shares=(0.0, 0.2, 0.4)):
    """Rows shaped like evaluate_missing_shares's: the model and two baselines, two modalities."""
    from smmt_core.experiments.missing import COLUMNS as MISSING_COLUMNS

    rows = []
    for k, (method, kind) in enumerate((("smmt", "model"), ("lr-clinical", "baseline"), ("lr-pixels", "baseline"))):
        for modality in ("mri", "clinical"):
            for share in shares:
                value = 0.9 - 0.1 * k - (0.5 if modality == "mri" else 0.2) * share
                rows.append(dict(method=method, kind=kind, modality=modality, share=share, n_persons=20,
                                 n_missing=round(share * 20), n_prior=0, balanced_accuracy=value,
                                 balanced_accuracy_lo=value - 0.1, balanced_accuracy_hi=value + 0.05,
                                 roc_auc=value, roc_auc_lo=value - 0.1, roc_auc_hi=value + 0.1, accuracy=value + 0.01))
    frame = pd.DataFrame(rows, columns=MISSING_COLUMNS)
    frame.attrs.update(run_dir=str(run_dir), classes=["CN", "AD"], split_seed=3, majority_rate=0.55,
                       errors={"cnn": "no subject has a T1 image"})
    return frame


def test_the_missing_data_view_draws_one_curve_per_method_with_its_band(qtbot, tmp_path):
    calls = []

    def missing(run_dir, shares, device, stop, on_progress):
        calls.append((run_dir, tuple(shares), device))
        on_progress(1, 3)
        return fake_missing_frame(run_dir)

    panel = RobustnessPanel(evaluate_fn=FakeEvaluate(), mask_ratios=(0.0,), device="cpu", missing_fn=missing)
    qtbot.addWidget(panel)
    panel.resize(1500, 900)
    panel.show()
    panel.views.setCurrentIndex(1)
    with qtbot.waitSignal(panel.missing_computed, timeout=10_000):
        panel.set_run(tmp_path / "run-m")
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=5000)
    assert calls == [(tmp_path / "run-m", (0.0, 0.2, 0.4, 0.6), "cpu")]

    drawn = {key: curve.getData() for key, curve in panel.missing_curves.items() if _points(curve)}
    assert set(drawn) == {"model", "lr-clinical", "lr-pixels"}  # one curve per method; no data, no curve
    x, y = drawn["model"]
    np.testing.assert_allclose(x, [0, 20, 40])
    np.testing.assert_allclose(y, [0.9, 0.8, 0.7])  # balanced accuracy, MRI missing
    lo, hi = (edge.getData()[1] for edge in panel._band_edges["lr-clinical"])
    np.testing.assert_allclose(lo, [0.7, 0.6, 0.5])
    np.testing.assert_allclose(hi, [0.85, 0.75, 0.65])
    legend = [label.text for _, label in panel.missing_legend.items]
    assert legend == ["smmt", "lr-clinical", "lr-pixels"]
    assert "split seed (3)" in panel.missing_label.text() and "cnn" in panel.missing_label.text()
    assert panel.missing_chance.value() == pytest.approx(0.5)

    panel.missing_combo.setCurrentIndex(panel.missing_combo.findData("clinical"))
    _, y = panel.missing_curves["model"].getData()
    np.testing.assert_allclose(y, [0.9, 0.86, 0.82])
    panel.metric_combo.setCurrentIndex(panel.metric_combo.findData("accuracy"))
    _, y = panel.missing_curves["lr-pixels"].getData()
    np.testing.assert_allclose(y, [0.71, 0.67, 0.63])
    assert _points(panel._band_edges["lr-pixels"][0]) == 0  # accuracy has no CI: no band

    panel.set_run(tmp_path / "other")  # another run: computed anew
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=10_000)
    panel.set_run(tmp_path / "run-m")  # cached, drawn again without computing
    assert len(calls) == 2 and _points(panel.missing_curves["model"]) == 3


def test_a_failing_comparison_keeps_the_robustness_rows(qtbot, tmp_path):
    from smmt_core.errors import DataError

    def missing(run_dir, **kwargs):
        raise DataError("the dataset moved")

    panel = RobustnessPanel(evaluate_fn=FakeEvaluate(), mask_ratios=(0.0,), device="cpu", missing_fn=missing)
    qtbot.addWidget(panel)
    panel.show()
    with qtbot.waitSignal(panel.computed, timeout=10_000):
        panel.set_run(tmp_path / "run-f")
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=5000)
    assert "the dataset moved" in panel.missing_label.text()
    assert panel.frame is not None and panel.table.rowCount() == 7
