"""SB3's ``load(path, env, device, custom_objects, print_system_info, force_reset, **kwargs)``
and ``save(path, exclude, include)``, run with SB3's classes and with ours.

Where the behaviour should match, the same snippet runs both ways; where ours differs on
purpose (an unknown keyword or name is an error, not an attribute set or a name ignored), the
test asserts SB3's behaviour and ours side by side.
"""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import stable_baselines3 as sb3

from rlrobot import agents
from rlrobot.errors import CheckpointError, ConfigError

LIBRARIES = [sb3, agents]
SMALL_PPO = {"n_steps": 64, "batch_size": 64, "n_epochs": 1}
SMALL_SAC = {"learning_starts": 16, "batch_size": 16, "buffer_size": 256}


def make_ppo(library, **kwargs):
    return library.PPO("MlpPolicy", "CartPole-v1", device="cpu", **SMALL_PPO, **kwargs)


def learning_rate(model) -> float:
    """The loaded learning rate: SB3's attribute, our config field."""
    if isinstance(model, agents.BaseAgent):
        return model.config.initial_value("learning_rate")
    return model.lr_schedule(1.0)


def network_widths(model) -> list[int]:
    return [p.shape[0] for name, p in model.policy.named_parameters() if name.endswith("bias")]


@pytest.fixture
def saved(tmp_path):
    """A PPO of each library saved with verbose, tensorboard_log, seed and a net_arch."""
    paths = {}
    for library in LIBRARIES:
        model = make_ppo(
            library,
            seed=3,
            verbose=0,
            tensorboard_log=str(tmp_path / "tb"),
            policy_kwargs={"net_arch": [32]},
        )
        path = tmp_path / library.__name__
        model.save(path)
        paths[library] = path
    return paths


@pytest.mark.parametrize("library", LIBRARIES, ids=lambda lib: lib.__name__)
def test_load_restores_verbose_tensorboard_log_and_seed(library, saved, tmp_path):
    model = library.PPO.load(saved[library], device="cpu")
    assert model.verbose == 0
    assert model.tensorboard_log == str(tmp_path / "tb")
    assert model.seed == 3


@pytest.mark.parametrize("library", LIBRARIES, ids=lambda lib: lib.__name__)
def test_load_kwargs_override_saved_values(library, saved):
    model = library.PPO.load(
        saved[library],
        device="cpu",
        verbose=1,
        tensorboard_log="tb/",
        learning_rate=1e-4,
        gamma=0.95,
        policy_kwargs={"net_arch": [32]},  # the saved networks: accepted
    )
    assert (model.verbose, model.tensorboard_log) == (1, "tb/")
    assert learning_rate(model) == pytest.approx(1e-4)
    gamma = model.gamma if library is sb3 else model.config.gamma
    assert gamma == 0.95
    assert network_widths(model)[:1] == [32]


@pytest.mark.parametrize("library", LIBRARIES, ids=lambda lib: lib.__name__)
@pytest.mark.parametrize("policy_kwargs", [{"net_arch": [64]}, {}])
def test_load_refuses_policy_kwargs_of_other_networks(library, saved, policy_kwargs):
    # SB3 compares with the stored dict: a different one, or none of its keys, is a ValueError.
    with pytest.raises(ValueError, match=r"(?i)specified policy.kwargs do not equal the stored"):
        library.PPO.load(saved[library], device="cpu", policy_kwargs=policy_kwargs)


def test_load_refuses_policy_kwargs_naming_the_field(saved):
    with pytest.raises(ConfigError, match=r"net_arch=\(64,\) \(saved: \(32,\)\)"):
        agents.PPO.load(saved[agents], policy_kwargs={"net_arch": [64]})


def test_unknown_load_keyword_is_an_error_not_an_attribute(saved):
    # SB3 sets any keyword as an attribute, a misspelt one too; ours names it.
    theirs = sb3.PPO.load(saved[sb3], device="cpu", lerning_rate=1e-4)
    assert theirs.lerning_rate == 1e-4 and theirs.learning_rate == 3e-4
    with pytest.raises(ConfigError, match=r"unknown keyword 'lerning_rate'.*'learning_rate'"):
        agents.PPO.load(saved[agents], lerning_rate=1e-4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"verbose": 3}, "verbose must be 0"),
        ({"tensorboard_log": 5}, "tensorboard_log must be a folder path"),
        ({"stats_window_size": 0}, r"stats_window_size must be an integer in \[1, inf\), got 0"),
        ({"gamma": 1.5}, r"'gamma': must be a finite number in \(0, 1\], got 1.5"),
        ({"use_sde": True}, "'use_sde'=True is not supported"),
        ({"buffer_size": 10}, "argument of SB3's SAC, TD3, not of PPO"),
    ],
)
def test_load_kwargs_are_checked_like_the_constructor(saved, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        agents.PPO.load(saved[agents], **kwargs)


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({"verbose": "loud"}, "verbose must be 0"),
        ({"seed": -1}, r"seed must be an integer in \[0, 18446744073709551615\].*got -1"),
        ({"tensorboard_log": ["x"]}, "tensorboard_log must be a folder path"),
        ({"other": 1}, "metadata 'attributes' has keys \\['other'\\]"),
    ],
)
def test_saved_attributes_are_checked_on_load(tmp_path, attributes, message):
    folder = tmp_path / "model"
    folder.mkdir()
    make_ppo(agents).save(folder)
    metadata = json.loads((folder / "metadata.json").read_text())
    metadata["attributes"] = attributes
    (folder / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(CheckpointError, match=message):
        agents.PPO.load(folder)


def test_sb3_argument_names_convert_on_load(tmp_path):
    path = agents.A2C("MlpPolicy", "CartPole-v1", n_steps=8, device="cpu").save(tmp_path / "a2c")
    loaded = agents.A2C.load(path, rms_prop_eps=1e-3, use_rms_prop=False, stats_window_size=7)
    assert (loaded.config.optimizer, loaded.config.optimizer_eps) == ("adam", 1e-3)
    assert loaded.ep_info_buffer.maxlen == 7
    assert agents.A2C.load(loaded.save(tmp_path / "again")).ep_info_buffer.maxlen == 7


@pytest.mark.parametrize("library", LIBRARIES, ids=lambda lib: lib.__name__)
def test_print_system_info(library, saved, capsys):
    library.PPO.load(saved[library], None, "cpu", None, True)  # SB3's positional order
    printed = capsys.readouterr().out
    assert "== CURRENT SYSTEM INFO ==" in printed
    assert "== SAVED MODEL SYSTEM INFO ==" in printed


def test_force_reset(tmp_path):
    model = make_ppo(sb3, seed=0)
    model.learn(64)
    model.save(tmp_path / "sb3")
    env = gym.make("CartPole-v1")  # SB3's load takes no env id
    assert sb3.PPO.load(tmp_path / "sb3", env)._last_obs is None  # force_reset=True
    kept = sb3.PPO.load(tmp_path / "sb3", env, force_reset=False)._last_obs
    assert kept is not None
    # Ours continues the episodes a checkpoint holds (an env that can save its state).
    env_id = "rlrobot/CartPole-v0"
    ours = agents.PPO(env_id, seed=0, device="cpu", **SMALL_PPO)
    ours.learn(64)
    path = ours.save(tmp_path / "ours", include_episodes=True)
    assert not agents.PPO.load(path, env_id).episodes_in_progress
    resumed = agents.PPO.load(path, env_id, force_reset=False)
    np.testing.assert_array_equal(resumed._last_observations, ours._last_observations)


# -- save(path, exclude, include) ---------------------------------------------------------------
@pytest.mark.parametrize("library", LIBRARIES, ids=lambda lib: lib.__name__)
def test_excluded_attributes_load_as_defaults(library, tmp_path):
    model = make_ppo(library, seed=3, verbose=1, tensorboard_log=str(tmp_path / "tb"))
    # "env" and "replay_buffer" are left out anyway: naming them changes nothing.
    model.save(tmp_path / "m", exclude=["verbose", "tensorboard_log", "seed", "env"])
    loaded = library.PPO.load(tmp_path / "m", device="cpu")
    assert (loaded.verbose, loaded.tensorboard_log, loaded.seed) == (0, None, None)


@pytest.mark.parametrize("library", LIBRARIES, ids=lambda lib: lib.__name__)
def test_include_replay_buffer(library, tmp_path):
    model = library.SAC("MlpPolicy", "Pendulum-v1", device="cpu", seed=0, **SMALL_SAC)
    model.learn(32)
    model.save(tmp_path / "with", include=["replay_buffer"])
    model.save(tmp_path / "without", exclude=["replay_buffer"])
    sizes = []
    for name in ("with", "without"):
        loaded = library.SAC.load(tmp_path / name, gym.make("Pendulum-v1"), device="cpu")
        buffer = loaded.replay_buffer
        sizes.append(0 if buffer is None else buffer.size() if library is sb3 else len(buffer))
    assert sizes == [32, 0]


def test_names_sb3_ignores_or_pickles_are_errors_here(tmp_path):
    model = make_ppo(sb3)
    model.save(tmp_path / "sb3", exclude=["no_such_attribute"])  # SB3 ignores the name
    model.save(tmp_path / "sb3", include=["env"])  # SB3 pickles the env
    ours = make_ppo(agents)
    with pytest.raises(ConfigError, match="'no_such_attribute' names no part"):
        ours.save(tmp_path / "ours", exclude=["no_such_attribute"])
    with pytest.raises(ConfigError, match=r"'gamma'.*load\(path, key=value\)"):
        ours.save(tmp_path / "ours", exclude=["gamma"])
    with pytest.raises(ConfigError, match=r"'env' is a live object.*pass env= to load"):
        ours.save(tmp_path / "ours", include=["env"])
    with pytest.raises(ConfigError, match="include_replay_buffer=True asks for it"):
        ours.save(tmp_path / "ours", exclude=["replay_buffer"], include_replay_buffer=True)
    with pytest.raises(ConfigError, match="list of attribute names"):
        ours.save(tmp_path / "ours", exclude="seed")
    assert not list(tmp_path.glob("ours*"))
