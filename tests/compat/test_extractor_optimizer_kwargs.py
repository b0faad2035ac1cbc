"""SB3's ``policy_kwargs`` for the default feature extractor and for the optimizers, run with
SB3's classes and with ours.

``features_extractor_kwargs`` without ``features_extractor_class`` go to the default extractor,
as in SB3: NatureCNN takes ``features_dim``, CombinedExtractor ``cnn_output_dim``,
FlattenExtractor nothing. ``optimizer_kwargs`` (``eps``, ``weight_decay``) reach the actor and
critic optimizers; SAC's entropy coefficient keeps plain Adam, as SB3's ``ent_coef_optimizer``.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import stable_baselines3 as sb3
import torch

from rlrobot import agents
from rlrobot.errors import ConfigError

LIBRARIES = [sb3, agents]
SMALL_OFF_POLICY = {"learning_starts": 16, "batch_size": 16, "buffer_size": 256}


class ImageEnv(gym.Env):
    """Tiny env with a 36×36 uint8 image (a Dict with a vector too, if ``dict_space``)."""

    def __init__(self, dict_space: bool = False):
        image = gym.spaces.Box(0, 255, (36, 36, 3), np.uint8)
        self.observation_space = (
            gym.spaces.Dict({"image": image, "vector": gym.spaces.Box(-1, 1, (3,), np.float32)})
            if dict_space
            else image
        )
        self.action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, False, False, {}


def extractor_of(model):
    return model.policy.features_extractor


def cnn_width(model, dict_space: bool) -> int:
    """The width of the CNN's last linear layer (inside the per-key extractors for a Dict)."""
    extractor = extractor_of(model)
    if dict_space:
        extractor = extractor.extractors["image"]
    return extractor.linear[0].out_features


# -- features_extractor_kwargs for the default extractor -----------------------------------------
@pytest.mark.parametrize("library", LIBRARIES, ids=lambda lib: lib.__name__)
@pytest.mark.parametrize(
    ("policy", "dict_space", "kwargs"),
    [
        ("CnnPolicy", False, {"features_dim": 128}),
        ("CnnPolicy", False, {"features_dim": 128, "normalized_image": False}),
        ("MultiInputPolicy", True, {"cnn_output_dim": 64}),
    ],
)
def test_default_cnn_takes_its_width(library, policy, dict_space, kwargs):
    model = library.PPO(
        policy,
        ImageEnv(dict_space),
        n_steps=8,
        batch_size=8,
        device="cpu",
        policy_kwargs={"features_extractor_kwargs": kwargs},
    )
    width = kwargs.get("features_dim", kwargs.get("cnn_output_dim"))
    assert cnn_width(model, dict_space) == width
    if not dict_space:
        assert extractor_of(model).features_dim == width


@pytest.mark.parametrize(
    ("library", "error"), [(sb3, TypeError), (agents, ConfigError)], ids=["sb3", "rlrobot"]
)
@pytest.mark.parametrize(
    ("policy", "env", "kwargs"),
    [
        ("MlpPolicy", "CartPole-v1", {"features_dim": 128}),  # FlattenExtractor takes none
        ("CnnPolicy", ImageEnv(), {"cnn_output_dim": 64}),  # CombinedExtractor's keyword
        ("MultiInputPolicy", ImageEnv(True), {"features_dim": 64}),  # NatureCNN's keyword
    ],
)
def test_keywords_the_default_extractor_does_not_take(library, error, policy, env, kwargs):
    key = next(iter(kwargs))
    with pytest.raises(error, match=key):
        library.PPO(policy, env, device="cpu", policy_kwargs={"features_extractor_kwargs": kwargs})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"features_dim": 0}, "must be an integer in"),
        ({"features_dim": 1.5}, "must be an integer in"),
        ({"normalized_image": True}, "always scaled to"),
    ],
)
def test_default_cnn_keywords_are_checked(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        agents.PPO("CnnPolicy", ImageEnv(), policy_kwargs={"features_extractor_kwargs": kwargs})


def test_default_cnn_width_survives_save_and_load(tmp_path):
    policy_kwargs = {"features_extractor_kwargs": {"features_dim": 32}}
    model = agents.PPO(
        "CnnPolicy", ImageEnv(), n_steps=8, batch_size=8, policy_kwargs=policy_kwargs
    )
    observation = model.observation_space.sample()
    expected = model.predict(observation, deterministic=True)[0]
    loaded = agents.PPO.load(model.save(tmp_path / "cnn"), policy_kwargs=policy_kwargs)
    assert cnn_width(loaded, dict_space=False) == 32
    assert loaded.predict(observation, deterministic=True)[0] == expected


# -- optimizer_kwargs ----------------------------------------------------------------------------
def optimizers_of(model) -> dict[str, torch.optim.Optimizer]:
    """The actor's and the critic's optimizer (SB3: in the policy's networks)."""
    if isinstance(model, agents.BaseAgent):
        return {"actor": model.actor_optimizer, "critic": model.critic_optimizer}
    return {"actor": model.actor.optimizer, "critic": model.critic.optimizer}


def entropy_group(model) -> dict:
    """The parameter group that steps SAC's log α: SB3's own Adam, a group of our actor's."""
    if isinstance(model, agents.BaseAgent):
        group = model.actor_optimizer.param_groups[-1]
        assert group["params"] == [model.entropy.log_ent_coef]
        return group
    return model.ent_coef_optimizer.param_groups[0]


OPTIMIZER_KWARGS = {"eps": 1e-5, "weight_decay": 1e-3}


@pytest.mark.parametrize("library", LIBRARIES, ids=lambda lib: lib.__name__)
@pytest.mark.parametrize("algorithm", ["SAC", "TD3"])
def test_off_policy_optimizer_kwargs_reach_actor_and_critic(library, algorithm, tmp_path):
    policy_kwargs = {"optimizer_class": torch.optim.Adam, "optimizer_kwargs": OPTIMIZER_KWARGS}
    model = getattr(library, algorithm)(
        "MlpPolicy",
        "Pendulum-v1",
        device="cpu",
        seed=0,
        policy_kwargs=policy_kwargs,
        **SMALL_OFF_POLICY,
    )
    model.learn(24)
    model.save(tmp_path / "model")
    loaded = getattr(library, algorithm).load(tmp_path / "model", device="cpu")
    for agent in (model, loaded):
        for name, optimizer in optimizers_of(agent).items():
            assert isinstance(optimizer, torch.optim.Adam), name
            group = optimizer.param_groups[0]
            assert (group["eps"], group["weight_decay"]) == (1e-5, 1e-3), name
        if algorithm == "SAC":
            # SB3: Adam(log_ent_coef, lr) with Adam's defaults, whatever optimizer_kwargs say.
            group = entropy_group(agent)
            assert (group["eps"], group["weight_decay"]) == (1e-8, 0.0)
    # The moments go with the checkpoint too.
    for name, optimizer in optimizers_of(loaded).items():
        saved = optimizers_of(model)[name].state_dict()["state"]
        for index, state in optimizer.state_dict()["state"].items():
            torch.testing.assert_close(state["exp_avg"], saved[index]["exp_avg"])


@pytest.mark.parametrize("library", LIBRARIES, ids=lambda lib: lib.__name__)
def test_on_policy_weight_decay(library):
    model = library.PPO(
        "MlpPolicy",
        "CartPole-v1",
        device="cpu",
        policy_kwargs={"optimizer_kwargs": {"eps": 1e-6, "weight_decay": 1e-3}},
    )
    optimizer = model.policy.optimizer if library is sb3 else model.optimizer
    assert (optimizer.defaults["eps"], optimizer.defaults["weight_decay"]) == (1e-6, 1e-3)


def test_optimizer_kwargs_we_do_not_take_are_refused():
    for algorithm in ("SAC", "TD3", "PPO"):
        with pytest.raises(ConfigError, match=r"'amsgrad'.*allowed: eps, weight_decay"):
            getattr(agents, algorithm)(
                "MlpPolicy", "Pendulum-v1", policy_kwargs={"optimizer_kwargs": {"amsgrad": True}}
            )
    with pytest.raises(
        ConfigError,
        match=r"policy_kwargs\['optimizer_kwargs'\]\['weight_decay'\]: .* \[0, inf\), got -1.0",
    ):
        agents.SAC("Pendulum-v1", policy_kwargs={"optimizer_kwargs": {"weight_decay": -1.0}})
