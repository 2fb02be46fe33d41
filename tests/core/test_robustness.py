"""Robustness sweep on a really trained tiny run: rows, consistency with the trainer, stop, errors, CLI."""

from __future__ import annotations

import json
import shutil
import threading
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from smmt_core.errors import CheckpointError, ConfigError, DataError
from smmt_core.modalities import ALL_NAME, modality_subsets
from smmt_core.train.robustness import COLUMNS, evaluate_robustness
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
            yield train(tiny_config(data, root / "runs", run_name="tiny", epochs=1, features=["paper"]))
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
    """The sweep neither reseeds nor restores torch's global RNG: a training on another thread
    draws its masks and dropout from it. Here the progress callback stands in for that training."""
    torch.manual_seed(123)
    expected = torch.rand(40)
    torch.manual_seed(123)
    drawn = []
    a = evaluate_robustness(trained.run_dir, mask_ratios=(0.6,), repeats=2, seed=4,
                            on_progress=lambda done, total: drawn.append(torch.rand(1)))
    drawn.append(torch.rand(1))
    assert torch.equal(torch.cat(drawn), expected[:len(drawn)])  # an undisturbed stream
    b = evaluate_robustness(trained.run_dir, mask_ratios=(0.6,), repeats=2, seed=4)
    pd.testing.assert_frame_equal(a, b)  # reproducible without any global seeding


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


def test_a_dataset_without_a_feature_column_of_the_run_is_refused_naming_it(trained, tmp_path):
    data = tmp_path / "bids"
    shutil.copytree(trained.run_dir.parent.parent / "bids", data)
    table = pd.read_csv(data / "participants.tsv", sep="\t", dtype=str)
    table.drop(columns=["MMSE", "APOE4"]).to_csv(data / "participants.tsv", sep="\t", index=False)
    with pytest.raises(CheckpointError, match="checkpoint != data") as info:
        evaluate_robustness(trained.run_dir, mask_ratios=(0.0,), data=str(data))
    message = str(info.value)
    assert "lack feature column(s) MMSE, APOE4" in message and str(data) in message


def test_the_data_schema_ignores_features_the_run_never_had_values_for(trained):
    """PTEDUCAT is not in the tiny cohort: a run asked for it saw it always missing, so a dataset
    without it still fits that run; MMSE had values, so its absence is named."""
    from smmt_core.data.features import FeatureEncoder
    from smmt_core.data.subject import Subject
    from smmt_core.train.checkpoints import load_run
    from smmt_core.train.robustness import data_schema

    loaded = load_run(trained.run_dir)
    train_subjects = [Subject(f"s{i}", "CN", numeric={"AGE": 70.0 + i, "MMSE": 28.0 - i}) for i in range(4)]
    encoder = FeatureEncoder(["AGE", "PTEDUCAT", "MMSE"]).fit(train_subjects)
    run = SimpleNamespace(encoder=encoder, preprocess=loaded.preprocess, schema=loaded.schema, classes=["CN", "AD"])
    new = [Subject("n1", "AD", numeric={"AGE": 80.0})]
    schema, lacking = data_schema(run, new)
    assert lacking == ["MMSE"]
    assert schema.numeric == ["AGE", "PTEDUCAT"] and schema.mri_shape is None  # no T1 in the new data


def test_a_malformed_split_table_names_the_file(trained, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(trained.run_dir, copy)
    (copy / "split.csv").write_text("subject_id,part\nsub-001,holdout\n")
    with pytest.raises(DataError, match="unknown part 'holdout'") as info:
        evaluate_robustness(copy)
    assert "split.csv" in str(info.value)


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
