"""The MNI template is kept on disk between processes, so a fresh `smmt predict` does not import
nilearn.datasets (with scikit-learn and scipy.stats) nor resample the 1 mm template again."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from smmt_core.data import template
from tests.core.cli_subprocess import smmt_env


@pytest.fixture
def fresh_templates(tmp_path, monkeypatch):
    monkeypatch.setenv("SMMT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(template, "_TEMPLATES", {})
    return tmp_path / "cache"


def test_the_template_is_cached_on_disk_and_read_back_identical(fresh_templates, monkeypatch):
    first = template.mni_template(8.0)
    stored = template.template_cache_file(8.0)
    assert stored.is_file() and stored.is_relative_to(fresh_templates)
    monkeypatch.setattr(template, "_TEMPLATES", {})
    monkeypatch.setattr(template, "_template_from_nilearn", lambda res: pytest.fail("nilearn asked again"))
    again = template.mni_template(8.0)
    assert np.array_equal(again.data, first.data) and np.array_equal(again.affine, first.affine)
    assert np.array_equal(again.mask, first.mask) and again.norm == first.norm


@pytest.mark.parametrize("damage", [b"not an npz at all", "wrong-values"])
def test_a_damaged_cache_file_is_ignored_and_written_again(fresh_templates, monkeypatch, damage):
    truth = template.mni_template(8.0)
    stored = template.template_cache_file(8.0)
    if damage == "wrong-values":  # a readable file that cannot be the template (values far above 1)
        np.savez(stored, data=(truth.data * 50).astype(np.float32), affine=truth.affine)
    else:
        stored.write_bytes(damage)
    monkeypatch.setattr(template, "_TEMPLATES", {})
    again = template.mni_template(8.0)
    assert np.array_equal(again.data, truth.data)
    with np.load(stored) as rewritten:
        assert np.array_equal(rewritten["data"], truth.data)


def test_a_fresh_process_loads_the_cached_template_without_nilearn(fresh_templates, tmp_path):
    template.mni_template(8.0)  # fills the cache under $SMMT_CACHE_DIR
    code = ("import json, sys; from smmt_core.data.template import mni_template; t = mni_template(8.0); "
            "print(json.dumps({'shape': list(t.data.shape), 'heavy': sorted(m for m in ('nilearn', 'sklearn', "
            "'scipy') if m in sys.modules)}))")
    done = subprocess.run([sys.executable, "-c", code], env=smmt_env(fresh_templates), cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"shape": list(template.mni_template(8.0).data.shape), "heavy": []}
