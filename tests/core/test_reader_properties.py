"""Property-based checks (Hypothesis) over every reader of user files: clinical JSON/CSV/TSV,
participants.tsv, best.json / run.json, NIfTI headers. Whatever the bytes, a reader either loads
them or raises the project's own error naming the file: never another exception, never a hang
(a generous alarm turns one into a failure) and never a memory blow-up (tracemalloc's peak)."""

from __future__ import annotations

import json
import shutil
import signal
import struct
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smmt_core.errors import SMMTError
from tests.core.c1_support import one_thread, peak_below, shared_tiny_run
from tests.core.fakes import make_bids, write_volume

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
HANG_S = 30  # far above any honest read of these tiny files: only a hang reaches it
PEAK_BYTES = 200 * 2**20  # far above any honest read of these tiny files

# JSON-ish text: real JSON values (some deeply nested, some with huge numbers), JSON with NaN,
# and junk, so that both the decoder and the code behind it are exercised.
_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                     st.text(max_size=20))
_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)), max_leaves=20)
_keys = st.sampled_from(["MMSE", "AGE", "diagnosis", "PTGENDER", "APOE4", "FAQ", "CDGLOBAL", "subject_id",
                         "clinical", "x"])
_records = st.dictionaries(_keys, _values, max_size=8)


def _hostile_text() -> st.SearchStrategy[str]:
    return st.one_of(
        _records.map(lambda r: json.dumps(r)),
        _values.map(lambda v: json.dumps(v)),
        st.integers(1, 200_000).map(lambda n: "[" * n + "]" * n),
        st.integers(1, 6000).map(lambda n: '{"MMSE": ' + "9" * n + "}"),
        st.integers(1, 400).map(lambda n: '{"a": ' * n + "1" + "}" * n),
        st.text(max_size=200),
    )


@contextmanager
def bounded():
    """Fail on a hang (SIGALRM) or on a memory peak over PEAK_BYTES for the code inside."""
    def on_alarm(signum, frame):
        raise AssertionError(f"a reader ran for more than {HANG_S} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(HANG_S)
    try:
        with peak_below(PEAK_BYTES, "a reader"):
            yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def loads_or_names(read, path: Path):
    """Call read(); the only acceptable failure is an SMMTError whose message names `path`."""
    with bounded():
        try:
            return read()
        except SMMTError as error:
            assert str(path) in str(error) or path.name in str(error), str(error)
            assert "\n" not in str(error)
            return None


@pytest.fixture(scope="module")
def workdir():
    folder = Path(tempfile.mkdtemp(prefix="smmt-properties-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


# -- clinical files ----------------------------------------------------------------------------
@SETTINGS
@given(text=_hostile_text())
def test_clinical_json_loads_or_names_the_file(workdir, text):
    from smmt_core.data.layouts.folder import load_subject_folder

    folder = workdir / "subject-json"
    if not folder.exists():
        write_volume(folder / "T1.nii.gz")
    (folder / "clinical.json").write_text(text, encoding="utf-8", errors="surrogatepass")
    loads_or_names(lambda: load_subject_folder(folder), folder / "clinical.json")


_cells = st.one_of(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12),
                   st.floats(allow_nan=True, allow_infinity=True).map(str), st.integers().map(str))


@SETTINGS
@given(header=st.lists(st.one_of(_keys, st.text(max_size=8)), min_size=1, max_size=6),
       rows=st.lists(st.lists(_cells, min_size=0, max_size=7), max_size=3),
       sep=st.sampled_from([",", "\t"]), raw=st.one_of(st.none(), st.binary(max_size=300)))
def test_clinical_csv_and_tsv_load_or_name_the_file(workdir, header, rows, sep, raw):
    from smmt_core.data.layouts.folder import load_subject_folder

    folder = workdir / ("subject-csv" if sep == "," else "subject-tsv")
    if not folder.exists():
        write_volume(folder / "T1.nii.gz")
    path = folder / ("clinical.csv" if sep == "," else "clinical.tsv")
    if raw is not None:
        path.write_bytes(raw)
    else:
        path.write_text("\n".join(sep.join(r) for r in [header, *rows]) + "\n", encoding="utf-8")
    loads_or_names(lambda: load_subject_folder(folder), path)


@SETTINGS
@given(columns=st.lists(st.one_of(_keys, st.text(max_size=8)), min_size=0, max_size=5),
       rows=st.lists(st.lists(_cells, max_size=6), max_size=4), first=st.booleans(),
       raw=st.one_of(st.none(), st.binary(max_size=300)))
def test_participants_tsv_loads_or_names_the_file(workdir, columns, rows, first, raw):
    from smmt_core.data.layouts.bids import load_bids

    root = workdir / "bids"
    if not root.exists():
        make_bids(root, [{"participant_id": "sub-01", "diagnosis": "CN"}, {"participant_id": "sub-02",
                                                                            "diagnosis": "AD"}])
    path = root / "participants.tsv"
    if raw is not None:
        path.write_bytes(raw)
    else:
        header = (["participant_id"] if first else []) + columns
        body = [["sub-01", *r] for r in rows]
        path.write_text("\n".join("\t".join(r) for r in [header, *body]) + "\n", encoding="utf-8")
    loads_or_names(lambda: load_bids(root), path)


# -- run folders -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run_template(tmp_path_factory):
    with one_thread():
        _, run_dir, _ = shared_tiny_run(tmp_path_factory)
    return run_dir


_META_PATHS = [("config", "model", "n_layers"), ("config", "model", "d_model"), ("config", "model", "variant"),
               ("config", "optim", "epochs"), ("schema", "numeric"), ("schema", "mri_shape"), ("schema", "classes"),
               ("classes",), ("encoder", "features"), ("encoder",), ("preprocess", "image_size"),
               ("format_version",), ("weights_sha256",), ("schema", "categorical")]


@SETTINGS
@given(edits=st.lists(st.tuples(st.sampled_from(_META_PATHS), _values), min_size=1, max_size=3),
       reseal=st.booleans())
def test_an_edited_best_json_loads_or_names_the_file(workdir, run_template, edits, reseal):
    """A tamperer who even recomputes the checksum still meets the bounds and shape checks."""
    from smmt_core.train import checkpoints

    run_dir = workdir / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    shutil.copytree(run_template, run_dir)
    meta = json.loads((run_dir / "best.json").read_text())
    for keys, value in edits:
        target = meta
        for key in keys[:-1]:
            if not isinstance(target.get(key), dict):
                target[key] = {}
            target = target[key]
        target[keys[-1]] = value
    if reseal:
        meta["metadata_sha256"] = checkpoints.metadata_checksum(meta)
    (run_dir / "best.json").write_text(json.dumps(meta))
    with one_thread():
        loads_or_names(lambda: checkpoints.load_run(run_dir), run_dir / "best.json")


@SETTINGS
@given(text=_hostile_text())
def test_run_json_and_best_json_text_load_or_name_the_file(workdir, run_template, text):
    from smmt_core.train.checkpoints import read_checkpoint_metadata
    from smmt_core.train.run_record import RunRecord, list_runs

    run_dir = workdir / "runs" / "r"
    if not run_dir.exists():
        shutil.copytree(run_template, run_dir)
    (run_dir / "run.json").write_text(text, encoding="utf-8", errors="surrogatepass")
    (run_dir / "best.json").write_text(text, encoding="utf-8", errors="surrogatepass")
    loads_or_names(lambda: RunRecord(run_dir).info(), run_dir / "run.json")
    loads_or_names(lambda: read_checkpoint_metadata(run_dir), run_dir / "best.json")
    with bounded():
        [info] = list_runs(run_dir.parent)  # never raises: a bad run.json is listed as unreadable
    assert info.status in ("finished", "unreadable", "running", "stopped", "failed", "interrupted")


# -- NIfTI headers -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def nifti_header(workdir):
    path = write_volume(workdir / "template.nii")
    return path.read_bytes()


# Offsets of the NIfTI-1 header fields most likely to break a reader: sizeof_hdr, dim, datatype,
# bitpix, pixdim, vox_offset, scl_slope/inter, qform/sform codes, srow, magic.
_FIELDS = [(0, "<i"), (40, "<h"), (42, "<h"), (44, "<h"), (46, "<h"), (70, "<h"), (72, "<h"), (76, "<f"),
           (80, "<f"), (108, "<f"), (112, "<f"), (116, "<f"), (252, "<h"), (254, "<h"), (280, "<f"), (344, "<i")]


@SETTINGS
@given(changes=st.lists(st.tuples(st.sampled_from(_FIELDS), st.integers(-2**31, 2**31 - 1),
                                  st.floats(allow_nan=True, allow_infinity=True, width=32)), min_size=1, max_size=4),
       cut=st.one_of(st.none(), st.integers(0, 400)))
def test_nifti_headers_load_or_name_the_file(workdir, nifti_header, changes, cut):
    from smmt_core.data.t1 import load_t1
    from smmt_core.data.validate import image_problem

    data = bytearray(nifti_header)
    for (offset, fmt), integer, real in changes:
        if fmt == "<f":
            struct.pack_into(fmt, data, offset, real)
        else:
            bits = 8 * struct.calcsize(fmt)
            struct.pack_into(fmt, data, offset, (integer + 2 ** (bits - 1)) % 2**bits - 2 ** (bits - 1))
    path = workdir / "hostile.nii"
    path.write_bytes(bytes(data if cut is None else data[:cut]))
    with bounded():
        problem, warnings = image_problem(path)  # a report, never an exception
    assert problem is None or isinstance(problem, str)
    loads_or_names(lambda: load_t1(path), path)


# NIfTI-1 datatype codes: the real ones (bool, integers, floats, complex, RGB, long double) and a
# few that do not exist.
_DATATYPES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 768, 1024, 1280, 1536, 1792, 2048, 2304, 0, 3, 9999, -1]


@SETTINGS
@given(dims=st.one_of(st.lists(st.sampled_from([256, 400, 512, 640, 1024]), min_size=3, max_size=3),
                     st.lists(st.one_of(st.integers(0, 8), st.integers(1, 2**15 - 1), st.sampled_from([640, -1, -32768])),
                              min_size=1, max_size=7)),
       datatype=st.sampled_from(_DATATYPES), payload=st.integers(0, 3000), compressed=st.booleans())
def test_nifti_headers_with_adversarial_dimensions_and_datatypes_cost_only_the_header(
        workdir, nifti_header, dims, datatype, payload, compressed):
    """Whatever shape and voxel type a header declares, a refusal costs about what the file holds,
    and a file is only read when its declared data fit the limit and are all there."""
    import gzip

    import numpy as np

    from smmt_core.data.image_files import MAX_IMAGE_BYTES
    from smmt_core.data.t1 import load_t1
    from smmt_core.data.validate import image_problem

    data = bytearray(nifti_header[:352])
    struct.pack_into("<8h", data, 40, len(dims), *dims, *[1] * (7 - len(dims)))
    struct.pack_into("<h", data, 70, datatype)
    struct.pack_into("<h", data, 72, {1: 1, 2: 8, 4: 16, 8: 32, 16: 32, 32: 64, 64: 64, 128: 24, 256: 8, 512: 16,
                                      768: 32, 1024: 64, 1280: 64, 1536: 128, 1792: 128, 2048: 256,
                                      2304: 32}.get(datatype, 8))
    struct.pack_into("<f", data, 108, 352.0)
    raw = bytes(data) + np.random.default_rng(payload).bytes(payload)
    path = workdir / ("adversarial.nii.gz" if compressed else "adversarial.nii")
    path.write_bytes(gzip.compress(raw) if compressed else raw)
    with bounded():
        problem, _ = image_problem(path)
    assert problem is None or ("\n" not in problem and problem)
    image = loads_or_names(lambda: load_t1(path), path)
    if image is not None:
        assert image.get_fdata(dtype=np.float32).nbytes <= MAX_IMAGE_BYTES
        assert int(np.prod(image.shape)) * 1 <= payload  # every voxel was in the file
