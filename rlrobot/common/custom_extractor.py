"""SB3-style feature extractors a user brings: ``cls(observation_space, **kwargs)``.

SB3's ``BaseFeaturesExtractor`` contract, kept here so that a user's class written for SB3
runs unchanged inside our policies: it is built on the observation space as SB3 passes it
(channels-first images), fed observations preprocessed as SB3 does, and has an int attribute
``features_dim``. Checkpoints name the class ``"module:qualname"`` (JSON, no pickle).
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlrobot.common.networks import (
    ImagePreprocess,
    OneHotExtractor,
    is_channels_last,
    is_image_space,
)
from rlrobot.errors import UnsupportedEnvError


def channels_first_space(observation_space: gym.Space) -> gym.Space:
    """Return the space with HWC uint8 images made CHW (per key of a ``Dict``), as SB3 sees it.

    SB3 wraps image envs in ``VecTransposeImage``, so its feature extractors are built on, and
    fed, channels-first images.
    """
    if isinstance(observation_space, gym.spaces.Dict):
        return gym.spaces.Dict(
            {key: channels_first_space(space) for key, space in observation_space.spaces.items()}
        )
    if is_image_space(observation_space) and is_channels_last(observation_space.shape):
        height, width, channels = observation_space.shape
        return gym.spaces.Box(0, 255, (channels, height, width), dtype=np.uint8)
    return observation_space


class SB3Preprocess(nn.Module):
    """SB3's ``preprocess_obs``: images to float CHW in [0, 1], Discrete one-hot, Box as float."""

    def __init__(self, observation_space: gym.Space) -> None:
        super().__init__()
        if isinstance(observation_space, gym.spaces.Dict):
            self.keys = sorted(observation_space.spaces)
            self.parts = nn.ModuleDict(
                {key: SB3Preprocess(observation_space[key]) for key in self.keys}
            )
        elif is_image_space(observation_space):
            self.part: nn.Module = ImagePreprocess(is_channels_last(observation_space.shape))
        elif isinstance(observation_space, gym.spaces.Discrete):
            self.part = OneHotExtractor(observation_space)
        elif isinstance(observation_space, gym.spaces.Box):
            self.part = nn.Identity()
        else:
            raise UnsupportedEnvError(
                f"unsupported observation space {observation_space}; "
                "use Box, Discrete, uint8 images or a Dict of those"
            )

    def forward(self, observations: Any) -> Any:
        """Return the preprocessed tensor (or dict of tensors)."""
        if isinstance(observations, dict):
            return {key: self.parts[key](observations[key]) for key in self.keys}
        return self.part(observations).float()


class CustomExtractor(nn.Module):
    """A user's SB3-style feature extractor: ``extractor_class(observation_space, **kwargs)``.

    SB3's ``BaseFeaturesExtractor`` contract: built on the observation space as SB3 passes it
    (channels-first images), fed preprocessed observations (``SB3Preprocess``), and has an int
    attribute ``features_dim``.

    Raises:
        TypeError: The built extractor has no int ``features_dim``.
    """

    def __init__(
        self,
        observation_space: gym.Space,
        extractor_class: type[nn.Module],
        extractor_kwargs: dict[str, Any],
    ) -> None:
        super().__init__()
        self.preprocess = SB3Preprocess(observation_space)
        self.extractor = extractor_class(
            channels_first_space(observation_space), **extractor_kwargs
        )
        features_dim = getattr(self.extractor, "features_dim", None)
        if not isinstance(features_dim, int) or isinstance(features_dim, bool):
            raise TypeError(
                f"features_extractor_class {extractor_class.__qualname__} must set an int "
                f"attribute features_dim (SB3's BaseFeaturesExtractor), got {features_dim!r}"
            )
        self.features_dim = features_dim

    def forward(self, observations: Any) -> torch.Tensor:
        """Map a batch of observations to ``(batch, features_dim)``."""
        return self.extractor(self.preprocess(observations))


# Modules a checkpoint may name for import: ours and SB3's. Any other module must already be
# imported (by the script that defines the class), so loading a checkpoint runs no new code.
_IMPORTABLE_CLASS_MODULES = ("rlrobot", "stable_baselines3")


def class_path(cls: type) -> str:
    """Return ``"module:qualname"`` of a class, the JSON form checkpoints store it in."""
    return f"{cls.__module__}:{cls.__qualname__}"


def resolve_module_class(path: str, key: str) -> type[nn.Module]:
    """Return the ``nn.Module`` subclass that ``class_path`` named ``path``.

    Args:
        path: ``"module:qualname"``.
        key: The config key it came from, for the messages.

    Raises:
        ValueError: Malformed path, a module not imported (outside rlrobot and SB3), no such
            attribute, or not an ``nn.Module`` subclass.
    """
    module_name, _, qualname = path.partition(":")
    if not module_name or not qualname:
        raise ValueError(f"config key {key!r}: expected 'module:qualname', got {path!r}")
    module = sys.modules.get(module_name)
    if module is None and module_name.split(".")[0] in _IMPORTABLE_CLASS_MODULES:
        with contextlib.suppress(ImportError):  # reported below
            module = importlib.import_module(module_name)
    if module is None:
        raise ValueError(
            f"config key {key!r}: module {module_name!r} of {path!r} is not imported; import "
            "it before loading (a checkpoint never imports modules outside rlrobot and SB3)"
        )
    value: Any = module
    for part in qualname.split("."):
        value = getattr(value, part, None)
    if not (isinstance(value, type) and issubclass(value, nn.Module)):
        raise ValueError(f"config key {key!r}: {path!r} is not a torch.nn.Module subclass")
    return value
