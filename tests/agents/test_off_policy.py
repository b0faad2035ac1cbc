"""Off-policy agents (SAC, TD3): twin critics, stored transitions, save/load, learning runs."""

import zipfile

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlrobot.agents import ALGORITHMS, SAC, TD3, BaseAgent
from rlrobot.agents.policies import CriticEnsemble
from rlrobot.common.evaluation import evaluate_policy
from rlrobot.common.networks import hidden_matmul_dtype, make_features_extractor
from rlrobot.errors import ConfigError, UnsupportedEnvError
from rlrobot.run.config import resolve_config

OFF_POLICY = [SAC, TD3]
SMALL = {"net_arch": (64, 64), "batch_size": 64, "learning_starts": 100, "learning_rate": 1e-3}


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


class Line(gym.Env):
    """A point on a line: ``x ← clip(x + 0.125·a, −2, 2)``, reward ``−|x|`` after the move.

    Actions in ``[-2, 2]`` (so the agents' rescaling is exercised); a good policy reaches 0
    in a few steps (return ≈ −1 over 20 steps), a random one scores ≈ −15.
    """

    observation_space = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)
    action_space = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = self.np_random.uniform(-1.5, 1.5, (1,)).astype(np.float32)
        return self.x.copy(), {}

    def step(self, action):
        self.x = np.clip(self.x + 0.125 * np.asarray(action, np.float32), -2.0, 2.0)
        return self.x.copy(), -float(abs(self.x[0])), False, False, {}


def make_line(max_episode_steps=20):
    return lambda: gym.wrappers.TimeLimit(Line(), max_episode_steps)


def evaluate(agent, env_factory, n_episodes=10):
    """Mean deterministic return over episodes seeded 1000, 1001, …"""
    return evaluate_policy(agent, env_factory(), n_episodes, seed=1000).summary()["mean_reward"]


def test_registry_and_generic_load(tmp_path):
    assert ALGORITHMS["sac"] is SAC and ALGORITHMS["td3"] is TD3
    agent = TD3(make_line(), seed=0, **SMALL)
    agent.save(tmp_path / "td3")
    assert type(BaseAgent.load(tmp_path / "td3")) is TD3


def test_critic_ensemble_is_two_independent_q_networks():
    space = gym.spaces.Box(-1, 1, (3,), np.float32)
    critic = CriticEnsemble(
        make_features_extractor(space), action_dim=2, net_arch=(8, 8), activation="relu"
    )
    observations, actions = torch.randn(5, 3), torch.randn(5, 2)
    q_values = critic(observations, actions)
    assert q_values.shape == (2, 5)

    def member_q_values(member: int) -> torch.Tensor:
        hidden = torch.cat([observations, actions], dim=1)
        for layer in critic.hidden_layers:
            hidden = torch.relu(hidden @ layer.weight[member] + layer.bias[member])
        output = critic.output_layer
        return (hidden @ output.weight[member] + output.bias[member]).squeeze(-1)

    expected = torch.stack([member_q_values(member) for member in range(2)])
    torch.testing.assert_close(q_values, expected)
    # Same weight gradients as the plain matmuls (the output layer is a multiply-and-sum).
    parameters = list(critic.parameters())
    weights = torch.linspace(-1, 1, 10).reshape(2, 5)
    grads = torch.autograd.grad((q_values * weights).sum(), parameters)
    expected_grads = torch.autograd.grad((expected * weights).sum(), parameters)
    for grad, expected_grad in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(grad, expected_grad)
    torch.testing.assert_close(critic(observations, actions, members=1)[0], q_values[0])
    # Detached: the gradient reaches the actions but no critic weight.
    actions.requires_grad_(True)
    critic(observations, actions, detach=True).sum().backward()
    assert actions.grad is not None and actions.grad.abs().sum() > 0
    assert all(p.grad is None for p in critic.parameters())


@pytest.mark.parametrize("cls", OFF_POLICY)
def test_bfloat16_matmuls_round_the_hidden_layers_only(cls):
    agent = cls(make_line(), seed=0, **SMALL)
    observations = torch.linspace(-2, 2, 64).reshape(64, 1)
    actions = torch.linspace(-1, 1, 64).reshape(64, 1)

    def outputs():
        policy = agent.actor(observations)
        if cls is SAC:
            policy = torch.cat([policy.mean, policy.log_std], dim=1)
        return policy, agent.critic(observations, actions)

    exact = outputs()
    with hidden_matmul_dtype(torch.bfloat16):
        rounded = outputs()
    for exact_output, rounded_output in zip(exact, rounded, strict=True):
        assert rounded_output.dtype == torch.float32  # outputs (and what follows) stay float32
        assert not torch.equal(exact_output, rounded_output)  # the hidden layers did round
        torch.testing.assert_close(rounded_output, exact_output, rtol=0.05, atol=0.02)
    # Outside the scope (acting, evaluation) nothing is rounded.
    for before, after in zip(exact, outputs(), strict=True):
        assert torch.equal(before, after)


@pytest.mark.parametrize("cls", OFF_POLICY)
def test_matmul_dtype_applies_to_the_updates(cls):
    def trained(dtype):
        agent = cls(make_line(), seed=0, matmul_dtype=dtype, **SMALL)
        agent.learn(150)  # 50 updates after the 100 random steps
        return torch.cat([p.flatten() for p in agent.critic.parameters()])

    # Runs are deterministic, so a difference can only come from the rounded matmuls.
    assert torch.equal(trained("float32"), trained("float32"))
    assert not torch.equal(trained("float32"), trained("bfloat16"))


@pytest.mark.parametrize("cls", OFF_POLICY)
def test_stored_transitions_follow_the_dynamics_across_truncations(cls):
    agent = cls(make_line(max_episode_steps=7), seed=0, gamma=0.9, **SMALL)
    agent.learn(60)  # random actions only: learning_starts is 100
    buffer = agent.replay_buffer
    rows = np.arange(buffer.pos)
    sample = buffer.get_samples(rows, np.zeros_like(rows))
    env_actions = agent.actions_to_env(sample.actions)
    expected_next = np.clip(sample.observations + 0.125 * env_actions, -2, 2)
    # The real final observation of each truncated episode, not the reset one.
    np.testing.assert_allclose(sample.next_observations, expected_next, atol=1e-6)
    np.testing.assert_allclose(sample.rewards, -np.abs(expected_next[:, 0]), atol=1e-6)
    assert buffer.episode_ends[:60, 0].sum() == 60 // 7
    np.testing.assert_allclose(sample.discounts, 0.9)  # truncation is bootstrapped


@pytest.mark.parametrize(
    "cls, extra",
    [
        (SAC, {}),
        (SAC, {"n_steps": 3}),
        (TD3, {}),
        (SAC, {"matmul_dtype": "bfloat16"}),
        (TD3, {"matmul_dtype": "bfloat16"}),
    ],
    ids=["sac", "sac-3-step", "td3", "sac-bfloat16", "td3-bfloat16"],
)
def test_learns_line(cls, extra):
    agent = cls(make_line(), seed=0, gamma=0.9, **SMALL, **extra)
    before = evaluate(agent, make_line())
    agent.learn(2000)
    after = evaluate(agent, make_line())
    assert after > -3.0, (before, after)
    assert before < -5.0


@pytest.mark.parametrize("cls", OFF_POLICY)
def test_linear_learning_rate_schedule_reaches_every_optimizer(cls):
    agent = cls(make_line(), seed=0, **{**SMALL, "learning_starts": 10}, lr_schedule="linear")
    rates = {}

    def record(agent):
        rates[agent.num_timesteps] = [
            group["lr"] for opt in agent.optimizers().values() for group in opt.param_groups
        ]

    agent.learn(200, callback=record)
    agent.learn(
        200, callback=record, reset_num_timesteps=False
    )  # each learn() call runs its schedule to its own end
    assert rates[100] == pytest.approx([1e-3 * (1 - 100 / 200)] * len(rates[100]))
    assert rates[200] == pytest.approx([0.0] * len(rates[200]))
    assert rates[300] == pytest.approx([1e-3 * (1 - 300 / 400)] * len(rates[300]))


def test_sac_learns_continuous_cartpole():
    agent = SAC("rlrobot/CartPoleContinuous-v0", seed=0, **SMALL)
    # 3000 steps: the lowest of seeds 0–9 scores 168 (at 2000 steps one seed in six fell short).
    agent.learn(3000)
    assert evaluate(agent, lambda: gym.make("rlrobot/CartPoleContinuous-v0"), 3) >= 100


@pytest.mark.parametrize("cls", OFF_POLICY)
def test_save_load_round_trip_with_replay_buffer(cls, tmp_path):
    agent = cls(make_line(), seed=0, **SMALL)
    agent.learn(150)
    with zipfile.ZipFile(agent.save(tmp_path / "agent", include_replay_buffer=True)) as saved:
        assert "replay_buffer.npz" in saved.namelist()
    observations = np.linspace(-2, 2, 9, dtype=np.float32)[:, None]
    predict_only = cls.load(tmp_path / "agent")
    resumed = cls.load(tmp_path / "agent", env=make_line())
    expected, _ = agent.predict(observations, deterministic=True)
    for loaded in (predict_only, resumed):
        actions, _ = loaded.predict(observations, deterministic=True)
        np.testing.assert_array_equal(actions, expected)
        assert loaded.num_timesteps == 150
    assert predict_only.replay_buffer is None
    assert len(resumed.replay_buffer) == len(agent.replay_buffer) == 150
    for saved, restored in zip(
        agent.replay_buffer.sample(32), resumed.replay_buffer.sample(32), strict=True
    ):
        np.testing.assert_array_equal(saved, restored)
    resumed.learn(20, reset_num_timesteps=False)
    assert resumed.num_timesteps == 170


def test_sac_her_on_reach_saves_and_loads(tmp_path):
    env_kwargs = {"reward_mode": "sparse"}
    agent = SAC("rlrobot/Reach-v0", env_kwargs=env_kwargs, replay_buffer="her", seed=0, **SMALL)
    agent.learn(120)
    agent.save(tmp_path / "sac_her")
    loaded = SAC.load(tmp_path / "sac_her")
    assert loaded.config.replay_buffer == "her"
    observation = agent.observation_space.sample()
    np.testing.assert_array_equal(
        loaded.predict(observation, deterministic=True)[0],
        agent.predict(observation, deterministic=True)[0],
    )


def line_with_actions(action_space):
    """A ``Line`` env factory whose action space is replaced (it is never stepped)."""
    return lambda: type("OtherLine", (Line,), {"action_space": action_space})()


@pytest.mark.parametrize("algo", [SAC, TD3])
def test_config_and_space_errors_are_raised_when_the_agent_is_built(algo):
    with pytest.raises(ConfigError, match="tau"):
        algo(make_line(), tau=0.0)
    with pytest.raises(UnsupportedEnvError, match="1-D Box action space, got Discrete"):
        algo("CartPole-v1")
    with pytest.raises(UnsupportedEnvError, match="1-D Box action space"):
        algo(line_with_actions(gym.spaces.Box(-1, 1, (2, 2), np.float32)))
    with pytest.raises(UnsupportedEnvError, match=r"finite action bounds.*TransformAction"):
        algo(line_with_actions(gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)))
    with pytest.raises(UnsupportedEnvError, match="Dict observation space"):
        algo(make_line(), replay_buffer="her")
    # Goal-conditioned, but a delayed reward has no compute_reward; the env's reason is shown.
    with pytest.raises(UnsupportedEnvError, match=r"compute_reward.*whole episode"):
        algo("rlrobot/Reach-v0", replay_buffer="her", env_kwargs={"reward_mode": "delayed"})


class ImageEnv(gym.Env):
    """Tiny env with a uint8 camera image and a vector in a ``Dict``; 5-step episodes."""

    observation_space = gym.spaces.Dict(
        {
            "camera": gym.spaces.Box(0, 255, (36, 36, 3), np.uint8),
            "state": gym.spaces.Box(-1, 1, (2,), np.float32),
        }
    )
    action_space = gym.spaces.Box(-1, 1, (2,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.steps = 0
        return self.observation_space.sample(), {}

    def step(self, action):
        self.steps += 1
        return self.observation_space.sample(), float(action[0]), False, self.steps == 5, {}


def test_sac_with_image_observations_stores_uint8_and_round_trips(tmp_path):
    agent = SAC(ImageEnv, seed=0, net_arch=(16,), batch_size=8, learning_starts=10)
    agent.learn(20)
    assert agent.replay_buffer.observations["camera"].dtype == np.uint8
    assert agent.n_updates == 10
    agent.save(tmp_path / "sac")
    observation = ImageEnv.observation_space.sample()
    np.testing.assert_array_equal(
        SAC.load(tmp_path / "sac").predict(observation, deterministic=True)[0],
        agent.predict(observation, deterministic=True)[0],
    )


def test_sac_her_solves_sparse_reach():
    """The tuned SAC entry for Reach (HER, sparse reward): ≥ 80 % success in 5k steps."""
    resolved = resolve_config("sac", "rlrobot/Reach-v0")
    values, env_kwargs = resolved.algorithm.to_dict(), resolved.run.env_kwargs
    assert env_kwargs == {"reward_mode": "sparse"} and values["replay_buffer"] == "her"
    agent = SAC("rlrobot/Reach-v0", env_kwargs=env_kwargs, seed=0, **values)
    # Seeds 0–5 all succeed 20/20 at 5k steps; at 4k seed 0 sat exactly on the threshold (16/20).
    agent.learn(5000)
    env = gym.make("rlrobot/Reach-v0", **env_kwargs)
    result = evaluate_policy(agent, env, 20, seed=1000)
    env.close()
    assert result.summary()["success_rate"] >= 0.8
