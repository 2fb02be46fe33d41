"""The README's promises, checked on the real `smmt` process: Ctrl-C and SIGTERM stop a training
cleanly (exit 130, run.json "stopped", checkpoints kept), a killed run shows as interrupted and
resumes, bad input exits 2 with one line and leaves no folder, run folders hold no pickles;
`smmt preprocess` stopped by SIGTERM ends within a scan and leaves no worker process behind."""

from __future__ import annotations

import csv
import json
import signal
import zipfile

import pytest

from tests.core.c1_support import make_tiny_bids
from tests.core.cli_subprocess import (
    TINY_FLAGS,
    is_alive,
    run_smmt,
    run_status,
    signal_when,
    spawned_workers,
    start_smmt,
    wait_for,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return make_tiny_bids(tmp_path_factory.mktemp("process") / "bids", n_per_class=5)


@pytest.fixture
def cache(tmp_path_factory):
    return tmp_path_factory.getbasetemp() / "process-mri-cache"


def _start_training(cohort, tmp_path, cache, name="sig", epochs="10000"):
    log = tmp_path / f"{name}.log"
    process = start_smmt("train", "--data", str(cohort), "--out", str(tmp_path / "runs"), "--name", name,
                         "--epochs", epochs, *TINY_FLAGS, cache=cache, log=log)
    return process, tmp_path / "runs" / name, log


def _stop_and_check(process, run_dir, log, signum):
    process.send_signal(signum)
    code = process.wait(timeout=180)
    text = log.read_text()
    assert code == 130, text
    assert "Traceback" not in text and "terminate called" not in text, text
    summary = json.loads((run_dir / "run.json").read_text())
    assert summary["status"] == "stopped" and summary["stopped_early"] is True, text
    return summary, text


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_during_the_epochs_stops_cleanly_with_exit_130(cohort, tmp_path, cache, signum):
    process, run_dir, log = _start_training(cohort, tmp_path, cache)
    try:
        wait_for(lambda: (run_dir / "metrics.csv").is_file() and (run_dir / "best.json").is_file(),
                 "the first epoch", process, log=log)
        summary, text = _stop_and_check(process, run_dir, log, signum)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "stopping after the current batch" in text
    assert (run_dir / "best.safetensors").is_file() and (run_dir / "last.safetensors").is_file()
    assert summary["test_metrics"], "the best checkpoint is still evaluated on the test persons"


def test_ctrl_c_while_preprocessing_stops_cleanly(cohort, tmp_path, tmp_path_factory):
    fresh_cache = tmp_path / "empty-cache"  # nothing cached: the run spends its first seconds preprocessing
    process, run_dir, log = _start_training(cohort, tmp_path, fresh_cache, name="early")
    try:
        wait_for(lambda: run_status(run_dir) == "running", "the run folder", process, log=log)
        _stop_and_check(process, run_dir, log, signal.SIGINT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_killed_run_is_listed_as_interrupted(cohort, tmp_path, cache):
    process, run_dir, log = _start_training(cohort, tmp_path, cache, name="killed")
    try:
        wait_for(lambda: (run_dir / "last.json").is_file(), "the first checkpoint", process, log=log)
    finally:
        process.kill()
        process.wait()
    assert run_status(run_dir) == "running"  # SIGKILL: nobody could record anything
    listing = run_smmt("runs", str(tmp_path / "runs"), "--json", cache=cache)
    assert listing.returncode == 0, listing.stderr
    [info] = json.loads(listing.stdout)
    assert info["status"] == "interrupted"

    # Atomic writes: whatever instant the kill came at, every file that exists is whole.
    from smmt_core.train.checkpoints import load_run

    for path in run_dir.glob("*.json"):
        json.loads(path.read_text())
    done = load_run(run_dir, "last").metadata["epoch"]
    resumed = run_smmt("train", "--resume", str(run_dir), "--epochs", str(done + 1), "--json", cache=cache)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["run_dir"] == str(run_dir)
    summary = json.loads((run_dir / "run.json").read_text())
    assert summary["status"] == "finished" and summary["epochs_done"] == done + 1
    assert summary["resumed"][0]["from_epoch"] == done


def test_a_diverging_training_exits_1_with_one_line(cohort, tmp_path, cache):
    result = run_smmt("train", "--data", str(cohort), "--out", str(tmp_path / "runs"), "--name", "boom",
                      "--epochs", "3", "--lr", "1e30", *TINY_FLAGS, cache=cache)
    assert result.returncode == 1, result.stderr
    assert "diverged" in result.stderr and "Traceback" not in result.stderr
    assert json.loads((tmp_path / "runs" / "boom" / "run.json").read_text())["status"] == "failed"


def test_bad_numeric_flags_exit_2_with_one_line_and_create_nothing(cohort, tmp_path, cache):
    for flag, value in (("--lr", "nan"), ("--lr", "inf"), ("--lr", "-1"), ("--epochs", "0"), ("--fraction", "nan"),
                        ("--dropout", "1e400")):
        result = run_smmt("train", "--data", str(cohort), "--out", str(tmp_path / "runs"), flag, value,
                          *TINY_FLAGS, cache=cache)
        assert result.returncode == 2, (flag, value, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
        assert not (tmp_path / "runs").exists(), (flag, value)


def test_a_finished_run_holds_no_pickles_and_no_temp_files(cohort, tmp_path, cache):
    result = run_smmt("train", "--data", str(cohort), "--out", str(tmp_path / "runs"), "--name", "done",
                      "--epochs", "1", *TINY_FLAGS, cache=cache)
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "runs" / "done"
    names = sorted(p.name for p in run_dir.iterdir())
    assert not [n for n in names if n.startswith(".") or n.endswith(".tmp")], names  # atomic writes left nothing
    for path in run_dir.iterdir():
        head = path.read_bytes()[:2]
        assert head != b"\x80\x04" and head[:1] != b"\x80", f"{path.name} looks like a pickle"
        assert not zipfile.is_zipfile(path), f"{path.name} is a zip (torch.save)"


def test_ctrl_c_during_an_experiment_labels_the_cell_stopped_and_exits_130(cohort, tmp_path, cache):
    import pandas as pd

    out = tmp_path / "exp"
    log = tmp_path / "exp.log"
    process = start_smmt("experiment", "--data", str(cohort), "--out", str(out), "--variants", "smmt",
                         "--epochs", "10000", "--no-plots", *TINY_FLAGS, cache=cache, log=log)
    code, text = signal_when(process, lambda: any(out.glob("runs/*/metrics.csv")), "the first epoch of the first cell",
                             signal.SIGINT, log)
    assert code == 130 and "Traceback" not in text, text
    results = pd.read_csv(out / "results.csv")
    assert list(results["status"]) == ["stopped"], text
    [run_json] = out.glob("runs/*/run.json")
    assert json.loads(run_json.read_text())["status"] == "stopped"


def _mni_scans(folder, n: int) -> None:
    """n small scans already in MNI space (4 mm), each with other values (no two share a cache entry)."""
    import nibabel as nib

    from smmt_core.data.template import mni_template

    tpl = mni_template(4.0)
    for i in range(n):
        (folder / f"subj{i:02d}").mkdir(parents=True)
        nib.save(nib.Nifti1Image(tpl.data * (1000.0 + i), tpl.affine), str(folder / f"subj{i:02d}" / "T1w.nii.gz"))


def test_sigterm_stops_preprocess_and_its_two_workers_within_a_scan(tmp_path):
    """SIGTERM to `smmt preprocess --workers 2` while scans are in flight: no new
    scan starts, the workers end with the command (none is left behind), qc.csv keeps the scans
    done, exit 130. (A SIGKILLed parent: tests/core/test_intake.py::test_workers_die_with_a_killed_parent.)"""
    n = 8
    data, out = tmp_path / "data", tmp_path / "out"
    _mni_scans(data, n)
    log = tmp_path / "preprocess.log"
    process = start_smmt("preprocess", str(data), "--out", str(out), "--workers", "2",
                         "--cache", str(tmp_path / "intake-cache"), cache=tmp_path / "mri-cache", log=log)
    workers: list = []

    def first_scan_done() -> bool:
        if not (out / "qc.csv").is_file():
            return False
        workers[:] = spawned_workers(process.pid)
        return len(workers) == 2

    code, text = signal_when(process, first_scan_done, "the first scan and two workers", signal.SIGTERM, log)
    assert code == 130 and "Traceback" not in text, text
    assert "stopped with" in text, text
    assert not [w.pid for w in workers if is_alive(w)], "the workers outlived smmt preprocess"
    with open(out / "qc.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert 1 <= len(rows) < n, text
    assert all((out / r["t1_mni"]).is_file() for r in rows)
    # No scan went on after the signal unrecorded: the cache holds exactly the scans qc.csv lists.
    assert len(list((tmp_path / "intake-cache").rglob("result.json"))) == len(rows), text
