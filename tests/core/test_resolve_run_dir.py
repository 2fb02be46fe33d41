"""A folder of runs (what `smmt train --out` gets) resolves to its newest finished run."""

from __future__ import annotations

import pytest

from smmt_core.errors import CheckpointError
from smmt_core.train.run_record import RunRecord, list_runs, newest_finished, resolve_run_dir


def make_run(parent, name, status, created, best=True):
    record = RunRecord.create(parent, name)
    record.write_summary({"status": status, "created": created, "run_name": name})
    if best:
        (record.run_dir / "best.json").write_text("{}")
        (record.run_dir / "best.safetensors").write_bytes(b"")
    return record.run_dir


def test_the_newest_finished_run_is_chosen_never_a_stopped_one(tmp_path):
    make_run(tmp_path, "old-finished", "finished", "2026-01-01T00:00:00+00:00")
    newer = make_run(tmp_path, "new-finished", "finished", "2026-01-02T00:00:00+00:00")
    make_run(tmp_path, "newest-stopped", "stopped", "2026-01-03T00:00:00+00:00")
    make_run(tmp_path, "no-weights", "finished", "2026-01-04T00:00:00+00:00", best=False)
    assert resolve_run_dir(tmp_path) == newer
    assert newest_finished(list_runs(tmp_path)).run_dir == newer


def test_a_run_folder_is_itself(tmp_path):
    run = make_run(tmp_path, "one", "stopped", "2026-01-01T00:00:00+00:00")
    assert resolve_run_dir(run) == run


def test_no_obvious_choice_lists_the_runs(tmp_path):
    make_run(tmp_path, "a", "stopped", "2026-01-01T00:00:00+00:00")
    make_run(tmp_path, "b", "failed", "2026-01-02T00:00:00+00:00")
    with pytest.raises(CheckpointError, match=r"none of them finished; choose one: b \(failed\); a \(stopped\)"):
        resolve_run_dir(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="not a run folder"):
        resolve_run_dir(tmp_path / "empty")
