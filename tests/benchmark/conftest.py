"""Fixtures of the benchmark tests."""

import pytest


@pytest.fixture
def tiny_bench_argv() -> list[str]:
    """``rlrobot bench`` arguments of the tiny bench (without ``--out``).

    Two seeds, 256 steps, ours and SB3's PPO on our CartPole: 4 trials of a few seconds.
    """
    return [
        "bench",
        "--envs",
        "rlrobot/CartPole-v0",
        "--algos",
        "ppo",
        "--seeds",
        "2",
        "--steps",
        "256",
        "--n-envs",
        "1",
        "--set",
        "ppo:n_steps=64",
        "--set",
        "ppo:batch_size=64",
        "--set",
        "n_epochs=2",
        "--eval-interval",
        "128",
        "--eval-episodes",
        "2",
        "--workers",
        "2",
    ]
