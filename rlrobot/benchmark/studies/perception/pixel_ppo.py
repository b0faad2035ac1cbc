"""Part 3 of the perception study: PPO on pixel Reach, pretrained frozen encoder vs scratch.

The agent sees the 84×84 image and its end-effector position (``achieved_goal``), not the
target; its CNN is the pretrained NatureCNN of part 1a (frozen) or a NatureCNN learned from
scratch; an agent given the true target (``state_oracle``) is the ceiling. Return and success
per rollout against env steps, for every seed, and a final deterministic evaluation.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlrobot.agents import PPO
from rlrobot.benchmark.studies.perception import cached
from rlrobot.common.evaluation import evaluate_policy
from rlrobot.perception.models import load_encoder

PPO_SETTINGS = {
    "n_envs": 4,
    "n_steps": 256,
    "batch_size": 128,
    "n_epochs": 4,
    "gamma": 0.95,
    "gae_lambda": 0.95,
    "learning_rate": 7e-4,
    "log_std_init": -0.5,
}


def make_pixel_reach() -> gym.Env:
    """Reach seen through its 84×84 camera plus the end-effector position, not the target."""
    env = gym.make("rlrobot/Reach-v0", obs_mode="pixels")
    return gym.wrappers.FilterObservation(env, ["achieved_goal", "pixels"])


def make_oracle_reach() -> gym.Env:
    """Reach with the true target position instead of the image: the ceiling for study 3."""
    env = gym.make("rlrobot/Reach-v0")
    return gym.wrappers.FilterObservation(env, ["achieved_goal", "desired_goal"])


def train_pixel_ppo(
    condition: str, seed: int, steps: int, encoder_path: str, eval_episodes: int
) -> dict[str, Any]:
    """Train PPO on pixel Reach with one encoder condition; return curves and a final eval."""
    torch.manual_seed(seed)
    make_env = make_oracle_reach if condition == "state_oracle" else make_pixel_reach
    keywords: dict[str, Any] = {}
    if condition.startswith("pretrained"):
        space = make_pixel_reach().observation_space
        keywords = {
            "image_encoder": load_encoder(encoder_path, space),
            "freeze_encoder": condition == "pretrained_frozen",
        }
    agent = PPO(make_env, seed=seed, device="cpu", **PPO_SETTINGS, **keywords)
    curve: list[dict[str, float]] = []
    seen = 0

    def record(agent: PPO) -> None:
        nonlocal seen
        tracker = agent.episode_tracker
        new = tracker.n_episodes - seen
        seen = tracker.n_episodes
        if new > 0:
            returns = list(tracker.recent_returns)[-new:]
            successes = list(tracker.recent_successes)[-new:]
            curve.append(
                {
                    "steps": agent.num_timesteps,
                    "return": float(np.mean(returns)),
                    "success": float(np.mean(successes)) if successes else float("nan"),
                }
            )

    started = time.perf_counter()
    agent.learn(steps, callback=record)
    train_s = time.perf_counter() - started
    env = make_env()
    evaluation = evaluate_policy(agent, env, eval_episodes, seed=10_000).summary()
    env.close()
    agent.env.close()
    return {
        "condition": condition,
        "seed": seed,
        "curve": curve,
        "eval_return": evaluation["mean_reward"],
        "eval_success": evaluation["success_rate"],
        "train_s": train_s,
        "steps_per_s": steps / train_s,
    }


def run_pixel_ppo(
    budget: dict[str, Any], out: Path, work: Path, encoder_path: str
) -> dict[str, Any]:
    """Study 3 (``cached``): PPO with the pretrained frozen encoder vs a CNN from scratch."""
    result = cached(
        work / "ppo" / "bench_ppo.json",
        lambda: pixel_ppo(budget, encoder_path),
    )
    plot_ppo(result["runs"], out / "perception_pixel_ppo.png")
    return result


def pixel_ppo(budget: dict[str, Any], encoder_path: str) -> dict[str, Any]:
    """Train every condition × seed of study 3; return the runs and settings."""
    runs = []
    for condition in ("pretrained_frozen", "scratch", "state_oracle"):
        for seed in range(budget["ppo_seeds"]):
            run = train_pixel_ppo(
                condition, seed, budget["ppo_steps"], encoder_path, budget["eval_episodes"]
            )
            print(
                f"[ppo] {condition} seed {seed}: eval return {run['eval_return']:.2f}, "
                f"success {run['eval_success']:.2f}, {run['steps_per_s']:.0f} steps/s",
                flush=True,
            )
            runs.append(run)
    return {
        "runs": runs,
        "settings": PPO_SETTINGS,
        "steps": budget["ppo_steps"],
        "eval_episodes": budget["eval_episodes"],
    }


def plot_ppo(runs: list[dict[str, Any]], path: Path) -> None:
    """Mean (line) and per-seed range (band) of return and success rate against env steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for condition in dict.fromkeys(run["condition"] for run in runs):
        curves = [run["curve"] for run in runs if run["condition"] == condition]
        length = min(len(curve) for curve in curves)
        if length == 0:
            continue
        steps = [point["steps"] for point in curves[0][:length]]
        for axis, key in zip(axes, ("return", "success"), strict=True):
            values = np.array([[point[key] for point in curve[:length]] for curve in curves])
            mean = np.nanmean(values, axis=0)
            axis.plot(steps, mean, marker="o", label=f"{condition} ({len(curves)} seeds)")
            axis.fill_between(
                steps, np.nanmin(values, axis=0), np.nanmax(values, axis=0), alpha=0.2
            )
    axes[0].set(
        xlabel="env steps", ylabel="episode return (−Σ distance, m)", title="Pixel Reach: return"
    )
    axes[1].set(
        xlabel="env steps", ylabel="success rate", title="Pixel Reach: success", ylim=(-0.02, 1.02)
    )
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
