"""`rlrobot envs` and `describe_envs()`: the listing of every env id."""

import json

import gymnasium as gym
import pytest

import rlrobot
from rlrobot.cli import main
from rlrobot.envs.listing import describe_envs


@pytest.fixture(scope="module")
def descriptions():
    return describe_envs()


def test_describe_envs_lists_every_id_with_its_spaces(descriptions):
    assert [d["id"] for d in descriptions] == rlrobot.ENV_IDS
    by_id = {d["id"]: d for d in descriptions}
    assert by_id["rlrobot/CartPole-v0"]["action_space"] == "Discrete(2)"
    assert by_id["rlrobot/CartPole-v0"]["observation_space"] == "Box(-inf, inf, (4,), float32)"
    assert by_id["rlrobot/Quadruped-v0"]["action_space"] == "Box(-1.0, 1.0, (8,), float32)"
    assert by_id["rlrobot/Navigate-v0"]["observation_space"] == (
        "Dict(achieved_goal: Box(-inf, inf, (2,), float32), "
        "desired_goal: Box(-inf, inf, (2,), float32), observation: Box(-inf, inf, (24,), float32))"
    )
    assert by_id["rlrobot/Quadruped-v0"]["max_episode_steps"] == 1000
    assert by_id["rlrobot/Push-v0"]["summary"].startswith("Push a cube to a goal")


def test_describe_envs_lists_every_option_with_a_default_gym_make_accepts(descriptions):
    for description in descriptions:
        options = description["options"]
        assert description["reward_modes"] == ["dense", "sparse", "delayed"]
        assert description["obs_modes"] == ["state", "pixels", "state+pixels"]
        assert {"reward_mode", "obs_mode", "randomization", "render_mode"} <= set(options)
        env = gym.make(description["id"], **options)  # every listed default is a valid keyword
        assert env.unwrapped.obs_mode == "state"
        env.close()
    by_id = {d["id"]: d for d in descriptions}
    assert by_id["rlrobot/CartPoleContinuous-v0"]["options"]["continuous"] is True
    assert by_id["rlrobot/CartPoleContinuous-v0"]["fixed_kwargs"] == {"continuous": True}
    assert by_id["rlrobot/Navigate-v0"]["options"]["n_rays"] == 16


def test_envs_command_prints_a_table_and_json(capsys):
    assert main(["envs"]) == 0
    table = capsys.readouterr().out
    assert all(env_id in table for env_id in rlrobot.ENV_IDS)
    assert "options:" not in table
    assert main(["envs", "--verbose"]) == 0
    assert "n_obstacles=4" in capsys.readouterr().out
    assert main(["envs", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [d["id"] for d in listed] == rlrobot.ENV_IDS
    assert listed[0]["options"]["randomization"] is None


def test_envs_gallery_writes_one_frame_per_env(tmp_path, capsys):
    from imageio.v2 import imread

    argv = ["envs", "--gallery", str(tmp_path), "--width", "32", "--height", "24", "--steps", "2"]
    assert main(argv) == 0
    names = sorted(path.stem for path in tmp_path.glob("*.png"))
    assert names == sorted(env_id.split("/")[-1].split("-v")[0] for env_id in rlrobot.ENV_IDS)
    assert imread(tmp_path / "Reach.png").shape == (24, 32, 3)
    assert "Reach.png" in capsys.readouterr().out
