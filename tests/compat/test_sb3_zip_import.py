"""SB3 ``CnnPolicy`` and ``MultiInputPolicy`` zips imported into our agents, weights only.

For each algorithm and policy, SB3 trains a model briefly and saves it with its own ``save``;
our class loads the zip (``policy.pth`` with ``weights_only=True``, nothing unpickled) and
must act as SB3's own ``load`` does on 20 observations, and its critics must give SB3's
values. SB3 trains image policies on channel-first images, so the zip holds that space: with
the env our agent takes its channel-last images, without one the saved channel-first ones.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import stable_baselines3 as sb3
import torch
from stable_baselines3.common.envs import FakeImageEnv
from torch import nn

from rlrobot.agents import A2C, PPO, SAC, TD3
from rlrobot.errors import CheckpointError

N_OBSERVATIONS = 20
IMAGE_SIDE = 36  # the smallest image NatureCNN takes
# A few hundred steps, a few updates each; small replay buffers (images are large).
SB3_TRAINING = {
    "PPO": ({"n_steps": 64, "batch_size": 32, "n_epochs": 1}, 192),
    "A2C": ({"n_steps": 8}, 192),
    "SAC": ({"learning_starts": 100, "buffer_size": 400, "batch_size": 16}, 160),
    "TD3": ({"learning_starts": 100, "buffer_size": 400, "batch_size": 16}, 160),
}
OURS = {"PPO": PPO, "A2C": A2C, "SAC": SAC, "TD3": TD3}


class ImageAndVectorEnv(gym.Env):
    """A ``Dict`` of a channel-last uint8 image and a vector; random observations, 10 steps."""

    observation_space = gym.spaces.Dict(
        {
            "image": gym.spaces.Box(0, 255, (IMAGE_SIDE, IMAGE_SIDE, 1), np.uint8),
            "vector": gym.spaces.Box(-1, 1, (3,), np.float32),
        }
    )

    def __init__(self, discrete: bool) -> None:
        self.action_space = (
            gym.spaces.Discrete(3) if discrete else gym.spaces.Box(-1, 1, (2,), np.float32)
        )
        self.steps = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.observation_space.seed(int(self.np_random.integers(2**31)))
        self.steps = 0
        return self.observation_space.sample(), {}

    def step(self, action):
        self.steps += 1
        reward = float(np.mean(action))
        return self.observation_space.sample(), reward, False, self.steps >= 10, {}


def make_env(policy: str, discrete: bool) -> gym.Env:
    if policy == "CnnPolicy":
        return FakeImageEnv(
            screen_height=IMAGE_SIDE, screen_width=IMAGE_SIDE, n_channels=3, discrete=discrete
        )
    return ImageAndVectorEnv(discrete)


def sample_observations(space: gym.Space) -> np.ndarray | dict[str, np.ndarray]:
    space.seed(0)
    samples = [space.sample() for _ in range(N_OBSERVATIONS)]
    if isinstance(space, gym.spaces.Dict):
        return {key: np.stack([sample[key] for sample in samples]) for key in space}
    return np.stack(samples)


def channels_first(observations):
    """The same observations as SB3's ``VecTransposeImage`` gives them: images CHW."""
    if isinstance(observations, dict):
        return {key: channels_first(value) for key, value in observations.items()}
    return np.transpose(observations, (0, 3, 1, 2)) if observations.ndim == 4 else observations


def as_tensors(observations):
    if isinstance(observations, dict):
        return {key: torch.as_tensor(value) for key, value in observations.items()}
    return torch.as_tensor(observations)


CASES = [
    pytest.param(name, policy, id=f"{name}-{policy}")
    for policy in ("CnnPolicy", "MultiInputPolicy")
    for name in ("PPO", "A2C", "SAC", "TD3")
]


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


@pytest.mark.parametrize(("name", "policy"), CASES)
def test_an_sb3_image_or_dict_model_acts_and_values_as_in_sb3(name, policy, tmp_path):
    discrete = name in ("PPO", "A2C") and policy == "CnnPolicy"  # both action kinds covered
    kwargs, steps = SB3_TRAINING[name]
    model = getattr(sb3, name)(policy, make_env(policy, discrete), seed=0, device="cpu", **kwargs)
    model.learn(steps)
    model.save(tmp_path / "sb3_model")
    path = tmp_path / "sb3_model.zip"
    original = getattr(sb3, name).load(path, device="cpu")

    observations = sample_observations(make_env(policy, discrete).observation_space)
    expected, _ = original.predict(observations, deterministic=True)
    imported = OURS[name].load(path, env=lambda: make_env(policy, discrete))
    assert imported.config.policy_name == policy
    assert imported.observation_space == make_env(policy, discrete).observation_space
    actions, _ = imported.predict(observations, deterministic=True)
    np.testing.assert_allclose(actions, expected, rtol=0, atol=1e-5)
    imported.env.close()

    # Without an env: the saved (channel-first) space, and the same actions on those images.
    bare = OURS[name].load(path)
    assert bare.observation_space == original.observation_space
    saved_order = channels_first(observations)
    actions, _ = bare.predict(saved_order, deterministic=True)
    np.testing.assert_allclose(actions, expected, rtol=0, atol=1e-5)
    tensors = as_tensors(saved_order)
    with torch.no_grad():
        if name in ("PPO", "A2C"):
            torch.testing.assert_close(
                bare.policy.predict_values(tensors),
                original.policy.predict_values(tensors).squeeze(-1),
            )
        else:
            action_dim = original.action_space.shape[0]
            scaled_actions = torch.rand(N_OBSERVATIONS, action_dim) * 2 - 1
            for ours, theirs in (
                (bare.critic, original.critic),
                (bare.critic_target, original.critic_target),
            ):
                expected_q = torch.cat(theirs(tensors, scaled_actions), dim=1).T
                torch.testing.assert_close(ours(tensors, scaled_actions), expected_q)


def test_an_sb3_model_with_separate_extractors_imports_them_both(tmp_path):
    env = make_env("CnnPolicy", True)
    separate = {"share_features_extractor": False, "net_arch": {"pi": [16], "vf": [32]}}
    sb3.PPO("CnnPolicy", env, n_steps=64, batch_size=32, n_epochs=1, seed=0,
            policy_kwargs=separate).learn(128).save(tmp_path / "ppo")  # fmt: skip
    original = sb3.PPO.load(tmp_path / "ppo", device="cpu")
    imported = PPO.load(tmp_path / "ppo")
    config = imported.config
    assert (config.share_features_extractor, config.net_arch, config.critic_net_arch) == (
        False,
        (16,),
        (32,),
    )
    observations = channels_first(sample_observations(env.observation_space))
    np.testing.assert_array_equal(
        imported.predict(observations, deterministic=True)[0],
        original.predict(observations, deterministic=True)[0],
    )
    with torch.no_grad():
        torch.testing.assert_close(
            imported.policy.predict_values(torch.as_tensor(observations)),
            original.policy.predict_values(torch.as_tensor(observations)).squeeze(-1),
        )


class SpacesEnv(gym.Env):
    """Random observations of any space, ``Discrete(2)`` actions, 8-step episodes."""

    action_space = gym.spaces.Discrete(2)

    def __init__(self, observation_space: gym.Space) -> None:
        self.observation_space = observation_space
        self.steps = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.steps = 0
        return self.observation_space.sample(), {}

    def step(self, action):
        self.steps += 1
        return self.observation_space.sample(), float(action), False, self.steps >= 8, {}


def test_a_dict_of_discrete_and_unevenly_bounded_boxes_is_read_back_exactly(tmp_path):
    space = gym.spaces.Dict(
        {
            "cell": gym.spaces.Discrete(4),
            "position": gym.spaces.Box(np.array([-1, -2]), np.array([1, 2.5]), dtype=np.float32),
            "speed": gym.spaces.Box(-np.inf, np.inf, (1,), np.float64),
        }
    )
    sb3.PPO("MultiInputPolicy", SpacesEnv(space), n_steps=32, batch_size=32, n_epochs=1,
            seed=0).learn(64).save(tmp_path / "ppo")  # fmt: skip
    imported = PPO.load(tmp_path / "ppo", env=lambda: SpacesEnv(space))
    assert imported.observation_space == space
    observations = sample_observations(space)
    np.testing.assert_array_equal(
        imported.predict(observations, deterministic=True)[0],
        sb3.PPO.load(tmp_path / "ppo").predict(observations, deterministic=True)[0],
    )
    imported.env.close()


def test_a_dict_entry_we_cannot_read_is_refused_naming_it(tmp_path):
    space = gym.spaces.Dict(
        {"bits": gym.spaces.MultiBinary(3), "position": gym.spaces.Box(-1, 1, (2,))}
    )
    sb3.PPO("MultiInputPolicy", SpacesEnv(space), n_steps=8, batch_size=8).save(tmp_path / "ppo")
    with pytest.raises(CheckpointError, match=r"observation_space.*'bits': MultiBinary"):
        PPO.load(tmp_path / "ppo")


@pytest.mark.parametrize(
    ("policy", "kwargs", "width"),
    [("CnnPolicy", {"features_dim": 64}, 64), ("MultiInputPolicy", {"cnn_output_dim": 32}, 32)],
)
def test_sb3_built_in_extractor_widths_are_imported(policy, kwargs, width, tmp_path):
    env = make_env(policy, True)
    policy_kwargs = {"features_extractor_kwargs": kwargs}
    sb3.PPO(policy, env, n_steps=32, batch_size=32, n_epochs=1, seed=0,
            policy_kwargs=policy_kwargs).learn(32).save(tmp_path / "ppo")  # fmt: skip
    imported = PPO.load(tmp_path / "ppo", env=lambda: make_env(policy, True))
    assert imported.config.features_extractor_kwargs == kwargs
    assert imported.policy.action_head.logits.in_features == 64  # net_arch [64, 64]
    linear = [m for m in imported.policy.features_extractor.modules() if isinstance(m, nn.Linear)]
    assert [layer.out_features for layer in linear] == [width]
    observations = sample_observations(env.observation_space)
    np.testing.assert_array_equal(
        imported.predict(observations, deterministic=True)[0],
        sb3.PPO.load(tmp_path / "ppo").predict(observations, deterministic=True)[0],
    )
    imported.env.close()


def test_an_imported_image_model_trains_on_in_our_agent(tmp_path):
    kwargs, _ = SB3_TRAINING["PPO"]
    sb3.PPO("CnnPolicy", make_env("CnnPolicy", True), seed=0, **kwargs).learn(64).save(
        tmp_path / "ppo"
    )
    imported = PPO.load(tmp_path / "ppo", env=lambda: make_env("CnnPolicy", True), **kwargs)
    imported.learn(64)
    assert imported.num_timesteps == 64
    imported.env.close()


@pytest.mark.parametrize(
    ("policy_kwargs", "message"),
    [
        ({"normalize_images": False}, "normalize_images"),
    ],
)
def test_an_sb3_image_model_we_cannot_hold_is_refused_saying_so(policy_kwargs, message, tmp_path):
    sb3.PPO(
        "CnnPolicy", make_env("CnnPolicy", True), n_steps=8, batch_size=8, seed=0,
        policy_kwargs=policy_kwargs,
    ).save(tmp_path / "ppo")  # fmt: skip
    with pytest.raises(CheckpointError, match=rf"{message}.*(convert|allowed)"):
        PPO.load(tmp_path / "ppo")


def test_an_sb3_image_model_on_another_image_size_is_refused(tmp_path):
    sb3.PPO("CnnPolicy", make_env("CnnPolicy", True), n_steps=8, batch_size=8).save(
        tmp_path / "ppo"
    )
    other = FakeImageEnv(screen_height=40, screen_width=40, n_channels=3, discrete=True)
    with pytest.raises(CheckpointError, match="observation space"):
        PPO.load(tmp_path / "ppo", env=lambda: other)


def test_an_sb3_zip_restores_verbose_tensorboard_log_seed_and_stats_window(tmp_path):
    logs = str(tmp_path / "tb")
    model = sb3.PPO(
        "MlpPolicy",
        "CartPole-v1",
        n_steps=32,
        batch_size=32,
        verbose=0,
        tensorboard_log=logs,
        seed=3,
        stats_window_size=50,
        device="cpu",
    )
    model.verbose = 2  # as a user sets it before saving
    model.save(tmp_path / "model")
    agent = PPO.load(tmp_path / "model", device="cpu")
    assert (agent.verbose, agent.tensorboard_log, agent.seed) == (2, logs, 3)
    assert agent.episode_tracker.recent_returns.maxlen == 50
    # The load's own keywords win, as in SB3.
    quiet = PPO.load(tmp_path / "model", device="cpu", verbose=0, tensorboard_log=None)
    assert (quiet.verbose, quiet.tensorboard_log) == (0, None)
