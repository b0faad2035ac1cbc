"""Export latency study: one observation in, one action out, on one CPU thread →
``export_latency.md`` and ``export_latency.json``.

For a state MLP policy (SAC on Reach, ``Dict`` goal observations, normalised) and a pixel CNN
policy (PPO with ``NatureCNN`` on 84×84 CartPole frames), four ways to act on one observation:
``agent.predict`` (PyTorch eager, with its checks and NumPy conversions), the bare
``DeployablePolicy`` module (eager, tensors in and out), the exported TorchScript file
(``torch.jit.load``) and the exported ONNX file (ONNX Runtime, one intra-op thread). Each call
includes turning the NumPy observation into the runtime's input, as a robot's loop does.

The runtimes are measured side by side: rounds of ``BLOCK`` calls each, the order rotating
every round, so that a change in the machine's load reaches them all alike; the report gives
the median and 90th percentile of the single-call times and the speed-up over eager. The
policies are untrained (latency does not depend on the weights), their normalisation
statistics set from recorded observations.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlrobot.agents import PPO, SAC
from rlrobot.benchmark.report import markdown_table, write_keeping_findings
from rlrobot.benchmark.studies import StudyOptions
from rlrobot.run.export import (
    DEPRECATION_MESSAGES,
    DeployablePolicy,
    OnnxPolicy,
    example_inputs,
    export_policy,
    input_names,
)

# name: (what it is, agent class, env id, env kwargs, agent keywords, calls per runtime)
POLICIES: dict[str, tuple[str, type, str, dict[str, Any], dict[str, Any], int]] = {
    "state MLP": (
        "SAC actor 256×256 on rlrobot/Reach-v0 (Dict goal observation, normalised)",
        SAC,
        "rlrobot/Reach-v0",
        {},
        {"normalize_observations": True},
        4000,
    ),
    "pixel CNN": (
        "PPO NatureCNN + 64×64 on rlrobot/CartPoleContinuous-v0, 84×84 RGB frames",
        PPO,
        "rlrobot/CartPoleContinuous-v0",
        {"obs_mode": "pixels"},
        {},
        1000,
    ),
}
QUICK_CALLS = 40
BLOCK = 20  # calls of one runtime in a row before the next one's turn
N_RECORDED = 64  # observations cycled through (real ones: branches and caches see real data)


def record_observations(env_id: str, env_kwargs: dict[str, Any], n: int) -> list[Any]:
    """Return ``n`` observations of a random-action run of the env."""
    env = gym.make(env_id, **env_kwargs)
    env.action_space.seed(0)
    observation, _ = env.reset(seed=0)
    recorded = []
    for _ in range(n):
        recorded.append(observation)
        observation, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            observation, _ = env.reset()
    env.close()
    return recorded


def make_runtimes(agent: Any, folder: Path) -> dict[str, Callable[[Any], Any]]:
    """Return, per runtime, ``act(observation) -> action`` for one unbatched observation."""
    names = input_names(agent.observation_space)
    module = DeployablePolicy(agent).eval()
    # The module export_policy writes as TorchScript, traced here in memory: the package never
    # loads a TorchScript file (tests/reliability/test_security.py).
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", DEPRECATION_MESSAGES)
        inputs = example_inputs(agent.observation_space, batch=1)
        scripted = torch.jit.freeze(torch.jit.trace(module, inputs, check_trace=False))
    onnx = OnnxPolicy(export_policy(agent, folder / "policy.onnx", "onnx"), threads=1)

    def tensors(observation: Any) -> list[torch.Tensor]:
        values = observation if isinstance(observation, dict) else {"observation": observation}
        return [torch.from_numpy(np.asarray(values[name])[None]) for name in names]

    def run_module(observation: Any) -> Any:
        with torch.inference_mode():
            return module(*tensors(observation))[0].numpy()

    def run_scripted(observation: Any) -> Any:
        with torch.inference_mode():
            return scripted(*tensors(observation))[0].numpy()

    return {
        "predict (eager)": lambda observation: agent.predict(observation, deterministic=True)[0],
        "module (eager)": run_module,
        "TorchScript": run_scripted,
        "ONNX Runtime": lambda observation: onnx.predict(observation)[0],
    }


def time_side_by_side(
    runtimes: dict[str, Callable[[Any], Any]], observations: list[Any], calls: int
) -> dict[str, list[float]]:
    """Return each runtime's single-call times (µs), measured in rotating rounds."""
    times: dict[str, list[float]] = {name: [] for name in runtimes}
    order = list(runtimes)
    for name in order:  # warm-up: first-call allocations and lazy initialisation
        for observation in observations[:BLOCK]:
            runtimes[name](observation)
    done = 0
    while done < calls:
        block = min(BLOCK, calls - done)
        for name in order:
            act = runtimes[name]
            for i in range(done, done + block):
                observation = observations[i % len(observations)]
                start = time.perf_counter_ns()
                act(observation)
                times[name].append((time.perf_counter_ns() - start) / 1e3)
        order = order[1:] + order[:1]
        done += block
    return times


def bench_policy(name: str, calls: int, seed: int) -> dict[str, Any]:
    """Measure one policy of ``POLICIES`` with every runtime; return its results."""
    description, agent_class, env_id, env_kwargs, keywords, _ = POLICIES[name]
    observations = record_observations(env_id, env_kwargs, N_RECORDED)
    env = gym.make(env_id, **env_kwargs)
    agent = agent_class(
        observation_space=env.observation_space,
        action_space=env.action_space,
        seed=seed,
        device="cpu",
        **keywords,
    )
    env.close()
    if agent.obs_normalizer is not None:
        first = observations[0]
        agent.obs_normalizer.update(
            {key: np.stack([o[key] for o in observations]) for key in first}
            if isinstance(first, dict)
            else np.stack(observations)
        )
    with tempfile.TemporaryDirectory() as folder:
        runtimes = make_runtimes(agent, Path(folder))
        expected = [agent.predict(o, deterministic=True)[0] for o in observations]
        largest_difference = max(
            float(np.abs(act(o) - e).max())
            for act in runtimes.values()
            for o, e in zip(observations, expected, strict=True)
        )
        times = time_side_by_side(runtimes, observations, calls)
    medians = {runtime: statistics.median(values) for runtime, values in times.items()}
    return {
        "description": description,
        "calls": calls,
        "max_abs_action_difference": largest_difference,
        "runtimes": {
            runtime: {
                "median_us": medians[runtime],
                "p90_us": float(np.percentile(values, 90)),
                "speedup_vs_predict": medians["predict (eager)"] / medians[runtime],
                "speedup_vs_module": medians["module (eager)"] / medians[runtime],
            }
            for runtime, values in times.items()
        },
    }


def main(options: StudyOptions) -> Path:
    """Measure every policy on one thread; write ``export_latency.json`` and ``.md``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        policies = {}
        for name, (*_, calls) in POLICIES.items():
            calls = QUICK_CALLS if options.quick else max(1, round(calls * options.budget_scale))
            policies[name] = bench_policy(name, calls, options.seeds[0] if options.seeds else 0)
    finally:
        torch.set_num_threads(threads)
    results = {
        "command": options.command,
        "load": os.getloadavg()[0],
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "onnxruntime": importlib.metadata.version("onnxruntime"),
        },
        "threads": 1,
        "policies": policies,
    }
    options.out_dir.mkdir(parents=True, exist_ok=True)
    (options.out_dir / "export_latency.json").write_text(json.dumps(results, indent=2) + "\n")
    return rewrite_report(options.out_dir)


def render_markdown(results: dict[str, Any]) -> str:
    """Return the generated part of ``export_latency.md``."""
    machine = results["machine"]
    lines = [
        "# Export latency: one observation, one action, one CPU thread",
        "",
        f"Written by `rlrobot bench --study export_latency`; last run `{results['command']}`. "
        f"Machine: {machine['cpus']} CPU cores shared with other jobs (load average "
        f"{results['load']:.1f} at the start), Python {machine['python']}, torch "
        f"{machine['torch']}, ONNX Runtime {machine['onnxruntime']}, 1 thread each. A call "
        "starts from the NumPy observation and ends with the NumPy action; the runtimes are "
        "timed side by side in rotating rounds of 20 calls, so the speed-ups compare like "
        "with like even where the load moves the absolute times. Speed-up: the eager median "
        "over the runtime's median (> 1: faster).",
        "",
    ]
    for name, policy in results["policies"].items():
        lines += [
            f"## {name}: {policy['description']}",
            "",
            f"{policy['calls']:,} calls per runtime; the largest action difference from "
            f"`predict` over the recorded observations: {policy['max_abs_action_difference']:.1e}.",
            "",
            *markdown_table(
                ["runtime", "median µs", "p90 µs", "speed-up vs predict", "vs eager module"],
                [
                    [
                        runtime,
                        f"{row['median_us']:.0f}",
                        f"{row['p90_us']:.0f}",
                        f"{row['speedup_vs_predict']:.2f}×",
                        f"{row['speedup_vs_module']:.2f}×",
                    ]
                    for runtime, row in policy["runtimes"].items()
                ],
                "lrrrr",
            ),
            "",
        ]
    return "\n".join(lines)


def rewrite_report(out_dir: Path) -> Path:
    """Rewrite ``out_dir/export_latency.md`` from ``export_latency.json``; return its path."""
    results = json.loads((out_dir / "export_latency.json").read_text())
    return write_keeping_findings(out_dir / "export_latency.md", render_markdown(results))
