"""Stress inputs for robustness checks of any env: extreme randomisation and extreme actions.

The reliability tests and the soak study (``rlrobot bench --study soak``) drive every rlrobot
env with them; they work on third-party envs too (``extreme_actions`` needs only a Box or
Discrete action space).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import numpy as np

# Far outside DomainRandomization.default(): near-massless to 20× heavier links, no to 10×
# friction, dead to 10× strong motors, observation noise of 1 unit, up to 5 steps of lag.
EXTREME_RANDOMIZATION: dict[str, Any] = {
    "mass_scale": (0.05, 20.0),
    "friction_scale": (0.0, 10.0),
    "actuator_scale": (0.0, 10.0),
    "observation_noise": 1.0,
    "action_latency": (0, 5),
}


def extreme_actions(space: gym.Space, rng: np.random.Generator) -> Iterator[Any]:
    """Yield bang-bang actions at the bounds, far outside them, and uniform ones, at random.

    Args:
        space: A ``Box`` or ``Discrete`` action space.
        rng: Source of randomness.
    """
    while True:
        if isinstance(space, gym.spaces.Discrete):
            yield int(space.start + rng.integers(space.n))
            continue
        kind = rng.integers(3)
        if kind == 0:
            yield np.where(rng.random(space.shape) < 0.5, space.low, space.high)
        elif kind == 1:
            yield rng.choice([-1e9, 1e9], size=space.shape)
        else:
            yield rng.uniform(space.low, space.high)
