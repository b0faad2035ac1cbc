"""A pretrained perception CNN (supervised, or a VAE's encoder) becomes an agent's image encoder,
frozen or fine-tuned."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlrobot.agents import PPO
from rlrobot.perception.models import (
    LatentEncoder,
    ModelSpec,
    load_encoder,
    make_model,
    save_model,
)

PIXELS = {"obs_mode": "pixels", "pixels_width": 84, "pixels_height": 84}
# (architecture, task, output_dim): two supervised CNNs and a β-VAE with 32 latent dimensions.
PRETRAINED = {
    "nature_cnn": ("nature_cnn", "regression", 1),
    "residual_cnn": ("residual_cnn", "regression", 1),
    "vae": ("nature_cnn", "reconstruction", 32),
}


def pretrained_model(name: str, features_dim: int = 32) -> torch.nn.Module:
    """A small untrained model of ``PRETRAINED[name]`` on 84×84 images."""
    architecture, task, output_dim = PRETRAINED[name]
    spec = ModelSpec(
        architecture,
        task,
        (84, 84, 3),
        output_dim,
        features_dim=features_dim,
        channels=(8, 8),
        variational=task == "reconstruction",
        beta=4.0 if task == "reconstruction" else 1.0,
    )
    return make_model(spec)


@pytest.mark.parametrize("name", sorted(PRETRAINED))
@pytest.mark.parametrize("freeze", [True, False])
def test_pretrained_encoder_in_ppo_one_training_step(name: str, freeze: bool, tmp_path) -> None:
    torch.manual_seed(0)
    pretrained = pretrained_model(name)
    save_model(pretrained, tmp_path / "encoder")
    env = gym.make("rlrobot/CartPole-v0", **PIXELS)
    observation, _ = env.reset(seed=0)
    encoder = load_encoder(tmp_path / "encoder", env.observation_space)
    env.close()

    agent = PPO(
        "rlrobot/CartPole-v0",
        env_kwargs=PIXELS,
        image_encoder=encoder,
        freeze_encoder=freeze,
        n_steps=16,
        batch_size=16,
        n_epochs=1,
        seed=0,
        device="cpu",
    )
    extractor = agent.policy.features_extractor
    assert extractor.encoder is encoder and extractor.features_dim == 32
    # The agent sees what the pretrained model sees: same features (a VAE's: the posterior
    # mean) for the same image.
    images = torch.as_tensor(observation[None])
    with torch.no_grad():
        expected = pretrained.encoder(pretrained.preprocess(images))
        torch.testing.assert_close(extractor(images), expected)
    optimized = {id(p) for group in agent.optimizer.param_groups for p in group["params"]}
    assert all((id(p) in optimized) != freeze for p in encoder.parameters())

    encoder_before = {k: v.clone() for k, v in encoder.state_dict().items()}
    actor_before = [p.detach().clone() for p in agent.policy.actor.parameters()]
    agent.learn(total_timesteps=16)

    encoder_changed = any(
        not torch.equal(encoder_before[k], v) for k, v in encoder.state_dict().items()
    )
    assert encoder_changed is not freeze
    actor_after = list(agent.policy.actor.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(actor_before, actor_after, strict=True))
    action, _ = agent.predict(observation, deterministic=True)
    assert np.ndim(action) == 0 and int(action) in (0, 1)


@pytest.fixture(params=["nature_cnn", "vae"])
def frozen_encoder_path(request, tmp_path):
    """A small pretrained perception checkpoint for 84×84 images: supervised or a β-VAE."""
    torch.manual_seed(1)
    save_model(pretrained_model(request.param, features_dim=16), tmp_path / "encoder")
    return tmp_path / "encoder"


def _pixel_reach_observations(n: int) -> dict[str, np.ndarray]:
    env = gym.make("rlrobot/Reach-v0", **PIXELS)
    observations = [env.reset(seed=seed)[0] for seed in range(n)]
    env.close()
    return {key: np.stack([o[key] for o in observations]) for key in observations[0]}


@pytest.mark.parametrize("algorithm", ["ppo", "sac", "td3"])
def test_agent_with_pretrained_frozen_encoder_saves_and_loads(
    algorithm: str, frozen_encoder_path, tmp_path
) -> None:
    from rlrobot.agents import ALGORITHMS, BaseAgent

    env = gym.make("rlrobot/Reach-v0", **PIXELS)
    space = env.observation_space
    env.close()
    encoder = load_encoder(frozen_encoder_path, space)
    frozen_weights = {k: v.clone() for k, v in encoder.state_dict().items()}
    small = (
        {"n_steps": 16, "batch_size": 16, "n_epochs": 1}
        if algorithm == "ppo"
        else {"learning_starts": 8, "batch_size": 8, "net_arch": (32, 32), "buffer_size": 64}
    )
    agent = ALGORITHMS[algorithm](
        "rlrobot/Reach-v0",
        env_kwargs=PIXELS,
        image_encoder=encoder,
        freeze_encoder=True,
        seed=0,
        device="cpu",
        **small,
    )
    modules_before = {
        name: {k: v.clone() for k, v in module.state_dict().items()}
        for name, module in agent.modules().items()
    }
    agent.learn(total_timesteps=16)  # PPO: one rollout and update; SAC/TD3: 8 gradient steps
    changed = [
        name
        for name, module in agent.modules().items()
        if any(not torch.equal(modules_before[name][k], v) for k, v in module.state_dict().items())
    ]
    assert changed, "one training step changed no weights"
    assert all(torch.equal(frozen_weights[k], v) for k, v in encoder.state_dict().items())

    agent.save(tmp_path / "agent")
    agent.env.close()
    loaded = BaseAgent.load(tmp_path / "agent")  # no encoder given: rebuilt from the metadata
    assert type(loaded) is type(agent)
    extractor = loaded.modules()["policy" if algorithm == "ppo" else "actor"].features_extractor
    assert extractor.extractors["pixels"].freeze
    loaded_encoder = extractor.extractors["pixels"].encoder
    assert loaded_encoder is not encoder and type(loaded_encoder) is type(encoder)
    assert isinstance(encoder, LatentEncoder) == (encoder.features_dim == 32)
    assert all(not p.requires_grad for p in loaded_encoder.parameters())
    observations = _pixel_reach_observations(4)
    expected, _ = agent.predict(observations, deterministic=True)
    actions, _ = loaded.predict(observations, deterministic=True)
    np.testing.assert_array_equal(actions, expected)
