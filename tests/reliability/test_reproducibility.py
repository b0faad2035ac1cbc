"""Same seed, same machine, same thread count → identical returns and identical checkpoints.

Every algorithm trains twice from the same seed on the CPU; the episode returns and every tensor
of the checkpoints (weights, optimizer moments, normaliser statistics, RNG states) must be
bit-identical, and a different seed must give different weights. What holds across thread
counts and machines is measured by ``rlrobot bench --study soak`` and reported in
``docs/reliability.md``.
"""

from __future__ import annotations

import json

import pytest
import torch

from rlrobot.agents import ALGORITHMS
from rlrobot.common.checkpoint import load_checkpoint
from tests.reliability.small_runs import make_small_agent

STEPS = 256


def _train(algo: str, seed: int, path, torch_threads: int = 1) -> list[float]:
    """Train a small agent into checkpoint ``path``; return its finished episodes' returns."""
    agent = make_small_agent(
        algo, seed=seed, n_envs=2, normalize_observations=True, torch_threads=torch_threads
    )
    agent.learn(STEPS)
    path.mkdir()  # a checkpoint directory, whose metadata.json the test reads
    agent.save(path)
    agent.env.close()
    return list(agent.episode_tracker.recent_returns)


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_same_seed_gives_identical_returns_and_checkpoints(algo, tmp_path):
    first = _train(algo, 7, tmp_path / "first")
    second = _train(algo, 7, tmp_path / "second")
    _train(algo, 8, tmp_path / "other")
    assert len(first) >= 3 and first == second
    hashes = {
        name: json.loads((tmp_path / name / "metadata.json").read_text())["tensors_sha256"]
        for name in ("first", "second", "other")
    }
    assert hashes["first"] == hashes["second"]  # every tensor byte, RNG states included
    assert hashes["first"] != hashes["other"]
    first_tensors, _ = load_checkpoint(tmp_path / "first")
    other_tensors, _ = load_checkpoint(tmp_path / "other")
    weights = [key for key in first_tensors if not key.startswith("state/")]
    assert any(not torch.equal(first_tensors[key], other_tensors[key]) for key in weights)


def test_two_threads_are_reproducible_among_themselves(tmp_path):
    runs = [_train("ppo", 7, tmp_path / str(index), torch_threads=2) for index in range(2)]
    assert runs[0] == runs[1]
    tensors = [load_checkpoint(tmp_path / str(index))[0] for index in range(2)]
    assert all(torch.equal(tensors[0][key], tensors[1][key]) for key in tensors[0])
