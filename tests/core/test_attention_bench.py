"""The attention benchmark runs end to end on tiny sizes and reports consistent records."""

import json

import pytest
import torch

from smmt_core.cli import main
from smmt_core.model.attention_bench import bench_attention, loglog_slope

REQUIRED = {"n", "dense_ms", "sparse_ms", "speedup", "ideal_speedup", "efficiency", "memory_ratio"}


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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
