"""``rlrobot record``: headless rollout videos, several episodes side by side as a grid.

Frames come from ``render_mode="rgb_array"`` (PyBullet's TinyRenderer for rlrobot envs, so no
display is needed). rlrobot envs render directly at ``size`` pixels; other envs render at their
own size and frames are resized. Episodes play at the same time, one per grid cell; a finished
episode holds its last frame until the longest one ends. GIFs are written by Pillow and MP4s by
ffmpeg (``imageio-ffmpeg``); the format follows the file extension.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from rlrobot.common.files import atomic_output
from rlrobot.envs.checks import MAX_IMAGE_SIDE, Interval, check_number
from rlrobot.errors import EnvMakeError
from rlrobot.run.config import ResolvedConfig
from rlrobot.run.evaluation import make_env

VIDEO_SUFFIXES = (".gif", ".mp4")
# ffmpeg's H.264 encoder wants frame sides divisible by 16 (imageio would resize otherwise).
_MP4_BLOCK = 16
# Black pixels between grid cells.
GRID_GAP = 2
# Each episode is its own env and keeps every frame in memory until the video is written; an
# 8×8 grid already shrinks cells to 254 px under the MAX_IMAGE_SIDE cap on the whole frame.
MAX_GRID_EPISODES = 64
# Frames per second a video can hold. A GIF stores whole hundredths of a second per frame and
# we write at least 20 ms (browsers play shorter delays at 10 fps), so at most 50 fps; H.264
# players keep up with 240. 0.01 fps (100 s a frame) is far below any useful slide show.
FPS_RANGES = {
    ".gif": Interval(0.01, 50, unit="fps", reason="a GIF frame lasts at least 20 ms"),
    ".mp4": Interval(0.01, 240, unit="fps"),
}


def grid_shape(n_cells: int) -> tuple[int, int]:
    """Return ``(rows, columns)`` of the near-square grid holding ``n_cells`` cells."""
    columns = math.ceil(math.sqrt(n_cells))
    return math.ceil(n_cells / columns), columns


def check_grid(n_episodes: int, size: int, flags: tuple[str, str] = ("n_episodes", "size")) -> None:
    """Raise ValueError unless ``n_episodes`` cells of ``size`` px fit one video frame.

    The whole frame obeys the render cap ``MAX_IMAGE_SIDE`` (px a side), and the grid holds at
    most ``MAX_GRID_EPISODES`` cells; ``flags`` names the two values in the message.
    """
    episodes_flag, size_flag = flags
    if n_episodes > MAX_GRID_EPISODES:
        raise ValueError(
            f"{episodes_flag} must be at most {MAX_GRID_EPISODES} (one grid cell and env each), "
            f"got {n_episodes}"
        )
    rows, columns = grid_shape(n_episodes)
    side = max(rows, columns) * (size + GRID_GAP) - GRID_GAP
    if side > MAX_IMAGE_SIDE:
        largest = (MAX_IMAGE_SIDE + GRID_GAP) // max(rows, columns) - GRID_GAP
        raise ValueError(
            f"{episodes_flag} {n_episodes} × {size_flag} {size} make {side} px frames, over the "
            f"{MAX_IMAGE_SIDE} px cap: use {size_flag} {largest} or less, or fewer episodes"
        )


def check_fps(fps: float, suffix: str, name: str = "fps") -> float:
    """Return ``fps`` checked against what a ``suffix`` (``.gif``, ``.mp4``) video can play."""
    return check_number(f"{name} for a {suffix}", fps, float, FPS_RANGES[suffix])


def record_episodes(
    agent: Any,
    resolved: ResolvedConfig,
    n_episodes: int = 1,
    deterministic: bool = True,
    seed: int | None = 0,
    size: int = 240,
    frame_skip: int = 1,
    max_steps: int | None = None,
) -> tuple[list[list[np.ndarray]], float]:
    """Roll out ``n_episodes`` episodes and return their frames and real-time frame rate.

    Args:
        agent: Anything with SB3's ``predict``.
        resolved: The run's config (env id and ``env_kwargs``).
        n_episodes: Number of episodes (one env each).
        deterministic: Take the most likely actions.
        seed: Episode ``i`` starts with ``reset(seed=seed + i)``; None for unseeded.
        size: Side of each (square) frame in pixels.
        frame_skip: Keep every ``frame_skip``-th frame (the first and last are always kept).
        max_steps: Stop an episode after this many steps (None: when it ends).

    Returns:
        ``(episodes, fps)``: per episode, a list of uint8 frames ``(size, size, 3)``; and the
        frame rate (Hz) that plays them in real time (the env's ``render_fps / frame_skip``).

    Raises:
        ValueError: The grid of ``n_episodes`` cells of ``size`` px is too large (``check_grid``).
        EnvMakeError: The env's renderer needs a package that is not installed (pygame for
            Gymnasium's classic-control envs: the ``classic-control`` extra).
    """
    check_grid(n_episodes, size)
    # ``rgb_array`` needs no display; without this, SDL (Gymnasium's classic-control envs draw
    # with pygame) probes Wayland and X11 and prints errors on a headless machine.
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    size_kwargs = (
        {"render_width": size, "render_height": size} if resolved.env.startswith("rlrobot/") else {}
    )
    episodes, render_fps = [], 30.0
    for episode in range(n_episodes):
        env = make_env(resolved, render_mode="rgb_array", **size_kwargs)
        render_fps = float(env.metadata.get("render_fps") or render_fps)
        try:
            observation, _ = env.reset(seed=None if seed is None else seed + episode)
            frames = [_fit(_render(env, resolved.env), size)]
            step, done = 0, False
            while not done and (max_steps is None or step < max_steps):
                action, _ = agent.predict(observation, deterministic=deterministic)
                observation, _, terminated, truncated, _ = env.step(action)
                step += 1
                done = terminated or truncated
                is_last = done or (max_steps is not None and step >= max_steps)
                if step % frame_skip == 0 or is_last:
                    frames.append(_fit(env.render(), size))
        finally:
            env.close()
        episodes.append(frames)
    return episodes, render_fps / frame_skip


def _render(env: Any, env_id: str) -> np.ndarray:
    """Return the env's first frame; a renderer that is not installed is an ``EnvMakeError``
    naming the extra that installs it."""
    import gymnasium as gym

    try:
        return env.render()
    except gym.error.DependencyNotInstalled as error:
        if "pygame" not in str(error):
            raise EnvMakeError(f"rendering {env_id} needs a package: {error}") from None
        raise EnvMakeError(
            f"rendering {env_id} needs pygame (Gymnasium's classic-control envs draw with it): "
            "pip install 'rlrobot[classic-control]'"
        ) from None


def _fit(frame: np.ndarray, size: int) -> np.ndarray:
    """Return an RGB uint8 frame resized to ``(size, size, 3)``."""
    frame = np.asarray(frame)[..., :3]
    if frame.shape[:2] == (size, size):
        return frame.astype(np.uint8, copy=False)
    from PIL import Image

    return np.asarray(Image.fromarray(frame.astype(np.uint8)).resize((size, size)))


def tile_episodes(episodes: list[list[np.ndarray]], gap: int = GRID_GAP) -> np.ndarray:
    """Lay episodes out in a near-square grid, frame by frame.

    Args:
        episodes: Per episode, frames ``(height, width, 3)`` of one shared size.
        gap: Black pixels between cells.

    Returns:
        uint8 video ``(n_frames, rows·(height+gap)−gap, columns·(width+gap)−gap, 3)`` where
        ``n_frames`` is the longest episode; shorter ones repeat their last frame.
    """
    rows, columns = grid_shape(len(episodes))
    height, width, _ = episodes[0][0].shape
    n_frames = max(len(frames) for frames in episodes)
    video = np.zeros(
        (n_frames, rows * (height + gap) - gap, columns * (width + gap) - gap, 3), dtype=np.uint8
    )
    for index, frames in enumerate(episodes):
        top, left = (index // columns) * (height + gap), (index % columns) * (width + gap)
        stacked = np.stack(frames)
        video[: len(frames), top : top + height, left : left + width] = stacked
        video[len(frames) :, top : top + height, left : left + width] = stacked[-1]
    return video


def write_video(path: str | os.PathLike, video: np.ndarray, fps: float) -> tuple[int, int, int]:
    """Write ``video`` ``(n_frames, height, width, 3)`` uint8 as a GIF or an MP4, atomically.

    MP4 frames are padded with black to sides divisible by 16.

    Returns:
        ``(frames, height, width)`` as the file holds them: an MP4's padded sides, a GIF's
        frame count after Pillow merged identical consecutive frames into longer ones.

    Raises:
        ValueError: The suffix is neither ``.gif`` nor ``.mp4``.
    """
    import imageio.v3 as iio
    from PIL import Image

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise ValueError(f"video file must end in {' or '.join(VIDEO_SUFFIXES)}, got {path.name}")
    with atomic_output(path) as temporary:
        if suffix == ".gif":
            # GIF frame durations are whole hundredths of a second in most viewers. Pillow
            # merges identical consecutive frames into one longer frame, so the playing time
            # is kept.
            duration_ms = max(20, round(100 / fps) * 10)
            iio.imwrite(temporary, video, extension=".gif", duration=duration_ms, loop=0)
            with Image.open(temporary) as written:
                return written.n_frames, written.height, written.width
        pad_height = -video.shape[1] % _MP4_BLOCK
        pad_width = -video.shape[2] % _MP4_BLOCK
        video = np.pad(video, ((0, 0), (0, pad_height), (0, pad_width), (0, 0)))
        iio.imwrite(temporary, video, fps=fps, codec="libx264", plugin="FFMPEG", macro_block_size=1)
        return video.shape[0], video.shape[1], video.shape[2]
