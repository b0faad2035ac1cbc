"""Run configs: YAML defaults per algorithm keyed by env id, overrides, strict validation.

A run's configuration is one flat mapping: the fields of the algorithm's config dataclass (e.g.
``PPOConfig``) side by side with the fields of ``RunConfig`` (``n_timesteps``, ``n_envs``,
``env_kwargs``, ``eval_freq`` …). It is resolved from these layers, later ones winning:

1. the dataclass defaults;
2. ``rlrobot/configs/<algo>.yaml`` (package data; ``tuned_entry``): its ``default`` entry,
   then the entry of the env id (RL Zoo habit); when the run's ``env_kwargs.reward_mode`` is
   ``delayed``, the ``delayed`` sub-entries of both (tuned settings for delayed rewards:
   redistribution, γ, λ …) come next. ``rlrobot/Delayed-v0`` (``DelayedReward`` around the
   env named by ``env_kwargs.env_id``) takes the inner env's entries with their ``delayed``
   sub-entries, its ``env_kwargs`` going to the inner env;
3. a ``--config FILE`` (flat, or keyed by env id like the files in ``rlrobot/configs/``). An
   RL Zoo hyperparameter file works too: an entry with a ``policy`` key is the Zoo's, and it
   replaces layer 2, as in the Zoo, where keys an entry leaves out take SB3's defaults;
4. ``--set key=value`` (or ``--hyperparams key:value``) overrides (values read as YAML:
   ``3e-4``, ``[64, 64]``, ``true``; ``env_kwargs.reward_mode=sparse`` sets one nested key);
5. explicit command-line flags (``--steps``, ``--n-envs``, ``--eval-freq`` …).

Layers 3 and 4 may use the RL Zoo's forms (``lin_0.001``, ``normalize``, ``policy_kwargs``
strings, ``env_wrapper``), converted once into our keys by ``rlrobot.run.zoo``.

A missing or unreadable ``rlrobot/configs/<algo>.yaml`` is an error, never a silent fall-back to
the untuned dataclass defaults. Unknown keys are errors naming the key with close matches;
values of the wrong type are errors naming the key and the expected type (``ConfigError``).
The resolved config is written to the run folder as ``config.yaml`` together with ``algo``,
``env`` and ``seed``, and that file can be given back to ``--config`` to repeat a run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from rlrobot.common.config import (
    COUNT,
    SEED,
    TORCH_THREADS,
    BaseConfig,
    check_argument,
    did_you_mean,
    option,
    unknown_key_error,
)
from rlrobot.common.env_util import WRAPPER_PACKAGES
from rlrobot.common.yaml_loading import describe_yaml_error, load_yaml
from rlrobot.envs.checks import NON_NEGATIVE, POSITIVE, Interval, short_repr
from rlrobot.envs.registration import DELAYED_ENV_ID
from rlrobot.errors import ConfigError
from rlrobot.vec import VecEnvName
from rlrobot.vec.make import ENVS

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

# The tuned defaults ship inside the package (package data), so a wheel install keeps them.
TUNED_CONFIGS_PACKAGE = "rlrobot"
TUNED_CONFIGS_FOLDER = "configs"
DEFAULT_ENTRY = "default"
# Sub-entry of a rlrobot/configs/<algo>.yaml entry that applies under
# env_kwargs.reward_mode=delayed.
DELAYED_ENTRY = "delayed"
# ``env_wrapper``'s class paths: dotted names (``gymnasium.wrappers.TimeAwareObservation``).
WRAPPER_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")
# Keys of a resolved ``config.yaml`` that name the run rather than configure it.
IDENTITY_KEYS = ("algo", "env", "seed")
# Names people try as config keys (``--set seed=5``, SB3's ``tensorboard_log`` in a file) that
# are command-line options of ``train`` instead → the option, and whether bench and sweep have
# one of their own.
OPTION_KEYS = {
    "algo": ("--algo", True),
    "env": ("--env", True),
    "seed": ("--seed", True),
    "steps": ("--steps", True),
    "tensorboard_log": ("--tensorboard-log", False),
}


@dataclass
class RunConfig(BaseConfig):
    """Settings of a training run that are not hyperparameters of the algorithm."""

    n_timesteps: int = option(100_000, "env steps to train for, over all envs (--steps)", COUNT)
    n_envs: int = option(1, "number of parallel envs (--n-envs)", ENVS)
    vec_env: VecEnvName = option(
        "sync",
        "sync: one process; async: Gymnasium's AsyncVectorEnv, one process per env; "
        "shm: SharedMemoryVectorEnv, the main process and subprocesses step the envs and "
        "exchange actions and observations through shared memory; shm_workers: the same with "
        "every env in a subprocess",
    )
    worker_timeout_s: float | None = option(
        None,
        "seconds an env worker process (vec_env async, shm, shm_workers) may take for a step or "
        "reset before training stops with an error naming it (null: no limit)",
        POSITIVE,
    )
    env_kwargs: dict[str, Any] = field(
        default_factory=dict,
        metadata={"help": "keyword arguments for gym.make, e.g. {reward_mode: sparse}"},
    )
    env_wrapper: list[dict[str, dict[str, Any]]] = field(
        default_factory=list,
        metadata={
            "help": "wrappers around each env, innermost first, as {package.module.Class: "
            "{keyword: value}} items (the RL Zoo's env_wrapper; Gymnasium, SB3, sb3-contrib "
            "and rlrobot wrappers)"
        },
    )
    frame_stack: int = option(
        1,
        "stack the last N observations of each env (Gymnasium's FrameStackObservation: a new "
        "first axis); 1: none",
        Interval(1, 1024, reason="each stacked frame is a copy of the observation"),
    )
    device: str = option("auto", "torch device: auto (CUDA if available), cpu, cuda")
    torch_threads: int = option(
        1,
        "torch CPU threads while training; 1 is fastest for the small networks of RL on few "
        "shared cores (docs/benchmarks/threads.md)",
        TORCH_THREADS,
    )
    eval_freq: int = option(10_000, "evaluate every this many env steps (0: never)", NON_NEGATIVE)
    eval_episodes: int = option(10, "episodes per periodic evaluation", COUNT)
    eval_deterministic: bool = option(True, "evaluate the most likely actions")
    checkpoint_freq: int = option(
        10_000,
        "checkpoint every this many env steps (0: only at the end); resume restarts there",
        NON_NEGATIVE,
    )
    keep_checkpoints: int = option(
        3, "periodic checkpoints kept besides latest/best (0: all)", NON_NEGATIVE
    )

    def validate(self) -> None:
        """Check the rules that tie fields together, and the form of ``env_wrapper``."""
        for item in self.env_wrapper:
            self._require(
                len(item) == 1
                and all(isinstance(path, str) and path for path in item)
                and all(isinstance(kwargs, dict) for kwargs in item.values()),
                "env_wrapper",
                "each item must be one {package.module.Class: {keyword: value}}",
            )
            for path in item:
                self._require(
                    WRAPPER_PATH.fullmatch(path) is not None
                    and path.split(".")[0] in WRAPPER_PACKAGES,
                    "env_wrapper",
                    f"{short_repr(path)} must name a class package.module.Class of "
                    f"{', '.join(WRAPPER_PACKAGES)}",
                )
        self._require(
            self.worker_timeout_s is None or self.vec_env != "sync",
            "worker_timeout_s",
            "needs worker processes: vec_env async, shm or shm_workers",
        )


@dataclass
class ResolvedConfig:
    """A run's identity and its validated run and algorithm configs."""

    algo: str
    env: str
    seed: int
    run: RunConfig
    algorithm: BaseConfig
    sources: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return the flat mapping written to ``config.yaml`` (identity keys first)."""
        return {
            "algo": self.algo,
            "env": self.env,
            "seed": self.seed,
            **self.run.to_dict(),
            **self.algorithm.to_dict(),
        }

    def to_yaml(self) -> str:
        """Return ``config.yaml``'s text, with a header naming the layers it was resolved from."""
        header = ["# Resolved config of this run (rlrobot train). Layers, later ones winning:"]
        header += [f"#   {source}" for source in self.sources or ["dataclass defaults"]]
        header.append("# Repeat the run with: rlrobot train --config config.yaml --out NEW_DIR")
        body = yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)
        return "\n".join(header) + "\n" + body


def algorithm_class(algo: str) -> type:
    """Return the agent class registered as ``algo`` (``ConfigError`` naming the choices)."""
    from rlrobot.agents import ALGORITHMS

    if algo not in ALGORITHMS:
        raise ConfigError(
            f"unknown algorithm {short_repr(algo)}; choose one of {sorted(ALGORITHMS)}"
        )
    return ALGORITHMS[algo]


def read_yaml(path: str | os.PathLike | Traversable) -> dict[str, Any]:
    """Read a YAML mapping (an empty file is ``{}``); ``ConfigError`` for anything else."""
    if isinstance(path, (str, os.PathLike)):
        path = Path(path)
    if not path.is_file():
        if path.is_dir():
            problem = "is a folder, not a file"
        elif isinstance(path, Path) and path.exists():
            problem = "is not a regular file (a device, a pipe or a socket)"
        else:
            problem = "does not exist"
        raise ConfigError(f"config file {path} {problem}")
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"config file {path} cannot be read: it is not UTF-8 text ({error.reason} at byte "
            f"{error.start})"
        ) from None
    except OSError as error:
        raise ConfigError(f"config file {path} cannot be read: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise ConfigError(
            f"config file {path} is not valid YAML: {describe_yaml_error(error)}"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping, not {type(data).__name__}")
    check_keys(data, f"config file {path}")
    return data


def check_keys(data: dict[Any, Any], owner: str) -> None:
    """Raise ``ConfigError`` naming the first key of ``data`` or of a mapping nested in it (in
    mappings) that is not a string: YAML reads ``null: 1`` or ``1: 2`` as such keys."""
    mappings = [data]
    while mappings:
        mapping = mappings.pop()
        for key, value in mapping.items():
            if not isinstance(key, str):
                raise ConfigError(
                    f"{owner}: config keys are names (strings), got the key {short_repr(key)} "
                    f"({type(key).__name__})"
                )
            if isinstance(value, dict):
                mappings.append(value)


def is_keyed_by_env(data: dict[str, Any], known_keys: set[str]) -> bool:
    """Tell a file keyed by env id (``default``, ``rlrobot/Reach-v0`` …) from a flat one."""
    return (
        bool(data)
        and not (set(data) & known_keys)
        and all(isinstance(value, dict) for value in data.values())
    )


def select_env_entry(data: dict[str, Any], env_id: str) -> dict[str, Any]:
    """Return ``default`` deep-merged with the entry of ``env_id`` (either may be missing)."""
    return deep_merge(data.get(DEFAULT_ENTRY) or {}, data.get(env_id) or {})


def describe_env_entry(name: str, data: dict[str, Any], env_id: str) -> str:
    """Name the entries of the env-keyed file ``name`` that apply to ``env_id`` (for headers)."""
    if env_id in data:
        return f"{name}: {DEFAULT_ENTRY} + {env_id}"
    return f"{name}: {DEFAULT_ENTRY} (no {env_id} entry)"


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` updated by ``update``; nested mappings are merged key by key."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_override(text: str) -> dict[str, Any]:
    """Turn ``"key=value"`` into ``{key: value}`` with the value read as YAML.

    ``"a.b=1"`` becomes ``{"a": {"b": 1}}`` (for ``env_kwargs``).

    Raises:
        ConfigError: No ``=``, an empty key, or a value that is not valid YAML.
    """
    key, separator, raw_value = text.partition("=")
    key = key.strip()
    if not separator or not key:
        raise ConfigError(f"--set expects key=value, got {short_repr(text)}")
    try:
        value = load_yaml(raw_value) if raw_value.strip() else ""
    except yaml.YAMLError as error:
        raise ConfigError(
            f"--set {short_repr(key)}: {short_repr(raw_value)} is not a valid YAML value "
            f"({describe_yaml_error(error)})"
        ) from None
    for part in reversed(key.split(".")[1:]):
        value = {part: value}
    return {key.split(".")[0]: value}


def tuned_config_file(algo: str, config_dir: str | os.PathLike | None = None) -> Traversable:
    """Return ``rlrobot/configs/<algo>.yaml`` (package data), or ``<config_dir>/<algo>.yaml``."""
    if config_dir is not None:
        return Path(config_dir) / f"{algo}.yaml"
    return resources.files(TUNED_CONFIGS_PACKAGE) / TUNED_CONFIGS_FOLDER / f"{algo}.yaml"


def read_tuned_configs(algo: str, config_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Return the tuned defaults of ``algo``, keyed by env id (``default`` applies to every env).

    Raises:
        ConfigError: The file is missing (naming it), unreadable or not a YAML mapping; a run
            never falls back to the untuned dataclass defaults without a word.
    """
    path = tuned_config_file(algo, config_dir)
    if not path.is_file():
        where = "" if config_dir is not None else " (is rlrobot installed with its package data?)"
        raise ConfigError(f"the tuned defaults of {algo} are missing: no file {path}{where}")
    return read_yaml(path)


@dataclass(frozen=True)
class TunedEntry:
    """The tuned defaults of one algorithm on one env id, from ``rlrobot/configs/<algo>.yaml``.

    Attributes:
        source: Names the file and its entries that apply (for ``config.yaml``'s header and
            error messages), e.g. ``rlrobot/configs/ppo.yaml: default + CartPole-v1``.
        values: Config keys: the ``default`` entry deep-merged with the env's entry, and the
            variant's sub-entries on top when one was asked for.
        delayed: The ``delayed`` sub-entries of both entries (merged) when they were not
            applied; empty once they are.
    """

    source: str
    values: dict[str, Any]
    delayed: dict[str, Any]

    def as_file_entry(self) -> dict[str, Any]:
        """Return the entry as a configs file writes it: unapplied sub-entries under their key."""
        return {**self.values, DELAYED_ENTRY: self.delayed} if self.delayed else dict(self.values)


def tuned_entry(
    algo: str,
    env_id: str,
    variant: str | None = None,
    config_dir: str | os.PathLike | None = None,
) -> TunedEntry:
    """Resolve ``(algo, env_id[, variant])`` to its entry of ``rlrobot/configs/<algo>.yaml``.

    The one resolution of a tuned entry: ``rlrobot train``, ``bench``, ``sweep`` and the tests
    all go through it. An env without an entry gets the ``default`` entry alone.

    Args:
        algo: Algorithm name (selects the file).
        env_id: Env id (selects the entry).
        variant: ``"delayed"`` to apply the ``delayed`` sub-entries (as under
            ``env_kwargs.reward_mode=delayed``); None leaves them in ``TunedEntry.delayed``.
        config_dir: Folder to read ``<algo>.yaml`` from instead of the package data.

    Raises:
        ConfigError: The file is missing, unreadable or not a mapping, or an entry or its
            ``delayed`` sub-entries are not mappings.
        ValueError: An unknown variant.
    """
    if variant not in (None, DELAYED_ENTRY):
        raise ValueError(f"variant must be None or {DELAYED_ENTRY!r}, got {variant!r}")
    entries = read_tuned_configs(algo, config_dir)
    name = (
        f"{TUNED_CONFIGS_PACKAGE}/{TUNED_CONFIGS_FOLDER}/{algo}.yaml"
        if config_dir is None
        else str(tuned_config_file(algo, config_dir))
    )
    for key in (DEFAULT_ENTRY, env_id):
        entry = entries.get(key) or {}
        if not isinstance(entry, dict):
            raise ConfigError(f"{name}: entry {key!r} must be a mapping, got {short_repr(entry)}")
        sub_entries = entry.get(DELAYED_ENTRY) or {}
        if not isinstance(sub_entries, dict):
            raise ConfigError(
                f"{name}: the {DELAYED_ENTRY!r} sub-entries of {key!r} must be a mapping, "
                f"got {short_repr(sub_entries)}"
            )
    values = select_env_entry(entries, env_id)
    delayed = values.pop(DELAYED_ENTRY, None) or {}
    source = describe_env_entry(name, entries, env_id)
    if variant == DELAYED_ENTRY and delayed:
        source = f"{source} + {DELAYED_ENTRY} sub-entries"
        return TunedEntry(source, deep_merge(values, delayed), {})
    return TunedEntry(source, values, delayed)


def resolve_config(
    algo: str | None,
    env_id: str | None,
    seed: int | None = None,
    config_file: str | os.PathLike | None = None,
    overrides: Sequence[str] = (),
    explicit: dict[str, Any] | None = None,
    config_dir: str | os.PathLike | None = None,
) -> ResolvedConfig:
    """Resolve and validate a run's config from the layers in the module docstring.

    Args:
        algo: Algorithm name; may be omitted when ``config_file`` has an ``algo`` key.
        env_id: Env id; may be omitted when ``config_file`` has an ``env`` key.
        seed: Seed; taken from ``config_file`` or 0 when None.
        config_file: A YAML file, flat or keyed by env id.
        overrides: ``key=value`` strings.
        explicit: Values of explicit flags, e.g. ``{"n_timesteps": 5000}`` (None: unset).
        config_dir: Folder of the per-algorithm YAML files (default: the package's
            ``rlrobot/configs/``).

    Raises:
        ConfigError: Unknown keys, wrong types, bad ranges, missing algo/env, a missing
            tuned-defaults file.
    """
    file_values: dict[str, Any] = {}
    if config_file is not None:
        file_values = read_yaml(config_file)
    identity = {key: file_values.get(key) for key in IDENTITY_KEYS}
    algo = algo or identity["algo"]
    env_id = env_id or identity["env"]
    if algo is None or env_id is None:
        raise ConfigError("give --algo and --env (or a --config file with 'algo' and 'env' keys)")
    if seed is None:
        seed = identity["seed"] if identity["seed"] is not None else 0
    check_identity(algo, env_id, seed)
    from rlrobot.run.zoo import convert_zoo_entry, is_zoo_entry  # torch: not at import time

    agent_class = algorithm_class(algo)
    known_keys = set(RunConfig.field_names()) | set(agent_class.config_class.field_names())

    def convert(source: str, values: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        # RL Zoo forms (policy, lin_0.001, normalize, policy_kwargs strings …) → our keys.
        try:
            return source, convert_zoo_entry(
                values, agent_class.__name__, agent_class.on_policy, agent_class.config_class
            )
        except ConfigError as error:
            raise ConfigError(f"{error} (from {source})") from None

    tuned: TunedEntry | None = tuned_entry(algo, env_id, config_dir=config_dir)
    layers: list[tuple[str, dict[str, Any]]] = [(tuned.source, tuned.values)]
    if config_file is not None:
        values = {k: v for k, v in file_values.items() if k not in IDENTITY_KEYS}
        source = f"--config {config_file}"
        if is_keyed_by_env(values, known_keys):
            if env_id not in values and DEFAULT_ENTRY not in values:
                # Nothing of the file would apply: most likely a misspelt env id.
                raise ConfigError(
                    f"{source} is keyed by env id but has no entry for {env_id} and no "
                    f"{DEFAULT_ENTRY!r} entry{did_you_mean(env_id, sorted(values))}"
                )
            source = describe_env_entry(source, values, env_id)
            values = select_env_entry(values, env_id)
        if is_zoo_entry(values):
            # As in the Zoo, its entry is the whole set: keys it leaves out take SB3's defaults
            # (ours), not rlrobot's tuned values for the env.
            tuned = None
            layers = []
            source = f"{source} (an RL Zoo entry: rlrobot's tuned defaults are not applied)"
        layers.append(convert(source, values))
    for text in overrides:
        layers.append(convert(f"--set {text}", parse_override(text)))
    if explicit:
        flags = {key: value for key, value in explicit.items() if value is not None}
        if flags:
            layers.append(("command-line flags", flags))
    merged: dict[str, Any] = {}
    for _, values in layers:
        merged = deep_merge(merged, values)
    env_kwargs = merged.get("env_kwargs")
    if tuned is not None and isinstance(env_kwargs, dict):
        # In the tuned layer, so the user's own layers still win.
        inner_id = env_kwargs.get("env_id")
        if env_id == DELAYED_ENV_ID and isinstance(inner_id, str):
            inner = tuned_entry(algo, inner_id, DELAYED_ENTRY, config_dir)
            layers[0] = (f"{inner.source} (the env inside {env_id})", inner.values)
        elif tuned.delayed and env_kwargs.get("reward_mode") == "delayed":
            tuned = tuned_entry(algo, env_id, DELAYED_ENTRY, config_dir)
            layers[0] = (tuned.source, tuned.values)
    return validate_layers(algo, env_id, seed, layers)


def check_identity(algo: Any, env_id: Any, seed: Any) -> None:
    """Raise ``ConfigError`` unless ``algo`` and ``env_id`` are names and ``seed`` an int in
    ``SEED`` (0 to 2**64 - 1).

    They may come from a YAML file, where ``env: 123`` or ``algo: [ppo]`` parse fine.
    """
    for key, value in (("algo", algo), ("env", env_id)):
        if not isinstance(value, str) or not value:
            raise ConfigError(
                f"config key {key!r}: expected a name (a string), got {short_repr(value)}"
            )
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"config key 'seed': expected an integer >= 0, got {short_repr(seed)}")
    check_argument("config key 'seed':", seed, int, SEED)


def validate_layers(
    algo: str, env_id: str, seed: int, layers: list[tuple[str, dict[str, Any]]]
) -> ResolvedConfig:
    """Merge ``(source, values)`` layers in order and validate the result.

    Raises:
        ConfigError: An unknown key (naming its source and close matches) or a bad value.
    """
    check_identity(algo, env_id, seed)
    config_class = algorithm_class(algo).config_class
    run_keys, algorithm_keys = set(RunConfig.field_names()), set(config_class.field_names())
    known_keys = sorted(run_keys | algorithm_keys)
    merged: dict[str, Any] = {}
    for source, saved_values in layers:
        values = config_class.upgrade(saved_values)  # a run folder of an older rlrobot
        for key in values:
            if key in run_keys or key in algorithm_keys:
                continue
            if key in OPTION_KEYS:
                flag, elsewhere = OPTION_KEYS[key]
                others = "; bench and sweep have their own" if elsewhere else ""
                raise ConfigError(
                    f"unknown config key {key!r} for {algo} runs: it is a command-line option "
                    f"(rlrobot train {flag} {values[key]}{others}) (from {source})"
                )
            error = unknown_key_error(key, known_keys, f"{algo} runs")
            raise ConfigError(f"{error} (from {source})")
        merged = deep_merge(merged, values)
    run = RunConfig.from_dict({k: v for k, v in merged.items() if k in run_keys})
    algorithm = config_class.from_dict({k: v for k, v in merged.items() if k in algorithm_keys})
    return ResolvedConfig(algo, env_id, seed, run, algorithm, [source for source, _ in layers])


def read_run_config(path: str | os.PathLike) -> ResolvedConfig:
    """Read and validate a resolved ``config.yaml`` written by ``ResolvedConfig.to_yaml``."""
    values = read_yaml(path)
    missing = [key for key in IDENTITY_KEYS if key not in values]
    if missing:
        raise ConfigError(f"{path} lacks the keys {missing}; is it a run's config.yaml?")
    fields = {k: v for k, v in values.items() if k not in IDENTITY_KEYS}
    return validate_layers(values["algo"], values["env"], values["seed"], [(str(path), fields)])


def config_help(algo: str) -> str:
    """Return one line per config key of ``algo`` runs: name, default, range and help text."""
    agent_class = algorithm_class(algo)
    lines = []
    for config_class in (RunConfig, agent_class.config_class):
        defaults = config_class().to_dict()
        lines.append(f"{config_class.__name__}:")
        for name, text in config_class.field_help().items():
            interval = config_class.field_interval(name)
            allowed = f" (in {interval})" if interval is not None else ""
            lines.append(f"  {name} = {defaults[name]!r}{allowed}: {text}")
    return "\n".join(lines)
