"""Small datasets shared by the perception tests (collected once per session)."""

from __future__ import annotations

import pytest

from rlrobot.perception.collect import collect_event_windows, collect_images
from rlrobot.perception.dataset import Dataset
from rlrobot.perception.labels import LabelSource

CART_POSITION = LabelSource(lambda env: env.get_proprioception()[:1], "m", "cart position x")


@pytest.fixture(scope="session")
def cart_position_label() -> LabelSource:
    """The CartPole cart position (m) as an image label."""
    return CART_POSITION


@pytest.fixture(scope="session")
def cart_images() -> Dataset:
    """~280 CartPole images 84×84 labelled with the cart position (m), widely spread starts."""
    return collect_images(
        "rlrobot/CartPole-v0",
        n_episodes=120,
        labels={"cart_position": CART_POSITION},
        frame_interval=1,
        max_steps=2,
        env_kwargs={"reset_noise": 0.5, "obs_mode": "state"},  # rendered: a larger cart
        seed=0,
    )


@pytest.fixture(scope="session")
def cart_windows() -> Dataset:
    """Windows of CartPole state before a termination (the pole falls), random policy."""
    return collect_event_windows(
        "rlrobot/CartPole-v0", n_episodes=100, event_key=None, window=8, horizon=5, seed=0
    )
