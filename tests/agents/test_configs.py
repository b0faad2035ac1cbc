"""The YAML hyperparameter files in configs/ build valid configs for every env they list."""

from pathlib import Path

import pytest
import yaml

from rlrobot.agents import ALGORITHMS
from rlrobot.common.config import load_env_hyperparameters

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
NOT_CONFIG_FIELDS = ("n_envs", "n_timesteps")


@pytest.mark.parametrize("algo", ["ppo", "a2c", "reinforce"])
def test_every_env_entry_is_a_valid_config(algo):
    path = CONFIGS / f"{algo}.yaml"
    for env_id in yaml.safe_load(path.read_text()):
        values = load_env_hyperparameters(path, env_id)
        for key in NOT_CONFIG_FIELDS:
            values.pop(key, None)
        ALGORITHMS[algo].config_class.from_dict(values)


def test_env_entry_overrides_default(tmp_path):
    path = tmp_path / "algo.yaml"
    path.write_text("default: {gamma: 0.9, n_steps: 8}\nFoo-v0: {gamma: 0.5}\n")
    assert load_env_hyperparameters(path, "Foo-v0") == {"gamma": 0.5, "n_steps": 8}
    assert load_env_hyperparameters(path, "Bar-v0") == {"gamma": 0.9, "n_steps": 8}
