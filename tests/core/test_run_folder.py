"""The run folder's declarations: file names, and run.json / best.json read and written as they were."""

from __future__ import annotations

import json
import typing
from dataclasses import fields

import pytest

from smmt_core.train import run_folder
from smmt_core.train.run_folder import SUMMARY_FIELD_TYPES, CheckpointMeta, RunSummary

# run.json of a finished run as SMMT Studio 0.2 wrote it (values shortened), and a key it does not know.
WRITTEN = {"run_name": "smmt-f1-s0", "created": "2026-01-01T00:00:00+00:00", "config": {"model": {"variant": "smmt"}},
           "synthetic": True, "classes": ["CN", "AD"], "circularity_warning": None, "status": "finished",
           "amp": None, "best_epoch": None, "test_metrics": {"accuracy": 0.5}, "from_a_newer_version": [1, 2]}


def test_a_summary_reads_and_writes_back_the_same_object_in_the_same_order():
    summary = RunSummary.from_dict(WRITTEN)
    assert json.dumps(summary.to_dict()) == json.dumps(WRITTEN)
    assert summary.classes == ["CN", "AD"] and summary.extra == {"from_a_newer_version": [1, 2]}
    assert summary.get("amp", "absent") is None  # null is kept as null ...
    assert summary.get("energy", "absent") == "absent" and summary.energy is None  # ... and absent as absent


def test_keys_keep_the_place_they_were_first_set_like_a_dict():
    summary = RunSummary(run_name="a", status="running")
    summary.update(status="failed", error="boom")
    summary.discard("error")
    summary.error = "again"
    assert list(summary.to_dict()) == ["run_name", "status", "error"]


def test_a_misspelt_key_is_an_error_not_a_new_key():
    with pytest.raises(AttributeError, match="statsu"):
        RunSummary().statsu = "finished"


def test_copy_is_independent_of_its_original():
    meta = CheckpointMeta(run_name="r", classes=["CN", "AD"])
    epoch = meta.copy()
    epoch.epoch = 3
    assert "epoch" not in meta and epoch.to_dict() == {"run_name": "r", "classes": ["CN", "AD"], "epoch": 3}


def test_the_checked_run_json_types_match_the_declarations():
    declared = {f.name: f.type for f in fields(RunSummary)}
    for key, expected in SUMMARY_FIELD_TYPES.items():
        assert declared[key].split(" | ")[0] == expected.__name__, key


def test_required_checkpoint_keys_are_declared():
    assert set(CheckpointMeta.REQUIRED) <= {f.name for f in fields(CheckpointMeta)}


def test_file_names():
    assert (run_folder.BEST_WEIGHTS, run_folder.BEST_METADATA) == ("best.safetensors", "best.json")
    assert (run_folder.LAST_WEIGHTS, run_folder.LAST_METADATA) == ("last.safetensors", "last.json")
    assert run_folder.RUN_FILE == "run.json" and run_folder.SPLIT_FILE == "split.csv"
    assert typing.get_args(typing.Literal["best", "last"]) == run_folder.CHECKPOINT_KINDS
