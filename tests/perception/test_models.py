"""Perception models: output shapes, encoder contract, checkpoints."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlrobot.common.checkpoint import save_checkpoint
from rlrobot.common.networks import NatureCNN
from rlrobot.errors import CheckpointError
from rlrobot.perception.models import (
    ModelSpec,
    NatureCNNEncoder,
    PerceptionModel,
    SpatialSoftmax,
    SpatialSoftmaxEncoder,
    load_encoder,
    load_model,
    save_model,
)

IMAGE_SHAPE = (84, 84, 3)


@pytest.mark.parametrize(
    ("architecture", "input_shape"),
    [
        ("mlp", (8, 4)),
        ("nature_cnn", IMAGE_SHAPE),
        ("residual_cnn", IMAGE_SHAPE),
        ("spatial_softmax_cnn", (84, 168, 3)),
    ],
)
@pytest.mark.parametrize(("task", "output_dim"), [("regression", 3), ("classification", 2)])
def test_output_shapes(architecture: str, input_shape: tuple, task: str, output_dim: int) -> None:
    spec = ModelSpec(architecture, task, input_shape, output_dim, features_dim=64)
    model = PerceptionModel(spec)
    if architecture == "mlp":
        inputs = torch.randn(5, *input_shape)
    else:
        inputs = torch.randint(0, 256, (5, *input_shape), dtype=torch.uint8)
    assert model(inputs).shape == (5, output_dim)
    predictions = model.predict(inputs.numpy())
    assert predictions.shape == ((5, output_dim) if task == "regression" else (5,))
    if task == "classification":
        assert predictions.dtype == np.int64 and set(predictions) <= {0, 1}
    features = model.encoder(model.preprocess(inputs))
    assert features.shape == (5, model.encoder.features_dim)
    assert model.encoder.features_dim == (64 if architecture != "mlp" else 256)


def test_cnn_encoders_take_float_chw_images_in_unit_range() -> None:
    encoder = PerceptionModel(ModelSpec("residual_cnn", "regression", IMAGE_SHAPE, 1)).encoder
    assert encoder(torch.rand(2, 3, 84, 84)).shape == (2, encoder.features_dim)


def test_spatial_softmax_returns_the_expected_position_of_each_map() -> None:
    layer = SpatialSoftmax(height=5, width=9)
    maps = torch.full((1, 2, 5, 9), -50.0)
    maps[0, 0, 0, 8] = 50.0  # top-right corner: x = 1, y = -1
    maps[0, 1, 2, 4] = 50.0  # centre: x = 0, y = 0
    keypoints = layer(maps)  # (x of both maps, then y of both)
    torch.testing.assert_close(keypoints, torch.tensor([[1.0, 0.0, -1.0, 0.0]]))
    uniform = layer(torch.zeros(1, 1, 5, 9))  # no peak: the mean position, the centre
    torch.testing.assert_close(uniform, torch.zeros(1, 2), atol=1e-6, rtol=0)


def test_spatial_softmax_encoder_sees_where_a_patch_is() -> None:
    torch.manual_seed(0)
    encoder = SpatialSoftmaxEncoder((84, 168, 3), features_dim=16, channels=(8, 8))
    assert encoder.cnn[0].in_channels == 5  # RGB + the two CoordConv channels
    left, right = torch.zeros(1, 3, 84, 168), torch.zeros(1, 3, 84, 168)
    left[..., 40:44, 40:44] = 1.0
    right[..., 40:44, 124:128] = 1.0  # the same patch in the other view
    features = encoder(torch.cat([left, right]))
    assert not torch.allclose(features[0], features[1])
    with pytest.raises(ValueError, match=">= 2 conv layers"):
        SpatialSoftmaxEncoder((84, 84, 3), features_dim=16, channels=(8,))


def test_nature_encoder_weights_fit_the_agents_nature_cnn() -> None:
    encoder = NatureCNNEncoder(IMAGE_SHAPE, features_dim=128)
    agent_cnn = NatureCNN(gym.spaces.Box(0, 255, IMAGE_SHAPE, np.uint8), features_dim=128)
    agent_cnn.load_state_dict(encoder.state_dict())  # same names and shapes
    images = torch.randint(0, 256, (2, *IMAGE_SHAPE), dtype=torch.uint8)
    torch.testing.assert_close(agent_cnn(images), encoder(images.permute(0, 3, 1, 2) / 255.0))


def test_regression_predictions_are_in_physical_units() -> None:
    model = PerceptionModel(ModelSpec("mlp", "regression", (2,), 1))
    model.target_mean.fill_(5.0)
    model.target_std.fill_(0.0)  # every output maps to the mean
    np.testing.assert_allclose(model.predict(np.ones((3, 2), np.float32)), 5.0)


def test_invalid_specs_and_inputs_are_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"needs images of shape \(H, W, C\)"):
        ModelSpec("nature_cnn", "regression", (16, 4), 1)
    with pytest.raises(ValueError, match="architecture must be one of"):
        ModelSpec("vit", "regression", IMAGE_SHAPE, 1)
    with pytest.raises(ValueError, match="2 classes"):
        ModelSpec("mlp", "classification", (4,), 1)
    model = PerceptionModel(ModelSpec("mlp", "regression", (4,), 1))
    with pytest.raises(ValueError, match="expected"):
        model.predict(np.zeros((2, 5), np.float32))


def test_checkpoint_round_trip_and_encoder_loading(tmp_path) -> None:
    torch.manual_seed(0)
    model = PerceptionModel(ModelSpec("nature_cnn", "regression", IMAGE_SHAPE, 3, features_dim=32))
    model.target_mean.fill_(0.3)
    save_model(model, tmp_path / "cnn", {"label": "target_position"})
    loaded, metadata = load_model(tmp_path / "cnn")
    assert metadata["label"] == "target_position" and metadata["algorithm"] == "perception"
    images = np.random.default_rng(0).integers(0, 256, (4, *IMAGE_SHAPE), dtype=np.uint8)
    np.testing.assert_allclose(loaded.predict(images), model.predict(images), rtol=1e-6)

    space = gym.spaces.Box(0, 255, IMAGE_SHAPE, np.uint8)
    encoder = load_encoder(tmp_path / "cnn", gym.spaces.Dict({"pixels": space}))
    assert encoder.features_dim == 32
    with pytest.raises(CheckpointError, match="trained on images of shape"):
        load_encoder(tmp_path / "cnn", gym.spaces.Box(0, 255, (64, 64, 3), np.uint8))

    save_model(PerceptionModel(ModelSpec("mlp", "regression", (4,), 1)), tmp_path / "mlp")
    with pytest.raises(CheckpointError, match="MLP, not an image encoder"):
        load_encoder(tmp_path / "mlp")
    save_checkpoint(tmp_path / "agent", {"w": torch.zeros(1)}, {"algorithm": "ppo"})
    with pytest.raises(CheckpointError, match="'ppo' agent"):
        load_model(tmp_path / "agent")
