"""Perception models: an MLP and CNN encoders, each with a task head or a decoder (AE, β-VAE).

A ``PerceptionModel`` is ``preprocess → encoder → head``:

- ``preprocess`` turns raw dataset inputs into network inputs: uint8 ``(batch, H, W, C)``
  images into float ``(batch, C, H, W)`` in [0, 1] (the agents' ``ImagePreprocess``), or float
  vectors/windows into standardised flat vectors (train-set mean and std, stored as buffers);
- ``encoder`` is an ``MLPEncoder``, a ``NatureCNNEncoder`` (Mnih et al., 2015), a
  ``ResidualCNNEncoder`` (the IMPALA CNN, Espeholt et al., 2018) or a
  ``SpatialSoftmaxEncoder`` (keypoints, Levine et al., 2016, on CoordConv inputs, Liu et al.,
  2018), which locates small objects to a fraction of a pixel; every encoder has
  ``features_dim`` and image encoders take float CHW images in [0, 1], exactly what the agents'
  ``EncoderExtractor`` feeds a swappable encoder (``rlrobot.common.networks``);
- ``head`` maps features to regression outputs (standardised by the train-set label mean and
  std, stored as buffers, so ``predict`` answers in physical units) or to class logits.

A self-supervised ``AutoencoderModel`` (``task="reconstruction"``) is ``preprocess → encoder →
decoder``: its encoder is a ``LatentEncoder`` (the same backbones, then a linear map to the
code ``z``, or to the posterior mean and log-variance of a β-VAE, whose features are the mean),
the decoder maps the code back to the preprocessed input (the NatureCNN mirrored for images,
the MLP reversed for vectors), and ``vae_loss`` scores the reconstruction in the preprocessed
space (pixels in [0, 1], standardised features).

Checkpoints use the agents' format (``model.safetensors`` + ``metadata.json``, no pickles);
``load_encoder`` returns the encoder alone (a supervised model's or an autoencoder's), ready
for ``PPO(..., image_encoder=encoder, freeze_encoder=True)``.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
import torch
from torch import nn

import rlrobot
from rlrobot.common.checkpoint import load_checkpoint, save_checkpoint
from rlrobot.common.losses import gaussian_kl_divergence, vae_loss
from rlrobot.common.networks import (
    ImagePreprocess,
    NatureCNN,
    is_channels_last,
    is_image_space,
    mlp,
    register_image_encoder,
)
from rlrobot.errors import CheckpointError

ARCHITECTURES = ("mlp", "nature_cnn", "residual_cnn", "spatial_softmax_cnn")
TASKS = ("regression", "classification", "reconstruction")
# The training objectives the CLI names: a supervised task, or reconstruction without labels.
OBJECTIVES = ("supervised", "ae", "vae")
CHECKPOINT_ALGORITHM = "perception"


@dataclass
class ModelSpec:
    """Everything needed to rebuild a ``PerceptionModel`` (stored as JSON in checkpoints).

    Args:
        architecture: ``"mlp"``, ``"nature_cnn"``, ``"residual_cnn"`` or
            ``"spatial_softmax_cnn"``.
        task: ``"regression"``, ``"classification"`` or ``"reconstruction"`` (an autoencoder).
        input_shape: Shape of one raw input: ``(H, W, C)`` uint8 images for the CNNs, any
            float shape (e.g. ``(window, obs_dim)``) for the MLP.
        output_dim: Label components (regression), number of classes (classification) or
            latent dimensions (reconstruction).
        features_dim: Output width of the CNN encoders.
        hidden_sizes: Hidden layers of the MLP encoder (its ``features_dim`` is the last one).
        head_sizes: Hidden layers of the task head (empty: one linear layer).
        channels: Channels of the residual CNN's stages, or of the spatial-softmax CNN's
            convolutions (its keypoints are ``2 × channels[-1]`` image coordinates).
        activation: Hidden activation of the MLP encoder and of the head.
        variational: Reconstruction only: a β-VAE (a Gaussian posterior per input) instead of
            a deterministic autoencoder.
        beta: The β-VAE's weight of the KL term (≥ 0; 1 is the plain VAE).
    """

    architecture: str
    task: str
    input_shape: tuple[int, ...]
    output_dim: int
    features_dim: int = 512
    hidden_sizes: tuple[int, ...] = (256, 256)
    head_sizes: tuple[int, ...] = ()
    channels: tuple[int, ...] = (16, 32, 32)
    activation: str = "relu"
    variational: bool = False
    beta: float = 1.0

    def __post_init__(self) -> None:
        self.input_shape = tuple(int(n) for n in self.input_shape)
        self.hidden_sizes = tuple(int(n) for n in self.hidden_sizes)
        self.head_sizes = tuple(int(n) for n in self.head_sizes)
        self.channels = tuple(int(n) for n in self.channels)
        if self.architecture not in ARCHITECTURES:
            raise ValueError(
                f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}"
            )
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.output_dim < 1 or (self.task == "classification" and self.output_dim < 2):
            raise ValueError(
                f"output_dim must be >= 1 (regression) or >= 2 classes, got {self.output_dim}"
            )
        if self.architecture != "mlp" and (
            len(self.input_shape) != 3 or not is_channels_last(self.input_shape)
        ):
            raise ValueError(
                f"{self.architecture} needs images of shape (H, W, C), got {self.input_shape}"
            )
        if self.architecture == "mlp" and not self.hidden_sizes:
            raise ValueError("the MLP needs at least one hidden layer (hidden_sizes)")
        if self.variational and self.task != "reconstruction":
            raise ValueError(f"variational needs task 'reconstruction', got {self.task!r}")
        if not (math.isfinite(self.beta) and self.beta >= 0):
            raise ValueError(f"beta must be a finite number >= 0, got {self.beta}")
        if self.beta != 1.0 and not self.variational:
            raise ValueError(f"beta weighs a VAE's KL term; got beta={self.beta} without one")

    @property
    def objective(self) -> str:
        """``"supervised"``, ``"ae"`` or ``"vae"`` (one of ``OBJECTIVES``)."""
        if self.task != "reconstruction":
            return "supervised"
        return "vae" if self.variational else "ae"

    def to_dict(self) -> dict[str, Any]:
        """Return the spec as JSON values."""
        return {key: list(v) if isinstance(v, tuple) else v for key, v in vars(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelSpec:
        """Rebuild a spec written by ``to_dict``."""
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown model spec key(s) {unknown}")
        return cls(**values)


class MLPEncoder(nn.Module):
    """A multilayer perceptron ``in_dim → hidden_sizes`` (ending on an activation).

    Args:
        in_dim: Input features.
        hidden_sizes: Widths of the hidden layers; ``features_dim`` is the last one.
        activation: Hidden activation name.
    """

    def __init__(self, in_dim: int, hidden_sizes: tuple[int, ...], activation: str) -> None:
        super().__init__()
        self.net = mlp(in_dim, hidden_sizes, None, activation)
        self.features_dim = hidden_sizes[-1]

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Map ``(batch, in_dim)`` to ``(batch, features_dim)``."""
        return self.net(inputs)


class NatureCNNEncoder(nn.Module):
    """The DQN encoder (Mnih et al., 2015) on float images, built by the agents' ``NatureCNN``.

    It owns ``NatureCNN``'s ``cnn`` and ``linear`` layers (same names, same weights layout) and
    leaves out the uint8 preprocessing, which the caller does.

    Args:
        image_shape: ``(H, W, C)`` of the images (at least 36×36).
        features_dim: Output features.
    """

    def __init__(self, image_shape: tuple[int, int, int], features_dim: int = 512) -> None:
        super().__init__()
        space = gym.spaces.Box(0, 255, tuple(image_shape), np.uint8)
        nature = NatureCNN(space, features_dim)
        self.cnn, self.linear = nature.cnn, nature.linear
        self.image_shape = tuple(image_shape)
        self.features_dim = features_dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Map float ``(batch, C, H, W)`` images in [0, 1] to ``(batch, features_dim)``."""
        return self.linear(self.cnn(images))


class ResidualBlock(nn.Module):
    """``x + conv(relu(conv(relu(x))))`` with 3×3 convolutions (IMPALA CNN)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(batch, channels, H, W)`` to the same shape."""
        return x + self.conv1(torch.relu(self.conv0(torch.relu(x))))


class ResidualCNNEncoder(nn.Module):
    """The IMPALA CNN (Espeholt et al., 2018): per stage conv → max-pool /2 → 2 residual blocks.

    Args:
        image_shape: ``(H, W, C)`` of the images.
        features_dim: Output features.
        channels: Channels of each stage (each halves the resolution).
    """

    def __init__(
        self, image_shape: tuple[int, int, int], features_dim: int, channels: tuple[int, ...]
    ) -> None:
        super().__init__()
        height, width, in_channels = image_shape
        layers: list[nn.Module] = []
        for out_channels in channels:
            layers += [
                nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
                nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
                ResidualBlock(out_channels),
                ResidualBlock(out_channels),
            ]
            in_channels = out_channels
        layers += [nn.ReLU(), nn.Flatten()]
        self.cnn = nn.Sequential(*layers)
        with torch.no_grad():
            n_flatten = self.cnn(torch.zeros(1, image_shape[2], height, width)).shape[1]
        self.linear = nn.Sequential(nn.Linear(n_flatten, features_dim), nn.ReLU())
        self.image_shape = tuple(image_shape)
        self.features_dim = features_dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Map float ``(batch, C, H, W)`` images in [0, 1] to ``(batch, features_dim)``."""
        return self.linear(self.cnn(images))


def coordinate_channels(height: int, width: int) -> torch.Tensor:
    """Return ``(2, height, width)`` pixel-centre coordinates x, y, each in [-1, 1]."""
    ys = torch.linspace(-1.0, 1.0, height)
    xs = torch.linspace(-1.0, 1.0, width)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y])


class SpatialSoftmax(nn.Module):
    """Expected image position of every feature map's activation (Levine et al., 2016).

    Each channel is turned into a probability map by a softmax over its pixels (with a
    learned temperature) and reduced to the expected x and y, each in [-1, 1]: a keypoint that
    moves smoothly with the object, to a fraction of a feature-map cell.

    Args:
        height: Feature-map height.
        width: Feature-map width.
    """

    def __init__(self, height: int, width: int) -> None:
        super().__init__()
        self.register_buffer("grid", coordinate_channels(height, width).reshape(2, -1))
        self.log_temperature = nn.Parameter(torch.zeros(()))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Map ``(batch, C, height, width)`` to ``(batch, 2 C)`` keypoints (x of all, then y)."""
        logits = features.flatten(2) / self.log_temperature.exp()
        attention = torch.softmax(logits, dim=2)  # (batch, C, height × width)
        keypoints = torch.einsum("bcn,kn->bkc", attention, self.grid)
        return keypoints.flatten(1)


class SpatialSoftmaxEncoder(nn.Module):
    """CoordConv input → convolutions → spatial softmax keypoints → linear features.

    Two coordinate channels are appended to the image (CoordConv, Liu et al., 2018), so that a
    filter can tell where it is, e.g. which of several side-by-side views it looks at. The
    convolutions keep a quarter of the resolution (first two stride 2, the rest stride 1), and
    every channel of the last one becomes one keypoint.

    Args:
        image_shape: ``(H, W, C)`` of the images.
        features_dim: Output features.
        channels: Channels of the convolutions (at least two).
    """

    def __init__(
        self, image_shape: tuple[int, int, int], features_dim: int, channels: tuple[int, ...]
    ) -> None:
        super().__init__()
        if len(channels) < 2:
            raise ValueError(f"the spatial-softmax CNN needs >= 2 conv layers, got {channels}")
        height, width, in_channels = image_shape
        self.register_buffer("coordinates", coordinate_channels(height, width))
        layers: list[nn.Module] = []
        in_channels += 2  # the coordinate channels
        first_channels = in_channels
        for index, out_channels in enumerate(channels):
            kernel, stride = (5, 2) if index == 0 else (3, 2 if index == 1 else 1)
            layers += [
                nn.Conv2d(in_channels, out_channels, kernel, stride, padding=kernel // 2),
                nn.ReLU(),
            ]
            in_channels = out_channels
        self.cnn = nn.Sequential(*layers[:-1])  # keypoints come from the pre-activation maps
        with torch.no_grad():
            map_shape = self.cnn(torch.zeros(1, first_channels, height, width)).shape[2:]
        self.keypoints = SpatialSoftmax(*map_shape)
        self.linear = nn.Sequential(nn.Linear(2 * channels[-1], features_dim), nn.ReLU())
        self.image_shape = tuple(image_shape)
        self.features_dim = features_dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Map float ``(batch, C, H, W)`` images in [0, 1] to ``(batch, features_dim)``."""
        coordinates = self.coordinates.expand(images.shape[0], -1, -1, -1)
        features = self.cnn(torch.cat([images, coordinates], dim=1))
        return self.linear(self.keypoints(features))


class Standardize(nn.Module):
    """Flatten float inputs and standardise them with stored mean and std (train statistics).

    Args:
        n_features: Features after flattening.
    """

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Map ``(batch, *shape)`` to standardised ``(batch, n_features)`` floats."""
        return (inputs.reshape(inputs.shape[0], -1).float() - self.mean) / self.std


class LatentEncoder(nn.Module):
    """A backbone encoder, then a linear map to the code: ``z`` (AE) or ``μ, log σ²`` (β-VAE).

    Its features (``forward``, ``features_dim`` wide) are the code, or the posterior mean of a
    VAE: a deterministic representation, what an agent or a few-label head reads.

    Args:
        backbone: An encoder with ``features_dim`` (``MLPEncoder``, ``NatureCNNEncoder`` …).
        latent_dim: Dimensions of the code.
        variational: Also predict the posterior's log-variance.
    """

    def __init__(self, backbone: nn.Module, latent_dim: int, variational: bool) -> None:
        super().__init__()
        self.backbone = backbone
        self.to_latent = nn.Linear(backbone.features_dim, latent_dim * (2 if variational else 1))
        self.features_dim = latent_dim
        self.variational = variational

    def posterior(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return ``(μ or z, log σ² or None)``, each ``(batch, latent_dim)``."""
        code = self.to_latent(self.backbone(inputs))
        if not self.variational:
            return code, None
        mean, log_variance = code.chunk(2, dim=1)
        return mean, log_variance

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Map preprocessed inputs to ``(batch, features_dim)``: the code or the posterior mean."""
        return self.posterior(inputs)[0]


def make_backbone(spec: ModelSpec) -> nn.Module:
    """Build the MLP or CNN that ``spec.architecture`` names; it has an int ``features_dim``."""
    if spec.architecture == "mlp":
        return MLPEncoder(int(np.prod(spec.input_shape)), spec.hidden_sizes, spec.activation)
    if spec.architecture == "nature_cnn":
        return NatureCNNEncoder(spec.input_shape, spec.features_dim)
    if spec.architecture == "spatial_softmax_cnn":
        return SpatialSoftmaxEncoder(spec.input_shape, spec.features_dim, spec.channels)
    return ResidualCNNEncoder(spec.input_shape, spec.features_dim, spec.channels)


def make_encoder(spec: ModelSpec) -> nn.Module:
    """Build the encoder that ``spec`` names; it has an int ``features_dim``.

    A reconstruction spec gets a ``LatentEncoder`` around the backbone. The encoder carries
    ``encoder_spec`` (JSON), so that an agent using it as its image encoder can store the
    architecture in its checkpoint and ``Agent.load`` can rebuild it.
    """
    encoder = make_backbone(spec)
    if spec.task == "reconstruction":
        encoder = LatentEncoder(encoder, spec.output_dim, spec.variational)
    encoder.encoder_spec = {"builder": ENCODER_BUILDER, "config": spec.to_dict()}
    return encoder


def make_encoder_from_config(config: dict[str, Any]) -> nn.Module:
    """Build the encoder of a ``ModelSpec`` given as a dict (the builder checkpoints name)."""
    return make_encoder(ModelSpec.from_dict(config))


ENCODER_BUILDER = f"{__name__}:{make_encoder_from_config.__name__}"
register_image_encoder(ENCODER_BUILDER, make_encoder_from_config)


def make_preprocess(spec: ModelSpec) -> nn.Module:
    """Return the input preprocessing: ``Standardize`` for the MLP, ``ImagePreprocess`` else."""
    if spec.architecture == "mlp":
        return Standardize(int(np.prod(spec.input_shape)))
    return ImagePreprocess(channels_last=True)


@torch.no_grad()
def run_in_batches(
    model: nn.Module,
    inputs: np.ndarray | torch.Tensor,
    batch_size: int,
    function: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """Apply ``function`` to ``model.spec``-shaped raw inputs in eval mode, batch by batch.

    Args:
        model: A model with ``spec`` (its device is that of its parameters).
        inputs: ``(n, *spec.input_shape)`` raw inputs.
        batch_size: Samples per pass.
        function: Maps a batch of raw inputs to ``(batch, *out)``.

    Returns:
        ``(n, *out)`` results concatenated (on the model's device).
    """
    inputs = torch.as_tensor(inputs)
    if tuple(inputs.shape[1:]) != model.spec.input_shape:
        raise ValueError(
            f"inputs have shape {tuple(inputs.shape)}, expected (n, *{model.spec.input_shape})"
        )
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    outputs = [
        function(inputs[i : i + batch_size].to(device)) for i in range(0, len(inputs), batch_size)
    ]
    model.train(was_training)
    if not outputs:  # no samples: the output's shape from one dummy sample
        outputs = [function(torch.zeros((1, *inputs.shape[1:]), dtype=inputs.dtype))[:0]]
    return torch.cat(outputs)


class PerceptionModel(nn.Module):
    """``preprocess → encoder → head`` for one supervised task (see the module docstring).

    Args:
        spec: Architecture, task and shapes.
    """

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        if spec.task == "reconstruction":
            raise ValueError("a reconstruction spec builds an AutoencoderModel (make_model)")
        self.spec = spec
        self.preprocess = make_preprocess(spec)
        self.encoder = make_encoder(spec)
        self.head = mlp(
            self.encoder.features_dim, spec.head_sizes, spec.output_dim, spec.activation
        )
        self.register_buffer("target_mean", torch.zeros(spec.output_dim))
        self.register_buffer("target_std", torch.ones(spec.output_dim))

    @property
    def is_regression(self) -> bool:
        """Whether the head regresses (else it classifies)."""
        return self.spec.task == "regression"

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Map raw inputs ``(batch, *input_shape)`` to ``(batch, output_dim)``.

        The outputs are standardised regression values or class logits (what the loss sees).
        """
        return self.head(self.encoder(self.preprocess(inputs)))

    def to_physical(self, outputs: torch.Tensor) -> torch.Tensor:
        """Undo the label standardisation of regression outputs (physical units)."""
        return outputs * self.target_std + self.target_mean

    def predict(self, inputs: np.ndarray | torch.Tensor, batch_size: int = 256) -> np.ndarray:
        """Predict in eval mode, in batches.

        Args:
            inputs: ``(n, *input_shape)`` raw inputs.
            batch_size: Samples per forward pass.

        Returns:
            Regression: float ``(n, output_dim)`` in the label's units; classification: int64
            class indices ``(n,)``.
        """
        result = run_in_batches(self, inputs, batch_size, self)
        if self.is_regression:
            return self.to_physical(result).cpu().numpy()
        return result.argmax(dim=1).cpu().numpy()

    def predict_probabilities(
        self, inputs: np.ndarray | torch.Tensor, batch_size: int = 256
    ) -> np.ndarray:
        """Class probabilities (softmax of the logits) of a classifier, float ``(n, n_classes)``."""
        if self.is_regression:
            raise ValueError("predict_probabilities needs a classification model")
        return torch.softmax(run_in_batches(self, inputs, batch_size, self), dim=1).cpu().numpy()


# NatureCNN's convolutions as (out channels, kernel, stride), which ImageDecoder mirrors.
NATURE_CNN_LAYERS = ((32, 8, 4), (64, 4, 2), (64, 3, 1))


class ImageDecoder(nn.Module):
    """NatureCNN mirrored: code → linear layers → transposed convolutions → sigmoid image.

    Each transposed convolution is given the size of the feature map its twin took, so that
    any image at least 36×36 comes back at its own size. A per-pixel logit (``mean_logits``)
    is added before the sigmoid: set to the train images' mean, the decoder starts at the best
    constant image and learns the difference from it.

    Args:
        image_shape: ``(H, W, C)`` of the images.
        latent_dim: Dimensions of the code.
        features_dim: Width of the hidden linear layer (the encoder's ``features_dim``).
    """

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int, features_dim: int):
        super().__init__()
        height, width, channels = image_shape
        self.sizes = [(height, width)]
        for _, kernel, stride in NATURE_CNN_LAYERS:
            h, w = self.sizes[-1]
            self.sizes.append(((h - kernel) // stride + 1, (w - kernel) // stride + 1))
        last_channels = NATURE_CNN_LAYERS[-1][0]
        self.linear = nn.Sequential(
            nn.Linear(latent_dim, features_dim),
            nn.ReLU(),
            nn.Linear(features_dim, last_channels * self.sizes[-1][0] * self.sizes[-1][1]),
            nn.ReLU(),
        )
        in_channels = [channels] + [out for out, _, _ in NATURE_CNN_LAYERS[:-1]]
        self.mean_logits = nn.Parameter(torch.zeros(channels, height, width))
        self.deconvolutions = nn.ModuleList(
            nn.ConvTranspose2d(out, in_, kernel, stride)
            for in_, (out, kernel, stride) in reversed(
                list(zip(in_channels, NATURE_CNN_LAYERS, strict=True))
            )
        )

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        """Map ``(batch, latent_dim)`` to float ``(batch, C, H, W)`` images in (0, 1)."""
        x = self.linear(code).unflatten(1, (NATURE_CNN_LAYERS[-1][0], *self.sizes[-1]))
        for index, deconvolution in enumerate(self.deconvolutions):
            x = deconvolution(x, output_size=self.sizes[-2 - index])
            if index < len(self.deconvolutions) - 1:
                x = torch.relu(x)
        return torch.sigmoid(x + self.mean_logits)


class Reconstruction(NamedTuple):
    """An autoencoder's pass: ``reconstruction`` of ``target`` (the preprocessed input), the
    code or posterior ``mean`` and, for a VAE, its ``log_variance``."""

    reconstruction: torch.Tensor
    target: torch.Tensor
    mean: torch.Tensor
    log_variance: torch.Tensor | None


class AutoencoderModel(nn.Module):
    """``preprocess → LatentEncoder → decoder``: an autoencoder or β-VAE (module docstring).

    Args:
        spec: A ``task="reconstruction"`` spec (``output_dim`` latent dimensions).
    """

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        if spec.task != "reconstruction":
            raise ValueError(f"an AutoencoderModel needs task 'reconstruction', got {spec.task!r}")
        self.spec = spec
        self.preprocess = make_preprocess(spec)
        self.encoder = make_encoder(spec)
        if spec.architecture == "mlp":
            widths = tuple(reversed(spec.hidden_sizes))
            n_features = int(np.prod(spec.input_shape))
            self.decoder: nn.Module = mlp(spec.output_dim, widths, n_features, spec.activation)
        else:
            self.decoder = ImageDecoder(spec.input_shape, spec.output_dim, spec.features_dim)

    @torch.no_grad()
    def start_at_mean(self, mean_target: np.ndarray) -> None:
        """Start the decoder at a constant reconstruction, the train split's mean target.

        The decoder's last offset (an image decoder's ``mean_logits``, an MLP's output bias)
        becomes that mean, so that training starts from the best constant and learns the
        difference: from zero offsets an image VAE stalled on one flat colour (perception.md).
        """
        mean = torch.as_tensor(mean_target, dtype=torch.float32)
        if isinstance(self.decoder, ImageDecoder):
            self.decoder.mean_logits.copy_(torch.logit(mean.clamp(1e-3, 1 - 1e-3)))
        else:
            self.decoder[-1].bias.copy_(mean)

    def forward(self, inputs: torch.Tensor) -> Reconstruction:
        """Encode and decode raw inputs ``(batch, *input_shape)``.

        In train mode a VAE decodes a sample ``z = μ + σ ε`` (the reparameterisation trick,
        Kingma and Welling, 2014); in eval mode it decodes ``μ``.
        """
        target = self.preprocess(inputs)
        mean, log_variance = self.encoder.posterior(target)
        code = mean
        if log_variance is not None and self.training:
            code = mean + torch.randn_like(mean) * (0.5 * log_variance).exp()
        reconstruction = self.decoder(code).reshape(target.shape)
        return Reconstruction(reconstruction, target, mean, log_variance)

    def loss(self, inputs: torch.Tensor) -> torch.Tensor:
        """The ``vae_loss`` of a batch of raw inputs (an AE has no KL term)."""
        outputs = self(inputs)
        return vae_loss(*outputs, beta=self.spec.beta)[0]

    def encode(self, inputs: np.ndarray | torch.Tensor, batch_size: int = 256) -> np.ndarray:
        """Return the features (code or posterior mean), float ``(n, latent_dim)``, in eval mode."""
        features = run_in_batches(self, inputs, batch_size, self._features)
        return features.cpu().numpy()

    def _features(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.preprocess(inputs))

    def sample_errors(
        self, inputs: np.ndarray | torch.Tensor, batch_size: int = 256
    ) -> dict[str, np.ndarray]:
        """Per-sample ``reconstruction_mse`` (mean over dimensions) and ``kl`` (0 for an AE).

        Both are in eval mode (the decoder sees ``μ``), float ``(n,)``: anomaly scores.
        """

        def errors(batch: torch.Tensor) -> torch.Tensor:
            outputs = self(batch)
            squared = (outputs.reconstruction - outputs.target).pow(2).flatten(1).mean(dim=1)
            kl = torch.zeros_like(squared)
            if outputs.log_variance is not None:
                kl = gaussian_kl_divergence(outputs.mean, outputs.log_variance)
            return torch.stack([squared, kl], dim=1)

        result = run_in_batches(self, inputs, batch_size, errors).cpu().numpy()
        return {"reconstruction_mse": result[:, 0], "kl": result[:, 1]}

    def reconstruct(
        self, inputs: np.ndarray | torch.Tensor, batch_size: int = 256
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(target, reconstruction)``, each float ``(n, *preprocessed shape)``."""

        def pair(batch: torch.Tensor) -> torch.Tensor:
            outputs = self(batch)
            return torch.stack([outputs.target, outputs.reconstruction], dim=1)

        pairs = run_in_batches(self, inputs, batch_size, pair).cpu().numpy()
        return pairs[:, 0], pairs[:, 1]


def make_model(spec: ModelSpec) -> PerceptionModel | AutoencoderModel:
    """Build the model of a spec: an ``AutoencoderModel`` for reconstruction, else supervised."""
    if spec.task == "reconstruction":
        return AutoencoderModel(spec)
    return PerceptionModel(spec)


def save_model(
    model: PerceptionModel | AutoencoderModel,
    path: str | os.PathLike,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Save a model as a checkpoint directory (``model.safetensors`` + ``metadata.json``).

    Args:
        model: The model.
        path: The checkpoint directory.
        metadata: Extra JSON values (label, dataset card, training config, metrics…).
    """
    save_checkpoint(
        path,
        dict(model.state_dict()),
        {
            **(metadata or {}),
            "algorithm": CHECKPOINT_ALGORITHM,
            "model": model.spec.to_dict(),
            "versions": {"rlrobot": rlrobot.__version__, "torch": torch.__version__},
        },
    )


def load_model(
    path: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[PerceptionModel | AutoencoderModel, dict[str, Any]]:
    """Load a model saved by ``save_model``; returns ``(model in eval mode, metadata)``.

    Raises:
        CheckpointError: Missing or corrupt files, an agent checkpoint, weights that don't fit.
    """
    tensors, metadata = load_checkpoint(path, expected_algorithm=CHECKPOINT_ALGORITHM)
    try:
        model = make_model(ModelSpec.from_dict(metadata["model"]))
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"checkpoint {path}: invalid model spec ({error})") from None
    try:
        model.load_state_dict(tensors)
    except RuntimeError as error:
        raise CheckpointError(f"checkpoint {path}: weights do not fit its model spec") from error
    return model.to(device).eval(), metadata


def load_encoder(path: str | os.PathLike, observation_space: gym.Space | None = None) -> nn.Module:
    """Load the image encoder of a perception checkpoint, to become an agent's encoder.

    Use it as ``PPO(env, image_encoder=load_encoder(path, env_space), freeze_encoder=True)``.

    Args:
        path: A checkpoint written by ``save_model`` (a CNN model, supervised or an
            autoencoder, whose encoder gives the code or posterior mean).
        observation_space: If given, the uint8 image space (or a ``Dict`` holding one) the
            encoder will see; its image shape must match the one the encoder was trained on.

    Returns:
        The encoder (float CHW images in [0, 1] → ``(batch, features_dim)``), in train mode.

    Raises:
        CheckpointError: Not a CNN checkpoint, or it was trained on another image shape.
    """
    model, _ = load_model(path)
    if model.spec.architecture == "mlp":
        raise CheckpointError(f"checkpoint {path} holds an MLP, not an image encoder")
    if observation_space is not None:
        spaces = (
            observation_space.spaces.values()
            if isinstance(observation_space, gym.spaces.Dict)
            else [observation_space]
        )
        shapes = [tuple(space.shape) for space in spaces if is_image_space(space)]
        if not shapes:
            raise CheckpointError(f"{observation_space} holds no uint8 image to encode")
        channels_last = [
            shape if is_channels_last(shape) else (*shape[1:], shape[0]) for shape in shapes
        ]
        if any(shape != model.spec.input_shape for shape in channels_last):
            raise CheckpointError(
                f"the encoder in {path} was trained on images of shape {model.spec.input_shape}, "
                f"but the observation has {shapes}"
            )
    return model.encoder.train()
