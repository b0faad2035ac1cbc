"""Exported policies (ONNX, TorchScript) act as ``agent.predict(obs, deterministic=True)``.

Untrained agents with perturbed weights and normalisation statistics set from the recorded
observations are exported; a subprocess that imports neither rlrobot nor (for ONNX) torch
runs the files on 1,000 observations recorded in the env with random actions.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import onnx
import pytest
import torch

from rlrobot.agents import A2C, PPO, REINFORCE, SAC, TD3
from rlrobot.benchmark.studies import export_latency
from rlrobot.cli import main
from rlrobot.errors import CommandError
from rlrobot.perception.models import ModelSpec, make_encoder
from rlrobot.run.export import OnnxPolicy, export_policy, metadata_path

RUNNER = Path(__file__).with_name("deployed_policy_runner.py")
N_OBSERVATIONS = 1000
PIXELS = {"obs_mode": "pixels", "pixels_width": 36, "pixels_height": 36}
# name: (agent class, env id, env kwargs, agent keywords)
CASES = {
    "ppo-state": (PPO, "Pendulum-v1", {}, {"normalize_observations": True}),
    "sac-state": (SAC, "Pendulum-v1", {}, {"normalize_observations": True}),
    "td3-state": (TD3, "Pendulum-v1", {}, {"normalize_observations": True}),
    "reinforce-state": (REINFORCE, "Pendulum-v1", {}, {}),
    "a2c-discrete": (A2C, "rlrobot/CartPole-v0", {}, {"normalize_observations": True}),
    "ppo-pixels": (PPO, "rlrobot/CartPoleContinuous-v0", PIXELS, {}),
    "sac-pixels": (SAC, "rlrobot/CartPoleContinuous-v0", PIXELS, {}),
    "td3-pixels": (TD3, "rlrobot/CartPoleContinuous-v0", PIXELS, {}),
    # A perception encoder (spatial softmax over CoordConv maps) in place of NatureCNN.
    "sac-pixels-encoder": (
        SAC,
        "rlrobot/CartPoleContinuous-v0",
        PIXELS,
        {"image_encoder": ModelSpec("spatial_softmax_cnn", "regression", (36, 36, 3), 1, 32)},
    ),
    "sac-goal": (SAC, "rlrobot/Reach-v0", {}, {"normalize_observations": True}),
    "ppo-dict-pixels": (
        PPO,
        "rlrobot/CartPoleContinuous-v0",
        {**PIXELS, "obs_mode": "state+pixels"},
        {"normalize_observations": True},
    ),
}


def record_observations(env_id, env_kwargs, n):
    """Return ``n`` observations of random-action episodes, as ``{input name: batch}``."""
    recorded = export_latency.record_observations(env_id, env_kwargs, n)
    if isinstance(recorded[0], dict):
        return {key: np.stack([o[key] for o in recorded]) for key in sorted(recorded[0])}
    return {"observation": np.stack(recorded)}


def make_agent(case, observations):
    """Build the case's agent: weights perturbed (so actions reach the bounds), statistics set."""
    agent_class, env_id, env_kwargs, keywords = CASES[case]
    if "image_encoder" in keywords:
        keywords = {**keywords, "image_encoder": make_encoder(keywords["image_encoder"])}
    agent = agent_class(env_id, env_kwargs=env_kwargs, seed=0, device="cpu", **keywords)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in agent.modules().values():
            for parameter in module.parameters():
                fan_in = parameter[0].numel() if parameter.dim() > 1 else parameter.numel()
                noise = torch.randn(parameter.shape, generator=generator)
                parameter.add_(1.5 * noise / fan_in**0.5)
    if agent.obs_normalizer is not None:
        dict_space = isinstance(agent.observation_space, gym.spaces.Dict)
        agent.obs_normalizer.update(observations if dict_space else observations["observation"])
    return agent


def run_deployed(export_format, entries, tmp_path):
    """Run the standalone runner on manifest ``entries``; return its stdout."""
    manifest = tmp_path / f"{export_format}_manifest.json"
    manifest.write_text(json.dumps(entries))
    process = subprocess.run(
        [sys.executable, str(RUNNER), export_format, str(manifest)],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 0, process.stdout + process.stderr
    return process.stdout


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """Export every case in both formats, run them outside rlrobot; return what to compare."""
    torch.set_num_threads(1)
    tmp_path = tmp_path_factory.mktemp("export")
    recordings, results, entries = {}, {}, {"onnx": [], "torchscript": []}
    for case, (_, env_id, env_kwargs, _) in CASES.items():
        key = (env_id, json.dumps(env_kwargs))
        if key not in recordings:
            recordings[key] = record_observations(env_id, env_kwargs, N_OBSERVATIONS)
        observations = recordings[key]
        agent = make_agent(case, observations)
        given = observations if len(observations) > 1 else observations["observation"]
        expected = agent.predict(given, deterministic=True)[0]
        np.savez(tmp_path / f"{case}_obs.npz", **observations)
        modes = [module.training for module in agent.modules().values()]
        for export_format, suffix in (("onnx", ".onnx"), ("torchscript", ".pt")):
            model = export_policy(agent, tmp_path / f"{case}{suffix}", export_format)
            entries[export_format].append(
                {
                    "model": str(model),
                    "observations": str(tmp_path / f"{case}_obs.npz"),
                    "out": str(tmp_path / f"{case}_{export_format}_actions.npz"),
                }
            )
        # Exporting leaves the agent as it was.
        assert np.array_equal(agent.predict(given, deterministic=True)[0], expected)
        assert [module.training for module in agent.modules().values()] == modes
        results[case] = (agent, expected)
    imported = {fmt: run_deployed(fmt, entries[fmt], tmp_path) for fmt in entries}
    return tmp_path, results, imported


@pytest.mark.parametrize("export_format", ["onnx", "torchscript"])
@pytest.mark.parametrize("case", list(CASES))
def test_exported_policy_acts_as_predict_without_rlrobot(deployed, case, export_format):
    tmp_path, results, imported = deployed
    agent, expected = results[case]
    with np.load(tmp_path / f"{case}_{export_format}_actions.npz") as actions:
        batch, single = actions["batch"], actions["single"]
    assert batch.shape == expected.shape == (N_OBSERVATIONS, *agent.action_space.shape)
    assert batch.dtype == expected.dtype
    assert np.abs(batch - expected).max() <= 1e-5
    assert np.abs(single - expected[:8]).max() <= 1e-5
    if isinstance(agent.action_space, gym.spaces.Box):
        assert expected.std(axis=0).max() > 1e-3  # the actions depend on the observations
        if case == "ppo-state":  # some Gaussian means lie beyond the bounds: the clip works
            assert np.isclose(np.abs(expected), agent.action_space.high).any()
    else:
        assert set(np.unique(expected)) == {0, 1}
    assert "onnxruntime" in imported["onnx"] and "torch" not in imported["onnx"]


def test_description_lists_inputs_spaces_and_normalized_keys(deployed):
    tmp_path, _, _ = deployed
    onnx.checker.check_model(str(tmp_path / "ppo-dict-pixels.onnx"), full_check=True)
    description = json.loads(metadata_path(tmp_path / "ppo-dict-pixels.onnx").read_text())
    assert description["algo"] == "ppo" and description["format"] == "onnx"
    assert description["inputs"] == [
        {"name": "pixels", "shape": [None, 36, 36, 3], "dtype": "uint8"},
        {"name": "state", "shape": [None, 4], "dtype": "float32"},
    ]
    # The image passes through unnormalised (the CNN scales it), as predict does.
    assert description["normalized_inputs"] == ["state"]
    pixels = description["observation_space"]["spaces"]["pixels"]
    assert (pixels["low"], pixels["high"]) == (0.0, 255.0)
    assert description["output"] == {"name": "action", "shape": [None, 1], "dtype": "float32"}
    state = json.loads(metadata_path(tmp_path / "sac-state.pt").read_text())
    assert state["action_space"] == {
        "type": "Box",
        "shape": [1],
        "dtype": "float32",
        "low": -2.0,
        "high": 2.0,
    }
    assert state["normalized_inputs"] == ["observation"]


TINY_SAC = [
    "--env",
    "rlrobot/CartPoleContinuous-v0",
    "--algo",
    "sac",
    "--steps",
    "200",
    "--set",
    "learning_starts=100",
    "--set",
    "eval_freq=200",
    "--set",
    "eval_episodes=1",
    "--set",
    "env_kwargs.max_episode_steps=20",
    "--no-progress",
]


def test_export_and_eval_onnx_commands(tmp_path, capsys):
    torch.set_num_threads(1)
    run = tmp_path / "run"
    assert main(["train", *TINY_SAC, "--out", str(run)]) == 0
    assert main(["export", str(run)]) == 0
    assert main(["export", str(run), "--format", "torchscript", "--checkpoint", "best"]) == 0
    assert (run / "policy.onnx").is_file() and (run / "policy.pt").is_file()
    description = json.loads((run / "policy.pt.json").read_text())
    assert description["env_id"] == "rlrobot/CartPoleContinuous-v0"
    assert description["checkpoint"] == "best" and description["num_timesteps"] == 200
    capsys.readouterr()
    assert main(["eval", str(run), "--episodes", "2", "--deterministic", "--no-progress"]) == 0
    agent_output = capsys.readouterr().out
    onnx = str(run / "policy.onnx")
    assert main(["eval", "--onnx", onnx, "--episodes", "2", "--no-progress"]) == 0
    onnx_output = capsys.readouterr().out
    # Same episodes, same actions: the same summary line.
    assert agent_output.splitlines()[1] == onnx_output.splitlines()[1]
    summary = json.loads(Path(onnx + ".eval.json").read_text())
    agent_summary = json.loads((run / "eval.json").read_text())
    assert summary["returns"] == pytest.approx(agent_summary["returns"], abs=1e-4)
    assert summary["env"] == "rlrobot/CartPoleContinuous-v0" and summary["n_episodes"] == 2


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["eval", "--env", "rlrobot/CartPole-v0"], "--env applies only with --onnx"),
        (["eval", "--onnx", "missing.onnx"], "no exported policy at missing.onnx"),
        (["eval"], "eval needs RUN_DIR, or --onnx FILE"),
        (["eval", "RUN", "--onnx", "x.onnx"], "give RUN_DIR or --onnx FILE, not both"),
        (["eval", "--onnx", "x.onnx", "--checkpoint", "best"], "--checkpoint best applies to"),
    ],
)
def test_eval_onnx_mistakes_are_one_line_errors(arguments, message, tmp_path, capsys):
    previous = Path.cwd()
    os.chdir(tmp_path)
    try:
        assert main(arguments) != 0
    finally:
        os.chdir(previous)
    assert message in capsys.readouterr().err


def test_eval_onnx_refuses_an_env_with_other_spaces(deployed, capsys):
    tmp_path, _, _ = deployed
    onnx = tmp_path / "sac-state.onnx"
    arguments = ["eval", "--onnx", str(onnx), "--env", "rlrobot/CartPoleContinuous-v0"]
    assert main([*arguments, "--out", str(tmp_path / "e.json")]) != 0
    assert "differs from the exported policy's" in capsys.readouterr().err
    scripted = tmp_path / "sac-state.pt"
    assert main(["eval", "--onnx", str(scripted), "--out", str(tmp_path / "e.json")]) != 0
    assert "is a torchscript export, not ONNX" in capsys.readouterr().err
    damaged = tmp_path / "damaged.onnx"
    damaged.write_bytes(b"not a model")
    metadata_path(damaged).write_text(metadata_path(onnx).read_text())
    assert main(["eval", "--onnx", str(damaged), "--out", str(tmp_path / "e.json")]) != 0
    assert "ONNX Runtime cannot load" in capsys.readouterr().err


def test_discrete_start_and_float64_observations(tmp_path):
    import onnxruntime

    torch.set_num_threads(1)
    observation_space = gym.spaces.Box(-5.0, 5.0, (4,), dtype=np.float64)
    agent = A2C(
        observation_space=observation_space,
        action_space=gym.spaces.Discrete(3, start=-1),
        normalize_observations=True,
        seed=0,
        device="cpu",
    )
    observations = np.random.default_rng(0).normal(size=(200, 4))
    agent.obs_normalizer.update(observations + 0.5)
    with torch.no_grad():
        agent.policy.action_head.logits.weight.normal_(0.0, 10.0)  # every action gets its turn
    expected = agent.predict(observations, deterministic=True)[0]
    assert set(expected) == {-1, 0, 1}
    path = export_policy(agent, tmp_path / "policy.onnx")
    description = json.loads(metadata_path(path).read_text())
    assert description["inputs"] == [
        {"name": "observation", "shape": [None, 4], "dtype": "float64"}
    ]
    assert description["action_space"] == {
        "type": "Discrete",
        "n": 3,
        "start": -1,
        "dtype": "int64",
    }
    assert description["env_id"] is None  # a predict-only agent: eval --onnx needs --env
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(session.run(None, {"observation": observations})[0], expected)


def test_a_missing_extra_is_named(tmp_path, monkeypatch):
    agent = PPO(
        observation_space=gym.spaces.Box(-1.0, 1.0, (3,)),
        action_space=gym.spaces.Box(-1.0, 1.0, (2,)),
        device="cpu",
    )
    monkeypatch.setitem(sys.modules, "onnx", None)  # an import of it then fails, as if missing
    with pytest.raises(CommandError, match="exporting to ONNX needs onnx: pip install 'rlrobot"):
        export_policy(agent, tmp_path / "policy.onnx")
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(CommandError, match="running an ONNX policy needs onnxruntime"):
        OnnxPolicy(tmp_path / "policy.onnx")


def readme_robot_snippet() -> str:
    """Return README's robot-side ONNX snippet (a ```py block: it needs an exported file)."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    blocks = re.findall(r"```py\n(.*?)```", readme, flags=re.DOTALL)
    (snippet,) = [block for block in blocks if "onnxruntime.InferenceSession" in block]
    return snippet


@pytest.mark.parametrize("case", ["sac-state", "ppo-dict-pixels"])
def test_readme_robot_snippet_acts_as_predict(deployed, case, tmp_path, monkeypatch):
    exported, results, _ = deployed
    _, expected = results[case]
    monkeypatch.chdir(tmp_path)
    shutil.copy(exported / f"{case}.onnx", "policy.onnx")
    shutil.copy(metadata_path(exported / f"{case}.onnx"), "policy.onnx.json")
    namespace: dict = {}
    exec(compile(readme_robot_snippet(), "README.md robot-side snippet", "exec"), namespace)
    with np.load(exported / f"{case}_obs.npz") as recorded:
        observations = {key: recorded[key] for key in recorded.files}
    for index in (0, 7, 500):
        one = {key: batch[index] for key, batch in observations.items()}
        observation = one if len(one) > 1 else one["observation"]
        assert np.abs(namespace["act"](observation) - expected[index]).max() <= 1e-5
