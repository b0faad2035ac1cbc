"""Every numeric and bool env option is checked for type, finiteness and range (issue #20, class 1).

The sweep is generated from the signatures: `get_options` lists every `gym.make` keyword of
every registered env id (and of `rlrobot/Delayed-v0` around an inner env) with its hint, and
the bad values come from the hint: NaN, ±inf, text, a bool, a complex number, a float where
an integer belongs, and the values just outside each finite bound; "yes" and 1 for bools.
Tuple options are swept item by item, and the `randomization` keyword field by field (its
dataclass's hints). Each bad value must be refused by a `ValueError` that names the option
and the value, before a physics client starts; the defaults and every bound inside the range
must build. A new numeric option without a checked hint fails
`test_every_numeric_option_has_a_checked_hint`.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
import time
import types
from collections.abc import Callable
from typing import Annotated, Any, Union, get_args, get_origin

import gymnasium as gym
import pytest

import rlrobot
from rlrobot.cli import main
from rlrobot.common.env_util import make_env
from rlrobot.envs import core
from rlrobot.envs.checks import ANY_NUMBER, Interval, check_value, checked_hints
from rlrobot.envs.perturbations import DomainRandomization, RandomKicks, SceneRandomization
from rlrobot.envs.registration import DELAYED_ENV_ID, get_options
from rlrobot.envs.wrappers import DelayedReward, MultiViewImages
from rlrobot.errors import EnvMakeError
from rlrobot.vec import make_vec_env

from .small_runs import ALGORITHM_ENV
from .test_cli_errors import TRAIN_BASE, _assert_one_error_line

REFUSAL_LIMIT_S = 2.0
# The delayed-reward id needs an inner env; its own options are swept around it.
REQUIRED_KWARGS = {DELAYED_ENV_ID: {"env_id": "rlrobot/CartPole-v0"}}
SWEPT_IDS = [*rlrobot.ENV_IDS, DELAYED_ENV_ID]
# Values that build only together with another option (a cross-field rule, checked after the
# single-option checks): a tiny arena only without a least goal distance.
COMPANIONS = {("rlrobot/Navigate-v0", "arena_half_size"): {"min_goal_distance": 0.0}}
# Options each id must at least have in the sweep, so that a refactor cannot empty it:
# its own numeric options, the 4 image sides and the 5 randomization fields.
MIN_OPTIONS = {
    "rlrobot/CartPole-v0": 6 + 4 + 5,
    "rlrobot/CartPoleContinuous-v0": 6 + 4 + 5,
    "rlrobot/Reach-v0": 5 + 4 + 5,
    "rlrobot/Push-v0": 7 + 4 + 5,
    "rlrobot/Navigate-v0": 9 + 4 + 5,
    "rlrobot/Quadruped-v0": 8 + 4 + 5,
    DELAYED_ENV_ID: 1,
}


# -- what a hint allows ------------------------------------------------------------------------
def scalar_kind(hint: Any) -> tuple[type, Interval] | None:
    """`(bool | int | float, interval)` of a checked scalar hint (`X | None` as X), else None."""
    origin, args = get_origin(hint), get_args(hint)
    if origin is Annotated and args[0] in (int, float):
        return args[0], next((a for a in args[1:] if isinstance(a, Interval)), ANY_NUMBER)
    if origin in (Union, types.UnionType):
        members = [arg for arg in args if arg is not type(None)]
        return scalar_kind(members[0]) if len(members) == 1 else None
    if hint in (bool, int, float):
        return hint, ANY_NUMBER
    return None


def _outside(kind: type, bound: float, is_open: bool, direction: float) -> float:
    """The value just beyond `bound` (the bound itself if open), towards `direction` (±inf)."""
    if is_open:
        return bound
    return (
        int(bound + math.copysign(1, direction))
        if kind is int
        else math.nextafter(bound, direction)
    )


def _inside(kind: type, bound: float, is_open: bool, direction: float) -> float:
    """The allowed value nearest `bound` (the bound itself if closed), from `direction`."""
    if not is_open:
        return kind(bound)
    return (
        int(bound + math.copysign(1, direction))
        if kind is int
        else math.nextafter(bound, direction)
    )


def bad_values(hint: Any) -> list[Any]:
    """Values a scalar hint must refuse."""
    kind, interval = scalar_kind(hint)
    if kind is bool:
        return ["yes", 1, 0, None, float("nan")]
    values: list[Any] = [float("nan"), float("inf"), float("-inf"), "1", True, 1j]
    if kind is int:
        values.append(2.5)
    if interval.low is not None:
        values.append(_outside(kind, interval.low, interval.low_open, -math.inf))
    if interval.high is not None:
        values.append(_outside(kind, interval.high, interval.high_open, math.inf))
    return values


def good_values(hint: Any, default: Any) -> list[Any]:
    """The default and the allowed value at each finite bound of a scalar hint."""
    kind, interval = scalar_kind(hint)
    values = [default]
    if interval.low is not None:
        values.append(_inside(kind, interval.low, interval.low_open, math.inf))
    if interval.high is not None:
        values.append(_inside(kind, interval.high, interval.high_open, -math.inf))
    return values


# -- the sweep's options, from the signatures -------------------------------------------------
@dataclasses.dataclass(frozen=True)
class SweptOption:
    """One checked value of an env id: a scalar keyword, an item of a tuple, a field of a dict.

    `name` is how the error names it; `kwargs(value)` the `gym.make` keywords that set it.
    """

    env_id: str
    name: str
    hint: Any
    default: Any
    kwargs: Callable[[Any], dict[str, Any]]
    # For a tuple item: the keywords that set every item of the tuple to one value.
    fill: Callable[[Any], dict[str, Any]] | None = None


def _expand(
    env_id: str, name: str, hint: Any, default: Any, wrap: Callable[[Any], dict[str, Any]]
) -> list[SweptOption]:
    """The swept values of one hinted parameter: itself, its tuple items or its dataclass's."""
    if scalar_kind(hint) is not None:
        return [SweptOption(env_id, name, hint, default, wrap)]
    origin, args = get_origin(hint), get_args(hint)
    if origin is tuple and default is not None:
        items = []
        for i, item_hint in enumerate(args):

            def replace(value: Any, i: int = i) -> dict[str, Any]:
                return wrap((*default[:i], value, *default[i + 1 :]))

            def fill(value: Any, n: int = len(args)) -> dict[str, Any]:
                return wrap((value,) * n)

            items.append(SweptOption(env_id, f"{name}[{i}]", item_hint, default[i], replace, fill))
        return items
    members = args if origin in (Union, types.UnionType) else (hint,)
    settings = [m for m in members if dataclasses.is_dataclass(m)]
    if settings:  # a dict of the dataclass's fields is accepted, e.g. randomization={...}
        hints = checked_hints(settings[0].__init__)
        found = []
        for field in dataclasses.fields(settings[0]):

            def in_dict(value: Any, key: str = field.name) -> dict[str, Any]:
                return wrap({key: value})

            found += _expand(env_id, field.name, hints[field.name], field.default, in_dict)
        return found
    return []


def swept_options(env_id: str) -> list[SweptOption]:
    """Every checked value of `env_id`'s `gym.make` keywords."""
    found = []
    for name, parameter in get_options(env_id).items():
        found += _expand(
            env_id, name, parameter.annotation, parameter.default, lambda v, n=name: {n: v}
        )
    return found


OPTIONS = [option for env_id in SWEPT_IDS for option in swept_options(env_id)]
REFUSALS = [(option, value) for option in OPTIONS for value in bad_values(option.hint)]
BUILDS = [
    (option, value, kwargs)
    for option in OPTIONS
    for value in good_values(option.hint, option.default)
    for kwargs in [
        option.fill(value) if option.fill and value != option.default else option.kwargs(value)
    ]
]


def _case_id(option: SweptOption, value: Any) -> str:
    return f"{option.env_id.split('/')[-1]}-{option.name}-{value!r}"


# -- the sweep --------------------------------------------------------------------------------
def test_the_sweep_covers_every_env_and_its_known_options():
    for env_id, least in MIN_OPTIONS.items():
        names = {option.name for option in OPTIONS if option.env_id == env_id}
        assert len({name.split("[")[0] for name in names}) >= least, (env_id, sorted(names))
    assert sorted(MIN_OPTIONS) == sorted(SWEPT_IDS)
    found = {(option.env_id, option.name) for option in OPTIONS}
    # The options are among them.
    for env_id, name in [
        ("rlrobot/CartPole-v0", "force_magnitude"),
        ("rlrobot/CartPole-v0", "continuous"),
        ("rlrobot/Quadruped-v0", "max_torque"),
        ("rlrobot/Quadruped-v0", "forward_weight"),
        ("rlrobot/Navigate-v0", "ray_length"),
        ("rlrobot/Reach-v0", "observation_noise"),
        ("rlrobot/Reach-v0", "distance_threshold"),
        ("rlrobot/Push-v0", "object_mass"),
        (DELAYED_ENV_ID, "period"),
    ]:
        assert (env_id, name) in found


@pytest.fixture
def no_physics(monkeypatch):
    """Make starting a physics client fail the test: a refusal must come before it."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a physics client was started before the option was refused")

    monkeypatch.setattr(core, "Simulation", refuse)


@pytest.mark.parametrize(
    ("option", "value"), REFUSALS, ids=[_case_id(option, value) for option, value in REFUSALS]
)
def test_a_bad_value_is_refused_by_name_before_the_physics_starts(option, value, no_physics):
    start = time.perf_counter()
    with pytest.raises(ValueError) as caught:
        gym.make(option.env_id, **REQUIRED_KWARGS.get(option.env_id, {}), **option.kwargs(value))
    assert time.perf_counter() - start < REFUSAL_LIMIT_S
    message = str(caught.value)
    assert f"{option.name} must be" in message and message.endswith(f"got {value!r}"), message


@pytest.mark.parametrize(
    ("option", "value", "kwargs"),
    BUILDS,
    ids=[_case_id(option, value) for option, value, _ in BUILDS],
)
def test_the_default_and_each_bound_build(option, value, kwargs):
    kwargs = {**COMPANIONS.get((option.env_id, option.name), {}), **kwargs}
    gym.make(option.env_id, **REQUIRED_KWARGS.get(option.env_id, {}), **kwargs).close()


def _unchecked_numbers(parameters: list[inspect.Parameter]) -> list[str]:
    """Names of the parameters with a number, a bool or numbers as default whose hint
    `check_value` lets text through (no hint, `Any`, a plain class)."""
    unchecked = []
    for parameter in parameters:
        default = parameter.default
        items = default if isinstance(default, (tuple, list)) else (default,)
        numeric = items and all(isinstance(item, (int, float)) for item in items)
        if not numeric:
            continue
        try:
            check_value(parameter.name, "text", parameter.annotation)
        except ValueError:
            continue
        unchecked.append(parameter.name)
    return unchecked


def _dataclass_parameters(settings: type) -> list[inspect.Parameter]:
    hints = checked_hints(settings.__init__)
    return [
        inspect.Parameter(
            field.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=field.default,
            annotation=hints[field.name],
        )
        for field in dataclasses.fields(settings)
    ]


@pytest.mark.parametrize("env_id", SWEPT_IDS)
def test_every_numeric_option_has_a_checked_hint(env_id):
    assert _unchecked_numbers(list(get_options(env_id).values())) == []


@pytest.mark.parametrize("settings", [DomainRandomization, SceneRandomization, RandomKicks])
def test_every_numeric_setting_has_a_checked_hint(settings):
    assert _unchecked_numbers(_dataclass_parameters(settings)) == []


def test_the_hint_check_finds_a_number_without_a_hint():
    def constructor(checked: float = 1.0, bare=2.0, typed_any: Any = 3, pair=(1.0, 2.0)):
        """A constructor with three numeric options that nothing checks."""

    parameters = [
        parameter.replace(annotation=checked_hints(constructor).get(name, parameter.empty))
        for name, parameter in inspect.signature(constructor).parameters.items()
    ]
    assert _unchecked_numbers(parameters) == ["bare", "typed_any", "pair"]


SETTING_REFUSALS = [
    (settings, option, value)
    for settings in (SceneRandomization, RandomKicks)
    for parameter in _dataclass_parameters(settings)
    for option in _expand(
        settings.__name__,
        parameter.name,
        parameter.annotation,
        parameter.default,
        lambda v, n=parameter.name: {n: v},
    )
    for value in bad_values(option.hint)
]


@pytest.mark.parametrize(
    ("settings", "option", "value"),
    SETTING_REFUSALS,
    ids=[_case_id(option, value) for _, option, value in SETTING_REFUSALS],
)
def test_a_bad_perturbation_setting_is_refused_by_name(settings, option, value):
    required = {"body": "ant"} if settings is RandomKicks else {}
    with pytest.raises(ValueError, match=f"{re.escape(option.name)} must be"):
        settings(**required, **option.kwargs(value))


WRAPPER_REFUSALS = [
    (wrapper, option, value)
    for wrapper in (DelayedReward, MultiViewImages)
    for name, hint in checked_hints(wrapper.__init__).items()
    for option in _expand(wrapper.__name__, name, hint, None, lambda v, n=name: {n: v})
    for value in bad_values(option.hint)
]


@pytest.fixture(scope="module")
def cartpole():
    env = gym.make("rlrobot/CartPole-v0")
    yield env
    env.close()


@pytest.mark.parametrize(
    ("wrapper", "option", "value"),
    WRAPPER_REFUSALS,
    ids=[_case_id(option, value) for _, option, value in WRAPPER_REFUSALS],
)
def test_a_bad_wrapper_option_is_refused_by_name(wrapper, option, value, cartpole):
    with pytest.raises(ValueError) as caught:
        wrapper(
            cartpole,
            **({"cameras": []} if wrapper is MultiViewImages else {}),
            **option.kwargs(value),
        )
    assert str(caught.value).startswith(f"{option.name} must be")
    assert str(caught.value).endswith(f"got {value!r}")


def test_the_wrapper_sweep_finds_both_options():
    assert {option.name for _, option, _ in WRAPPER_REFUSALS} == {"period", "size"}


# -- the same refusal through every path into an env ------------------------------------------
NAN_FORCE = "force_magnitude must be a finite number in (0, inf) N, got nan"


def test_make_env_names_the_env_the_keywords_and_the_value():
    with pytest.raises(EnvMakeError) as caught:
        make_env(ALGORITHM_ENV, {"force_magnitude": math.nan})
    assert str(caught.value) == (
        f"cannot make {ALGORITHM_ENV} with {{'force_magnitude': nan}}: {NAN_FORCE}"
    )


@pytest.mark.parametrize("vec_env", ["sync", "async"])
def test_make_vec_env_refuses_before_any_worker(vec_env):
    with pytest.raises(EnvMakeError, match="continuous must be true or false, got 'yes'"):
        make_vec_env(ALGORITHM_ENV, n_envs=2, env_kwargs={"continuous": "yes"}, vec_env=vec_env)


def test_the_delayed_env_names_an_inner_option():
    with pytest.raises(EnvMakeError, match=r"ray_length must be .*, got inf"):
        make_env(DELAYED_ENV_ID, {"env_id": "rlrobot/Navigate-v0", "ray_length": math.inf})


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("env_kwargs.force_magnitude=.nan", NAN_FORCE),
        # YAML reads an unquoted yes as true: 1 is the mistake that reaches the env.
        ("env_kwargs.continuous=1", "continuous must be true or false, got 1"),
        (
            "env_kwargs.randomization={observation_noise: -.inf}",
            "observation_noise must be a finite",
        ),
    ],
)
def test_cli_set_is_one_line(setting, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", *TRAIN_BASE, "--out", "run", "--set", setting]) == 2
    line = _assert_one_error_line("train", capsys.readouterr().err)
    assert message in line, line
    assert not (tmp_path / "run" / "config.yaml").exists()


def test_a_config_file_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text(
        f"algo: ppo\nenv: {ALGORITHM_ENV}\nenv_kwargs:\n  reset_noise: .inf\n"
    )
    assert main(["train", "--config", "config.yaml", "--steps", "64", "--out", "run"]) == 2
    line = _assert_one_error_line("train", capsys.readouterr().err)
    assert "reset_noise must be a finite number in [0, inf), got inf" in line, line
