"""Our copies of examples in SB3's documentation, each run with SB3's classes and with ours.

The pages: "HER" (SAC with ``HerReplayBuffer`` on a goal env, saved, loaded with the env,
predicting), "Custom Policy Network" (``net_arch`` dicts and ``activation_fn``, off-policy
``net_arch=dict(pi=…, qf=…)``, a custom CNN features extractor with ``features_dim``, a custom
extractor for ``Dict`` observations, ``share_features_extractor``) and "Examples" (saving and
loading ``VecNormalize``). Only the import differs between the two runs (and the budgets are
small); each must train, evaluate and round-trip through save/load, acting the same after.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import stable_baselines3
import torch
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.envs import FakeImageEnv
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize
from torch import nn

from rlrobot import agents
from rlrobot.errors import CheckpointError, ConfigError
from tests.agents.test_her import make_point_goal_env
from tests.compat.test_sb3_zip_import import IMAGE_SIDE, ImageAndVectorEnv

LIBRARIES = [pytest.param(stable_baselines3, id="sb3"), pytest.param(agents, id="rlrobot")]


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def observations_of(env: gym.Env, n: int = 8):
    space = env.observation_space
    space.seed(0)
    samples = [space.sample() for _ in range(n)]
    if isinstance(space, gym.spaces.Dict):
        return {key: np.stack([sample[key] for sample in samples]) for key in space}
    return np.stack(samples)


def check_evaluates_and_round_trips(library, cls, model, eval_env, path, **load_kwargs):
    """Evaluate ``model`` with SB3's ``evaluate_policy``; save, load, and act the same."""
    mean_reward, _ = evaluate_policy(model, eval_env, n_eval_episodes=2)
    assert np.isfinite(mean_reward)
    observations = observations_of(eval_env)
    actions, _ = model.predict(observations, deterministic=True)
    model.save(path)
    del model
    loaded = getattr(library, cls).load(path, device="cpu", **load_kwargs)
    np.testing.assert_allclose(loaded.predict(observations, deterministic=True)[0], actions)
    return loaded


# -- HER ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("library", LIBRARIES)
def test_her_example(library, tmp_path):
    env = make_point_goal_env()  # a goal env with compute_reward, as the page's BitFlippingEnv
    model = library.SAC(
        "MultiInputPolicy",
        env,
        replay_buffer_class=library.HerReplayBuffer,
        replay_buffer_kwargs=dict(n_sampled_goal=4, goal_selection_strategy="future"),
        verbose=0,
        learning_starts=100,
        batch_size=32,
        policy_kwargs=dict(net_arch=[32, 32]),
        seed=0,
    )
    model.learn(150)
    assert type(model.replay_buffer).__name__ == "HerReplayBuffer"
    # "Because it needs access to env.compute_reward(), HER must be loaded with the env."
    model = check_evaluates_and_round_trips(library, "SAC", model, env, tmp_path / "her", env=env)
    # SB3 builds the (empty) buffer on load, ours at the next learn; both remember HER.
    her = model.config.replay_buffer if library is agents else type(model.replay_buffer).__name__
    assert her in ("her", "HerReplayBuffer")
    observation, _ = env.reset(seed=0)
    for _ in range(20):
        action, _ = model.predict(observation, deterministic=True)
        observation, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            observation, _ = env.reset()


def test_the_her_example_saved_by_sb3_imports_into_our_sac(tmp_path):
    env = make_point_goal_env()
    stable_baselines3.SAC(
        "MultiInputPolicy", env, learning_starts=50, batch_size=16, seed=0,
        policy_kwargs=dict(net_arch=[32, 32]),
        replay_buffer_class=stable_baselines3.HerReplayBuffer,
        replay_buffer_kwargs=dict(n_sampled_goal=2, goal_selection_strategy="final"),
    ).learn(80).save(tmp_path / "her")  # fmt: skip
    original = stable_baselines3.SAC.load(tmp_path / "her", env=env, device="cpu")
    imported = agents.SAC.load(tmp_path / "her", env=make_point_goal_env)
    observations = observations_of(env, 20)
    np.testing.assert_allclose(
        imported.predict(observations, deterministic=True)[0],
        original.predict(observations, deterministic=True)[0],
        rtol=0,
        atol=1e-5,
    )
    config = imported.config
    assert (config.replay_buffer, config.n_sampled_goal, config.goal_selection_strategy) == (
        "her",
        2,
        "final",
    )
    imported.env.close()


# -- Custom Policy Network ----------------------------------------------------------------------
@pytest.mark.parametrize("library", LIBRARIES)
def test_custom_actor_and_value_networks_example(library, tmp_path):
    # Custom actor (pi) and value function (vf) networks of two layers of size 32 each with
    # ReLU activation function.
    policy_kwargs = dict(activation_fn=torch.nn.ReLU, net_arch=dict(pi=[32, 32], vf=[64, 64]))
    model = library.PPO(
        "MlpPolicy", "CartPole-v1", policy_kwargs=policy_kwargs, verbose=0,
        n_steps=64, batch_size=32, n_epochs=1, seed=0,
    )  # fmt: skip
    # Two hidden layers each: pi 4→32→32 (+ 2 logits), vf 4→64→64 (+ 1 value).
    expected = (4 * 32 + 32 + 32 * 32 + 32 + 32 * 2 + 2) + (4 * 64 + 64 + 64 * 64 + 64 + 64 + 1)
    assert count_parameters(model.policy) == expected
    relus = [m for m in model.policy.modules() if isinstance(m, nn.ReLU)]
    assert len(relus) == 4 and not any(isinstance(m, nn.Tanh) for m in model.policy.modules())
    env = model.get_env()
    model.learn(total_timesteps=128)
    loaded = check_evaluates_and_round_trips(
        library, "PPO", model, gym.make("CartPole-v1"), tmp_path / "ppo_cartpole", env=env
    )
    # "the policy_kwargs are automatically loaded"
    assert count_parameters(loaded.policy) == expected


@pytest.mark.parametrize("library", LIBRARIES)
def test_custom_off_policy_actor_and_critic_networks_example(library, tmp_path):
    # Custom actor architecture with two layers of 64 units each; custom critic architecture
    # with two layers of 400 and 300 units.
    policy_kwargs = dict(net_arch=dict(pi=[64, 64], qf=[400, 300]))
    model = library.SAC(
        "MlpPolicy", "Pendulum-v1", policy_kwargs=policy_kwargs, verbose=0,
        learning_starts=50, batch_size=32, seed=0,
    )  # fmt: skip
    # Actor 3→64→64 → mean and log_std (1 each); two critics (3 + 1)→400→300→1.
    assert count_parameters(model.actor) == (3 * 64 + 64 + 64 * 64 + 64) + 2 * (64 + 1)
    assert count_parameters(model.critic) == 2 * (4 * 400 + 400 + 400 * 300 + 300 + 300 + 1)
    model.learn(100)
    check_evaluates_and_round_trips(library, "SAC", model, gym.make("Pendulum-v1"), tmp_path / "s")


class CustomCNN(BaseFeaturesExtractor):
    """The page's custom CNN: ``observation_space`` channel-first, ``features_dim`` outputs."""

    def __init__(self, observation_space: gym.spaces.Box, features_dim: int = 256):
        super().__init__(observation_space, features_dim)
        # We assume CxHxW images (channels first)
        n_input_channels = observation_space.shape[0]
        self.cnn = nn.Sequential(
            nn.Conv2d(n_input_channels, 32, kernel_size=8, stride=4, padding=0),
            nn.ReLU(),
            nn.Conv2d(32, 64, kernel_size=4, stride=2, padding=0),
            nn.ReLU(),
            nn.Flatten(),
        )
        # Compute shape by doing one forward pass
        with torch.no_grad():
            n_flatten = self.cnn(torch.as_tensor(observation_space.sample()[None]).float()).shape[1]
        self.linear = nn.Sequential(nn.Linear(n_flatten, features_dim), nn.ReLU())

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.linear(self.cnn(observations))


@pytest.mark.parametrize("library", LIBRARIES)
def test_custom_feature_extractor_example(library, tmp_path):
    env = FakeImageEnv(screen_height=IMAGE_SIDE, screen_width=IMAGE_SIDE, n_channels=3)
    policy_kwargs = dict(
        features_extractor_class=CustomCNN, features_extractor_kwargs=dict(features_dim=128)
    )
    model = library.PPO(
        "CnnPolicy", env, policy_kwargs=policy_kwargs, verbose=0,
        n_steps=32, batch_size=32, n_epochs=1, seed=0,
    )  # fmt: skip
    extractors = [m for m in model.policy.modules() if isinstance(m, CustomCNN)]
    assert extractors and all(m.features_dim == 128 for m in extractors)
    assert extractors[0].cnn[0].in_channels == 3  # it was given the channel-first space
    model.learn(64)
    check_evaluates_and_round_trips(library, "PPO", model, env, tmp_path / "cnn")


class CustomCombinedExtractor(BaseFeaturesExtractor):
    """The page's extractor for ``Dict`` observations: pooled image and a linear on a vector."""

    def __init__(self, observation_space: gym.spaces.Dict):
        # We do not know features-dim here before going over all the items, so put something
        # dummy for now. PyTorch requires calling nn.Module.__init__ before adding modules.
        super().__init__(observation_space, features_dim=1)
        extractors = {}
        total_concat_size = 0
        for key, subspace in observation_space.spaces.items():
            if key == "image":
                # Downsample the single-channel image by 4x4 and flatten it.
                extractors[key] = nn.Sequential(nn.MaxPool2d(4), nn.Flatten())
                total_concat_size += subspace.shape[1] // 4 * subspace.shape[2] // 4
            elif key == "vector":
                extractors[key] = nn.Linear(subspace.shape[0], 16)
                total_concat_size += 16
        self.extractors = nn.ModuleDict(extractors)
        # Update the features dim manually
        self._features_dim = total_concat_size

    def forward(self, observations) -> torch.Tensor:
        encoded_tensor_list = []
        for key, extractor in self.extractors.items():
            encoded_tensor_list.append(extractor(observations[key]))
        return torch.cat(encoded_tensor_list, dim=1)


@pytest.mark.parametrize("library", LIBRARIES)
def test_multiple_inputs_custom_extractor_example(library, tmp_path):
    env = ImageAndVectorEnv(discrete=False)
    policy_kwargs = dict(features_extractor_class=CustomCombinedExtractor)
    model = library.PPO(
        "MultiInputPolicy", env, policy_kwargs=policy_kwargs, n_steps=32, batch_size=32,
        n_epochs=1, seed=0,
    )  # fmt: skip
    (extractor,) = [m for m in model.policy.modules() if isinstance(m, CustomCombinedExtractor)]
    assert extractor.features_dim == (IMAGE_SIDE // 4) ** 2 + 16
    model.learn(64)
    check_evaluates_and_round_trips(library, "PPO", model, env, tmp_path / "multi")


@pytest.mark.parametrize("library", LIBRARIES)
def test_separate_feature_extractors_example(library, tmp_path):
    # "share_features_extractor=False in the policy_kwargs (both for on-policy and off-policy
    # algorithms)": for SAC and TD3 this is already the default.
    env = FakeImageEnv(screen_height=IMAGE_SIDE, screen_width=IMAGE_SIDE, n_channels=1)
    model = library.PPO(
        "CnnPolicy", env, policy_kwargs=dict(share_features_extractor=False),
        n_steps=32, batch_size=32, n_epochs=1, seed=0,
    )  # fmt: skip
    cnn_layers = [m for m in model.policy.modules() if isinstance(m, nn.Conv2d)]
    assert len(cnn_layers) == 2 * 3  # one NatureCNN for the actor, one for the critic
    model.learn(64)
    check_evaluates_and_round_trips(library, "PPO", model, env, tmp_path / "separate")


# -- Examples: saving and loading VecNormalize ---------------------------------------------------
@pytest.mark.parametrize("library", LIBRARIES)
def test_vec_normalize_save_and_load_example(library, tmp_path):
    vec_env = make_vec_env("Pendulum-v1", n_envs=1)
    vec_env = VecNormalize(vec_env, norm_obs=True, norm_reward=True, clip_obs=10.0)
    model = library.PPO("MlpPolicy", vec_env, n_steps=64, batch_size=32, n_epochs=1, seed=0)
    model.learn(total_timesteps=128)
    observations = vec_env.normalize_obs(np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3))
    actions, _ = model.predict(observations, deterministic=True)
    model.save(tmp_path / "ppo_pendulum")
    stats_path = tmp_path / "vec_normalize.pkl"
    vec_env.save(stats_path)
    mean = vec_env.obs_rms.mean.copy()
    del model, vec_env

    # Load the saved statistics (SB3 unpickles its own file: the user's code, the user's trust).
    vec_env = DummyVecEnv([lambda: gym.make("Pendulum-v1")])
    vec_env = VecNormalize.load(stats_path, vec_env)
    # do not update them at test time, and reward normalization is not needed at test time
    vec_env.training = False
    vec_env.norm_reward = False
    model = library.PPO.load(tmp_path / "ppo_pendulum", env=vec_env)
    assert model.get_vec_normalize_env() is vec_env
    np.testing.assert_array_equal(vec_env.obs_rms.mean, mean)
    np.testing.assert_allclose(model.predict(observations, deterministic=True)[0], actions)
    assert model.get_env() is vec_env  # the user's own VecEnv, in both libraries
    mean_reward, _ = evaluate_policy(model, model.get_env(), n_eval_episodes=1)
    assert np.isfinite(mean_reward)
    if library is agents:
        # Our loader never unpickles: the statistics' file is refused, naming what to do.
        with pytest.raises(CheckpointError, match=r"pickle.*VecNormalize\.load.*env="):
            library.PPO.load(stats_path)


def test_share_features_extractor_true_is_refused_for_off_policy_agents():
    with pytest.raises(ConfigError, match="share_features_extractor"):
        agents.SAC("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(share_features_extractor=True))


def test_separate_extractors_with_one_image_encoder_are_refused():
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(IMAGE_SIDE * IMAGE_SIDE, 8))
    encoder.features_dim = 8
    env = FakeImageEnv(screen_height=IMAGE_SIDE, screen_width=IMAGE_SIDE, n_channels=1)
    with pytest.raises(ConfigError, match="image_encoder is one module"):
        agents.PPO(
            "CnnPolicy", env, image_encoder=encoder,
            policy_kwargs=dict(share_features_extractor=False),
        )  # fmt: skip


@pytest.mark.parametrize("library", LIBRARIES)
def test_built_in_extractor_kwargs_set_the_cnn_width(library):
    image_env = FakeImageEnv(screen_height=IMAGE_SIDE, screen_width=IMAGE_SIDE, n_channels=1)
    model = library.PPO(
        "CnnPolicy", image_env, n_steps=8, batch_size=8,
        policy_kwargs=dict(features_extractor_kwargs=dict(features_dim=64)),
    )  # fmt: skip
    assert model.policy.features_extractor.features_dim == 64
    model = library.PPO(
        "MultiInputPolicy", ImageAndVectorEnv(discrete=True), n_steps=8, batch_size=8,
        policy_kwargs=dict(features_extractor_kwargs=dict(cnn_output_dim=32)),
    )  # fmt: skip
    assert model.policy.features_extractor.features_dim == 32 + 3  # image features + vector


@pytest.mark.parametrize(
    ("policy", "kwargs", "message"),
    [
        ("CnnPolicy", {"cnn_output_dim": 8}, r"NatureCNN, which takes \['features_dim'"),
        ("MultiInputPolicy", {"features_dim": 8}, r"CombinedExtractor, which takes \['cnn_outp"),
        ("CnnPolicy", {"features_dim": 0}, r"features_dim must be an integer in \[1, inf\), got 0"),
    ],
)
def test_built_in_extractor_kwargs_we_do_not_know_are_refused(policy, kwargs, message):
    env = (
        ImageAndVectorEnv(discrete=True)
        if policy == "MultiInputPolicy"
        else FakeImageEnv(screen_height=IMAGE_SIDE, screen_width=IMAGE_SIDE, n_channels=1)
    )
    with pytest.raises(ConfigError, match=message):
        agents.PPO(policy, env, policy_kwargs=dict(features_extractor_kwargs=kwargs))
