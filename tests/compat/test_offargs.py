"""SB3's argument forms on our agents: schedules, SAC's ent_coef, train_freq, action-noise
objects, replay_buffer_class, and the SAC/TD3 arguments we accept or refuse.

Where SB3 defines a behaviour, the same snippet runs with SB3's class and with ours.
"""

import json
import warnings

import gymnasium as gym
import numpy as np
import pytest
import stable_baselines3 as sb3
import torch
from stable_baselines3.common.noise import (
    NormalActionNoise,
    OrnsteinUhlenbeckActionNoise,
    VectorizedActionNoise,
)
from stable_baselines3.common.utils import ConstantSchedule as SB3ConstantSchedule
from stable_baselines3.common.utils import FloatSchedule
from stable_baselines3.common.utils import LinearSchedule as SB3LinearSchedule

from rlrobot.agents import PPO, SAC, TD3, HerReplayBuffer
from rlrobot.agents.sac import SACConfig
from rlrobot.common.logger import Logger
from rlrobot.common.schedules import (
    ConstantSchedule,
    LinearSchedule,
    check_schedule,
    describe_schedule,
    get_schedule,
)
from rlrobot.common.yaml_loading import load_yaml
from rlrobot.errors import ConfigError
from tests.agents.test_off_policy import evaluate, make_line

SMALL = {"batch_size": 32, "learning_starts": 50}
NET_ARCH = [32, 32]


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def both(name):
    """SB3's algorithm class and ours, with the keyword SB3 needs for a policy."""
    return [
        (getattr(sb3, name), {"policy": "MlpPolicy", "device": "cpu"}),
        (
            {"PPO": PPO, "SAC": SAC, "TD3": TD3}[name],
            {"device": "cpu"},
        ),
    ]


def make(cls, extra, env, **kwargs):
    return cls(env=env, seed=0, **extra, **kwargs)


# -- schedules: pure functions ----------------------------------------------------------------
def test_schedules_map_progress_remaining_to_values():
    assert ConstantSchedule(0.3)(0.0) == 0.3
    assert LinearSchedule(1e-3)(0.25) == pytest.approx(2.5e-4)
    assert get_schedule(0.2, "linear")(0.5) == pytest.approx(0.1)
    assert get_schedule(0.2)(0.5) == 0.2
    schedule = lambda progress: 0.5 * progress  # noqa: E731
    assert get_schedule(schedule) is schedule


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        (ConstantSchedule(0.1), (0.1, "constant")),
        (LinearSchedule(0.1), (0.1, "linear")),
        (SB3ConstantSchedule(0.1), (0.1, "constant")),
        (SB3LinearSchedule(0.1, 0.0, 1.0), (0.1, "linear")),
        (FloatSchedule(SB3LinearSchedule(0.1, 0.0, 1.0)), (0.1, "linear")),
        (lambda progress: progress * 3e-4, (3e-4, "linear")),  # SB3 docs' linear_schedule
        (SB3LinearSchedule(0.1, 0.01, 0.5), None),
        (lambda progress: 0.1 + progress, None),
    ],
)
def test_describe_schedule_finds_the_float_and_kind_form(schedule, expected):
    described = describe_schedule(schedule)
    if expected is None:
        assert described is None
    else:
        assert described[0] == pytest.approx(expected[0]) and described[1] == expected[1]


@pytest.mark.parametrize(
    ("value", "kind", "message"),
    [
        (lambda progress: float("nan"), "constant", "finite value > 0 at the start"),
        (lambda progress: -1.0, "constant", "finite value > 0 at the start"),
        (lambda progress: "fast", "constant", "must map progress_remaining"),
        (lambda progress: 1e-3, "linear", "leave lr_schedule at 'constant'"),
    ],
)
def test_check_schedule_refuses_bad_schedules(value, kind, message):
    with pytest.raises(ConfigError, match=message):
        check_schedule("learning_rate", value, kind, "lr_schedule")


# -- schedules on the agents ------------------------------------------------------------------
def learning_rates(model):
    """Every optimizer's step size (rounded to 12 digits), SB3's model or ours."""
    optimizers = getattr(model, "optimizers", None)
    if callable(optimizers):  # ours
        return {
            round(group["lr"], 12) for opt in optimizers().values() for group in opt.param_groups
        }
    found = [model.policy.optimizer] if hasattr(model.policy, "optimizer") else []
    found += [
        getattr(model, name).optimizer for name in ("actor", "critic") if hasattr(model, name)
    ]
    return {round(group["lr"], 12) for opt in found for group in opt.param_groups}


@pytest.mark.parametrize(("cls", "extra"), both("PPO"))
def test_ppo_takes_callable_learning_rate_and_clip_ranges(cls, extra):
    def learning_rate(progress):
        return 1e-3 * (0.5 + progress)

    agent = make(
        cls,
        extra,
        "CartPole-v1",
        n_steps=64,
        batch_size=32,
        n_epochs=1,
        learning_rate=learning_rate,
        clip_range=lambda progress: 0.1 + 0.1 * progress,
        clip_range_vf=lambda progress: 0.5,
    )
    agent.learn(256)  # four rollouts: the last update runs at progress_remaining 0
    assert learning_rates(agent) == {5e-4}
    agent.env.close()


def test_ppo_clip_range_schedule_is_followed_and_logged():
    agent = PPO("CartPole-v1", seed=0, device="cpu", n_steps=64, batch_size=32, n_epochs=1)
    agent.config = agent.config.replace(clip_range=lambda progress: 0.1 + 0.1 * progress)
    logger = Logger(outputs=())
    agent.learn(256, logger=logger)
    clip_ranges = [row["train/clip_range"] for row in logger.history]
    # As SB3: each update runs at the progress its rollout reached.
    assert clip_ranges == pytest.approx([0.175, 0.15, 0.125, 0.1])
    agent.env.close()


@pytest.mark.parametrize("name", ["SAC", "TD3"])
@pytest.mark.parametrize("index", [0, 1])
def test_off_policy_callable_learning_rate_reaches_every_optimizer(name, index):
    cls, extra = both(name)[index]
    agent = make(
        cls, extra, "Pendulum-v1", **SMALL, learning_rate=lambda progress: 1e-3 * (0.5 + progress)
    )
    agent.learn(100)  # the last update runs after the last step, at progress_remaining 0
    assert learning_rates(agent) == {5e-4}
    agent.env.close()


def test_a_linear_callable_is_saved_as_the_linear_schedule(tmp_path):
    agent = PPO("CartPole-v1", seed=0, device="cpu", learning_rate=lambda progress: 3e-4 * progress)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # described exactly: no warning
        agent.save(tmp_path / "ppo")
    loaded = PPO.load(tmp_path / "ppo")
    assert loaded.config.learning_rate == pytest.approx(3e-4)
    assert loaded.config.lr_schedule == "linear"
    agent.env.close()


def test_an_undescribable_schedule_is_saved_as_its_current_value_with_a_warning(tmp_path):
    agent = PPO("CartPole-v1", seed=0, device="cpu", n_steps=64, batch_size=32, n_epochs=1)
    agent.config = agent.config.replace(clip_range=lambda progress: 0.1 + 0.1 * progress)
    agent.learn(128)  # progress_remaining ends at 0
    with pytest.warns(UserWarning, match="clip_range=.*saved as the constant 0.1 "):
        agent.save(tmp_path / "ppo")
    loaded = PPO.load(tmp_path / "ppo")
    assert loaded.config.clip_range == pytest.approx(0.1)
    assert loaded.config.clip_range_schedule == "constant"
    agent.env.close()


def test_yaml_forms_of_the_schedules_still_work():
    # rlrobot's YAML reader reads 3e-4 as a number (PyYAML alone reads it as text).
    values = load_yaml("learning_rate: 3e-4\nlr_schedule: linear")
    config = PPO.config_class.from_dict(values)
    assert config.get_schedule("learning_rate")(0.5) == pytest.approx(1.5e-4)


# -- SAC's ent_coef ---------------------------------------------------------------------------
def alpha(model):
    """α of SB3's SAC or ours."""
    if hasattr(model, "entropy"):
        return model.entropy.log_ent_coef.exp().item()
    if model.ent_coef_optimizer is None:
        return model.ent_coef_tensor.item()
    return model.log_ent_coef.exp().item()


@pytest.mark.parametrize(("cls", "extra"), both("SAC"))
def test_a_float_ent_coef_is_a_fixed_alpha(cls, extra):
    agent = make(cls, extra, "Pendulum-v1", **SMALL, ent_coef=0.05)
    agent.learn(150)  # 100 updates
    assert alpha(agent) == pytest.approx(0.05)
    agent.env.close()


@pytest.mark.parametrize(("cls", "extra"), both("SAC"))
@pytest.mark.parametrize(("ent_coef", "initial"), [("auto", 1.0), ("auto_0.1", 0.1)])
def test_auto_ent_coef_starts_at_its_value_and_is_learned(cls, extra, ent_coef, initial):
    agent = make(cls, extra, "Pendulum-v1", **SMALL, ent_coef=ent_coef, target_entropy=-2.0)
    assert alpha(agent) == pytest.approx(initial)
    agent.learn(150)
    assert abs(alpha(agent) - initial) > 1e-3
    assert agent.target_entropy == -2.0
    agent.env.close()


@pytest.mark.parametrize("ent_coef", ["automatic", "auto_", "auto_-1", "auto_x", 0.0])
def test_bad_ent_coef_forms_are_refused(ent_coef):
    with pytest.raises(ConfigError, match=r"'ent_coef'.*'auto_X'"):
        SACConfig(ent_coef=ent_coef).validate()


@pytest.mark.parametrize(
    ("old", "expected"),
    [
        ({"auto_ent_coef": True, "ent_coef": 0.2}, "auto_0.2"),
        ({"auto_ent_coef": True, "ent_coef": 1.0}, "auto_1.0"),
        ({"auto_ent_coef": False, "ent_coef": 0.2}, 0.2),
    ],
)
def test_checkpoints_with_the_old_alpha_keys_load_with_the_same_alpha(tmp_path, old, expected):
    # Saved with as many α parameters as the old form had (learned α: one more optimizer group).
    agent = SAC(make_line(), seed=0, device="cpu", ent_coef="auto" if old["auto_ent_coef"] else 0.3)
    (tmp_path / "sac").mkdir()  # a directory checkpoint: its metadata.json is edited below
    agent.save(tmp_path / "sac")
    metadata_path = tmp_path / "sac" / "metadata.json"
    metadata = json.loads(metadata_path.read_text())
    # The form rlrobot saved before ent_coef took SB3's meaning.
    metadata["config"] = {**metadata["config"], **old, "target_entropy": None}
    metadata_path.write_text(json.dumps(metadata))
    loaded = SAC.load(tmp_path / "sac")
    assert loaded.config.ent_coef == expected
    assert loaded.config.target_entropy == "auto"
    assert loaded.auto_ent_coef is isinstance(expected, str)
    agent.env.close()


# -- train_freq and gradient_steps ------------------------------------------------------------
@pytest.mark.parametrize(("cls", "extra"), both("TD3"))
@pytest.mark.parametrize(
    ("train_freq", "gradient_steps", "updates"),
    [
        # Pendulum's episodes are 200 steps; learning starts after step 50. (learn stops at
        # 400, where SB3 too ends a phase: it would finish a phase past total_timesteps.)
        ((1, "episode"), -1, 400),  # at steps 200 and 400, 200 steps each
        ((2, "episode"), 5, 5),  # at step 400
        ((100, "step"), 2, 8),  # at steps 100, 200, 300, 400
        (50, -1, 350),  # at steps 100 … 400, 50 each
    ],
)
def test_train_freq_forms_train_when_and_as_much_as_sb3(
    cls, extra, train_freq, gradient_steps, updates
):
    agent = make(
        cls,
        extra,
        "Pendulum-v1",
        **SMALL,
        train_freq=train_freq,
        gradient_steps=gradient_steps,
        policy_delay=1,
    )
    agent.learn(400)
    assert getattr(agent, "n_updates", getattr(agent, "_n_updates", None)) == updates
    agent.env.close()


def test_train_freq_is_refused_in_other_forms():
    with pytest.raises(ConfigError, match="'train_freq'"):
        TD3.config_class.from_dict({"train_freq": (2, "epoch")})
    with pytest.raises(ConfigError, match=r"'train_freq': must be an integer in \[1, inf\), got 0"):
        TD3.config_class.from_dict({"train_freq": [0, "step"]})


# -- action noise -----------------------------------------------------------------------------
class CountingNoise(NormalActionNoise):
    """SB3's Gaussian noise that counts its resets."""

    def __init__(self):
        super().__init__(np.zeros(1), 0.1 * np.ones(1))
        self.resets = 0

    def reset(self):
        self.resets += 1


@pytest.mark.parametrize(("cls", "extra"), both("TD3"))
def test_noise_is_reset_at_each_episode_end(cls, extra):
    noise = CountingNoise()
    agent = make(cls, extra, "Pendulum-v1", **SMALL, action_noise=noise)
    agent.learn(600)  # three 200-step episodes
    # SB3 keeps the object (ours too): the same one counts the resets.
    assert agent.action_noise is noise
    assert noise.resets == 1 + 3  # when learn starts the episodes, and at their ends
    agent.env.close()


@pytest.mark.parametrize("name", ["SAC", "TD3"])
@pytest.mark.parametrize("index", [0, 1])
@pytest.mark.parametrize(
    ("noise", "n_envs"),
    [
        (NormalActionNoise(np.zeros(1), 0.2 * np.ones(1)), 1),
        (OrnsteinUhlenbeckActionNoise(np.zeros(1), 0.2 * np.ones(1)), 2),
        (VectorizedActionNoise(NormalActionNoise(np.zeros(1), 0.2 * np.ones(1)), 2), 2),
    ],
)
def test_sb3_noise_objects_are_accepted(name, index, noise, n_envs):
    from stable_baselines3.common.env_util import make_vec_env

    cls, extra = both(name)[index]
    env = make_vec_env("Pendulum-v1", n_envs) if index == 0 else "Pendulum-v1"
    kwargs = {} if index == 0 else {"n_envs": n_envs}
    agent = make(cls, extra, env, **SMALL, **kwargs, action_noise=noise)
    agent.learn(100)
    assert agent.num_timesteps == 100
    agent.env.close()


def test_vectorized_noise_for_another_number_of_envs_is_refused():
    noise = VectorizedActionNoise(NormalActionNoise(np.zeros(1), np.ones(1)), 3)
    with pytest.raises(ConfigError, match="vectorised for 3 envs, the agent has 2"):
        TD3("Pendulum-v1", n_envs=2, device="cpu", action_noise=noise)


def test_td3_learns_with_an_sb3_noise_object():
    noise = NormalActionNoise(np.zeros(1), 0.1 * np.ones(1))
    agent = TD3(
        make_line(), seed=0, device="cpu", gamma=0.9, **SMALL, net_arch=NET_ARCH, action_noise=noise
    )
    before = evaluate(agent, make_line())
    # Seeds 0–5 measured: -26 to -11 untrained, -1.9 to -1.6 after 1500 steps.
    agent.learn(1500)
    after = evaluate(agent, make_line())
    assert before < -5.0
    assert after > -3.0, (before, after)


def test_gaussian_noise_objects_are_saved_as_their_sigma_others_with_a_warning(tmp_path):
    gaussian = NormalActionNoise(np.zeros(1), 0.3 * np.ones(1))
    agent = TD3(make_line(), seed=0, device="cpu", action_noise=gaussian)
    agent.save(tmp_path / "gaussian")
    assert TD3.load(tmp_path / "gaussian").config.action_noise == pytest.approx(0.3)
    agent.config = agent.config.replace(
        action_noise=OrnsteinUhlenbeckActionNoise(np.zeros(1), 0.3 * np.ones(1))
    )
    with pytest.warns(UserWarning, match="cannot be saved.*pass action_noise="):
        agent.save(tmp_path / "ou")
    assert TD3.load(tmp_path / "ou").config.action_noise == 0.0
    agent.env.close()


# -- replay_buffer_class ----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["SAC", "TD3"])
@pytest.mark.parametrize(
    ("index", "buffer_class"),
    [(0, sb3.HerReplayBuffer), (1, sb3.HerReplayBuffer), (1, HerReplayBuffer)],
)
def test_her_replay_buffer_class_with_its_kwargs(name, index, buffer_class):
    cls, extra = both(name)[index]
    if index == 0:
        extra = {**extra, "policy": "MultiInputPolicy", "learning_starts": 100}
    agent = make(
        cls,
        extra,
        gym.make("rlrobot/Reach-v0", reward_mode="sparse"),
        batch_size=32,
        replay_buffer_class=buffer_class,
        replay_buffer_kwargs={"n_sampled_goal": 2, "goal_selection_strategy": "final"},
    )
    agent.learn(120)
    assert type(agent.replay_buffer).__name__ == "HerReplayBuffer"
    if index == 1:
        assert agent.config.n_sampled_goal == 2
        assert agent.config.goal_selection_strategy == "final"
    agent.env.close()


def test_sb3_goal_selection_strategy_enum_is_accepted():
    from stable_baselines3.her.goal_selection_strategy import GoalSelectionStrategy

    config = SAC.config_class.from_dict(
        {
            "replay_buffer_class": sb3.HerReplayBuffer,
            "replay_buffer_kwargs": {"goal_selection_strategy": GoalSelectionStrategy.EPISODE},
        }
    )
    assert (config.replay_buffer, config.goal_selection_strategy) == ("her", "episode")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"replay_buffer_class": dict}, "'replay_buffer_class'.*not supported"),
        (
            {
                "replay_buffer_class": HerReplayBuffer,
                "replay_buffer_kwargs": {"copy_info_dict": True},
            },
            "copy_info_dict=True is not supported .*empty info dict",
        ),
        ({"replay_buffer_kwargs": {"n_sampled_goal": 2}}, "'n_sampled_goal' is not supported"),
        (
            {"replay_buffer_kwargs": {"handle_timeout_termination": False}},
            "always bootstrapped",
        ),
    ],
)
def test_replay_buffer_arguments_we_do_not_take_are_refused(values, message):
    with pytest.raises(ConfigError, match=message):
        SAC.config_class.from_dict(values)


# -- the other SAC/TD3 arguments --------------------------------------------------------------
@pytest.mark.parametrize(("cls", "extra"), both("TD3"))
def test_td3_arguments_with_sb3_meaning(cls, extra):
    agent = make(
        cls,
        extra,
        "Pendulum-v1",
        **{**SMALL, "learning_starts": 80},
        policy_delay=3,
        target_policy_noise=0.1,
        target_noise_clip=0.2,
        optimize_memory_usage=False,
    )
    agent.learn(110)  # updates after steps 81 … 110: 30
    assert getattr(agent, "n_updates", getattr(agent, "_n_updates", None)) == 30
    agent.env.close()


def test_optimize_memory_usage_is_refused_with_the_reason():
    with pytest.raises(ConfigError, match=r"optimize_memory_usage.*n-step returns"):
        SAC.config_class.from_dict({"optimize_memory_usage": True})


def test_a_run_folder_config_with_the_old_alpha_keys_still_resolves(tmp_path):
    from rlrobot.run.config import read_run_config

    path = tmp_path / "config.yaml"
    path.write_text(
        "algo: sac\nenv: Pendulum-v1\nseed: 0\nent_coef: 0.5\nauto_ent_coef: true\n"
        "target_entropy: null\n"
    )
    resolved = read_run_config(path)
    assert resolved.algorithm.ent_coef == "auto_0.5"
    assert resolved.algorithm.target_entropy == "auto"
