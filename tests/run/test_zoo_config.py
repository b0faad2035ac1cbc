"""RL Zoo hyperparameter files and flags on ``rlrobot train`` (issue #24, section 1).

The fixtures in ``zoo_hyperparams/`` are entries copied verbatim from the Zoo's
``hyperparams/*.yml``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from rlrobot.cli import main
from rlrobot.errors import ConfigError
from rlrobot.run.config import read_run_config, resolve_config
from rlrobot.run.evaluation import load_run_agent
from rlrobot.run.zoo import parse_python_value

torch.set_num_threads(1)

ZOO_FILES = Path(__file__).parent / "zoo_hyperparams"
# Small enough to train in a few seconds: 2 envs × 64 steps per rollout, one epoch.
TINY = ["n_envs:2", "n_steps:64", "batch_size:64", "n_epochs:1"]


def _resolve(algo: str, env_id: str, file: Path | None = None, overrides=()) -> dict:
    return resolve_config(algo, env_id, config_file=file, overrides=overrides).to_dict()


def _write(tmp_path: Path, entry: dict, env_id: str = "CartPole-v1") -> Path:
    path = tmp_path / "zoo.yml"
    path.write_text(yaml.safe_dump({env_id: entry}))
    return path


def _dry_run(arguments: list[str], capsys) -> tuple[int, dict | str]:
    """Run ``rlrobot train --dry-run …``; return (exit code, the printed config or stderr)."""
    capsys.readouterr()
    code = main(["train", "--algo", "ppo", "--env", "CartPole-v1", "--dry-run", *arguments])
    captured = capsys.readouterr()
    return code, yaml.safe_load(captured.out) if code == 0 else captured.err


# -- Zoo files ----------------------------------------------------------------------------------
def test_zoo_file_trains_and_the_run_config_holds_the_converted_values(tmp_path, capsys):
    logs = tmp_path / "logs"
    arguments = ["train", "--algo", "ppo", "--env", "CartPole-v1"]
    arguments += ["--config", str(ZOO_FILES / "ppo.yml"), "-n", "256", "--hyperparams", *TINY]
    arguments += ["--eval-freq", "0", "--save-freq", "0", "-f", str(logs), "--no-progress"]
    assert main(arguments) == 0
    run = logs / "ppo-CartPole-v1-seed0"  # -f: the log folder holds the run folder
    saved = yaml.safe_load((run / "config.yaml").read_text())
    # The Zoo entry's own values, converted: lin_0.001, lin_0.2, policy, gamma …
    assert saved["learning_rate"] == 0.001 and saved["lr_schedule"] == "linear"
    assert saved["clip_range"] == 0.2 and saved["clip_range_schedule"] == "linear"
    assert saved["policy_name"] == "MlpPolicy"
    assert (saved["gamma"], saved["gae_lambda"]) == (0.98, 0.8)
    assert (saved["n_envs"], saved["n_steps"], saved["n_timesteps"]) == (2, 64, 256)
    assert "RL Zoo entry" in (run / "config.yaml").read_text()
    assert read_run_config(run / "config.yaml").to_dict() == saved  # it can be given back


def test_zoo_entry_with_its_forms_trains_with_wrappers_and_frame_stack(tmp_path, capsys):
    entry = {
        "policy": "MlpPolicy",
        "n_timesteps": 1e5,
        "normalize": "{'norm_obs': True, 'norm_reward': False}",
        "policy_kwargs": "dict(net_arch=dict(pi=[32], vf=[16]), activation_fn=nn.ReLU)",
        "env_wrapper": [{"gymnasium.wrappers.TimeAwareObservation": {"flatten": True}}],
        "frame_stack": 3,
    }
    out = tmp_path / "run"
    arguments = ["train", "--algo", "ppo", "--env", "CartPole-v1", "--config"]
    arguments += [str(_write(tmp_path, entry)), "--steps", "128", "--hyperparams", *TINY]
    arguments += ["--eval-freq", "128", "--eval-episodes", "1", "--out", str(out)]
    assert main([*arguments, "--no-progress"]) == 0
    # Gymnasium's wrappers save no episode state: checkpoints start new episodes, and say why.
    assert "in its env_wrapper/frame_stack wrappers cannot save" in capsys.readouterr().err
    agent, resolved, _ = load_run_agent(out)
    # CartPole's 4 values and the time, stacked 3 deep: the wrappers ran in training and eval.
    assert agent.observation_space.shape == (3, 5)
    assert resolved.run.env_wrapper == entry["env_wrapper"]
    algorithm = resolved.algorithm
    assert (algorithm.net_arch, algorithm.critic_net_arch) == ((32,), (16,))
    assert algorithm.activation == "relu"
    assert algorithm.normalize_observations and not algorithm.normalize_rewards
    assert (out / "evaluations.csv").read_text().count("\n") == 2  # header + one evaluation


@pytest.mark.parametrize(
    ("algo", "env_id", "expected"),
    [
        (
            "ppo",
            "HalfCheetah-v3",
            {
                "n_timesteps": 1_000_000,
                "learning_rate": 2.0633e-05,
                "lr_schedule": "constant",
                "net_arch": [256, 256],  # SB3 1.x's net_arch=[dict(pi=…, vf=…)]
                "critic_net_arch": [256, 256],
                "activation": "relu",
                "log_std_init": -2.0,
                "ortho_init": False,
                "normalize_observations": True,  # normalize: true is VecNormalize's defaults
                "normalize_rewards": True,
            },
        ),
        ("a2c", "LunarLander-v2", {"learning_rate": 0.00083, "lr_schedule": "linear"}),
        # rlrobot's tuned A2C CartPole runs 50000 steps with 8 envs; the Zoo's entry wins.
        ("a2c", "CartPole-v1", {"n_timesteps": 500_000, "n_envs": 8, "ent_coef": 0.0}),
        (
            "sac",
            "HumanoidBulletEnv-v0",
            {
                "normalize_observations": True,
                "learning_rate": 0.0003,
                "lr_schedule": "linear",
                "ent_coef": "auto",
            },
        ),
        ("sac", "Pendulum-v1", {"n_timesteps": 20_000, "learning_rate": 0.001}),
    ],
)
def test_real_zoo_entries_convert(algo, env_id, expected):
    resolved = _resolve(algo, env_id, ZOO_FILES / f"{algo}.yml")
    assert {key: resolved[key] for key in expected} == expected


def test_zoo_entry_replaces_the_tuned_defaults(tmp_path):
    tuned = _resolve("ppo", "rlrobot/Reach-v0")
    assert (tuned["n_steps"], tuned["log_std_init"]) == (256, -0.5)
    file = _write(tmp_path, {"policy": "MultiInputPolicy", "n_timesteps": 1e4}, "rlrobot/Reach-v0")
    zoo = _resolve("ppo", "rlrobot/Reach-v0", file)
    assert (zoo["n_steps"], zoo["log_std_init"], zoo["n_envs"]) == (2048, 0.0, 1)  # SB3's
    assert zoo["policy_name"] == "MultiInputPolicy" and zoo["n_timesteps"] == 10_000


@pytest.mark.parametrize(
    ("algo", "env_id", "named"),
    [
        ("ppo", "Pendulum-v1", "'use_sde'=True"),  # gSDE is not implemented
        ("a2c", "atari", "RMSpropTFLike"),  # a name outside the whitelist
        ("sac", "FetchReach-v1", "norm_reward=True is not supported by SAC"),
        ("sac", "donkey-generated-track-v0", "log_std_init"),
    ],
)
def test_zoo_keys_we_cannot_honour_are_refused_by_name(algo, env_id, named):
    with pytest.raises(ConfigError, match="from --config") as error:
        _resolve(algo, env_id, ZOO_FILES / f"{algo}.yml")
    assert named in str(error.value)


def test_her_entry_converts(tmp_path):
    entry = yaml.safe_load((ZOO_FILES / "sac.yml").read_text())["FetchReach-v1"]
    entry["normalize"] = "{'norm_obs': True, 'norm_reward': False}"
    resolved = _resolve("sac", "rlrobot/Reach-v0", _write(tmp_path, entry, "rlrobot/Reach-v0"))
    assert resolved["replay_buffer"] == "her"
    assert (resolved["goal_selection_strategy"], resolved["n_sampled_goal"]) == ("future", 4)
    assert resolved["net_arch"] == [64, 64] and resolved["buffer_size"] == 1_000_000


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "gymnasium.wrappers.TimeAwareObservation",
            [{"gymnasium.wrappers.TimeAwareObservation": {}}],
        ),
        (
            [
                "gymnasium.wrappers.ClipReward",
                {"gymnasium.wrappers.ClipReward": {"min_reward": -1}},
            ],
            [
                {"gymnasium.wrappers.ClipReward": {}},
                {"gymnasium.wrappers.ClipReward": {"min_reward": -1}},
            ],
        ),
        ({"gymnasium.wrappers.ClipReward": None}, [{"gymnasium.wrappers.ClipReward": {}}]),
    ],
)
def test_env_wrapper_forms(value, expected, tmp_path):
    file = _write(tmp_path, {"policy": "MlpPolicy", "n_timesteps": 100, "env_wrapper": value})
    assert _resolve("ppo", "CartPole-v1", file)["env_wrapper"] == expected


@pytest.mark.parametrize("path", ["os.system", "subprocess.Popen", "../escaped", "Wrapper"])
def test_env_wrapper_outside_the_wrapper_packages_is_refused(path):
    with pytest.raises(ConfigError, match=r"env_wrapper.*gymnasium, stable_baselines3"):
        _resolve("ppo", "CartPole-v1", overrides=[f"env_wrapper={path}"])


@pytest.mark.parametrize(
    ("value", "message"),
    [("lin_fast", r"lin_<number>.*'lin_fast'"), ("exp_0.1", r"expected float.*'exp_0.1'")],
)
def test_schedule_text_other_than_lin_number_is_refused(value, message):
    with pytest.raises(ConfigError, match=message):
        _resolve("ppo", "CartPole-v1", overrides=[f"learning_rate={value}"])


# -- the strings are parsed, never run -------------------------------------------------------
def test_parse_python_value_reads_literals_dict_calls_and_whitelisted_names():
    value = parse_python_value(
        "dict(net_arch=[dict(pi=[64], vf=[64])], activation_fn=nn.Tanh, log_std_init=-2,"
        " optimizer_class=th.optim.RMSprop, x={'a': (1, None)}, ortho_init=False)",
        "policy_kwargs",
    )
    assert value == {
        "net_arch": [{"pi": [64], "vf": [64]}],
        "activation_fn": torch.nn.Tanh,
        "log_std_init": -2,
        "optimizer_class": torch.optim.RMSprop,
        "x": {"a": [1, None]},
        "ortho_init": False,
    }


PLANTED = [
    "__import__('os').system('touch {marker}')",
    "open('{marker}', 'w').write('x')",
    "dict(net_arch=[64], activation_fn=(lambda: open('{marker}', 'w'))())",
    "dict(activation_fn=nn.ReLU.__init__.__globals__['os'].system('touch {marker}'))",
    "dict(**{{'a': open('{marker}', 'w')}})",
    "[open('{marker}', 'w') for _ in '1']",
    "nn.Module",
    "dict(net_arch=[64], activation_fn=torch.nn.modules.activation.ReLU)",
]


@pytest.mark.parametrize("planted", PLANTED)
@pytest.mark.parametrize("key", ["policy_kwargs", "normalize"])
def test_a_string_that_would_run_code_is_refused_and_does_not_run(planted, key, tmp_path, capsys):
    marker = tmp_path / "ran"
    text = planted.format(marker=marker)
    file = _write(tmp_path, {"policy": "MlpPolicy", "n_timesteps": 100, key: text})
    code, error = _dry_run(["--config", str(file)], capsys)
    assert code == 2
    line = error.strip()
    assert len(line.splitlines()) == 1 and "is refused" in line and "never run" in line
    assert text[:20] in line  # the text is quoted
    assert not marker.exists()


def test_a_planted_hyperparams_value_is_refused_too(tmp_path, capsys):
    marker = tmp_path / "ran"
    value = f"policy_kwargs:__import__('os').system('touch {marker}')"
    code, error = _dry_run(["--hyperparams", value], capsys)
    assert code == 2 and "never run" in error and not marker.exists()


# -- flags ------------------------------------------------------------------------------------
def test_zoo_flags_map_onto_config_keys(capsys):
    code, config = _dry_run(
        [
            "-n",
            "1e5",
            "--eval-freq",
            "500",
            "--eval-episodes",
            "3",
            "--save-freq",
            "0",
            "--vec-env",
            "subproc",
            "--device",
            "cpu",
            "--seed",
            "7",
            "--progress",
        ],
        capsys,
    )
    assert code == 0
    assert (config["n_timesteps"], config["eval_freq"], config["eval_episodes"]) == (
        100_000,
        500,
        3,
    )
    assert (config["checkpoint_freq"], config["vec_env"], config["device"]) == (0, "async", "cpu")
    assert config["seed"] == 7


def test_hyperparams_is_set_in_zoo_syntax(capsys):
    pairs = ["gamma:0.9", "learning_rate:lin_1e-4", "policy_kwargs:dict(net_arch=[8, 8])"]
    code, zoo = _dry_run(["--hyperparams", *pairs], capsys)
    assert code == 0
    sets = [item for pair in pairs for item in ("--set", pair.replace(":", "=", 1))]
    assert _dry_run(sets, capsys) == (0, zoo)
    assert (zoo["gamma"], zoo["learning_rate"], zoo["lr_schedule"]) == (0.9, 1e-4, "linear")
    assert zoo["net_arch"] == [8, 8]


@pytest.mark.parametrize("flag", ["--set", "--hyperparams"])
def test_integral_float_reads_as_int_and_fractions_are_refused(flag, capsys):
    separator = "=" if flag == "--set" else ":"
    code, config = _dry_run(
        [flag, f"n_timesteps{separator}1e5", flag, f"n_steps{separator}64.0"], capsys
    )
    assert code == 0 and (config["n_timesteps"], config["n_steps"]) == (100_000, 64)
    assert isinstance(config["n_timesteps"], int)
    code, error = _dry_run([flag, f"n_steps{separator}1.5"], capsys)
    assert code == 2 and "'n_steps': must be an integer" in error


def _event_tags(folder: Path) -> set[str]:
    """Return the scalar tags of the TensorBoard events in ``folder``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    return set(EventAccumulator(str(folder)).Reload().Tags()["scalars"])


def test_tensorboard_log_writes_sb3_named_folders_that_the_run_folder_names(tmp_path, capsys):
    logs, tensorboard = tmp_path / "logs", tmp_path / "tb"
    arguments = ["train", "--algo", "ppo", "--env", "CartPole-v1", "-n", "128"]
    arguments += ["--hyperparams", *TINY, "--eval-freq", "0", "--no-progress"]
    assert main([*arguments, "-f", str(logs), "--tensorboard-log", str(tensorboard)]) == 0
    run = logs / "ppo-CartPole-v1-seed0"
    first = tensorboard / "ppo-CartPole-v1-seed0_1"
    assert (run / "tensorboard.txt").read_text() == f"{first.resolve()}\n"
    assert f"TensorBoard events → {first.resolve()}" in capsys.readouterr().out
    assert "time/fps" in _event_tags(first)
    assert not list(run.glob("events.out.tfevents*"))  # the CSV stays, the events moved
    assert (run / "progress.csv").is_file()
    # A second run of the same name: the next number, as SB3 counts.
    again = ["-f", str(tmp_path / "again"), "--tensorboard-log", str(tensorboard)]
    assert main([*arguments, *again]) == 0
    assert sorted(path.name for path in tensorboard.iterdir()) == [
        "ppo-CartPole-v1-seed0_1",
        "ppo-CartPole-v1-seed0_2",
    ]
    # A resume writes where tensorboard.txt says, and takes no new folder.
    assert main(["train", "--out", str(run), "--resume", "--steps", "256", "--no-progress"]) == 0
    assert len(list(first.glob("events.out.tfevents*"))) == 2
    assert not list(run.glob("events.out.tfevents*"))
    capsys.readouterr()
    resumed = ["train", "--out", str(run), "--resume", "--steps", "512"]
    assert main([*resumed, "--tensorboard-log", str(tensorboard)]) == 2
    assert "--tensorboard-log: for new runs only" in capsys.readouterr().err


def test_without_tensorboard_log_the_events_are_in_the_run_folder(tmp_path):
    out = tmp_path / "run"
    arguments = ["train", "--algo", "ppo", "--env", "CartPole-v1", "-n", "128", "--out", str(out)]
    assert main([*arguments, "--hyperparams", *TINY, "--eval-freq", "0", "--no-progress"]) == 0
    assert "time/fps" in _event_tags(out) and not (out / "tensorboard.txt").exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--tensorboard-log", ""], "argument --tensorboard-log: must name a path"),
        (["--set", "tensorboard_log=tb"], "command-line option (rlrobot train --tensorboard-log"),
        (["-f", "logs", "--out", "run"], "not both"),
        (["-n", "1.5"], "argument --steps/-n/--n-timesteps: must be an integer >= 1"),
        (["--hyperparams", "gamma=0.9"], "expected KEY:VALUE"),
    ],
)
def test_zoo_flags_refuse_in_one_line(arguments, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    try:
        code = main(["train", "--algo", "ppo", "--env", "CartPole-v1", *arguments])
    except SystemExit as exit_info:  # argparse's usage errors
        code = exit_info.code
    assert code == 2
    assert message in capsys.readouterr().err.strip().splitlines()[-1]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (
            ["train", "--lerning-rate", "1"],
            "rlrobot train: error: unknown option --lerning-rate; did you mean "
            "--set learning_rate=…",
        ),
        (
            ["train", "--stepz", "5"],
            "rlrobot train: error: unknown option --stepz; did you mean --steps",
        ),
        (
            ["eval", "runs/x", "--episods", "3"],
            "rlrobot eval: error: unknown option --episods; did you mean --episodes",
        ),
        (["eval", "runs/x", "runs/y"], "rlrobot eval: error: unexpected argument 'runs/y'"),
        (
            ["perception", "collect", "--out", "x", "--episods", "3"],
            "rlrobot perception collect: error: unknown option --episods; did you mean --episodes",
        ),
        (["--bogus"], "rlrobot: error: unknown option --bogus"),
    ],
)
def test_unknown_option_names_the_command_and_its_closest_options(arguments, expected, capsys):
    assert main(arguments) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and error.startswith(expected), error
    assert "usage:" not in error


def test_bench_refuses_the_train_only_env_keys():
    from rlrobot.benchmark.bench import resolve_trial_config

    with pytest.raises(ConfigError, match="apply to rlrobot train runs only"):
        resolve_trial_config("ppo", "CartPole-v1", ["frame_stack=2"])
