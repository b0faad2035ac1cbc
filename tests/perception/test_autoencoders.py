"""Autoencoders and β-VAEs: shapes, spec checks, checkpoints, training (the agent's encoder:
``test_encoder_swap.py``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlrobot.errors import CheckpointError, DatasetError
from rlrobot.perception.dataset import Dataset
from rlrobot.perception.metrics import reconstruction_metrics
from rlrobot.perception.models import (
    AutoencoderModel,
    LatentEncoder,
    ModelSpec,
    PerceptionModel,
    load_encoder,
    load_model,
    make_model,
    save_model,
)
from rlrobot.perception.training import mean_preprocessed_input, model_spec_for, train_model

PIXELS = {"obs_mode": "pixels", "pixels_width": 84, "pixels_height": 84}


def reconstruction_spec(architecture: str, shape: tuple, variational: bool) -> ModelSpec:
    """A small AE/VAE spec (8 latent dimensions)."""
    small = {"features_dim": 32} if architecture != "mlp" else {"hidden_sizes": (32, 16)}
    return ModelSpec(architecture, "reconstruction", shape, 8, variational=variational, **small)


@pytest.mark.parametrize(
    ("architecture", "shape"),
    [("mlp", (4, 5)), ("nature_cnn", (84, 84, 3)), ("nature_cnn", (84, 168, 3))],
)
@pytest.mark.parametrize("variational", [False, True])
def test_autoencoder_shapes(architecture: str, shape: tuple, variational: bool) -> None:
    torch.manual_seed(0)
    model = make_model(reconstruction_spec(architecture, shape, variational))
    assert isinstance(model, AutoencoderModel) and isinstance(model.encoder, LatentEncoder)
    if architecture == "mlp":
        inputs = torch.randn(3, *shape)
    else:
        inputs = torch.randint(0, 256, (3, *shape), dtype=torch.uint8)
    outputs = model(inputs)
    # The reconstruction has the preprocessed input's shape: flat standardised or CHW [0, 1].
    preprocessed = (20,) if architecture == "mlp" else (3, shape[0], shape[1])
    assert outputs.reconstruction.shape == outputs.target.shape == (3, *preprocessed)
    assert outputs.mean.shape == (3, 8)
    assert (outputs.log_variance is not None) is variational
    if architecture != "mlp":  # the sigmoid decoder answers in the pixels' range
        reconstruction = outputs.reconstruction.detach()
        assert 0.0 <= float(reconstruction.min()) <= float(reconstruction.max()) <= 1.0
    assert model.encode(inputs.numpy()).shape == (3, 8)
    assert model.encoder.features_dim == 8
    errors = model.sample_errors(inputs.numpy())
    assert errors["reconstruction_mse"].shape == errors["kl"].shape == (3,)
    assert (errors["kl"] > 0).all() == variational and (errors["kl"] >= 0).all()
    assert model.encode(inputs.numpy()[:0]).shape == (0, 8)


def test_a_vae_samples_its_code_in_training_and_decodes_the_mean_in_eval() -> None:
    torch.manual_seed(0)
    model = make_model(reconstruction_spec("mlp", (6,), variational=True))
    inputs = torch.randn(4, 6)
    model.train()
    assert not torch.equal(model(inputs).reconstruction, model(inputs).reconstruction)
    model.eval()
    torch.testing.assert_close(model(inputs).reconstruction, model(inputs).reconstruction)


def test_specs_and_models_refuse_mismatched_objectives() -> None:
    with pytest.raises(ValueError, match="variational needs task 'reconstruction'"):
        ModelSpec("mlp", "regression", (4,), 1, variational=True)
    with pytest.raises(ValueError, match="without one"):
        ModelSpec("mlp", "reconstruction", (4,), 2, beta=4.0)
    with pytest.raises(ValueError, match="beta must be a finite number >= 0"):
        ModelSpec("mlp", "reconstruction", (4,), 2, variational=True, beta=-1.0)
    with pytest.raises(ValueError, match="builds an AutoencoderModel"):
        PerceptionModel(ModelSpec("mlp", "reconstruction", (4,), 2))
    with pytest.raises(ValueError, match="needs task 'reconstruction'"):
        AutoencoderModel(ModelSpec("mlp", "regression", (4,), 2))
    assert ModelSpec("mlp", "reconstruction", (4,), 2, variational=True).objective == "vae"
    assert ModelSpec("mlp", "reconstruction", (4,), 2).objective == "ae"
    assert ModelSpec("mlp", "regression", (4,), 2).objective == "supervised"


def test_model_spec_for_builds_each_objective(cart_windows: Dataset) -> None:
    spec = model_spec_for(cart_windows, None, objective="vae", latent_dim=5, beta=2.0)
    assert (spec.task, spec.output_dim, spec.variational, spec.beta) == (
        "reconstruction",
        5,
        True,
        2.0,
    )
    with pytest.raises(ValueError, match="learns without a label"):
        model_spec_for(cart_windows, "about_to_fall", objective="ae")
    with pytest.raises(ValueError, match="objective must be one of"):
        model_spec_for(cart_windows, None, objective="contrastive")
    with pytest.raises(ValueError, match="needs a label"):
        model_spec_for(cart_windows, None)


def test_a_vae_without_beta_takes_the_measured_one_for_its_inputs(cart_windows, cart_images):
    # The plain VAE's β = 1 collapses the image code (perception.md, part 4).
    assert model_spec_for(cart_images, None, objective="vae").beta == 0.01
    assert model_spec_for(cart_windows, None, objective="vae").beta == 0.1
    assert model_spec_for(cart_images, None, objective="ae").beta == 1.0  # unused: no KL term


def test_save_load_round_trip_gives_the_same_codes_and_reconstructions(tmp_path) -> None:
    torch.manual_seed(0)
    model = make_model(ModelSpec("mlp", "reconstruction", (3, 4), 4, variational=True, beta=3.0))
    model.preprocess.mean.fill_(0.5)  # fitted statistics travel with the weights
    save_model(model, tmp_path / "vae", {"note": "round trip"})
    loaded, metadata = load_model(tmp_path / "vae")
    assert isinstance(loaded, AutoencoderModel) and loaded.spec == model.spec
    assert metadata["note"] == "round trip" and metadata["model"]["beta"] == 3.0
    inputs = np.random.default_rng(0).normal(size=(5, 3, 4)).astype(np.float32)
    np.testing.assert_array_equal(loaded.encode(inputs), model.encode(inputs))
    np.testing.assert_array_equal(loaded.reconstruct(inputs)[1], model.reconstruct(inputs)[1])
    # A checkpoint whose spec was edited to a supervised task does not load silently.
    save_model(model, tmp_path / "edited")
    metadata_path = tmp_path / "edited" / "metadata.json"
    metadata_path.write_text(metadata_path.read_text().replace('"reconstruction"', '"regression"'))
    with pytest.raises(CheckpointError, match="invalid model spec"):
        load_model(tmp_path / "edited")


def test_training_lowers_the_reconstruction_error_far_below_the_mean(
    cart_windows: Dataset, tmp_path
) -> None:
    torch.manual_seed(0)
    model = make_model(model_spec_for(cart_windows, None, objective="vae", hidden_sizes=(64, 32)))
    result = train_model(cart_windows, None, model, epochs=8, out_dir=tmp_path, seed=0)
    metrics = result.test_metrics
    # Measured over seeds 0-4 (8 epochs): test MSE 0.21-0.24 of the mean's 0.82, and the last
    # epoch's train loss 0.52-0.58 of the first's; the untrained VAE's is 1.00-1.02 of the mean's.
    assert metrics["reconstruction_mse"] < 0.4 * metrics["baseline_reconstruction_mse"]
    assert result.history[-1]["train/loss"] < 0.7 * result.history[0]["train/loss"]
    assert metrics["kl"] > 0 and result.model.spec.objective == "vae"
    untrained = make_model(model.spec)
    untrained.preprocess.load_state_dict(model.preprocess.state_dict())
    test = cart_windows.split("test")
    baseline = mean_preprocessed_input(model, cart_windows.split("train"))
    untrained_metrics, _ = reconstruction_metrics(untrained, test, baseline)
    assert untrained_metrics["reconstruction_mse"] > 0.5 * metrics["baseline_reconstruction_mse"]
    assert (tmp_path / "test_reconstructions.png").is_file()
    loaded, metadata = load_model(tmp_path / "model")
    assert metadata["label"] is None and metadata["baseline"] is None
    assert isinstance(loaded, AutoencoderModel)


def test_training_an_autoencoder_refuses_a_label_and_f1(cart_windows: Dataset) -> None:
    model = make_model(model_spec_for(cart_windows, None, objective="ae"))
    with pytest.raises(DatasetError, match="learns without a label"):
        train_model(cart_windows, "about_to_fall", model, epochs=1)
    with pytest.raises(DatasetError, match="monitor='f1' needs a classification label"):
        train_model(cart_windows, None, model, epochs=1, monitor="f1")


def test_load_encoder_refuses_a_vector_autoencoder(tmp_path) -> None:
    save_model(make_model(reconstruction_spec("mlp", (4,), True)), tmp_path / "vae")
    with pytest.raises(CheckpointError, match="holds an MLP"):
        load_encoder(tmp_path / "vae")


def test_the_decoder_starts_at_the_mean_target() -> None:
    torch.manual_seed(0)
    image_model = make_model(reconstruction_spec("nature_cnn", (40, 40, 3), variational=True))
    mean_image = np.full((3, 40, 40), 0.25, dtype=np.float32)
    mean_image[0] = 0.8
    image_model.start_at_mean(mean_image)
    torch.testing.assert_close(
        torch.sigmoid(image_model.decoder.mean_logits), torch.as_tensor(mean_image)
    )
    vector_model = make_model(reconstruction_spec("mlp", (4,), variational=False))
    vector_model.start_at_mean(np.array([0.5, -1.0, 0.0, 2.0]))
    torch.testing.assert_close(vector_model.decoder[-1].bias, torch.tensor([0.5, -1.0, 0.0, 2.0]))
