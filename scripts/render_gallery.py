"""Render one frame per registered env to docs/gallery/<Name>.png (for the README gallery).

    python scripts/render_gallery.py [--out docs/gallery] [--width 320 --height 240]

Each env is reset with seed 0 and stepped with seeded random actions for `--steps` steps
before the frame is taken, so the robot is caught mid-motion.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np

import rlrobot


def render_frame(env_id: str, width: int, height: int, steps: int) -> np.ndarray:
    """An RGB frame, uint8 (height, width, 3), of `env_id` after `steps` seeded random steps."""
    env = gym.make(env_id, render_mode="rgb_array", render_width=width, render_height=height)
    env.reset(seed=0)
    env.action_space.seed(0)
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    frame = env.render()
    env.close()
    return frame


def main(argv: list[str] | None = None) -> int:
    """Write one PNG per env id."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/gallery"))
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--steps", type=int, default=15, help="random steps before the frame")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for env_id in rlrobot.ENV_IDS:
        name = env_id.split("/")[-1].rsplit("-v", 1)[0]
        path = args.out / f"{name}.png"
        frame = render_frame(env_id, args.width, args.height, args.steps)
        imageio.imwrite(path, frame, optimize=True)
        print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
