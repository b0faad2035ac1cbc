"""SB3's save/load surface: one ``.zip`` file per model, safe to load, and SB3 zips imported.

Where SB3 documents a behaviour, the same snippet runs with SB3's class and ours.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import stable_baselines3 as sb3
import torch

from rlrobot.agents import A2C, PPO, SAC, TD3, BaseAgent
from rlrobot.errors import CheckpointError, ConfigError
from tests.reliability.test_security import Payload, _torch_payload

SMALL_PPO = {"n_steps": 64, "batch_size": 64, "n_epochs": 1}


def _observations(env_id: str, n: int = 200) -> np.ndarray:
    space = gym.make(env_id).observation_space
    space.seed(0)
    return np.stack([space.sample() for _ in range(n)])


def _make(implementation: str, **kwargs):
    # SB3 takes the policy first; ours builds the MlpPolicy equivalent from the env alone.
    if implementation == "sb3":
        return sb3.PPO("MlpPolicy", "CartPole-v1", seed=0, **kwargs)
    return PPO("CartPole-v1", seed=0, **kwargs)


def _load(implementation: str, path, **kwargs):
    return (sb3.PPO if implementation == "sb3" else PPO).load(path, **kwargs)


# -- SB3's save/load example, both ways ---------------------------------------------------------
@pytest.mark.parametrize("implementation", ["sb3", "rlrobot"])
def test_sb3_save_load_example_writes_one_zip_file(implementation, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = _make(implementation, **SMALL_PPO)
    model.learn(64)
    model.save("ppo_cartpole")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ppo_cartpole.zip"]
    assert (tmp_path / "ppo_cartpole.zip").is_file()
    observations = _observations("CartPole-v1")
    expected, _ = model.predict(observations, deterministic=True)
    del model
    model = _load(implementation, "ppo_cartpole")  # "m" means "m.zip"
    actions, _ = model.predict(observations, deterministic=True)
    np.testing.assert_array_equal(actions, expected)
    model.save("named.zip")
    assert (tmp_path / "named.zip").is_file()
    np.testing.assert_array_equal(
        _load(implementation, "named.zip").predict(observations, deterministic=True)[0], expected
    )


def test_zip_holds_safetensors_and_json_only(tmp_path):
    path = PPO("CartPole-v1", seed=0, **SMALL_PPO).save(tmp_path / "m")
    assert path == tmp_path / "m.zip"
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == ["metadata.json", "model.safetensors"]
        metadata = json.loads(archive.read("metadata.json"))
        data = archive.read("model.safetensors")
    assert metadata["algorithm"] == "ppo"
    assert metadata["tensors_sha256"] == hashlib.sha256(data).hexdigest()


def test_directories_stay_checkpoint_directories(tmp_path):
    agent = PPO("CartPole-v1", seed=0, **SMALL_PPO)
    (tmp_path / "existing").mkdir()
    assert agent.save(tmp_path / "existing") == tmp_path / "existing"
    agent.save(f"{tmp_path / 'slash'}/")
    for name in ("existing", "slash"):
        assert sorted(p.name for p in (tmp_path / name).iterdir()) == [
            "metadata.json",
            "model.safetensors",
        ]
        PPO.load(tmp_path / name)
    assert not list(tmp_path.glob("*.zip"))


def test_replay_buffer_travels_inside_the_zip(tmp_path):
    kwargs = {
        "learning_starts": 16,
        "batch_size": 16,
        "buffer_size": 256,
        "net_arch": [32],
        "seed": 0,
    }
    agent = SAC("rlrobot/CartPoleContinuous-v0", device="cpu", **kwargs)
    agent.learn(48)
    path = agent.save(tmp_path / "sac", include_replay_buffer=True)
    with zipfile.ZipFile(path) as archive:
        assert "replay_buffer.npz" in archive.namelist()
    loaded = SAC.load(path, env="rlrobot/CartPoleContinuous-v0")
    assert len(loaded.replay_buffer) == len(agent.replay_buffer) > 0
    for name, array in agent.replay_buffer.state_dict().items():
        np.testing.assert_array_equal(loaded.replay_buffer.state_dict()[name], array)
    loaded.env.close()
    agent.env.close()


# -- everything loaded is validated --------------------------------------------------------------
@pytest.fixture
def saved(tmp_path):
    agent = PPO("CartPole-v1", seed=0, **SMALL_PPO)
    return agent.save(tmp_path / "model")


def _rewrite(path: Path, members: dict[str, bytes], compression=zipfile.ZIP_STORED) -> None:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_tampered_weights_in_a_zip_are_refused(saved):
    members = _members(saved)
    weights = bytearray(members["model.safetensors"])
    weights[-1] ^= 0xFF
    _rewrite(saved, {**members, "model.safetensors": bytes(weights)})
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        PPO.load(saved)


def test_byte_flipped_zip_file_is_refused(saved):
    data = bytearray(saved.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the tensors: the zip's CRC no longer matches
    saved.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"not a valid zip|corrupt"):
        PPO.load(saved)


def test_truncated_zip_file_is_refused(saved):
    saved.write_bytes(saved.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="not a valid zip"):
        PPO.load(saved)


@pytest.mark.parametrize("name", ["evil.pkl", "../outside.json", "/abs/metadata.json"])
def test_unknown_or_escaping_members_are_refused(saved, name, tmp_path):
    _rewrite(saved, {**_members(saved), name: b"x"})
    with pytest.raises(CheckpointError, match="unexpected member"):
        PPO.load(saved)
    assert not (tmp_path.parent / "outside.json").exists()


def test_zip_bomb_is_refused_before_it_is_unpacked(saved):
    members = _members(saved)
    _rewrite(saved, {**members, "replay_buffer.npz": bytes(50_000_000)}, zipfile.ZIP_DEFLATED)
    with pytest.raises(CheckpointError, match="compression"):
        PPO.load(saved)


def test_planted_pickle_in_a_zip_is_refused_without_running(saved, tmp_path):
    marker = tmp_path / "payload_ran"
    members = _members(saved)
    payload = _torch_payload(marker)
    metadata = json.loads(members["metadata.json"])
    metadata["tensors_sha256"] = hashlib.sha256(payload).hexdigest()
    _rewrite(saved, {"model.safetensors": payload, "metadata.json": json.dumps(metadata).encode()})
    for loader in (PPO, BaseAgent):
        with pytest.raises(CheckpointError, match="corrupt"):
            loader.load(saved)
    assert not marker.exists()


def test_missing_checkpoint_names_both_forms(tmp_path):
    with pytest.raises(CheckpointError, match=r"does not exist \(nor nowhere\.zip\)"):
        PPO.load(tmp_path / "nowhere")


# -- custom_objects -----------------------------------------------------------------------------
@pytest.mark.parametrize("implementation", ["sb3", "rlrobot"])
def test_custom_objects_replace_saved_values(implementation, tmp_path):
    _make(implementation, **SMALL_PPO).save(tmp_path / "m")
    model = _load(implementation, tmp_path / "m", custom_objects={"learning_rate": 1e-3})
    source = model if implementation == "sb3" else model.config
    assert source.learning_rate == 1e-3


def test_custom_objects_use_sb3_names_and_refuse_unknown_keys(tmp_path):
    PPO("CartPole-v1", seed=0, **SMALL_PPO).save(tmp_path / "m")
    model = PPO.load(tmp_path / "m", custom_objects={"lr_schedule": 5e-4, "clip_range": 0.1})
    assert (model.config.learning_rate, model.config.clip_range) == (5e-4, 0.1)
    both = {"learning_rate": 1e-4, "lr_schedule": 5e-4}  # SB3 rebuilds lr_schedule on load
    assert PPO.load(tmp_path / "m", custom_objects=both).config.learning_rate == 1e-4
    with pytest.raises(ConfigError, match=r"custom_objects key 'clip_rnge'.*clip_range"):
        PPO.load(tmp_path / "m", custom_objects={"clip_rnge": 0.1})
    with pytest.raises(ConfigError, match="given as a keyword"):
        PPO.load(tmp_path / "m", custom_objects={"gamma": 0.9}, gamma=0.95)


# -- SB3 zips are imported without unpickling ------------------------------------------------
@pytest.fixture(scope="module")
def sb3_models(tmp_path_factory):
    """Trained SB3 models saved with SB3's own ``save``."""
    root = tmp_path_factory.mktemp("sb3")
    sb3.PPO("MlpPolicy", "CartPole-v1", seed=0).learn(2000).save(root / "ppo")
    sb3.PPO("MlpPolicy", "Pendulum-v1", n_steps=256, seed=0).learn(512).save(root / "ppo_box")
    relu = {"activation_fn": torch.nn.ReLU, "net_arch": [32]}
    sb3.A2C("MlpPolicy", "CartPole-v1", policy_kwargs=relu, seed=0).learn(500).save(root / "a2c")
    for name, cls in (("sac", sb3.SAC), ("td3", sb3.TD3)):
        # A new policy_kwargs each: SB3's SAC adds keys to the dict it is given.
        small = {"learning_starts": 50, "policy_kwargs": {"net_arch": [32, 32]}, "seed": 0}
        cls("MlpPolicy", "Pendulum-v1", **small).learn(300).save(root / name)
    sb3.DQN("MlpPolicy", "CartPole-v1", seed=0).save(root / "dqn")
    return root


@pytest.mark.parametrize(
    ("name", "ours", "theirs", "env_id"),
    [
        ("ppo", PPO, sb3.PPO, "CartPole-v1"),
        ("ppo_box", PPO, sb3.PPO, "Pendulum-v1"),
        ("a2c", A2C, sb3.A2C, "CartPole-v1"),
        ("sac", SAC, sb3.SAC, "Pendulum-v1"),
        ("td3", TD3, sb3.TD3, "Pendulum-v1"),
    ],
)
def test_sb3_zip_import_acts_like_sb3(name, ours, theirs, env_id, sb3_models):
    path = sb3_models / f"{name}.zip"
    imported, original = ours.load(path), theirs.load(path, device="cpu")
    observations = _observations(env_id)
    actions, _ = imported.predict(observations, deterministic=True)
    expected, _ = original.predict(observations, deterministic=True)
    np.testing.assert_allclose(actions, expected, rtol=0, atol=1e-5)
    assert imported.config.gamma == original.gamma
    assert imported.config.learning_rate == original.learning_rate
    for field in ("n_steps", "tau", "learning_starts"):
        if hasattr(original, field):
            assert getattr(imported.config, field) == getattr(original, field)


def test_sb3_off_policy_import_holds_critics_and_entropy(sb3_models):
    path = sb3_models / "sac.zip"
    imported, original = SAC.load(path), sb3.SAC.load(path, device="cpu")
    observations = torch.as_tensor(_observations("Pendulum-v1", 20))
    actions = torch.rand(20, 1) * 2 - 1  # both critics read actions scaled to [-1, 1]
    with torch.no_grad():
        for ours, theirs in (
            (imported.critic, original.critic),
            (imported.critic_target, original.critic_target),
        ):
            expected = torch.cat(theirs(observations, actions), dim=1).T
            torch.testing.assert_close(ours(observations, actions), expected)
    torch.testing.assert_close(
        imported.entropy.state_dict()["log_ent_coef"], original.log_ent_coef.detach()[0]
    )


def test_sb3_zip_import_keeps_its_architecture_and_trains_on(sb3_models):
    imported = BaseAgent.load(sb3_models / "a2c", env="CartPole-v1")  # "m" means "m.zip"
    assert isinstance(imported, A2C)
    assert (imported.config.net_arch, imported.config.activation) == ((32,), "relu")
    imported.learn(50)
    assert imported.num_timesteps == 50
    imported.env.close()


def test_sb3_zip_of_another_algorithm_or_policy_is_refused(sb3_models):
    with pytest.raises(CheckpointError, match="Stable-Baselines3 PPO model, not A2C"):
        A2C.load(sb3_models / "ppo.zip")
    with pytest.raises(CheckpointError, match=r"DQNPolicy.*only PPO, A2C, SAC and TD3.*convert"):
        BaseAgent.load(sb3_models / "dqn.zip")
    with pytest.raises(CheckpointError, match="Stable-Baselines3 SAC model, not TD3"):
        TD3.load(sb3_models / "sac.zip")
    with pytest.raises(CheckpointError, match="observation space"):
        PPO.load(sb3_models / "ppo.zip", env="Pendulum-v1")


def test_sb3_zip_with_a_pickle_payload_is_refused_without_running(sb3_models, tmp_path):
    marker = tmp_path / "payload_ran"
    path = tmp_path / "planted.zip"
    _rewrite(path, {**_members(sb3_models / "ppo.zip"), "policy.pth": _torch_payload(marker)})
    with pytest.raises(CheckpointError, match="damaged Stable-Baselines3 zip"):
        PPO.load(path)
    assert not marker.exists()
    # The pickled parts of ``data`` are never decoded: a payload there changes nothing.
    members = _members(sb3_models / "ppo.zip")
    data = json.loads(members["data"])
    data["policy_class"][":serialized:"] = pickle.dumps(Payload(marker)).hex()
    _rewrite(path, {**members, "data": json.dumps(data).encode()})
    PPO.load(path)
    assert not marker.exists()


def test_an_sb3_replay_buffer_pickle_is_refused_naming_it(tmp_path):
    sb3.SAC("MlpPolicy", "Pendulum-v1", buffer_size=100).save_replay_buffer(tmp_path / "buffer")
    agent = SAC("Pendulum-v1", buffer_size=100)
    for path in (tmp_path / "buffer.pkl", tmp_path / "buffer"):  # SB3 adds .pkl, as we .npz
        with pytest.raises(CheckpointError, match=r"replay buffer is a pickle.*never unpickles"):
            agent.load_replay_buffer(path)
    agent.env.close()
