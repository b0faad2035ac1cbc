"""SB3's constructor, run with SB3's classes and with ours: positional policy, policy_kwargs,
the common arguments, and the errors for what does not fit or is not supported."""

import sys

import gymnasium as gym
import numpy as np
import pytest
import stable_baselines3
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from rlrobot import agents
from rlrobot.common.custom_extractor import CustomExtractor, resolve_module_class
from rlrobot.common.evaluation import evaluate_policy
from rlrobot.common.networks import FlattenExtractor
from rlrobot.errors import ConfigError

# Small budgets: one rollout / a few gradient steps.
SMALL = {
    "PPO": {"n_steps": 64, "batch_size": 32, "n_epochs": 2},
    "A2C": {"n_steps": 8},
    "REINFORCE": {"n_steps": 64},
    "SAC": {"learning_starts": 32, "batch_size": 32, "buffer_size": 1000},
    "TD3": {"learning_starts": 32, "batch_size": 32, "buffer_size": 1000},
}
ENVS = {"PPO": "CartPole-v1", "A2C": "CartPole-v1", "REINFORCE": "CartPole-v1"}
ALGORITHMS = ["PPO", "A2C", "REINFORCE", "SAC", "TD3"]
LIBRARIES = [stable_baselines3, agents]


def libraries_of(name: str) -> list:
    """Both libraries where SB3 has the algorithm; ours alone for REINFORCE."""
    return [lib for lib in LIBRARIES if hasattr(lib, name)]


def observations_of(env_id: str, n: int = 8) -> np.ndarray:
    space = gym.make(env_id).observation_space
    space.seed(0)
    return np.stack([space.sample() for _ in range(n)])


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(
    ("library", "name"),
    [(library, name) for name in ALGORITHMS for library in libraries_of(name)],
    ids=lambda value: getattr(value, "__name__", value),
)
def test_the_positional_policy_form_constructs_learns_predicts_and_round_trips(
    library, name, tmp_path
):
    env_id = ENVS.get(name, "Pendulum-v1")
    model = getattr(library, name)(
        "MlpPolicy", gym.make(env_id), seed=0, device="cpu", **SMALL[name]
    )
    model.learn(total_timesteps=64)
    observations = observations_of(env_id)
    actions, state = model.predict(observations, deterministic=True)
    assert state is None
    assert actions.shape[0] == len(observations)
    model.save(tmp_path / "model")
    saved = tmp_path / ("model.zip" if library is stable_baselines3 else "model")
    loaded = getattr(library, name).load(saved, device="cpu")
    np.testing.assert_array_equal(loaded.predict(observations, deterministic=True)[0], actions)


def test_our_first_positional_env_keeps_working():
    agent = agents.PPO("CartPole-v1", seed=0, device="cpu", n_steps=64, batch_size=32)
    assert agent.config.policy_name == "auto"
    assert agents.PPO(policy="MlpPolicy", env="CartPole-v1", device="cpu").config.policy_name == (
        "MlpPolicy"
    )


@pytest.mark.parametrize("library", LIBRARIES, ids=["sb3", "rlrobot"])
def test_on_policy_policy_kwargs_build_the_same_networks(library):
    policy_kwargs = {
        "net_arch": {"pi": [32], "vf": [16, 16]},
        "activation_fn": nn.ReLU,
        "ortho_init": False,
        "log_std_init": -1.0,
        "optimizer_class": torch.optim.RMSprop,
        "optimizer_kwargs": {"eps": 1e-6, "alpha": 0.99, "weight_decay": 0.0},
        "share_features_extractor": True,
    }
    model = library.PPO(
        "MlpPolicy", "Pendulum-v1", policy_kwargs=policy_kwargs, device="cpu", seed=0
    )
    optimizer = model.policy.optimizer if library is stable_baselines3 else model.optimizer
    assert isinstance(optimizer, torch.optim.RMSprop)
    assert optimizer.defaults["eps"] == 1e-6
    assert torch.allclose(
        dict(model.policy.named_parameters())[
            "log_std" if library is stable_baselines3 else "action_head.log_std"
        ],
        torch.tensor(-1.0),
    )
    activations = [m for m in model.policy.modules() if isinstance(m, (nn.ReLU, nn.Tanh))]
    assert activations and all(isinstance(m, nn.ReLU) for m in activations)
    # pi: 3→32 + 32→1 (+ log_std); vf: 3→16→16 + 16→1.
    assert count_parameters(model.policy) == (3 * 32 + 32) + (32 + 1) + 1 + (
        3 * 16 + 16 + 16 * 16 + 16 + 17
    )


@pytest.mark.parametrize("library", LIBRARIES, ids=["sb3", "rlrobot"])
@pytest.mark.parametrize("name", ["SAC", "TD3"])
def test_off_policy_policy_kwargs_build_the_same_critics(library, name):
    policy_kwargs = {"net_arch": {"pi": [32], "qf": [16]}, "n_critics": 3}
    model = getattr(library, name)(
        "MlpPolicy", "Pendulum-v1", policy_kwargs=policy_kwargs, device="cpu", seed=0
    )
    # Three Q-networks on (obs 3 + action 1): 4→16→1 each.
    assert count_parameters(model.critic) == 3 * (4 * 16 + 16 + 16 + 1)


class SmallExtractor(BaseFeaturesExtractor):
    """SB3's documented custom-extractor shape: built from the space, sets features_dim."""

    def __init__(self, observation_space: gym.spaces.Box, features_dim: int = 8) -> None:
        super().__init__(observation_space, features_dim)
        self.linear = nn.Sequential(nn.Linear(observation_space.shape[0], features_dim), nn.ReLU())

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.linear(observations)


@pytest.mark.parametrize("name", ["PPO", "SAC"])
@pytest.mark.parametrize("library", LIBRARIES, ids=["sb3", "rlrobot"])
def test_a_custom_features_extractor_trains_and_round_trips(library, name, tmp_path):
    env_id = ENVS.get(name, "Pendulum-v1")
    policy_kwargs = {
        "features_extractor_class": SmallExtractor,
        "features_extractor_kwargs": {"features_dim": 12},
    }
    model = getattr(library, name)(
        "MlpPolicy", env_id, policy_kwargs=policy_kwargs, device="cpu", seed=0, **SMALL[name]
    )
    model.learn(64)
    # Our SAC's networks are its actor and critic (``policy`` is the SB3-surface part of #19).
    networks = [model.policy] if hasattr(model, "policy") else [model.actor, model.critic]
    extractors = [m for net in networks for m in net.modules() if isinstance(m, SmallExtractor)]
    assert extractors and all(m.features_dim == 12 for m in extractors)
    observations = observations_of(env_id)
    actions, _ = model.predict(observations, deterministic=True)
    model.save(tmp_path / "model")
    saved = tmp_path / ("model.zip" if library is stable_baselines3 else "model")
    loaded = getattr(library, name).load(saved, device="cpu")
    np.testing.assert_array_equal(loaded.predict(observations, deterministic=True)[0], actions)


def test_a_checkpoint_names_its_extractor_class_and_never_imports_unknown_modules():
    assert resolve_module_class(f"{__name__}:SmallExtractor", "key") is SmallExtractor
    with pytest.raises(ValueError, match="is not imported"):
        resolve_module_class("surely_not_imported_module:Extractor", "features_extractor_class")
    with pytest.raises(ValueError, match=r"not a torch\.nn\.Module subclass"):
        resolve_module_class("os:system", "features_extractor_class")
    with pytest.raises(ConfigError, match="is not imported"):
        agents.PPO(
            "CartPole-v1", device="cpu", features_extractor_class="surely_not_imported:Extractor"
        )


def test_an_extractor_without_features_dim_is_refused():
    class NoDim(nn.Module):
        def __init__(self, observation_space: gym.Space) -> None:
            super().__init__()

    with pytest.raises(TypeError, match="features_dim"):
        CustomExtractor(gym.spaces.Box(-1, 1, (3,)), NoDim, {})


def test_mlp_policy_flattens_images_scaled_to_unit_range():
    image = gym.spaces.Box(0, 255, (8, 8, 3), np.uint8)
    actions = gym.spaces.Discrete(2)
    kwargs = {"observation_space": image, "action_space": actions, "device": "cpu"}
    mlp = agents.PPO("MlpPolicy", **kwargs)
    assert isinstance(mlp.policy.features_extractor, FlattenExtractor)
    assert mlp.policy.features_extractor.scale == pytest.approx(1 / 255)
    assert mlp.predict(image.sample())[0] in (0, 1)
    cnn = agents.PPO(
        "CnnPolicy",
        **{**kwargs, "observation_space": gym.spaces.Box(0, 255, (40, 40, 3), np.uint8)},
    )
    assert type(cnn.policy.features_extractor).__name__ == "NatureCNN"


@pytest.mark.parametrize(
    ("policy", "space", "message"),
    [
        ("CnnPolicy", gym.spaces.Box(-1, 1, (4,)), "needs image observations"),
        ("MultiInputPolicy", gym.spaces.Box(-1, 1, (4,)), "needs a Dict observation space"),
        ("MlpPolicy", gym.spaces.Dict({"a": gym.spaces.Box(-1, 1, (2,))}), "use MultiInputPolicy"),
        ("CnnPolicy", gym.spaces.Dict({"a": gym.spaces.Box(-1, 1, (2,))}), "use MultiInputPolicy"),
    ],
)
def test_a_policy_name_that_does_not_fit_the_space_is_refused(policy, space, message):
    with pytest.raises(ConfigError, match=message):
        agents.PPO(policy, observation_space=space, action_space=gym.spaces.Discrete(2))


def test_sb3_refuses_the_same_policy_names():
    with pytest.raises((ValueError, AssertionError)):
        stable_baselines3.PPO("CnnPolicy", "CartPole-v1", device="cpu")
    with pytest.raises(ConfigError, match="needs image observations"):
        agents.PPO("CnnPolicy", "CartPole-v1", device="cpu")


def test_policy_name_errors():
    with pytest.raises(ConfigError, match=r"PPO\('MlpPolicy'\) has no env"):
        agents.PPO("MlpPolicy")
    with pytest.raises(ConfigError, match="is not one of"):
        agents.PPO("NotAPolicy", "CartPole-v1")
    with pytest.raises(ConfigError, match="policy classes are not supported"):
        agents.PPO(nn.Module, "CartPole-v1")


@pytest.mark.parametrize(
    ("name", "arguments", "key"),
    [
        ("PPO", {"use_sde": True}, "use_sde"),
        ("PPO", {"sde_sample_freq": 4}, "sde_sample_freq"),
        ("A2C", {"rollout_buffer_class": object}, "rollout_buffer_class"),
        ("SAC", {"use_sde_at_warmup": True}, "use_sde_at_warmup"),
    ],
)
def test_an_unsupported_sb3_argument_is_named_without_a_did_you_mean(name, arguments, key):
    with pytest.raises(ConfigError, match=f"'{key}'.* is not supported") as error:
        getattr(agents, name)("MlpPolicy", ENVS.get(name, "Pendulum-v1"), device="cpu", **arguments)
    assert "did you mean" not in str(error.value)


@pytest.mark.parametrize(
    ("name", "key", "owners"),
    [
        ("PPO", "buffer_size", "SAC, TD3"),
        ("SAC", "n_epochs", "PPO"),
        ("TD3", "ent_coef", "A2C, PPO, SAC"),
    ],
)
def test_an_argument_of_another_sb3_algorithm_is_named_so(name, key, owners):
    with pytest.raises(
        ConfigError, match=f"'{key}' is an argument of SB3's {owners}, not of"
    ) as error:
        getattr(agents, name)("MlpPolicy", ENVS.get(name, "Pendulum-v1"), **{key: 1})
    assert "did you mean" not in str(error.value)


def test_sb3_defaults_of_unsupported_arguments_are_accepted():
    agent = agents.PPO("MlpPolicy", "CartPole-v1", use_sde=False, sde_sample_freq=-1, device="cpu")
    assert agent.config.policy_name == "MlpPolicy"


def test_a2c_rmsprop_arguments_are_converted():
    agent = agents.A2C(
        "MlpPolicy", "CartPole-v1", use_rms_prop=False, rms_prop_eps=1e-7, device="cpu"
    )
    assert (agent.config.optimizer, agent.config.optimizer_eps) == ("adam", 1e-7)


@pytest.mark.parametrize(
    ("name", "policy_kwargs", "message"),
    [
        ("PPO", {"activation_fn": nn.Hardswish}, "activation_fn"),
        ("PPO", {"share_features_extractor": 0}, "share_features_extractor"),
        ("PPO", {"net_arch": {"pi": [8], "qf": [8]}}, "net_arch"),
        ("PPO", {"optimizer_class": torch.optim.SGD}, "optimizer_class"),
        ("PPO", {"optimizer_kwargs": {"betas": (0.9, 0.9)}}, "betas"),
        ("PPO", {"squash_output": True}, "squash_output"),
        ("SAC", {"log_std_init": -2.0}, "use_sde"),
        ("SAC", {"share_features_extractor": True}, "share_features_extractor"),
        ("TD3", {"optimizer_kwargs": {"amsgrad": True}}, "amsgrad"),
        ("PPO", {"features_extractor_kwargs": {"features_dim": 3}}, "FlattenExtractor"),
    ],
)
def test_policy_kwargs_we_cannot_honour_are_refused(name, policy_kwargs, message):
    with pytest.raises(ConfigError, match=message):
        getattr(agents, name)(
            "MlpPolicy", ENVS.get(name, "Pendulum-v1"), device="cpu", policy_kwargs=policy_kwargs
        )


def test_verbose_prints_the_device_and_the_statistics(capsys):
    agent = agents.PPO(
        "MlpPolicy", "CartPole-v1", verbose=1, device="cpu", n_steps=64, batch_size=32
    )
    assert "Using cpu device" in capsys.readouterr().out
    agent.learn(64)
    assert "time/fps" in capsys.readouterr().out
    silent = agents.PPO("MlpPolicy", "CartPole-v1", device="cpu", n_steps=64, batch_size=32)
    silent.learn(64)
    assert capsys.readouterr().out == ""
    with pytest.raises(ConfigError, match="verbose"):
        agents.PPO("MlpPolicy", "CartPole-v1", verbose=3)


@pytest.mark.parametrize("library", LIBRARIES, ids=["sb3", "rlrobot"])
def test_tensorboard_log_follows_sb3s_run_names(library, tmp_path):
    model = library.PPO(
        "MlpPolicy",
        "CartPole-v1",
        tensorboard_log=str(tmp_path),
        device="cpu",
        n_steps=64,
        batch_size=32,
    )
    model.learn(64, reset_num_timesteps=True)
    model.learn(64, reset_num_timesteps=True)  # a new run
    model.learn(64, reset_num_timesteps=False)  # continues the latest run
    assert sorted(p.name for p in tmp_path.iterdir()) == ["PPO_1", "PPO_2"]
    assert all(any(p.glob("events.out.tfevents.*")) for p in tmp_path.iterdir())


def test_stats_window_size_and_seed():
    agent = agents.PPO("MlpPolicy", "CartPole-v1", stats_window_size=5, device="cpu", seed=3)
    assert agent.episode_tracker.recent_returns.maxlen == 5
    twin = agents.PPO("MlpPolicy", "CartPole-v1", device="cpu", seed=3)
    observations = observations_of("CartPole-v1")
    np.testing.assert_array_equal(
        agent.predict(observations, deterministic=True)[0],
        twin.predict(observations, deterministic=True)[0],
    )
    with pytest.raises(ConfigError, match="stats_window_size"):
        agents.PPO("MlpPolicy", "CartPole-v1", stats_window_size=0)


@pytest.mark.parametrize("library", LIBRARIES, ids=["sb3", "rlrobot"])
def test_init_setup_model_false_builds_nothing_until_setup_model(library):
    model = library.PPO(
        "MlpPolicy", "CartPole-v1", _init_setup_model=False, device="cpu", n_steps=64, batch_size=32
    )
    assert getattr(model, "policy", None) is None
    model._setup_model()
    model.learn(64)
    assert model.policy is not None


def test_loading_an_extractor_whose_module_is_not_imported_is_refused(tmp_path, monkeypatch):
    policy_kwargs = {"features_extractor_class": SmallExtractor}
    agents.PPO("MlpPolicy", "CartPole-v1", policy_kwargs=policy_kwargs, device="cpu").save(
        tmp_path / "model"
    )
    # As in a fresh process that never imported the module defining the class.
    monkeypatch.delitem(sys.modules, __name__)
    with pytest.raises(ConfigError, match="is not imported; import it before loading"):
        agents.PPO.load(tmp_path / "model", device="cpu")


def test_an_extractor_class_must_be_nameable():
    class Local(SmallExtractor):
        pass

    with pytest.raises(ConfigError, match="module level"):
        agents.PPO("MlpPolicy", "CartPole-v1", policy_kwargs={"features_extractor_class": Local})
    with pytest.raises(ConfigError, match="module:qualname"):
        agents.PPOConfig.from_dict({"features_extractor_class": "../escaped"})


def test_sb3s_form_with_policy_kwargs_learns_cartpole():
    """SB3's constructor form trains for real: an actor and a critic of their own sizes.

    Lowest mean return over 8 training seeds (10 evaluation episodes): 418; untrained: 14.
    """
    policy_kwargs = {"net_arch": {"pi": [32], "vf": [64, 64]}, "activation_fn": nn.ReLU}
    agent = agents.PPO(
        "MlpPolicy",
        "CartPole-v1",
        policy_kwargs=policy_kwargs,
        seed=0,
        device="cpu",
        n_envs=8,
        n_steps=32,
        batch_size=256,
        n_epochs=20,
        gamma=0.98,
        gae_lambda=0.8,
        learning_rate=1e-3,
    ).learn(30_000)
    result = evaluate_policy(agent, gym.make("CartPole-v1"), 10, seed=1000)
    mean = result.summary()["mean_reward"]
    assert mean >= 200, f"reached only {mean} (untrained: ~14)"
