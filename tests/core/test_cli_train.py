"""`smmt train`, `smmt predict`, `smmt runs`: exit codes, one-line errors, JSON output."""

import json
import shutil
from pathlib import Path

import pytest

from smmt_core.cli import main
from smmt_core.train.config import PRESETS
from tests.core.c1_support import make_tiny_bids, mri_cache_at, one_thread, shared_tiny_run

TINY = dict(epochs=1, batch_size=4, d_model=32, n_heads=2, image_size=16, n_slices=2, channels=1,
            resolution_mm=8.0, n_fusion_tokens=2, test_size=0.25, val_size=0.2)


@pytest.fixture(autouse=True)
def _fast(tmp_path_factory, monkeypatch):
    monkeypatch.setitem(PRESETS, "tiny-test", TINY)
    with mri_cache_at(tmp_path_factory.getbasetemp() / "c1-cli-mri-cache"), one_thread():
        yield


def test_train_writes_a_run_and_reports_per_subject_results(tmp_path, capsys):
    cohort = make_tiny_bids(tmp_path / "bids", n_per_class=5)
    code = main(["train", "--data", str(cohort), "--preset", "tiny-test", "--out", str(tmp_path / "runs"),
                 "--name", "cli", "--no-energy", "--features", "non-circular", "--seed", "1", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    assert result["run_dir"].endswith("cli") and result["stopped_early"] is False
    assert 0.0 <= result["test_metrics"]["balanced_accuracy"] <= 1.0
    config = json.loads((tmp_path / "runs" / "cli" / "config.json").read_text())
    assert config["data"]["features"] == ["AGE", "PTEDUCAT", "PTGENDER", "APOE4"] and config["optim"]["seed"] == 1
    assert "epoch 1/1" in captured.err  # progress went to stderr, not stdout

    assert main(["runs", str(tmp_path / "runs")]) == 0
    listing = capsys.readouterr().out
    assert "cli" in listing and "finished" in listing


def _lone_subject_folder(cohort, tmp_path):
    """A copy of the first subject folder outside its BIDS dataset: a T1 and no clinical data."""
    source = sorted(cohort.glob("sub-*"))[0]
    return Path(shutil.copytree(source, tmp_path / source.name))


def test_predict_prints_json_with_the_documented_keys(tmp_path_factory, tmp_path, capsys):
    cohort, run_dir, _ = shared_tiny_run(tmp_path_factory)
    subject = _lone_subject_folder(cohort, tmp_path)
    assert main(["predict", str(subject), "--model", str(run_dir), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["subject"] == subject.name
    assert out["prediction"] in ("CN", "AD")
    assert set(out["probabilities"]) == {"CN", "AD"}
    assert sum(out["probabilities"].values()) == pytest.approx(1.0)
    assert out["modalities_used"] == ["mri"]  # a subject folder outside its dataset holds no clinical file

    assert main(["predict", str(subject), "--model", str(run_dir)]) == 0
    text = capsys.readouterr().out
    assert "P(AD)" in text and "modalities used: mri" in text and "research use only" in text


def test_predict_takes_a_subject_from_a_cohort_with_its_clinical_data(tmp_path_factory, capsys):
    cohort, run_dir, _ = shared_tiny_run(tmp_path_factory)
    assert main(["predict", "sub-002", "--cohort", str(cohort), "--model", str(run_dir), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["subject"] == "sub-002"
    assert out["modalities_used"] == ["mri", "clinical", "categorical"]
    assert main(["predict", "sub-999", "--cohort", str(cohort), "--model", str(run_dir)]) == 2
    assert "no subject 'sub-999'" in capsys.readouterr().err


def test_bad_input_gives_exit_code_2_and_one_line(tmp_path, tmp_path_factory, capsys):
    cohort, run_dir, _ = shared_tiny_run(tmp_path_factory)
    subject = _lone_subject_folder(cohort, tmp_path)  # MRI only: nothing left with --without mri
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    cases = [
        ["train", "--data", str(tmp_path / "nothing"), "--preset", "tiny-test", "--no-energy"],
        ["train", "--data", str(cohort), "--preset", "tiny-test", "--no-energy", "--out", str(blocker / "runs")],
        ["train", "--data", str(cohort), "--preset", "tiny-test", "--no-energy", "--features", "AGE,NOPE",
         "--out", str(tmp_path / "runs")],
        ["train", "--data", str(cohort), "--fraction", "1.5"],
        ["train", "--data", str(cohort), "--fold", "2"],
        ["predict", str(subject), "--model", str(tmp_path / "no-run")],
        ["predict", str(subject), "--model", str(run_dir), "--without", "mri"],
        ["predict", str(tmp_path / "ghost"), "--model", str(run_dir)],
    ]
    for argv in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and err.startswith(f"smmt {argv[0]}: error:"), err
        assert "Traceback" not in err
    assert not (tmp_path / "runs").exists()  # a bad feature name leaves no run folder behind


def test_a_diverging_training_exits_1_not_2(tmp_path_factory, tmp_path, capsys):
    """Exit 2 says "fix your input"; a loss that blows up is the run's failure, not the input's."""
    cohort, _, _ = shared_tiny_run(tmp_path_factory)
    code = main(["train", "--data", str(cohort), "--preset", "tiny-test", "--no-energy", "--lr", "1e30",
                 "--out", str(tmp_path / "runs"), "--name", "boom", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 1, err
    assert err.count("\n") == 0 and err.startswith("smmt train: error:") and "diverged" in err
    assert json.loads((tmp_path / "runs" / "boom" / "run.json").read_text())["status"] == "failed"


def test_an_os_error_in_any_command_is_one_line_and_exit_2(monkeypatch, capsys):
    import smmt_core.data.validate as validate

    def refused(path, **options):
        raise PermissionError(13, "Permission denied", "/data/locked")

    monkeypatch.setattr(validate, "validate_path", refused)
    assert main(["validate", "/data/locked"]) == 2
    assert capsys.readouterr().err.strip() == "smmt validate: error: /data/locked: Permission denied"


def test_help_explains_the_flags_and_exit_codes(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for word in ("--data", "--preset", "--features", "non-circular", "--mask-ratio", "Exit codes", "130"):
        assert word in text


def test_help_shows_the_default_presets_values_not_the_declared_defaults(capsys):
    from smmt_core.train.config import DEFAULT_PRESET, preset_value, setting_field

    assert preset_value("lr") != setting_field("lr").default  # the demo preset overrides the declaration
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"Adam learning rate (default {preset_value('lr')})" in text
    assert f"(default {setting_field('lr').default})" not in text
    assert f"(default: {DEFAULT_PRESET}," in text
