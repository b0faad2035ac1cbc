"""The state of every sub-env of a vector env mid-episode, read and restored (exact resume).

Vector envs made by ``make_vec_env`` wrap each sub-env in ``EpisodeStateAccess`` (see
``rlrobot.envs.state``) and say so in their metadata, so the state reaches sub-envs in worker
processes too, through ``get_attr``/``set_attr``. ``SAME_STEP`` autoreset leaves no state in
the vector env itself: an episode that ended has already been reset inside its sub-env.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from rlrobot.envs.state import EPISODE_STATE_ATTRIBUTE
from rlrobot.errors import CheckpointError

# The metadata key of a vector env whose sub-envs are wrapped in ``EpisodeStateAccess``.
EPISODE_STATE_METADATA = "rlrobot_episode_state"


def get_vector_env_state(vector: gym.vector.VectorEnv) -> list[dict[str, Any]] | None:
    """Return the state of every sub-env, or None if one cannot give its state.

    None also for a vector env not made by ``make_vec_env``, whose sub-envs are not wrapped.
    """
    if not vector.metadata.get(EPISODE_STATE_METADATA):
        return None
    states = list(vector.get_attr(EPISODE_STATE_ATTRIBUTE))
    return None if any(state is None for state in states) else states


def set_vector_env_state(vector: gym.vector.VectorEnv, states: Any) -> None:
    """Restore states returned by ``get_vector_env_state``, one per sub-env.

    Raises:
        CheckpointError: Another number of states than of sub-envs, a vector env whose
            sub-envs cannot be restored, or a state that does not fit its sub-env.
    """
    if not vector.metadata.get(EPISODE_STATE_METADATA):
        raise CheckpointError(
            "this vector env was not made by make_vec_env: its sub-envs' states cannot be restored"
        )
    if not isinstance(states, list) or len(states) != vector.num_envs:
        found = len(states) if isinstance(states, list) else type(states).__name__
        raise CheckpointError(
            f"saved env states are for {found} envs, this vector env has {vector.num_envs}"
        )
    vector.set_attr(EPISODE_STATE_ATTRIBUTE, states)
