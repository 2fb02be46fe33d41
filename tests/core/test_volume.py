"""The whole-brain `volume` input: geometry, preprocessing, encoder, every variant, train -> predict."""

import numpy as np
import pytest
import torch

from smmt_core.batch import FeatureSchema, ModelInputs
from smmt_core.data.preprocess import PreprocessConfig, preprocess_t1
from smmt_core.data.volume import grid_labels_to_mni, token_ids_to_grid, volume_geometry
from smmt_core.errors import ConfigError, DataError
from smmt_core.model.config import ModelConfig
from smmt_core.model.smmt import build_model
from smmt_core.train.config import PRESETS, TrainConfig
from smmt_core.variants import VARIANT_NAMES
from tests.core.c1_support import (
    make_tiny_bids,
    mri_cache_at,
    one_thread,
    tiny_config,
    write_t1,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# 8 mm grid, 16 mm patches: a few dozen tokens, so every test here runs in seconds.
TINY = dict(input="volume", resolution_mm=8.0, patch_mm=16.0)


def test_the_preset_gives_a_few_thousand_brain_tokens():
    preset = PRESETS["volume"]
    geometry = volume_geometry(preset["resolution_mm"], preset["patch_mm"])
    assert 2000 <= geometry.n_tokens <= 6000
    assert all(s % geometry.patch == 0 for s in geometry.shape)
    assert geometry.n_tokens < np.prod(geometry.grid)  # patches outside the brain are dropped
    # Token centres lie inside the MNI brain's extent (about ±75 mm left-right).
    assert np.abs(geometry.positions_mm[:, 0]).max() < 80


def test_patches_must_be_whole_voxels_and_the_message_says_so():
    with pytest.raises(ConfigError, match="patch_mm"):
        PreprocessConfig(input="volume", resolution_mm=2.0, patch_mm=5.0)
    assert PreprocessConfig(input="slices", resolution_mm=2.0, patch_mm=5.0).mri_shape == (3, 1, 64, 64)


def test_cluster_ids_go_back_onto_the_mni_grid():
    geometry = volume_geometry(8.0, 16.0)
    ids = np.arange(geometry.n_tokens) % 5
    grid = token_ids_to_grid(ids, geometry)
    assert grid.shape == geometry.grid and (grid >= 0).sum() == geometry.n_tokens
    labels = grid_labels_to_mni(grid, geometry.origin, geometry.patch, geometry.mni_shape)
    assert labels.shape == geometry.mni_shape
    assert set(np.unique(labels)) <= {-1, 0, 1, 2, 3, 4}
    # every labelled voxel sits in the template brain's neighbourhood: the first token's patch
    i, j, k = np.unravel_index(geometry.token_index[0], geometry.grid)
    x, y, z = (np.array([i, j, k]) * geometry.patch + np.array(geometry.origin)).clip(0)
    assert labels[x, y, z] == 0
    with pytest.raises(ValueError, match="token ids"):
        token_ids_to_grid(ids[:-1], geometry)


def test_preprocessing_crops_the_brain_and_caches_it(tmp_path):
    path = write_t1(tmp_path / "t1.nii.gz", np.random.default_rng(0))
    config = PreprocessConfig(**TINY)
    result = preprocess_t1(path, config)
    assert result.slices.shape == config.mri_shape == volume_geometry(8.0, 16.0).shape
    assert result.slices.max() > 0.5 and result.slice_indices == []
    from smmt_core.data.preprocess import MRICache

    cache = MRICache(tmp_path / "cache")
    first = cache.get(path, config, load_volume=False)
    again = cache.get(path, config, load_volume=False)
    assert cache.hits == 1 and again.slices.shape == config.mri_shape
    np.testing.assert_allclose(again.slices, first.slices, atol=2e-3)  # float16 on disk
    assert config.key() != PreprocessConfig(resolution_mm=8.0).key()


def test_schema_round_trips_and_refuses_a_bad_volume_entry():
    schema = FeatureSchema(numeric=["AGE"], mri_shape=volume_geometry(8.0, 16.0).shape,
                           mri_volume={"resolution_mm": 8.0, "patch_mm": 16.0})
    again = FeatureSchema.from_dict(schema.to_dict())
    assert again == schema and again.is_volume and not again.differences(schema)
    assert "mri_volume" not in FeatureSchema(mri_shape=(3, 1, 64, 64)).to_dict()  # slice schemas unchanged
    with pytest.raises(ValueError, match="mri_volume"):
        FeatureSchema.from_dict({**schema.to_dict(), "mri_volume": {"resolution_mm": "8"}})
    with pytest.raises(ValueError, match="3 positive integers"):
        FeatureSchema.from_dict({**schema.to_dict(), "mri_shape": [1, 2, 3, 4]})


def _volume_batch(schema, batch=3):
    torch.manual_seed(0)
    return ModelInputs(
        mri=torch.rand(batch, *schema.mri_shape), numeric=torch.randn(batch, 1),
        numeric_missing=torch.zeros(batch, 1, dtype=torch.bool), categorical=torch.zeros(batch, 0, dtype=torch.long),
        present=torch.tensor([[True, True, False]] * batch))


@pytest.mark.parametrize("variant", VARIANT_NAMES)
def test_every_variant_trains_on_volume_tokens(variant):
    geometry = volume_geometry(8.0, 16.0)
    schema = FeatureSchema(numeric=["AGE"], mri_shape=geometry.shape, mri_volume={"resolution_mm": 8.0, "patch_mm": 16.0})
    model = build_model(ModelConfig(variant=variant, d_model=24, n_heads=2, n_layers=2), schema)
    inputs = _volume_batch(schema)
    out = model(inputs, return_details=True)
    out.logits.sum().backward()
    assert model.encoders["mri"].n_tokens == geometry.n_tokens
    assert model.encoders["mri"].embed[0].weight.grad is not None
    if model.config.sparse:
        assert len(out.cluster_ids) == 2 and out.cluster_ids[0].shape == (3, *geometry.grid)
        ids = out.cluster_ids[0]
        assert ((ids >= 0).sum(dim=(1, 2, 3)) == geometry.n_tokens).all()
    else:
        assert out.cluster_ids == []
    with pytest.raises(DataError, match="brain crop"):
        model(ModelInputs(inputs.mri[:, :-1], inputs.numeric, inputs.numeric_missing, inputs.categorical, inputs.present))


def test_input_statistics_standardise_every_voxel():
    geometry = volume_geometry(8.0, 16.0)
    schema = FeatureSchema(mri_shape=geometry.shape, mri_volume={"resolution_mm": 8.0, "patch_mm": 16.0})
    model = build_model(ModelConfig(d_model=24, n_heads=2, mri_input_norm=True), schema)
    encoder = model.encoders["mri"]
    volumes = torch.rand(5, *geometry.shape) * 0.5 + 0.2
    before = encoder(volumes[:2])
    encoder.set_input_statistics(volumes.half())  # datasets hold float16 crops
    torch.testing.assert_close(encoder.input_mean, volumes.half().float().mean(0))
    assert not torch.allclose(encoder(volumes[:2]), before)
    assert "mri.input_mean" in {k.removeprefix("encoders.") for k in model.state_dict()}  # saved with the weights


def test_a_readout_token_is_appended_and_left_off_the_cluster_grid():
    geometry = volume_geometry(8.0, 16.0)
    schema = FeatureSchema(mri_shape=geometry.shape, mri_volume={"resolution_mm": 8.0, "patch_mm": 16.0})
    model = build_model(ModelConfig(d_model=24, n_heads=2, mri_readout="pixels", mri_readout_tokens=2), schema)
    assert model.encoders["mri"].n_tokens == geometry.n_tokens + 2
    assert model.encoders["mri"](torch.rand(2, *geometry.shape)).shape == (2, geometry.n_tokens + 2, 24)
    inputs = _volume_batch(FeatureSchema(numeric=["AGE"], **{k: getattr(schema, k) for k in ("mri_shape", "mri_volume")}))
    out = model(inputs, return_details=True)
    assert out.cluster_ids[0].shape == (3, *geometry.grid)
    assert ((out.cluster_ids[0] >= 0).sum(dim=(1, 2, 3)) == geometry.n_tokens).all()


@pytest.mark.parametrize("share", [0.5, 0.2])
def test_readout_tokens_start_with_their_share_of_the_cascade_attention(share):
    """Among thousands of patch tokens a readout token is invisible to the cascade unless biased."""
    geometry = volume_geometry(2.0, 8.0)  # the preset's ~4000 tokens
    schema = FeatureSchema(mri_shape=geometry.shape, mri_volume={"resolution_mm": 2.0, "patch_mm": 8.0})
    config = ModelConfig(d_model=24, n_heads=2, n_layers=0, mri_readout="pixels", mri_readout_tokens=2,
                         mri_readout_share=share, dropout=0.0)
    model = build_model(config, schema).eval()
    encoder, cross = model.encoders["mri"], model.cascade["mri"].cross
    # All keys 0, so the attention splits by the bias alone; value channel 0 is 1 on the readout
    # tokens and 0 on the patches, so output channel 0 is the readout tokens' share.
    tokens = torch.zeros(1, encoder.n_tokens, 24)
    tokens[0, geometry.n_tokens:, 0] = 1.0
    with torch.no_grad():
        cross.kv.weight.zero_(), cross.kv.bias.zero_(), cross.proj.weight.copy_(torch.eye(24)), cross.proj.bias.zero_()
        cross.kv.weight[24, 0] = 1.0
        out = cross(torch.randn(1, 4, 24), tokens, encoder.cascade_key_bias)
    torch.testing.assert_close(out[..., 0], torch.full((1, 4), share), atol=1e-5, rtol=0)
    assert build_model(config.model_copy(update={"mri_readout_share": 0.0}), schema).encoders["mri"].cascade_key_bias is None


def test_the_readout_share_lets_the_gradient_reach_the_readout():
    geometry = volume_geometry(2.0, 8.0)
    schema = FeatureSchema(mri_shape=geometry.shape, mri_volume={"resolution_mm": 2.0, "patch_mm": 8.0})
    inputs = ModelInputs(mri=torch.rand(2, *geometry.shape), numeric=torch.zeros(2, 0),
                         numeric_missing=torch.zeros(2, 0, dtype=torch.bool), categorical=torch.zeros(2, 0, dtype=torch.long),
                         present=torch.tensor([[True, False, False]] * 2))
    ratios = {}
    for share in (0.0, 0.5):
        torch.manual_seed(0)
        model = build_model(ModelConfig(d_model=24, n_heads=2, n_layers=0, mri_readout="pixels", mri_readout_share=share,
                                        dropout=0.0), schema)
        model(inputs)[:, 1].sum().backward()
        encoder = model.encoders["mri"]
        ratios[share] = float(encoder.readout_fc[1].weight.grad.norm() / encoder.embed[0].weight.grad.norm())
    assert ratios[0.5] > 100 * ratios[0.0]


def test_train_then_predict_a_volume_run(tmp_path):
    from smmt_core.predict import Predictor
    from smmt_core.train.robustness import evaluate_robustness
    from smmt_core.train.trainer import train

    cohort = make_tiny_bids(tmp_path / "bids", n_per_class=4)
    with mri_cache_at(tmp_path / "cache"), one_thread():
        config = tiny_config(cohort, tmp_path / "runs", run_name="vol", epochs=1, mri_readout_share=0.5, **TINY)
        assert config.preprocess.is_volume
        result = train(config)
        predictor = Predictor.load(result.run_dir)
        prediction = predictor.predict(cohort / "sub-001")
        robustness = evaluate_robustness(result.run_dir, mask_ratios=[0.0], repeats=1)
    assert set(prediction.probabilities) == {"CN", "AD"}
    assert prediction.slices is None and prediction.patch_grid is not None
    labels = prediction.cluster_label_volume()
    assert labels.shape == prediction.volume.shape and (labels >= 0).any()
    sizes = prediction.cluster_sizes()
    assert sum(sizes.values()) == volume_geometry(8.0, 16.0).n_tokens
    assert len(robustness) > 0
    from smmt_core.report import ReportContext, write_report

    written = write_report(tmp_path / "report", prediction, ReportContext(model_name="vol"))
    assert sorted(p.suffix for p in written) == [".csv", ".json", ".png"]  # the png: the 3D parcellation


def test_volume_preset_builds():
    config = TrainConfig.build("volume", dataset="demo")
    assert config.preprocess.input == "volume" and config.model.n_layers == 2
