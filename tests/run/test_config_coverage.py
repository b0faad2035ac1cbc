"""configs/<algo>.yaml: an entry for every rlrobot env the algorithm can act in, all valid."""

import gymnasium as gym
import pytest

from rlrobot.agents import ALGORITHMS, OffPolicyAgent
from rlrobot.envs.registration import ENV_IDS
from rlrobot.run.config import DEFAULT_ENTRY, default_config_path, read_yaml, resolve_config


@pytest.fixture(scope="module")
def action_spaces():
    spaces = {}
    for env_id in ENV_IDS:
        env = gym.make(env_id)
        spaces[env_id] = env.action_space
        env.close()
    return spaces


def supports(algo: str, action_space: gym.Space) -> bool:
    """SAC and TD3 need a Box action space; the on-policy agents take Box or Discrete."""
    if issubclass(ALGORITHMS[algo], OffPolicyAgent):
        return isinstance(action_space, gym.spaces.Box)
    return isinstance(action_space, gym.spaces.Box | gym.spaces.Discrete)


def test_support_rule_matches_the_agents(action_spaces):
    # The rule above must hold for the registry: CartPole is Discrete, so no SAC/TD3 entry.
    assert not supports("sac", action_spaces["rlrobot/CartPole-v0"])
    assert supports("ppo", action_spaces["rlrobot/CartPole-v0"])
    assert supports("td3", action_spaces["rlrobot/Quadruped-v0"])


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_every_supported_env_has_a_tuned_entry(algo, action_spaces):
    entries = read_yaml(default_config_path(algo))
    missing = [
        env_id
        for env_id in ENV_IDS
        if supports(algo, action_spaces[env_id]) and env_id not in entries
    ]
    assert missing == [], f"configs/{algo}.yaml has no entry for {missing}"
    unsupported = [
        env_id
        for env_id in ENV_IDS
        if env_id in entries and not supports(algo, action_spaces[env_id])
    ]
    assert unsupported == [], f"configs/{algo}.yaml has entries {algo} cannot run: {unsupported}"


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_every_entry_validates_and_its_env_kwargs_make_the_env(algo):
    entries = read_yaml(default_config_path(algo))
    for env_id, entry in entries.items():
        if env_id == DEFAULT_ENTRY:
            continue
        assert "n_timesteps" in entry, f"configs/{algo}.yaml: {env_id} has no n_timesteps"
        resolved = resolve_config(algo, env_id)  # strict: unknown keys, wrong types, ranges
        assert resolved.run.n_timesteps == entry["n_timesteps"]
        if env_id in ENV_IDS and resolved.run.env_kwargs:
            gym.make(env_id, **resolved.run.env_kwargs).close()
