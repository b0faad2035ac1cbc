"""Replay buffer for off-policy agents: observations stored once, real final observations kept.

Layout: NumPy arrays of shape ``(n_rows, n_envs, …)`` filled row by row, one row per vector
step, as a ring. Each observation is stored once: the next observation of the transition in
row ``r`` is the observation in row ``r + 1`` (written by ``add`` right away, as SB3's
``optimize_memory_usage`` does), except where the episode ended at ``r``; there the real final
observation (of a termination or of a time-limit truncation) lives in a small separate FIFO
ring, ``final_slot[r, env]`` points into it, and the next row holds the first observation of
the next episode. The final ring grows on demand and holds one entry per episode end still in
the buffer, so the memory is ``(1 + 1/episode_length)`` observations per transition instead of
two. Observations keep the space's dtype (uint8 images stay uint8).

Only ``terminated`` stops bootstrapping: a truncated transition is bootstrapped from its real
final observation. With ``n_steps > 1`` the sampled reward is the discounted sum of up to
``n_steps`` rewards, stopped at the episode end and at the newest stored step; each sample comes
with ``discounts = γ^m · (1 − terminated)`` for the ``m`` steps summed, so every target is
``rewards + discounts · V(next_observations)``.

With ``reward_redistribution`` the buffer also keeps a ``ChunkIndex`` (see
``rlrobot.common.redistribution``): each transition's chunk of a delayed reward. Under
``"uniform"`` a transition is sampled only once its chunk has ended, with the reward
``R_c / L_c``, and n-step sums stop at a pending step; under ``"rrd"`` rewards are sampled as
stored (the agent replaces them with its reward model's) and ``sample_chunks`` feeds the model.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import NamedTuple

import gymnasium as gym
import numpy as np

from rlrobot.common.files import atomic_output
from rlrobot.common.memory import check_memory
from rlrobot.common.redistribution import ChunkIndex
from rlrobot.errors import CheckpointError

Observation = np.ndarray | dict[str, np.ndarray]
MAX_RNG_STATE_CHARS = 1024


class ReplaySample(NamedTuple):
    """A minibatch of transitions as NumPy arrays (dicts of arrays for ``Dict`` observations).

    Attributes:
        observations: ``(batch, *obs_shape)``.
        actions: ``(batch, *action_shape)``, as stored (the agent's scaled actions).
        rewards: ``(batch,)`` float32, n-step discounted sums when ``n_steps > 1``.
        next_observations: ``(batch, *obs_shape)``, the observation to bootstrap from.
        discounts: ``(batch,)`` float32, ``γ^m · (1 − terminated)``.
    """

    observations: Observation
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: Observation
    discounts: np.ndarray


def _observation_name(prefix: str, key: str) -> str:
    return f"{prefix}/{key}" if key else prefix


def _space_items(space: gym.Space) -> dict[str, gym.Space]:
    return dict(space.spaces) if isinstance(space, gym.spaces.Dict) else {"": space}


def npz_path(path: str | os.PathLike) -> Path:
    """Return ``path`` with ``.npz`` appended unless it already ends so (NumPy's rule)."""
    path = Path(path)
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


class ReplayBuffer:
    """Ring buffer of transitions from a vector env; see the module docstring.

    Args:
        buffer_size: Number of transitions kept (over all envs).
        observation_space: ``Box`` or ``Dict`` of ``Box`` observation space.
        action_space: The action space (actions are stored as float32, or int64 if discrete).
        n_envs: Number of parallel envs; each ``add`` stores one transition per env.
        gamma: Discount factor γ for n-step returns and ``discounts``.
        n_steps: Length of the n-step returns (1: one-step TD targets).
        seed: Seed of the sampling generator.
        reward_redistribution: None, ``"uniform"`` or ``"rrd"`` (see the module docstring).
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: gym.Space,
        action_space: gym.Space,
        n_envs: int = 1,
        gamma: float = 0.99,
        n_steps: int = 1,
        seed: int | None = None,
        reward_redistribution: str | None = None,
    ) -> None:
        if n_steps < 1:
            raise ValueError(f"n_steps must be >= 1, got {n_steps}")
        # One extra row: the newest next observation is written before its row is used.
        self.n_rows = max(buffer_size // n_envs, 1) + 1
        if self.n_rows < n_steps + 1:
            raise ValueError(f"buffer_size {buffer_size} is too small for n_steps={n_steps}")
        self.check_size(buffer_size, observation_space, action_space, n_envs)
        self.buffer_size, self.n_envs, self.gamma, self.n_steps = (
            buffer_size,
            n_envs,
            gamma,
            n_steps,
        )
        self.observation_space, self.action_space = observation_space, action_space
        self.is_dict = isinstance(observation_space, gym.spaces.Dict)
        self.rng = np.random.default_rng(seed)
        shape = (self.n_rows, n_envs)
        self.observations = {
            key: np.zeros((*shape, *space.shape), dtype=space.dtype)
            for key, space in _space_items(observation_space).items()
        }
        action_dtype = np.int64 if isinstance(action_space, gym.spaces.Discrete) else np.float32
        self.actions = np.zeros((*shape, *action_space.shape), dtype=action_dtype)
        self.rewards = np.zeros(shape, dtype=np.float32)
        self.terminated = np.zeros(shape, dtype=bool)
        self.episode_ends = np.zeros(shape, dtype=bool)
        self.final_slot = np.full(shape, -1, dtype=np.int32)
        self.final_capacity = min(1024, self.n_rows * n_envs)
        self.final_observations = {
            key: np.zeros((self.final_capacity, *array.shape[2:]), dtype=array.dtype)
            for key, array in self.observations.items()
        }
        self.final_head = 0  # oldest live entry of the final-observation ring
        self.final_count = 0
        self.pos = 0  # the row the next add writes
        self.full = False
        self.reward_redistribution = reward_redistribution
        self.chunks = ChunkIndex(self.n_rows, n_envs) if reward_redistribution else None

    @staticmethod
    def check_size(
        buffer_size: int,
        observation_space: gym.Space,
        action_space: gym.Space,
        n_envs: int = 1,
        key: str = "buffer_size",
    ) -> int:
        """Return the bytes a buffer of ``buffer_size`` transitions takes; raise ``ConfigError``
        naming the config ``key`` where it exceeds the machine's memory."""
        shape = (max(buffer_size // n_envs, 1) + 1, n_envs)
        arrays = [((*shape, *s.shape), s.dtype) for s in _space_items(observation_space).values()]
        action_dtype = np.int64 if isinstance(action_space, gym.spaces.Discrete) else np.float32
        arrays.append(((*shape, *action_space.shape), action_dtype))
        # rewards, terminated, episode_ends, final_slot; the final ring grows with episode ends.
        arrays += [(shape, np.float32), (shape, bool), (shape, bool), (shape, np.int32)]
        return check_memory(f"{key}={buffer_size}", "replay buffer", arrays)

    # -- storing ------------------------------------------------------------------------------
    def __len__(self) -> int:
        """Number of transitions that can be sampled."""
        rows = self.n_rows - 1 if self.full else self.pos
        return rows * self.n_envs

    def size(self) -> int:
        """Number of vector steps stored, as SB3 counts (``len`` counts transitions)."""
        return len(self) // self.n_envs

    @property
    def nbytes(self) -> int:
        """Bytes held by all arrays of the buffer."""
        arrays = [self.actions, self.rewards, self.terminated, self.episode_ends, self.final_slot]
        arrays += list(self.observations.values()) + list(self.final_observations.values())
        return sum(array.nbytes for array in arrays) + self._extra_nbytes()

    def _extra_nbytes(self) -> int:
        if self.chunks is None:
            return 0
        return sum(array.nbytes for array in self.chunks.state_dict().values())

    def _items(self, observations: Observation) -> dict[str, np.ndarray]:
        return observations if self.is_dict else {"": observations}

    def add(
        self,
        observations: Observation,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_observations: Observation,
        terminated: np.ndarray,
        episode_ends: np.ndarray,
    ) -> None:
        """Store one vector step; successive calls must continue the same env streams.

        Args:
            observations: ``(n_envs, *obs_shape)`` observations the actions were taken in.
            actions: ``(n_envs, *action_shape)``.
            rewards: ``(n_envs,)``.
            next_observations: ``(n_envs, *obs_shape)`` REAL next observations: where an
                episode ended, its final observation (``info["final_obs"]``), not the reset one.
            terminated: ``(n_envs,)`` true terminal states (no bootstrapping).
            episode_ends: ``(n_envs,)`` ``terminated | truncated``.
        """
        row, next_row = self.pos, (self.pos + 1) % self.n_rows
        self._free_final_slots(row)
        for key, value in self._items(observations).items():
            self.observations[key][row] = value
        self.actions[row] = actions
        self.rewards[row] = rewards
        self.terminated[row] = terminated
        self.episode_ends[row] = episode_ends
        self.final_slot[row] = -1
        next_items = self._items(next_observations)
        ended = np.flatnonzero(episode_ends)
        if ended.size:
            slots = self._allocate_final_slots(ended.size)
            self.final_slot[row, ended] = slots
            for key, value in next_items.items():
                self.final_observations[key][slots] = value[ended]
        # The next row's observations are overwritten by the next add where an episode ended.
        for key, value in next_items.items():
            self.observations[key][next_row] = value
        self.pos = next_row
        self.full = self.full or next_row == 0
        if self.chunks is not None:
            self.chunks.add(row, rewards, episode_ends, self.n_rows - 1 if self.full else self.pos)

    def truncate_episodes(self) -> None:
        """Mark the newest transition of every running episode as a truncated episode end.

        For envs reset from outside the step loop (a training run does it at each checkpoint
        when its envs cannot save their state, see ``rlrobot.run.training``): the real next
        observation moves to the final ring, so the next ``add`` (of the first step after the
        reset) cannot overwrite it, and n-step returns stop there. The transitions are
        bootstrapped like time-limit truncations.
        """
        if self.pos == 0 and not self.full:
            return
        row = (self.pos - 1) % self.n_rows
        running = np.flatnonzero(~self.episode_ends[row])
        if running.size:
            slots = self._allocate_final_slots(running.size)
            self.final_slot[row, running] = slots
            for key, array in self.observations.items():
                self.final_observations[key][slots] = array[self.pos, running]
            self.episode_ends[row, running] = True
        if self.chunks is not None:
            self.chunks.abandon_running_chunks()

    def _free_final_slots(self, row: int) -> None:
        # Rows are overwritten in the order they were written, so the final observations of
        # the row being overwritten are the oldest entries of the FIFO ring.
        freed = int(np.count_nonzero(self.final_slot[row] >= 0))
        self.final_head = (self.final_head + freed) % self.final_capacity
        self.final_count -= freed

    def _allocate_final_slots(self, count: int) -> np.ndarray:
        if self.final_count + count > self.final_capacity:
            self._grow_final_ring(max(2 * self.final_capacity, self.final_count + count))
        slots = (self.final_head + self.final_count + np.arange(count)) % self.final_capacity
        self.final_count += count
        return slots.astype(np.int32)

    def _grow_final_ring(self, new_capacity: int) -> None:
        live = (self.final_head + np.arange(self.final_count)) % self.final_capacity
        for key, array in self.final_observations.items():
            grown = np.zeros((new_capacity, *array.shape[1:]), dtype=array.dtype)
            grown[: self.final_count] = array[live]
            self.final_observations[key] = grown
        used = self.final_slot >= 0
        self.final_slot[used] = (self.final_slot[used] - self.final_head) % self.final_capacity
        self.final_head, self.final_capacity = 0, new_capacity

    # -- sampling -----------------------------------------------------------------------------
    def draw_stored(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``batch_size`` stored transitions uniformly, pending or not: ``(rows, envs)``."""
        n_valid = len(self)
        if n_valid == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        return self._flat_to_rows(self.rng.integers(0, n_valid, size=batch_size))

    def _flat_to_rows(self, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map transition numbers ``0 … len(self) − 1`` (oldest first) to ``(rows, envs)``."""
        rows, envs = np.divmod(flat, self.n_envs)
        if self.full:
            # Row ``pos`` holds the newest next observation, not a transition: skip it.
            rows = (self.pos + 1 + rows) % self.n_rows
        return rows, envs

    def can_sample(self) -> bool:
        """True when a transition with a final reward is stored (uniform: a chunk ended)."""
        if self.reward_redistribution == "uniform":
            return self.chunks.n_chunks_ended > 0 and len(self) > 0
        return len(self) > 0

    def sample_indices(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``batch_size`` transitions uniformly among those with a final reward."""
        rows, envs = self.draw_stored(batch_size)
        if self.reward_redistribution != "uniform":
            return rows, envs
        # Pending transitions are few (one running chunk per env): redraw them a few times,
        # then choose among the released ones explicitly.
        for _ in range(8):
            pending = np.flatnonzero(self.chunks.lengths[rows, envs] == 0)
            if pending.size == 0:
                return rows, envs
            rows[pending], envs[pending] = self.draw_stored(pending.size)
        stored_rows, stored_envs = self._flat_to_rows(np.arange(len(self)))
        released = np.flatnonzero(self.chunks.lengths[stored_rows, stored_envs] > 0)
        if released.size == 0:
            raise ValueError("no stored transition has a released reward yet")
        choice = released[self.rng.integers(0, released.size, size=batch_size)]
        return stored_rows[choice], stored_envs[choice]

    def sample_chunks(
        self, n_chunks: int, subset_size: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Draw finished chunks and ``subset_size`` steps of each (RRD's reward-model batch).

        Returns:
            ``(rows, envs, returns, lengths)`` as ``ChunkIndex.sample_chunks``; fewer than
            ``n_chunks`` chunks (possibly none) while few have ended.
        """
        rows, envs = self.draw_stored(4 * n_chunks)
        n_stored = self.n_rows - 1 if self.full else self.pos
        age = np.append((self.pos - 1 - rows) % self.n_rows, n_stored)
        return self.chunks.sample_chunks(n_chunks, subset_size, rows, envs, age, self.rng)

    def step_rewards(self, rows: np.ndarray, envs: np.ndarray) -> np.ndarray:
        """The rewards learned from at ``(rows, envs)``: as stored, or uniform ``R_c / L_c``."""
        if self.reward_redistribution == "uniform":
            return self.chunks.returns[rows, envs] / np.maximum(self.chunks.lengths[rows, envs], 1)
        return self.rewards[rows, envs]

    def sample(self, batch_size: int) -> ReplaySample:
        """Draw a uniform minibatch of ``batch_size`` transitions (with replacement)."""
        return self.get_samples(*self.sample_indices(batch_size))

    def steps_stored_from(self, rows: np.ndarray) -> np.ndarray:
        """Number of stored steps from each row to the newest one, that row included."""
        return (self.pos - 1 - rows) % self.n_rows + 1

    def get_observations(self, rows: np.ndarray, envs: np.ndarray) -> Observation:
        """Return the observations stored at ``(rows, envs)``, each ``(batch, *shape)``."""
        values = {key: array[rows, envs] for key, array in self.observations.items()}
        return values if self.is_dict else values[""]

    def get_next_observations(
        self, rows: np.ndarray, envs: np.ndarray, keys: tuple[str, ...] | None = None
    ) -> Observation:
        """Return the real next observations of the transitions at ``(rows, envs)``.

        Args:
            rows: Row of each transition ``(batch,)``.
            envs: Env of each transition ``(batch,)``.
            keys: Only these keys of a ``Dict`` observation (None: all).
        """
        next_rows = (rows + 1) % self.n_rows
        slots = self.final_slot[rows, envs]
        ended = np.flatnonzero(slots >= 0)
        values = {}
        for key in self.observations if keys is None else keys:
            value = self.observations[key][next_rows, envs]
            if ended.size:
                value[ended] = self.final_observations[key][slots[ended]]
            values[key] = value
        return values if self.is_dict else values[""]

    def get_n_step_mask(self, rows: np.ndarray, envs: np.ndarray) -> np.ndarray:
        """Which of the ``n_steps`` steps from each transition its return sums ``(n_steps, batch)``.

        Step ``k`` (row ``rows + k``) counts while the episode goes on and is stored; step 0
        always counts.
        """
        mask = np.zeros((self.n_steps, len(rows)), dtype=bool)
        mask[0] = True
        available = self.steps_stored_from(rows)
        continuing = ~self.episode_ends[rows, envs]
        for k in range(1, self.n_steps):
            mask[k] = continuing & (k < available)
            if self.reward_redistribution == "uniform":
                mask[k] &= self.chunks.lengths[(rows + k) % self.n_rows, envs] > 0
            continuing = mask[k] & ~self.episode_ends[(rows + k) % self.n_rows, envs]
        return mask

    def get_samples(self, rows: np.ndarray, envs: np.ndarray) -> ReplaySample:
        """Return the (n-step) transitions that start at ``(rows, envs)``."""
        rewards = self.step_rewards(rows, envs)
        last_rows = rows
        n_summed = np.ones(rows.shape, dtype=np.int64)
        if self.n_steps > 1:
            mask = self.get_n_step_mask(rows, envs)
            step_rows = (rows + np.arange(self.n_steps)[:, None]) % self.n_rows
            discounts = self.gamma ** np.arange(self.n_steps)[:, None]
            rewards = np.sum(mask * discounts * self.step_rewards(step_rows, envs), axis=0)
            n_summed = mask.sum(axis=0)
            last_rows = (rows + n_summed - 1) % self.n_rows
        not_terminated = ~self.terminated[last_rows, envs]
        discounts = (self.gamma**n_summed * not_terminated).astype(np.float32)
        return ReplaySample(
            self.get_observations(rows, envs),
            self.actions[rows, envs],
            rewards.astype(np.float32, copy=False),
            self.get_next_observations(last_rows, envs),
            discounts,
        )

    # -- saving -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Return the contents as flat ``{name: array}`` (no Python objects)."""
        state = {
            "actions": self.actions,
            "rewards": self.rewards,
            "terminated": self.terminated,
            "episode_ends": self.episode_ends,
            "final_slot": self.final_slot,
            "counters": np.array(
                [self.pos, self.full, self.final_head, self.final_count, self.final_capacity],
                dtype=np.int64,
            ),
            "layout": np.array([self.n_rows, self.n_envs, self.n_steps], dtype=np.int64),
            "rng": np.array(json.dumps(self.rng.bit_generator.state)),
        }
        for key in self.observations:
            state[_observation_name("observations", key)] = self.observations[key]
            state[_observation_name("final_observations", key)] = self.final_observations[key]
        if self.chunks is not None:
            state.update(self.chunks.state_dict())
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore contents saved by ``state_dict`` into a buffer of the same layout.

        Everything is checked before anything is restored: the same array names; each array
        of the dtype and shape this buffer's is (the final-observation ring as long as its
        saved capacity); finite observations, actions and rewards; counters and index arrays
        in range (``_index_ranges``); and the sampling RNG's state, tried on a fresh one.

        Raises:
            ValueError: The saved buffer has another size, number of envs, n_steps or spaces,
                or a value (named) out of range.
        """
        own = self.state_dict()
        if self.chunks is not None and "chunk_lengths" not in state:
            raise ValueError("saved replay buffer has no reward-redistribution chunks")
        if set(state) != set(own):
            missing, unknown = sorted(set(own) - set(state)), sorted(set(state) - set(own))
            raise ValueError(f"saved replay buffer lacks {missing} and has unknown {unknown}")
        for name in ("layout", "counters"):
            self._check_array(name, state[name], own[name])
        layout = [self.n_rows, self.n_envs, self.n_steps]
        if state["layout"].tolist() != layout:
            raise ValueError(
                f"saved replay buffer has (rows, n_envs, n_steps) = "
                f"{state['layout'].tolist()}, this one {layout}"
            )
        pos, full, head, count, capacity = (int(v) for v in state["counters"])
        counters = {
            "pos": (pos, 0, self.n_rows - 1),
            "full": (full, 0, 1),
            # The ring grows by doubling and holds at most one entry per stored transition.
            "final_capacity": (capacity, 1, 2 * self.n_rows * self.n_envs),
            "final_head": (head, 0, capacity - 1),
            "final_count": (count, 0, capacity),
        }
        for name, (value, low, high) in counters.items():
            if not low <= value <= high:
                raise ValueError(f"saved replay buffer {name} is {value}, allowed: [{low}, {high}]")
        rng = self._check_rng_state(state["rng"])
        finals = {}
        for key, target in self.final_observations.items():
            name = _observation_name("final_observations", key)
            finals[key] = np.zeros((capacity, *target.shape[1:]), dtype=target.dtype)
            self._check_array(name, state[name], finals[key])
        fixed = (
            set(own)
            - {"layout", "counters", "rng"}
            - {_observation_name("final_observations", k) for k in finals}
        )
        for name in fixed:
            self._check_array(name, state[name], own[name])
        for name, (low, high) in self._index_ranges(capacity).items():
            values = state[name]
            if values.size and not (low <= values.min() and values.max() < high):
                raise ValueError(
                    f"saved replay buffer {name!r} holds indices outside [{low}, {high})"
                )
        # Checked: now restored, in place (the arrays ``state_dict`` returns are the buffer's).
        for name in fixed:
            own[name][...] = state[name]
        for key, final in finals.items():
            final[...] = state[_observation_name("final_observations", key)]
            self.final_observations[key] = final
        self.pos, self.full, self.final_head = pos, bool(full), head
        self.final_count, self.final_capacity = count, capacity
        self.rng.bit_generator.state = rng
        if self.chunks is not None:
            self.chunks.check()

    def _index_ranges(self, final_capacity: int) -> dict[str, tuple[int, int]]:
        """Return ``{array name: (low, high)}``: the half-open range of each index array."""
        return {"final_slot": (-1, final_capacity)}

    @staticmethod
    def _check_array(name: str, value: np.ndarray, target: np.ndarray) -> None:
        """Raise ValueError unless ``value`` has ``target``'s dtype and shape (finite if float)."""
        if value.shape != target.shape or value.dtype != target.dtype:
            raise ValueError(
                f"saved replay buffer array {name!r} is {value.dtype}{list(value.shape)}, "
                f"expected {target.dtype}{list(target.shape)}"
            )
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise ValueError(f"saved replay buffer array {name!r} holds non-finite values")

    def _check_rng_state(self, saved: np.ndarray) -> dict:
        """Return the sampling RNG's saved state, checked on a fresh bit generator."""
        text = str(saved) if saved.shape == () and saved.dtype.kind == "U" else ""
        # A PCG64 state is under 200 characters; the cap also bounds the JSON's nesting.
        if not text or len(text) > MAX_RNG_STATE_CHARS:
            raise ValueError("saved replay buffer 'rng' is no RNG state")
        try:
            state = json.loads(text)
            type(self.rng.bit_generator)().state = state
        except (TypeError, ValueError, KeyError, OverflowError) as error:
            raise ValueError(f"saved replay buffer 'rng' is no valid RNG state ({error})") from None
        return state

    def save(self, path: str | os.PathLike) -> Path:
        """Write the buffer to an uncompressed ``.npz`` file (arrays only); return its path.

        As with ``np.savez``, ``.npz`` is appended to a path without it.
        """
        path = npz_path(path)
        # Written through a file object: given a path, np.savez would add its own suffix.
        with atomic_output(path) as temporary, open(temporary, "wb") as file:
            np.savez(file, **self.state_dict())
        return path

    def load(self, path: str | os.PathLike) -> None:
        """Read a buffer written by ``save`` (``allow_pickle=False``), given the same path.

        Raises:
            CheckpointError: ``path`` names SB3's pickled buffer (``.pkl``).
        """
        location = Path(path)
        if location.suffix == ".pkl" or (
            not npz_path(location).exists() and location.with_name(location.name + ".pkl").exists()
        ):
            raise CheckpointError(
                f"{path}: a Stable-Baselines3 replay buffer is a pickle, which rlrobot never "
                "unpickles; load buffers written by our save_replay_buffer (.npz)"
            )
        with np.load(npz_path(path), allow_pickle=False) as data:
            # Each array's header is read first: a forged shape is refused before NumPy
            # allocates it. No saved array outgrows three times this buffer (the final ring
            # at its largest holds one observation per transition).
            limit = 3 * self.nbytes + (1 << 20)
            for name in data.files:
                with data.zip.open(f"{name}.npy") as member:
                    version = np.lib.format.read_magic(member)
                    read_header = (
                        np.lib.format.read_array_header_1_0
                        if version == (1, 0)
                        else np.lib.format.read_array_header_2_0
                    )
                    shape, _, dtype = read_header(member)
                if math.prod(shape) * dtype.itemsize > limit:
                    raise ValueError(
                        f"saved replay buffer array {name!r} has shape {list(shape)}, larger "
                        f"than this buffer's {limit} bytes"
                    )
            self.load_state_dict({name: data[name] for name in data.files})
