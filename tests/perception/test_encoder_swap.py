"""A pretrained perception CNN becomes a PPO agent's image encoder, frozen or fine-tuned."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlrobot.agents import PPO
from rlrobot.perception.models import ModelSpec, PerceptionModel, load_encoder, save_model

PIXELS = {"obs_mode": "pixels", "pixels_width": 84, "pixels_height": 84}


@pytest.mark.parametrize("architecture", ["nature_cnn", "residual_cnn"])
@pytest.mark.parametrize("freeze", [True, False])
def test_pretrained_encoder_in_ppo_one_training_step(
    architecture: str, freeze: bool, tmp_path
) -> None:
    torch.manual_seed(0)
    pretrained = PerceptionModel(
        ModelSpec(architecture, "regression", (84, 84, 3), 1, features_dim=32, channels=(8, 8))
    )
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
    # The agent sees what the pretrained model sees: same features for the same image.
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
