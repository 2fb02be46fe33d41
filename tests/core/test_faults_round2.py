"""More faults (after test_faults.py): headers that declare huge images, input checked before the model is loaded,
tables too large to be a cohort, settings that cannot fit in memory, a full disk, float64 weights.

Every refusal is one line naming the file or flag, and costs little: memory is measured with
tracemalloc (deterministic), never with the clock."""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from smmt_core.cli import main
from smmt_core.errors import DataError
from tests.core.c1_support import one_thread, peak_below


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


def lying_nifti(path: Path, shape, dtype, payload: bytes = b"") -> Path:
    """A NIfTI-1 file whose header declares `shape` x `dtype` but which holds only `payload`."""
    header = nib.Nifti1Header()
    header.set_data_dtype(dtype)
    header.set_data_shape(shape)
    header.set_qform(np.eye(4), code=1)
    header["vox_offset"] = 352
    raw = header.binaryblock + b"\0\0\0\0" + payload
    path.write_bytes(gzip.compress(raw) if path.name.endswith(".gz") else raw)
    return path


# -- headers that declare more than a T1 can be --------------------------------------------------
@pytest.mark.parametrize("name, shape, dtype, problem", [
    ("f64.nii.gz", (640, 640, 640), np.float64, "declares 2,000 MiB of image data"),
    ("f32.nii.gz", (640, 640, 640), np.float32, "declares 1,000 MiB of image data"),
    ("c128.nii.gz", (640, 640, 640), np.complex128, "voxels of type complex128"),
    ("c64.nii", (64, 64, 64), np.complex64, "voxels of type complex64"),
    ("f64.nii", (640, 640, 640), np.float64, "declares 2,000 MiB of image data"),
    ("short.nii.gz", (300, 300, 300), np.float32, "too few to expand to that"),
])
def test_a_header_declaring_a_huge_image_is_refused_from_the_header(tmp_path, name, shape, dtype, problem):
    from smmt_core.data.t1 import load_t1
    from smmt_core.data.validate import image_problem

    path = lying_nifti(tmp_path / name, shape, dtype)
    assert path.stat().st_size < 1000
    with peak_below(32 * 2**20):
        with pytest.raises(DataError, match=problem) as info:
            load_t1(path)
        found, _ = image_problem(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)
    assert problem in found


def test_a_compressed_stream_shorter_than_its_header_declares_is_refused_in_bounded_memory(tmp_path):
    """Incompressible bytes pass the compression-ratio bound; counting the stream refuses them."""
    from smmt_core.data.image_files import check_image_data
    from smmt_core.data.t1 import load_t1

    payload = np.random.default_rng(0).bytes(300_000)
    path = lying_nifti(tmp_path / "short.nii.gz", (400, 400, 400), np.float32, payload)
    with peak_below(48 * 2**20):
        with pytest.raises(DataError, match="the compressed stream holds only 300,352") as info:
            load_t1(path)
        assert "compressed stream holds only" in check_image_data(path)[0]
    assert "\n" not in str(info.value)


def test_smmt_validate_refuses_a_lying_header_with_one_line_and_exit_2(tmp_path, capsys):
    path = lying_nifti(tmp_path / "T1.nii.gz", (640, 640, 640), np.float64)
    with peak_below(64 * 2**20):
        assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and "MiB of image data" in err


def test_an_honest_compressed_image_above_the_stream_threshold_still_loads(tmp_path, monkeypatch):
    from smmt_core.data import image_files
    from smmt_core.data.t1 import load_t1
    from tests.core.fakes import write_volume

    monkeypatch.setattr(image_files, "STREAM_CHECK_ABOVE", 100)  # an 8^3 float32 volume is 2048 bytes
    path = write_volume(tmp_path / "T1.nii.gz")
    assert load_t1(path).shape == (8, 8, 8)
    cut = tmp_path / "cut.nii.gz"
    cut.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(DataError, match="cut.nii.gz: cannot read the compressed image data|compressed stream"):
        load_t1(cut)


# -- smmt predict looks at its input before it loads a model -----------------------------------
@pytest.mark.parametrize("make, problem", [
    (lambda folder: folder / "missing.nii.gz", "not found"),
    (lambda folder: lying_nifti(folder / "header-only.nii.gz", (640, 640, 640), np.float64), "MiB of image data"),
    (lambda folder: lying_nifti(folder / "header-only.nii", (64, 64, 64), np.float32), "truncated file"),
])
def test_smmt_predict_refuses_a_bad_input_before_loading_the_model(tmp_path, monkeypatch, capsys, make, problem):
    from smmt_core.predict import Predictor
    from smmt_core.train import run_record

    loaded = []
    monkeypatch.setattr(run_record, "resolve_run_dir", lambda path: Path(path))
    monkeypatch.setattr(Predictor, "load", classmethod(lambda cls, *a, **k: loaded.append(a) or pytest.fail("loaded")))
    path = make(tmp_path)
    assert main(["predict", str(path), "--model", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and problem in err
    assert loaded == []


# -- a participants.tsv too long to be a cohort -------------------------------------------------
def _long_participants(root: Path, rows: int) -> Path:
    from tests.core.fakes import make_bids

    make_bids(root, [{"participant_id": f"sub-{i:02d}", "diagnosis": "CN" if i % 2 else "AD"} for i in range(4)])
    lines = ["participant_id\tdiagnosis", *(f"sub-{i:07d}\tCN" for i in range(rows))]
    path = root / "participants.tsv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_table_longer_than_the_limit_is_refused_naming_it(tmp_path):
    from smmt_core import fileio

    path = _long_participants(tmp_path / "bids", fileio.MAX_TABLE_ROWS + 1)
    with peak_below(256 * 2**20):
        with pytest.raises(DataError, match=r"participants.tsv: table has more than 100,000 rows") as info:
            fileio.read_table(path, "table", sep="\t")
    assert "\n" not in str(info.value)
    assert len(fileio.read_table(path, "table", sep="\t", max_rows=fileio.MAX_TABLE_ROWS + 1)) == fileio.MAX_TABLE_ROWS + 1


@pytest.mark.parametrize("command", ["validate", "train"])
def test_smmt_validate_and_train_refuse_a_participants_tsv_too_long_to_be_a_cohort(tmp_path, monkeypatch, capsys,
                                                                                   command):
    from smmt_core import fileio

    monkeypatch.setattr(fileio, "MAX_TABLE_ROWS", 20)
    path = _long_participants(tmp_path / "bids", 21)
    args = [command] + (["--data", str(path.parent), "--preset", "demo", "--epochs", "1", "--out", str(tmp_path / "runs")]
                        if command == "train" else [str(path.parent)])
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and "more than 20 rows" in err


# -- settings that cannot fit in memory --------------------------------------------------------
def test_the_memory_check_names_the_flags_and_what_would_fit():
    from smmt_core.errors import ConfigError
    from smmt_core.train.config import TrainConfig
    from smmt_core.train.memory import check_training_memory, training_memory

    big = TrainConfig.build("demo", dataset="demo", image_size=1024, n_slices=64)
    assert training_memory(big, 400)["data"] == 400 * 64 * 1024 * 1024 * 4
    with pytest.raises(ConfigError, match=r"--image-size 1024 --slices 64 --batch-size 8 would need up to .* GiB "
                                          r".*400 subjects.*; 11.0 GiB is available: --image-size \d+ with "
                                          r"--slices 64 would fit") as info:
        check_training_memory(big, 400, available=11 * 2**30)
    assert "\n" not in str(info.value)
    suggested = int(str(info.value).split("--image-size ")[-1].split()[0])
    check_training_memory(big.model_copy(update={"preprocess": big.preprocess.model_copy(
        update={"image_size": suggested})}), 400, available=11 * 2**30)
    check_training_memory(TrainConfig.build("demo", dataset="demo"), 400, available=2**30)  # the demo fits in 1 GiB


def test_smmt_train_refuses_settings_that_cannot_fit_before_preprocessing(tmp_path, monkeypatch, capsys):
    from smmt_core.data import preprocess
    from smmt_core.train import memory
    from tests.core.fakes import make_bids

    root = make_bids(tmp_path / "bids", [{"participant_id": f"sub-{i:02d}", "diagnosis": "CN" if i % 2 else "AD",
                                          "MMSE": str(20 + i)} for i in range(8)])
    monkeypatch.setattr(memory, "available_memory_bytes", lambda: 8 * 2**30)
    monkeypatch.setattr(preprocess, "read_t1", lambda *a, **k: pytest.fail("preprocessing started"))
    code = main(["train", "--data", str(root), "--preset", "demo", "--epochs", "1", "--image-size", "1024",
                 "--slices", "64", "--out", str(tmp_path / "runs"), "--no-energy", "-q"])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "--image-size 1024 --slices 64" in err and "would fit" in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


# -- a full disk -------------------------------------------------------------------------------
def test_smmt_demo_data_on_a_full_disk_names_the_folder(tmp_path, monkeypatch, capsys):
    import errno

    from smmt_core.data import demo

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")  # as a write into an open file: no path

    monkeypatch.setattr(demo, "_write_nifti", no_space)
    out = tmp_path / "demo"
    assert main(["demo-data", str(out), "--subjects", "4"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"smmt demo-data: error: {out}: No space left on device"
    assert not out.exists() and list(tmp_path.iterdir()) == []  # the staging folder went too


# -- weights re-saved in another dtype ---------------------------------------------------------
@pytest.fixture
def run_copy(tmp_path_factory, tmp_path):
    import shutil

    from tests.core.c1_support import shared_tiny_run

    cohort, run_dir, _ = shared_tiny_run(tmp_path_factory)
    copy = tmp_path / run_dir.name
    shutil.copytree(run_dir, copy)
    return cohort, copy


def _resave_weights(run_dir: Path, convert) -> None:
    """Re-save best.safetensors with `convert` applied to every tensor, and reseal best.json."""
    import hashlib
    import json

    from safetensors import safe_open
    from safetensors.torch import load, save

    from smmt_core.train import checkpoints

    path = run_dir / "best.safetensors"
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
    blob = save({k: convert(v) for k, v in load(path.read_bytes()).items()}, metadata=metadata)
    path.write_bytes(blob)
    meta = json.loads((run_dir / "best.json").read_text())
    meta["weights_sha256"] = hashlib.sha256(blob).hexdigest()
    meta["metadata_sha256"] = checkpoints.metadata_checksum(meta)
    (run_dir / "best.json").write_text(json.dumps(meta))


def test_float64_weights_with_updated_checksums_load_as_the_models_float32_and_predict(run_copy):
    import torch

    from smmt_core.predict import Predictor

    cohort, run_dir = run_copy
    before = Predictor.load(run_dir).predict(sorted(cohort.glob("sub-*"))[0])
    _resave_weights(run_dir, lambda t: t.double() if t.is_floating_point() else t)
    predictor = Predictor.load(run_dir)
    assert {p.dtype for p in predictor.run.model.parameters()} == {torch.float32}
    after = predictor.predict(sorted(cohort.glob("sub-*"))[0])
    assert after.probabilities == pytest.approx(before.probabilities, abs=1e-6)


def test_weights_stored_as_integers_are_refused_naming_the_file_and_tensor(run_copy, capsys):
    import torch

    from smmt_core.errors import CheckpointError
    from smmt_core.train import checkpoints

    _, run_dir = run_copy
    _resave_weights(run_dir, lambda t: t.to(torch.int32) if t.is_floating_point() else t)
    with pytest.raises(CheckpointError, match=r"best.safetensors: tensor \S+ is stored as int32, the model "
                                              r"needs float32") as info:
        checkpoints.load_run(run_dir)
    assert "\n" not in str(info.value)
