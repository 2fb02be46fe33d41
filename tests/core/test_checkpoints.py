"""Checkpoints: atomic writes, round trip, and clear refusals of corrupt or mismatching files."""

import json
import os
import shutil

import pytest
import torch

from smmt_core.batch import FeatureSchema
from smmt_core.errors import CheckpointError, ConfigError
from smmt_core.train import checkpoints
from smmt_core.train.checkpoints import atomic_write_json, check_data_schema, load_run, read_json, save_checkpoint
from smmt_core.train.run_record import RunRecord, list_runs, read_run_info
from tests.core.c1_support import one_thread, shared_tiny_run


@pytest.fixture()
def run_copy(tmp_path_factory, tmp_path):
    """A private copy of the shared tiny run, free to damage."""
    with one_thread():
        _, run_dir, _ = shared_tiny_run(tmp_path_factory)
    copy = tmp_path / run_dir.name
    shutil.copytree(run_dir, copy)
    return copy


def _edit_json(path, change, reseal=True):
    """Edit a checkpoint's JSON; `reseal` recomputes its checksum, as a deliberate tamperer would, so
    that the checks behind the checksum (bounds, schema, shapes) are what the test reaches."""
    data = json.loads(path.read_text())
    change(data)
    if reseal and "metadata_sha256" in data:
        data["metadata_sha256"] = checkpoints.metadata_checksum(data)
    path.write_text(json.dumps(data))


def test_edited_metadata_are_refused_by_their_checksum(run_copy):
    """Renaming a feature (MMSE -> MOCA) by hand must not make predict run on other inputs silently."""
    def rename(d):
        d["features"] = ["MOCA" if f == "MMSE" else f for f in d["features"]]

    _edit_json(run_copy / "best.json", rename, reseal=False)
    with pytest.raises(CheckpointError, match="changed after they were written") as info:
        load_run(run_copy)
    assert str(info.value).startswith(str(run_copy / "best.json"))
    _edit_json(run_copy / "last.json", lambda d: d.pop("metadata_sha256"), reseal=False)
    with pytest.raises(CheckpointError, match="lacks metadata_sha256"):
        load_run(run_copy, which="last")


def test_update_checkpoint_metadata_keeps_the_checksum_valid(run_copy):
    checkpoints.update_checkpoint_metadata(run_copy, "best", note="added later")
    assert load_run(run_copy).metadata["note"] == "added later"


def test_a_model_larger_than_the_limit_is_refused_before_it_is_built(run_copy, monkeypatch):
    monkeypatch.setattr(checkpoints, "MAX_MODEL_PARAMETERS", 1000)
    with pytest.raises(CheckpointError, match=r"model of [\d,]+ parameters, more than .* \(1,000\)"):
        load_run(run_copy)


@pytest.mark.parametrize("change, problem", [
    (lambda d: d["config"]["model"].update(n_layers=10_000_000), "n_layers"),
    (lambda d: d["config"]["model"].update(d_model=10**30), "d_model"),
    (lambda d: d["schema"].update(numeric=[f"f{i}" for i in range(5000)]), "at most 1000"),
])
def test_hostile_sizes_in_the_metadata_are_refused_by_bounds(run_copy, change, problem):
    _edit_json(run_copy / "best.json", change)
    with pytest.raises(CheckpointError, match=problem):
        load_run(run_copy)


def test_atomic_write_keeps_the_old_file_when_the_write_fails(tmp_path, monkeypatch):
    target = tmp_path / "run.json"
    atomic_write_json(target, {"status": "finished"})

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_json(target, {"status": "half"})
    monkeypatch.undo()
    assert json.loads(target.read_text()) == {"status": "finished"}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]  # the temporary file is gone


def test_json_is_strict_nan_becomes_null(tmp_path):
    atomic_write_json(tmp_path / "m.json", {"auc": float("nan"), "path": tmp_path})
    assert json.loads((tmp_path / "m.json").read_text()) == {"auc": None, "path": str(tmp_path)}


def test_a_saved_run_loads_back_with_identical_outputs(run_copy):
    with one_thread():
        loaded = load_run(run_copy)
        again = load_run(run_copy, which="last")
    assert loaded.classes == ["CN", "AD"] and loaded.config.model.d_model == 32
    assert loaded.schema.mri_shape == (2, 1, 16, 16)
    assert not loaded.model.training
    meta = json.loads((run_copy / "best.json").read_text())
    assert loaded.metadata["epoch"] == meta["epoch"] and again.metadata["epoch"] == 2
    from safetensors.torch import load_file

    stored = load_file(run_copy / "best.safetensors")
    for name, tensor in loaded.model.state_dict().items():
        assert torch.equal(tensor, stored[name]), name


def test_weights_from_another_save_are_refused(run_copy):
    shutil.copy(run_copy / "last.safetensors", run_copy / "best.safetensors")
    best_epoch = json.loads((run_copy / "best.json").read_text())["epoch"]
    if best_epoch == 2:  # best and last are the same epoch: damage a byte instead
        blob = bytearray((run_copy / "best.safetensors").read_bytes())
        blob[-1] ^= 0xFF
        (run_copy / "best.safetensors").write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="checksum") as info:
        load_run(run_copy)
    assert "best.safetensors" in str(info.value)


def test_corrupt_weights_with_a_matching_checksum_are_reported_as_corrupt(run_copy):
    import hashlib

    garbage = b"not a safetensors file"
    (run_copy / "best.safetensors").write_bytes(garbage)
    _edit_json(run_copy / "best.json", lambda d: d.update(weights_sha256=hashlib.sha256(garbage).hexdigest()))
    with pytest.raises(CheckpointError, match="corrupt"):
        load_run(run_copy)


def test_missing_and_unreadable_files_name_the_file(run_copy, tmp_path):
    (run_copy / "best.json").write_text("{ not json")
    with pytest.raises(CheckpointError, match="best.json.*not valid JSON"):
        load_run(run_copy)
    with pytest.raises(CheckpointError, match="run folder not found"):
        load_run(tmp_path / "no_such_run")
    with pytest.raises(CheckpointError, match="unknown checkpoint"):
        load_run(run_copy, which="middle")
    (run_copy / "last.safetensors").unlink()
    with pytest.raises(CheckpointError, match="last.safetensors.*missing"):
        load_run(run_copy, which="last")


def test_unknown_variant_and_newer_format_are_refused(run_copy):
    _edit_json(run_copy / "best.json", lambda d: d["config"]["model"].update(variant="smmt-v9"))
    with pytest.raises(CheckpointError, match="smmt-v9"):
        load_run(run_copy)
    _edit_json(run_copy / "last.json", lambda d: d.update(format_version=99))
    with pytest.raises(CheckpointError, match="newer"):
        load_run(run_copy, which="last")


def test_a_schema_that_does_not_match_the_data_names_the_difference(run_copy):
    loaded = load_run(run_copy)
    other = FeatureSchema.from_dict(loaded.schema.to_dict())
    other.numeric = [n for n in other.numeric if n != "MMSE"] + ["ADAS13"]
    with pytest.raises(CheckpointError) as info:
        check_data_schema(loaded.schema, other, "some/dataset", missing_columns=["MMSE"])
    message = str(info.value)
    assert message.startswith("some/dataset: ") and "checkpoint != data" in message
    assert "lack feature column(s) MMSE" in message
    assert "numeric" in message and "MMSE" in message and "ADAS13" in message
    check_data_schema(loaded.schema, FeatureSchema.from_dict(loaded.schema.to_dict()))  # same inputs: fine


@pytest.mark.parametrize("change, problem", [
    (lambda d: d.update(schema=["MMSE"]), "schema must be a JSON object"),
    (lambda d: d.update(classes=5), "class names must be a list"),
    (lambda d: d["schema"].update(mri_shape=[3, 1, "x", 64]), "mri_shape must be null or 4 positive integers"),
    (lambda d: d["schema"].update(mri_shape=[2, 1, 16]), "mri_shape"),
    (lambda d: d["schema"].update(numeric="MMSE"), "numeric must be a list of names"),
    (lambda d: d["schema"].update(categorical=["PTGENDER"]), "categorical must map names"),
    (lambda d: d["schema"]["categorical"].update(PTGENDER=3), "categories of PTGENDER"),
    (lambda d: d["schema"].update(classes="CN,AD"), "classes must be a list of names"),
    (lambda d: [d.update(classes=["CN"]), d["schema"].update(classes=["CN"])], "model settings are invalid.*2 classes"),
])
def test_malformed_metadata_is_a_checkpoint_error_naming_the_file(run_copy, change, problem):
    _edit_json(run_copy / "best.json", change)
    with pytest.raises(CheckpointError, match=problem) as info:
        load_run(run_copy)
    assert str(info.value).startswith(str(run_copy / "best.json"))


def test_preprocessing_that_gives_another_mri_shape_than_the_schema_is_refused(run_copy):
    _edit_json(run_copy / "best.json", lambda d: d["preprocess"].update(image_size=32))
    with pytest.raises(CheckpointError, match=r"MRI input \[2, 1, 32, 32\].*\[2, 1, 16, 16\]") as info:
        load_run(run_copy)
    assert "best.json" in str(info.value)


def test_a_run_preprocessed_by_an_older_slicing_is_refused(run_copy):
    from smmt_core.data.preprocess import PREPROCESS_VERSION

    stored = json.loads((run_copy / "best.json").read_text())["preprocess"]
    assert stored["version"] == PREPROCESS_VERSION
    _edit_json(run_copy / "best.json", lambda d: d["preprocess"].pop("version"))  # runs before versions: 1
    with pytest.raises(CheckpointError, match=rf"preprocessing version 1; .* uses version {PREPROCESS_VERSION}"):
        load_run(run_copy)


def test_loading_a_run_draws_no_random_numbers(run_copy):
    """A GUI loading a model (prediction, robustness) must not disturb a training on another thread."""
    before = torch.random.get_rng_state()
    loaded = load_run(run_copy)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert not any(t.is_meta for t in loaded.model.state_dict().values())
    assert all(p.requires_grad for p in loaded.model.parameters())


def test_metadata_that_describes_a_different_model_is_refused_naming_the_tensor(run_copy):
    # the schema and encoder say 3 classes but the weights were trained for 2
    def three_classes(d):
        d["classes"] = ["CN", "MCI", "AD"]
        d["schema"]["classes"] = ["CN", "MCI", "AD"]

    _edit_json(run_copy / "best.json", three_classes)
    with pytest.raises(CheckpointError) as info:
        load_run(run_copy)
    message = str(info.value)
    assert "best.safetensors" in message and "shape (file != model)" in message
    assert "(2," in message and "(3," in message


def test_encoder_and_schema_must_agree(run_copy):
    _edit_json(run_copy / "best.json", lambda d: d["schema"].update(numeric=["AGE"]))
    with pytest.raises(CheckpointError, match="encoder does not match"):
        load_run(run_copy)


def test_save_checkpoint_records_the_weights_checksum(tmp_path):
    model = torch.nn.Linear(3, 2)
    path = save_checkpoint(tmp_path, "last", model, {"note": "x"})
    meta = read_json(tmp_path / "last.json")
    import hashlib

    assert meta["weights_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert meta["kind"] == "last" and meta["format_version"] == checkpoints.CHECKPOINT_FORMAT


def test_a_run_folder_that_cannot_be_made_is_a_config_error_naming_the_folder(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for parent in (blocker, blocker / "runs"):  # a file in the way, a folder below a file
        with pytest.raises(ConfigError, match="cannot create a run folder here") as info:
            RunRecord.create(parent, "r")
        assert str(blocker) in str(info.value)
    assert blocker.read_text() == "not a folder"


def test_run_folders_are_unique_and_listed_newest_first(tmp_path, run_copy):
    a = RunRecord.create(tmp_path / "runs", "same").run_dir
    b = RunRecord.create(tmp_path / "runs", "same").run_dir
    assert a.name == "same" and b.name == "same-2"
    info = read_run_info(run_copy)
    assert info.status == "finished" and info.has_best and info.variant == "smmt"
    runs = list_runs(run_copy.parent)
    assert [r.name for r in runs] == [info.name]  # folders without run.json are skipped
    (run_copy / "run.json").write_text("garbage")
    [unreadable] = list_runs(run_copy.parent)  # listed, with the reason, not hidden
    assert unreadable.status == "unreadable" and "not valid JSON" in unreadable.error


def test_identical_checkpoints_are_identical_bytes(tmp_path):
    """safetensors writes its metadata in hash-map order, which changes between saves: the
    metadata are rewritten in sorted order, so two identical runs give byte-identical files."""
    import hashlib

    import torch
    from safetensors import safe_open
    from safetensors.torch import load

    from smmt_core.train.checkpoints import safetensors_bytes

    tensors = {"b.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3), "a.bias": torch.ones(3)}
    metadata = {"format": "pt", "smmt_checkpoint": "2", "zeta": "z", "alpha": "a"}
    blobs = {safetensors_bytes(tensors, metadata) for _ in range(20)}
    assert len(blobs) == 1, [hashlib.sha256(b).hexdigest()[:8] for b in blobs]
    [blob] = blobs
    assert int.from_bytes(blob[:8], "little") % 8 == 0  # the tensors start 8-byte aligned
    loaded = load(blob)
    assert sorted(loaded) == sorted(tensors) and all(torch.equal(loaded[k], tensors[k]) for k in tensors)
    path = tmp_path / "x.safetensors"
    path.write_bytes(blob)
    with safe_open(str(path), "pt") as handle:
        assert handle.metadata() == metadata
    from smmt_core.train.checkpoints import save_checkpoint

    # the same tensors and metadata (which the weights file carries too) in ten run folders
    saved = {save_checkpoint(tmp_path / f"run{i}", "best", tensors, {"n": 1.5}).read_bytes() for i in range(10)}
    assert len(saved) == 1


# -- publishing a checkpoint while a reader loads it ------------------------------------------------
def _publish_states(run_dir, tmp_path):
    """The bytes of best.safetensors / best.json in the order a training publishes a new best:
    [old pair, new weights beside the old JSON, new pair], the new one saved by `save_checkpoint`."""
    old = load_run(run_dir)
    meta = {k: v for k, v in old.metadata.items()
            if k not in ("format_version", "kind", "weights_file", "weights_sha256", "metadata_sha256")}
    new_state = {k: v + 0.5 if v.is_floating_point() else v for k, v in old.model.state_dict().items()}
    save_checkpoint(tmp_path / "next", "best", new_state, dict(meta, epoch=meta["epoch"] + 1))
    old_pair = ((run_dir / "best.safetensors").read_bytes(), (run_dir / "best.json").read_bytes())
    new_pair = ((tmp_path / "next" / "best.safetensors").read_bytes(), (tmp_path / "next" / "best.json").read_bytes())
    return [old_pair, (new_pair[0], old_pair[1]), new_pair], {meta["epoch"]: old.model.state_dict(),
                                                               meta["epoch"] + 1: new_state}


def _put(run_dir, state):
    (run_dir / "best.safetensors").write_bytes(state[0])
    (run_dir / "best.json").write_bytes(state[1])


def test_a_reader_during_a_new_best_checkpoint_gets_the_old_or_the_new_pair(run_copy, tmp_path, monkeypatch):
    """Weights and JSON are two files: a reader can read the JSON of one save and the weights of the
    next (or the new weights before the new JSON is written). While the run trains, every such mix
    loads as one whole checkpoint, old or new, never an error: the weights carry their metadata."""
    from smmt_core.train.run_record import process_stamp

    states, weights_of = _publish_states(run_copy, tmp_path)
    embedded = checkpoints.embedded_metadata(states[2][0], "w")
    assert json.dumps(embedded) == json.dumps(json.loads(states[2][1]))  # the same metadata, in the same order
    RunRecord(run_copy).update_summary(status="running", process=process_stamp())  # this process trains it
    real_read = checkpoints.read_regular_bytes
    for json_state in range(3):
        for weights_state in range(json_state, 3):  # the writer moves on between the reader's two reads
            _put(run_copy, states[json_state])
            moved = []

            def read_weights(path, *args, **kwargs):
                if not moved:
                    moved.append(True)
                    _put(run_copy, states[weights_state])
                return real_read(path, *args, **kwargs)

            monkeypatch.setattr(checkpoints, "read_regular_bytes", read_weights)
            loaded = load_run(run_copy)
            epoch = loaded.metadata["epoch"]
            assert epoch in weights_of, (json_state, weights_state)
            for name, tensor in loaded.model.state_dict().items():  # the weights of that very save
                assert torch.equal(tensor, weights_of[epoch][name]), (json_state, weights_state, name)

    # The training publishes the new pair and ends between the reader's two reads: read again, new pair.
    _put(run_copy, states[0])

    def read_weights_after_the_end(path, *args, **kwargs):
        if (run_copy / "best.json").read_bytes() != states[2][1]:
            _put(run_copy, states[2])
            RunRecord(run_copy).update_summary(status="finished")
        return real_read(path, *args, **kwargs)

    monkeypatch.setattr(checkpoints, "read_regular_bytes", read_weights_after_the_end)
    assert load_run(run_copy).metadata["epoch"] == max(weights_of)
    monkeypatch.setattr(checkpoints, "read_regular_bytes", real_read)

    # The same mix in a run nobody trains (a save cut short, files copied from elsewhere): refused.
    _put(run_copy, states[1])
    RunRecord(run_copy).update_summary(status="stopped")
    with pytest.raises(CheckpointError, match="weights do not belong to best.json") as info:
        load_run(run_copy)
    assert str(info.value).startswith(str(run_copy / "best.safetensors")) and "\n" not in str(info.value)


def test_weights_without_their_metadata_in_the_header_still_load(run_copy):
    """Run folders written before the weights carried their metadata load as before; a mismatch
    there is refused even while the run trains (nothing tells which save the weights came from)."""
    import hashlib

    from smmt_core.train.run_record import process_stamp

    stored = load_run(run_copy).model.state_dict()
    blob = checkpoints.safetensors_bytes({k: v.contiguous() for k, v in stored.items()},
                                         {"format": "pt", "smmt_checkpoint": "2"})
    assert checkpoints.embedded_metadata(blob, "w") is None
    (run_copy / "best.safetensors").write_bytes(blob)
    _edit_json(run_copy / "best.json", lambda d: d.update(weights_sha256=hashlib.sha256(blob).hexdigest()))
    assert load_run(run_copy).metadata["epoch"] >= 0
    RunRecord(run_copy).update_summary(status="running", process=process_stamp())
    (run_copy / "best.safetensors").write_bytes(blob + b" ")
    with pytest.raises(CheckpointError, match="weights do not belong to best.json"):
        load_run(run_copy)
