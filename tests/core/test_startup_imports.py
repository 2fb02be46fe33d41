"""What starting `smmt` imports: a test of imports, not of time (which depends on the machine's load).

Building the parser and printing `smmt --help` or `smmt COMMAND --help` must import none of the
heavy libraries (each command imports its implementation when it runs), and building a model's
shapes on the meta device, as `load_run` does before reading weights, must not pull in torch's
compiler stack (torch._dynamo: about 6 s of a fresh `smmt predict`). Each check runs in a fresh
interpreter, since this test process has long imported everything. Timings are in
benchmarks/cli_startup.py, never asserted here.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.core.cli_subprocess import smmt_env

# Not imported by the parser or any --help. numpy is allowed (pydantic does not need it, but it is cheap).
HEAVY = ("torch", "torch._dynamo", "scipy", "sklearn", "nilearn", "nibabel", "pandas", "matplotlib")


def _run(code: str, tmp_path) -> dict:
    done = subprocess.run([sys.executable, "-c", code], env=smmt_env(tmp_path / "cache"), cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


HELP_CODE = """
import contextlib, io, json, sys
from smmt_core.cli import build_parser, main
build_parser()
after_parser = sorted(m for m in {heavy!r} if m in sys.modules)
for argv in {argvs!r}:
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            main(argv)
        except SystemExit:
            pass
print(json.dumps({{"parser": after_parser, "help": sorted(m for m in {heavy!r} if m in sys.modules)}}))
"""


def test_building_the_parser_and_printing_help_imports_no_heavy_library(tmp_path):
    commands = [[], ["demo-data"], ["validate"], ["preprocess"], ["train"], ["predict"], ["runs"], ["experiment"],
                ["robustness"], ["bench"], ["bench", "attention"], ["bench", "predict"]]
    seen = _run(HELP_CODE.format(heavy=HEAVY, argvs=[[*c, "--help"] for c in commands]), tmp_path)
    assert seen == {"parser": [], "help": []}


def test_smmt_help_in_a_child_process_still_prints_every_command(tmp_path):
    done = subprocess.run([sys.executable, "-m", "smmt_core", "--help"], env=smmt_env(tmp_path / "cache"),
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0
    for command in ("demo-data", "validate", "preprocess", "train", "predict", "runs", "experiment", "robustness", "bench"):
        assert command in done.stdout


BUILD_CODE = """
import json, sys
from smmt_core.batch import FeatureSchema
from smmt_core.model.smmt import build_model
from smmt_core.train.checkpoints import meta_model_building
from smmt_core.train.config import TrainConfig

assert "torch._dynamo" not in sys.modules  # importing the model and the checkpoint code does not
config = TrainConfig.build({preset!r}, **{overrides!r})
schema = FeatureSchema(numeric=["AGE", "PTEDUCAT"], categorical={{"PTGENDER": ["Female", "Male"]}},
                       mri_shape=config.preprocess.mri_shape, classes=["CN", "AD"],
                       mri_volume=config.preprocess.volume_spec)
with meta_model_building():
    model = build_model(config.model, schema)
devices = sorted({{str(t.device) for t in model.parameters()}})
print(json.dumps({{"dynamo": "torch._dynamo" in sys.modules, "devices": devices,
                   "parameters": sum(t.numel() for t in model.state_dict().values())}}))
"""

SMALL = {"d_model": 32, "n_heads": 2, "n_fusion_tokens": 2, "image_size": 16, "n_slices": 2, "resolution_mm": 8.0}


@pytest.mark.parametrize("preset, overrides", [
    ("demo", SMALL),
    ("demo", {**SMALL, "variant": "3mt"}),
    ("demo", {}),
    ("paper", {}),
    ("volume", {}),
])
def test_building_a_model_on_the_meta_device_does_not_import_torch_dynamo(tmp_path, preset, overrides):
    seen = _run(BUILD_CODE.format(preset=preset, overrides=overrides), tmp_path)
    assert seen["devices"] == ["meta"] and seen["parameters"] > 0
    assert not seen["dynamo"]


def test_skipping_initialisers_on_meta_leaves_real_tensors_alone():
    import torch

    from smmt_core.train.checkpoints import meta_model_building

    with meta_model_building():
        meta = torch.nn.Linear(3, 2)
        real = torch.empty(4, device="cpu")
        torch.nn.init.constant_(real, 1.5)
        ramp = torch.arange(3)
    assert meta.weight.is_meta and ramp.is_meta and ramp.shape == (3,)
    assert torch.equal(real, torch.full((4,), 1.5))


POLICY_CODE = """
import contextlib, io, json, os, sys
from {module} import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main(["--help"])
    except SystemExit:
        pass
print(json.dumps({{"policy": os.environ.get("OMP_WAIT_POLICY"), "torch": "torch" in sys.modules}}))
"""


@pytest.mark.parametrize("module", ["smmt_core.cli", "smmt_gui.app"])
@pytest.mark.parametrize("given", [None, "ACTIVE"])
def test_entry_points_make_openmp_threads_sleep_unless_the_user_chose(module, given, tmp_path):
    """Spinning OpenMP threads cost the sparse attention most of its lead on a shared machine
    (docs/attention.md); the policy is read once, when torch loads, so it is set before any import of it."""
    env = smmt_env(tmp_path / "cache")
    env.pop("OMP_WAIT_POLICY", None)
    if given:
        env["OMP_WAIT_POLICY"] = given
    env["QT_QPA_PLATFORM"] = "offscreen"
    done = subprocess.run([sys.executable, "-c", POLICY_CODE.format(module=module)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"policy": given or "PASSIVE", "torch": False}
