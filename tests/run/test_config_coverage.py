"""rlrobot/configs/<algo>.yaml: an entry for every env the algorithm can act in, all valid.

Every entry resolves dense and delayed, and the ``delayed`` sub-entries apply only under
``env_kwargs.reward_mode=delayed``.
"""

import gymnasium as gym
import pytest

from rlrobot.agents import ALGORITHMS, OffPolicyAgent
from rlrobot.envs.registration import ENV_IDS
from rlrobot.run.config import DEFAULT_ENTRY, read_tuned_configs, resolve_config


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
    entries = read_tuned_configs(algo)
    missing = [
        env_id
        for env_id in ENV_IDS
        if supports(algo, action_spaces[env_id]) and env_id not in entries
    ]
    assert missing == [], f"rlrobot/configs/{algo}.yaml has no entry for {missing}"
    unsupported = [
        env_id
        for env_id in ENV_IDS
        if env_id in entries and not supports(algo, action_spaces[env_id])
    ]
    assert unsupported == [], f"{algo}.yaml has entries {algo} cannot run: {unsupported}"


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_every_entry_validates_and_its_env_kwargs_make_the_env(algo):
    entries = read_tuned_configs(algo)
    for env_id, entry in entries.items():
        if env_id == DEFAULT_ENTRY:
            continue
        assert "n_timesteps" in entry, f"rlrobot/configs/{algo}.yaml: {env_id} has no n_timesteps"
        resolved = resolve_config(algo, env_id)  # strict: unknown keys, wrong types, ranges
        assert resolved.run.n_timesteps == entry["n_timesteps"]
        if env_id in ENV_IDS and resolved.run.env_kwargs:
            gym.make(env_id, **resolved.run.env_kwargs).close()


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_every_env_entry_is_a_valid_config_dense_and_delayed(algo):
    for env_id in read_tuned_configs(algo):
        if env_id == DEFAULT_ENTRY:
            continue
        dense = resolve_config(algo, env_id)
        delayed = resolve_config(algo, env_id, overrides=["env_kwargs.reward_mode=delayed"])
        assert dense.algorithm.reward_redistribution is None
        assert delayed.algorithm.reward_redistribution in ("uniform", "rrd")
        assert any("delayed sub-entries" in source for source in delayed.sources)
        if getattr(dense.algorithm, "replay_buffer", None) == "her":
            assert delayed.algorithm.replay_buffer == "standard"


def test_env_entry_overrides_default_and_delayed_sub_entries_apply_under_delayed(tmp_path):
    (tmp_path / "ppo.yaml").write_text(
        "default: {gamma: 0.9, n_steps: 8, delayed: {gae_lambda: 0.5}}\n"
        "Foo-v0: {gamma: 0.5, delayed: {gamma: 0.99}}\n"
    )
    foo = resolve_config("ppo", "Foo-v0", config_dir=tmp_path)
    assert (foo.algorithm.gamma, foo.algorithm.n_steps, foo.algorithm.gae_lambda) == (0.5, 8, 0.95)
    bar = resolve_config("ppo", "Bar-v0", config_dir=tmp_path)
    assert bar.algorithm.gamma == 0.9
    delayed = resolve_config(
        "ppo", "Foo-v0", overrides=["env_kwargs.reward_mode=delayed"], config_dir=tmp_path
    )
    assert (delayed.algorithm.gamma, delayed.algorithm.gae_lambda) == (0.99, 0.5)
    # The user's own layers still win over the delayed sub-entries.
    mine = resolve_config(
        "ppo",
        "Foo-v0",
        overrides=["env_kwargs.reward_mode=delayed", "gamma=0.8"],
        config_dir=tmp_path,
    )
    assert mine.algorithm.gamma == 0.8
