"""HER: relabelled goals come from the right part of the episode, rewards match compute_reward."""

import gymnasium as gym
import numpy as np
import pytest

import rlrobot  # noqa: F401 - registers the envs
from rlrobot.agents import SAC
from rlrobot.agents.her import HerReplayBuffer, get_compute_reward
from rlrobot.errors import UnsupportedEnvError
from rlrobot.vec import make_vec_env

GOAL_SPACE = gym.spaces.Dict(
    {
        "observation": gym.spaces.Box(-np.inf, np.inf, (2,), np.float32),
        "achieved_goal": gym.spaces.Box(-np.inf, np.inf, (2,), np.float32),
        "desired_goal": gym.spaces.Box(-np.inf, np.inf, (2,), np.float32),
    }
)
ACTION_SPACE = gym.spaces.Box(-1, 1, (1,), np.float32)
EPISODE_LENGTH = 5


def sparse_reward(achieved_goal, desired_goal, info):
    """0 within 0.5 of the goal, −1 otherwise (vectorised, like Reach's sparse reward)."""
    distance = np.linalg.norm(achieved_goal - desired_goal, axis=-1)
    return -(distance >= 0.5).astype(np.float32)


def make_observation(episode, step, env):
    """Achieved goal ``[episode·100 + step, env]`` identifies the time step uniquely."""
    goal = np.array([episode * 100 + step, env], dtype=np.float32)
    return {"observation": goal.copy(), "achieved_goal": goal, "desired_goal": -goal - 1000}


def stack(observations):
    return {key: np.stack([o[key] for o in observations]) for key in observations[0]}


def fill(buffer, n_episodes, n_envs):
    """Run ``n_episodes`` episodes of ``EPISODE_LENGTH`` steps in every env (truncated)."""
    for episode in range(n_episodes):
        observations = stack([make_observation(episode, 0, env) for env in range(n_envs)])
        for step in range(EPISODE_LENGTH):
            next_observations = stack(
                [make_observation(episode, step + 1, env) for env in range(n_envs)]
            )
            ended = np.full(n_envs, step == EPISODE_LENGTH - 1)
            rewards = sparse_reward(
                next_observations["achieved_goal"], next_observations["desired_goal"], {}
            )
            buffer.add(observations, np.zeros((n_envs, 1)), rewards, next_observations,
                       np.zeros(n_envs, bool), ended)  # fmt: skip
            observations = next_observations


@pytest.mark.parametrize("strategy", ["future", "final", "episode"])
def test_relabelled_goals_and_rewards(strategy):
    n_envs = 2
    buffer = HerReplayBuffer(
        1000, GOAL_SPACE, ACTION_SPACE, sparse_reward, n_envs=n_envs,
        n_sampled_goal=4, goal_selection_strategy=strategy, seed=0,
    )  # fmt: skip
    fill(buffer, n_episodes=6, n_envs=n_envs)
    sample = buffer.sample(500)
    n_relabelled = 400  # k / (k + 1) of the batch
    observations, next_observations = sample.observations, sample.next_observations
    achieved = observations["achieved_goal"]
    new_goals = observations["desired_goal"][:n_relabelled]
    # The new goal is an achieved goal of the same env and episode...
    np.testing.assert_array_equal(new_goals[:, 1], achieved[:n_relabelled, 1])
    episode, step = np.divmod(achieved[:n_relabelled, 0], 100)
    goal_episode, goal_step = np.divmod(new_goals[:, 0], 100)
    np.testing.assert_array_equal(goal_episode, episode)
    # ... reached at (future) / at the end of (final) / anywhere in (episode) the episode.
    if strategy == "future":
        assert np.all(goal_step >= step + 1)
    elif strategy == "final":
        assert np.all(goal_step == EPISODE_LENGTH)
    assert np.all((goal_step >= 1) & (goal_step <= EPISODE_LENGTH))
    assert len(np.unique(goal_step)) == (1 if strategy == "final" else EPISODE_LENGTH)
    # Both observations carry the new goal; rewards are compute_reward of it.
    np.testing.assert_array_equal(next_observations["desired_goal"][:n_relabelled], new_goals)
    expected = sparse_reward(
        next_observations["achieved_goal"], next_observations["desired_goal"], {}
    )
    np.testing.assert_array_equal(sample.rewards, expected)
    assert (sample.rewards[:n_relabelled] == 0).mean() > 0.15  # hindsight successes appear
    # Real transitions keep their goals (never reached here).
    assert np.all(observations["desired_goal"][n_relabelled:, 0] <= -1000)
    assert np.all(sample.rewards[n_relabelled:] == -1)


@pytest.mark.parametrize("strategy", ["future", "episode"])
def test_relabelled_n_step_rewards_sum_compute_reward_over_the_steps(strategy):
    n_steps, gamma = 3, 0.9
    buffer = HerReplayBuffer(
        1000, GOAL_SPACE, ACTION_SPACE, sparse_reward, n_envs=2, gamma=gamma, n_steps=n_steps,
        n_sampled_goal=4, goal_selection_strategy=strategy, seed=1,
    )  # fmt: skip
    fill(buffer, n_episodes=6, n_envs=2)
    sample = buffer.sample(500)
    start = (sample.observations["achieved_goal"][:, 0] % 100).astype(int)
    goal = (sample.observations["desired_goal"][:, 0] % 100).astype(int)
    # By hand: m = min(n, steps left) rewards, 0 at the step that reaches the goal, else −1.
    summed = np.minimum(n_steps, EPISODE_LENGTH - start)
    expected = np.array(
        [
            sum(gamma**k * (0.0 if s + k + 1 == g else -1.0) for k in range(m))
            for s, g, m in zip(start, goal, summed, strict=True)
        ]
    )
    np.testing.assert_allclose(sample.rewards[:400], expected[:400], rtol=1e-6)
    assert (sample.rewards[:400] > -1 - gamma - gamma**2 + 1e-6).mean() > 0.2
    np.testing.assert_allclose(sample.discounts, gamma**summed, rtol=1e-6)
    np.testing.assert_array_equal(sample.next_observations["achieved_goal"][:, 0] % 100,
                                  start + summed)  # fmt: skip
    # Real transitions: the stored rewards, −1 at every step.
    np.testing.assert_allclose(sample.rewards[400:], expected[400:], rtol=1e-6)


def test_sac_her_trains_with_n_step_returns():
    agent = SAC("rlrobot/Reach-v0", env_kwargs={"reward_mode": "sparse"}, seed=0,
                replay_buffer="her", n_steps=3, net_arch=(32, 32), batch_size=32,
                learning_starts=60)  # fmt: skip
    agent.learn(120)
    assert agent.replay_buffer.n_steps == 3 and agent.n_updates == 60


def test_running_episode_uses_newest_transition_as_end():
    buffer = HerReplayBuffer(
        100, GOAL_SPACE, ACTION_SPACE, sparse_reward, goal_selection_strategy="final", seed=0
    )
    observations = stack([make_observation(0, 0, 0)])
    for step in range(3):  # an episode that has not ended yet
        next_observations = stack([make_observation(0, step + 1, 0)])
        buffer.add(observations, np.zeros((1, 1)), -np.ones(1), next_observations,
                   np.zeros(1, bool), np.zeros(1, bool))  # fmt: skip
        observations = next_observations
    sample = buffer.sample(50)
    np.testing.assert_array_equal(sample.observations["desired_goal"][:40, 0], 3.0)


def test_compute_reward_from_reach_vector_env_matches_env_rewards():
    env = make_vec_env("rlrobot/Reach-v0", n_envs=1, seed=0, env_kwargs={"reward_mode": "sparse"})
    compute_reward = get_compute_reward(env)
    observations, _ = env.reset(seed=0)
    for _ in range(5):
        observations, rewards, *_ = env.step(np.ones((1, 3), dtype=np.float32))
        recomputed = compute_reward(observations["achieved_goal"], observations["desired_goal"], {})
        np.testing.assert_allclose(recomputed, rewards)
    env.close()
    with pytest.raises(UnsupportedEnvError, match="Dict observation space"):
        get_compute_reward(make_vec_env("Pendulum-v1"))


class PointGoalEnv(gym.Env):
    """A third-party-style goal env: a 2-D point, reward −(distance ≥ 0.5), 10-step episodes."""

    observation_space = GOAL_SPACE
    action_space = gym.spaces.Box(-1, 1, (2,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.position = np.zeros(2, np.float32)
        self.goal = self.np_random.uniform(-2, 2, 2).astype(np.float32)
        return self._observation(), {}

    def _observation(self):
        return {
            "observation": self.position.copy(),
            "achieved_goal": self.position.copy(),
            "desired_goal": self.goal.copy(),
        }

    def step(self, action):
        self.position = self.position + 0.3 * np.asarray(action, np.float32)
        reward = float(self.compute_reward(self.position, self.goal, {}))
        return self._observation(), reward, False, False, {"is_success": reward == 0}

    def compute_reward(self, achieved_goal, desired_goal, info):
        return sparse_reward(achieved_goal, desired_goal, info)


def make_point_goal_env():
    return gym.wrappers.TimeLimit(PointGoalEnv(), max_episode_steps=10)


@pytest.mark.parametrize("vec_env", ["sync", "async"])
def test_sac_her_on_a_wrapped_third_party_goal_env(vec_env):
    agent = SAC(make_point_goal_env, n_envs=2, vec_env=vec_env, replay_buffer="her",
                seed=0, net_arch=(16,), batch_size=32, learning_starts=30)  # fmt: skip
    try:
        agent.learn(60)
        buffer = agent.replay_buffer
        assert isinstance(buffer, HerReplayBuffer) and len(buffer) == 60
        sample = buffer.sample(100)
        expected = PointGoalEnv().compute_reward(
            sample.next_observations["achieved_goal"], sample.next_observations["desired_goal"], {}
        )
        np.testing.assert_array_equal(sample.rewards, expected)
    finally:
        agent.env.close()
