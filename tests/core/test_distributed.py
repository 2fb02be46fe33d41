"""One model on two processes (DDP, gloo on the CPU) against the same training on one process.

Tolerance: with the same global batch and no random draws in training (variant 3mt, dropout 0),
2 processes differ from 1 only in the order floating-point gradients are summed, so per-epoch
losses must agree within 1e-4 and the test metrics within 1e-4 (in practice they agree to ~1e-7).
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from smmt_core.cli.config_flags import _flag
from smmt_core.train.config import TrainConfig, setting_field
from smmt_core.train.distributed import DistContext
from tests.core.c1_support import make_tiny_bids

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOLERANCE = 1e-4


def test_the_sampler_deals_each_global_batch_and_weights_it_like_one_process():
    batch = [7, 3, 9, 1, 4]
    shards = [DistContext(rank, 2, rank).shard(batch) for rank in (0, 1)]
    assert shards == [([7, 9, 4], 2 / 5), ([3, 1], 2 / 5)]
    assert sorted(i for part, _ in shards for i in part) == sorted(batch)  # every scan once, on one rank
    assert DistContext(2, 3, 2).shard([5, 6]) == ([5], 0.0)  # no scan left for rank 2: weight 0


def test_two_processes_reach_the_metrics_of_one_with_the_same_global_batch(tmp_path, monkeypatch, capsys):
    from smmt_core import cli
    from smmt_core.train.checkpoints import load_run
    from smmt_core.train.trainer import train

    monkeypatch.setenv("SMMT_CACHE_DIR", str(tmp_path / "cache"))
    data = make_tiny_bids(tmp_path / "bids", n_per_class=6)
    tiny = dict(dataset=str(data), out=str(tmp_path / "runs"), batch_size=4, d_model=32, n_heads=2, n_fusion_tokens=2,
                image_size=16, n_slices=2, resolution_mm=8.0, test_size=0.25, val_size=0.2, device="cpu", epochs=3,
                variant="3mt", dropout=0.0)
    one = train(TrainConfig.build("demo", run_name="one", measure_energy=False, **tiny))

    flags = ["--name", "two", "--features", "non-circular", "--no-energy", "--quiet", "--json", "--ddp", "2"]
    for key, value in tiny.items():  # each setting by its declared flag
        flags += [_flag(key, setting_field(key)), str(value)]
    assert cli.main(["train", *flags]) == 0
    two = json.loads(capsys.readouterr().out)

    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["one", "two"]  # rank 1 wrote nothing
    a = pd.read_csv(tmp_path / "runs" / "one" / "metrics.csv")
    b = pd.read_csv(tmp_path / "runs" / "two" / "metrics.csv")
    for column in ("train_loss", "val_loss", "train_accuracy", "val_balanced_accuracy"):
        assert b[column].tolist() == pytest.approx(a[column].tolist(), abs=TOLERANCE), column
    for key in ("accuracy", "balanced_accuracy", "roc_auc", "loss"):
        assert two["test_metrics"][key] == pytest.approx(one.test_metrics[key], abs=TOLERANCE), key
    assert two["best_epoch"] == one.best_epoch

    run = json.loads((tmp_path / "runs" / "two" / "run.json").read_text())
    assert run["status"] == "finished" and "summed over 2 processes" in run["energy"]["note"]
    loaded = load_run(tmp_path / "runs" / "two")  # one process loads the DDP checkpoint as any other
    reference = load_run(tmp_path / "runs" / "one")
    assert loaded.model.state_dict().keys() == reference.model.state_dict().keys()
