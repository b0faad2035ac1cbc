"""Reward redistribution for delayed rewards, as pure functions and one storage index.

A delayed reward is *released*: the env withholds what the steps earned and pays the sum at
one step, at the episode's end (``reward_mode="delayed"``) or every ``period`` steps
(``DelayedReward(period=k)``). The steps since the previous release form a **chunk**; its
**return** is the released sum. A chunk ends where an episode ends or where a non-zero reward
is paid. A released sum of exactly 0 joins the next chunk, which keeps every chunk's return
equal to the sum of its rewards, and a dense reward makes every step its own chunk.

Two redistributions give every step of a finished chunk a reward of its own:

* **uniform** (IRCR, Gangwani et al., NeurIPS 2020): ``r̃_t = R_c / L_c`` for each of the
  ``L_c`` steps of chunk ``c``, so the chunk's redistributed rewards sum to its return.
* **RRD** (Randomized Return Decomposition, Ren et al., ICLR 2022): a learned ``r̂(s, a, s′)``
  trained so that, over a random subset ``I`` of ``K`` steps of a chunk, the mean of ``r̂``
  matches the chunk's mean reward:

      L_RRD(θ) = E_c E_I [ (R_c / L_c − (1/K) Σ_{t∈I} r̂_θ(s_t, a_t, s_{t+1}))² ]

  (the paper's loss ``(R − (L/K) Σ r̂)²`` divided by ``L²``, so chunks of any length weigh
  alike). ``rrd_loss`` computes it.

Steps whose chunk has not ended yet have no return: ``uniform_redistribution`` marks them
pending instead of inventing one, and ``ChunkIndex`` keeps a replay buffer's chunks.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch


def find_chunk_ends(rewards: np.ndarray, episode_ends: np.ndarray) -> np.ndarray:
    """Return where a chunk ends: an episode end, or a step that pays a non-zero reward."""
    return np.asarray(episode_ends, dtype=bool) | (np.asarray(rewards) != 0.0)


class UniformRedistribution(NamedTuple):
    """``uniform_redistribution``'s result; arrays are ``(n_steps, n_envs)``, carries ``(n_envs,)``.

    Attributes:
        rewards: ``R_c / L_c`` for steps of chunks that ended, 0 where pending.
        released: True where the step's chunk ended (its reward is final).
        carry_sum: Rewards of each env's unfinished chunk after the last step.
        carry_length: Steps of each env's unfinished chunk after the last step.
    """

    rewards: np.ndarray
    released: np.ndarray
    carry_sum: np.ndarray
    carry_length: np.ndarray


def uniform_redistribution(
    rewards: np.ndarray,
    episode_ends: np.ndarray,
    carry_sum: np.ndarray | None = None,
    carry_length: np.ndarray | None = None,
) -> UniformRedistribution:
    """Spread each finished chunk's return evenly over its steps (IRCR's uniform split).

    Args:
        rewards: Rewards as the env paid them, ``(n_steps, n_envs)``.
        episode_ends: ``terminated | truncated``, ``(n_steps, n_envs)``.
        carry_sum: Sum of the rewards of each env's chunk still running before step 0
            (its steps came earlier, e.g. in the previous rollout); None: zeros.
        carry_length: Number of those earlier steps; None: zeros.

    Returns:
        The redistributed rewards, which steps are released, and the carries for the next call.
        A chunk that started before step 0 counts its earlier steps in ``L_c`` but gets
        rewards only at its steps here.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    n_steps, n_envs = rewards.shape
    ends = find_chunk_ends(rewards, episode_ends)
    running_sum = np.zeros(n_envs) if carry_sum is None else np.array(carry_sum, dtype=np.float64)
    running_length = (
        np.zeros(n_envs, dtype=np.int64)
        if carry_length is None
        else np.array(carry_length, dtype=np.int64)
    )
    redistributed = np.zeros((n_steps, n_envs))
    released = np.zeros((n_steps, n_envs), dtype=bool)
    chunk_start = np.zeros(n_envs, dtype=np.int64)  # first step of the running chunk here
    for t in range(n_steps):
        running_sum += rewards[t]
        running_length += 1
        for env in np.flatnonzero(ends[t]):
            start = chunk_start[env]
            redistributed[start : t + 1, env] = running_sum[env] / running_length[env]
            released[start : t + 1, env] = True
            chunk_start[env] = t + 1
        running_sum[ends[t]] = 0.0
        running_length[ends[t]] = 0
    return UniformRedistribution(
        redistributed.astype(np.float32), released, running_sum, running_length
    )


def rrd_loss(
    subset_rewards: torch.Tensor, chunk_returns: torch.Tensor, chunk_lengths: torch.Tensor
) -> torch.Tensor:
    """RRD's loss ``mean_c (R_c / L_c − mean_{t∈I_c} r̂_t)²`` (see the module docstring).

    Args:
        subset_rewards: ``r̂`` at the ``K`` sampled steps of each chunk, ``(n_chunks, K)``.
        chunk_returns: Each chunk's released return ``R_c``, ``(n_chunks,)``.
        chunk_lengths: Each chunk's number of steps ``L_c``, ``(n_chunks,)``.

    Returns:
        The scalar loss.
    """
    targets = chunk_returns / chunk_lengths
    return ((targets - subset_rewards.mean(dim=1)) ** 2).mean()


class ChunkIndex:
    """Chunk bookkeeping of a ``(n_rows, n_envs)`` ring of transitions (a replay buffer's).

    For every stored transition it keeps its position in its chunk and, once the chunk has
    ended, the chunk's length and return; a length of 0 marks a pending transition. Rows are
    written in the order the buffer writes them (``add`` with its row).

    Args:
        n_rows: Rows of the ring.
        n_envs: Envs per row.
    """

    def __init__(self, n_rows: int, n_envs: int) -> None:
        self.n_rows, self.n_envs = n_rows, n_envs
        self.positions = np.zeros((n_rows, n_envs), dtype=np.int32)
        self.lengths = np.zeros((n_rows, n_envs), dtype=np.int32)
        self.returns = np.zeros((n_rows, n_envs), dtype=np.float32)
        self.running_sum = np.zeros(n_envs, dtype=np.float64)
        self.running_length = np.zeros(n_envs, dtype=np.int64)
        self.counter = np.zeros(1, dtype=np.int64)  # chunks ended so far

    @property
    def n_chunks_ended(self) -> int:
        """Number of chunks that have ended since the index was made."""
        return int(self.counter[0])

    def add(self, row: int, rewards: np.ndarray, episode_ends: np.ndarray, n_live: int) -> None:
        """Record the transitions written to ``row``; close the chunks that end there.

        Args:
            row: The row just written.
            rewards: ``(n_envs,)`` rewards as paid.
            episode_ends: ``(n_envs,)`` ``terminated | truncated``.
            n_live: Rows of the ring holding transitions, ``row`` included: a chunk longer
                than that gets its return written to its stored rows only.
        """
        self.positions[row] = self.running_length
        self.lengths[row] = 0
        self.returns[row] = 0.0
        self.running_sum += rewards
        self.running_length += 1
        ended = np.flatnonzero(find_chunk_ends(rewards, episode_ends))
        for env in ended:
            length = int(self.running_length[env])
            rows = (row - np.arange(min(length, n_live))) % self.n_rows
            self.lengths[rows, env] = length
            self.returns[rows, env] = self.running_sum[env]
        self.running_sum[ended] = 0.0
        self.running_length[ended] = 0
        self.counter += len(ended)

    def abandon_running_chunks(self) -> None:
        """Forget the chunks in progress (their episodes were cut from outside): they stay
        pending for good."""
        self.running_sum[:] = 0.0
        self.running_length[:] = 0

    def sample_chunks(
        self,
        n_chunks: int,
        subset_size: int,
        stored_rows: np.ndarray,
        stored_envs: np.ndarray,
        row_age: np.ndarray,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Draw finished chunks whose steps are all stored, and ``subset_size`` steps of each.

        Chunks are drawn through a uniform transition of theirs (long chunks more often) and
        their steps uniformly with replacement.

        Args:
            n_chunks: Chunks to draw.
            subset_size: Steps ``K`` per chunk.
            stored_rows: Rows of candidate transitions ``(m,)`` (drawn by the buffer).
            stored_envs: Their envs ``(m,)``.
            row_age: Age in rows of each candidate (0: newest) and, as its last entry, the
                number of stored rows: shape ``(m + 1,)``.
            rng: The buffer's generator.

        Returns:
            ``(rows, envs, returns, lengths)``: ``(n, K)``, ``(n, K)``, ``(n,)``, ``(n,)`` with
            ``n <= n_chunks`` (fewer when the candidates held fewer usable chunks).
        """
        n_stored = row_age[-1]
        positions = self.positions[stored_rows, stored_envs]
        lengths = self.lengths[stored_rows, stored_envs]
        whole = (lengths > 0) & (row_age[:-1] + positions < n_stored)
        chosen = np.flatnonzero(whole)[:n_chunks]
        rows, envs = stored_rows[chosen], stored_envs[chosen]
        lengths, starts = lengths[chosen], rows - positions[chosen]
        offsets = np.floor(rng.random((len(chosen), subset_size)) * lengths[:, None])
        subset_rows = (starts[:, None] + offsets.astype(np.int64)) % self.n_rows
        returns = self.returns[rows, envs]
        return subset_rows, np.repeat(envs[:, None], subset_size, axis=1), returns, lengths

    def state_dict(self) -> dict[str, np.ndarray]:
        """Return the index's arrays by name: the arrays themselves, restored in place."""
        return {
            "chunk_positions": self.positions,
            "chunk_lengths": self.lengths,
            "chunk_returns": self.returns,
            "chunk_running_sum": self.running_sum,
            "chunk_running_length": self.running_length,
            "chunk_count": self.counter,
        }

    def check(self) -> None:
        """Raise ``ValueError`` for restored values no index can hold (negative, non-finite)."""
        for name, array in self.state_dict().items():
            signed = name in ("chunk_returns", "chunk_running_sum")
            if not np.isfinite(array).all() or (not signed and (array < 0).any()):
                raise ValueError(f"saved {name} holds negative or non-finite values")
