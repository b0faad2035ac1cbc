"""SB3's callbacks guide, run with SB3's agents and with ours: each callback must fire the same.

Every example is parametrised over ``FRAMEWORKS``: the same snippet gets SB3's PPO/SAC or ours
(``rlrobot.agents``), built from the same arguments. Ours saves checkpoints in its own format
(no pickle), so saved models are matched by name stem (``best_model``, ``rl_model_16_steps``),
not by SB3's ``.zip`` suffix.
"""

import copy
import csv
import os
import pathlib
import re

import gymnasium as gym
import numpy as np
import pytest
import stable_baselines3 as sb3
import torch
from gymnasium.spaces import Box
from stable_baselines3.common import callbacks as sb3_callbacks
from stable_baselines3.common.callbacks import (
    BaseCallback,
    CallbackList,
    CheckpointCallback,
    EvalCallback,
    EveryNTimesteps,
    LogEveryNTimesteps,
    ProgressBarCallback,
    StopTrainingOnMaxEpisodes,
    StopTrainingOnNoModelImprovement,
    StopTrainingOnRewardThreshold,
)
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import configure
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

import rlrobot.agents
import rlrobot.vec
from rlrobot.agents.callbacks import to_vec_env_infos
from rlrobot.common.logger import Logger
from rlrobot.errors import UnsupportedEnvError

FRAMEWORKS = ["sb3", "rlrobot"]
PPO_ARGS = {"n_steps": 16, "batch_size": 16, "n_epochs": 1, "seed": 0}
SAC_ARGS = {"learning_starts": 50, "batch_size": 32, "seed": 0}


def make_ppo(framework, n_envs=1, **kwargs):
    """PPO on CartPole with small rollouts in ``n_envs`` envs, SB3's or ours."""
    if framework == "sb3":
        env = make_vec_env("CartPole-v1", n_envs=n_envs)
        return sb3.PPO("MlpPolicy", env, **PPO_ARGS, **kwargs)
    return rlrobot.agents.PPO("CartPole-v1", n_envs=n_envs, **PPO_ARGS, **kwargs)


def make_sac(framework, **kwargs):
    """SAC on Pendulum (200-step episodes), SB3's or ours."""
    if framework == "sb3":
        return sb3.SAC("MlpPolicy", "Pendulum-v1", **SAC_ARGS, **kwargs)
    return rlrobot.agents.SAC("Pendulum-v1", **SAC_ARGS, **kwargs)


def make_td3(framework, **kwargs):
    """TD3 on Pendulum, SB3's or ours."""
    if framework == "sb3":
        return sb3.TD3("MlpPolicy", "Pendulum-v1", **SAC_ARGS, **kwargs)
    return rlrobot.agents.TD3("Pendulum-v1", **SAC_ARGS, **kwargs)


def saved_steps(folder, prefix):
    """The steps of the models a CheckpointCallback saved in ``folder`` (either format)."""
    pattern = re.compile(rf"{re.escape(prefix)}_(\d+)_steps")
    return sorted(int(match[1]) for path in folder.iterdir() if (match := pattern.match(path.name)))


class HookCounter(BaseCallback):
    """The callbacks guide's custom callback: counts every hook and logs with ``self.logger``."""

    def __init__(self):
        super().__init__()
        self.counts = dict.fromkeys(["start", "rollout_start", "rollout_end", "end"], 0)
        self.episode_returns = []

    def _on_training_start(self):
        self.counts["start"] += 1
        self.total_timesteps = self.locals["total_timesteps"]

    def _on_rollout_start(self):
        self.counts["rollout_start"] += 1

    def _on_step(self):
        # What the guide's examples read: the step's infos (Monitor's episode) and dones.
        for info, done in zip(self.locals["infos"], self.locals["dones"], strict=True):
            if done:
                self.episode_returns.append(info["episode"]["r"])
                assert "terminal_observation" in info
        self.logger.record("custom/n_calls", self.n_calls)
        return True

    def _on_rollout_end(self):
        self.counts["rollout_end"] += 1

    def _on_training_end(self):
        self.counts["end"] += 1


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_custom_callback_sees_every_hook_and_logs_through_sb3s_logger(framework, tmp_path):
    model = make_ppo(framework)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    counter = HookCounter()
    model.learn(64, callback=counter)
    assert counter.n_calls == model.num_timesteps == 64
    assert counter.counts == {"start": 1, "rollout_start": 4, "rollout_end": 4, "end": 1}
    assert counter.total_timesteps == 64
    assert counter.episode_returns  # CartPole episodes of a random policy last ~22 steps
    assert all(value > 0 for value in counter.episode_returns)
    header = (tmp_path / "progress.csv").read_text().splitlines()[0].split(",")
    assert "custom/n_calls" in header
    assert "time/total_timesteps" in header


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_off_policy_loop_calls_sb3_hooks_every_step(framework):
    model = make_sac(framework)
    counter = HookCounter()
    stop = StopTrainingOnMaxEpisodes(max_episodes=1)
    model.learn(1000, callback=[counter, stop])
    # One Pendulum episode is 200 steps; with train_freq=1 every step is one "rollout".
    assert model.num_timesteps == counter.n_calls == 200
    assert counter.counts["rollout_start"] == 200
    assert counter.counts["rollout_end"] == 199  # the stopping step ends no collection
    assert counter.counts["end"] == 1
    assert stop.n_episodes == 1
    assert len(counter.episode_returns) == 1


# Ours trains in a Gymnasium vector env, not a DummyVecEnv: EvalCallback warns that they differ.
SAME_TYPE_WARNING = "ignore:Training and eval env are not of the same type"


@pytest.mark.filterwarnings(SAME_TYPE_WARNING)
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_eval_callback_saves_the_best_model_and_stops_at_the_reward_threshold(framework, tmp_path):
    model = make_ppo(framework)
    stop = StopTrainingOnRewardThreshold(reward_threshold=1.0, verbose=0)  # any episode reaches it
    eval_callback = EvalCallback(
        Monitor(gym.make("CartPole-v1")),
        callback_on_new_best=stop,
        n_eval_episodes=2,
        eval_freq=24,
        best_model_save_path=str(tmp_path / "best"),
        log_path=str(tmp_path / "logs"),
        verbose=0,
    )
    model.learn(10_000, callback=eval_callback)
    assert model.num_timesteps == 24  # stopped at the first evaluation, mid-rollout
    assert eval_callback.best_mean_reward >= 1.0
    assert [path.stem for path in (tmp_path / "best").iterdir()] == ["best_model"]
    evaluations = np.load(tmp_path / "logs" / "evaluations.npz")
    assert evaluations["timesteps"].tolist() == [24]


@pytest.mark.filterwarnings(SAME_TYPE_WARNING)
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_eval_callback_with_no_model_improvement_stops_after_evaluations(framework):
    model = make_ppo(framework)
    stop = StopTrainingOnNoModelImprovement(max_no_improvement_evals=1, min_evals=1)
    eval_callback = EvalCallback(
        Monitor(gym.make("CartPole-v1")),
        callback_after_eval=stop,
        n_eval_episodes=1,
        eval_freq=16,
        verbose=0,
        warn=False,
    )
    model.learn(2000, callback=eval_callback)
    assert eval_callback.n_calls % 16 == 0  # only an evaluation stops training
    assert 32 <= model.num_timesteps < 2000
    assert stop.no_improvement_evals > 1


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_checkpoint_callback_saves_every_save_freq_steps(framework, tmp_path):
    model = make_ppo(framework)
    model.learn(64, callback=CheckpointCallback(save_freq=16, save_path=str(tmp_path)))
    assert saved_steps(tmp_path, "rl_model") == [16, 32, 48, 64]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_checkpoint_callback_saves_sac_replay_buffers(framework, tmp_path):
    model = make_sac(framework)
    callback = CheckpointCallback(save_freq=30, save_path=str(tmp_path), save_replay_buffer=True)
    model.learn(60, callback=callback)
    assert saved_steps(tmp_path, "rl_model") == [30, 60]
    assert saved_steps(tmp_path, "rl_model_replay_buffer") == [30, 60]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_every_n_timesteps_and_callback_list(framework, tmp_path):
    model = make_ppo(framework)
    counter = HookCounter()
    every = EveryNTimesteps(n_steps=20, callback=counter)
    checkpoints = CheckpointCallback(save_freq=32, save_path=str(tmp_path))
    model.learn(64, callback=CallbackList([every, checkpoints]))
    assert counter.n_calls == 3  # at steps 20, 40 and 60
    assert saved_steps(tmp_path, "rl_model") == [32, 64]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_log_every_n_timesteps_dumps_the_episode_statistics(framework, tmp_path):
    model = make_ppo(framework)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(160, callback=LogEveryNTimesteps(n_steps=50))
    with open(tmp_path / "progress.csv") as file:
        rows = list(csv.DictReader(file))
    dumped = [int(row["time/total_timesteps"]) for row in rows if row.get("rollout/ep_rew_mean")]
    assert {50, 100, 150} <= set(dumped)  # the callback's dumps, beside the per-rollout ones
    episodes = list(model.ep_info_buffer)
    assert episodes and all(set(info) >= {"r", "l"} and info["l"] > 0 for info in episodes)
    assert all(info["r"] == info["l"] for info in episodes)  # CartPole pays 1 per step


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_stop_training_on_max_episodes(framework):
    model = make_ppo(framework, n_envs=2)
    stop = StopTrainingOnMaxEpisodes(max_episodes=2)  # per env: 4 episodes in all
    model.learn(10_000, callback=stop)
    assert stop.n_episodes >= 4
    assert model.num_timesteps < 200  # random CartPole episodes last ~22 steps


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_progress_bar_callback_counts_every_step(framework, monkeypatch):
    import tqdm

    bars = []

    class RecordingBar(tqdm.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs, disable=True)
            self.steps = 0
            bars.append(self)

        def update(self, n=1):
            self.steps += n

    monkeypatch.setattr(sb3_callbacks, "tqdm", RecordingBar)  # SB3's bar needs rich otherwise
    model = make_ppo(framework)
    model.learn(48, callback=ProgressBarCallback())
    (bar,) = bars
    assert bar.total == bar.steps == 48


def test_plain_callables_are_called_after_every_iteration():
    agent = make_ppo("rlrobot")
    calls = []
    agent.learn(64, callback=[lambda a: calls.append(a.num_timesteps), HookCounter()])
    assert calls == [16, 32, 48, 64]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_evaluate_policy_on_a_vec_env_and_policy_predict(framework):
    model = make_ppo(framework)
    eval_env = make_vec_env("CartPole-v1", n_envs=2, seed=1)
    rewards, lengths = evaluate_policy(
        model, eval_env, n_eval_episodes=4, return_episode_rewards=True
    )
    assert len(rewards) == len(lengths) == 4
    observations = eval_env.reset()
    actions, _ = model.predict(observations, deterministic=True)
    assert actions.shape == (2,)
    np.testing.assert_array_equal(
        model.policy.predict(observations, deterministic=True)[0], actions
    )


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_sb3_attributes_and_env_methods(framework):
    model = make_ppo(framework)
    assert model.n_envs == model.get_env().num_envs == 1
    assert isinstance(model.observation_space, Box)
    assert model.observation_space.shape == (4,)
    assert model.action_space == gym.spaces.Discrete(2)
    assert model.get_vec_normalize_env() is None
    assert model.num_timesteps == 0
    model.set_env(make_vec_env("CartPole-v1", n_envs=1) if framework == "sb3" else "CartPole-v1")
    model.learn(16)
    assert model.num_timesteps == 16
    model.learn(16, reset_num_timesteps=False)
    assert model.num_timesteps == 32
    model.learn(16)  # SB3's default restarts the count
    assert model.num_timesteps == 16
    with pytest.raises(UnsupportedEnvError if framework == "rlrobot" else ValueError):
        model.set_env(make_vec_env("Acrobot-v1", n_envs=1) if framework == "sb3" else "Acrobot-v1")


@pytest.mark.parametrize(
    ("make", "keys"),
    [
        (make_ppo, {"policy", "policy.optimizer"}),
        (make_sac, {"policy", "actor.optimizer", "critic.optimizer"}),
        (make_td3, {"policy", "actor.optimizer", "critic.optimizer"}),
    ],
    ids=["ppo", "sac", "td3"],
)
def test_get_and_set_parameters_use_sb3s_keys(make, keys, tmp_path):
    sb3_keys = set(make("sb3").get_parameters())
    assert keys <= sb3_keys  # SB3's SAC adds "ent_coef_optimizer"; ours steps α with the actor
    source, target = make("rlrobot"), make("rlrobot")
    # Other weights than target's (built with the same seed), so that loading shows.
    torch.manual_seed(5)
    for tensor in source.get_parameters()["policy"].values():
        tensor.normal_()
    parameters = source.get_parameters()
    assert set(parameters) == keys
    observations = np.stack([source.observation_space.sample() for _ in range(8)])
    expected, _ = source.predict(observations, deterministic=True)
    target.set_parameters(parameters)
    np.testing.assert_array_equal(target.predict(observations, deterministic=True)[0], expected)
    with pytest.raises(ValueError, match="names of parameters do not match"):
        target.set_parameters({"policy": parameters["policy"]})
    target.set_parameters({"policy": parameters["policy"]}, exact_match=False)
    # An optimizer state is checked as a checkpoint's, before anything is loaded.
    source.learn(source.learning_starts + 64 if hasattr(source, "learning_starts") else 64)
    trained = source.get_parameters()
    key = sorted(keys - {"policy"})[0]
    assert trained[key]["state"]  # the steps above filled it
    forged = copy.deepcopy(trained)
    first = next(iter(forged[key]["state"].values()))
    first["exp_avg_sq"].fill_(-1.0)
    before = target.get_parameters()
    with pytest.raises(ValueError, match=rf"set_parameters: {key}.*negative values"):
        target.set_parameters(forged)
    after = target.get_parameters()
    assert all(torch.equal(after["policy"][k], v) for k, v in before["policy"].items())
    target.set_parameters(trained)
    parameters = trained
    expected, _ = source.predict(observations, deterministic=True)
    source.save(tmp_path / "model")
    fresh = make("rlrobot")
    fresh.set_parameters(tmp_path / "model")
    np.testing.assert_array_equal(fresh.predict(observations, deterministic=True)[0], expected)
    np.testing.assert_array_equal(
        fresh.policy.predict(observations, deterministic=True)[0], expected
    )


def logged_steps(folder):
    """The ``time/total_timesteps`` of every row SB3's CSV logger wrote in ``folder``."""
    with (folder / "progress.csv").open() as file:
        return [int(float(row["time/total_timesteps"])) for row in csv.DictReader(file)]


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize(
    ("make", "steps", "log_interval", "expected"),
    [(make_ppo, 64, 2, [32, 64]), (make_sac, 400, 1, [200, 400])],
    ids=["ppo-every-2-rollouts", "sac-every-episode"],
)
def test_log_interval_counts_as_in_sb3(framework, make, steps, log_interval, expected, tmp_path):
    model = make(framework)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(steps, log_interval=log_interval)
    assert logged_steps(tmp_path) == expected


@pytest.mark.filterwarnings(SAME_TYPE_WARNING)
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_training_stops_once_the_evaluated_policy_balances_cartpole(framework):
    # The callbacks guide's "stop training when the model reaches a reward threshold", trained
    # for real. It stopped, over seeds 0-9 (ours) and 0-5 (SB3), by step 10 240 (ours) and
    # 12 288 (SB3) of the 30 000 allowed; an untrained (near-uniform) policy scores ~22.
    args = {"n_steps": 32, "batch_size": 256, "n_epochs": 20, "gamma": 0.98, "gae_lambda": 0.8}
    args["learning_rate"] = 1e-3
    if framework == "sb3":
        model = sb3.PPO("MlpPolicy", make_vec_env("CartPole-v1", n_envs=8, seed=0), seed=0, **args)
    else:
        model = rlrobot.agents.PPO("CartPole-v1", n_envs=8, seed=0, **args)
    eval_env = Monitor(gym.make("CartPole-v1"))
    eval_env.reset(seed=1000)
    untrained, _ = evaluate_policy(model, eval_env, n_eval_episodes=5, deterministic=False)
    stop = StopTrainingOnRewardThreshold(reward_threshold=150)
    eval_callback = EvalCallback(
        eval_env,
        callback_on_new_best=stop,
        eval_freq=256,
        n_eval_episodes=5,
        deterministic=False,  # CartPole's greedy untrained policy may already balance it
        verbose=0,
    )
    model.learn(30_000, callback=eval_callback)
    assert untrained < 150
    assert eval_callback.best_mean_reward >= 150
    assert model.num_timesteps < 30_000  # stopped by the callback, at an evaluation
    assert model.num_timesteps % (256 * 8) == 0


def test_callbacks_read_infos_as_a_dummy_vec_env_gives_them():
    def make_env():
        return gym.make("CartPole-v1", max_episode_steps=3)

    theirs = DummyVecEnv([make_env])
    theirs.seed(0)
    theirs.reset()
    ours = rlrobot.vec.make_vec_env(make_env)
    ours.reset(seed=0)
    for _ in range(3):
        their_step = theirs.step(np.array([0]))
        new_obs, _, terminated, truncated, infos = ours.step(np.array([0]))
    (their_info,) = their_step[3]
    (info,) = to_vec_env_infos(infos, terminated, truncated)
    assert info["TimeLimit.truncated"] is their_info["TimeLimit.truncated"] is True
    np.testing.assert_array_equal(info["terminal_observation"], their_info["terminal_observation"])
    np.testing.assert_array_equal(new_obs, their_step[0])  # the next episode's start


def test_our_logger_takes_sb3s_exclude(tmp_path):
    logger = Logger(tmp_path, outputs=("csv",))
    logger.record("eval/mean_reward", 1.0)
    logger.record("time/total_timesteps", 16, exclude="csv")
    logger.dump()
    assert logger.history == [{"step": 0.0, "eval/mean_reward": 1.0, "time/total_timesteps": 16.0}]
    assert (tmp_path / "progress.csv").read_text().splitlines()[0] == "step,eval/mean_reward"


class SaveOnBestTrainingRewardCallback(BaseCallback):
    """The callbacks guide's example: save the model when the Monitor's mean return improves.

    The guide reads the Monitor's file with ``load_results``, which needs pandas; this copy
    reads the CSV itself.
    """

    def __init__(self, check_freq, log_dir):
        super().__init__()
        self.check_freq, self.log_dir = check_freq, log_dir
        self.save_path = os.path.join(log_dir, "best_model")
        self.best_mean_reward, self.n_saves = -np.inf, 0

    def _on_step(self):
        if self.n_calls % self.check_freq == 0:
            monitor_file = pathlib.Path(self.log_dir, "monitor.csv")
            lines = monitor_file.read_text().splitlines()[1:]  # after the JSON header line
            y = [float(row["r"]) for row in csv.DictReader(lines)]
            if len(y) > 0 and np.mean(y[-100:]) > self.best_mean_reward:
                self.best_mean_reward = np.mean(y[-100:])
                self.model.save(self.save_path)
                self.n_saves += 1
        return True


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_guide_example_saves_on_best_training_reward(framework, tmp_path):
    env = Monitor(gym.make("CartPole-v1"), str(tmp_path))
    if framework == "sb3":
        model = sb3.PPO("MlpPolicy", env, **PPO_ARGS)
    else:
        model = rlrobot.agents.PPO(env, **PPO_ARGS)
    callback = SaveOnBestTrainingRewardCallback(check_freq=32, log_dir=str(tmp_path))
    model.learn(128, callback=callback)
    assert callback.n_saves >= 1  # episodes of ~22 steps end before the first check
    assert [path.stem for path in tmp_path.glob("best_model*")] == ["best_model"]


class StopAfter(BaseCallback):
    """Stops training after ``n_calls`` steps."""

    def __init__(self, n_calls):
        super().__init__()
        self.stop_at = n_calls

    def _on_step(self):
        return self.n_calls < self.stop_at


@pytest.mark.parametrize("redistribution", [None, "uniform"])
def test_a_stop_mid_rollout_drops_it_and_learning_goes_on(redistribution):
    agent = rlrobot.agents.PPO(
        "CartPole-v1", **PPO_ARGS, n_envs=2, reward_redistribution=redistribution
    )
    agent.learn(64, callback=StopAfter(5))
    assert agent.num_timesteps == 10
    # Uniform redistribution's pending chunks hold the dropped steps: those episodes end too.
    assert agent.episodes_in_progress is (redistribution is None)
    agent.learn(32, reset_num_timesteps=False)
    assert agent.num_timesteps == 42
