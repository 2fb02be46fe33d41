"""The training dashboard: scripted event streams draw the right curves; real tiny trainings finish and cancel."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

import numpy as np
import pytest

from smmt_core.train.config import TrainConfig
from smmt_core.train.events import (
    BatchProgress,
    CheckpointSaved,
    DataProgress,
    EnergyUpdate,
    EpochEnd,
    RunFailed,
    RunFinished,
    RunStarted,
    StopSeen,
)
from smmt_gui import strings
from smmt_gui.panels.training import PROGRESS_REDRAW_MS, TrainingDashboard, format_duration

TEST_METRICS = {
    "accuracy": 0.75,
    "balanced_accuracy": 0.7,
    "sensitivity": 0.6,
    "specificity": 0.8,
    "precision": 0.6,
    "f1": 0.6,
    "roc_auc": 0.81,
    "confusion_matrix": [[4, 1], [2, 3]],
    "roc_curve": {"fpr": [0.0, 0.2, 1.0], "tpr": [0.0, 0.6, 1.0]},
}


def scripted_events(run_dir: Path, epochs: int = 3, batches: int = 4, stopped_early: bool = False):
    """What a 3-epoch run reports, with numbers the test can check."""
    yield RunStarted(run_dir, epochs, batches, n_train=20, n_val=5, n_test=6, device="cpu",
                     config={"variant": "smmt", "label_set": "ad-cn", "run_name": "scripted"})
    for epoch in range(1, epochs + 1):
        for batch in range(1, batches + 1):
            yield BatchProgress(epoch, batch, batches, loss=1.0 / (epoch + batch), elapsed_s=epoch * 10.0 + batch,
                                eta_s=None if epoch == 1 and batch == 1 else 30.0)
        yield EpochEnd(epoch, train_loss=1.0 / epoch, val_loss=None if epoch == 2 else 1.5 / epoch,
                       train_metrics={"accuracy": 0.5 + 0.1 * epoch}, val_metrics={"accuracy": 0.4 + 0.1 * epoch},
                       is_best=True)
        yield EnergyUpdate(epoch, elapsed_s=60.0 * epoch, energy_kwh=0.001 * epoch, power_w=20.0 + epoch, estimated=True)
        yield CheckpointSaved(run_dir / "best.safetensors", epoch, "best")
    yield RunFinished(run_dir, stopped_early=stopped_early, test_metrics=TEST_METRICS, energy_kwh=0.003, duration_s=95.0)


def fake_train_fn(run_dir: Path, **kwargs):
    def train(config, on_event, stop):
        for event in scripted_events(run_dir, **kwargs):
            on_event(event)
        return None

    return train


def test_scripted_stream_draws_curves_with_the_right_data(qtbot, tmp_path):
    dashboard = TrainingDashboard(train_fn=fake_train_fn(tmp_path / "run-a"))
    qtbot.addWidget(dashboard)
    finished, busy = [], []
    dashboard.finished.connect(finished.append)
    dashboard.busy_changed.connect(busy.append)
    with qtbot.waitSignal(dashboard.finished, timeout=10_000):
        dashboard.start(TrainConfig.build("demo", dataset="demo", epochs=3, seed=4))
    assert finished == [tmp_path / "run-a"]
    assert busy == [True, False]
    assert not dashboard.is_running()

    x, y = dashboard.train_loss_curve.getData()
    np.testing.assert_allclose(x, [1, 2, 3])
    np.testing.assert_allclose(y, [1.0, 0.5, 1.0 / 3])
    x, y = dashboard.val_loss_curve.getData()
    np.testing.assert_allclose(x, [1, 2, 3])
    assert math.isnan(y[1]) and y[0] == pytest.approx(1.5) and y[2] == pytest.approx(0.5)
    _, y = dashboard.val_acc_curve.getData()
    np.testing.assert_allclose(y, [0.5, 0.6, 0.7])
    x, y = dashboard.batch_loss_curve.getData()  # flushed when the worker finished
    assert len(x) == 12 and x[0] == pytest.approx(0.25) and x[-1] == pytest.approx(3.0)
    assert y[0] == pytest.approx(0.5)
    x, y = dashboard.energy_curve.getData()
    np.testing.assert_allclose(x, [1, 2, 3])  # minutes
    np.testing.assert_allclose(y, [1.0, 2.0, 3.0])  # Wh
    _, y = dashboard.power_curve.getData()
    np.testing.assert_allclose(y, [21, 22, 23])
    assert "estimated" in dashboard.energy_label.text()

    # Results: metrics column, confusion matrix with class names, ROC curve.
    assert dashboard.metrics_table.columnCount() == 1
    assert dashboard.metrics_table.horizontalHeaderItem(0).text() == "seed 4"
    assert dashboard.metrics_table.item(0, 0).text() == "0.750"
    assert dashboard.metrics_table.item(6, 0).text() == "0.810"
    assert dashboard.confusion_table.rowCount() == 2
    assert dashboard.confusion_table.verticalHeaderItem(1).text() == "AD"
    assert [dashboard.confusion_table.item(1, j).text() for j in range(2)] == ["2", "3"]
    x, y = dashboard.roc_curve.getData()
    np.testing.assert_allclose(x, [0.0, 0.2, 1.0])
    np.testing.assert_allclose(y, [0.0, 0.6, 1.0])
    assert dashboard.progress_bar.value() == 1000
    assert "1 min 35 s" in dashboard.status_label.text()
    assert dashboard.title_label.text().startswith("Finished")


def test_progress_and_eta_follow_batches(qtbot, tmp_path):
    dashboard = TrainingDashboard()
    qtbot.addWidget(dashboard)
    events = list(scripted_events(tmp_path))
    dashboard.handle_event(events[0])
    dashboard.handle_event(events[1])  # epoch 1, batch 1 of 4, no ETA yet
    assert "estimating" in dashboard.eta_label.text()
    assert dashboard.progress_bar.value() == round(1000 / 12)
    dashboard.handle_event(events[2])  # within 100 ms of the first: shown when that interval is over
    qtbot.waitUntil(lambda: "30 s left" in dashboard.eta_label.text(), timeout=5_000)
    assert "Epoch 1/3 · batch 2/4" in dashboard.status_label.text()
    assert "20 training · 5 validation · 6 test" in dashboard.info_label.text()
    dashboard.handle_event(EpochEnd(1, 0.6, 0.7, {"accuracy": 0.6}, {"accuracy": 0.5}, is_best=True))
    assert "best so far: epoch 1" in dashboard.info_label.text()
    dashboard.handle_event(EpochEnd(2, 0.5, 0.8, {"accuracy": 0.7}, {"accuracy": 0.4}, is_best=False))
    assert "best so far: epoch 1" in dashboard.info_label.text()


def test_several_seeds_train_one_after_another(qtbot, tmp_path):
    dashboard = TrainingDashboard(train_fn=fake_train_fn(tmp_path / "run"))
    qtbot.addWidget(dashboard)
    finished = []
    dashboard.finished.connect(finished.append)
    configs = [TrainConfig.build("demo", dataset="demo", seed=s) for s in (0, 1, 2)]
    dashboard.start(configs)
    qtbot.waitUntil(lambda: len(finished) == 3 and not dashboard.is_running(), timeout=15_000)
    headers = [dashboard.metrics_table.horizontalHeaderItem(i).text() for i in range(3)]
    assert headers == ["seed 0", "seed 1", "seed 2"]


def test_failure_is_shown_once_and_emitted(qtbot, tmp_path):
    def failing_train(config, on_event, stop):
        on_event(RunFailed("data/participants.tsv: column MMSE is missing", None))
        from smmt_core.errors import DataError

        raise DataError("column MMSE is missing", "data/participants.tsv")

    dashboard = TrainingDashboard(train_fn=failing_train)
    qtbot.addWidget(dashboard)
    failures, finished = [], []
    dashboard.failed.connect(failures.append)
    dashboard.finished.connect(finished.append)
    dashboard.start(TrainConfig.build("demo", dataset="demo"))
    qtbot.waitUntil(lambda: not dashboard.is_running(), timeout=10_000)
    assert failures == ["data/participants.tsv: column MMSE is missing"]
    assert finished == []
    assert "MMSE" in dashboard.status_label.text()
    assert dashboard.title_label.text() == "Training failed"


def test_cancel_sets_the_stop_flag_and_reports_cancelled(qtbot, tmp_path):
    started = threading.Event()

    def slow_train(config, on_event, stop):
        on_event(RunStarted(tmp_path, 5, 10, 8, 2, 2, "cpu", {"label_set": "ad-cn"}))
        for batch in range(1, 1000):
            if stop.is_set():
                on_event(RunFinished(tmp_path, True, {}, 0.0, 1.0))
                return None
            on_event(BatchProgress(1, batch, 10, 0.7, 0.1, None))
            started.set()
            stop.wait(0.01)
        raise AssertionError("the stop flag was never seen")

    dashboard = TrainingDashboard(train_fn=slow_train)
    qtbot.addWidget(dashboard)
    cancelled, finished = [], []
    dashboard.cancelled.connect(cancelled.append)
    dashboard.finished.connect(finished.append)
    dashboard.start(TrainConfig.build("demo", dataset="demo"))
    assert started.wait(5)
    with qtbot.waitSignal(dashboard.cancelled, timeout=5000):
        dashboard.cancel()
        assert not dashboard.cancel_button.isEnabled()
    assert cancelled == [tmp_path] and finished == []
    assert dashboard.title_label.text().startswith("Cancelled")
    assert not dashboard.is_running()


def test_start_refuses_invalid_config_and_a_second_run(qtbot, tmp_path):
    from smmt_core.errors import ConfigError

    dashboard = TrainingDashboard(train_fn=fake_train_fn(tmp_path))
    qtbot.addWidget(dashboard)
    with pytest.raises(ConfigError):
        dashboard.start(TrainConfig.build("demo", dataset="demo", fraction=0.0))
    assert not dashboard.is_running()


def test_format_duration():
    assert format_duration(5) == "5 s"
    assert format_duration(185) == "3 min 05 s"
    assert format_duration(3720) == "1 h 02 min"
    assert format_duration(None) == "?"


# --- real trainings on a tiny cohort (seconds) ------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_cohort(tmp_path_factory):
    """A 12-person BIDS cohort of 8 mm MNI-template T1s (C1's helper), made once for this file."""
    from tests.core.c1_support import make_tiny_bids

    return make_tiny_bids(tmp_path_factory.mktemp("d2-cohort") / "cohort", n_per_class=6)


@pytest.fixture
def one_torch_thread():
    from tests.core.c1_support import one_thread

    with one_thread():
        yield


@pytest.mark.slow
def test_real_tiny_training_runs_to_completion(qtbot, tmp_path, tiny_cohort, one_torch_thread):
    from tests.core.c1_support import tiny_config

    config = tiny_config(tiny_cohort, tmp_path / "runs", run_name="gui-tiny", epochs=2, measure_energy=True)
    dashboard = TrainingDashboard()
    qtbot.addWidget(dashboard)
    failures = []
    dashboard.failed.connect(failures.append)
    with qtbot.waitSignal(dashboard.finished, timeout=120_000) as blocker:
        dashboard.start(config)
    assert failures == []
    run_dir = blocker.args[0]
    assert run_dir == tmp_path / "runs" / "gui-tiny"
    assert (run_dir / "best.safetensors").is_file() and (run_dir / "run.json").is_file()
    qtbot.waitUntil(lambda: not dashboard.is_running(), timeout=10_000)

    x, _ = dashboard.train_loss_curve.getData()
    np.testing.assert_allclose(x, [0, 1, 2])  # epoch 0: the fitted linear path alone, before any step
    assert len(dashboard.batch_loss_curve.getData()[0]) >= 2
    assert len(dashboard.energy_curve.getData()[0]) >= 1
    assert dashboard.progress_bar.value() == 1000
    # The table shows what the run folder says.
    run = json.loads((run_dir / "run.json").read_text())
    accuracy = run.get("test_metrics", {}).get("accuracy", dashboard.test_metrics["accuracy"])
    assert dashboard.metrics_table.item(0, 0).text().split(" [")[0] == f"{accuracy:.3f}"  # value [95 % CI]
    assert dashboard.confusion_table.rowCount() == 2
    assert sum(int(dashboard.confusion_table.item(i, j).text()) for i in range(2) for j in range(2)) >= 1
    # calibration: the ECE row and the reliability diagram show the run's figures
    ece_row = [key for key, _ in strings.TRAINING_METRIC_ROWS].index("ece")
    assert dashboard.metrics_table.item(ece_row, 0).text() == f"{run['test_metrics']['ece']:.3f}"
    predicted, observed = dashboard.reliability_curve.getData()
    assert len(predicted) >= 1 and all(0 <= v <= 1 for v in [*predicted, *observed])


@pytest.mark.slow
def test_real_training_cancelled_midway(qtbot, tmp_path, tiny_cohort, one_torch_thread):
    from tests.core.c1_support import tiny_config

    config = tiny_config(tiny_cohort, tmp_path / "runs", run_name="gui-cancel", epochs=50, batch_size=2)
    dashboard = TrainingDashboard()
    qtbot.addWidget(dashboard)
    finished = []
    dashboard.finished.connect(finished.append)
    dashboard.start(config)
    # Cancel once the second epoch is under way.
    qtbot.waitUntil(lambda: len(dashboard.epochs) >= 1 and len(dashboard.batch_x) > 0, timeout=120_000)
    with qtbot.waitSignal(dashboard.cancelled, timeout=60_000) as blocker:
        dashboard.cancel()
    qtbot.waitUntil(lambda: not dashboard.is_running(), timeout=10_000)
    assert finished == []
    run_dir = blocker.args[0]
    assert run_dir == tmp_path / "runs" / "gui-cancel"
    assert len(dashboard.epochs) < 50
    assert (run_dir / "last.safetensors").is_file()
    assert not list(run_dir.glob("*.tmp*"))  # nothing half-written
    assert dashboard.title_label.text().startswith("Cancelled")


def test_a_burst_of_progress_events_updates_the_view_once_then_shows_the_latest(qtbot, tmp_path):
    """A warm MRI cache or a fast GPU sends hundreds of events a second; the bar and
    the status line follow the first at once and the latest a moment later, not every one."""
    dashboard = TrainingDashboard()
    qtbot.addWidget(dashboard)
    shown = []
    dashboard.status.connect(shown.append)
    dashboard.handle_event(RunStarted(tmp_path, 2, 4, 20, 5, 6, "cpu", {"label_set": "ad-cn"}))
    shown.clear()
    for done in range(1, 201):
        dashboard.handle_event(DataProgress("preprocessing train", done, 200))
    assert shown == ["Preparing data: preprocessing train 1/200 scans"]
    qtbot.waitUntil(lambda: len(shown) == 2, timeout=5_000)
    assert "200/200" in shown[-1] and dashboard.progress_bar.value() == 1000
    qtbot.wait(3 * PROGRESS_REDRAW_MS)
    assert len(shown) == 2  # nothing older arrives later


def test_a_stopped_run_says_that_it_is_testing_its_best_epoch(qtbot, tmp_path):
    """After Cancel the loop stops within a batch, but a run with a finished epoch still
    evaluates it on the test set; the status line says what the wait is for."""
    dashboard = TrainingDashboard()
    qtbot.addWidget(dashboard)
    dashboard.handle_event(RunStarted(tmp_path, 5, 4, 20, 5, 6, "cpu", {"label_set": "ad-cn"}))
    dashboard.handle_event(StopSeen(batches_done=2, batches_at_request=1))
    assert "evaluating" not in dashboard.status_label.text()  # no epoch finished: nothing to test
    dashboard.handle_event(EpochEnd(1, 0.6, 0.7, {"accuracy": 0.6}, {"accuracy": 0.5}, is_best=True))
    dashboard.handle_event(StopSeen(batches_done=6, batches_at_request=5))
    assert dashboard.status_label.text() == "Stopped after 6 batches; evaluating the best epoch on the test set…"


def test_circular_features_are_pointed_out(qtbot, tmp_path):
    dashboard = TrainingDashboard()
    qtbot.addWidget(dashboard)
    paper = TrainConfig.build("demo", dataset="demo", features=["paper"]).to_dict()
    dashboard.handle_event(RunStarted(tmp_path, 2, 3, 10, 2, 2, "cpu", paper))
    assert not dashboard.circular_label.isHidden()
    assert "MMSE, CDGLOBAL, FAQ" in dashboard.circular_label.text()
    default = TrainConfig.build("demo", dataset="demo").to_dict()  # non-circular
    dashboard.handle_event(RunStarted(tmp_path, 2, 3, 10, 2, 2, "cpu", default))
    assert dashboard.circular_label.isHidden()


def test_the_run_shows_its_data_fraction_and_mask_ratio(qtbot, tmp_path):
    """The dashboard says which data fraction and mask ratio the run trains with."""
    dashboard = TrainingDashboard()
    qtbot.addWidget(dashboard)
    config = TrainConfig.build("demo", dataset="demo", fraction=0.25, mask_ratio=0.45)
    dashboard.handle_event(RunStarted(tmp_path, 3, 4, 20, 5, 6, "cpu", config.to_dict()))
    assert "data fraction 25%" in dashboard.info_label.text()
    assert "mask ratio 0.45" in dashboard.info_label.text()
    no_mask = TrainConfig.build("demo", dataset="demo", variant="smmt-no-mask")
    dashboard.handle_event(RunStarted(tmp_path, 3, 4, 20, 5, 6, "cpu", no_mask.to_dict()))
    assert "no masking" in dashboard.info_label.text()


def test_cancel_freezes_progress_and_eta_at_once(qtbot, tmp_path):
    """After Cancel the bar and the ETA stop moving, although batches still arrive."""
    release, ended = threading.Event(), threading.Event()
    late_batches_sent = threading.Event()

    def train(config, on_event, stop):
        on_event(RunStarted(tmp_path, 5, 10, 8, 2, 2, "cpu", {"label_set": "ad-cn"}))
        on_event(BatchProgress(1, 1, 10, 0.7, 0.1, 60.0))
        stop.wait(30)
        for batch in range(2, 6):  # the batch in progress (and a few more) report after Cancel
            on_event(BatchProgress(1, batch, 10, 0.6, 0.2, 30.0))
        late_batches_sent.set()
        release.wait(30)
        on_event(RunFinished(tmp_path, True, {}, 0.0, 1.0))
        ended.set()

    dashboard = TrainingDashboard(train_fn=train)
    qtbot.addWidget(dashboard)
    dashboard.start(TrainConfig.build("demo", dataset="demo"))
    qtbot.waitUntil(lambda: dashboard.progress_bar.value() > 0, timeout=10_000)
    value = dashboard.progress_bar.value()
    dashboard.cancel()
    assert dashboard.eta_label.text() == "stopping…"
    assert late_batches_sent.wait(10)
    qtbot.waitUntil(lambda: len(dashboard.batch_loss) == 5, timeout=10_000)  # they were delivered
    assert dashboard.progress_bar.value() == value and dashboard.eta_label.text() == "stopping…"
    release.set()
    qtbot.waitUntil(lambda: not dashboard.is_running(), timeout=10_000)
    assert ended.is_set()


def test_energy_axes_start_at_zero_and_reset_for_a_new_run(qtbot, tmp_path):
    """One energy point gives no negative kWh or minutes; a new run gets fresh axes."""
    dashboard = TrainingDashboard()
    qtbot.addWidget(dashboard)
    dashboard.handle_event(EnergyUpdate(1, elapsed_s=30.0, energy_kwh=5e-05, power_w=12.0, estimated=True))
    (x0, x1), (y0, y1) = dashboard.energy_plot.viewRange()
    assert x0 == 0.0 and y0 == 0.0 and y1 > 0.05  # 0.05 Wh, drawn in Wh
    assert dashboard.power_plot.viewRange()[1][0] == 0.0
    dashboard.loss_plot.setXRange(0, 40)
    dashboard._clear_curves()
    assert dashboard.loss_plot.getViewBox().autoRangeEnabled()[0]


def test_test_metrics_show_their_confidence_intervals(qtbot, tmp_path):
    dashboard = TrainingDashboard()
    qtbot.addWidget(dashboard)
    metrics = dict(TEST_METRICS, ci95={"balanced_accuracy": [0.61, 0.88], "roc_auc": [0.7, 0.93]})
    dashboard.handle_event(RunFinished(tmp_path, False, metrics, 0.0, 1.0))
    rows = [key for key, _ in strings.TRAINING_METRIC_ROWS]
    texts = {key: dashboard.metrics_table.item(i, 0).text() for i, key in enumerate(rows)}
    assert texts["balanced_accuracy"].endswith("[0.610–0.880]") and texts["roc_auc"].endswith("[0.700–0.930]")
    assert "[" not in texts["precision"]  # no interval computed for it
