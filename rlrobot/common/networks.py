"""Network building blocks: MLPs and feature extractors for Box, Dict and image observations.

A feature extractor is an ``nn.Module`` with a ``features_dim`` attribute that maps a batch of
observations (a tensor, or a dict of tensors for ``Dict`` spaces) to ``(batch, features_dim)``.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlrobot.errors import UnsupportedEnvError

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
}

# Names accepted by the ``matmul_dtype`` options → the autocast dtype (None: plain float32).
# SB3's image feature widths: ``NatureCNN``'s default (``CnnPolicy``), and what
# ``CombinedExtractor`` (``MultiInputPolicy``) gives each image key (``cnn_output_dim``).
NATURE_CNN_FEATURES_DIM = 512
DICT_CNN_FEATURES_DIM = 256

MATMUL_DTYPES: dict[str, torch.dtype | None] = {"float32": None, "bfloat16": torch.bfloat16}
_HIDDEN_MATMUL_DTYPE: contextvars.ContextVar[torch.dtype | None] = contextvars.ContextVar(
    "rlrobot_hidden_matmul_dtype", default=None
)


@contextlib.contextmanager
def hidden_matmul_dtype(dtype: torch.dtype | None) -> Iterator[None]:
    """Within this scope, ``hidden_layers_precision`` regions multiply in ``dtype``.

    The off-policy agents enter it around their gradient updates only: acting and evaluation
    stay float32 (and on one observation the casts would cost more than they save).
    """
    token = _HIDDEN_MATMUL_DTYPE.set(dtype)
    try:
        yield
    finally:
        _HIDDEN_MATMUL_DTYPE.reset(token)


def hidden_layers_precision(inputs: torch.Tensor) -> contextlib.AbstractContextManager[Any]:
    """Autocast region for hidden layers in the scope's dtype (none outside a scope).

    Weights, gradients and optimiser state stay float32; only the products are rounded, which
    CPUs with AVX512-BF16 or AMX (and recent GPUs) compute about twice as fast.
    """
    dtype = _HIDDEN_MATMUL_DTYPE.get()
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(inputs.device.type, dtype=dtype)


def to_tensors(values: Any, device: torch.device) -> Any:
    """Return an array, or a dict of arrays, as tensors on ``device`` (no copy on the CPU)."""
    if isinstance(values, dict):
        return {key: torch.as_tensor(value, device=device) for key, value in values.items()}
    return torch.as_tensor(values, device=device)


def get_activation(name: str | type[nn.Module]) -> type[nn.Module]:
    """Return the activation class for a name such as ``"tanh"`` or ``"relu"``."""
    if not isinstance(name, str):
        return name
    try:
        return ACTIVATIONS[name.lower()]
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}"
        ) from None


def activation_after_linear(name: str | type[nn.Module]) -> nn.Module:
    """Instantiate an activation that follows a linear layer; ReLU then runs in place.

    A linear layer's backward does not need its output, so ReLU may overwrite it: one
    activation-sized buffer fewer per layer, which on CPU saves memory traffic in every update.
    """
    activation_class = get_activation(name)
    if activation_class is nn.ReLU:
        return nn.ReLU(inplace=True)
    return activation_class()


def mlp(
    in_dim: int,
    hidden_sizes: Sequence[int],
    out_dim: int | None,
    activation: str | type[nn.Module] = "tanh",
    output_activation: str | type[nn.Module] | None = None,
) -> nn.Sequential:
    """Build a multilayer perceptron ``in_dim → hidden_sizes… → out_dim``.

    Args:
        in_dim: Input features.
        hidden_sizes: Width of each hidden layer (may be empty).
        out_dim: Output features, or ``None`` to end after the last hidden activation.
        activation: Hidden activation (name or class).
        output_activation: Optional activation after the output layer.

    Returns:
        The network, mapping ``(batch, in_dim)`` to ``(batch, out_dim)``.
    """
    layers: list[nn.Module] = []
    last = in_dim
    for size in hidden_sizes:
        layers += [nn.Linear(last, size), activation_after_linear(activation)]
        last = size
    if out_dim is not None:
        layers.append(nn.Linear(last, out_dim))
        if output_activation is not None:
            layers.append(get_activation(output_activation)())
    return nn.Sequential(*layers)


def mlp_output_dim(in_dim: int, hidden_sizes: Sequence[int], out_dim: int | None) -> int:
    """Return the output width of ``mlp(in_dim, hidden_sizes, out_dim)``."""
    if out_dim is not None:
        return out_dim
    return hidden_sizes[-1] if hidden_sizes else in_dim


def is_image_space(space: gym.Space) -> bool:
    """Return True for uint8 ``Box`` spaces of rank 3 (HWC or CHW images)."""
    return isinstance(space, gym.spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3


def is_channels_last(shape: Sequence[int]) -> bool:
    """Guess whether an image shape is HWC (True) or CHW (False)."""
    return shape[-1] in (1, 3, 4) and shape[0] not in (1, 3, 4)


class FlattenExtractor(nn.Module):
    """Flatten a ``Box`` observation to ``(batch, prod(shape))`` float features.

    uint8 images are scaled to [0, 1] first, as SB3's ``MlpPolicy`` does with them.
    """

    def __init__(self, observation_space: gym.spaces.Box) -> None:
        super().__init__()
        self.features_dim = int(np.prod(observation_space.shape))
        self.scale = 1.0 / 255.0 if is_image_space(observation_space) else 1.0

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        """Map ``(batch, *shape)`` to ``(batch, features_dim)``."""
        features = observations.reshape(observations.shape[0], -1).float()
        return features * self.scale if self.scale != 1.0 else features


class ImagePreprocess(nn.Module):
    """Convert uint8 images ``(batch, H, W, C)`` or ``(batch, C, H, W)`` to float CHW in [0, 1]."""

    def __init__(self, channels_last: bool) -> None:
        super().__init__()
        self.channels_last = channels_last

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Return ``(batch, C, H, W)`` floats scaled by 1/255."""
        images = images.float() / 255.0
        return images.permute(0, 3, 1, 2) if self.channels_last else images


class NatureCNN(nn.Module):
    """The DQN convolutional encoder (Mnih et al., 2015) for uint8 images.

    Args:
        observation_space: uint8 ``Box`` of shape ``(H, W, C)`` or ``(C, H, W)``; images should be
            at least 36×36 pixels.
        features_dim: Output features.
    """

    def __init__(
        self, observation_space: gym.spaces.Box, features_dim: int = NATURE_CNN_FEATURES_DIM
    ) -> None:
        super().__init__()
        channels_last = is_channels_last(observation_space.shape)
        self.preprocess = ImagePreprocess(channels_last)
        n_channels = observation_space.shape[-1] if channels_last else observation_space.shape[0]
        self.cnn = nn.Sequential(
            nn.Conv2d(n_channels, 32, kernel_size=8, stride=4),
            nn.ReLU(),
            nn.Conv2d(32, 64, kernel_size=4, stride=2),
            nn.ReLU(),
            nn.Conv2d(64, 64, kernel_size=3, stride=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            sample = torch.as_tensor(observation_space.sample()[None])
            n_flatten = self.cnn(self.preprocess(sample)).shape[1]
        self.linear = nn.Sequential(nn.Linear(n_flatten, features_dim), nn.ReLU())
        self.features_dim = features_dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Map uint8 images ``(batch, H, W, C)`` to ``(batch, features_dim)``."""
        return self.linear(self.cnn(self.preprocess(images)))


def encoder_features_dim(encoder: nn.Module) -> int:
    """Return an encoder's output width from its ``features_dim`` or ``out_dim`` attribute."""
    for name in ("features_dim", "out_dim"):
        value = getattr(encoder, name, None)
        if isinstance(value, int):
            return value
    raise TypeError(
        f"{type(encoder).__name__} needs an int attribute `features_dim` or `out_dim` "
        "to be used as an image encoder"
    )


IMAGE_ENCODER_BUILDERS: dict[str, Callable[[dict[str, Any]], nn.Module]] = {}
"""Builders of swappable image encoders by name: ``config`` (JSON values) → encoder module."""

# A builder named "package.module:function" inside rlrobot is found by importing its module,
# which registers it (as Gymnasium finds an entry point). So a checkpoint loads without its
# builder's module being imported first, while this layer names no module above it. Only
# rlrobot modules are imported, and only a name the import then registers is called: a crafted
# checkpoint cannot run an arbitrary function.
_IMPORTABLE_BUILDER = re.compile(r"^(rlrobot(?:\.[a-z_][a-z0-9_]*)+):[A-Za-z_][A-Za-z0-9_]*$")


def register_image_encoder(name: str, builder: Callable[[dict[str, Any]], nn.Module]) -> None:
    """Register ``builder(config) -> encoder`` so that agent checkpoints can rebuild encoders.

    An encoder made by a registered builder should carry ``encoder_spec = {"builder": name,
    "config": config}`` (JSON values), which agents store in their checkpoint metadata. Name a
    builder of an rlrobot module ``"rlrobot.module:function"`` so that loading finds it.
    """
    IMAGE_ENCODER_BUILDERS[name] = builder


def get_image_encoder_spec(encoder: nn.Module) -> dict[str, Any] | None:
    """Return an encoder's JSON ``encoder_spec`` (``{"builder", "config"}``), or None."""
    spec = getattr(encoder, "encoder_spec", None)
    if not isinstance(spec, dict) or not {"builder", "config"} <= set(spec):
        return None
    return spec


def build_image_encoder(spec: dict[str, Any]) -> nn.Module:
    """Rebuild an encoder (fresh weights) from a spec returned by ``get_image_encoder_spec``.

    Raises:
        ValueError: Unknown builder or a config it rejects.
    """
    name = spec.get("builder")
    match = _IMPORTABLE_BUILDER.match(name) if isinstance(name, str) else None
    if name not in IMAGE_ENCODER_BUILDERS and match is not None:
        with contextlib.suppress(ImportError):  # reported below as an unknown builder
            importlib.import_module(match.group(1))
    if name not in IMAGE_ENCODER_BUILDERS:
        raise ValueError(
            f"unknown image encoder builder {name!r}; registered: "
            f"{sorted(IMAGE_ENCODER_BUILDERS)} (see register_image_encoder)"
        )
    return IMAGE_ENCODER_BUILDERS[name](spec["config"])


class EncoderExtractor(nn.Module):
    """Wrap any image encoder (e.g. a pretrained one) as a feature extractor.

    Args:
        encoder: Module mapping float ``(batch, C, H, W)`` images in [0, 1] to
            ``(batch, features_dim)``; must have ``features_dim`` or ``out_dim``.
        observation_space: The uint8 image space, to know whether images arrive as HWC.
        freeze: Keep the encoder weights fixed (no gradients, eval mode).
    """

    def __init__(
        self, encoder: nn.Module, observation_space: gym.spaces.Box, freeze: bool = False
    ) -> None:
        super().__init__()
        self.preprocess = ImagePreprocess(is_channels_last(observation_space.shape))
        self.encoder = encoder
        self.features_dim = encoder_features_dim(encoder)
        self.freeze = freeze
        if freeze:
            encoder.requires_grad_(False)
            encoder.eval()

    def train(self, mode: bool = True) -> EncoderExtractor:
        """Set training mode, keeping a frozen encoder in eval mode."""
        super().train(mode)
        if self.freeze:
            self.encoder.eval()
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Map uint8 images to ``(batch, features_dim)``."""
        return self.encoder(self.preprocess(images))


class DictExtractor(nn.Module):
    """Encode each key of a ``Dict`` observation and concatenate them in sorted key order.

    Image keys use the CNN (or the given encoder), every other key is flattened: SB3's
    ``CombinedExtractor``, whose CNN gives each image key 256 features.
    """

    def __init__(
        self,
        observation_space: gym.spaces.Dict,
        image_encoder: nn.Module | None = None,
        freeze_encoder: bool = False,
        cnn_features_dim: int = DICT_CNN_FEATURES_DIM,
    ) -> None:
        super().__init__()
        self.keys = sorted(observation_space.spaces)
        self.extractors = nn.ModuleDict(
            {
                key: make_features_extractor(
                    observation_space[key], image_encoder, freeze_encoder, cnn_features_dim
                )
                for key in self.keys
            }
        )
        self.features_dim = sum(self.extractors[key].features_dim for key in self.keys)

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        """Map a dict of ``(batch, *shape_k)`` tensors to ``(batch, features_dim)``."""
        return torch.cat([self.extractors[key](observations[key]) for key in self.keys], dim=1)


def make_features_extractor(
    observation_space: gym.Space,
    image_encoder: nn.Module | None = None,
    freeze_encoder: bool = False,
    cnn_features_dim: int | None = None,
    flatten_images: bool = False,
) -> nn.Module:
    """Build the feature extractor that suits an observation space.

    Args:
        observation_space: ``Box`` (vector or uint8 image), ``Discrete`` or ``Dict`` of those.
        image_encoder: Replaces ``NatureCNN`` for image observations (any module with
            ``features_dim``/``out_dim`` that takes float CHW images in [0, 1]).
        freeze_encoder: Keep ``image_encoder``'s weights fixed.
        cnn_features_dim: Output width of the default ``NatureCNN`` (None: SB3's, 512 for an
            image space and 256 per image key of a ``Dict``).
        flatten_images: Flatten images (scaled to [0, 1]) instead of a CNN: SB3's
            ``MlpPolicy`` on an image space.

    Returns:
        A module with a ``features_dim`` attribute.
    """
    if isinstance(observation_space, gym.spaces.Dict):
        return DictExtractor(
            observation_space,
            image_encoder,
            freeze_encoder,
            cnn_features_dim or DICT_CNN_FEATURES_DIM,
        )
    if is_image_space(observation_space) and not flatten_images:
        if image_encoder is not None:
            return EncoderExtractor(image_encoder, observation_space, freeze_encoder)
        return NatureCNN(observation_space, cnn_features_dim or NATURE_CNN_FEATURES_DIM)
    if isinstance(observation_space, gym.spaces.Box):
        return FlattenExtractor(observation_space)
    if isinstance(observation_space, gym.spaces.Discrete):
        return OneHotExtractor(observation_space)
    raise UnsupportedEnvError(
        f"unsupported observation space {observation_space}; "
        "use Box, Discrete, uint8 images or a Dict of those"
    )


class OneHotExtractor(nn.Module):
    """One-hot encode a ``Discrete`` observation to ``(batch, n)``."""

    def __init__(self, observation_space: gym.spaces.Discrete) -> None:
        super().__init__()
        self.n = int(observation_space.n)
        self.start = int(observation_space.start)
        self.features_dim = self.n

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        """Map ``(batch,)`` integer observations to ``(batch, n)``."""
        indices = (observations.reshape(-1).long() - self.start).clamp(0, self.n - 1)
        return nn.functional.one_hot(indices, self.n).float()


def orthogonal_init(module: nn.Module, gain: float = np.sqrt(2)) -> None:
    """Orthogonally initialise the weights of every Linear/Conv layer and zero their biases."""
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            nn.init.orthogonal_(layer.weight, gain=gain)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def stats_to_floats(stats: dict[str, torch.Tensor | float]) -> dict[str, float]:
    """Convert tensor statistics to floats with one device synchronisation."""
    keys = list(stats)
    tensors = [torch.as_tensor(stats[k], dtype=torch.float32).reshape(()) for k in keys]
    values = torch.stack(tensors).cpu().tolist() if tensors else []
    return dict(zip(keys, values, strict=True))


def make_adam(
    parameters: Any, learning_rate: float, eps: float = 1e-8, weight_decay: float = 0.0
) -> torch.optim.Optimizer:
    """Build Adam, with torch's fused kernel where it supports one (the same update, faster).

    ``eps`` and ``weight_decay`` are the defaults of the parameter groups; a group may set its
    own (SAC's entropy coefficient keeps Adam's defaults, as SB3's separate optimizer does).
    """
    options = {"lr": learning_rate, "eps": eps, "weight_decay": weight_decay}
    try:
        return torch.optim.Adam(parameters, **options, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(parameters, **options)


def index_observations(observations: Any, indices: torch.Tensor) -> Any:
    """Select rows of a batch of observations (tensor or dict of tensors)."""
    if isinstance(observations, dict):
        return {k: v[indices] for k, v in observations.items()}
    return observations[indices]
