"""``rlrobot demo`` (``make demo``): the whole workflow on PPO and CartPole in about a minute.

Trains PPO with the tuned ``rlrobot/configs/ppo.yaml`` entry for ``rlrobot/CartPole-v0``,
evaluates the final agent, records a rollout GIF of four episodes and plots the learning curve,
all into one run folder, and says what it wrote and which commands do each step by hand.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from rlrobot.common.evaluation import evaluate_policy
from rlrobot.common.files import atomic_write_bytes
from rlrobot.run.config import resolve_config
from rlrobot.run.evaluation import format_summary, load_run_agent, make_env
from rlrobot.run.recording import record_episodes, tile_episodes, write_video
from rlrobot.run.training import train

DEMO_ENV = "rlrobot/CartPole-v0"
DEMO_ALGO = "ppo"
DEMO_STEPS = 40_960
DEMO_SETTINGS = [
    "eval_freq=8192",
    "eval_episodes=5",
    "checkpoint_freq=20480",
]


def free_run_dir(base: str | os.PathLike = "runs/demo") -> Path:
    """Return ``base``, or ``base-2``, ``base-3`` … if it is taken (never overwrite a run)."""
    base = Path(base)
    candidate, number = base, 1
    while candidate.exists():
        number += 1
        candidate = base.with_name(f"{base.name}-{number}")
    return candidate


def demo(out: str | os.PathLike | None = None, steps: int | None = None, seed: int = 0) -> Path:
    """Train, evaluate, record and plot into one run folder; print what happened.

    Args:
        out: Run folder (default: the first free of ``runs/demo``, ``runs/demo-2`` …).
        steps: Env steps to train for (default ``DEMO_STEPS``).
        seed: Seed of the run.

    Returns:
        The run folder.
    """
    started = time.perf_counter()
    out = Path(out) if out is not None else free_run_dir()
    resolved = resolve_config(
        DEMO_ALGO,
        DEMO_ENV,
        seed,
        overrides=DEMO_SETTINGS,
        explicit={"n_timesteps": steps or DEMO_STEPS},
    )
    print(
        f"rlrobot demo: training {DEMO_ALGO} on {DEMO_ENV} for {resolved.run.n_timesteps:,} "
        f"steps with {resolved.run.n_envs} envs (seed {seed}) into {out}/"
    )
    folder = train(resolved, out)
    train_seconds = time.perf_counter() - started

    agent, resolved, folder = load_run_agent(folder.path, "latest")
    env = make_env(resolved)
    try:
        result = evaluate_policy(agent, env, n_episodes=10, deterministic=True, seed=seed)
    finally:
        env.close()
    summary = result.summary()
    text = json.dumps({"deterministic": True, **summary}, indent=2) + "\n"
    atomic_write_bytes(folder.eval_path, text.encode())
    print(f"evaluation (10 episodes, deterministic): {format_summary(summary)}")

    episodes, fps = record_episodes(
        agent, resolved, n_episodes=4, deterministic=True, seed=seed, size=240, frame_skip=2
    )
    gif_path = folder.path / "rollout.gif"
    write_video(gif_path, tile_episodes([episode.frames for episode in episodes]), fps)

    total_seconds = time.perf_counter() - started
    print(
        f"\ndone in {total_seconds:.0f} s (training {train_seconds:.0f} s). The run folder "
        f"{folder.path}/ holds:\n"
        f"  config.yaml          the resolved hyperparameters\n"
        f"  progress.csv         training log (also TensorBoard: tensorboard --logdir {out})\n"
        f"  evaluations.csv      periodic evaluations\n"
        f"  latest/ best/        checkpoints (weights + JSON metadata), checkpoints/step_*/\n"
        f"  learning_curve.png   return against env steps\n"
        f"  eval.json            the final evaluation\n"
        f"  {gif_path.name:<20} four episodes of the trained agent\n"
        f"\nthe same by hand:\n"
        f"  rlrobot train --env {DEMO_ENV} --algo {DEMO_ALGO} --seed {seed} "
        f"--steps {resolved.run.n_timesteps} --out {out}\n"
        f"  rlrobot eval {out} --episodes 10 --deterministic\n"
        f"  rlrobot record {out} --episodes 4 --deterministic --size 240 --frame-skip 2\n"
        f"  rlrobot plot {out}"
    )
    return folder.path
