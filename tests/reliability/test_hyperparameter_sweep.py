"""Every numeric hyperparameter of every config, swept with bad values (issue #20, class 1).

The cases are generated from the config classes (``dataclasses.fields``, the type hints and
the ``Interval`` each field declares), not listed by hand: a new field gets its cases, and a
new numeric field without a declared range fails ``test_every_numeric_field_declares_a_range``.
Each bad value must be a ``ConfigError`` naming the key and the value (and, for a number, the
allowed range), through ``Config.from_dict``, through the agent constructor, ``--set`` and a
YAML file. ``learn``'s, the constructor's own and ``policy_kwargs`` numbers are swept too.
``sweep_outcome`` sorts a case into clear / silent / crash; docs/reliability.md reports the
counts.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

import numpy as np
import pytest
import yaml

from rlrobot.agents import ALGORITHMS
from rlrobot.cli import main
from rlrobot.common.config import BaseConfig
from rlrobot.envs.checks import Interval
from rlrobot.errors import ConfigError
from rlrobot.perception.training import TrainConfig
from rlrobot.run.config import RunConfig
from tests.reliability.small_runs import ALGORITHM_ENV, make_small_agent

CONFIG_CLASSES: dict[str, type[BaseConfig]] = {
    **{algo: agent.config_class for algo, agent in sorted(ALGORITHMS.items())},
    "run": RunConfig,
    "perception": TrainConfig,
}
# Values another field must have for a field to take any value (a cross-field rule).
COMPANIONS = {"worker_timeout_s": {"vec_env": "async"}}


def numeric_kinds(hint: Any) -> set[type]:
    """Return the number types (int, float) a field's hint holds, inside unions and tuples."""
    if hint in (int, float):
        return {hint}
    if get_origin(hint) in (Union, types.UnionType, tuple, list):
        return set().union(*(numeric_kinds(arg) for arg in get_args(hint) if arg is not Ellipsis))
    return set()


def numeric_fields(config_class: type[BaseConfig]) -> dict[str, Any]:
    """Return ``{field: hint}`` for the fields of ``config_class`` that hold numbers."""
    hints = typing.get_type_hints(config_class)
    fields = (field.name for field in dataclasses.fields(config_class))
    return {name: hints[name] for name in fields if numeric_kinds(hints[name])}


def takes_sequence(hint: Any) -> bool:
    """Whether the field's numbers sit in a variable-length list (layer sizes)."""
    members = get_args(hint) if get_origin(hint) in (Union, types.UnionType) else (hint,)
    plain = [m for m in members if m is not type(None)]
    return all(get_origin(m) in (tuple, list) and Ellipsis in get_args(m) for m in plain)


def takes_strings(hint: Any) -> bool:
    """Whether a string is one of the field's own forms (SAC's ``ent_coef='auto_0.1'``)."""
    if hint is str or get_origin(hint) is Literal:
        return True
    return get_origin(hint) in (Union, types.UnionType) and any(map(takes_strings, get_args(hint)))


def step(bound: float, kind: type, direction: int) -> float:
    """Return the next number after ``bound`` in ``direction`` (+1 up, -1 down)."""
    return int(bound) + direction if kind is int else math.nextafter(bound, direction * math.inf)


def outside(interval: Interval, kind: type) -> list[float]:
    """Return the numbers just outside each finite bound of ``interval``."""
    values = []
    if interval.low is not None:
        values.append(kind(interval.low) if interval.low_open else step(interval.low, kind, -1))
    if interval.high is not None:
        values.append(kind(interval.high) if interval.high_open else step(interval.high, kind, 1))
    return values


def inside_bounds(interval: Interval, kind: type) -> list[float]:
    """Return each finite bound of ``interval``, or the nearest number inside an open one."""
    values = []
    if interval.low is not None:
        values.append(step(interval.low, kind, 1) if interval.low_open else kind(interval.low))
    if interval.high is not None:
        values.append(step(interval.high, kind, -1) if interval.high_open else kind(interval.high))
    return values


def bad_values(hint: Any, interval: Interval) -> list[Any]:
    """Return the values a field of this hint and range must refuse."""
    kinds = numeric_kinds(hint)
    kind = float if float in kinds else int
    values: list[Any] = [math.nan, math.inf, -math.inf, True, 1j]
    if kind is int:
        values += [2.5]
        if not takes_strings(hint):
            values += ["1"]
    else:
        values += ["nan"]  # YAML 1.1 numbers arrive as text; "nan" must not slip through
    values += outside(interval, kind)
    return values


def config_cases() -> list[tuple[str, str, Any]]:
    """Return ``(config name, key, bad value)`` for every numeric field of every config."""
    cases = []
    for name, config_class in CONFIG_CLASSES.items():
        for key, hint in numeric_fields(config_class).items():
            interval = config_class.field_interval(key) or Interval()
            for value in bad_values(hint, interval):
                cases.append((name, key, [value] if takes_sequence(hint) else value))
    return cases


def shown(value: Any) -> str:
    """The part of a bad value a message must show: the value, or a list's bad item."""
    item = value[0] if isinstance(value, list) else value
    return repr(float(item)) if item == "nan" else repr(item)


def is_clear(error: BaseException, key: str, value: Any, interval: Interval | None) -> bool:
    """Whether an error names the key, the value and (for a number) the allowed range."""
    message = str(error)
    item = value[0] if isinstance(value, list) else value
    is_number = isinstance(item, (int, float)) and not isinstance(item, bool)
    names_range = interval is None or not is_number or str(interval) in message
    return (
        isinstance(error, ConfigError)
        and key in message
        and shown(value) in message
        and names_range
    )


def sweep_outcome(build: Any, key: str, value: Any, interval: Interval | None) -> str:
    """Return clear (a ConfigError naming key, value, range), silent (accepted) or crash."""
    try:
        build()
    except Exception as error:
        return "clear" if is_clear(error, key, value, interval) else f"crash: {error!r}"
    return "silent"


CONFIG_CASES = config_cases()


@pytest.mark.parametrize(("config", "key", "value"), CONFIG_CASES)
def test_bad_number_in_a_config_is_refused_naming_key_value_and_range(config, key, value):
    config_class = CONFIG_CLASSES[config]
    values = {**COMPANIONS.get(key, {}), key: value}
    interval = config_class.field_interval(key)
    assert sweep_outcome(lambda: config_class.from_dict(values), key, value, interval) == "clear"


@pytest.mark.parametrize("config", sorted(CONFIG_CLASSES))
def test_every_numeric_field_declares_a_range(config):
    config_class = CONFIG_CLASSES[config]
    missing = [key for key in numeric_fields(config_class) if not config_class.field_interval(key)]
    assert missing == [], f"{config_class.__name__}: give these an interval: {missing}"


@pytest.mark.parametrize("config", sorted(CONFIG_CLASSES))
def test_every_default_and_every_bound_is_accepted(config):
    config_class = CONFIG_CLASSES[config]
    defaults = config_class.from_dict(config_class().to_dict())  # every default, checked
    for key, hint in numeric_fields(config_class).items():
        interval = config_class.field_interval(key)
        kind = float if float in numeric_kinds(hint) else int
        for bound in inside_bounds(interval, kind):
            value = [bound] if takes_sequence(hint) else bound
            accepted = config_class.from_dict({**COMPANIONS.get(key, {}), key: value})
            expected = tuple(value) if isinstance(value, list) else value
            assert getattr(accepted, key) == expected, (key, value)
    assert defaults == config_class()


def test_the_sweep_reaches_every_algorithm_and_kind_of_bad_value():
    names = {name for name, _, _ in CONFIG_CASES}
    assert names == set(CONFIG_CLASSES)
    keys = {key for _, key, _ in CONFIG_CASES}
    assert {"gamma", "ent_coef", "vf_coef", "log_std_init", "target_entropy", "tau"} <= keys
    assert {"net_arch", "train_freq", "n_critics", "learning_rate", "clip_range"} <= keys


# -- the same through the agent constructor, one env per algorithm ------------------------------
def constructor_cases() -> list[tuple[str, str, Any]]:
    """Two bad values of every numeric field per algorithm: NaN, and 2.5 or +inf."""
    cases = []
    for algo in sorted(ALGORITHMS):
        config_class = ALGORITHMS[algo].config_class
        for key, hint in numeric_fields(config_class).items():
            second = math.inf if float in numeric_kinds(hint) else 2.5
            for value in (math.nan, second):
                cases.append((algo, key, [value] if takes_sequence(hint) else value))
    return cases


@pytest.fixture(scope="module")
def one_env_per_algorithm():
    """One vector env for each algorithm, reused by all its cases (a refused config builds no
    networks and leaves the caller's env open)."""
    agents = {algo: make_small_agent(algo) for algo in sorted(ALGORITHMS)}
    yield {algo: agent.env for algo, agent in agents.items()}
    for agent in agents.values():
        agent.env.close()


@pytest.mark.parametrize(("algo", "key", "value"), constructor_cases())
def test_bad_number_through_the_agent_constructor_is_refused(
    algo, key, value, one_env_per_algorithm
):
    agent_class = ALGORITHMS[algo]
    interval = agent_class.config_class.field_interval(key)
    env = one_env_per_algorithm[algo]

    def build() -> Any:
        return agent_class("MlpPolicy", env, device="cpu", **{key: value})

    assert sweep_outcome(build, key, value, interval) == "clear"


# -- arguments that are not config fields ----------------------------------------------------
LEARN_CASES = [
    *(("total_timesteps", value) for value in (math.nan, math.inf, -math.inf, -5, 0, 2.5)),
    *(("total_timesteps", value) for value in ("100", True, 1j, None)),
    *(("log_interval", value) for value in (math.nan, math.inf, 0, -1, 2.5, "1", True)),
]


@pytest.fixture(scope="module")
def small_ppo():
    """One small PPO agent for the ``learn`` cases (none of which may run a step)."""
    agent = make_small_agent("ppo")
    yield agent
    agent.env.close()


@pytest.mark.parametrize(("argument", "value"), LEARN_CASES)
def test_bad_learn_arguments_are_refused_naming_the_argument(argument, value, small_ppo):
    arguments = {"total_timesteps": 64, argument: value}
    outcome = sweep_outcome(lambda: small_ppo.learn(**arguments), argument, value, Interval(1))
    assert outcome == "clear"
    assert small_ppo.num_timesteps == 0


def test_learn_reads_an_integral_float_budget_as_sb3_users_write_it():
    agent = make_small_agent("ppo")
    agent.learn(64.0)
    assert agent.num_timesteps == 64
    agent.env.close()


POLICY_KWARGS_CASES = [
    ("ppo", {"log_std_init": math.nan}, "log_std_init", math.nan),
    ("ppo", {"log_std_init": math.inf}, "log_std_init", math.inf),
    ("ppo", {"log_std_init": 2.5}, "log_std_init", 2.5),
    ("ppo", {"log_std_init": -21.0}, "log_std_init", -21.0),
    ("ppo", {"net_arch": [64, math.nan]}, "net_arch", math.nan),
    ("ppo", {"net_arch": [0]}, "net_arch", 0),
    ("ppo", {"net_arch": {"pi": [64], "vf": [math.inf]}}, "net_arch", math.inf),
    ("a2c", {"optimizer_kwargs": {"eps": math.nan}}, "['eps']", math.nan),
    ("a2c", {"optimizer_kwargs": {"eps": 0.0}}, "['eps']", 0.0),
    ("sac", {"n_critics": 0}, "n_critics", 0),
    ("sac", {"n_critics": 2.5}, "n_critics", 2.5),
    ("td3", {"n_critics": math.nan}, "n_critics", math.nan),
    ("td3", {"net_arch": {"pi": [64], "qf": [-1]}}, "net_arch", -1),
]


@pytest.mark.parametrize(("algo", "policy_kwargs", "key", "value"), POLICY_KWARGS_CASES)
def test_bad_policy_kwargs_numbers_are_refused_naming_the_key(algo, policy_kwargs, key, value):
    with pytest.raises(ConfigError) as caught:
        ALGORITHMS[algo](ALGORITHM_ENV, policy_kwargs=policy_kwargs)
    message = str(caught.value)
    assert message.startswith("policy_kwargs[") and key in message and repr(value) in message


ARGUMENT_CASES = [
    *(("seed", value) for value in (math.nan, math.inf, True, -1, 1.5, 1.0, "0", 2**64)),
    *(("verbose", value) for value in (True, 3, -1, math.nan, "1")),
    *(("stats_window_size", value) for value in (0, -1, math.nan, 2.5, True, "100")),
    *(("device", value) for value in (math.nan, "gpu0", 1j)),
]


@pytest.mark.parametrize(("argument", "value"), ARGUMENT_CASES)
def test_bad_constructor_arguments_are_refused_naming_the_argument(argument, value):
    def build() -> Any:
        return ALGORITHMS["sac"](ALGORITHM_ENV, **{argument: value})

    assert sweep_outcome(build, argument, value, None) == "clear"


@pytest.mark.parametrize(
    ("sigma", "message"), [(np.nan, "not finite numbers"), (-1.0, "cannot be sampled")]
)
def test_bad_sb3_action_noise_is_refused(sigma, message):
    from stable_baselines3.common.noise import NormalActionNoise

    noise = NormalActionNoise(np.zeros(1), np.full(1, sigma))
    with pytest.raises(ConfigError, match=rf"config key 'action_noise': .*{message}"):
        ALGORITHMS["td3"](ALGORITHM_ENV, action_noise=noise)


@pytest.mark.parametrize("key", ["learning_rate", "clip_range"])
def test_a_schedule_that_turns_nan_stops_training_at_that_value(key):
    def schedule(progress_remaining: float) -> float:
        return math.nan if 0.1 < progress_remaining < 0.9 else 0.1

    agent = make_small_agent("ppo", **{key: schedule})
    with pytest.raises(ConfigError, match=rf"'{key}': the schedule .* gave nan at progress"):
        agent.learn(320)
    assert 0 < agent.num_timesteps < 320  # stopped at the first bad value, not at the end
    weights = [p for module in agent.modules().values() for p in module.parameters()]
    assert all(bool(weight.detach().isfinite().all()) for weight in weights)
    agent.env.close()


def test_sac_auto_x_form_checks_its_number():
    for value in ("auto_nan", "auto_inf", "auto_-1", "auto_0", "auto_x"):
        with pytest.raises(ConfigError, match=rf"'ent_coef'.*got '{value}'"):
            CONFIG_CLASSES["sac"].from_dict({"ent_coef": value})
    assert CONFIG_CLASSES["sac"].from_dict({"ent_coef": "auto_0.1"}).get_entropy_coefficient() == (
        True,
        0.1,
    )


# -- the same through --set and a YAML file ---------------------------------------------------
TRAIN = ["train", "--algo", "sac", "--env", ALGORITHM_ENV, "--steps", "64", "--no-progress"]


@pytest.mark.parametrize(
    ("arguments", "yaml_values", "message"),
    [
        # YAML's NaN is .nan; plain nan is text, which a float field refuses.
        (["--set", "gamma=nan"], None, r"'gamma': expected float, got str 'nan'"),
        (["--set", "gamma=.nan"], None, r"'gamma': must be a finite number in \(0, 1\], got nan"),
        (["--set", "tau=.inf"], None, r"'tau': must be a finite number in \(0, 1\], got inf"),
        (["--set", "batch_size=2.5"], None, r"'batch_size': must be an integer in \[1, inf\)"),
        ([], {"ent_coef": math.inf}, r"'ent_coef': must be a finite number in \(0, inf\), got inf"),
        ([], {"target_entropy": -math.inf}, r"'target_entropy': must be a finite number"),
        ([], {"net_arch": [64, math.nan]}, r"'net_arch': must be an integer in \[1, 8192\]"),
    ],
)
def test_cli_and_yaml_bad_numbers_give_one_line_and_exit_2(
    arguments, yaml_values, message, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    if yaml_values is not None:
        (tmp_path / "sac.yaml").write_text(yaml.safe_dump(yaml_values))
        arguments = [*arguments, "--config", "sac.yaml"]
    assert main([*TRAIN, *arguments, "--out", "run"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("rlrobot train: error: config key") and error.count("\n") == 1
    assert re.search(message, error), error
    assert not (tmp_path / "run" / "config.yaml").exists()
