"""Robustness sweep on a really trained tiny run: rows, consistency with the trainer, stop, errors, CLI."""

from __future__ import annotations

import json
import shutil
import threading

import pandas as pd
import pytest
import torch

from smmt_core.errors import CheckpointError, ConfigError, DataError
from smmt_core.train.robustness import ALL_NAME, COLUMNS, evaluate_robustness, modality_subsets
from tests.core.c1_support import make_tiny_bids, tiny_config

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny run (BIDS cohort of 12 persons, 16x16 slices, d_model 32), trained once for the module."""
    from smmt_core.train.trainer import train

    root = tmp_path_factory.mktemp("robustness")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two threads on the shared 2-core machine mostly wait for each other
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SMMT_CACHE_DIR", str(root / "cache"))
        data = make_tiny_bids(root / "bids", n_per_class=6)
        try:
            yield train(tiny_config(data, root / "runs", run_name="tiny", epochs=1))
        finally:
            torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _own_cache(trained, monkeypatch):
    monkeypatch.setenv("SMMT_CACHE_DIR", str(trained.run_dir.parent.parent / "cache"))


def test_subsets_and_sweep_rows(trained):
    calls = []
    frame = evaluate_robustness(trained.run_dir, mask_ratios=(0.0, 0.5, 0.3), repeats=3,
                                on_progress=lambda done, total: calls.append((done, total)))
    assert list(frame.columns) == COLUMNS
    assert len(modality_subsets()) == 7
    subsets = frame[frame["mask_ratio"] == 0]
    assert len(subsets) == 7 and subsets["modalities"].iloc[0] == ALL_NAME
    assert set(subsets["modalities"]) == {"+".join(m.value for m in s) for s in modality_subsets()}
    sweep = frame[frame["modalities"] == ALL_NAME]
    assert list(sweep["mask_ratio"]) == [0.0, 0.3, 0.5]
    assert list(sweep["repeats"]) == [1, 3, 3]
    assert frame[["accuracy", "balanced_accuracy"]].apply(lambda c: c.between(0, 1)).all().all()
    # the plain evaluation (all modalities, no masking) is the trainer's own test result
    assert subsets["accuracy"].iloc[0] == pytest.approx(trained.test_metrics["accuracy"])
    assert subsets["balanced_accuracy"].iloc[0] == pytest.approx(trained.test_metrics["balanced_accuracy"])
    split = pd.read_csv(trained.run_dir / "split.csv", dtype=str)
    assert (frame["n_subjects"] == split.loc[split["part"] == "test", "subject_id"].nunique()).all()
    assert calls[0] == (0, 13) and calls[-1] == (13, 13)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert frame.attrs["classes"] == ["CN", "AD"] and 0.5 <= frame.attrs["majority_rate"] <= 1
    assert frame.attrs["stopped"] is False


def test_masking_draws_are_seeded_and_leave_the_global_rng_alone(trained):
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a = evaluate_robustness(trained.run_dir, mask_ratios=(0.6,), repeats=2, seed=4)
    assert torch.equal(torch.rand(3), expected_next)
    b = evaluate_robustness(trained.run_dir, mask_ratios=(0.6,), repeats=2, seed=4)
    pd.testing.assert_frame_equal(a, b)


def test_stop_returns_the_rows_done_so_far(trained):
    stop = threading.Event()

    def progress(done, total):
        if done == 2:
            stop.set()

    frame = evaluate_robustness(trained.run_dir, mask_ratios=(0.3,), repeats=2, on_progress=progress, stop=stop)
    assert frame.attrs["stopped"] is True and len(frame) == 2


def test_bad_inputs_are_clear_errors(trained, tmp_path):
    with pytest.raises(ConfigError, match="mask ratios"):
        evaluate_robustness(trained.run_dir, mask_ratios=(1.0,))
    with pytest.raises(CheckpointError):
        evaluate_robustness(tmp_path / "no-such-run")
    copy = tmp_path / "copy"
    shutil.copytree(trained.run_dir, copy)
    with pytest.raises(DataError, match="not there any more"):
        evaluate_robustness(copy, data=str(tmp_path / "moved-away"))
    other = make_tiny_bids(tmp_path / "other", n_per_class=2)
    (other / "participants.tsv").write_text((other / "participants.tsv").read_text().replace("sub-0", "sub-9"))
    for p in sorted(other.glob("sub-0*"), reverse=True):
        p.rename(p.with_name(p.name.replace("sub-0", "sub-9")))
    with pytest.raises(DataError, match="not in the dataset"):
        evaluate_robustness(copy, data=str(other))
    (copy / "split.csv").unlink()
    with pytest.raises(DataError, match="split.csv is missing"):
        evaluate_robustness(copy)


def test_cli_robustness_json_csv_and_plot(trained, tmp_path, capsys):
    from smmt_core import cli

    out_csv, out_png = tmp_path / "rob.csv", tmp_path / "rob.png"
    code = cli.main(["robustness", "--model", str(trained.run_dir), "--mask-ratios", "0,0.4", "--repeats", "2",
                     "--json", "--out", str(out_csv), "--plot", str(out_png)])
    out, err = capsys.readouterr()
    assert code == 0, err
    report = json.loads(out)
    assert report["classes"] == ["CN", "AD"] and len(report["rows"]) == 8
    assert {"modalities", "mask_ratio", "accuracy", "balanced_accuracy", "n_subjects"} <= set(report["rows"][0])
    assert len(pd.read_csv(out_csv)) == 8
    assert out_png.read_bytes()[:8] == PNG_MAGIC
    assert cli.main(["robustness", "--model", str(tmp_path / "missing")]) == 2
    assert "robustness: error" in capsys.readouterr().err
