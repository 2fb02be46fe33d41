"""The SMMT model: variants, missing modalities, masking, training signal, GUI details."""

import itertools
import math

import pytest
import torch

from smmt_core.batch import MODALITY_INDEX, FeatureSchema, ModelInputs
from smmt_core.data.subject import ALL_MODALITIES, Modality
from smmt_core.errors import ConfigError, SMMTError
from smmt_core.model import ModelConfig, ModelOutput, build_model
from smmt_core.train.config import TrainConfig
from smmt_core.variants import VARIANT_NAMES as VARIANTS

SCHEMA = FeatureSchema(
    numeric=["MMSE", "CDGLOBAL", "FAQ", "AGE"],
    categorical={"PTGENDER": ["Female", "Male"], "APOE4": ["0", "1", "2"]},
    mri_shape=(2, 1, 32, 32),
    classes=["CN", "AD"],
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def small_config(**changes) -> ModelConfig:
    base = dict(d_model=32, n_heads=4, n_layers=1, n_fusion_tokens=2, dropout=0.0)
    return ModelConfig(**{**base, **changes})


def make_inputs(batch=6, seed=0, schema=SCHEMA) -> ModelInputs:
    g = torch.Generator().manual_seed(seed)
    n_num, n_cat = len(schema.numeric), len(schema.categorical)
    return ModelInputs(
        mri=torch.rand(batch, *schema.mri_shape, generator=g),
        numeric=torch.randn(batch, n_num, generator=g),
        numeric_missing=torch.rand(batch, n_num, generator=g) < 0.2,
        categorical=torch.randint(1, 3, (batch, n_cat), generator=g),
        present=torch.ones(batch, 3, dtype=torch.bool),
    )


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_builds_and_backpropagates(variant):
    torch.manual_seed(0)
    model = build_model(small_config(variant=variant), SCHEMA)
    logits = model(make_inputs())
    assert logits.shape == (6, 2) and torch.isfinite(logits).all()
    logits.sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads[:5])
    sparse = variant in ("smmt", "smmt-no-mask")
    assert all(layer.attention.sparse == sparse for layers in model.intra.values() for layer in layers)


def test_the_train_config_holds_the_model_config():
    cfg = TrainConfig.build("demo", variant="3mt", d_model=64, n_heads=8, n_layers=2, n_fusion_tokens=3,
                      cascade_order=["clinical", "mri", "categorical"], attention_mode="balanced",
                      cluster_size=7, mask_ratio=0.4, mask_mode="modality")
    mc = cfg.model
    assert (mc.variant, mc.d_model, mc.n_heads, mc.n_layers, mc.n_fusion_tokens) == ("3mt", 64, 8, 2, 3)
    assert mc.cascade_order == ("clinical", "mri", "categorical")
    assert (mc.attention_mode, mc.cluster_size, mc.mask_ratio, mc.mask_mode) == ("balanced", 7, 0.4, "modality")
    assert not mc.sparse and not mc.masking
    assert ModelConfig.from_dict(mc.to_dict()) == mc


@pytest.mark.parametrize("bad", [dict(variant="transformer"), dict(d_model=30, n_heads=4),
                                 dict(cascade_order=("mri", "mri")), dict(cascade_order=("pet",)),
                                 dict(mask_ratio=1.0), dict(mask_mode="token"), dict(attention_mode="fast")])
def test_invalid_model_settings_raise_config_error(bad):
    with pytest.raises(ConfigError):
        small_config(**bad)


def test_wrong_mri_shape_is_refused():
    model = build_model(small_config(), SCHEMA)
    inputs = make_inputs()
    inputs.mri = torch.rand(6, 3, 1, 32, 32)
    with pytest.raises(SMMTError, match="does not match"):
        model(inputs)
    with pytest.raises(ConfigError, match="multiple of 16"):
        build_model(small_config(), FeatureSchema(numeric=["AGE"], mri_shape=(1, 1, 40, 40)))


@pytest.mark.parametrize("subset", [s for r in range(4) for s in itertools.combinations(ALL_MODALITIES, r)])
def test_any_subset_of_modalities_gives_finite_logits(subset):
    torch.manual_seed(1)
    model = build_model(small_config(), SCHEMA).eval()
    inputs = make_inputs()
    inputs = inputs.without(*[m for m in ALL_MODALITIES if m not in subset])
    logits = model(inputs)
    assert torch.isfinite(logits).all()
    if not subset:  # nothing to attend to: every sample gets the same (fusion-token-only) logits
        assert torch.allclose(logits, logits[:1].expand_as(logits))


def test_absent_modality_content_is_ignored_and_nan_missing_values_do_not_leak():
    torch.manual_seed(2)
    model = build_model(small_config(), SCHEMA).eval()
    inputs = make_inputs()
    inputs.present[0, MODALITY_INDEX[Modality.MRI]] = False
    reference = model(inputs)
    inputs.mri[0] = 1000.0  # garbage where the modality is absent
    inputs.numeric[inputs.numeric_missing] = math.nan  # NaN where values are flagged missing
    changed = model(inputs)
    assert torch.isfinite(changed).all()
    assert torch.allclose(reference, changed, atol=1e-6)


def test_mixed_presence_in_one_batch_matches_samples_run_alone():
    torch.manual_seed(3)
    model = build_model(small_config(), SCHEMA).eval()
    inputs = make_inputs(batch=4)
    inputs.present[1, 0] = False
    inputs.present[2, 1:] = False
    together = model(inputs)
    for i in range(4):
        alone = ModelInputs(*(t[i:i + 1] for t in (inputs.mri, inputs.numeric, inputs.numeric_missing,
                                                     inputs.categorical, inputs.present)))
        assert torch.allclose(model(alone), together[i:i + 1], atol=1e-5)


def test_masking_only_in_training_unless_forced():
    torch.manual_seed(4)
    model = build_model(small_config(variant="smmt", mask_ratio=0.5), SCHEMA)
    inputs = make_inputs()
    model.eval()
    assert torch.equal(model(inputs), model(inputs))
    assert not torch.allclose(model(inputs, force_mask_ratio=0.5), model(inputs))
    model.train()  # dropout is 0 here, so any randomness comes from the masking
    assert not torch.allclose(model(inputs), model(inputs))
    no_mask = build_model(small_config(variant="smmt-no-mask"), SCHEMA).train()
    assert torch.equal(no_mask(inputs), no_mask(inputs))


@pytest.mark.parametrize("mode", ["dimension", "modality"])
def test_forced_masks_from_a_generator_are_reproducible_and_leave_the_global_rng_alone(mode):
    torch.manual_seed(8)
    model = build_model(small_config(variant="smmt", mask_ratio=0.5, mask_mode=mode), SCHEMA).eval()
    inputs = make_inputs(batch=8)
    before = torch.random.get_rng_state()
    a = model(inputs, force_mask_ratio=0.5, generator=torch.Generator().manual_seed(1))
    b = model(inputs, force_mask_ratio=0.5, generator=torch.Generator().manual_seed(1))
    c = model(inputs, force_mask_ratio=0.5, generator=torch.Generator().manual_seed(2))
    assert torch.equal(torch.random.get_rng_state(), before)  # nothing drawn from the global RNG
    assert torch.equal(a, b) and not torch.allclose(a, c)
    assert not torch.allclose(a, model(inputs))  # the masks did apply
    # Without a generator the masks come from the global RNG, as before.
    torch.manual_seed(5)
    d = model(inputs, force_mask_ratio=0.5)
    assert not torch.equal(torch.random.get_rng_state(), before)
    torch.manual_seed(5)
    assert torch.equal(model(inputs, force_mask_ratio=0.5), d)
    # Training-mode masking takes the generator too (dropout is 0 in this config).
    model.train()
    assert torch.equal(model(inputs, generator=torch.Generator().manual_seed(3)),
                       model(inputs, generator=torch.Generator().manual_seed(3)))


def test_training_reduces_the_loss():
    """A tiny learnable task: the label is the sign of the first numeric score."""
    torch.manual_seed(5)
    inputs = make_inputs(batch=8, seed=5)
    inputs.numeric_missing[:] = False
    labels = (inputs.numeric[:, 0] > 0).long()
    inputs.mri = inputs.mri * 0.1 + labels.view(-1, 1, 1, 1, 1) * 0.5  # MRI carries the signal too
    model = build_model(small_config(variant="smmt", mask_ratio=0.3), SCHEMA)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(12):
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(inputs), labels)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert sum(losses[-3:]) / 3 < 0.5 * sum(losses[:3]) / 3


def test_details_cluster_ids_and_contributions():
    torch.manual_seed(6)
    model = build_model(small_config(variant="smmt", n_layers=2), SCHEMA).eval()
    inputs = make_inputs(batch=3)
    inputs.present[2, MODALITY_INDEX[Modality.CATEGORICAL]] = False
    out = model(inputs, return_details=True)
    assert isinstance(out, ModelOutput)
    assert len(out.cluster_ids) == 2  # one per intra-modal MRI layer
    for ids in out.cluster_ids:
        assert ids.shape == (3, 2, 2, 2)  # (B, slices, 32/16, 32/16)
        assert ids.min() >= 0 and ids.max() < math.ceil(math.log2(8))
    contributions = out.contributions
    assert contributions.shape == (3, 3)
    assert torch.isnan(contributions[2, MODALITY_INDEX[Modality.CATEGORICAL]])
    assert torch.isfinite(contributions[:2]).all()
    # By definition: predicted-class logit minus that logit without the modality.
    predicted = out.logits.argmax(1)
    without_mri = model(inputs.without(Modality.MRI))
    expected = out.logits[0, predicted[0]] - without_mri[0, predicted[0]]
    assert torch.isclose(contributions[0, 0], expected, atol=1e-5)
    assert torch.equal(model.contributions(inputs).isnan(), contributions.isnan())
    dense = build_model(small_config(variant="3mt"), SCHEMA).eval()
    assert dense(inputs, return_details=True).cluster_ids == []


def test_three_classes_and_schema_without_mri():
    schema = FeatureSchema(numeric=["AGE", "PTEDUCAT"], categorical={"APOE4": ["0", "1", "2"]},
                           mri_shape=None, classes=["CN", "MCI", "AD"])
    model = build_model(small_config(), schema).eval()
    inputs = make_inputs(batch=3, schema=SCHEMA)
    inputs = ModelInputs(torch.zeros(3, 0), inputs.numeric[:, :2], inputs.numeric_missing[:, :2],
                         inputs.categorical[:, :1], inputs.present)
    logits = model(inputs)
    assert logits.shape == (3, 3) and torch.isfinite(logits).all()
    assert torch.isnan(model.contributions(inputs)[:, MODALITY_INDEX[Modality.MRI]]).all()


def test_paper_sized_slices_run_on_cpu():
    schema = FeatureSchema(numeric=["MMSE"], categorical={}, mri_shape=(3, 3, 256, 256), classes=["CN", "AD"])
    model = build_model(small_config(d_model=64), schema).eval()
    inputs = ModelInputs(torch.rand(1, 3, 3, 256, 256), torch.zeros(1, 1), torch.zeros(1, 1, dtype=torch.bool),
                         torch.zeros(1, 0, dtype=torch.long), torch.ones(1, 3, dtype=torch.bool))
    out = model(inputs, return_details=True)
    assert out.cluster_ids[0].shape == (1, 3, 16, 16)  # 256 / 16 patches per side, 768 tokens
    assert out.cluster_ids[0].max() < math.ceil(math.log2(768))


def test_weights_round_trip_through_safetensors(tmp_path):
    from safetensors.torch import load_file, save_file

    torch.manual_seed(7)
    model = build_model(small_config(), SCHEMA).eval()
    save_file(model.state_dict(), str(tmp_path / "w.safetensors"))
    copy = build_model(small_config(), SCHEMA).eval()
    copy.load_state_dict(load_file(str(tmp_path / "w.safetensors")))
    inputs = make_inputs()
    assert torch.equal(model(inputs), copy(inputs))


def test_the_masking_module_takes_the_configs_bounds():
    from smmt_core.model.masking import ModalityMasking
    from smmt_core.settings import field_bounds

    low, high = field_bounds(ModelConfig, "mask_ratio")
    assert ModalityMasking(high, "dimension").ratio == high
    with pytest.raises(ConfigError, match="model.mask_ratio"):
        ModalityMasking(high + 0.05, "dimension")  # the config refuses it, so does the module
