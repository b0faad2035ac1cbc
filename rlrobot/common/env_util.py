"""Making one env by id, with named errors, and reading what Gymnasium's vector envs return.

The vector envs use ``AutoresetMode.SAME_STEP``: a sub-env that terminates or truncates is
reset inside the same ``step`` call; the returned observation is the first of the next episode
and the real final observation is in ``info["final_obs"][i]`` (mask ``info["_final_obs"]``).
We chose it deliberately over the default ``NEXT_STEP``, where the step after an episode end is
a dummy reset step whose action is ignored: with ``SAME_STEP`` every stored transition is a
real one (no masking of dummy steps in the rollout), and truncated episodes can bootstrap from
their real final observation.

``make_env`` raises ``EnvMakeError`` for an unknown env id or ``gym.make`` keyword (suggesting
close matches) and for option values the env rejects. The vector envs themselves are built in
``rlrobot.vec``.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections import deque
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from rlrobot.envs.checks import MAX_REPR_CHARS, short_repr, shorten
from rlrobot.errors import EnvMakeError

EnvSpec = str | gym.Env | Callable[[], gym.Env]
# Keywords ``gym.make`` takes itself rather than passing them to the env.
_MAKE_KEYWORDS = frozenset(inspect.signature(gym.make).parameters) - {"id", "kwargs"}


def _env_keywords(entry_point: Any) -> set[str] | None:
    """Keywords an env's constructor accepts (through ``**kwargs`` chains); None: any."""
    if isinstance(entry_point, str):
        entry_point = gym.envs.registration.load_env_creator(entry_point)
    if isinstance(entry_point, type):
        functions = [cls.__init__ for cls in entry_point.__mro__ if "__init__" in vars(cls)]
    else:
        functions = [entry_point]
    names: set[str] = set()
    for function in functions:
        try:
            parameters = inspect.signature(function).parameters.values()
        except (TypeError, ValueError):  # builtins without a signature accept what they accept
            return None
        names |= {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind == p.VAR_KEYWORD for p in parameters):
            return names - {"self"}
    return None


def _close_env_ids(env_id: str, n: int = 3, cutoff: float = 0.6) -> list[str]:
    """Registered ids whose names (without namespace) are most like that of ``env_id``."""
    name = env_id.split("/")[-1]

    def similarity(candidate: str) -> float:
        return difflib.SequenceMatcher(None, name, candidate.split("/")[-1]).ratio()

    scored = sorted(((similarity(c), c) for c in gym.registry), reverse=True)[:n]
    return [candidate for score, candidate in scored if score >= cutoff]


def check_env_id(
    env_id: str, env_kwargs: dict[str, Any] | None = None
) -> gym.envs.registration.EnvSpec:
    """Return the registered spec of ``env_id`` after checking the ``gym.make`` keywords.

    Raises:
        EnvMakeError: The id is unknown (close ids are suggested) or the env takes no such
            keyword (close keywords are suggested).
    """
    if env_id.startswith("rlrobot/"):
        import rlrobot  # noqa: F401 - registers the rlrobot envs (also in worker processes)
    try:
        spec = gym.spec(env_id)
    except gym.error.Error as error:
        close = _close_env_ids(env_id)
        if close:
            message = f"unknown env id {env_id!r}; did you mean {' or '.join(map(repr, close))}?"
        else:
            message = f"unknown env id {env_id!r}: {error}"
        raise EnvMakeError(message) from None
    _check_render_mode(env_id, env_kwargs or {})
    accepted = _env_keywords(spec.entry_point)
    if accepted is not None:
        for key in env_kwargs or {}:
            if key not in accepted and key not in _MAKE_KEYWORDS:
                close = difflib.get_close_matches(key, sorted(accepted | _MAKE_KEYWORDS), n=3)
                hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
                raise EnvMakeError(f"{env_id} takes no keyword {key!r}{hint}")
    return spec


def _check_render_mode(env_id: str, env_kwargs: dict[str, Any]) -> None:
    """Refuse a ``render_mode`` that is neither None nor a text.

    ``gym.make`` calls text methods on it before any env code runs (``render_mode=0`` is an
    ``AttributeError`` from Gymnasium), so the env's own check of the choice comes too late.
    """
    mode = env_kwargs.get("render_mode")
    if mode is not None and not isinstance(mode, str):
        raise EnvMakeError(
            f"{env_id}: render_mode must be None or a mode name such as 'rgb_array', got {mode!r}"
        )


def make_env(env_id: str, env_kwargs: dict[str, Any] | None = None) -> gym.Env:
    """``gym.make(env_id, **env_kwargs)`` whose mistakes raise ``EnvMakeError`` naming them.

    Unknown ids and keywords are caught before the env is built (with close matches); an
    option value the env rejects (``TypeError``/``ValueError`` from its constructor) is
    re-raised as ``EnvMakeError`` with the original error chained.
    """
    check_env_id(env_id, env_kwargs)
    try:
        return gym.make(env_id, **(env_kwargs or {}))
    except (TypeError, ValueError) as error:
        reason = shorten(str(error), 2 * MAX_REPR_CHARS)
        raise EnvMakeError(
            f"cannot make {env_id} with {short_repr(env_kwargs or {})}: {reason}"
        ) from error


# Packages whose wrapper classes a config may name. Importing a module runs its code, so a
# config never imports any other (the RL Zoo imports whatever its file names).
WRAPPER_PACKAGES = ("gymnasium", "stable_baselines3", "sb3_contrib", "rlrobot")


def resolve_wrapper_class(path: str) -> type[gym.Wrapper]:
    """Return the ``gym.Wrapper`` subclass named ``"package.module.Class"`` (the RL Zoo's form).

    Raises:
        EnvMakeError: A package outside ``WRAPPER_PACKAGES``, a module that cannot be
            imported, no such class, or a class that is not a ``gym.Wrapper``.
    """
    module_name, _, class_name = path.rpartition(".")
    if module_name.split(".")[0] not in WRAPPER_PACKAGES:
        raise EnvMakeError(
            f"env_wrapper {short_repr(path)}: only wrappers of {', '.join(WRAPPER_PACKAGES)} "
            "can be named (package.module.Class)"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise EnvMakeError(f"env_wrapper {short_repr(path)}: cannot import: {error}") from None
    wrapper = getattr(module, class_name, None)
    if not (isinstance(wrapper, type) and issubclass(wrapper, gym.Wrapper)):
        raise EnvMakeError(f"env_wrapper {short_repr(path)}: not a gymnasium.Wrapper class")
    return wrapper


def wrap_env(
    env: gym.Env, wrappers: list[dict[str, dict[str, Any]]], frame_stack: int = 1
) -> gym.Env:
    """Wrap ``env`` in ``wrappers`` (``{path: kwargs}`` items, innermost first), then stack the
    last ``frame_stack`` observations (``FrameStackObservation``: a new first axis) if above 1.

    Raises:
        EnvMakeError: A wrapper that cannot be resolved (``resolve_wrapper_class``) or that
            refuses its keywords.
    """
    for item in wrappers:
        ((path, kwargs),) = item.items()
        wrapper = resolve_wrapper_class(path)
        try:
            env = wrapper(env, **kwargs)
        except (TypeError, ValueError) as error:
            env.close()
            reason = shorten(str(error), 2 * MAX_REPR_CHARS)
            raise EnvMakeError(
                f"env_wrapper {short_repr(path)} with {short_repr(kwargs)}: {reason}"
            ) from error
    if frame_stack > 1:
        env = gym.wrappers.FrameStackObservation(env, frame_stack)
    return env


def make_wrapped_env(
    env_id: str,
    env_kwargs: dict[str, Any],
    wrappers: list[dict[str, dict[str, Any]]],
    frame_stack: int = 1,
) -> gym.Env:
    """``wrap_env(make_env(env_id, env_kwargs), wrappers, frame_stack)``: with
    ``functools.partial``, a factory that worker processes can receive (it pickles)."""
    return wrap_env(make_env(env_id, env_kwargs), wrappers, frame_stack)


def get_final_observations(
    observations: np.ndarray | dict[str, np.ndarray], infos: dict[str, Any]
) -> tuple[np.ndarray | dict[str, np.ndarray], np.ndarray]:
    """Return the real next observations of a ``SAME_STEP`` vector step.

    Args:
        observations: Batched observations returned by ``step`` (reset ones where episodes ended).
        infos: The step's info dict.

    Returns:
        ``(next_observations, ended)``: a copy of ``observations`` with the final observation
        put back where an episode ended, and the boolean mask ``(n_envs,)`` of those envs.
    """
    mask = infos.get("_final_obs")
    if mask is None or not mask.any():
        n_envs = len(
            next(iter(observations.values())) if isinstance(observations, dict) else observations
        )
        return observations, np.zeros(n_envs, dtype=bool)
    final = infos["final_obs"]
    indices = np.flatnonzero(mask)
    if isinstance(observations, dict):
        next_observations = {key: value.copy() for key, value in observations.items()}
        for i in indices:
            for key in next_observations:
                next_observations[key][i] = final[i][key]
    else:
        next_observations = observations.copy()
        for i in indices:
            next_observations[i] = final[i]
    return next_observations, mask


def get_recorded_episodes(infos: dict[str, Any]) -> tuple[Any, Any, np.ndarray] | None:
    """Return the episode statistics an env's recorder put in this step's ``infos``, if any.

    SB3's ``Monitor``/``VecMonitor`` and Gymnasium's ``RecordEpisodeStatistics`` report each
    finished episode as ``info["episode"] = {"r": return, "l": length, …}``: per env in
    ``infos["final_info"]["episode"]`` (the info of the step that ended it, under
    ``SAME_STEP``), or at the top level (Gymnasium's vector ``RecordEpisodeStatistics``).

    Returns:
        ``(returns, lengths, mask)``, each ``(n_envs,)``; ``mask[i]``: env ``i`` reported one.
        None when no env did.
    """
    for source in (infos.get("final_info", {}), infos):
        episode = source.get("episode")
        if not isinstance(episode, dict) or "r" not in episode or "l" not in episode:
            continue
        returns, lengths = np.asarray(episode["r"]), np.asarray(episode["l"])
        mask = np.broadcast_to(np.asarray(source.get("_episode", True), dtype=bool), returns.shape)
        for key in ("_r", "_l"):
            if key in episode:
                mask = mask & np.asarray(episode[key], dtype=bool)
        return returns, lengths, mask
    return None


class EpisodeTracker:
    """Track returns, lengths and success of finished episodes (raw, unnormalised rewards).

    Where the env records its episodes (SB3's ``Monitor``/``VecMonitor``, Gymnasium's
    ``RecordEpisodeStatistics``), their return and length are taken from it, as SB3's
    ``ep_info_buffer`` is: so a ``VecNormalize(norm_reward=True)`` outside the recorder still
    gives the episodes' real returns. Otherwise the rewards the agent sees are summed.

    Args:
        n_envs: Number of parallel envs.
        window: How many recent episodes the means are computed over.
    """

    def __init__(self, n_envs: int, window: int = 100) -> None:
        self.returns = np.zeros(n_envs, dtype=np.float64)
        self.lengths = np.zeros(n_envs, dtype=np.int64)
        self.recent_returns: deque[float] = deque(maxlen=window)
        self.recent_lengths: deque[int] = deque(maxlen=window)
        self.recent_successes: deque[float] = deque(maxlen=window)
        self.n_episodes = 0

    def update(self, rewards: np.ndarray, episode_ends: np.ndarray, infos: dict[str, Any]) -> None:
        """Add one vector step ``(n_envs,)`` and close the episodes that ended."""
        self.returns += rewards
        self.lengths += 1
        if not episode_ends.any():
            return
        final_info = infos.get("final_info", {})
        success, success_mask = final_info.get("is_success"), final_info.get("_is_success")
        recorded = get_recorded_episodes(infos)
        for i in np.flatnonzero(episode_ends):
            if recorded is not None and recorded[2][i]:
                self.recent_returns.append(float(recorded[0][i]))
                self.recent_lengths.append(int(recorded[1][i]))
            else:
                self.recent_returns.append(float(self.returns[i]))
                self.recent_lengths.append(int(self.lengths[i]))
            if success is not None and success_mask[i]:
                self.recent_successes.append(float(success[i]))
        self.n_episodes += int(episode_ends.sum())
        self.returns[episode_ends] = 0.0
        self.lengths[episode_ends] = 0

    def summary(self) -> dict[str, float]:
        """Return SB3-named means over the window (empty before the first episode ends)."""
        if not self.recent_returns:
            return {}
        result = {
            "rollout/ep_rew_mean": float(np.mean(self.recent_returns)),
            "rollout/ep_len_mean": float(np.mean(self.recent_lengths)),
        }
        if self.recent_successes:
            result["rollout/success_rate"] = float(np.mean(self.recent_successes))
        return result
