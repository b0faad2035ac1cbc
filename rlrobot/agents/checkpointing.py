"""Agent checkpoints: what ``BaseAgent.save`` writes and how ``BaseAgent.load`` rebuilds it.

A checkpoint is one ``.zip`` file, or a directory, with ``model.safetensors`` (weights and
training state as tensors) and ``metadata.json`` (config, spaces, the training state's tree, the
image encoder's spec), plus ``replay_buffer.npz`` when asked for (see
``rlrobot.common.checkpoint``). A Stable-Baselines3 ``.zip`` is imported by
``rlrobot.agents.sb3_import``. Everything loaded is validated before use: a checkpoint that
does not fit is a ``CheckpointError``.
"""

from __future__ import annotations

import os
import platform
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import gymnasium as gym
import numpy as np
import torch

import rlrobot
from rlrobot.agents.sb3_arguments import (
    SB3_ARGUMENT_OWNERS,
    SB3_ARGUMENTS,
    check_common_arguments,
    check_policy_kwargs_match,
    convert_sb3_arguments,
)
from rlrobot.agents.sb3_import import fit_channel_order, read_sb3_archive
from rlrobot.common.checkpoint import (
    COUNT,
    METADATA_FILE,
    REPLAY_BUFFER_FILE,
    check_array_like,
    check_json_leaves,
    check_like_template,
    check_optimizer_state,
    check_spaces_match,
    find_checkpoint,
    is_sb3_archive,
    load_checkpoint,
    pack_state,
    read_checkpoint_file,
    resolve_save_path,
    save_checkpoint,
    space_from_dict,
    space_to_dict,
    state_tensor_names,
    unpack_state,
)
from rlrobot.common.config import did_you_mean
from rlrobot.common.env_util import EnvSpec
from rlrobot.common.networks import build_image_encoder, get_image_encoder_spec
from rlrobot.common.normalization import check_statistics
from rlrobot.common.seeding import check_rng_state
from rlrobot.envs.checks import Interval, check_number
from rlrobot.envs.state import check_dict, check_like, get_space_rng_state, restore_generator_state
from rlrobot.errors import CheckpointError, ConfigError
from rlrobot.vec import make_vec_env
from rlrobot.vec.make import MAX_ENVS
from rlrobot.vec.state import get_vector_env_state, set_vector_env_state

if TYPE_CHECKING:
    from rlrobot.agents.base import BaseAgent

AgentT = TypeVar("AgentT", bound="BaseAgent")
# ``custom_objects`` keys of SB3 whose config field has another name.
SB3_CUSTOM_OBJECT_NAMES = {"lr_schedule": "learning_rate"}
# The agent's attributes beside the config that a checkpoint keeps and ``load`` sets again (as
# SB3's ``load`` restores them), unless ``load`` is given new values.
SAVED_ATTRIBUTES = ("verbose", "tensorboard_log", "seed", "stats_window_size")
# SB3's attribute names of ours where they differ (``save``'s ``exclude``/``include``).
SB3_ATTRIBUTE_NAMES = {"_stats_window_size": "stats_window_size"}
# Each of ``SAVED_ATTRIBUTES`` by SB3's name (its own where they agree).
SB3_NAME_OF = {
    name: next((sb3 for sb3, ours in SB3_ATTRIBUTE_NAMES.items() if ours == name), name)
    for name in SAVED_ATTRIBUTES
}
# SB3's names of what ``include_episodes`` stores (the episodes in progress).
EPISODE_NAMES = ("_last_obs", "_last_episode_starts", "_last_original_obs")
# SB3 attributes that its ``save`` leaves out by default and ours never stores: excluding them
# changes nothing; including them (SB3 would pickle the object) is refused with the reason.
NEVER_SAVED = {
    "env": "pass env= to load",
    "device": "pass device= to load",
    "rollout_buffer": "it is refilled by the next rollout",
    "_vec_normalize_env": "save your VecNormalize with its own save(path)",
    "_logger": "pass the logger to learn, or call set_logger after load",
    "_custom_logger": "call set_logger after load",
}
# The names ``save``'s ``include`` takes (and ``exclude``, with ``NEVER_SAVED``); ``policy``, the
# weights, is always saved, in SB3 too.
INCLUDABLE = {*SAVED_ATTRIBUTES, *SB3_ATTRIBUTE_NAMES, *EPISODE_NAMES, "replay_buffer", "policy"}


@dataclass(frozen=True)
class SaveContents:
    """What ``save`` writes beside the weights: SB3's ``exclude``/``include`` resolved."""

    training_state: bool
    replay_buffer: bool
    episodes: bool
    attributes: tuple[str, ...]


def resolve_save_contents(
    exclude: Any,
    include: Any,
    include_training_state: bool,
    include_replay_buffer: bool,
    include_episodes: bool,
) -> SaveContents:
    """Map SB3's ``save(exclude=…, include=…)`` attribute names onto what our checkpoint holds.

    ``include=["replay_buffer"]`` is ``include_replay_buffer=True`` and ``include=["_last_obs"]``
    ``include_episodes=True``; ``exclude`` of ``verbose``, ``tensorboard_log``, ``seed`` or
    ``_stats_window_size`` leaves that attribute out, so ``load`` gives its default (as in SB3).
    Names SB3 leaves out by default (``env``, ``replay_buffer`` …) may be excluded (no change).

    Raises:
        ConfigError: A name we do not store, one included that a checkpoint cannot hold (a
            live object), or one both excluded and asked for (``include_replay_buffer=True``).
    """
    excluded, included = _names("exclude", exclude), _names("include", include)
    if excluded & included:
        raise ConfigError(
            f"save: {sorted(excluded & included)} in both exclude and include; give each once"
        )
    live = sorted((included - INCLUDABLE) & set(NEVER_SAVED))
    if live:
        raise ConfigError(
            f"save: include={sorted(included)}: {live[0]!r} is a live object, which a "
            f"checkpoint (JSON and tensors, no pickle) cannot hold; {NEVER_SAVED[live[0]]}"
        )
    excludable = INCLUDABLE | set(NEVER_SAVED)
    for argument, names, known in (
        ("include", included, INCLUDABLE),
        ("exclude", excluded, excludable),
    ):
        unknown = sorted(names - known)
        if unknown:
            raise _unknown_save_name(argument, unknown[0], known)
    for flag, given, names in (
        ("include_replay_buffer", include_replay_buffer, {"replay_buffer"}),
        ("include_episodes", include_episodes, set(EPISODE_NAMES)),
    ):
        if given and excluded & names:
            raise ConfigError(
                f"save: exclude={sorted(excluded)} leaves {sorted(excluded & names)} out, but "
                f"{flag}=True asks for it; give one"
            )
    attributes = tuple(
        name for name in SAVED_ATTRIBUTES if not {name, SB3_NAME_OF[name]} & excluded
    )
    return SaveContents(
        training_state=include_training_state,
        replay_buffer=include_replay_buffer or "replay_buffer" in included,
        episodes=include_episodes or bool(included & set(EPISODE_NAMES)),
        attributes=attributes,
    )


def _names(argument: str, names: Any) -> set[str]:
    """Return ``save``'s ``exclude``/``include`` (None or an iterable of str) as a set."""
    if names is None:
        return set()
    if isinstance(names, str) or not all(isinstance(name, str) for name in names):
        raise ConfigError(f"save: {argument} must be a list of attribute names, got {names!r}")
    return set(names)


def _unknown_save_name(argument: str, name: str, allowed: set[str]) -> ConfigError:
    """The error for an ``exclude``/``include`` name our checkpoint has no part for."""
    return ConfigError(
        f"save: {argument} name {name!r} names no part of an rlrobot checkpoint that can be "
        f"left out or added{did_you_mean(name, sorted(allowed))}; the config (every "
        "hyperparameter, as JSON), the spaces and the weights are always saved (change a "
        f"hyperparameter with load(path, key=value)); allowed: {sorted(allowed)}"
    )


def get_versions() -> dict[str, str]:
    """Return the versions ``load(print_system_info=True)`` compares (SB3's system info)."""
    return {
        "OS": platform.platform(),
        "python": platform.python_version(),
        "rlrobot": rlrobot.__version__,
        "torch": torch.__version__,
        "cuda": str(torch.cuda.is_available()),
        "numpy": np.__version__,
        "gymnasium": gym.__version__,
    }


def print_system_info(saved: Any) -> None:
    """Print the versions a checkpoint was saved with and today's (SB3's ``print_system_info``)."""
    print("== CURRENT SYSTEM INFO ==")
    for key, value in get_versions().items():
        print(f"- {key}: {value}")
    print("== SAVED MODEL SYSTEM INFO ==")
    if not isinstance(saved, dict):
        print("- (not recorded)")
        return
    for key, value in saved.items():
        # A checkpoint's strings are shown, never interpreted: no terminal control characters.
        print(f"- {_printable(key)}: {_printable(value)}")


def _printable(value: Any) -> str:
    """Return ``value`` as text to print: itself if a printable str, else its ``repr``."""
    return value if isinstance(value, str) and value.isprintable() else repr(value)


def save_agent(agent: BaseAgent, path: str | os.PathLike, contents: SaveContents) -> Path:
    """Write ``agent``'s checkpoint to ``path`` (see ``BaseAgent.save``); return where."""
    tensors: dict[str, torch.Tensor] = {}
    for name, module in agent.checkpoint_modules().items():
        tensors.update({f"{name}/{k}": v for k, v in module.state_dict().items()})
    state = agent.get_training_state()
    if not contents.training_state:
        state = {"num_timesteps": state["num_timesteps"], "normalizers": state["normalizers"]}
    elif contents.episodes:
        state["episodes"] = agent.get_episode_state()
    state_tensors, state_tree = pack_state(state, prefix="state")
    tensors.update(state_tensors)
    metadata = {
        "algorithm": agent.algorithm,
        "config": agent.config.to_json_dict(agent.current_progress_remaining()),
        "env_id": agent.env_id,
        "n_envs": agent.n_envs,
        "observation_space": space_to_dict(agent.observation_space),
        "action_space": space_to_dict(agent.action_space),
        "state": state_tree,
        "image_encoder": image_encoder_metadata(agent),
        "attributes": {name: _get_attribute(agent, name) for name in contents.attributes},
        "versions": get_versions(),
    }
    extra_files = {}
    if contents.replay_buffer and agent.replay_buffer is not None:
        with tempfile.TemporaryDirectory() as folder:
            written = agent.save_replay_buffer(Path(folder) / REPLAY_BUFFER_FILE)
            extra_files[REPLAY_BUFFER_FILE] = written.read_bytes()
    return save_checkpoint(resolve_save_path(path), tensors, metadata, extra_files)


def _get_attribute(agent: BaseAgent, name: str) -> Any:
    """Return one of ``SAVED_ATTRIBUTES`` of ``agent`` as JSON."""
    if name == "stats_window_size":
        return agent.episode_tracker.recent_returns.maxlen
    value = getattr(agent, name)
    if isinstance(value, np.integer):
        return int(value)
    return os.fspath(value) if isinstance(value, os.PathLike) else value


def image_encoder_metadata(agent: BaseAgent) -> dict[str, Any] | None:
    """Return the custom image encoder's JSON spec and freeze flag (None: default CNN)."""
    if agent._image_encoder is None:
        return None
    return {
        "spec": get_image_encoder_spec(agent._image_encoder),
        "class": type(agent._image_encoder).__name__,
        "freeze": agent._freeze_encoder,
    }


@dataclass(frozen=True)
class LoadTarget:
    """Where a loaded agent runs: the env and device arguments of ``BaseAgent.load``.

    ``force_reset`` (SB3's): start new episodes at the next ``learn``, even where the
    checkpoint holds episodes in progress (``save(include_episodes=True)``); False continues
    them.
    """

    env: EnvSpec | gym.vector.VectorEnv | None
    device: str | torch.device
    n_envs: int | None
    vec_env: str
    env_kwargs: dict[str, Any] | None
    worker_timeout_s: float | None
    seed: int | None
    force_reset: bool = True


@dataclass(frozen=True)
class LoadChanges:
    """What ``load``'s ``custom_objects`` and ``**kwargs`` change, sorted by where it goes.

    Attributes:
        hyperparameters: Config fields, in our names.
        attributes: ``verbose``, ``tensorboard_log``, ``stats_window_size``.
        policy_kwargs: SB3's ``policy_kwargs``, which must describe the saved networks (None:
            not given).
    """

    hyperparameters: dict[str, Any]
    attributes: dict[str, Any]
    policy_kwargs: dict[str, Any] | None


# ``load`` keywords that set an attribute rather than a config field.
LOAD_ATTRIBUTES = ("verbose", "tensorboard_log", "stats_window_size")


def sort_load_changes(
    cls: type[BaseAgent], custom_objects: dict[str, Any] | None, kwargs: dict[str, Any]
) -> LoadChanges:
    """Sort SB3's ``load(…, custom_objects, **kwargs)`` into config fields and attributes.

    SB3 sets every keyword as an attribute of the loaded model; ours takes the config fields
    (SB3's argument names converted as the constructor converts them, then checked with the
    config), ``verbose``, ``tensorboard_log``, ``stats_window_size`` and ``policy_kwargs``.

    Raises:
        ConfigError: An unknown keyword (named, with close matches), an SB3 argument we do not
            implement, or a bad ``verbose``/``tensorboard_log``/``stats_window_size``.
    """
    kwargs = dict(kwargs)
    policy_kwargs = kwargs.pop("policy_kwargs") if "policy_kwargs" in kwargs else None
    attributes = {name: kwargs.pop(name) for name in LOAD_ATTRIBUTES if name in kwargs}
    check_common_arguments(
        attributes.get("verbose", 0), attributes.get("stats_window_size", 1), seed=None
    )
    check_tensorboard_log(attributes.get("tensorboard_log"))
    names = cls.config_class.field_names()
    known = sorted({*names, *LOAD_ATTRIBUTES, "policy_kwargs"})
    for key in kwargs:
        if key not in names and not _is_sb3_argument(key):
            raise ConfigError(
                f"{cls.__name__}.load: unknown keyword {key!r}{did_you_mean(key, known)}; "
                f"load takes the fields of {cls.config_class.__name__}, verbose, "
                "tensorboard_log, stats_window_size and policy_kwargs (and its env arguments)"
            )
    hyperparameters = convert_sb3_arguments(cls.__name__, kwargs, names)
    hyperparameters = merge_custom_objects(cls.config_class, custom_objects, hyperparameters)
    return LoadChanges(hyperparameters, attributes, policy_kwargs)


def _is_sb3_argument(key: str) -> bool:
    """Whether ``key`` is an SB3 constructor argument that ``convert_sb3_arguments`` knows."""
    return key in SB3_ARGUMENTS or key in SB3_ARGUMENT_OWNERS


def check_tensorboard_log(value: Any) -> None:
    """Raise ``ConfigError`` unless ``tensorboard_log`` is a path (str or PathLike) or None."""
    if value is not None and not isinstance(value, (str, os.PathLike)):
        raise ConfigError(f"tensorboard_log must be a folder path or None, got {value!r}")


def read_saved_attributes(saved: Any) -> dict[str, Any]:
    """Return a checkpoint's ``attributes`` (see ``SAVED_ATTRIBUTES``), each one checked.

    A checkpoint written before they were saved has none: the defaults apply.

    Raises:
        CheckpointError: An unknown key or a value the constructor would refuse.
    """
    if saved is None:
        return {}
    if not isinstance(saved, dict) or not set(saved) <= set(SAVED_ATTRIBUTES):
        found = sorted(saved) if isinstance(saved, dict) else type(saved).__name__
        raise CheckpointError(
            f"metadata 'attributes' has keys {found}; allowed: {list(SAVED_ATTRIBUTES)}"
        )
    try:
        check_common_arguments(
            saved.get("verbose", 0), saved.get("stats_window_size", 1), saved.get("seed")
        )
        check_tensorboard_log(saved.get("tensorboard_log"))
    except ConfigError as error:
        raise CheckpointError(f"metadata 'attributes': {error}") from error
    return dict(saved)


def load_agent(
    cls: type[AgentT],
    path: str | os.PathLike,
    target: LoadTarget,
    load_replay_buffer: bool,
    custom_objects: dict[str, Any] | None,
    kwargs: dict[str, Any],
    show_system_info: bool = False,
) -> AgentT:
    """Rebuild an agent of ``cls`` (or, for a family class, of the saved algorithm) from ``path``.

    See ``BaseAgent.load`` for the arguments.
    """
    if Path(path).suffix == ".pkl":
        raise CheckpointError(
            f"{path} is a pickle, which rlrobot never unpickles; for SB3's VecNormalize "
            "statistics call SB3's VecNormalize.load(path, venv) yourself (trusting the file) "
            "and pass that env to the agent (env=...)"
        )
    location = find_checkpoint(path)
    if is_sb3_archive(location):
        return _import_sb3_agent(cls, location, target, custom_objects, kwargs)
    tensors, metadata = load_checkpoint(location, expected_algorithm=cls.algorithm or None)
    try:
        check_metadata(metadata)
    except ValueError as error:
        raise CheckpointError(f"checkpoint {path}: {METADATA_FILE} {error}") from None
    if show_system_info:
        print_system_info(metadata.get("versions"))
    if not cls.algorithm:
        # The algorithm classes are the subclasses that name one; importing rlrobot.agents
        # imported them all.
        classes = {agent.algorithm: agent for agent in _subclasses(cls) if agent.algorithm}
        if metadata["algorithm"] not in classes:
            raise CheckpointError(
                f"checkpoint {path} holds an agent of unknown algorithm "
                f"{metadata['algorithm']!r}; known: {sorted(classes)}"
            )
        cls = classes[metadata["algorithm"]]
    changes = sort_load_changes(cls, custom_objects, kwargs)
    try:
        observation_space = space_from_dict(metadata["observation_space"], "observation_space")
        action_space = space_from_dict(metadata["action_space"], "action_space")
        saved_config = cls.config_class.from_dict(metadata["config"])
        attributes = read_saved_attributes(metadata.get("attributes"))
        encoder_keywords = _rebuild_image_encoder(metadata.get("image_encoder"), path)
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"checkpoint {path}: invalid {METADATA_FILE} ({error})") from error
    config = _apply_changes(cls, saved_config, metadata["config"], changes)
    seed = attributes.pop("seed", None)
    keywords = {**encoder_keywords, **attributes, **changes.attributes}
    spaces = (observation_space, action_space)
    saved_n_envs = metadata.get("n_envs", 1)
    try:
        agent = _build_agent(cls, config, spaces, saved_n_envs, keywords, target)
    except CheckpointError as error:
        raise CheckpointError(f"checkpoint {path}: {error}") from None
    if target.seed is None:
        _restore_seed(agent, seed)
    if agent.env_id is None:
        agent.env_id = metadata.get("env_id")
    try:
        restore_rng, force_reset = target.seed is None, target.force_reset
        # A load that changes the optimizer's kind (A2C's use_rms_prop) starts it afresh: the
        # saved moments belong to the other optimizer.
        fresh_optimizers = getattr(config, "optimizer", None) != getattr(
            saved_config, "optimizer", None
        )
        restore_weights_and_state(
            agent, tensors, metadata, restore_rng, force_reset, fresh_optimizers
        )
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        _close(agent)
        detail = str(error) if isinstance(error, ValueError) else repr(error)
        raise CheckpointError(
            f"checkpoint {path} does not fit a {cls.__name__}: {detail}"
        ) from error
    if load_replay_buffer and target.env is not None:
        _restore_replay_buffer(agent, location)
    return agent


def _apply_changes(
    cls: type[BaseAgent], saved_config: Any, saved_values: dict[str, Any], changes: LoadChanges
) -> Any:
    """Return the saved config with ``load``'s changes, after checking its ``policy_kwargs``.

    Raises:
        ConfigError: ``policy_kwargs`` describe other networks than the saved ones (SB3's
            ValueError), or a changed field has a bad value.
    """
    if changes.policy_kwargs is not None:
        check_policy_kwargs_match(cls.__name__, changes.policy_kwargs, saved_config, cls.on_policy)
    if not changes.hyperparameters:
        return saved_config
    return cls.config_class.from_dict({**saved_values, **changes.hyperparameters})


# The top-level fields of metadata.json: (types allowed, required). The spaces, the config
# and the state are checked in depth by their own checks.
METADATA_FIELDS: dict[str, tuple[tuple[type, ...], bool]] = {
    "algorithm": ((str,), True),
    "env_id": ((str, type(None)), False),
    "n_envs": ((int,), False),
    "config": ((dict,), True),
    "observation_space": ((dict,), True),
    "action_space": ((dict,), True),
    "state": ((dict,), True),
    "image_encoder": ((dict, type(None)), False),
    "attributes": ((dict,), False),
    "versions": ((dict,), False),
    "format_version": ((int,), True),
    "tensors_sha256": ((str,), True),
}


def check_metadata(metadata: dict[str, Any]) -> None:
    """Raise ValueError naming the first top-level field of ``metadata.json`` that is wrong."""
    unknown = sorted(set(metadata) - set(METADATA_FIELDS))
    if unknown:
        raise ValueError(f"has unknown fields {unknown}; allowed: {sorted(METADATA_FIELDS)}")
    for name, (kinds, required) in METADATA_FIELDS.items():
        if name not in metadata:
            if required:
                raise ValueError(f"lacks the field {name!r}")
            continue
        value = metadata[name]
        if not isinstance(value, kinds) or isinstance(value, bool):
            allowed = " or ".join("null" if kind is type(None) else kind.__name__ for kind in kinds)
            raise ValueError(f"field {name!r} must be a {allowed}, got {value!r}")
    if "n_envs" in metadata:
        check_number("field 'n_envs'", metadata["n_envs"], int, Interval(1, MAX_ENVS))


def _build_agent(
    cls: type[AgentT],
    config: Any,
    spaces: tuple[gym.Space, gym.Space],
    saved_n_envs: int,
    keywords: dict[str, Any],
    target: LoadTarget,
    channel_order_may_differ: bool = False,
) -> AgentT:
    """Build an untrained agent for a checkpoint's config and spaces, in ``target.env`` if any.

    ``keywords`` go to the constructor: the image encoder, ``verbose``, ``tensorboard_log`` …
    With ``channel_order_may_differ`` (an SB3 model), an env showing the saved channel-first
    images channel-last is accepted (see ``fit_channel_order``).
    """
    observation_space, action_space = spaces
    env, device, seed = target.env, target.device, target.seed
    if env is None:
        return cls(
            None,
            n_envs=saved_n_envs,
            device=device,
            config=config,
            observation_space=observation_space,
            action_space=action_space,
            **keywords,
        )
    n_envs = target.n_envs
    if n_envs is None:
        n_envs = 1 if isinstance(env, gym.Env) else saved_n_envs
    vector = make_vec_env(
        env, n_envs, target.vec_env, seed, target.env_kwargs, target.worker_timeout_s
    )
    try:
        if channel_order_may_differ:
            observation_space = fit_channel_order(
                observation_space, vector.single_observation_space
            )
        check_spaces_match(observation_space, vector.single_observation_space, "observation")
        check_spaces_match(action_space, vector.single_action_space, "action")
        agent = cls(vector, seed=seed, device=device, config=config, **keywords)
    except BaseException:
        vector.close()  # a refused checkpoint leaves no worker or physics client behind
        raise
    agent.env_id = env if isinstance(env, str) else None
    return agent


def _restore_seed(agent: BaseAgent, seed: int | None) -> None:
    """Give a loaded agent its saved seed, as SB3 does: the next new episodes start from it."""
    agent.seed = seed
    if agent.replay_buffer is not None:
        # Built before the saved seed was known: it samples as one built with that seed (a
        # saved buffer, restored afterwards, brings its own generator's state).
        agent.replay_buffer.rng = np.random.default_rng(seed)


def _close(agent: BaseAgent) -> None:
    """Close the env of an agent being refused, so it leaves no worker behind."""
    if agent.env is not None:
        agent.env.close()


def _restore_replay_buffer(agent: BaseAgent, location: Path) -> None:
    """Fill the agent's replay buffer from the checkpoint's ``replay_buffer.npz``, if any."""
    data = read_checkpoint_file(location, REPLAY_BUFFER_FILE)
    if data is None:
        return
    try:
        with tempfile.TemporaryDirectory() as folder:
            buffer_path = Path(folder) / REPLAY_BUFFER_FILE
            buffer_path.write_bytes(data)
            agent.load_replay_buffer(buffer_path)
    except (EOFError, OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
        _close(agent)
        raise CheckpointError(
            f"checkpoint {location}: {REPLAY_BUFFER_FILE} is corrupt or does not fit "
            f"({type(error).__name__}: {error})"
        ) from error


def _import_sb3_agent(
    cls: type[AgentT],
    location: Path,
    target: LoadTarget,
    custom_objects: dict[str, Any] | None,
    kwargs: dict[str, Any],
) -> AgentT:
    """Build an agent holding the weights of a Stable-Baselines3 ``.zip``, with a new optimizer.

    See ``rlrobot.agents.sb3_import``; the training state (optimizer, RNG) starts afresh.
    """
    imported = read_sb3_archive(location, cls.algorithm or None)
    if not cls.algorithm:
        classes = {agent.algorithm: agent for agent in _subclasses(cls) if agent.algorithm}
        cls = classes[imported.algorithm]
    changes = sort_load_changes(cls, custom_objects, kwargs)
    try:
        names = cls.config_class.field_names()
        values = {key: value for key, value in imported.config.items() if key in names}
        saved_config = cls.config_class.from_dict(values)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{location}: its hyperparameters do not fit ({error})") from error
    config = _apply_changes(cls, saved_config, values, changes)
    saved = {
        name: imported.data[SB3_NAME_OF[name]]
        for name in SAVED_ATTRIBUTES
        if SB3_NAME_OF[name] in imported.data
    }
    try:
        attributes = read_saved_attributes(saved)
    except CheckpointError as error:
        raise CheckpointError(f"{location}: {error}") from None
    seed = attributes.pop("seed", None)
    keywords = {**attributes, **changes.attributes}
    agent = _build_agent(cls, config, imported.spaces, imported.n_envs, keywords, target, True)
    if target.seed is None:
        _restore_seed(agent, seed)
    for name, weights in imported.weights.items():
        try:
            agent.checkpoint_modules()[name].load_state_dict(weights)
        except RuntimeError as error:
            _close(agent)
            raise CheckpointError(
                f"{location}: the Stable-Baselines3 weights do not fit a {cls.__name__} ({error})"
            ) from error
    return agent


def restore_weights_and_state(
    agent: BaseAgent,
    tensors: dict[str, torch.Tensor],
    metadata: dict[str, Any],
    restore_rng: bool,
    force_reset: bool = False,
    fresh_optimizers: bool = False,
) -> None:
    """Load the checkpoint's weights into the agent's modules and restore its training state.

    ``force_reset`` leaves the saved episodes in progress, if any, behind (``load``'s);
    ``fresh_optimizers`` the optimizers' saved states.
    Everything is checked first (``check_weights``, ``check_training_state``): nothing of a
    checkpoint that does not fit reaches a module, an optimizer or a global RNG.

    Raises:
        ValueError: A tensor or a field of the training state (named) does not fit the agent.
    """
    check_weights(agent, tensors, metadata["state"])
    state = unpack_state(metadata["state"], tensors)
    if fresh_optimizers and isinstance(state, dict):
        state.pop("optimizers", None)
    check_training_state(agent, state)
    if force_reset:
        state.pop("episodes", None)
    for name, module in agent.checkpoint_modules().items():
        prefix = f"{name}/"
        module.load_state_dict(
            {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        )
    agent.set_training_state(state, restore_rng)


def check_weights(agent: BaseAgent, tensors: dict[str, torch.Tensor], state_tree: Any) -> None:
    """Raise ValueError unless the file's tensors are exactly the modules' and the state's.

    Each module tensor must have the dtype and shape of the module's own (no cast: a file
    written for this model holds its dtypes, so another dtype is a file made elsewhere) and
    finite values where floating.
    """
    expected = state_tensor_names(state_tree)
    for name, module in agent.checkpoint_modules().items():
        for key, own in module.state_dict().items():
            field = f"{name}/{key}"
            if field not in tensors:
                raise ValueError(f"tensor {field!r} of the model is missing from the file")
            check_array_like(field, tensors[field], own)
            expected.add(field)
    unknown = sorted(set(tensors) - expected)
    missing = sorted(expected - set(tensors))
    if unknown or missing:
        raise ValueError(f"the file's tensors do not fit: unknown {unknown}, missing {missing}")


def check_training_state(agent: BaseAgent, state: Any) -> None:
    """Raise ValueError naming the first field of a saved training state that does not fit.

    The agent's own ``get_training_state`` is the template: the same keys, kinds, dtypes and
    shapes (``check_like_template``); the optimizers' states are checked against their
    parameters (``check_optimizer_state``), the RNG states by trial (``check_rng_state``), the
    normalisers' statistics by range, and the episodes in progress (restored by
    ``restore_episodes``, which checks them against the envs) for their integers' range.
    """
    template = agent.get_training_state()
    if not isinstance(state, dict):
        raise ValueError(f"field 'state' must be a dict, got {type(state).__name__}")
    required, optional = {"num_timesteps", "normalizers"}, set(template) | {"episodes"}
    if not required <= set(state) <= optional:
        raise ValueError(
            f"field 'state' must hold {sorted(required)} and may hold "
            f"{sorted(optional - required)}, got {sorted(state)}"
        )
    check_number("field 'state.num_timesteps'", state["num_timesteps"], int, COUNT)
    plain = set(state) - {"num_timesteps", "optimizers", "rng", "episodes", "reward_redistributor"}
    for key in plain:
        check_like_template(f"state.{key}", state[key], template[key])
    if "time_elapsed" in state:
        check_number("field 'state.time_elapsed'", state["time_elapsed"], float, Interval(0))
    for name, normalizer in state["normalizers"].items():
        check_statistics(f"state.normalizers.{name}", normalizer)
    if "optimizers" in state:
        check_like_template(
            "state.optimizers",
            dict.fromkeys(state["optimizers"]),
            dict.fromkeys(template["optimizers"]),
        )
        for name, optimizer in agent.optimizers().items():
            check_optimizer_state(f"state.optimizers.{name}", optimizer, state["optimizers"][name])
    if "reward_redistributor" in state:
        saved, redistributor = state["reward_redistributor"], agent.reward_redistributor
        if redistributor is None or saved is None:
            check_like_template(
                "state.reward_redistributor", saved, template["reward_redistributor"]
            )
        else:
            check_like_template(
                "state.reward_redistributor", dict.fromkeys(saved), {"optimizer": None}
            )
            field = "state.reward_redistributor.optimizer"
            check_optimizer_state(field, redistributor.optimizer, saved["optimizer"])
    if "rng" in state:
        check_rng_state(state["rng"])
    if state.get("episodes") is not None:
        check_json_leaves("state.episodes", state["episodes"])


def capture_episodes(agent: BaseAgent) -> dict[str, Any] | None:
    """Return the agent's episodes in progress (see ``BaseAgent.get_episode_state``)."""
    if agent.env is None or agent._last_observations is None:
        return None
    envs = get_vector_env_state(agent.env)
    if envs is None:
        return None
    normalizer = agent.reward_normalizer
    return {
        "envs": envs,
        "last_observations": agent._last_observations,
        "episode_returns": agent.episode_tracker.returns,
        "episode_lengths": agent.episode_tracker.lengths,
        "reward_normalizer_returns": None if normalizer is None else normalizer.returns,
        "action_space_rngs": [
            get_space_rng_state(space)
            for space in (agent.env.action_space, agent.env.single_action_space)
        ],
    }


def restore_episodes(agent: BaseAgent, state: Any, keys: tuple[str, ...]) -> None:
    """Restore what ``capture_episodes`` returned, checking it holds exactly ``keys``."""
    check_dict("episodes", state, keys)
    set_vector_env_state(agent.env, state["envs"])
    agent._last_observations = _check_observation_batch(agent, state["last_observations"])
    tracker = agent.episode_tracker
    tracker.returns = check_like("episode_returns", state["episode_returns"], tracker.returns)
    tracker.lengths = check_like("episode_lengths", state["episode_lengths"], tracker.lengths)
    normalizer, returns = agent.reward_normalizer, state["reward_normalizer_returns"]
    if (normalizer is None) != (returns is None):
        raise CheckpointError("saved episodes do not fit this agent's reward normalisation")
    if normalizer is not None:
        normalizer.returns = check_like("reward_normalizer_returns", returns, normalizer.returns)
    spaces = (agent.env.action_space, agent.env.single_action_space)
    rngs = state["action_space_rngs"]
    if not isinstance(rngs, list) or len(rngs) != len(spaces):
        raise CheckpointError("saved episodes hold no RNG state of the action spaces")
    for space, rng in zip(spaces, rngs, strict=True):
        if rng is not None:
            restore_generator_state("action_space_rngs", space.np_random, rng)


def _check_observation_batch(agent: BaseAgent, observations: Any) -> Any:
    """Return saved observations ``(n_envs, *obs_shape)`` checked against the space."""
    space = agent.observation_space
    spaces = space.spaces if isinstance(space, gym.spaces.Dict) else {"": space}
    expected = {
        key: np.zeros((agent.n_envs, *item.shape), dtype=item.dtype) for key, item in spaces.items()
    }
    if not isinstance(space, gym.spaces.Dict):
        return check_like("last_observations", observations, expected[""])
    check_dict("last_observations", observations, expected)
    return {
        key: check_like(f"last_observations/{key}", observations[key], value)
        for key, value in expected.items()
    }


def _rebuild_image_encoder(entry: dict[str, Any] | None, path: Any) -> dict[str, Any]:
    """Return ``image_encoder``/``freeze_encoder`` keywords rebuilt from checkpoint metadata."""
    if entry is None:
        return {}
    if entry.get("spec") is None:
        raise CheckpointError(
            f"checkpoint {path} was saved with a custom image encoder "
            f"({entry.get('class')}) that has no `encoder_spec`, so it cannot be rebuilt; give "
            "the encoder an encoder_spec from a builder registered with register_image_encoder"
        )
    return {
        "image_encoder": build_image_encoder(entry["spec"]),
        "freeze_encoder": bool(entry["freeze"]),
    }


def _subclasses(cls: type) -> list[type]:
    """Return every subclass of ``cls``, at any depth."""
    return [sub for direct in cls.__subclasses__() for sub in (direct, *_subclasses(direct))]


def merge_custom_objects(
    config_class: type, custom_objects: dict[str, Any] | None, hyperparameters: dict[str, Any]
) -> dict[str, Any]:
    """Return ``hyperparameters`` with SB3's ``custom_objects`` merged in, in our field names.

    Raises:
        ConfigError: A key that is no config field, or one given both ways.
    """
    if custom_objects is None:
        return hyperparameters
    if not isinstance(custom_objects, dict):
        raise ConfigError(
            f"custom_objects must be a dict of config fields, got {type(custom_objects).__name__}"
        )
    names = config_class.field_names()
    merged = dict(hyperparameters)
    for key, value in custom_objects.items():
        # SB3's ``lr_schedule`` is the learning rate as a schedule (our ``lr_schedule`` names
        # its shape). SB3 rebuilds it from ``learning_rate`` on load, so that one wins; given
        # alone, it sets the learning rate (where SB3 would drop it).
        field = SB3_CUSTOM_OBJECT_NAMES.get(key, key)
        if field not in names:
            raise ConfigError(
                f"custom_objects key {key!r} is no {config_class.__name__} field"
                f"{did_you_mean(key, names)}; allowed: its fields (see {config_class.__name__}) "
                "and 'lr_schedule' (the learning rate)"
            )
        if field in hyperparameters:
            raise ConfigError(
                f"custom_objects[{key!r}] sets {field!r}, which is also given as a keyword; "
                "give it once"
            )
        if field != key and field in custom_objects:
            continue
        merged[field] = value
    return merged
