"""The options every robot env takes: reward modes, observation modes, domain randomisation."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gymnasium_check_env

import rlrobot
from rlrobot.envs.perturbations import DomainRandomization
from rlrobot.envs.reach import ReachEnv
from rlrobot.envs.reward_delay import RewardDelay
from rlrobot.envs.wrappers import DelayedReward


def rollout_rewards(env: gym.Env, seed: int, n_steps: int) -> tuple[list[float], list[bool]]:
    """Rewards and episode-end flags of `n_steps` seeded random steps (resetting at ends)."""
    env.reset(seed=seed)
    env.action_space.seed(seed)
    rewards, ends = [], []
    for _ in range(n_steps):
        _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        rewards.append(reward)
        ends.append(terminated or truncated)
        if terminated or truncated:
            env.reset()
    return rewards, ends


def episode_sums(rewards: list[float], ends: list[bool]) -> list[float]:
    """Sum of the rewards of each finished episode."""
    sums, total = [], 0.0
    for reward, end in zip(rewards, ends, strict=True):
        total += reward
        if end:
            sums.append(total)
            total = 0.0
    return sums


# --------------------------------------------------------------------------- reward modes
def test_reward_delay_releases_the_running_sum():
    delay = RewardDelay(period=3)
    released = [delay.step(r, end) for r, end in [(1, False), (2, False), (3, False), (4, False),
                                                  (5, True), (6, False)]]  # fmt: skip
    assert released == [0.0, 0.0, 6.0, 0.0, 9.0, 0.0]
    assert delay.withheld == 6.0 and delay.pending_steps == 1
    at_end_only = RewardDelay()
    assert [at_end_only.step(r, r == 4) for r in (1, 2, 3, 4)] == [0.0, 0.0, 0.0, 10.0]
    with pytest.raises(ValueError, match="period"):
        RewardDelay(period=0)


@pytest.mark.parametrize("env_id", rlrobot.ENV_IDS)
def test_delayed_reward_pays_the_dense_episode_total_at_the_episode_end(env_id):
    kwargs = {"max_episode_steps": 30}
    dense = gym.make(env_id, reward_mode="dense", **kwargs)
    delayed = gym.make(env_id, reward_mode="delayed", **kwargs)
    dense_rewards, dense_ends = rollout_rewards(dense, seed=0, n_steps=90)
    delayed_rewards, delayed_ends = rollout_rewards(delayed, seed=0, n_steps=90)
    dense.close()
    delayed.close()
    assert delayed_ends == dense_ends  # withholding rewards changes nothing else
    assert sum(dense_ends) >= 3
    np.testing.assert_allclose(
        episode_sums(delayed_rewards, delayed_ends), episode_sums(dense_rewards, dense_ends)
    )
    paid = [reward != 0.0 for reward in delayed_rewards]
    assert all(not pay or end for pay, end in zip(paid, delayed_ends, strict=True))


@pytest.mark.parametrize("max_episode_steps", [20, None])
def test_gym_make_releases_delayed_reward_where_the_time_limit_cuts(max_episode_steps):
    limit = {} if max_episode_steps is None else {"max_episode_steps": max_episode_steps}
    dense = gym.make("rlrobot/Reach-v0", reward_mode="dense", **limit)
    delayed = gym.make("rlrobot/Reach-v0", reward_mode="delayed", **limit)
    n_steps = 3 * (max_episode_steps or 50)
    dense_rewards, dense_ends = rollout_rewards(dense, seed=0, n_steps=n_steps)
    delayed_rewards, delayed_ends = rollout_rewards(delayed, seed=0, n_steps=n_steps)
    dense.close()
    delayed.close()
    assert delayed_ends == dense_ends and sum(dense_ends) == 3
    assert [r != 0.0 for r in delayed_rewards] == delayed_ends  # paid at the last step only
    np.testing.assert_allclose(
        episode_sums(delayed_rewards, delayed_ends), episode_sums(dense_rewards, dense_ends)
    )
    assert episode_sums(delayed_rewards, delayed_ends)[0] < -1.0


def test_delayed_reward_is_paid_on_termination():
    env = gym.make("rlrobot/CartPole-v0", reward_mode="delayed")
    env.reset(seed=0)
    rewards, terminated = [], False
    while not terminated:
        _, reward, terminated, _, info = env.step(1)  # topples within ~30 steps
        rewards.append(reward)
        assert info["reward_alive"] == 1.0  # the earned term is still reported
    env.close()
    assert rewards[:-1] == [0.0] * (len(rewards) - 1)
    assert rewards[-1] == len(rewards)


def test_delayed_goal_env_offers_no_compute_reward():
    env = gym.make("rlrobot/Reach-v0", reward_mode="delayed")
    assert not hasattr(env.unwrapped, "compute_reward")
    with pytest.raises(AttributeError, match="delayed"):
        env.unwrapped.compute_reward(np.zeros(3), np.zeros(3), {})
    env.close()
    assert hasattr(gym.make("rlrobot/Reach-v0").unwrapped, "compute_reward")


def test_delayed_env_built_directly_pays_on_termination_and_on_release():
    env = ReachEnv(reward_mode="delayed")
    env.reset(seed=0)
    zero = np.zeros(3, dtype=np.float32)
    assert env.step(zero)[1] == 0.0 and env.step(zero)[1] == 0.0
    withheld = env.release_withheld_reward()
    assert withheld < 0.0  # two −distance rewards
    assert env.release_withheld_reward() == 0.0  # released once
    env.close()
    dense = ReachEnv()
    assert dense.release_withheld_reward() == 0.0
    dense.close()


@pytest.mark.parametrize("period", [None, 4])
def test_delayed_reward_wrapper_keeps_episode_totals_of_any_env(period):
    env = DelayedReward(gym.make("Pendulum-v1", max_episode_steps=10), period=period)
    plain = gym.make("Pendulum-v1", max_episode_steps=10)
    rewards, ends = rollout_rewards(env, seed=0, n_steps=30)
    plain_rewards, plain_ends = rollout_rewards(plain, seed=0, n_steps=30)
    assert ends == plain_ends
    np.testing.assert_allclose(episode_sums(rewards, ends), episode_sums(plain_rewards, ends))
    paid_steps = [step % 10 + 1 for step, reward in enumerate(rewards) if reward != 0.0]
    assert set(paid_steps) == ({10} if period is None else {4, 8, 10})
    _, _, _, _, info = env.step(env.action_space.sample())
    assert "undelayed_reward" in info and info["undelayed_reward"] < 0.0
    assert env.spec.additional_wrappers[-1].kwargs == {"period": period}


def test_delayed_id_wraps_any_env_outside_its_time_limit():
    from rlrobot.envs.registration import DELAYED_ENV_ID

    env = gym.make(DELAYED_ENV_ID, env_id="Pendulum-v1", period=50)
    plain = gym.make("Pendulum-v1")
    rewards, ends = rollout_rewards(env, seed=0, n_steps=400)
    plain_rewards, plain_ends = rollout_rewards(plain, seed=0, n_steps=400)
    assert ends == plain_ends and sum(ends) == 2  # the inner 200-step limit applies
    np.testing.assert_allclose(episode_sums(rewards, ends), episode_sums(plain_rewards, ends))
    assert {step % 200 + 1 for step, r in enumerate(rewards) if r != 0.0} == {50, 100, 150, 200}
    env.close()
    plain.close()


# ---------------------------------------------------------------------- observation modes
@pytest.mark.parametrize("obs_mode", ["pixels", "state+pixels"])
@pytest.mark.parametrize("env_id", rlrobot.ENV_IDS)
def test_pixel_observation_modes_pass_the_checker(env_id, obs_mode):
    env = gym.make(env_id, obs_mode=obs_mode, pixels_width=40, pixels_height=32)
    gymnasium_check_env(env.unwrapped, skip_render_check=True)
    observation, _ = env.reset(seed=0)
    space = env.observation_space
    pixels_space = space["pixels"] if isinstance(space, gym.spaces.Dict) else space
    assert pixels_space == gym.spaces.Box(0, 255, (32, 40, 3), np.uint8)
    keys = set(observation) if isinstance(observation, dict) else set()
    goal = env.unwrapped.task.goal_conditioned
    with_state = obs_mode == "state+pixels"
    if goal:
        assert keys == {"achieved_goal", "desired_goal", "pixels"} | (
            {"observation"} if with_state else set()
        )
    else:
        assert keys == ({"state", "pixels"} if with_state else set())
    env.close()


def moving_action(space: gym.Space) -> np.ndarray | int:
    """An action that moves every robot: the last choice, or alternately full ± on each axis."""
    if isinstance(space, gym.spaces.Discrete):
        return int(space.start + space.n - 1)
    signs = np.resize([1.0, -1.0], space.shape)
    return np.where(signs > 0, space.high, space.low).astype(space.dtype)


@pytest.mark.parametrize("env_id", rlrobot.ENV_IDS)
def test_render_camera_draws_the_view_its_pixels_camera_does(env_id):
    frames = {}
    for camera in ("fixed", "robot"):
        pixels = gym.make(env_id, obs_mode="pixels", pixels_camera=camera, pixels_width=48)
        render = gym.make(
            env_id, obs_mode="pixels", render_mode="rgb_array", render_camera=camera,
            render_width=48, render_height=84,
        )  # fmt: skip
        observation = pixels.reset(seed=3)[0]
        render.reset(seed=3)
        frames[camera] = render.render()
        pixels.close(), render.close()
        np.testing.assert_array_equal(frames[camera], pixels_of(observation))
    assert render.unwrapped.metadata["render_cameras"] == ["fixed", "robot"]
    assert np.abs(frames["fixed"].astype(int) - frames["robot"]).max() > 30


def pixels_of(observation) -> np.ndarray:
    """The image of a pixel observation (goal envs put it under ``pixels``)."""
    return observation["pixels"] if isinstance(observation, dict) else observation


@pytest.mark.parametrize("pixels_camera", ["fixed", "robot"])
@pytest.mark.parametrize("env_id", rlrobot.ENV_IDS)
def test_pixels_change_when_the_robot_moves(env_id, pixels_camera):
    env = gym.make(env_id, obs_mode="pixels", pixels_camera=pixels_camera)
    before = pixels_of(env.reset(seed=0)[0])
    still_env = gym.make(env_id, obs_mode="pixels", pixels_camera=pixels_camera)
    still = pixels_of(still_env.reset(seed=0)[0])
    still_env.close()
    action = moving_action(env.action_space)
    assert env.action_space.contains(action)
    for _ in range(20):
        observation, *_ = env.step(action)
    env.close()
    after = pixels_of(observation)
    assert after.shape == (84, 84, 3) and after.dtype == np.uint8
    np.testing.assert_array_equal(before, still)  # same seed, same image
    changed = np.abs(after.astype(int) - before.astype(int)).max(axis=-1) > 30
    assert changed.sum() >= 20  # of 84 × 84; the car seen from overhead is the smallest mover


def test_render_and_pixel_observations_agree_in_pixel_mode():
    """Pixel envs draw collision shapes everywhere, so render_mode never changes what is seen."""
    kwargs = {"obs_mode": "pixels", "pixels_width": 64, "pixels_height": 64}
    plain = gym.make("rlrobot/Push-v0", **kwargs)
    rendering = gym.make("rlrobot/Push-v0", render_mode="rgb_array", **kwargs)
    np.testing.assert_array_equal(
        plain.reset(seed=0)[0]["pixels"], rendering.reset(seed=0)[0]["pixels"]
    )
    plain.close()
    rendering.close()


# ---------------------------------------------------------------------- randomisation
def link_masses(env: gym.Env, body: str) -> np.ndarray:
    sim = env.unwrapped.sim
    return np.array(
        [sim.get_dynamics_info(body, link)[0] for link in range(-1, sim.get_num_joints(body))]
    )


RANDOMIZED = {"mass_scale": [0.5, 1.5], "friction_scale": [0.5, 1.5], "actuator_scale": [0.5, 1.5]}


def test_randomisation_changes_the_physics_and_is_reproducible_by_seed():
    nominal_env = gym.make("rlrobot/Quadruped-v0")
    nominal = link_masses(nominal_env, "ant")
    randomized = [gym.make("rlrobot/Quadruped-v0", randomization=RANDOMIZED) for _ in range(2)]
    outcomes = []
    for env, seed in [(randomized[0], 1), (randomized[1], 1), (randomized[0], 2)]:
        env.reset(seed=seed)
        masses = link_masses(env, "ant")
        ratio = masses[nominal > 0] / nominal[nominal > 0]
        assert ((ratio >= 0.5) & (ratio <= 1.5)).all() and ratio.std() > 0.05
        assert 0.5 <= env.unwrapped.robot.actuator_scale <= 1.5
        action = np.full(8, 0.5, dtype=np.float32)
        observation = [env.step(action)[0] for _ in range(20)][-1]
        outcomes.append((masses, env.unwrapped.robot.actuator_scale, observation))
    nominal_env.reset(seed=1)
    nominal_observation = [nominal_env.step(np.full(8, 0.5, np.float32))[0] for _ in range(20)][-1]
    for env in [nominal_env, *randomized]:
        env.close()
    (masses_a, scale_a, obs_a), (masses_b, scale_b, obs_b), (masses_c, _, _) = outcomes
    np.testing.assert_array_equal(masses_a, masses_b)  # same seed, same draw
    assert scale_a == scale_b
    np.testing.assert_array_equal(obs_a, obs_b)
    assert not np.allclose(masses_a, masses_c)  # another seed, another draw
    assert np.abs(obs_a - nominal_observation).max() > 1e-3  # the physics changed


def test_randomisation_is_redrawn_every_episode_and_off_by_default():
    env = gym.make("rlrobot/Push-v0", randomization=True)
    env.reset(seed=0)
    first = link_masses(env, "object")
    env.reset()
    second = link_masses(env, "object")
    env.close()
    assert first[0] != second[0]
    assert 0.8 <= first[0] <= 1.2  # the default range around the cube's 1 kg
    plain = gym.make("rlrobot/Push-v0")
    plain.reset(seed=0)
    assert link_masses(plain, "object")[0] == 1.0
    plain.close()


def test_action_latency_applies_the_action_from_k_steps_ago():
    actions = [np.array([value], dtype=np.float32) for value in (1.0, -0.5, 0.8, -1.0, 0.3, 0.6)]
    lagged = gym.make("rlrobot/CartPoleContinuous-v0", randomization={"action_latency": (2, 2)})
    lagged.reset(seed=0)
    lagged_observations = [lagged.step(action)[0] for action in actions]
    lagged.close()
    # With a lag of 2 the robot applies a0, a0, a0, a1, a2, a3.
    applied = [actions[0], actions[0], actions[0], actions[1], actions[2], actions[3]]
    plain = gym.make("rlrobot/CartPoleContinuous-v0")
    plain.reset(seed=0)
    plain_observations = [plain.step(action)[0] for action in applied]
    plain.close()
    np.testing.assert_array_equal(lagged_observations, plain_observations)


def test_observation_noise_perturbs_the_state_but_not_the_goals():
    noisy = gym.make("rlrobot/Reach-v0", randomization={"observation_noise": 0.01})
    exact = gym.make("rlrobot/Reach-v0")
    noisy_obs, _ = noisy.reset(seed=0)
    exact_obs, _ = exact.reset(seed=0)
    noisy.close()
    exact.close()
    noise = noisy_obs["observation"] - exact_obs["observation"]
    assert 0.002 < np.abs(noise).mean() < 0.03
    np.testing.assert_array_equal(noisy_obs["desired_goal"], exact_obs["desired_goal"])
    np.testing.assert_array_equal(noisy_obs["achieved_goal"], exact_obs["achieved_goal"])


def test_bad_option_values_are_rejected():
    with pytest.raises(ValueError, match="obs_mode"):
        gym.make("rlrobot/CartPole-v0", obs_mode="rgb")
    with pytest.raises(ValueError, match="pixels_camera"):
        gym.make("rlrobot/CartPole-v0", pixels_camera="top")
    with pytest.raises(ValueError, match=r"render_camera must be one of \('fixed', 'robot'\)"):
        gym.make("rlrobot/CartPole-v0", render_camera="top")
    with pytest.raises(ValueError, match="pixels_width must be an integer"):
        gym.make("rlrobot/CartPole-v0", pixels_width=0)
    with pytest.raises(TypeError, match="horizon"):  # gone: delayed rewards need no horizon
        gym.make("rlrobot/CartPole-v0", horizon=50)
    with pytest.raises(ValueError, match="unknown randomization keys"):
        gym.make("rlrobot/CartPole-v0", randomization={"gravity_scale": (0.9, 1.1)})
    with pytest.raises(
        ValueError, match=r"mass_scale must be a range \(low, high\) with low <= high"
    ):
        DomainRandomization(mass_scale=(1.2, 0.8))
    with pytest.raises(ValueError, match=r"action_latency\[1\] must be an integer .* got 1.5"):
        DomainRandomization(action_latency=(0, 1.5))
