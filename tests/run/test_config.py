"""Config resolution: YAML layers, --set overrides with YAML types, strict validation."""

from pathlib import Path

import pytest
import yaml

from rlrobot.cli import main
from rlrobot.errors import ConfigError
from rlrobot.run.config import (
    parse_override,
    read_run_config,
    read_tuned_configs,
    resolve_config,
    tuned_config_file,
    tuned_entry,
)


@pytest.fixture
def config_dir(tmp_path):
    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "ppo.yaml").write_text(
        "default: {n_envs: 4, gamma: 0.95}\n"
        "rlrobot/CartPole-v0: {n_steps: 64, env_kwargs: {force_magnitude: 8.0}}\n"
    )
    return folder


def test_layers_apply_in_order(config_dir, tmp_path):
    config_file = tmp_path / "mine.yaml"
    config_file.write_text("rlrobot/CartPole-v0: {n_steps: 128, learning_rate: 1e-3}\n")
    resolved = resolve_config(
        "ppo",
        "rlrobot/CartPole-v0",
        seed=2,
        config_file=config_file,
        overrides=["learning_rate=3e-4", "env_kwargs.reset_noise=0.1", "net_arch=[32, 16]"],
        explicit={"n_timesteps": 5000, "n_envs": None},
        config_dir=config_dir,
    )
    assert resolved.run.n_envs == 4  # default entry; the unset flag does not override it
    assert resolved.algorithm.gamma == 0.95
    assert resolved.algorithm.n_steps == 128  # --config beats the tuned ppo.yaml
    assert resolved.algorithm.learning_rate == 3e-4  # --set beats --config
    assert resolved.algorithm.net_arch == (32, 16)
    assert resolved.run.env_kwargs == {"force_magnitude": 8.0, "reset_noise": 0.1}
    assert resolved.run.n_timesteps == 5000
    assert resolved.seed == 2
    assert resolved.algorithm.batch_size == 64  # dataclass default


def test_resolved_config_round_trips_and_repeats_a_run(config_dir, tmp_path):
    resolved = resolve_config("ppo", "rlrobot/CartPole-v0", seed=5, config_dir=config_dir)
    path = tmp_path / "config.yaml"
    path.write_text(resolved.to_yaml())
    assert read_run_config(path).to_dict() == resolved.to_dict()
    # As --config, the file supplies algo, env and seed too.
    again = resolve_config(None, None, config_file=path, config_dir=config_dir)
    assert again.to_dict() == resolved.to_dict()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("gamma=0.9", {"gamma": 0.9}),
        ("normalize_observations=true", {"normalize_observations": True}),
        ("net_arch=[64, 64]", {"net_arch": [64, 64]}),
        ("target_kl=null", {"target_kl": None}),
        ("activation=relu", {"activation": "relu"}),
        ("env_kwargs.reward_mode=sparse", {"env_kwargs": {"reward_mode": "sparse"}}),
    ],
)
def test_overrides_are_read_as_yaml(text, expected):
    assert parse_override(text) == expected


def test_unknown_key_names_it_and_suggests(config_dir):
    with pytest.raises(ConfigError) as error:
        resolve_config("ppo", "rlrobot/CartPole-v0", overrides=["lerning_rate=1"])
    message = str(error.value)
    assert "'lerning_rate'" in message and "did you mean 'learning_rate'" in message
    assert "--set lerning_rate=1" in message
    with pytest.raises(ConfigError, match="did you mean 'eval_freq'"):
        resolve_config("ppo", "rlrobot/CartPole-v0", overrides=["eval_frq=5"])


def test_unknown_key_in_a_yaml_file_names_the_file(tmp_path, config_dir):
    (config_dir / "a2c.yaml").write_text("default: {n_stepz: 5}\n")
    with pytest.raises(ConfigError, match=r"'n_stepz'.*did you mean 'n_steps'.*a2c.yaml"):
        resolve_config("a2c", "rlrobot/CartPole-v0", config_dir=config_dir)


def test_env_keyed_config_file_must_apply_to_the_env(config_dir, tmp_path):
    misspelt = tmp_path / "misspelt.yaml"
    misspelt.write_text("rlrobot/Cartpole-v0: {learning_rate: 5e-4}\n")
    with pytest.raises(ConfigError) as error:
        resolve_config("ppo", "rlrobot/CartPole-v0", config_file=misspelt, config_dir=config_dir)
    message = str(error.value)
    assert "no entry for rlrobot/CartPole-v0 and no 'default' entry" in message
    assert str(misspelt) in message
    assert "did you mean 'rlrobot/Cartpole-v0'" in message
    # A ``default`` entry applies to every env, as in rlrobot/configs/; the header says so.
    with_default = tmp_path / "with_default.yaml"
    with_default.write_text("default: {learning_rate: 5e-4}\nFoo-v0: {gamma: 0.5}\n")
    resolved = resolve_config(
        "ppo", "rlrobot/CartPole-v0", config_file=with_default, config_dir=config_dir
    )
    assert resolved.algorithm.learning_rate == 5e-4 and resolved.algorithm.gamma == 0.95
    assert f"--config {with_default}: default (no rlrobot/CartPole-v0 entry)" in resolved.sources


@pytest.mark.parametrize(
    ("override", "option"),
    [("seed=5", "--seed 5"), ("steps=5000", "--steps 5000"), ("env=Foo-v0", "--env Foo-v0")],
)
def test_command_line_options_given_as_config_keys_name_the_option(override, option):
    with pytest.raises(ConfigError) as error:
        resolve_config("ppo", "rlrobot/CartPole-v0", overrides=[override])
    message = str(error.value)
    key = override.split("=")[0]
    assert f"unknown config key '{key}'" in message and f"rlrobot train {option};" in message
    assert "n_steps" not in message  # not the rollout length suggested for "steps"


@pytest.mark.parametrize(
    ("override", "pattern"),
    [
        ("n_steps=abc", r"'n_steps': expected int"),
        ("n_steps=2.5", r"'n_steps': must be an integer in \[1, inf\), got 2.5"),
        ("normalize_advantage=3", r"'normalize_advantage': expected bool"),
        ("net_arch=64", r"'net_arch': expected a list"),
        ("env_kwargs=5", r"'env_kwargs': expected a mapping"),
        ("gamma=1.5", r"'gamma': must be a finite number in \(0, 1\], got 1.5"),
        (
            "vec_env=threads",
            r"'vec_env': expected one of \['sync', 'async', 'shm', 'shm_workers'\]",
        ),
        ("worker_timeout_s=0", r"'worker_timeout_s': must be a finite number in \(0, inf\), got 0"),
        ("worker_timeout_s=30", r"'worker_timeout_s': needs worker processes"),
    ],
)
def test_wrong_types_and_ranges_name_the_key(override, pattern):
    with pytest.raises(ConfigError, match=pattern):
        resolve_config("ppo", "rlrobot/CartPole-v0", overrides=[override])


def test_unknown_algorithm_lists_the_choices():
    with pytest.raises(ConfigError, match=r"unknown algorithm 'ppp'.*'ppo'"):
        resolve_config("ppp", "rlrobot/CartPole-v0")


def test_cli_reports_config_errors_without_traceback(capsys):
    assert main(["train", "--env", "rlrobot/CartPole-v0", "--algo", "ppo", "--set", "gama=1"]) == 2
    error = capsys.readouterr().err
    assert "rlrobot train: error: unknown config key 'gama'" in error
    assert "did you mean 'gamma'" in error and "Traceback" not in error


def test_cli_dry_run_prints_the_resolved_config(capsys):
    arguments = ["train", "--env", "rlrobot/Reach-v0", "--algo", "ppo", "--seed", "7"]
    arguments += ["--set", "learning_rate=3e-4", "--steps", "1000", "--dry-run"]
    assert main(arguments) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["env"] == "rlrobot/Reach-v0" and printed["seed"] == 7
    assert printed["learning_rate"] == 3e-4 and printed["n_timesteps"] == 1000


def test_cli_list_keys_shows_help_texts(capsys):
    assert main(["train", "--algo", "ppo", "--list-keys"]) == 0
    listing = capsys.readouterr().out
    assert "clip_range = 0.2 (in (0, inf)): clipping ε of the probability ratio" in listing
    assert "gamma = 0.99 (in (0, 1]): discount factor" in listing
    assert "checkpoint_freq = 10000 (in [0, inf))" in listing
    assert "policy_name = 'auto': SB3 policy name" in listing  # not a number: no range


def test_every_entry_of_the_shipped_configs_resolves():
    from rlrobot.agents import ALGORITHMS

    # Every algorithm ships its file (read_tuned_configs raises for a missing one).
    for algo in ALGORITHMS:
        for env_id in read_tuned_configs(algo):
            if env_id != "default":
                resolved = resolve_config(algo, env_id)  # run keys are validated too
                assert resolved.run.n_envs >= 1, (algo, env_id)


def test_rlrobot_envs_have_tuned_ppo_defaults():
    import rlrobot

    entries = read_tuned_configs("ppo")
    for env_id in ("rlrobot/CartPole-v0", "rlrobot/CartPoleContinuous-v0", "rlrobot/Reach-v0"):
        assert env_id in rlrobot.ENV_IDS and env_id in entries, env_id


def test_the_tuned_defaults_are_package_data():
    import rlrobot

    path = tuned_config_file("ppo")
    assert path.is_file()
    assert Path(str(path)).parent == Path(rlrobot.__file__).parent / "configs"


def test_a_missing_tuned_defaults_file_is_an_error_naming_it(monkeypatch, tmp_path):
    import rlrobot.run.config

    # Never a silent run on the untuned dataclass defaults.
    with pytest.raises(ConfigError, match=r"tuned defaults of a2c are missing: no file .*a2c.yaml"):
        resolve_config("a2c", "CartPole-v1", config_dir=tmp_path)
    monkeypatch.setattr(rlrobot.run.config, "TUNED_CONFIGS_FOLDER", "nowhere")
    with pytest.raises(ConfigError) as error:
        resolve_config("ppo", "CartPole-v1")
    message = str(error.value)
    assert "nowhere/ppo.yaml" in message and "installed with its package data" in message


def test_an_unreadable_or_malformed_tuned_defaults_file_is_an_error_naming_it(tmp_path):
    (tmp_path / "ppo.yaml").write_bytes(b"default: {gamma: 0.9}\n\xff\xfe\n")
    with pytest.raises(ConfigError, match=r"ppo.yaml cannot be read"):
        resolve_config("ppo", "CartPole-v1", config_dir=tmp_path)
    (tmp_path / "ppo.yaml").write_text("- a list\n")
    with pytest.raises(ConfigError, match=r"ppo.yaml must hold a mapping"):
        tuned_entry("ppo", "CartPole-v1", config_dir=tmp_path)
    (tmp_path / "ppo.yaml").write_text("CartPole-v1: [gamma, 0.9]\n")
    with pytest.raises(ConfigError, match=r"ppo.yaml: entry 'CartPole-v1' must be a mapping"):
        tuned_entry("ppo", "CartPole-v1", config_dir=tmp_path)
    (tmp_path / "ppo.yaml").write_text("default: {delayed: uniform}\n")
    with pytest.raises(ConfigError, match=r"'delayed' sub-entries of 'default' must be a mapping"):
        resolve_config("ppo", "CartPole-v1", config_dir=tmp_path)


def test_tuned_entry_merges_default_env_and_variant(tmp_path):
    (tmp_path / "ppo.yaml").write_text(
        "default: {gamma: 0.9, env_kwargs: {a: 1}, delayed: {gae_lambda: 0.5}}\n"
        "Foo-v0: {gamma: 0.5, env_kwargs: {b: 2}, delayed: {gamma: 0.99}}\n"
    )
    dense = tuned_entry("ppo", "Foo-v0", config_dir=tmp_path)
    assert dense.values == {"gamma": 0.5, "env_kwargs": {"a": 1, "b": 2}}
    assert dense.delayed == {"gae_lambda": 0.5, "gamma": 0.99}
    assert dense.source == f"{tmp_path / 'ppo.yaml'}: default + Foo-v0"
    # Written back as the env's entry, it gives the same values and keeps the sub-entries.
    assert dense.as_file_entry() == {**dense.values, "delayed": dense.delayed}
    delayed = tuned_entry("ppo", "Foo-v0", "delayed", config_dir=tmp_path)
    assert delayed.values == {"gamma": 0.99, "env_kwargs": {"a": 1, "b": 2}, "gae_lambda": 0.5}
    assert delayed.delayed == {} and delayed.source.endswith("+ delayed sub-entries")
    other = tuned_entry("ppo", "Bar-v0", config_dir=tmp_path)
    assert other.values == {"gamma": 0.9, "env_kwargs": {"a": 1}}
    assert other.source.endswith("default (no Bar-v0 entry)")
    with pytest.raises(ValueError, match="variant"):
        tuned_entry("ppo", "Foo-v0", "sparse", config_dir=tmp_path)
    # The shipped files are named as the package holds them.
    assert (
        tuned_entry("ppo", "CartPole-v1").source
        == "rlrobot/configs/ppo.yaml: default + CartPole-v1"
    )


def test_delayed_wrapper_takes_the_inner_envs_delayed_entry(tmp_path):
    (tmp_path / "sac.yaml").write_text(
        "default: {gamma: 0.9, delayed: {reward_redistribution: uniform}}\n"
        "Foo-v0: {learning_rate: 0.002, env_kwargs: {b: 2}, "
        "delayed: {reward_redistribution: rrd, rrd_batch_size: 8}}\n"
        "rlrobot/Delayed-v0: {learning_rate: 0.5}\n"
    )
    wrapped = resolve_config(
        "sac", "rlrobot/Delayed-v0", overrides=["env_kwargs.env_id=Foo-v0"], config_dir=tmp_path
    )
    # The inner env's entry and its delayed sub-entries; its env_kwargs go to the inner env.
    assert wrapped.algorithm.learning_rate == 0.002 and wrapped.algorithm.gamma == 0.9
    assert wrapped.algorithm.reward_redistribution == "rrd"
    assert wrapped.algorithm.rrd_batch_size == 8
    assert wrapped.run.env_kwargs == {"b": 2, "env_id": "Foo-v0"}
    assert wrapped.sources[0].endswith("(the env inside rlrobot/Delayed-v0)")
    # The user's layers still win over the inner entry.
    chosen = resolve_config(
        "sac",
        "rlrobot/Delayed-v0",
        overrides=["env_kwargs.env_id=Foo-v0", "reward_redistribution=null"],
        config_dir=tmp_path,
    )
    assert chosen.algorithm.reward_redistribution is None
    # Without an inner id the wrapper's own entry applies, as for any env.
    bare = resolve_config("sac", "rlrobot/Delayed-v0", config_dir=tmp_path)
    assert bare.algorithm.learning_rate == 0.5 and bare.algorithm.reward_redistribution is None
    # The shipped Pendulum entry picks the study's better method.
    pendulum = resolve_config(
        "sac", "rlrobot/Delayed-v0", overrides=["env_kwargs.env_id=Pendulum-v1"]
    )
    assert pendulum.algorithm.reward_redistribution == "rrd"
    assert pendulum.run.n_timesteps == 20_000
