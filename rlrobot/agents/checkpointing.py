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
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import gymnasium as gym
import numpy as np
import torch

import rlrobot
from rlrobot.agents.sb3_import import read_sb3_archive
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
from rlrobot.vec.state import get_vector_env_state, set_vector_env_state

if TYPE_CHECKING:
    from rlrobot.agents.base import BaseAgent

AgentT = TypeVar("AgentT", bound="BaseAgent")
# ``custom_objects`` keys of SB3 whose config field has another name.
SB3_CUSTOM_OBJECT_NAMES = {"lr_schedule": "learning_rate"}


def save_agent(
    agent: BaseAgent,
    path: str | os.PathLike,
    include_training_state: bool,
    include_replay_buffer: bool,
    include_episodes: bool,
) -> Path:
    """Write ``agent``'s checkpoint to ``path`` (see ``BaseAgent.save``); return where."""
    tensors: dict[str, torch.Tensor] = {}
    for name, module in agent.checkpoint_modules().items():
        tensors.update({f"{name}/{k}": v for k, v in module.state_dict().items()})
    state = agent.get_training_state()
    if not include_training_state:
        state = {"num_timesteps": state["num_timesteps"], "normalizers": state["normalizers"]}
    elif include_episodes:
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
        "versions": {"rlrobot": rlrobot.__version__, "torch": torch.__version__},
    }
    extra_files = {}
    if include_replay_buffer and agent.replay_buffer is not None:
        with tempfile.TemporaryDirectory() as folder:
            written = agent.save_replay_buffer(Path(folder) / REPLAY_BUFFER_FILE)
            extra_files[REPLAY_BUFFER_FILE] = written.read_bytes()
    return save_checkpoint(resolve_save_path(path), tensors, metadata, extra_files)


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
    """Where a loaded agent runs: the env and device arguments of ``BaseAgent.load``."""

    env: EnvSpec | gym.vector.VectorEnv | None
    device: str | torch.device
    n_envs: int | None
    vec_env: str
    env_kwargs: dict[str, Any] | None
    worker_timeout_s: float | None
    seed: int | None


def load_agent(
    cls: type[AgentT],
    path: str | os.PathLike,
    target: LoadTarget,
    load_replay_buffer: bool,
    hyperparameters: dict[str, Any],
) -> AgentT:
    """Rebuild an agent of ``cls`` (or, for a family class, of the saved algorithm) from ``path``.

    See ``BaseAgent.load`` for the arguments.
    """
    location = find_checkpoint(path)
    if is_sb3_archive(location):
        return _import_sb3_agent(cls, location, target, hyperparameters)
    tensors, metadata = load_checkpoint(location, expected_algorithm=cls.algorithm or None)
    try:
        check_metadata(metadata)
    except ValueError as error:
        raise CheckpointError(f"checkpoint {path}: {METADATA_FILE} {error}") from None
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
    try:
        observation_space = space_from_dict(metadata["observation_space"], "observation_space")
        action_space = space_from_dict(metadata["action_space"], "action_space")
        config = cls.config_class.from_dict({**metadata["config"], **hyperparameters})
        encoder_keywords = _rebuild_image_encoder(metadata.get("image_encoder"), path)
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"checkpoint {path}: invalid {METADATA_FILE} ({error})") from error
    spaces = (observation_space, action_space)
    saved_n_envs = metadata.get("n_envs", 1)
    try:
        agent = _build_agent(cls, config, spaces, saved_n_envs, encoder_keywords, target)
    except CheckpointError as error:
        raise CheckpointError(f"checkpoint {path}: {error}") from None
    if agent.env_id is None:
        agent.env_id = metadata.get("env_id")
    try:
        restore_weights_and_state(agent, tensors, metadata, restore_rng=target.seed is None)
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        _close(agent)
        detail = str(error) if isinstance(error, ValueError) else repr(error)
        raise CheckpointError(
            f"checkpoint {path} does not fit a {cls.__name__}: {detail}"
        ) from error
    if load_replay_buffer and target.env is not None:
        _restore_replay_buffer(agent, location)
    return agent


# The top-level fields of metadata.json besides the spaces, the config and the state, which
# their own checks read: (types allowed, required).
METADATA_FIELDS: dict[str, tuple[tuple[type, ...], bool]] = {
    "algorithm": ((str,), True),
    "env_id": ((str, type(None)), False),
    "n_envs": ((int,), False),
    "config": ((dict,), True),
    "observation_space": ((dict,), True),
    "action_space": ((dict,), True),
    "state": ((dict,), True),
    "image_encoder": ((dict, type(None)), False),
    "versions": ((dict,), False),
    "format_version": ((int,), True),
    "tensors_sha256": ((str,), True),
}
# Envs of one vector env a checkpoint may say it ran (each is a process or a physics client).
MAX_ENVS = 4096


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
    encoder_keywords: dict[str, Any],
    target: LoadTarget,
) -> AgentT:
    """Build an untrained agent for a checkpoint's config and spaces, in ``target.env`` if any."""
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
            **encoder_keywords,
        )
    n_envs = target.n_envs
    if n_envs is None:
        n_envs = 1 if isinstance(env, gym.Env) else saved_n_envs
    vector = make_vec_env(
        env, n_envs, target.vec_env, seed, target.env_kwargs, target.worker_timeout_s
    )
    try:
        check_spaces_match(observation_space, vector.single_observation_space, "observation")
        check_spaces_match(action_space, vector.single_action_space, "action")
        agent = cls(vector, seed=seed, device=device, config=config, **encoder_keywords)
    except BaseException:
        vector.close()  # a refused checkpoint leaves no worker or physics client behind
        raise
    agent.env_id = env if isinstance(env, str) else None
    return agent


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
    hyperparameters: dict[str, Any],
) -> AgentT:
    """Build an agent holding the weights of a Stable-Baselines3 ``.zip``, with a new optimizer.

    See ``rlrobot.agents.sb3_import``; the training state (optimizer, RNG) starts afresh.
    """
    imported = read_sb3_archive(location, cls.algorithm or None)
    if not cls.algorithm:
        classes = {agent.algorithm: agent for agent in _subclasses(cls) if agent.algorithm}
        cls = classes[imported.algorithm]
    try:
        names = cls.config_class.field_names()
        values = {key: value for key, value in imported.config.items() if key in names}
        config = cls.config_class.from_dict({**values, **hyperparameters})
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{location}: its hyperparameters do not fit ({error})") from error
    agent = _build_agent(cls, config, imported.spaces, imported.n_envs, {}, target)
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
    agent: BaseAgent, tensors: dict[str, torch.Tensor], metadata: dict[str, Any], restore_rng: bool
) -> None:
    """Load the checkpoint's weights into the agent's modules and restore its training state.

    Everything is checked first (``check_weights``, ``check_training_state``): nothing of a
    checkpoint that does not fit reaches a module, an optimizer or a global RNG.

    Raises:
        ValueError: A tensor or a field of the training state (named) does not fit the agent.
    """
    check_weights(agent, tensors, metadata["state"])
    state = unpack_state(metadata["state"], tensors)
    check_training_state(agent, state)
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
