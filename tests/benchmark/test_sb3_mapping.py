"""Our configs → SB3: every field checked on the SB3 model actually built from it."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from rlrobot.agents import A2C, PPO, A2CConfig, PPOConfig
from rlrobot.benchmark.sb3 import UNMAPPED_FIELDS, make_sb3_agent, to_sb3
from rlrobot.common.custom_extractor import class_path


class TinyExtractor(BaseFeaturesExtractor):
    """A custom SB3 feature extractor: one linear layer on the flattened observation."""

    def __init__(self, observation_space: gym.spaces.Box, features_dim: int = 4) -> None:
        super().__init__(observation_space, features_dim)
        self.linear = nn.Linear(gym.spaces.flatdim(observation_space), features_dim)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.linear(observations.flatten(1)))


# The network fields of both families (SB3's policy name and policy_kwargs).
NETWORK_VALUES = {
    "critic_net_arch": (24,),
    "policy_name": "MlpPolicy",
    "features_extractor_class": class_path(TinyExtractor),
    "features_extractor_kwargs": {"features_dim": 6},
}


def network_checks(policy, extractor) -> dict:
    return {
        "policy_name": lambda: (
            type(policy).__name__ in ("ActorCriticPolicy", "SACPolicy", "TD3Policy")
        ),
        "features_extractor_class": lambda: isinstance(extractor, TinyExtractor),
        "features_extractor_kwargs": lambda: extractor.features_dim == 6,
    }


# Every field differs from its default, so a field that is dropped or crossed shows up.
ON_POLICY_VALUES = {
    "learning_rate": 1e-3,
    "lr_schedule": "linear",
    "n_steps": 96,
    "gamma": 0.97,
    "gae_lambda": 0.9,
    "ent_coef": 0.01,
    "vf_coef": 0.4,
    "max_grad_norm": 0.7,
    "normalize_advantage": False,
    "net_arch": (32, 16),
    "activation": "relu",
    "ortho_init": False,
    "share_features_extractor": False,
    "log_std_init": -0.5,
    "optimizer": "rmsprop",
    "optimizer_eps": 1e-6,
    "optimizer_weight_decay": 1e-4,
    "normalize_observations": True,
    "normalize_rewards": True,
    "clip_observations": 5.0,
    "log_interval": 3,
    **NETWORK_VALUES,
}
PPO_VALUES = {
    **ON_POLICY_VALUES,
    "batch_size": 48,
    "n_epochs": 3,
    "clip_range": 0.3,
    "clip_range_schedule": "linear",
    "clip_range_vf": 0.25,
    "target_kl": 0.05,
}


def linear_layer_sizes(module: nn.Module) -> list[int]:
    return [layer.out_features for layer in module.modules() if isinstance(layer, nn.Linear)]


def on_policy_checks(model, vec_normalize) -> dict:
    """Field → check on the built SB3 model (the test of the mapping, one entry per field)."""
    policy = model.policy
    return {
        "learning_rate": lambda: model.lr_schedule(1.0) == pytest.approx(1e-3),
        "lr_schedule": lambda: model.lr_schedule(0.25) == pytest.approx(2.5e-4),
        "n_steps": lambda: model.n_steps == 96,
        "gamma": lambda: model.gamma == 0.97,
        "gae_lambda": lambda: model.gae_lambda == 0.9,
        "ent_coef": lambda: model.ent_coef == 0.01,
        "vf_coef": lambda: model.vf_coef == 0.4,
        "max_grad_norm": lambda: model.max_grad_norm == 0.7,
        "normalize_advantage": lambda: model.normalize_advantage is False,
        "net_arch": lambda: linear_layer_sizes(policy.mlp_extractor.policy_net) == [32, 16],
        "critic_net_arch": lambda: linear_layer_sizes(policy.mlp_extractor.value_net) == [24],
        **network_checks(policy, policy.features_extractor),
        "activation": lambda: isinstance(policy.mlp_extractor.policy_net[1], nn.ReLU),
        "ortho_init": lambda: policy.ortho_init is False,
        "share_features_extractor": lambda: (
            policy.vf_features_extractor is not policy.pi_features_extractor
        ),
        "log_std_init": lambda: torch.allclose(policy.log_std, torch.tensor(-0.5)),
        "optimizer": lambda: (
            isinstance(policy.optimizer, torch.optim.RMSprop)
            and policy.optimizer.defaults["alpha"] == 0.99
        ),
        "optimizer_eps": lambda: policy.optimizer.defaults["eps"] == 1e-6,
        "optimizer_weight_decay": lambda: policy.optimizer.defaults["weight_decay"] == 1e-4,
        "normalize_observations": lambda: vec_normalize.norm_obs is True,
        "normalize_rewards": lambda: vec_normalize.norm_reward and vec_normalize.gamma == 0.97,
        "clip_observations": lambda: vec_normalize.clip_obs == 5.0,
    }


def ppo_checks(model, vec_normalize) -> dict:
    return {
        **on_policy_checks(model, vec_normalize),
        "batch_size": lambda: model.batch_size == 48,
        "n_epochs": lambda: model.n_epochs == 3,
        "clip_range": lambda: model.clip_range(1.0) == pytest.approx(0.3),
        "clip_range_schedule": lambda: model.clip_range(0.5) == pytest.approx(0.15),
        "clip_range_vf": lambda: model.clip_range_vf(0.5) == pytest.approx(0.25),
        "target_kl": lambda: model.target_kl == 0.05,
    }


@pytest.mark.parametrize(
    ("algo", "config_class", "values", "checks"),
    [
        ("ppo", PPOConfig, PPO_VALUES, ppo_checks),
        ("a2c", A2CConfig, ON_POLICY_VALUES, on_policy_checks),
    ],
)
def test_every_field_reaches_the_sb3_model(algo, config_class, values, checks):
    config = config_class.from_dict(values)
    agent = make_sb3_agent(algo, config, "Pendulum-v1", {}, n_envs=2, seed=0)
    field_checks = checks(agent.model, agent.vec_normalize)
    # Each field has a check or a documented reason to be left out, nothing else.
    names = set(config_class.field_names())
    assert set(field_checks) | (set(UNMAPPED_FIELDS) & names) == names
    failing = [name for name, check in field_checks.items() if not check()]
    assert failing == []
    assert agent.model.n_envs == 2
    assert agent.model.seed == 0


def test_a2c_optimizer_choice_and_constant_schedules():
    adam = to_sb3("a2c", A2CConfig(optimizer="adam", optimizer_eps=1e-7))
    assert adam.model_kwargs["use_rms_prop"] is False
    assert adam.model_kwargs["policy_kwargs"]["optimizer_class"] is torch.optim.Adam
    assert adam.model_kwargs["policy_kwargs"]["optimizer_kwargs"] == {
        "eps": 1e-7,
        "weight_decay": 0.0,
    }
    assert adam.vec_normalize_kwargs is None
    default = to_sb3("ppo", PPOConfig())
    assert default.algorithm == "PPO"
    assert default.model_kwargs["learning_rate"] == 3e-4  # constant: a plain float
    assert default.model_kwargs["clip_range"] == 0.2
    agent = make_sb3_agent("a2c", A2CConfig(), "CartPole-v1", {}, n_envs=1, seed=0)
    assert isinstance(agent.model.policy.optimizer, torch.optim.RMSprop)
    assert agent.model.policy.optimizer.defaults["eps"] == 1e-5


def test_reinforce_has_no_sb3_counterpart():
    from rlrobot.agents import REINFORCEConfig

    with pytest.raises(KeyError, match="no Stable-Baselines3 counterpart"):
        to_sb3("reinforce", REINFORCEConfig())


@pytest.mark.parametrize(
    ("agent_class", "env_id", "values"),
    [
        (PPO, "Pendulum-v1", {"net_arch": (32, 16)}),
        (A2C, "CartPole-v1", {}),
        (PPO, "rlrobot/Reach-v0", {"net_arch": (16,)}),  # Dict observations
    ],
)
def test_same_network_size_as_ours(agent_class, env_id, values):
    config = agent_class.config_class.from_dict(values)
    ours = agent_class(env_id, seed=0, device="cpu", config=config)
    theirs = make_sb3_agent(agent_class.algorithm, config, env_id, {}, n_envs=1, seed=0)

    def count(module: nn.Module) -> int:
        return sum(p.numel() for p in module.parameters())

    assert count(ours.policy) == count(theirs.model.policy)
    ours.env.close()
    theirs.env.close()


OFF_POLICY_VALUES = {
    "learning_rate": 1e-3,
    "lr_schedule": "linear",
    "buffer_size": 5000,
    "learning_starts": 50,
    "batch_size": 64,
    "tau": 0.01,
    "gamma": 0.95,
    "train_freq": 2,
    "gradient_steps": 3,
    "n_steps": 3,
    "net_arch": (32, 16),
    "activation": "tanh",
    "replay_buffer": "standard",
    "goal_selection_strategy": "final",
    "n_sampled_goal": 2,
    "normalize_observations": True,
    "clip_observations": 5.0,
    "log_interval": 10,
    "n_critics": 3,
    "optimizer_eps": 1e-6,
    "optimizer_weight_decay": 1e-4,
    **NETWORK_VALUES,
}
SAC_VALUES = {
    **OFF_POLICY_VALUES,
    "ent_coef": "auto_0.2",
    "target_entropy": -0.5,
    "action_noise": 0.3,
    "target_update_interval": 2,
}
TD3_VALUES = {
    **OFF_POLICY_VALUES,
    "policy_delay": 3,
    "target_policy_noise": 0.1,
    "target_noise_clip": 0.3,
    "action_noise": 0.2,
}


def off_policy_checks(model, vec_normalize, algo, values) -> dict:
    from stable_baselines3 import HerReplayBuffer

    actor_net = model.actor.latent_pi if algo == "sac" else model.actor.mu
    # HER needs a goal env to build; its fields are checked on the kwargs for SB3.
    her_values = {**values, "replay_buffer": "her", "n_steps": 1}  # HER: one-step returns
    her = to_sb3(algo, type(model_config(algo)).from_dict(her_values))
    with pytest.raises(ValueError, match="no SB3 counterpart"):
        to_sb3(algo, type(model_config(algo)).from_dict({**her_values, "n_steps": 3}))
    return {
        "learning_rate": lambda: model.lr_schedule(1.0) == pytest.approx(1e-3),
        "lr_schedule": lambda: model.lr_schedule(0.25) == pytest.approx(2.5e-4),
        "buffer_size": lambda: model.buffer_size == 5000,
        "learning_starts": lambda: model.learning_starts == 50,
        "batch_size": lambda: model.batch_size == 64,
        "tau": lambda: model.tau == 0.01,
        "gamma": lambda: model.gamma == 0.95,
        "train_freq": lambda: model.train_freq.frequency == 2,
        "gradient_steps": lambda: model.gradient_steps == 3,
        "n_steps": lambda: model.n_steps == 3,
        "net_arch": lambda: linear_layer_sizes(actor_net)[:2] == [32, 16],
        "critic_net_arch": lambda: linear_layer_sizes(model.critic.q_networks[0]) == [24, 1],
        "n_critics": lambda: len(model.critic.q_networks) == 3,
        "optimizer_eps": lambda: all(
            net.optimizer.defaults["eps"] == 1e-6 for net in (model.actor, model.critic)
        ),
        "optimizer_weight_decay": lambda: all(
            net.optimizer.defaults["weight_decay"] == 1e-4 for net in (model.actor, model.critic)
        ),
        **network_checks(model.policy, model.actor.features_extractor),
        "activation": lambda: isinstance(actor_net[1], nn.Tanh),
        "replay_buffer": lambda: (
            model.replay_buffer_class is not HerReplayBuffer
            and her.model_kwargs["replay_buffer_class"] is HerReplayBuffer
        ),
        "goal_selection_strategy": lambda: (
            her.model_kwargs["replay_buffer_kwargs"]["goal_selection_strategy"] == "final"
        ),
        "n_sampled_goal": lambda: her.model_kwargs["replay_buffer_kwargs"]["n_sampled_goal"] == 2,
        "normalize_observations": lambda: (
            vec_normalize.norm_obs is True and vec_normalize.norm_reward is False
        ),
        "clip_observations": lambda: vec_normalize.clip_obs == 5.0,
        "optimize_memory_usage": lambda: model.optimize_memory_usage is False,
    }


def model_config(algo):
    from rlrobot.agents import ALGORITHMS

    return ALGORITHMS[algo].config_class()


def sac_checks(model, vec_normalize) -> dict:
    return {
        **off_policy_checks(model, vec_normalize, "sac", SAC_VALUES),
        "ent_coef": lambda: (
            torch.exp(model.log_ent_coef).item() == pytest.approx(0.2)
            and model.ent_coef_optimizer is not None
        ),
        "target_entropy": lambda: model.target_entropy == -0.5,
        "target_update_interval": lambda: model.target_update_interval == 2,
        "action_noise": lambda: list(model.action_noise._sigma) == [0.3],
    }


def td3_checks(model, vec_normalize) -> dict:
    from stable_baselines3.common.noise import NormalActionNoise

    return {
        **off_policy_checks(model, vec_normalize, "td3", TD3_VALUES),
        "policy_delay": lambda: model.policy_delay == 3,
        "target_policy_noise": lambda: model.target_policy_noise == 0.1,
        "target_noise_clip": lambda: model.target_noise_clip == 0.3,
        "action_noise": lambda: (
            isinstance(model.action_noise, NormalActionNoise)
            and list(model.action_noise._sigma) == [0.2]
        ),
    }


@pytest.mark.parametrize(
    ("algo", "values", "checks"), [("sac", SAC_VALUES, sac_checks), ("td3", TD3_VALUES, td3_checks)]
)
def test_every_off_policy_field_reaches_the_sb3_model(algo, values, checks):
    config_class = type(model_config(algo))
    config = config_class.from_dict(values)
    agent = make_sb3_agent(algo, config, "Pendulum-v1", {}, n_envs=2, seed=0)
    field_checks = checks(agent.model, agent.vec_normalize)
    names = set(config_class.field_names())
    assert set(field_checks) | (set(UNMAPPED_FIELDS) & names) == names
    failing = [name for name, check in field_checks.items() if not check()]
    assert failing == []
    # A fixed α: a float, no α optimizer.
    fixed = to_sb3("sac", config.replace(ent_coef=0.2)) if algo == "sac" else None
    if fixed is not None:
        assert fixed.model_kwargs["ent_coef"] == 0.2
    agent.env.close()


@pytest.mark.parametrize("algo", ["sac", "td3"])
def test_same_off_policy_network_size_as_ours(algo):
    from rlrobot.agents import ALGORITHMS

    config = ALGORITHMS[algo].config_class(net_arch=(32, 16), learning_starts=10)
    ours = ALGORITHMS[algo]("Pendulum-v1", seed=0, device="cpu", config=config)
    theirs = make_sb3_agent(algo, config, "Pendulum-v1", {}, n_envs=1, seed=0)

    def count(*modules: nn.Module) -> int:
        return sum(p.numel() for module in modules for p in module.parameters())

    assert count(ours.actor, ours.critic) == count(theirs.model.actor, theirs.model.critic)
    ours.env.close()
    theirs.env.close()


def test_sb3_argument_forms_reach_sb3_as_they_are():
    from stable_baselines3.common.noise import OrnsteinUhlenbeckActionNoise

    from rlrobot.agents import SAC

    def learning_rate(progress):
        return 1e-3 * (0.5 + progress)

    noise = OrnsteinUhlenbeckActionNoise(np.zeros(1), np.ones(1))
    config = SAC.config_class.from_dict(
        {
            "learning_rate": learning_rate,
            "train_freq": [4, "episode"],
            "action_noise": noise,
            "ent_coef": 0.1,
        }
    )
    kwargs = to_sb3("sac", config).model_kwargs
    assert kwargs["learning_rate"] is learning_rate
    assert kwargs["train_freq"] == (4, "episode")
    assert kwargs["action_noise"] is noise
    assert kwargs["ent_coef"] == 0.1
