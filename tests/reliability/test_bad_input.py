"""Bad input gets a clear error that names the problem, never a traceback from torch or PyBullet.

Every env id and every algorithm is tried: unknown and mistyped env ids and ``gym.make``
keywords, out-of-range options, unknown algorithms, config keys, types and ranges, bad
actions, broken or mismatched checkpoints and datasets, and the same mistakes through the
``rlrobot`` command, which must print one line and exit with status 2.
"""

from __future__ import annotations

import json
import re
import shutil

import gymnasium as gym
import numpy as np
import pytest

import rlrobot
from rlrobot.agents import ALGORITHMS, BaseAgent
from rlrobot.cli import main
from rlrobot.common.checkpoint import load_checkpoint
from rlrobot.common.env_util import make_env
from rlrobot.errors import CheckpointError, ConfigError, DatasetError, EnvMakeError
from rlrobot.perception.dataset import Dataset, card_path
from rlrobot.run.config import algorithm_class, resolve_config
from rlrobot.sim import Simulation
from rlrobot.vec import make_vec_env
from tests.reliability.small_runs import ALGORITHM_ENV, SMALL_CONFIGS, make_small_agent


def _misspelt(env_id: str) -> str:
    """``rlrobot/CartPole-v0`` → ``rlrobot/CratPole-v0``: two letters of the name swapped."""
    namespace, name = env_id.split("/")
    return f"{namespace}/{name[0]}{name[2]}{name[1]}{name[3:]}"


def _lowest_free_client_id() -> int:
    """PyBullet hands out the lowest free client id: a leaked client pushes it up."""
    probe = Simulation()
    probe.close()
    return probe.client_id


def test_every_algorithm_has_a_small_test_config():
    assert sorted(SMALL_CONFIGS) == sorted(ALGORITHMS)


# -- env ids and gym.make keywords -------------------------------------------------------------
@pytest.mark.parametrize("env_id", rlrobot.ENV_IDS)
def test_unknown_env_id_suggests_the_registered_one(env_id):
    with pytest.raises(EnvMakeError, match=f"unknown env id .*did you mean '{re.escape(env_id)}'"):
        make_env(_misspelt(env_id))
    name = env_id.split("/")[1]
    if name not in gym.registry:  # Gymnasium has its own CartPole-v0
        # Without its namespace the id is unknown, and the namespaced one is suggested.
        with pytest.raises(EnvMakeError, match=f"did you mean '{re.escape(env_id)}'"):
            make_env(name)
    # Gymnasium's own gym.make names the id and suggests the close name as well.
    with pytest.raises(gym.error.NameNotFound, match="Did you mean"):
        gym.make(_misspelt(env_id))


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
@pytest.mark.parametrize("vec_env", ["sync", "async"])
def test_agents_name_an_unknown_env_id_before_starting_workers(algo, vec_env):
    with pytest.raises(EnvMakeError, match=f"did you mean '{re.escape(ALGORITHM_ENV)}'"):
        ALGORITHMS[algo](_misspelt(ALGORITHM_ENV), n_envs=2, vec_env=vec_env)


@pytest.mark.parametrize("env_id", rlrobot.ENV_IDS)
def test_mistyped_gym_make_keyword_is_named_with_close_matches(env_id):
    with pytest.raises(
        EnvMakeError, match="takes no keyword 'reward_mod'; did you mean 'reward_mode'"
    ):
        make_env(env_id, {"reward_mod": "sparse"})
    with pytest.raises(EnvMakeError, match=r"no keyword 'randomisation'.*'randomization'"):
        make_vec_env(env_id, env_kwargs={"randomisation": True})
    with pytest.raises(TypeError, match="'reward_mod'"):  # plain gym.make names it too
        gym.make(env_id, reward_mod="sparse")
    # gym.make's own keywords are not the env's, and are accepted.
    make_env(env_id, {"max_episode_steps": 3, "disable_env_checker": True}).close()


# Options every robot env takes: (keyword, bad value, what the message must say).
COMMON_BAD_OPTIONS = [
    ("reward_mode", "dens", "reward_mode must be one of"),
    ("obs_mode", "rgb", "obs_mode must be one of"),
    ("pixels_camera", "wrist", "pixels_camera must be one of"),
    ("render_mode", "video", "render_mode must be one of"),
    ("pixels_width", 0, "pixels_width must be an integer in [1, 2048] px (larger frames"),
    ("render_height", -480, "render_height must be an integer in [1, 2048] px (larger"),
    ("randomization", {"mass_scale": [1.2, 0.8]}, "mass_scale must be a range (low, high) with"),
    ("randomization", {"mas_scale": [0.8, 1.2]}, "unknown randomization keys"),
    (
        "randomization",
        {"observation_noise": -0.1},
        "observation_noise must be a finite number in [0, inf), got -0.1",
    ),
    (
        "randomization",
        {"action_latency": [0, 1.5]},
        "action_latency[1] must be an integer in [0, inf) steps, got 1.5",
    ),
    ("randomization", "strong", "randomization must be None, a bool, a dict"),
]
# Options of single envs with values outside their range.
POSITIVE = "must be a finite number in (0, inf)"
NON_NEGATIVE = "must be a finite number in [0, inf)"
ENV_BAD_OPTIONS = {
    "rlrobot/CartPole-v0": [
        ("force_magnitude", 0.0, f"force_magnitude {POSITIVE} N, got 0.0"),
        ("reset_noise", -0.1, f"reset_noise {NON_NEGATIVE}, got -0.1"),
        ("x_threshold", -2.4, f"x_threshold {POSITIVE} m, got -2.4"),
        ("angle_threshold", 0.0, "angle_threshold must be a finite number in (0, 3.14159] rad"),
        (
            "success_angle",
            3.2,
            "success_angle must be a finite number in (0, 3.14159] rad, got 3.2",
        ),
    ],
    "rlrobot/CartPoleContinuous-v0": [
        ("force_magnitude", -10.0, f"force_magnitude {POSITIVE} N, got -10.0"),
        ("continuous", "yes", "continuous must be true or false, got 'yes'"),
    ],
    "rlrobot/Reach-v0": [
        ("control_mode", "torque", "control_mode must be one of"),
        ("distance_threshold", -0.05, f"distance_threshold {POSITIVE} m, got -0.05"),
        ("max_ee_step", 0.0, f"max_ee_step {POSITIVE} m, got 0.0"),
        ("max_joint_step", -0.05, f"max_joint_step {POSITIVE} rad, got -0.05"),
        ("goal_low", (0.2, 0.2, 0.3), "must not exceed goal_high"),
        ("goal_high", (0.15, float("nan"), 0.35), "goal_high[1] must be a finite number"),
    ],
    "rlrobot/Push-v0": [
        ("distance_threshold", 0.0, f"distance_threshold {POSITIVE} m, got 0.0"),
        ("object_size", -0.04, f"object_size {POSITIVE} m, got -0.04"),
        ("object_mass", 0, f"object_mass {POSITIVE} kg, got 0"),
        ("object_range", -0.15, f"object_range {NON_NEGATIVE} m, got -0.15"),
        ("goal_range", -0.15, f"goal_range {NON_NEGATIVE} m, got -0.15"),
    ],
    "rlrobot/Navigate-v0": [
        ("arena_half_size", 0.0, f"arena_half_size {POSITIVE} m, got 0.0"),
        ("arena_half_size", 0.5, "min_goal_distance must be < the arena's half diagonal"),
        ("n_obstacles", -1, "n_obstacles must be an integer in [0, 1000] (one body each), got -1"),
        ("obstacle_size", 0.0, f"obstacle_size {POSITIVE} m, got 0.0"),
        ("min_goal_distance", -1.0, f"min_goal_distance {NON_NEGATIVE} m, got -1.0"),
        ("n_rays", 0, "n_rays must be an integer in [1, 4096] (cast every step), got 0"),
        ("ray_length", -3.0, f"ray_length {POSITIVE} m, got -3.0"),
        ("max_speed", 0.0, f"max_speed {POSITIVE} m/s, got 0.0"),
        ("max_steering", -0.5, "max_steering must be a finite number in (0, 1.5708] rad, got -0.5"),
    ],
    "rlrobot/Quadruped-v0": [
        ("max_torque", 0.0, f"max_torque {POSITIVE} N·m, got 0.0"),
        ("reset_noise", -0.1, f"reset_noise {NON_NEGATIVE}, got -0.1"),
        ("energy_weight", -0.004, f"energy_weight {NON_NEGATIVE}, got -0.004"),
        (
            "alive_bonus",
            float("nan"),
            "alive_bonus must be a finite number in (-inf, inf), got nan",
        ),
        ("min_height", -0.26, f"min_height {NON_NEGATIVE} m, got -0.26"),
        ("max_tilt", 0.0, "max_tilt must be a finite number in (0, 3.14159] rad, got 0.0"),
        ("success_distance", -2.0, f"success_distance {POSITIVE} m, got -2.0"),
    ],
}
BAD_OPTION_CASES = [
    (env_id, keyword, value, message)
    for env_id in rlrobot.ENV_IDS
    for keyword, value, message in COMMON_BAD_OPTIONS + ENV_BAD_OPTIONS[env_id]
]


def test_every_env_has_its_own_bad_options():
    assert sorted(ENV_BAD_OPTIONS) == sorted(rlrobot.ENV_IDS)


@pytest.mark.parametrize(("env_id", "keyword", "value", "message"), BAD_OPTION_CASES)
def test_out_of_range_option_is_named(env_id, keyword, value, message):
    free_before = _lowest_free_client_id()
    with pytest.raises(EnvMakeError, match=re.escape(message)) as caught:
        make_env(env_id, {keyword: value})
    assert env_id in str(caught.value)
    assert isinstance(caught.value.__cause__, (TypeError, ValueError))  # the env's own error
    assert _lowest_free_client_id() == free_before  # the half-built env closed its client


# -- algorithms and configs -------------------------------------------------------------------
def test_unknown_algorithm_lists_the_choices():
    with pytest.raises(ConfigError, match=r"unknown algorithm 'pop'; choose one of \['a2c'"):
        algorithm_class("pop")


def _bad_configs(algo: str) -> list[tuple[dict, str]]:
    """(hyperparameters, message) pairs every config of ``algo`` must refuse."""
    cases = [
        ({"learning_rat": 1e-3}, "unknown config key 'learning_rat'.*did you mean 'learning_rate'"),
        ({"learning_rate": "fast"}, "'learning_rate': expected float, got str"),
        ({"learning_rate": True}, "'learning_rate': expected float, got bool"),
        (
            {"learning_rate": -3e-4},
            r"'learning_rate': must be a finite number in \(0, inf\), got -0.0003",
        ),
        (
            {"learning_rate": float("inf")},
            r"'learning_rate': must be a finite number in \(0, inf\), got inf",
        ),
        ({"gamma": 0.0}, r"'gamma': must be a finite number in \(0, 1\], got 0.0"),
        ({"gamma": 1.01}, r"'gamma': must be a finite number in \(0, 1\], got 1.01"),
        ({"gamma": float("nan")}, r"'gamma': must be a finite number in \(0, 1\], got nan"),
        ({"net_arch": [64, -1]}, r"'net_arch': must be an integer in \[1, 8192\] .*, got -1"),
        ({"net_arch": "64"}, "'net_arch': expected a list"),
        (
            {"clip_observations": 0.0},
            r"'clip_observations': must be a finite number in \(0, inf\), got 0.0",
        ),
        ({"activation": "sigmoid"}, r"'activation': must be one of \['elu'"),
        ({"log_interval": 0}, r"'log_interval': must be an integer in \[1, inf\), got 0"),
    ]
    if algo in ("sac", "td3"):
        cases += [
            ({"tau": 0.0}, r"'tau': must be a finite number in \(0, 1\], got 0.0"),
            ({"buffer_size": 0}, r"'buffer_size': must be an integer in \[1, inf\), got 0"),
            ({"batch_size": 0}, r"'batch_size': must be an integer in \[1, inf\), got 0"),
            ({"train_freq": 2.5}, r"'train_freq': must be an integer in \[1, inf\), got 2.5"),
            ({"replay_buffer": "prioritized"}, r"'replay_buffer': expected one of \['standard'"),
        ]
    else:
        cases += [
            ({"n_steps": 0}, r"'n_steps': must be an integer in \[1, inf\), got 0"),
            ({"gae_lambda": 1.5}, r"'gae_lambda': must be a finite number in \[0, 1\], got 1.5"),
            (
                {"batch_size": 64},
                "'batch_size' is an argument of SB3's PPO, SAC, TD3, not of"
                if algo != "ppo"
                else None,
            ),
        ]
    return [(values, message) for values, message in cases if message is not None]


BAD_CONFIG_CASES = [
    (algo, values, message) for algo in sorted(ALGORITHMS) for values, message in _bad_configs(algo)
]


@pytest.mark.parametrize(("algo", "hyperparameters", "message"), BAD_CONFIG_CASES)
def test_bad_config_is_a_config_error_naming_the_key(algo, hyperparameters, message):
    with pytest.raises(ConfigError, match=message):
        ALGORITHMS[algo](ALGORITHM_ENV, **hyperparameters)


def test_ppo_batch_larger_than_the_rollout_is_refused_and_its_envs_closed():
    free_before = _lowest_free_client_id()
    with pytest.raises(ConfigError, match=r"'batch_size': 64 is larger than the rollout \(n_steps"):
        ALGORITHMS["ppo"](ALGORITHM_ENV, n_envs=2, n_steps=16, batch_size=64)
    assert _lowest_free_client_id() == free_before


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"device": "gpu0"}, ConfigError, "device 'gpu0' is not a torch device"),
        ({"device": "cuda:7"}, ConfigError, "device 'cuda:7': this machine has"),
        ({"seed": -1}, ConfigError, r"seed must be an integer in \[0, .*, got -1"),
        ({"seed": "0"}, ConfigError, r"seed must be an integer in \[0, .*, got '0'"),
        ({"n_envs": 0}, ConfigError, r"n_envs must be an integer in \[1, 1024\].*, got 0"),
        ({"n_envs": 5000}, ConfigError, r"n_envs must be an integer in \[1, 1024\].*, got 5000"),
        (
            {"vec_env": "threads"},
            ValueError,
            "vec_env must be one of 'sync', 'async', 'shm', 'shm_workers'",
        ),
        ({"env_kwargs": {"reward_mod": "sparse"}}, EnvMakeError, "did you mean 'reward_mode'"),
    ],
)
def test_bad_agent_arguments_are_named(algo, arguments, error, message):
    with pytest.raises(error, match=message):
        ALGORITHMS[algo](ALGORITHM_ENV, **arguments)


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_bad_learn_budget_and_env_less_learning_are_named(algo):
    agent = make_small_agent(algo)
    with pytest.raises(
        ConfigError, match=r"total_timesteps must be an integer in \[1, inf\), got 0"
    ):
        agent.learn(0)
    agent.env.close()
    spaces = {"observation_space": agent.observation_space, "action_space": agent.action_space}
    with pytest.raises(RuntimeError, match="no env"):
        ALGORITHMS[algo](None, **spaces).learn(64)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["n_timestep=100"], "unknown config key 'n_timestep'.*did you mean 'n_timesteps'"),
        (["eval_freq=-1"], r"'eval_freq': must be an integer in \[0, inf\), got -1"),
        (["env_kwargs=sparse"], "'env_kwargs': expected a mapping"),
        (["vec_env=fork"], r"'vec_env': expected one of \['sync', 'async', 'shm', 'shm_workers'\]"),
        (["learning_rate"], "--set expects key=value"),
        (["net_arch=[64, 64"], "is not a valid YAML value"),
    ],
)
def test_bad_run_config_is_named(overrides, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config("ppo", ALGORITHM_ENV, overrides=overrides)


# -- the same mistakes through the command line -----------------------------------------------
TRAIN = ["train", "--algo", "ppo", "--env", ALGORITHM_ENV, "--steps", "64", "--no-progress"]
CLI_CASES = [
    (["train", "--algo", "ppo", "--env", "rlrobot/CartPoleContinous-v0"], "did you mean"),
    (["train", "--algo", "pop", "--env", ALGORITHM_ENV], "unknown algorithm 'pop'"),
    ([*TRAIN, "--set", "env_kwargs.reward_mod=sparse"], "no keyword 'reward_mod'"),
    (
        [*TRAIN, "--set", "env_kwargs.force_magnitude=-1"],
        r"force_magnitude must be a finite number in \(0, inf\) N, got -1",
    ),
    ([*TRAIN, "--set", "learning_rat=0.1"], "did you mean 'learning_rate'"),
    ([*TRAIN, "--set", "learning_rate=fast"], "'learning_rate': expected float"),
    (
        [*TRAIN, "--set", "learning_rate=-1"],
        r"'learning_rate': must be a finite number in \(0, inf\)",
    ),
    ([*TRAIN, "--set", "gamma=1.5"], r"'gamma': must be a finite number in \(0, 1\], got 1.5"),
    ([*TRAIN, "--set", "n_steps=8", "--set", "batch_size=100000"], "larger than the rollout"),
    ([*TRAIN, "--set", "device=cuda:7"], "device 'cuda:7'"),
    ([*TRAIN, "--seed", "-1"], "'seed': expected an integer >= 0"),
    (["train", "--resume", "--out", "missing"], "holds no run to resume"),
    (["eval", "missing"], "is not a run folder"),
]


@pytest.mark.parametrize(("arguments", "message"), CLI_CASES)
def test_cli_prints_one_clear_line_and_leaves_no_run(
    arguments, message, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    if arguments[0] == "train" and "--out" not in arguments:
        arguments = [*arguments, "--out", "run"]
    assert main(arguments) == 2
    error = capsys.readouterr().err
    assert re.search(message, error), error
    assert "Traceback" not in error and error.startswith(f"rlrobot {arguments[0]}: error:")
    assert not (tmp_path / "run" / "config.yaml").exists()


# -- actions ----------------------------------------------------------------------------------
@pytest.mark.parametrize("env_id", rlrobot.ENV_IDS)
def test_bad_actions_raise_and_out_of_bounds_actions_are_clipped(env_id):
    env = gym.make(env_id)
    space = env.action_space
    env.reset(seed=0)
    if isinstance(space, gym.spaces.Discrete):
        for action in (space.n, -1, 0.5, np.array([0, 1]), None):
            with pytest.raises(ValueError, match="is not in"):
                env.step(action)
        env.close()
        return
    for action in (np.zeros(space.shape[0] + 1), np.zeros((1, *space.shape)), np.zeros(0)):
        with pytest.raises(ValueError, match="action has shape"):
            env.step(action)
    for bad in (np.nan, np.inf, -np.inf):
        action = np.zeros(space.shape)
        action[-1] = bad
        with pytest.raises(ValueError, match="NaN or inf"):
            env.step(action)
    # Clipped, as documented: an action far outside the box acts like the bound itself.
    rng = np.random.default_rng(0)
    huge = rng.choice([-1e6, 1e6], size=space.shape)
    bound = np.where(huge > 0, space.high, space.low)
    results = []
    for action in (huge, bound):
        env.reset(seed=0)
        results.append(env.step(action)[0])
    env.close()
    for clipped, at_bound in zip(
        *(r.values() if isinstance(r, dict) else [r] for r in results), strict=True
    ):
        np.testing.assert_array_equal(clipped, at_bound)


# -- checkpoints ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved_agents(tmp_path_factory):
    """One trained-for-a-moment checkpoint per algorithm (with its replay buffer if any)."""
    root = tmp_path_factory.mktemp("checkpoints")
    for algo in sorted(ALGORITHMS):
        agent = make_small_agent(algo, seed=0)
        agent.learn(64)
        (root / algo).mkdir()  # checkpoint directories, whose files the tests damage one by one
        if algo in ("sac", "td3"):
            agent.save(root / algo, include_replay_buffer=True)
        else:
            agent.save(root / algo)
        agent.env.close()
    return root


def _edit_metadata(path, change):
    metadata = json.loads((path / "metadata.json").read_text())
    change(metadata)
    (path / "metadata.json").write_text(json.dumps(metadata))


def _truncate(path, fraction):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])


def _flip_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


OTHER_ALGORITHM = {"reinforce": "a2c", "a2c": "ppo", "ppo": "reinforce", "sac": "td3", "td3": "sac"}
# (name, how to break the checkpoint directory, message)
CHECKPOINT_DAMAGE = [
    ("missing directory", lambda p: shutil.rmtree(p), "does not exist"),
    ("no metadata", lambda p: (p / "metadata.json").unlink(), r"metadata\.json missing"),
    ("no weights", lambda p: (p / "model.safetensors").unlink(), r"model\.safetensors missing"),
    (
        "weights cut at 10%",
        lambda p: _truncate(p / "model.safetensors", 0.1),
        "corrupt or truncated",
    ),
    ("weights cut at 99%", lambda p: _truncate(p / "model.safetensors", 0.99), "corrupt or trunc"),
    ("weights byte flipped", lambda p: _flip_byte(p / "model.safetensors"), "corrupt or truncated"),
    ("weights empty", lambda p: (p / "model.safetensors").write_bytes(b""), "corrupt or truncated"),
    ("metadata cut", lambda p: _truncate(p / "metadata.json", 0.5), r"metadata\.json is corrupt"),
    ("metadata not an object", lambda p: (p / "metadata.json").write_text("[1]"), "no format_ver"),
    (
        "newer format",
        lambda p: _edit_metadata(p, lambda m: m.update(format_version=2)),
        "newer than this rlrobot supports",
    ),
    (
        "format as text",
        lambda p: _edit_metadata(p, lambda m: m.update(format_version="1")),
        r"field 'format_version' must be an integer in \[1, 1\], got '1'",
    ),
    (
        "config with an unknown key",
        lambda p: _edit_metadata(p, lambda m: m["config"].update(learning_rat=1.0)),
        "invalid metadata.*learning_rat",
    ),
    (
        "no spaces",
        lambda p: _edit_metadata(p, lambda m: m.pop("observation_space")),
        "metadata.json lacks the field 'observation_space'",
    ),
    (
        "unknown space type",
        lambda p: _edit_metadata(p, lambda m: m["action_space"].update(type="Graph")),
        r"field 'action_space\.type' must be one of \['Box', .*got 'Graph'",
    ),
    (
        "no training state",
        lambda p: _edit_metadata(p, lambda m: m.pop("state")),
        r"metadata\.json lacks the field 'state'",
    ),
    (
        "state names a missing tensor",
        lambda p: _edit_metadata(p, lambda m: m["state"].update(extra={"__tensor__": "state/x"})),
        r"does not fit a .*tensors do not fit: unknown \[\], missing \['state/x'\]",
    ),
]


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
@pytest.mark.parametrize(
    ("damage", "message"),
    [(case[1], case[2]) for case in CHECKPOINT_DAMAGE],
    ids=[case[0] for case in CHECKPOINT_DAMAGE],
)
def test_damaged_checkpoint_is_a_checkpoint_error(algo, damage, message, saved_agents, tmp_path):
    path = tmp_path / "checkpoint"
    shutil.copytree(saved_agents / algo, path)
    damage(path)
    for loader in (ALGORITHMS[algo], BaseAgent):
        with pytest.raises(CheckpointError, match=message):
            loader.load(path)


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_checkpoint_of_another_algorithm_or_other_spaces_is_refused(algo, saved_agents):
    other = OTHER_ALGORITHM[algo]
    with pytest.raises(CheckpointError, match=f"holds a '{algo}' agent, not '{other}'"):
        ALGORITHMS[other].load(saved_agents / algo)
    free_before = _lowest_free_client_id()
    with pytest.raises(CheckpointError, match=r"env's observation space .* differs"):
        ALGORITHMS[algo].load(saved_agents / algo, env="rlrobot/Reach-v0")
    assert _lowest_free_client_id() == free_before  # the refused env was closed
    loaded = BaseAgent.load(saved_agents / algo)  # the generic loader picks the class
    assert type(loaded) is ALGORITHMS[algo]


def test_checkpoint_of_an_unknown_algorithm_is_refused(saved_agents, tmp_path):
    path = tmp_path / "checkpoint"
    shutil.copytree(saved_agents / "ppo", path)
    _edit_metadata(path, lambda m: m.update(algorithm="dqn"))
    with pytest.raises(CheckpointError, match="unknown algorithm 'dqn'"):
        BaseAgent.load(path)


def test_weights_of_another_network_size_are_refused(saved_agents):
    expected = r"'policy/actor\.0\.weight' is an array float32\[64, 4\], expected float32\[8, 4\]"
    with pytest.raises(CheckpointError, match=expected):
        ALGORITHMS["ppo"].load(saved_agents / "ppo", net_arch=[8])


@pytest.mark.parametrize("algo", ["sac", "td3"])
@pytest.mark.parametrize("fraction", [0.0, 0.3, 0.9])
def test_truncated_replay_buffer_is_a_checkpoint_error(algo, fraction, saved_agents, tmp_path):
    path = tmp_path / "checkpoint"
    shutil.copytree(saved_agents / algo, path)
    _truncate(path / "replay_buffer.npz", fraction)
    free_before = _lowest_free_client_id()
    with pytest.raises(CheckpointError, match=r"replay_buffer\.npz is corrupt"):
        ALGORITHMS[algo].load(path, env=ALGORITHM_ENV)
    assert _lowest_free_client_id() == free_before
    load_checkpoint(path)  # the weights themselves are intact


# -- datasets ---------------------------------------------------------------------------------
def _card(**tasks: str) -> dict:
    return {
        "labels": {
            name: {"task": task, "units": "m", "meaning": name} for name, task in tasks.items()
        }
    }


N = 6
INPUTS, EPISODES = np.zeros((N, 4), np.float32), np.arange(N)
SPLITS = np.array([0, 0, 0, 1, 1, 2], np.int8)
Y = np.zeros((N, 1), np.float32)
DATASET_CASES = [
    (
        "inputs without samples axis",
        (np.zeros(N), {"y": Y}, EPISODES, SPLITS, _card(y="regression")),
        "inputs must have shape",
    ),
    (
        "short episodes",
        (INPUTS, {"y": Y}, EPISODES[:-1], SPLITS, _card(y="regression")),
        "episodes must have shape",
    ),
    (
        "2-D splits",
        (INPUTS, {"y": Y}, EPISODES, SPLITS[:, None], _card(y="regression")),
        "splits must have shape",
    ),
    (
        "short label",
        (INPUTS, {"y": Y[:-1]}, EPISODES, SPLITS, _card(y="regression")),
        "label 'y' has 5 samples",
    ),
    (
        "1-D regression",
        (INPUTS, {"y": Y[:, 0]}, EPISODES, SPLITS, _card(y="regression")),
        "regression label 'y' must have shape",
    ),
    (
        "2-D classes",
        (INPUTS, {"y": np.zeros((N, 2), np.int64)}, EPISODES, SPLITS, _card(y="classification")),
        "classification label 'y' must have shape",
    ),
    ("no labels", (INPUTS, {}, EPISODES, SPLITS, _card()), "at least one label"),
    (
        "label missing",
        (INPUTS, {"y": Y}, EPISODES, SPLITS, _card(y="regression", z="regression")),
        r"describes label\(s\) \['z'\]",
    ),
    (
        "label undescribed",
        (INPUTS, {"y": Y, "z": Y}, EPISODES, SPLITS, _card(y="regression")),
        "label 'z' is not described",
    ),
    (
        "split 3",
        (INPUTS, {"y": Y}, EPISODES, SPLITS + 1, _card(y="regression")),
        "splits must be 0",
    ),
]


@pytest.mark.parametrize(
    ("arrays", "message"), [c[1:] for c in DATASET_CASES], ids=[c[0] for c in DATASET_CASES]
)
def test_malformed_dataset_is_a_dataset_error(arrays, message):
    with pytest.raises(DatasetError, match=message):
        Dataset(*arrays)


def test_empty_splits_and_unknown_splits_are_named():
    only_train = Dataset(INPUTS, {"y": Y}, EPISODES, np.zeros(N, np.int8), _card(y="regression"))
    for name in ("val", "test"):
        with pytest.raises(DatasetError, match=f"the '{name}' split of this dataset is empty"):
            only_train.split(name)
    with pytest.raises(DatasetError, match="split must be one of"):
        only_train.split("validation")
    empty = Dataset(INPUTS[:0], {"y": Y[:0]}, EPISODES[:0], SPLITS[:0], _card(y="regression"))
    with pytest.raises(DatasetError, match="'train' split of this dataset is empty"):
        empty.split("train")


DATASET_FILE_DAMAGE = [
    ("no file", lambda p: p.unlink(), "no dataset at"),
    ("no card", lambda p: card_path(p).unlink(), "has no card"),
    ("card cut", lambda p: _truncate(card_path(p), 0.5), "card of .* is not valid JSON"),
    (
        "newer format",
        lambda p: card_path(p).write_text(json.dumps({"format_version": 9})),
        "newer than this rlrobot",
    ),
    ("npz cut", lambda p: _truncate(p, 0.5), "corrupt or not an npz"),
    (
        "npz without inputs",
        lambda p: np.savez(p, episodes=EPISODES, splits=SPLITS, label_y=Y),
        "lacks the array 'inputs'",
    ),
    (
        "npz without a label",
        lambda p: np.savez(p, inputs=INPUTS, episodes=EPISODES, splits=SPLITS),
        "at least one label",
    ),
    (
        "split sizes differ",
        lambda p: np.savez(p, inputs=INPUTS, episodes=EPISODES, splits=SPLITS * 0, label_y=Y),
        "split sizes",
    ),
]


@pytest.mark.parametrize(
    ("damage", "message"),
    [c[1:] for c in DATASET_FILE_DAMAGE],
    ids=[c[0] for c in DATASET_FILE_DAMAGE],
)
def test_damaged_dataset_file_is_a_dataset_error(damage, message, tmp_path):
    path = Dataset(INPUTS, {"y": Y}, EPISODES, SPLITS, _card(y="regression")).save(
        tmp_path / "d.npz"
    )
    Dataset.load(path)  # intact, it loads
    damage(path)
    with pytest.raises(DatasetError, match=message):
        Dataset.load(path)


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_predict_names_a_wrong_observation_shape(algo, saved_agents):
    agent = ALGORITHMS[algo].load(saved_agents / algo)
    with pytest.raises(
        ValueError, match=r"observation has shape \(3,\), expected shape \(4,\) or \(n, 4\)"
    ):
        agent.predict(np.zeros(3, np.float32))
