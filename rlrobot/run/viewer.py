"""``rlrobot view``: one self-contained HTML page of a run's episodes, video next to plots.

The episodes are played by ``rlrobot.run.recording.record_episodes`` (the annotated frames of
``rlrobot record``, played through the shared evaluation loop), which also keeps each step's
observation, action, reward and scalar ``info`` values. From those this module computes what
the agent thought at each step: V(s) (on-policy agents) or Q(s, a) (SAC, TD3, the minimum over
the critics, as their targets use it), the policy's entropy (categorical) or mean action
standard deviation (Gaussian), and, when the run redistributes delayed rewards, the rewards it
learns from (``uniform``: each chunk's return split evenly; ``rrd``: the reward model's r̂).

The page is hand-written HTML with plain JavaScript drawing on canvases: frames are inlined as
base64 JPEGs, the data as one JSON object, so it opens from disk with no network and no server.
Measurements of its size and load time, and why no plotting library, are in
``docs/viewer.md``. Opened as ``view.html#selftest`` it draws, seeks and writes what it found
into ``<pre id="selftest">`` (the browser test reads it).
"""

from __future__ import annotations

import base64
import inspect
import io
import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from rlrobot.common.files import atomic_write_bytes
from rlrobot.common.redistribution import uniform_redistribution
from rlrobot.run.config import ResolvedConfig
from rlrobot.run.recording import RecordedEpisode, record_episodes

# Every frame of every episode is inlined: 20 CartPole episodes of 500 steps at 240 px are
# about 40 MB of JPEG, what a browser still opens in a few seconds (docs/viewer.md).
MAX_VIEW_EPISODES = 20
DEFAULT_VIEW_SIZE = 240
# Observations plotted when --obs names none.
DEFAULT_OBSERVATIONS = 4
# JPEG quality of the inlined frames: text of the annotation band still reads.
_JPEG_QUALITY = 80
# A row of an env docstring's observation table: "| 3 | pole angular velocity | rad/s |" or a
# range "| 11–18 | joint angles | rad |" (Gymnasium's own tables: "| 0 | Cart Position | …").
# Entries of Dict observations plotted as numbers (see ``state_key``).
_STATE_KEYS = ("state", "observation")
_TABLE_ROW = re.compile(r"^\s*\|\s*(\d+)(?:\s*[–-]\s*(\d+))?\s*\|\s*([^|]+?)\s*\|")


@dataclass
class ViewedEpisode:
    """One episode as the page shows it.

    Attributes:
        recorded: Its frames, return, length, success and per-step values.
        series: Plot name → ``(group, values)``; ``values[t]`` belongs to frame ``t`` (the
            state after ``t`` steps), None where a series has no value there.
    """

    recorded: RecordedEpisode
    series: dict[str, tuple[str, list[float | None]]]


def observation_names(env_id: str, size: int) -> list[str]:
    """Name each of the ``size`` entries of ``env_id``'s flat observation from the observation
    table of its class docstring (the Gymnasium-style spec); ``obs[i]`` where it has none."""
    spec = gym.spec(env_id)
    creator = gym.envs.registration.load_env_creator(spec.entry_point)
    names = [f"obs[{index}]" for index in range(size)]
    for line in (inspect.getdoc(creator) or "").splitlines():
        match = _TABLE_ROW.match(line)
        if match is None:
            continue
        first = int(match.group(1))
        last = int(match.group(2) or first)
        for index in range(first, min(last, size - 1) + 1):
            part = f" [{index - first}]" if last > first else ""
            names[index] = f"{match.group(3)}{part}"
    return names


def select_observations(names: list[str], chosen: list[str]) -> list[int]:
    """Return the indices of ``chosen`` observations, each an index or a name (any case);
    none chosen: the first ``DEFAULT_OBSERVATIONS``.

    Raises:
        ValueError: An index out of range, or a name the env's observation table lacks.
    """
    if not chosen:
        return list(range(min(DEFAULT_OBSERVATIONS, len(names))))
    folded = {name.casefold(): index for index, name in enumerate(names)}
    indices = []
    for item in chosen:
        if item.strip().isdigit():
            index = int(item)
            if index >= len(names):
                raise ValueError(
                    f"--obs {item}: the observation has {len(names)} entries (0 to "
                    f"{len(names) - 1})"
                )
        elif item.strip().casefold() in folded:
            index = folded[item.strip().casefold()]
        else:
            raise ValueError(f"--obs {item!r} is not an observation name: {', '.join(names)}")
        indices.append(index)
    return indices


def state_key(entries: Any) -> str | None:
    """The entry of a ``Dict`` observation (its space's ``spaces`` or one observation) that
    holds the plotted numbers: ``"state"`` (``obs_mode="state+pixels"``) or ``"observation"``
    (goal envs); None without one."""
    return next((key for key in _STATE_KEYS if key in entries), None)


def flat_observations(observations: list[Any]) -> np.ndarray | None:
    """``(n, dim)`` float array of a list of observations: a Box's flattened, a Dict's
    ``state_key`` entry; None for image-only observations."""
    first = observations[0]
    if isinstance(first, dict):
        key = state_key(first)
        if key is None:
            return None
        observations = [observation[key] for observation in observations]
    array = np.asarray(observations)
    if array.dtype == np.uint8:  # pixels: nothing to plot as a line
        return None
    return array.reshape(len(observations), -1).astype(np.float64)


def agent_diagnostics(agent: Any, episode: RecordedEpisode) -> dict[str, tuple[str, np.ndarray]]:
    """Return what ``agent`` computed along ``episode``: name → ``(group, values)``.

    Values of observation ``t`` (V(s), Q(s, a), entropy, action std) are ``(length + 1,)``
    or ``(length,)``; agents without networks we know (SB3 models) give none. V and Q are in
    the scale the critic learned: that of the normalised rewards under ``normalize_rewards``.
    SAC's action std is its Gaussian's, before the ``tanh`` squashing.
    """
    import torch

    from rlrobot.agents.off_policy import OffPolicyAgent
    from rlrobot.agents.on_policy import OnPolicyAgent
    from rlrobot.common.distributions import Categorical, DiagGaussian

    observations = agent.obs_to_tensor(flat_or_dict(episode.observations))
    found: dict[str, tuple[str, np.ndarray]] = {}
    with torch.inference_mode():
        if isinstance(agent, OnPolicyAgent):
            distribution, values = agent.policy(observations)
            found["V(s)"] = ("value", values.cpu().numpy())
            if isinstance(distribution, Categorical):
                found["entropy"] = ("policy", distribution.entropy()[:-1].cpu().numpy())
            else:
                std = distribution.std.mean(dim=-1)[:-1]
                found["action std (mean)"] = ("policy", std.cpu().numpy())
        elif isinstance(agent, OffPolicyAgent):
            actions = np.asarray(episode.actions).reshape(episode.length, -1)
            # The critics read the policy's actions in [-1, 1], not the env's bounds.
            scaled = agent.actions_from_env(actions)
            head = _take(observations, slice(None, -1))
            q_values = agent.critic(head, torch.as_tensor(scaled, dtype=torch.float32))
            found["Q(s,a)"] = ("value", q_values.min(dim=0).values.cpu().numpy())
            distribution = agent.actor(head)
            if isinstance(distribution, DiagGaussian):  # SAC's; TD3's actor is deterministic
                found["action std (mean)"] = ("policy", distribution.std.mean(-1).cpu().numpy())
    return found


def redistributed_rewards(agent: Any, episode: RecordedEpisode) -> np.ndarray | None:
    """Return the rewards ``agent`` learns from along the finished ``episode`` when its config
    has ``reward_redistribution`` (``(length,)``), else None."""
    method = getattr(getattr(agent, "config", None), "reward_redistribution", None)
    rewards = np.asarray(episode.rewards, dtype=np.float64)
    if method == "uniform":
        ends = np.zeros(len(rewards), dtype=bool)
        ends[-1] = True
        return uniform_redistribution(rewards[:, None], ends[:, None]).rewards[:, 0]
    if method != "rrd":
        return None
    import torch

    from rlrobot.agents.off_policy import OffPolicyAgent
    from rlrobot.common.networks import to_tensors

    actions = np.asarray(episode.actions)
    if isinstance(agent, OffPolicyAgent):  # its replay buffer stores the policy's actions
        actions = agent.actions_from_env(actions.reshape(len(rewards), -1))
    observations = flat_or_dict(episode.observations)
    device = agent.device
    # The reward model reads observations as the env gives them, before any normalisation.
    predicted = agent.reward_redistributor.predict(
        to_tensors(_take(observations, slice(None, -1)), device),
        torch.as_tensor(actions, device=device),
        to_tensors(_take(observations, slice(1, None)), device),
    )
    return predicted.cpu().numpy()


def flat_or_dict(observations: list[Any]) -> Any:
    """Stack a list of observations: an array, or a dict of arrays for ``Dict`` spaces."""
    if isinstance(observations[0], dict):
        return {key: np.stack([o[key] for o in observations]) for key in observations[0]}
    return np.stack(observations)


def _take(observations: Any, rows: slice) -> Any:
    """``observations[rows]`` of an array or of each entry of a dict."""
    if isinstance(observations, dict):
        return {key: value[rows] for key, value in observations.items()}
    return observations[rows]


def _aligned(values: np.ndarray, length: int, offset: int) -> list[float | None]:
    """Values placed at frames ``offset …`` of an episode of ``length`` steps (``length + 1``
    frames), None elsewhere; non-finite values are None too (JSON has no NaN)."""
    placed: list[float | None] = [None] * (length + 1)
    for index, value in enumerate(np.asarray(values, dtype=np.float64).reshape(-1)):
        placed[offset + index] = float(value) if np.isfinite(value) else None
    return placed


def collect_series(
    agent: Any, episode: RecordedEpisode, names: list[str], observation_indices: list[int]
) -> dict[str, tuple[str, list[float | None]]]:
    """Return every plotted series of ``episode``: name → ``(group, values per frame)``.

    A step's reward belongs to the frame it leads to (frame ``t + 1``), its action and the
    policy's numbers to the frame it was chosen in (frame ``t``).
    """
    length = episode.length
    series: dict[str, tuple[str, list[float | None]]] = {}
    series["reward"] = ("reward", _aligned(np.asarray(episode.rewards), length, 1))
    terms = sorted({key for info in episode.infos for key in info if key.startswith("reward_")})
    for term in terms:
        values = [info.get(term, np.nan) for info in episode.infos]
        series[term] = ("reward", _aligned(np.asarray(values), length, 1))
    redistributed = redistributed_rewards(agent, episode)
    if redistributed is not None:
        series["redistributed"] = ("reward", _aligned(redistributed, length, 1))
    actions = np.asarray(episode.actions, dtype=np.float64).reshape(length, -1)
    for dimension in range(actions.shape[1]):
        name = "action" if actions.shape[1] == 1 else f"action[{dimension}]"
        series[name] = ("action", _aligned(actions[:, dimension], length, 0))
    flat = flat_observations(episode.observations)
    if flat is not None:
        for index in observation_indices:
            series[names[index]] = ("observation", _aligned(flat[:, index], length, 0))
    for name, (group, values) in agent_diagnostics(agent, episode).items():
        series[name] = (group, _aligned(values, length, 0))
    return series


def check_view_episodes(n_episodes: int) -> None:
    """Raise ValueError unless one page can hold ``n_episodes`` episodes."""
    if not 1 <= n_episodes <= MAX_VIEW_EPISODES:
        raise ValueError(
            f"--episodes must be 1 to {MAX_VIEW_EPISODES} (every frame is inlined in the page), "
            f"got {n_episodes}"
        )


def view_episodes(
    agent: Any,
    resolved: ResolvedConfig,
    n_episodes: int = 1,
    deterministic: bool = True,
    seed: int | None = 0,
    size: int = DEFAULT_VIEW_SIZE,
    observations: list[str] | None = None,
    max_steps: int | None = None,
) -> tuple[list[ViewedEpisode], float]:
    """Play ``n_episodes`` episodes of ``agent``; return their frames and plotted series, and
    the frame rate (Hz) that plays them in real time.

    Args:
        agent: One of our agents (SB3 models play too, without V/Q and entropy plots).
        resolved: The run's config.
        n_episodes: Episodes, 1 to ``MAX_VIEW_EPISODES``.
        deterministic: Take the most likely actions.
        seed: Episode ``i`` is reset with ``seed + i``.
        size: Frame side in px.
        observations: Observations to plot, as indices or names of the env's observation table
            (``observation_names``); None or empty: the first ``DEFAULT_OBSERVATIONS``.
        max_steps: Stop an episode after this many steps (None: when it ends).

    Raises:
        ValueError: ``n_episodes`` out of range, or an unknown observation.
    """
    check_view_episodes(n_episodes)
    space = agent.observation_space
    if isinstance(space, gym.spaces.Dict):
        key = state_key(space.spaces)
        space = None if key is None else space.spaces[key]
    width = int(np.prod(space.shape)) if space is not None and space.dtype != np.uint8 else 0
    names = observation_names(resolved.env, width)
    if width == 0 and observations:
        raise ValueError(f"--obs: {resolved.env}'s observations hold no numbers to plot")
    indices = select_observations(names, list(observations or []))
    recorded, fps = record_episodes(
        agent, resolved, n_episodes, deterministic, seed, size, max_steps=max_steps,
        keep_steps=True,
    )  # fmt: skip
    viewed = [ViewedEpisode(e, collect_series(agent, e, names, indices)) for e in recorded]
    return viewed, fps


def _jpeg_base64(frame: np.ndarray) -> str:
    """A frame as base64 JPEG text."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=_JPEG_QUALITY)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def render_page(episodes: list[ViewedEpisode], title: str, fps: float) -> str:
    """Return the viewer page of ``episodes``: HTML with its script, style and frames inline."""
    data = {
        "title": title,
        "fps": fps,
        "episodes": [
            {
                "seed": viewed.recorded.seed,
                "return": viewed.recorded.episode_return,
                "length": viewed.recorded.length,
                "success": viewed.recorded.success,
                "frames": [_jpeg_base64(frame) for frame in viewed.recorded.frames],
                "series": [
                    {"name": name, "group": group, "values": values}
                    for name, (group, values) in viewed.series.items()
                ],
            }
            for viewed in episodes
        ],
    }
    template = resources.files("rlrobot.run").joinpath("viewer.html").read_text("utf-8")
    # "</" inside the JSON would end the <script> element early.
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    escaped = title.replace("&", "&amp;").replace("<", "&lt;")
    return template.replace("__TITLE__", escaped).replace("__DATA__", payload)


def write_page(path: str | Path, episodes: list[ViewedEpisode], title: str, fps: float) -> int:
    """Write the viewer page atomically; return its size in bytes."""
    page = render_page(episodes, title, fps).encode("utf-8")
    atomic_write_bytes(Path(path), page)
    return len(page)
