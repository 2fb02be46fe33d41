"""The MRI branch must learn *where* something is, not only *what* is there.

Registered brains differ from one another by small changes at fixed places (wider ventricles,
smaller hippocampi) on top of an anatomy that every scan shares. The synthetic task mimics that:
every image is the same random "anatomy" plus noise, and a small dark patch sits either in the
left or in the right half — same size, same contrast, same total intensity, so only its position
tells the classes apart. The original encoder (patch tokens pooled by cross-attention, raw
pixels) stays near chance here, as it did on the demo cohort; the demo preset's MRI branch
(per-pixel input standardisation + a fully connected readout token over the pixels) learns it.
"""

import pytest
import torch
import torch.nn.functional as F

from smmt_core.batch import FeatureSchema, ModelInputs
from smmt_core.model import ModelConfig, build_model
from smmt_core.train.config import PRESETS

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SIZE = 32
AMPLITUDE = 0.08  # the local change, small next to the anatomy (0.2 .. 0.8) and the noise (SD 0.05)
SCHEMA = FeatureSchema(numeric=[], categorical={}, mri_shape=(1, 1, SIZE, SIZE), classes=["left", "right"])


def anatomy(seed: int = 123) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    smooth = F.avg_pool2d(torch.rand(1, 1, SIZE + 6, SIZE + 6, generator=g), 7, stride=1)
    smooth = smooth + smooth.flip(-1)  # left/right symmetric, like a brain: both places look alike
    return 0.2 + 0.6 * (smooth - smooth.min()) / (smooth.max() - smooth.min())


def make_batch(n: int, g: torch.Generator, base: torch.Tensor) -> tuple[ModelInputs, torch.Tensor]:
    y = torch.randint(0, 2, (n,), generator=g)
    images = base.expand(n, 1, SIZE, SIZE).clone() + 0.05 * torch.randn(n, 1, SIZE, SIZE, generator=g)
    gain = 1.0 + 0.1 * (2 * torch.rand(n, 1, 1, 1, generator=g) - 1)  # scanner gain: a global nuisance
    images = images * gain
    for i in range(n):
        row = int(torch.randint(10, 14, (1,), generator=g))
        col = (6 if y[i] == 0 else SIZE - 10) + int(torch.randint(-1, 2, (1,), generator=g))
        images[i, 0, row:row + 4, col:col + 4] -= AMPLITUDE  # "atrophy": the same change, one place or the other
    mri = images.clamp(0, 1).unsqueeze(1)  # (n, S=1, C=1, H, W)
    return ModelInputs(mri=mri, numeric=torch.zeros(n, 0), numeric_missing=torch.zeros(n, 0, dtype=torch.bool),
                       categorical=torch.zeros(n, 0, dtype=torch.long),
                       present=torch.tensor([[True, False, False]] * n)), y


def train_and_score(seed: int = 0, steps: int = 120, **mri_options) -> float:
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    base = anatomy()
    model = build_model(ModelConfig(d_model=32, n_heads=4, n_fusion_tokens=2, **mri_options), SCHEMA)
    train_inputs, _ = make_batch(256, g, base)
    model.encoders["mri"].set_input_statistics(train_inputs.mri)  # what the trainer does
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(steps):
        inputs, y = make_batch(16, g, base)
        loss = F.cross_entropy(model(inputs), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    test_inputs, test_y = make_batch(200, torch.Generator().manual_seed(1000 + seed), base)
    with torch.no_grad():
        return (model(test_inputs).argmax(1) == test_y).float().mean().item()


def demo_mri_options() -> dict:
    preset = PRESETS["demo"]
    return {k: preset[k] for k in ("mri_readout", "mri_readout_tokens", "mri_position", "mri_input_norm") if k in preset}


def test_demo_preset_mri_branch_learns_a_position_only_signal():
    options = demo_mri_options()
    assert options.get("mri_readout", "none") != "none" and options.get("mri_input_norm")
    accuracy = train_and_score(**options)
    assert accuracy >= 0.9, accuracy


def test_the_original_position_blind_mri_branch_does_not():
    # The reason for the change, kept as a regression guard of the test itself: if the old
    # encoder learned this task too, the test above would not show what it claims.
    accuracy = train_and_score(mri_readout="none", mri_input_norm=False)
    assert accuracy < 0.75, accuracy


def test_stored_configs_without_the_new_fields_rebuild_the_original_encoder():
    from smmt_core.train.config import TrainConfig

    legacy = TrainConfig.from_dict({"variant": "smmt", "data": "demo"}).model  # a flat config.json from 0.1
    assert (legacy.mri_readout, legacy.mri_input_norm) == ("none", False)
    old_keys = set(build_model(legacy, SCHEMA).state_dict())
    assert not any("readout" in k or "input_mean" in k for k in old_keys)
    demo = TrainConfig.build("demo").model
    new_model = build_model(demo, SCHEMA)
    assert {"encoders.mri.input_mean", "encoders.mri.input_std"} <= set(new_model.state_dict())  # saved with weights
    assert new_model.encoders["mri"].n_tokens == new_model.encoders["mri"].n_patch_tokens + 1


def test_input_statistics_standardise_each_pixel_and_cluster_ids_cover_patches_only():
    torch.manual_seed(0)
    model = build_model(ModelConfig(d_model=32, n_heads=4, n_fusion_tokens=2, mri_readout="pixels",
                                    mri_input_norm=True), SCHEMA).eval()
    inputs, _ = make_batch(64, torch.Generator().manual_seed(0), anatomy())
    encoder = model.encoders["mri"]
    encoder.set_input_statistics(inputs.mri)
    standardised = (inputs.mri - encoder.input_mean) / encoder.input_std
    assert standardised.mean(0).abs().max() < 1e-4
    output = model(inputs, return_details=True)
    assert torch.isfinite(output.logits).all()
    assert output.cluster_ids[0].shape == (64, 1, *encoder.grid)
