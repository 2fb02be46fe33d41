"""Faults and hostile files: pathological JSON, tampered run folders, a full disk,
resuming, NaN in clinical data, one-class datasets, unwritable outputs."""

from __future__ import annotations

import errno
import json
import shutil
import signal
import threading

import pandas as pd
import pytest

from smmt_core import fileio
from smmt_core.cli import main
from smmt_core.errors import CheckpointError, DataError
from smmt_core.train import checkpoints
from smmt_core.train import events as ev
from smmt_core.train.run_record import list_runs
from smmt_core.train.trainer import train
from tests.core.c1_support import make_tiny_bids, mri_cache_at, one_thread, shared_tiny_run, tiny_config
from tests.core.fakes import make_subject_folder

DEEP = "[" * 100_000 + "]" * 100_000
HUGE_INT = '{"MMSE": ' + "9" * 5000 + "}"


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


@pytest.fixture
def run_copy(tmp_path_factory, tmp_path):
    _, run_dir, _ = shared_tiny_run(tmp_path_factory)
    copy = tmp_path / "runs" / run_dir.name
    shutil.copytree(run_dir, copy)
    return copy


# -- one guarded reader ------------------------------------------------------------------------
@pytest.mark.parametrize("text, problem", [
    (DEEP, "nested more than"),
    ('{"a": ' * 200 + "1" + "}" * 200, "nested more than 64 levels"),
    (HUGE_INT, "integer with 5000 digits"),
    ("\xff\xfe{", "not valid JSON|not UTF-8"),
    ("[1, 2]", "expected a JSON object"),
    ("", "not valid JSON"),
])
def test_pathological_json_is_the_projects_error_naming_the_file(tmp_path, text, problem):
    path = tmp_path / "x.json"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    for error_type in (DataError, CheckpointError):
        with pytest.raises(error_type, match=problem) as info:
            fileio.read_json(path, "file", error=error_type)
        assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def test_an_oversized_json_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "big.json"
    path.write_text('{"a": "' + "x" * 2000 + '"}')
    with pytest.raises(DataError, match="too large"):
        fileio.read_json(path, "file", max_bytes=1000)


@pytest.mark.parametrize("text", [DEEP, HUGE_INT])
def test_smmt_validate_and_predict_give_one_line_for_a_hostile_clinical_json(tmp_path, capsys, text):
    folder = make_subject_folder(tmp_path, "s", clinical={"MMSE": 28})
    (folder / "clinical.json").write_text(text)
    assert main(["validate", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(folder / "clinical.json") in err


@pytest.mark.parametrize("text", [DEEP, HUGE_INT])
def test_a_hostile_best_json_gives_one_line_naming_it(tmp_path_factory, run_copy, capsys, text):
    cohort, _, _ = shared_tiny_run(tmp_path_factory)
    (run_copy / "best.json").write_text(text)
    subject = sorted(cohort.glob("sub-*"))[0]
    assert main(["predict", str(subject), "--model", str(run_copy)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(run_copy / "best.json") in err


@pytest.mark.parametrize("text", [DEEP, HUGE_INT])
def test_a_hostile_run_json_is_listed_as_unreadable_and_hides_no_other_run(run_copy, capsys, text):
    shutil.copytree(run_copy, run_copy.parent / "good")
    (run_copy / "run.json").write_text(text)
    runs = {r.run_dir.name: r for r in list_runs(run_copy.parent)}
    assert runs["good"].status == "finished"
    assert runs[run_copy.name].status == "unreadable" and "run summary" in runs[run_copy.name].error
    assert main(["runs", str(run_copy.parent)]) == 0
    listing = capsys.readouterr().out
    assert "finished" in listing and "unreadable" in listing  # the copy keeps its run name, "tiny"


def test_a_hostile_dataset_description_is_a_problem_not_a_crash(tmp_path):
    from smmt_core.data.loaders import load_cohort

    cohort = make_tiny_bids(tmp_path / "bids", n_per_class=2)
    (cohort / "dataset_description.json").write_text(DEEP)
    loaded = load_cohort(str(cohort))
    assert any("dataset_description.json" in p and "nested" in p for p in loaded.problems)


# -- clinical values ---------------------------------------------------------------------------
def test_nan_and_infinity_in_clinical_json_are_reported_naming_the_field(tmp_path):
    from smmt_core.data.loaders import load_subject

    folder = make_subject_folder(tmp_path, "s", clinical={"MMSE": 28})
    (folder / "clinical.json").write_text('{"MMSE": NaN, "AGE": Infinity, "FAQ": 3}')
    subject = load_subject(folder)
    notes = " | ".join(subject.notes)
    assert "MMSE: nan is not a usable value" in notes and "AGE: inf is not a usable value" in notes
    assert subject.numeric["FAQ"] == 3


def test_predict_says_when_the_clinical_data_supply_none_of_the_models_features(tmp_path_factory, tmp_path):
    from smmt_core.predict import Predictor

    cohort, run_dir, cache = shared_tiny_run(tmp_path_factory)
    folder = tmp_path / "sub-x"
    shutil.copytree(sorted(cohort.glob("sub-*"))[0], folder)
    (folder / "clinical.json").write_text(json.dumps({"ADAS13": 20}))  # not one of the run's features
    with mri_cache_at(cache):
        result = Predictor.load(run_dir).predict(folder)
    assert any("supply none of the model's clinical features" in w and "ADAS13" in w for w in result.warnings)


# -- tampering -----------------------------------------------------------------------------------
def test_a_renamed_feature_in_best_json_is_refused_by_predict(run_copy, tmp_path, capsys):
    meta = json.loads((run_copy / "best.json").read_text())
    meta["features"] = ["MOCA" if f == "MMSE" else f for f in meta["features"]]
    meta["encoder"]["features"] = meta["features"]
    (run_copy / "best.json").write_text(json.dumps(meta))
    subject = make_subject_folder(tmp_path, "s", clinical={"MMSE": 28})  # predict reads its input first
    assert main(["predict", str(subject), "--model", str(run_copy)]) == 2
    assert "changed after they were written" in capsys.readouterr().err


# -- disk full ---------------------------------------------------------------------------------
def test_a_full_disk_never_records_a_best_epoch_that_is_not_on_disk(tmp_path, monkeypatch):
    cohort = make_tiny_bids(tmp_path / "bids", n_per_class=4)
    real = checkpoints.atomic_write_bytes
    writes = {"best.safetensors": 0}

    def full_disk(path, data):
        if path.name == "best.safetensors":
            writes["best.safetensors"] += 1

            def no_space(tmp):
                tmp.write_bytes(data[: len(data) // 2])
                raise OSError(errno.ENOSPC, "No space left on device")

            return fileio.atomic_write(path, no_space)
        return real(path, data)

    monkeypatch.setattr(checkpoints, "atomic_write_bytes", full_disk)
    with mri_cache_at(tmp_path / "cache"), pytest.raises(OSError) as info:
        train(tiny_config(cohort, tmp_path / "runs", run_name="full", epochs=2))
    assert info.value.filename.endswith("best.safetensors")  # the real file, not a temporary one
    run_dir = tmp_path / "runs" / "full"
    summary = json.loads((run_dir / "run.json").read_text())
    assert summary["status"] == "failed" and summary["best_epoch"] is None
    assert "best.safetensors: No space left on device" in summary["error"]
    assert not (run_dir / "best.safetensors").exists() and not list(run_dir.glob(".*"))
    assert not (run_dir / "metrics.csv").exists()  # no epoch claimed as best before its checkpoint existed


def test_cli_names_the_file_when_the_disk_is_full(tmp_path, monkeypatch, capsys):
    def no_space(tmp):
        raise OSError(errno.ENOSPC, "No space left on device")

    target = tmp_path / "out.csv"
    with pytest.raises(OSError) as info:
        fileio.atomic_write(target, no_space)
    from smmt_core.cli import os_error_line

    assert os_error_line(info.value) == f"{target}: No space left on device"


# -- stop, interrupt, resume -------------------------------------------------------------------
def test_a_keyboard_interrupt_inside_training_is_recorded_as_stopped(tmp_path):
    cohort = make_tiny_bids(tmp_path / "bids", n_per_class=4)

    def interrupt(event):
        if isinstance(event, ev.EpochEnd):
            raise KeyboardInterrupt

    with mri_cache_at(tmp_path / "cache"), pytest.raises(KeyboardInterrupt):
        train(tiny_config(cohort, tmp_path / "runs", run_name="ki", epochs=3), on_event=interrupt)
    assert json.loads((tmp_path / "runs" / "ki" / "run.json").read_text())["status"] == "stopped"


def test_a_resumed_run_matches_an_uninterrupted_one(tmp_path):
    cohort = make_tiny_bids(tmp_path / "bids", n_per_class=5)
    stop = threading.Event()

    def stop_after_two(event):
        if isinstance(event, ev.EpochEnd) and event.epoch == 2:
            stop.set()

    with mri_cache_at(tmp_path / "cache"):
        straight = train(tiny_config(cohort, tmp_path / "runs", run_name="straight", epochs=3))
        part = train(tiny_config(cohort, tmp_path / "runs", run_name="part", epochs=3), on_event=stop_after_two,
                     stop=stop)
        assert part.stopped_early and json.loads((part.run_dir / "run.json").read_text())["status"] == "stopped"
        # as if killed between the epoch-2 checkpoints and metrics.csv: its row is rebuilt from last.json
        metrics = pd.read_csv(part.run_dir / "metrics.csv")
        metrics[metrics["epoch"] < 2].to_csv(part.run_dir / "metrics.csv", index=False)
        resumed = train(tiny_config(cohort, tmp_path / "runs", run_name="part", epochs=3), resume=part.run_dir)
    assert resumed.run_dir == part.run_dir and not resumed.stopped_early
    a = pd.read_csv(straight.run_dir / "metrics.csv")[["epoch", "train_loss", "val_loss"]]
    b = pd.read_csv(resumed.run_dir / "metrics.csv")[["epoch", "train_loss", "val_loss"]]
    pd.testing.assert_frame_equal(a, b)  # optimiser and RNG state restored: the same numbers on the CPU
    assert resumed.test_metrics["balanced_accuracy"] == straight.test_metrics["balanced_accuracy"]
    summary = json.loads((resumed.run_dir / "run.json").read_text())
    assert summary["status"] == "finished" and summary["resumed"][0]["from_epoch"] == 2
    header = (resumed.run_dir / "last.state.safetensors").read_bytes()[:1]
    assert header != b"\x80"  # safetensors, not a pickle


def test_a_run_stopped_before_its_first_checkpoint_resumes_from_scratch(tmp_path_factory, tmp_path, capsys, caplog):
    """A run stopped in its first epoch (no linear path, so no epoch 0 either)
    has no checkpoint; `--resume` trains it again from the start, in its folder, with its settings."""
    cohort, _, cache = shared_tiny_run(tmp_path_factory)
    stop = threading.Event()

    def stop_in_the_first_epoch(event):
        if isinstance(event, ev.BatchProgress):
            stop.set()

    with mri_cache_at(cache):
        part = train(tiny_config(cohort, tmp_path / "runs", run_name="part", epochs=1, linear_path="none"),
                     on_event=stop_in_the_first_epoch, stop=stop)
        assert part.stopped_early and not (part.run_dir / "last.json").exists()
        (part.run_dir / "best.safetensors").write_bytes(b"left by a save cut short")
        assert main(["train", "--resume", str(part.run_dir), "--json", "-q"]) == 0
        out = capsys.readouterr()
        assert json.loads(out.out)["run_dir"] == str(part.run_dir)
        assert "stopped before its first checkpoint: training it again from the start" in caplog.text
        summary = json.loads((part.run_dir / "run.json").read_text())
        assert summary["status"] == "finished" and summary["epochs_done"] == 1 and summary["best_epoch"] == 1
        assert summary["resumed"][-1]["from_scratch"] is True and summary["resumed"][-1]["from_epoch"] == 0
        assert pd.read_csv(part.run_dir / "metrics.csv")["epoch"].tolist() == [1]
        assert checkpoints.load_run(part.run_dir).metadata["epoch"] == 1

        # A run that recorded epochs but lost its last checkpoint is not silently trained again.
        (part.run_dir / "last.json").unlink()
        assert main(["train", "--resume", str(part.run_dir), "--epochs", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("last checkpoint is missing, though metrics.csv records epochs it trained; it cannot be "
                        "resumed: train it again as a new run") and "\n" not in err


def test_cli_resume_refuses_other_settings_and_a_finished_run(run_copy, capsys):
    assert main(["train", "--resume", str(run_copy), "--lr", "0.1"]) == 2
    assert "only --epochs" in capsys.readouterr().err
    before = (run_copy / "run.json").read_text()
    assert main(["train", "--resume", str(run_copy)]) == 2
    assert "already trained 2 of 2 epochs" in capsys.readouterr().err
    assert (run_copy / "run.json").read_text() == before  # a refused resume changes nothing
    assert main(["train", "--epochs", "2"]) == 2
    assert "--data is required" in capsys.readouterr().err


# -- validate, robustness ----------------------------------------------------------------------
def test_validate_says_a_one_class_dataset_is_for_prediction_only(tmp_path, capsys):
    from tests.core.fakes import make_bids

    rows = [{"participant_id": f"sub-{i:02d}", "diagnosis": "AD", "MMSE": "20"} for i in range(1, 4)]
    root = make_bids(tmp_path / "ds", rows)
    assert main(["validate", str(root), "--no-images"]) == 0
    assert "usable: for prediction yes; for training no" in capsys.readouterr().out


def test_robustness_checks_its_output_paths_before_the_passes(run_copy, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for flag in ("--plot", "--out"):
        target = blocker / "x.png"
        assert main(["robustness", "--model", str(run_copy), flag, str(target)]) == 2
        err = capsys.readouterr().err
        assert str(target) in err and "evaluation passes" not in err and ".check" not in err


def test_smmt_train_summarises_the_datasets_problems_on_stderr(tmp_path, capsys):
    cohort = make_tiny_bids(tmp_path / "bids", n_per_class=5)
    t1 = next((cohort / "sub-002" / "anat").glob("*.nii.gz"))
    t1.write_bytes(t1.read_bytes()[:300])  # unreadable: the scan is used without MRI
    with mri_cache_at(tmp_path / "cache"):
        code = main(["train", "--data", str(cohort), "--out", str(tmp_path / "runs"), "--epochs", "1",
                     "--d-model", "32", "--n-heads", "2", "--n-fusion-tokens", "2", "--image-size", "16",
                     "--slices", "2", "--channels", "1", "--resolution", "8", "--test-size", "0.25",
                     "--val-size", "0.2", "--batch-size", "4", "--no-energy", "--features", "non-circular"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "the dataset has 1 problem(s) (all listed in run.json)" in err
    assert f"{t1}: not a readable image" in err and "has no MRI" in err


def test_an_interrupt_during_an_atomic_write_waits_until_the_file_is_in_place(tmp_path):
    """Ctrl-C (or the app's abort, delivered the same way) in the middle of a write: the write
    completes, no temporary file is left, and the interrupt is raised afterwards."""
    import _thread

    target = tmp_path / "run.json"

    def interrupted_write(tmp):
        tmp.write_text("half")
        _thread.interrupt_main()  # SIGINT's handler runs at the next bytecode boundaries, here
        for _ in range(1000):
            pass
        tmp.write_text('{"status": "stopped"}')

    with pytest.raises(KeyboardInterrupt):
        fileio.atomic_write(target, interrupted_write)
    assert target.read_text() == '{"status": "stopped"}'
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # an ignored SIGINT stays ignored
    try:
        fileio.write_all_or_nothing([(tmp_path / "a.txt", interrupted_write)])
    finally:
        signal.signal(signal.SIGINT, previous)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "run.json"]


# -- SIGTERM -------------------------------------------------------------------------------------
SIGTERM_WRITER = """
import os, signal, sys
from pathlib import Path
from smmt_core import fileio

def write(tmp):
    tmp.write_text("half")
    os.kill(os.getpid(), signal.SIGTERM)  # default action: the process ends, once the write is done
    for _ in range(1000):
        pass
    tmp.write_text("whole")

folder = Path(sys.argv[1])
fileio.write_all_or_nothing([(folder / "rep.json", write), (folder / "rep.csv", write)])
print("survived", flush=True)
"""


def test_sigterm_during_an_atomic_write_waits_until_the_files_are_in_place(tmp_path):
    """`kill` (SIGTERM, default action) in the middle of a report's writes: the files are completed
    and renamed first, no temporary `.part` file is left, and then the process ends as asked."""
    import subprocess
    import sys

    from tests.core.cli_subprocess import smmt_env

    done = subprocess.run([sys.executable, "-c", SIGTERM_WRITER, str(tmp_path)], env=smmt_env(tmp_path / "cache"),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGTERM and "survived" not in done.stdout, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep.csv", "rep.json"]
    assert (tmp_path / "rep.json").read_text() == "whole"


def test_sigterm_during_demo_data_removes_its_staging_folder(tmp_path):
    from tests.core.cli_subprocess import signal_when, start_smmt

    out = tmp_path / "cohort"
    log = tmp_path / "demo.log"
    process = start_smmt("demo-data", str(out), "--subjects", "400", cache=tmp_path / "cache", log=log)
    code, text = signal_when(process, lambda: any(tmp_path.glob(".cohort.building-*/sub-*")), "the first subject",
                             signal.SIGTERM, log, timeout=120)
    assert code == 130 and "Traceback" not in text, text
    assert not out.exists() and not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")], text


# -- run.json with fields of the wrong type --------------------------------------------------------
def _set_field(data, dotted, value):
    *parents, last = dotted.split(".")
    for key in parents:
        data = data[key]
    data[last] = value


@pytest.mark.parametrize("field, value, reason", [
    ("classes", 5, "field 'classes' is a number, expected a list"),
    ("classes", [1, 2], "field 'classes' holds a number"),
    ("test_metrics", "x", "field 'test_metrics' is a string, expected an object"),
    ("test_metrics.balanced_accuracy", "x", "test metric 'balanced_accuracy' is a string, expected a number"),
    ("test_metrics.roc_auc", [0.5], "test metric 'roc_auc' is a list"),
    ("energy", 3, "field 'energy' is a number"),
])
def test_a_run_json_field_of_the_wrong_type_makes_the_run_unreadable_not_a_traceback(
        tmp_path_factory, run_copy, capsys, field, value, reason):
    cohort, _, cache = shared_tiny_run(tmp_path_factory)
    good = run_copy.parent / "good"
    shutil.copytree(run_copy, good)
    summary = json.loads((run_copy / "run.json").read_text())
    _set_field(summary, field, value)
    summary["created"] = "2100-01-01T00:00:00+00:00"  # the newest run: the one predict would choose
    (run_copy / "run.json").write_text(json.dumps(summary))

    assert main(["runs", str(run_copy.parent)]) == 0
    captured = capsys.readouterr()
    [line] = [line for line in captured.out.splitlines() if "unreadable" in line]
    assert reason in line and "Traceback" not in captured.err
    with mri_cache_at(cache):
        assert main(["predict", str(sorted(cohort.glob("sub-*"))[0]), "--model", str(run_copy.parent), "--json"]) == 0
    assert f"newest finished run in {run_copy.parent}: {good}" in capsys.readouterr().err  # the bad run is skipped
    shutil.rmtree(good)
    with mri_cache_at(cache):
        assert main(["predict", str(sorted(cohort.glob("sub-*"))[0]), "--model", str(run_copy.parent)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(run_copy.parent) in err


def test_a_model_whose_output_is_not_finite_gives_an_error_naming_the_run_never_a_class(
        tmp_path_factory, run_copy, capsys):
    import torch
    from safetensors.torch import load

    cohort, _, cache = shared_tiny_run(tmp_path_factory)
    tensors = load((run_copy / "best.safetensors").read_bytes())
    nan = {k: torch.full_like(t, float("nan")) if t.is_floating_point() else t for k, t in tensors.items()}
    meta = json.loads((run_copy / "best.json").read_text())
    checkpoints.save_checkpoint(run_copy, "best", nan, meta)  # consistent checksums: only the weights are bad
    with mri_cache_at(cache):
        assert main(["predict", str(sorted(cohort.glob("sub-*"))[0]), "--model", str(run_copy)]) == 2
    captured = capsys.readouterr()
    assert not captured.out.strip()  # no probabilities, no class
    [line] = captured.err.strip().splitlines()
    assert str(run_copy) in line and "not a number" in line


# -- something other than a file in a file's place ------------------------------------------------
@pytest.mark.parametrize("name", ["best.safetensors", "best.json"])
def test_a_fifo_in_place_of_a_checkpoint_file_is_refused_not_waited_on(tmp_path_factory, run_copy, capsys, name):
    import os

    cohort, _, cache = shared_tiny_run(tmp_path_factory)
    (run_copy / name).unlink()
    os.mkfifo(run_copy / name)  # reading it would wait forever for a writer
    outcome = []
    with mri_cache_at(cache):
        worker = threading.Thread(target=lambda: outcome.append(
            main(["predict", str(sorted(cohort.glob("sub-*"))[0]), "--model", str(run_copy)])), daemon=True)
        worker.start()
        worker.join(timeout=120)
    if worker.is_alive():  # it hangs: let it go by giving it a writer, then fail
        with open(run_copy / name, "wb"):
            pass
        worker.join(timeout=60)
        pytest.fail(f"smmt predict waited on the FIFO {name}")
    assert outcome == [2]
    [line] = capsys.readouterr().err.strip().splitlines()
    assert str(run_copy / name) in line and "not a regular file" in line


# -- symbolic links in a folder of runs ------------------------------------------------------------
def test_symlink_loops_in_a_folder_of_runs_list_each_run_once(run_copy, tmp_path, capsys):
    import os

    runs = run_copy.parent
    elsewhere = tmp_path / "elsewhere" / "other"
    shutil.copytree(run_copy, elsewhere)
    os.symlink(".", runs / "loop")  # runs/loop/tiny is runs/tiny
    os.symlink("../runs", runs / "up")
    os.symlink("self", runs / "self")  # a link to itself: ELOOP
    os.symlink("tiny", runs / "alias")
    os.symlink(elsewhere, runs / "linked")  # a run that is only reachable through a link
    found = sorted(str(r.run_dir.relative_to(runs)) for r in list_runs(runs))
    assert found == ["linked", "tiny"]
    assert main(["runs", str(runs)]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert len(listing) == 3 and all("finished" in line for line in listing[1:])  # a header and two runs
