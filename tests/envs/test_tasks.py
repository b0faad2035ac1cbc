"""Task-level behaviour: success, rewards vs `compute_reward`, falls, lidar, scripted control."""

import gymnasium as gym
import numpy as np
import pytest

import rlrobot
from rlrobot.envs.core import GoalRobotTaskEnv
from rlrobot.envs.robots.panda import damped_least_squares

GOAL_KEYS = {"observation", "achieved_goal", "desired_goal"}


def is_goal_space(space: gym.Space) -> bool:
    """Whether `space` is a goal `Dict` (observation, achieved goal, desired goal)."""
    return isinstance(space, gym.spaces.Dict) and set(space.spaces) == GOAL_KEYS


def goal_env_ids() -> list[str]:
    """The registered ids whose (default) observation space is a goal `Dict`."""
    ids = []
    for env_id in rlrobot.ENV_IDS:
        env = gym.make(env_id)
        if is_goal_space(env.observation_space):
            ids.append(env_id)
        env.close()
    return ids


GOAL_ENV_IDS = goal_env_ids()


@pytest.mark.parametrize("env_id", rlrobot.ENV_IDS)
def test_goal_observations_come_with_a_goal_conditioned_task_and_compute_reward(env_id):
    env = gym.make(env_id)
    unwrapped = env.unwrapped
    goal = env_id in GOAL_ENV_IDS
    assert unwrapped.task.goal_conditioned == goal
    assert isinstance(unwrapped, GoalRobotTaskEnv) == goal  # the envs with `compute_reward`
    env.close()


def test_some_registered_envs_are_goal_envs_and_some_are_not():
    assert 0 < len(GOAL_ENV_IDS) < len(rlrobot.ENV_IDS)


# ------------------------------------------------------------------------------ CartPole
def test_cartpole_terminates_when_the_pole_falls():
    env = gym.make("rlrobot/CartPole-v0")
    env.reset(seed=0)
    steps, terminated, truncated = 0, False, False
    while not (terminated or truncated):
        observation, reward, terminated, truncated, _ = env.step(1)  # always push right
        steps += 1
        assert reward == 1.0
    env.close()
    assert terminated and not truncated
    assert abs(observation[2]) > 0.2094 or abs(observation[0]) > 2.4
    assert 5 < steps < 100  # a constant push topples the pole quickly


def test_cartpole_continuous_force_moves_the_cart_in_its_direction():
    env = gym.make("rlrobot/CartPoleContinuous-v0")
    env.reset(seed=0)
    for _ in range(5):
        observation, *_ = env.step(np.array([-1.0], dtype=np.float32))
    env.close()
    assert observation[1] < -0.3  # cart velocity towards −x


def test_cartpole_is_truncated_by_the_time_limit():
    env = gym.make("rlrobot/CartPole-v0", max_episode_steps=7)
    env.reset(seed=0)
    outcomes = [env.step(step % 2)[2:4] for step in range(7)]
    env.close()
    assert outcomes[-1] == (False, True)


def test_cartpole_sparse_reward_is_one_only_while_the_pole_is_near_upright():
    env = gym.make("rlrobot/CartPole-v0", reward_mode="sparse", success_angle=0.1)
    env.reset(seed=0)
    rewards, angles = [], []
    terminated = False
    while not terminated:
        observation, reward, terminated, _, info = env.step(1)
        rewards.append(reward)
        angles.append(abs(observation[2]))
        assert info["is_success"] == (reward == 1.0)
    env.close()
    np.testing.assert_array_equal(rewards, (np.array(angles) < 0.1).astype(float))
    assert rewards[-1] == 0.0 and max(rewards) == 1.0


# ---------------------------------------------------------------------- goal-conditioned
@pytest.mark.parametrize("reward_mode", ["dense", "sparse"])
@pytest.mark.parametrize("env_id", GOAL_ENV_IDS)
def test_compute_reward_matches_step_reward(env_id, reward_mode):
    env = gym.make(env_id, reward_mode=reward_mode)
    observation, _ = env.reset(seed=1)
    env.action_space.seed(1)
    achieved, desired, rewards = [], [], []
    for _ in range(20):
        observation, reward, _, _, info = env.step(env.action_space.sample())
        achieved.append(observation["achieved_goal"])
        desired.append(observation["desired_goal"])
        rewards.append(reward)
        single = env.unwrapped.compute_reward(
            observation["achieved_goal"], observation["desired_goal"], info
        )
        assert single == reward
    batched = env.unwrapped.compute_reward(np.array(achieved), np.array(desired), {})
    # Relabelled goals (HER) get the reward of the new goal, not the episode's.
    relabelled = env.unwrapped.compute_reward(np.array(achieved), np.array(achieved), {})
    env.close()
    assert batched.shape == (20,)
    np.testing.assert_array_equal(batched, rewards)
    np.testing.assert_array_equal(relabelled, np.zeros(20))


@pytest.mark.parametrize("env_id", GOAL_ENV_IDS)
def test_success_exactly_when_the_goal_is_reached(env_id):
    env = gym.make(env_id, reward_mode="sparse")
    observation, info = env.reset(seed=0)
    assert not info["is_success"]
    task = env.unwrapped.task
    zero = np.zeros(env.action_space.shape, dtype=np.float32)
    task.set_goal(observation["achieved_goal"].astype(np.float64))
    _, reward, _, _, info = env.step(zero)
    assert info["is_success"] and reward == 0.0
    offset = np.zeros_like(task.goal)
    offset[0] = 2 * task.distance_threshold
    task.set_goal(task.goal + offset)
    _, reward, _, _, info = env.step(zero)
    env.close()
    assert not info["is_success"] and reward == -1.0


@pytest.mark.parametrize("control_mode", ["ee", "joints"])
def test_reach_scripted_policy_reaches_the_target(control_mode):
    """A proportional controller on the observation solves Reach in the end-effector mode."""
    env = gym.make("rlrobot/Reach-v0", control_mode=control_mode)
    observation, _ = env.reset(seed=2)
    start_distance = np.linalg.norm(observation["achieved_goal"] - observation["desired_goal"])
    for _ in range(50):
        if control_mode == "ee":
            action = np.clip(
                (observation["desired_goal"] - observation["achieved_goal"]) / 0.05, -1, 1
            )
        else:
            action = np.zeros(7)
        observation, _, _, _, info = env.step(action.astype(np.float32))
    env.close()
    end_distance = np.linalg.norm(observation["achieved_goal"] - observation["desired_goal"])
    if control_mode == "ee":
        assert info["is_success"] and end_distance < 0.05
    else:  # zero joint displacement holds the arm where it is
        assert end_distance == pytest.approx(start_distance, abs=0.01)


def test_damped_least_squares_matches_the_closed_form():
    rng = np.random.default_rng(0)
    for _ in range(20):
        jacobian, error = rng.normal(size=(3, 7)), rng.normal(size=3)
        expected = jacobian.T @ np.linalg.solve(jacobian @ jacobian.T + 1e-4 * np.eye(3), error)
        np.testing.assert_allclose(damped_least_squares(jacobian, error, 0.01), expected)


def test_push_scripted_push_moves_the_cube_along_the_push():
    """Lower the closed fingers behind the cube, then sweep +x: the cube slides +x."""
    env = gym.make("rlrobot/Push-v0", object_range=0.0)  # cube starts at the origin
    observation, _ = env.reset(seed=0)
    cube = observation["achieved_goal"].copy()

    def move_to(target, steps):
        nonlocal observation
        for _ in range(steps):
            error = (target - observation["observation"][:3]) / 0.05
            observation, *_ = env.step(np.clip(error, -1, 1).astype(np.float32))

    move_to(cube + np.array([-0.1, 0.0, 0.1]), 15)  # above and behind the cube
    move_to(cube + np.array([-0.1, 0.0, 0.02]), 10)  # down to cube height
    move_to(cube + np.array([0.05, 0.0, 0.02]), 20)  # sweep through the cube's place
    env.close()
    displacement = observation["achieved_goal"] - cube
    assert displacement[0] > 0.05  # pushed forward...
    assert abs(displacement[1]) < 0.05  # ...without being knocked sideways
    assert observation["achieved_goal"][2] == pytest.approx(0.02, abs=0.005)  # still on the table


# ------------------------------------------------------------------------------ Navigate
def test_navigate_lidar_ranges_shrink_as_an_obstacle_comes_closer():
    env = gym.make("rlrobot/Navigate-v0", n_obstacles=1, n_rays=8, ray_length=3.0)
    env.reset(seed=0)
    unwrapped = env.unwrapped
    yaw = unwrapped.robot.start_yaw
    heading = np.array([np.cos(yaw), np.sin(yaw)])
    facing = unwrapped.sim.quaternion_from_euler((0.0, 0.0, yaw))  # a face square to the ray
    front = []
    for distance in (2.5, 1.5, 1.0):
        x, y = distance * heading
        unwrapped.sim.set_base_pose("obstacle_0", (x, y, 0.2), facing)
        ranges = unwrapped.robot.get_ranges(yaw)
        # The lidar sits 0.265 m ahead of the base; the obstacle's face is 0.15 m before it.
        assert ranges[0] == pytest.approx(distance - 0.15 - 0.265, abs=0.03)
        assert ranges[4] == pytest.approx(3.0)  # nothing behind the car
        front.append(ranges[0])
    unwrapped.sim.set_base_pose("obstacle_0", (10.0, 10.0, 0.2))  # out of range
    assert unwrapped.robot.get_ranges(yaw)[0] == pytest.approx(3.0)
    env.close()
    assert front[0] > front[1] > front[2]


def test_navigate_full_speed_ahead_drives_along_the_heading():
    env = gym.make("rlrobot/Navigate-v0", n_obstacles=0)
    observation, _ = env.reset(seed=3)
    start, yaw = observation["achieved_goal"].copy(), env.unwrapped.robot.start_yaw
    for _ in range(20):  # 1 s
        observation, *_ = env.step(np.array([1.0, 0.0], dtype=np.float32))
    env.close()
    displacement = observation["achieved_goal"] - start
    assert 0.5 < np.linalg.norm(displacement) < 1.2  # ≈ 1 m/s after spinning up
    direction = displacement / np.linalg.norm(displacement)
    assert direction @ [np.cos(yaw), np.sin(yaw)] > 0.98
    assert observation["observation"][4] > 0.7  # forward speed (m/s) in the car frame


def test_navigate_obstacles_keep_clear_of_start_and_goal():
    env = gym.make("rlrobot/Navigate-v0", n_obstacles=6)
    for seed in range(5):
        observation, _ = env.reset(seed=seed)
        goal = observation["desired_goal"]
        assert np.linalg.norm(goal) >= 1.0
        for name in env.unwrapped.task.obstacle_names:
            centre = env.unwrapped.sim.get_base_position(name)[:2]
            assert np.linalg.norm(centre) >= 0.7 and np.linalg.norm(centre - goal) >= 0.5
    env.close()


# ----------------------------------------------------------------------------- Quadruped
def test_quadruped_fall_terminates_with_info_fell():
    env = gym.make("rlrobot/Quadruped-v0")
    env.reset(seed=0)
    unwrapped = env.unwrapped
    upside_down = unwrapped.sim.quaternion_from_euler((np.pi, 0.0, 0.0))
    unwrapped.sim.set_base_pose("ant", (0.0, 0.0, 0.6), upside_down)
    _, reward, terminated, truncated, info = env.step(np.zeros(8, dtype=np.float32))
    env.close()
    assert terminated and not truncated
    assert info["fell"] and info["reward_alive"] == 0.0
    assert reward == pytest.approx(info["reward_forward"] + info["reward_energy"])


def test_quadruped_without_torques_settles_on_its_legs():
    env = gym.make("rlrobot/Quadruped-v0")
    env.reset(seed=0)
    for _ in range(240):  # 4 s: the limp legs splay until the ankles reach their limits
        observation, _, terminated, _, info = env.step(np.zeros(8, dtype=np.float32))
        assert not terminated and not info["fell"] and info["reward_alive"] == 1.0
    env.close()
    assert 0.4 < observation[0] < 0.7  # torso height on its legs (m)
    assert np.linalg.norm(observation[5:8]) < 0.05  # at rest
    assert info["reward_energy"] == 0.0


def test_quadruped_random_torques_cost_energy_and_move_the_joints():
    env = gym.make("rlrobot/Quadruped-v0")
    env.reset(seed=0)
    env.action_space.seed(0)
    energies = [env.step(env.action_space.sample())[4]["reward_energy"] for _ in range(30)]
    env.close()
    assert all(energy <= 0.0 for energy in energies) and min(energies) < -0.01


def test_quadruped_sparse_success_after_walking_success_distance():
    env = gym.make("rlrobot/Quadruped-v0", reward_mode="sparse", success_distance=1.0)
    env.reset(seed=0)
    zero = np.zeros(8, dtype=np.float32)
    assert env.step(zero)[1] == 0.0
    position = env.unwrapped.sim.get_base_position("ant")
    env.unwrapped.sim.set_base_pose("ant", position + np.array([1.05, 0.0, 0.0]))
    _, reward, _, _, info = env.step(zero)
    env.close()
    assert reward == 1.0 and info["is_success"]
