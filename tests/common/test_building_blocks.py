"""Networks, distributions, normalisation, config, logger, seeding and vector-env helpers."""

import csv
import json
import random
import re
import subprocess
import sys
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from rlrobot.common.config import BaseConfig, option
from rlrobot.common.distributions import Categorical, DiagGaussian, SquashedDiagGaussian
from rlrobot.common.env_util import EpisodeTracker, get_final_observations
from rlrobot.common.logger import Logger
from rlrobot.common.networks import (
    DictExtractor,
    build_image_encoder,
    make_features_extractor,
    mlp,
)
from rlrobot.common.normalization import ObservationNormalizer, RewardNormalizer, RunningMeanStd
from rlrobot.common.seeding import get_rng_state, set_rng_state, set_seed
from rlrobot.errors import ConfigError
from rlrobot.vec import make_vec_env

IMAGE = gym.spaces.Box(0, 255, (40, 40, 3), np.uint8)


def test_mlp_shapes():
    net = mlp(4, (8, 16), 3, "relu")
    assert net(torch.zeros(5, 4)).shape == (5, 3)
    assert mlp(4, (), None)(torch.zeros(2, 4)).shape == (2, 4)
    with pytest.raises(ValueError, match="unknown activation"):
        mlp(4, (8,), 1, "sigmoidish")


def test_mlp_relu_runs_in_place_with_unchanged_values_and_gradients():
    torch.manual_seed(0)
    net = mlp(3, (8, 8), 2, "relu")
    assert [m.inplace for m in net if isinstance(m, nn.ReLU)] == [True, True]
    assert not any(getattr(m, "inplace", False) for m in mlp(3, (8,), 2, "tanh"))
    inputs = torch.randn(16, 3)
    linears = [m for m in net if isinstance(m, nn.Linear)]

    def reference(x: torch.Tensor) -> torch.Tensor:
        for linear in linears[:-1]:
            x = torch.relu(x @ linear.weight.T + linear.bias)
        return x @ linears[-1].weight.T + linears[-1].bias

    parameters = list(net.parameters())
    outputs, expected = net(inputs), reference(inputs)
    torch.testing.assert_close(outputs, expected)
    weights = torch.linspace(-1, 1, outputs.numel()).reshape(outputs.shape)
    grads = torch.autograd.grad((outputs * weights).sum(), parameters)
    expected_grads = torch.autograd.grad((expected * weights).sum(), parameters)
    for grad, expected_grad in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(grad, expected_grad)


def test_dict_extractor_concatenates_sorted_keys_and_encodes_images():
    space = gym.spaces.Dict(
        {"z": gym.spaces.Box(-1, 1, (2,)), "a": gym.spaces.Box(-1, 1, (3,)), "cam": IMAGE}
    )
    extractor = make_features_extractor(space, cnn_features_dim=32)
    assert isinstance(extractor, DictExtractor)
    assert extractor.keys == ["a", "cam", "z"]
    assert extractor.features_dim == 3 + 32 + 2
    batch = {k: torch.as_tensor(np.stack([s.sample() for _ in range(4)])) for k, s in space.items()}
    features = extractor(batch)
    assert features.shape == (4, 37)
    torch.testing.assert_close(features[:, :3], batch["a"])
    torch.testing.assert_close(features[:, -2:], batch["z"])


class TinyEncoder(nn.Module):
    out_dim = 6

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.LazyLinear(6))

    def forward(self, images):
        assert images.dtype == torch.float32 and images.shape[1] == 3  # CHW in [0, 1]
        assert images.max() <= 1.0
        return self.net(images)


def test_custom_frozen_image_encoder_plugs_in():
    encoder = TinyEncoder()
    encoder(torch.zeros(1, 3, 40, 40))  # materialise the lazy layer
    extractor = make_features_extractor(IMAGE, image_encoder=encoder, freeze_encoder=True)
    assert extractor.features_dim == 6
    assert not any(p.requires_grad for p in extractor.parameters())
    extractor.train()
    assert not encoder.training
    images = torch.as_tensor(np.stack([IMAGE.sample() for _ in range(2)]))
    assert extractor(images).shape == (2, 6)


def test_encoder_without_width_attribute_is_rejected():
    with pytest.raises(TypeError, match="features_dim"):
        make_features_extractor(IMAGE, image_encoder=nn.Flatten())


def test_encoder_builder_of_an_rlrobot_module_is_found_without_importing_it_first():
    # A fresh interpreter: the checkpoint's builder name alone must find perception's builder.
    code = (
        "import sys; from rlrobot.common.networks import build_image_encoder; "
        "assert 'rlrobot.perception.models' not in sys.modules; "
        "from rlrobot.perception.models import ModelSpec; "
        "spec = ModelSpec('nature_cnn', 'regression', (64, 64, 3), 2, features_dim=16); "
        "print(build_image_encoder({'builder': "
        "'rlrobot.perception.models:make_encoder_from_config', 'config': spec.to_dict()})"
        ".features_dim)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "16"


@pytest.mark.parametrize(
    "builder", ["os:system", "subprocess:run", "rlrobot.common.files:atomic_write_bytes", 3]
)
def test_encoder_builder_outside_the_registry_is_never_called(builder):
    with pytest.raises(ValueError, match="unknown image encoder builder"):
        build_image_encoder({"builder": builder, "config": "echo pwned"})


def test_distributions_match_torch():
    torch.manual_seed(0)
    logits = torch.randn(5, 3)
    actions = torch.randint(0, 3, (5,))
    ours, ref = Categorical(logits), torch.distributions.Categorical(logits=logits)
    torch.testing.assert_close(ours.log_prob(actions), ref.log_prob(actions))
    torch.testing.assert_close(ours.entropy(), ref.entropy())
    mean, log_std = torch.randn(5, 2), torch.randn(2)
    x = torch.randn(5, 2)
    ours_g = DiagGaussian(mean, log_std)
    ref_g = torch.distributions.Normal(mean, log_std.exp())
    torch.testing.assert_close(ours_g.log_prob(x), ref_g.log_prob(x).sum(-1))
    torch.testing.assert_close(ours_g.entropy(), ref_g.entropy().sum(-1))
    samples = Categorical(torch.log(torch.tensor([[0.2, 0.8]]).expand(20000, 2))).sample()
    assert samples.float().mean().item() == pytest.approx(0.8, abs=0.02)


def test_squashed_gaussian_log_prob_matches_torch_transform():
    mean, log_std = torch.randn(4, 2), torch.randn(4, 2) * 0.3
    dist = SquashedDiagGaussian(mean, log_std)
    actions, log_prob = dist.sample_and_log_prob()
    assert actions.abs().max() < 1
    ref = torch.distributions.TransformedDistribution(
        torch.distributions.Normal(mean, log_std.exp()),
        [torch.distributions.transforms.TanhTransform()],
    )
    torch.testing.assert_close(log_prob, ref.log_prob(actions).sum(-1), rtol=1e-4, atol=1e-4)


def test_running_mean_std_equals_numpy_over_all_batches():
    rng = np.random.default_rng(0)
    batches = [rng.normal(3, 2, size=(n, 2)) for n in (5, 17, 1, 40)]
    stats = RunningMeanStd((2,), epsilon=0.0)
    for batch in batches:
        stats.update(batch)
    data = np.concatenate(batches)
    np.testing.assert_allclose(stats.mean, data.mean(0))
    np.testing.assert_allclose(stats.var, data.var(0))
    copy = RunningMeanStd((2,))
    copy.load_state_dict(stats.state_dict())
    np.testing.assert_array_equal(copy.mean, stats.mean)


def test_observation_normalizer_skips_images_and_round_trips():
    space = gym.spaces.Dict({"cam": IMAGE, "state": gym.spaces.Box(-10, 10, (2,))})
    normalizer = ObservationNormalizer(space)
    batch = {"cam": np.stack([IMAGE.sample()] * 3), "state": np.array([[1.0, 2], [3, 4], [5, 6]])}
    normalizer.update(batch)
    result = normalizer.normalize(batch)
    assert result["cam"] is batch["cam"]
    assert abs(result["state"].mean()) < 1e-3 and result["state"].dtype == np.float32
    other = ObservationNormalizer(space)
    other.load_state_dict(normalizer.state_dict())
    np.testing.assert_array_equal(other.normalize(batch)["state"], result["state"])


@pytest.mark.parametrize("space", [IMAGE, gym.spaces.Discrete(4)], ids=["image", "discrete"])
def test_observation_normalizer_passes_images_and_discrete_spaces_through(space):
    normalizer = ObservationNormalizer(space)
    batch = np.stack([space.sample() for _ in range(3)])
    normalizer.update(batch)
    assert normalizer.normalize(batch) is batch
    assert normalizer.state_dict() == {}


def test_reward_normalizer_scales_by_return_std():
    normalizer = RewardNormalizer(n_envs=1, gamma=0.0)
    for reward in (2.0, -2.0) * 50:
        normalizer.update(np.array([reward]), np.array([False]))
    assert normalizer.normalize(np.array([2.0]))[0] == pytest.approx(1.0, rel=1e-2)


@dataclass
class ExampleConfig(BaseConfig):
    learning_rate: float = option(3e-4, "step size")
    net_arch: tuple[int, ...] = option((64, 64), "layers")
    target_kl: float | None = option(None, "kl")

    def validate(self):
        self._require(self.learning_rate > 0, "learning_rate", "must be > 0")


def test_config_strict_validation():
    config = ExampleConfig.from_dict({"learning_rate": 1, "net_arch": [8], "target_kl": 0.1})
    assert config.learning_rate == 1.0 and config.net_arch == (8,) and config.target_kl == 0.1
    assert config.to_dict() == {"learning_rate": 1.0, "net_arch": [8], "target_kl": 0.1}
    with pytest.raises(ConfigError, match=r"'learning_rat'.*did you mean 'learning_rate'"):
        ExampleConfig.from_dict({"learning_rat": 1e-3})
    with pytest.raises(ConfigError, match="'net_arch'"):
        ExampleConfig.from_dict({"net_arch": "big"})
    with pytest.raises(ConfigError, match=r"'learning_rate'.*> 0"):
        ExampleConfig.from_dict({"learning_rate": -1.0})
    with pytest.raises(ConfigError, match="'learning_rate'"):
        ExampleConfig.from_dict({"learning_rate": True})
    # A quoted number is text (the YAML reader reads 1e-3 unquoted as a number).
    with pytest.raises(
        ConfigError, match=re.escape("'target_kl': expected float | None, got '0.1'")
    ):
        ExampleConfig.from_dict({"target_kl": "0.1"})


def test_logger_writes_csv_with_growing_header_and_tensorboard(tmp_path):
    logger = Logger(tmp_path, outputs=("csv", "tensorboard"))
    logger.record("train/policy_loss", 1.5)
    logger.dump(10)
    logger.record("train/policy_loss", 0.5)
    logger.record("rollout/ep_rew_mean", 20)
    logger.dump(20)
    logger.close()
    with (tmp_path / "progress.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert [row["step"] for row in rows] == ["10", "20"]
    assert rows[0]["rollout/ep_rew_mean"] == "" and rows[1]["rollout/ep_rew_mean"] == "20.0"
    assert list(tmp_path.glob("events.out.tfevents.*"))


def test_rng_state_round_trip_through_json_like_values():
    set_seed(3)
    state = get_rng_state()
    expected = (random.random(), np.random.random(), torch.rand(1).item())  # noqa: NPY002
    json.dumps(state["python"])
    set_rng_state(state)
    assert (random.random(), np.random.random(), torch.rand(1).item()) == expected  # noqa: NPY002


def test_vector_env_keeps_real_final_observation_of_truncated_episodes():
    env = make_vec_env("CartPole-v1", n_envs=2, seed=0, env_kwargs={"max_episode_steps": 3})
    tracker = EpisodeTracker(2)
    observations, _ = env.reset(seed=0)
    for _ in range(3):
        previous = observations
        observations, rewards, terminated, truncated, infos = env.step(np.array([0, 1]))
        tracker.update(rewards, terminated | truncated, infos)
    assert truncated.all() and not terminated.any()
    next_observations, ended = get_final_observations(observations, infos)
    assert ended.all()
    assert not np.allclose(next_observations, observations)  # reset obs differ from final obs
    assert np.abs(next_observations - previous).max() < 0.5  # final obs continue the episode
    assert tracker.summary()["rollout/ep_rew_mean"] == 3.0
    env.close()


def test_make_vec_env_rejects_bad_arguments():
    with pytest.raises(ValueError, match="vec_env"):
        make_vec_env("CartPole-v1", vec_env="threads")
    with pytest.raises(ValueError, match="n_envs"):
        make_vec_env(gym.make("CartPole-v1"), n_envs=2)
