"""The YAML hyperparameter files in configs/ build valid configs for every env they list."""

from pathlib import Path

import pytest
import yaml

from rlrobot.agents import ALGORITHMS
from rlrobot.run.config import resolve_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_every_env_entry_is_a_valid_config_dense_and_delayed(algo):
    path = CONFIGS / f"{algo}.yaml"
    for env_id in yaml.safe_load(path.read_text()):
        if env_id == "default":
            continue
        dense = resolve_config(algo, env_id)
        delayed = resolve_config(algo, env_id, overrides=["env_kwargs.reward_mode=delayed"])
        assert dense.algorithm.reward_redistribution is None
        assert delayed.algorithm.reward_redistribution == "uniform"
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
