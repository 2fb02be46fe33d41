"""The attention benchmark runs end to end on tiny sizes and reports consistent records."""

import json

import pytest
import torch

from smmt_core.bench.attention import bench_attention, loglog_slope
from smmt_core.cli import main

REQUIRED = {"n", "dense_ms", "sparse_ms", "speedup", "ideal_speedup", "efficiency", "memory_ratio"}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_records_are_consistent():
    records = bench_attention([16, 48], heads=2, head_dim=8, repeats=1, warmup=1)
    assert [r.n for r in records] == [16, 48]
    for r in records:
        assert r.n_clusters == {16: 4, 48: 6}[r.n]
        assert r.dense_ms > 0 and r.sparse_ms > 0 and r.sparse_fixed_ms > 0
        assert r.speedup == pytest.approx(r.dense_ms / r.sparse_ms)
        assert r.efficiency == pytest.approx(r.speedup / r.ideal_speedup)
        assert 1.0 <= r.ideal_speedup <= r.n_clusters + 1e-9  # n²/Σc² is at most k (equal clusters)
    assert records[0].dense_slope is None and records[1].dense_slope is not None
    assert loglog_slope(records, "dense_ms") == pytest.approx(records[1].dense_slope)


def test_cli_json_has_the_documented_fields(capsys, tmp_path):
    out_file = tmp_path / "bench.json"
    code = main(["bench", "attention", "--sizes", "24", "--heads", "2", "--head-dim", "8",
                 "--repeats", "1", "--json", "--json-out", str(out_file)])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert [r["n"] for r in printed] == [24]
    assert all(REQUIRED <= set(r) for r in printed)
    assert json.loads(out_file.read_text()) == printed
    meta = json.loads(out_file.with_suffix(".meta.json").read_text())
    assert meta["settings"]["sizes"] == [24]


def test_cli_rejects_bad_input(capsys):
    assert main(["bench", "attention", "--sizes", "1,8"]) == 2
    assert "at least 2" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["bench", "attention", "--device", "cuda", "--sizes", "8"]) == 2


def test_json_out_is_written_atomically_and_an_unwritable_path_is_one_line(capsys, tmp_path, monkeypatch):
    import os

    argv = ["bench", "attention", "--sizes", "8", "--heads", "1", "--head-dim", "4", "--repeats", "1", "--json"]
    out_file = tmp_path / "bench.json"
    out_file.write_text("old")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device", str(dst))

    monkeypatch.setattr(os, "replace", broken_replace)
    assert main([*argv, "--json-out", str(out_file)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"smmt bench: error: {out_file}: No space left on device"
    monkeypatch.undo()
    assert out_file.read_text() == "old"  # the old file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench.json"]  # and no temporary file is left

    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert main([*argv, "--json-out", str(blocker / "bench.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("smmt bench: error: ") and str(blocker) in err
