"""One writer per folder: while a process writes an experiment folder, a demo cohort folder or a
run folder, a second writer is refused (exit 2, one line naming the folder and the first writer)
instead of silently replacing the first's work. The first writer here is a real process that holds
the folder's lock until the test lets it go."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading

import pytest

from smmt_core.cli import main
from smmt_core.data import demo
from smmt_core.errors import DataError
from smmt_core.folder_lock import FolderInUse, lock_folder, lock_path
from tests.core.c1_support import make_tiny_bids, mri_cache_at, one_thread, shared_tiny_run
from tests.core.cli_subprocess import TINY_FLAGS, smmt_env

HOLDER = """
import sys
from smmt_core.folder_lock import lock_folder
lock = lock_folder(sys.argv[1])
print("locked", flush=True)
sys.stdin.read()  # holds the folder until the test closes stdin (or kills this process)
"""


class Holder:
    """A process that locks `folder` and keeps it until `release()` (or `kill()`)."""

    def __init__(self, folder, tmp_path):
        self.process = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], env=smmt_env(tmp_path / "cache"),
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()  # returns when the lock is held, or at once if the child died
        assert line.strip() == "locked", f"the holder did not start ({self.process.wait()})"

    @property
    def pid(self) -> int:
        return self.process.pid

    def release(self) -> None:
        try:
            self.process.stdin.close()
        except BrokenPipeError:
            pass
        self.process.wait(timeout=60)
        self.process.stdout.close()

    def kill(self) -> None:
        self.process.kill()
        self.release()


@pytest.fixture
def hold(tmp_path):
    holders = []

    def start(folder):
        holders.append(Holder(folder, tmp_path))
        return holders[-1]

    yield start
    for holder in holders:
        holder.release()


def _one_line_naming(err: str, folder, holder: Holder) -> None:
    [line] = [line for line in err.splitlines() if " error: " in line]
    assert "Traceback" not in err, err
    assert str(folder) in line and f"process {holder.pid}" in line and "being written" in line, err


def test_a_second_experiment_into_a_folder_being_written_is_refused(tmp_path, hold, capsys):
    cohort = make_tiny_bids(tmp_path / "bids", n_per_class=4)
    out = tmp_path / "exp"
    holder = hold(out)
    with mri_cache_at(tmp_path / "cache"), one_thread():
        code = main(["experiment", "--data", str(cohort), "--out", str(out), "--variants", "smmt", "--epochs", "1",
                     "--no-plots", "--quiet", *TINY_FLAGS])
    assert code == 2
    _one_line_naming(capsys.readouterr().err, out, holder)
    assert not out.exists()  # nothing of the refused grid was written


def test_a_second_demo_build_into_a_folder_being_written_is_refused(tmp_path, hold, capsys):
    out = tmp_path / "cohort"
    holder = hold(out)
    assert main(["demo-data", str(out), "--subjects", "1", "--seed", "1"]) == 2
    _one_line_naming(capsys.readouterr().err, out, holder)
    assert not out.exists() and not list(tmp_path.glob(".cohort.building-*"))


def test_resuming_a_run_that_another_process_writes_is_refused(tmp_path_factory, tmp_path, hold, capsys):
    _, run_dir, cache = shared_tiny_run(tmp_path_factory)
    run = tmp_path / "runs" / run_dir.name
    shutil.copytree(run_dir, run)
    before = (run / "run.json").read_text()
    holder = hold(run)
    with mri_cache_at(cache), one_thread():
        assert main(["train", "--resume", str(run), "--epochs", "3"]) == 2
    _one_line_naming(capsys.readouterr().err, run, holder)
    assert (run / "run.json").read_text() == before  # the refused resume wrote nothing


def test_the_lock_names_its_holder_and_dies_with_it(tmp_path, hold):
    folder = tmp_path / "out"
    holder = hold(folder)
    held = json.loads(lock_path(folder).read_text())
    assert held["pid"] == holder.pid and held["host"] and held["started"]
    with pytest.raises(FolderInUse, match=f"process {holder.pid}"):
        lock_folder(folder)
    holder.kill()  # SIGKILL: the kernel drops the lock, the file stays behind
    assert lock_path(folder).exists()
    with lock_folder(folder) as lock:  # a dead holder's lock file is taken over
        assert lock.held
        with pytest.raises(FolderInUse):  # one writer, even within one process
            lock_folder(folder)
    assert not lock_path(folder).exists()  # released: no trace beside the folder


def test_ensure_demo_cohort_waits_for_another_build_and_a_stop_ends_the_wait(tmp_path, hold, monkeypatch):
    monkeypatch.setenv("SMMT_DEMO_DIR", str(tmp_path / "demo"))
    holder = hold(tmp_path / "demo")
    stop = threading.Event()
    outcome = []
    worker = threading.Thread(target=lambda: outcome.append(_catch(lambda: demo.ensure_demo_cohort(stop=stop))))
    worker.start()
    stop.set()
    worker.join(timeout=60)
    holder.release()
    assert isinstance(outcome[0], demo.DemoBuildStopped)
    assert not (tmp_path / "demo").exists()


def _catch(call):
    try:
        return call()
    except Exception as error:
        return error


def test_a_cohort_that_appears_during_a_build_is_never_replaced(tmp_path):
    other = demo.make_demo_cohort(tmp_path / "other", 1, seed=5)
    out = tmp_path / "cohort"

    def progress(done, total):
        if done == 1:  # something that takes no lock writes a cohort into the folder meanwhile
            shutil.copytree(other, out)

    with pytest.raises(DataError, match="written into the folder while"):
        demo.make_demo_cohort(out, 2, seed=0, progress=progress)
    assert demo.read_demo_parameters(out)["seed"] == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cohort", "other"]


def test_a_killed_builds_staging_folder_is_removed_by_the_next_build(tmp_path):
    out = tmp_path / "cohort"
    staging = tmp_path / ".cohort.building-dead1234"
    (staging / "sub-0001").mkdir(parents=True)  # what a SIGKILLed build leaves
    demo.make_demo_cohort(out, 1, seed=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cohort"]
    assert os.listdir(out)
