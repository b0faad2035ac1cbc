"""Exploration noise objects of SB3's form, accepted as the off-policy agents' ``action_noise``.

SB3's ``NormalActionNoise``, ``OrnsteinUhlenbeckActionNoise`` and ``VectorizedActionNoise`` are
used as they are, by duck typing (``noise()`` returns an array, ``noise.reset()`` starts a new
episode), so this layer needs no SB3 import. As SB3 does, a noise made for one env is copied
once per env when there are several (``PerEnvActionNoise``), so each env's process (an
Ornstein-Uhlenbeck one has memory) is reset at that env's episode ends.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

import numpy as np

from rlrobot.errors import ConfigError


@runtime_checkable
class ActionNoise(Protocol):
    """What an exploration noise provides: a sample and a reset (SB3's ``ActionNoise``)."""

    def __call__(self) -> np.ndarray:
        """Return one sample, ``(action_dim,)`` (or ``(n_envs, action_dim)`` if vectorised)."""

    def reset(self) -> None:
        """Start a new episode (a process with memory forgets it)."""


def is_vectorized(noise: ActionNoise) -> bool:
    """Tell whether ``noise`` holds one process per env (SB3's ``VectorizedActionNoise``)."""
    return hasattr(noise, "noises") and hasattr(noise, "n_envs")


class PerEnvActionNoise:
    """One copy of a single-env noise per env; samples ``(n_envs, action_dim)``."""

    def __init__(self, base_noise: ActionNoise, n_envs: int) -> None:
        self.noises = [copy.deepcopy(base_noise) for _ in range(n_envs)]
        self.n_envs = n_envs

    def __call__(self) -> np.ndarray:
        """Return one sample of every env's noise."""
        return np.stack([noise() for noise in self.noises])

    def reset(self, indices: Iterable[int] | None = None) -> None:
        """Reset the noise of the envs ``indices`` (all by default)."""
        for index in range(self.n_envs) if indices is None else indices:
            self.noises[index].reset()


def make_action_noise(
    noise: ActionNoise, n_envs: int, action_dim: int
) -> ActionNoise | PerEnvActionNoise:
    """Return ``noise`` ready for ``n_envs`` envs, checking a sample's shape and values.

    Raises:
        ConfigError: A vectorised noise for another number of envs, a noise that cannot be
            sampled (SB3's with a negative σ), or samples that are not finite or do not have
            the action's size.
    """
    if is_vectorized(noise):
        if int(noise.n_envs) != n_envs:
            raise ConfigError(
                f"config key 'action_noise': {noise!r} is vectorised for {noise.n_envs} envs, "
                f"the agent has {n_envs}"
            )
    elif n_envs > 1:
        noise = PerEnvActionNoise(noise, n_envs)
    try:
        sample = np.asarray(copy.deepcopy(noise)(), dtype=float)
    except (TypeError, ValueError) as error:  # NumPy: "scale < 0" for a negative σ
        raise ConfigError(
            f"config key 'action_noise': {noise!r} cannot be sampled ({error}); its σ must be "
            "finite numbers >= 0"
        ) from None
    if not np.all(np.isfinite(sample)):
        raise ConfigError(
            f"config key 'action_noise': {noise!r} samples {sample.tolist()!r}, not finite "
            "numbers; its mean and σ must be finite"
        )
    if sample.shape[-1:] != (action_dim,):
        raise ConfigError(
            f"config key 'action_noise': {noise!r} samples shape {sample.shape}, expected "
            f"({action_dim},) for a {action_dim}-D action"
        )
    return noise


def reset_noise_at_episode_ends(noise: Any, episode_ends: np.ndarray) -> None:
    """Reset the noise of the envs whose episode ended (all of it with one env), as SB3 does."""
    for index in np.flatnonzero(episode_ends):
        if is_vectorized(noise):
            noise.reset(indices=[int(index)])
        else:
            noise.reset()


def describe_gaussian_noise(noise: Any) -> float | None:
    """Return σ when ``noise`` is zero-mean Gaussian with one σ for every action, else None.

    That is SB3's ``NormalActionNoise(np.zeros(n), σ · np.ones(n))`` (alone or vectorised),
    the same exploration as ``action_noise=σ``.
    """
    if is_vectorized(noise):
        noise = getattr(noise, "base_noise", None) or noise.noises[0]
    if type(noise).__name__ != "NormalActionNoise":
        return None
    mean, sigma = np.asarray(noise._mu, dtype=float), np.asarray(noise._sigma, dtype=float)
    if mean.size == 0 or np.any(mean != 0) or np.any(sigma != sigma.flat[0]):
        return None
    return float(sigma.flat[0])
