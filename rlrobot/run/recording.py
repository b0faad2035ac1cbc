"""``rlrobot record``: headless, annotated rollout videos, several episodes (and runs) as a grid.

Frames come from ``render_mode="rgb_array"`` (PyBullet's TinyRenderer for rlrobot envs, so no
display is needed). rlrobot envs render directly at ``size`` pixels, from the camera the run
names (``render_camera``); other envs render at their own size and frames are resized. The
episodes are played by the one evaluation loop, ``rlrobot.common.evaluation.evaluate_policy``,
through a wrapper that keeps the frames and draws into each one the episode, its seed, the step,
the return so far and chosen ``info`` values (Pillow's own FreeType font, so nothing to install);
the last frame gets a green or red border when the env reports ``is_success``. Episodes play at
the same time, one per grid cell; a finished episode holds its last frame until the longest one
ends. Several policies play the same seeds, one row each, so their tiles start from the same
states. GIFs are written by Pillow and MP4s by ffmpeg (``imageio-ffmpeg``); the format follows
the file extension.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from rlrobot.common.evaluation import Predictor, evaluate_policy
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
# Every cell keeps all its frames in memory until the video is written; an 8×8 grid already
# shrinks cells to 254 px under the MAX_IMAGE_SIDE cap on the whole frame.
MAX_GRID_EPISODES = 64
# Cell side (px) whose annotation text (16 px) reads at a glance in a browser or a slide.
DEFAULT_SIZE = 320
# Text height per cell side: 16 px text on 320 px cells; 8 px is the smallest that still reads.
_TEXT_SCALE = 20
_MIN_TEXT_PX = 8
# Colours of the border around an episode's last frame: succeeded / failed.
SUCCESS_COLOUR = (0, 200, 0)
FAILURE_COLOUR = (220, 0, 0)
# The annotation band darkens the frame behind the text to this fraction, so white text reads
# on any scene while the scene stays visible.
_BAND_SHADE = 0.35
# Frames per second a video can hold. A GIF stores whole hundredths of a second per frame and
# we write at least 20 ms (browsers play shorter delays at 10 fps), so at most 50 fps; H.264
# players keep up with 240. 0.01 fps (100 s a frame) is far below any useful slide show.
FPS_RANGES = {
    ".gif": Interval(0.01, 50, unit="fps", reason="a GIF frame lasts at least 20 ms"),
    ".mp4": Interval(0.01, 240, unit="fps"),
}


def grid_shape(n_cells: int, n_rows: int | None = None) -> tuple[int, int]:
    """Return ``(rows, columns)`` of the grid: ``n_rows`` rows when given (one per policy),
    else the near-square grid holding ``n_cells`` cells."""
    if n_rows is not None:
        return n_rows, math.ceil(n_cells / n_rows)
    columns = math.ceil(math.sqrt(n_cells))
    return math.ceil(n_cells / columns), columns


def check_grid(
    n_episodes: int,
    size: int,
    flags: tuple[str, str] = ("n_episodes", "size"),
    n_runs: int = 1,
) -> None:
    """Raise ValueError unless ``n_runs`` rows of ``n_episodes`` cells of ``size`` px (one run:
    a near-square grid) fit one video frame.

    The whole frame obeys the render cap ``MAX_IMAGE_SIDE`` (px a side), and the grid holds at
    most ``MAX_GRID_EPISODES`` cells; ``flags`` names the two values in the message.
    """
    episodes_flag, size_flag = flags
    n_cells = n_episodes * n_runs
    if n_cells > MAX_GRID_EPISODES:
        runs = f" × {n_runs} runs" if n_runs > 1 else ""
        raise ValueError(
            f"{episodes_flag}{runs} must be at most {MAX_GRID_EPISODES} (one grid cell each), "
            f"got {n_episodes}{runs}"
        )
    rows, columns = grid_shape(n_cells, n_runs if n_runs > 1 else None)
    side = max(rows, columns) * (size + GRID_GAP) - GRID_GAP
    if side > MAX_IMAGE_SIDE:
        largest = (MAX_IMAGE_SIDE + GRID_GAP) // max(rows, columns) - GRID_GAP
        runs = f" × {n_runs} runs" if n_runs > 1 else ""
        raise ValueError(
            f"{episodes_flag} {n_episodes}{runs} × {size_flag} {size} make {side} px frames, "
            f"over the {MAX_IMAGE_SIDE} px cap: use {size_flag} {largest} or less, or fewer "
            "episodes"
        )


def check_fps(fps: float, suffix: str, name: str = "fps") -> float:
    """Return ``fps`` checked against what a ``suffix`` (``.gif``, ``.mp4``) video can play."""
    return check_number(f"{name} for a {suffix}", fps, float, FPS_RANGES[suffix])


def render_cameras(env_id: str) -> tuple[str, ...]:
    """Return the cameras ``env_id`` renders from (its class's ``metadata["render_cameras"]``;
    none for envs with one view, such as Gymnasium's), without making the env."""
    spec = gym.spec(env_id)
    creator = gym.envs.registration.load_env_creator(spec.entry_point)
    return tuple(getattr(creator, "metadata", {}).get("render_cameras", ()))


def check_camera(env_id: str, camera: str, flag: str = "camera") -> None:
    """Raise ValueError unless ``env_id`` renders from ``camera``, naming its cameras."""
    cameras = render_cameras(env_id)
    if not cameras:
        raise ValueError(f"{flag} {camera!r}: {env_id} renders one view and offers no cameras")
    if camera not in cameras:
        raise ValueError(f"{flag} {camera!r}: {env_id} offers {', '.join(cameras)}")


@dataclass
class RecordedEpisode:
    """One recorded episode.

    Attributes:
        seed: The seed of its ``reset`` (None: unseeded).
        frames: Annotated uint8 frames ``(size, size, 3)``, the reset frame first.
        episode_return: Undiscounted return (of the recorded steps).
        length: Steps played.
        success: ``info["is_success"]`` at the last step; None where the env reports none.
        observations: With ``keep_steps``: every observation the agent saw, the reset's first
            (``length + 1``); else empty.
        actions: With ``keep_steps``: the action of each step, as the env was given it.
        rewards: With ``keep_steps``: the reward of each step.
        infos: With ``keep_steps``: the scalar (number or bool) values of each step's ``info``.
    """

    seed: int | None
    frames: list[np.ndarray] = field(default_factory=list)
    episode_return: float = 0.0
    length: int = 0
    success: bool | None = None
    observations: list[Any] = field(default_factory=list)
    actions: list[Any] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    infos: list[dict[str, float]] = field(default_factory=list)


class FrameRecorder(gym.Wrapper):
    """Keep the annotated frames of every episode played through it.

    Args:
        env: A single env with ``render_mode="rgb_array"``.
        size: Side of the kept (square) frames in pixels.
        frame_skip: Keep every ``frame_skip``-th frame (the first and last are always kept).
        info_keys: Scalar ``info`` values to draw under the step and return; a key that the
            first step's ``info`` lacks is a ValueError naming those it holds.
        label: First words of the annotation (a run's name), or None.
        keep_steps: Also keep each step's observation, action, reward and scalar ``info``
            values (``rlrobot view`` plots them).
    """

    def __init__(
        self,
        env: gym.Env,
        size: int,
        frame_skip: int = 1,
        info_keys: Sequence[str] = (),
        label: str | None = None,
        keep_steps: bool = False,
    ) -> None:
        super().__init__(env)
        self.size, self.frame_skip, self.info_keys, self.label = size, frame_skip, info_keys, label
        self.keep_steps = keep_steps
        self.episodes: list[RecordedEpisode] = []
        self._font = _font(size)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Start an episode and keep its first frame."""
        observation, info = self.env.reset(seed=seed, options=options)
        self.episodes.append(RecordedEpisode(seed=seed))
        if self.keep_steps:
            self.episodes[-1].observations.append(observation)
        self._keep_frame(info)
        return observation, info

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        """Step the env; keep the frame every ``frame_skip`` steps and at the episode's end."""
        observation, reward, terminated, truncated, info = self.env.step(action)
        episode = self.episodes[-1]
        episode.length += 1
        episode.episode_return += float(reward)
        if episode.length == 1:
            self._check_info_keys(info)
        if self.keep_steps:
            episode.observations.append(observation)
            episode.actions.append(action)
            episode.rewards.append(float(reward))
            scalars = {str(key): _number(value) for key, value in info.items()}
            episode.infos.append(
                {key: value for key, value in scalars.items() if value is not None}
            )
        done = terminated or truncated
        if done or episode.length % self.frame_skip == 0:
            self._keep_frame(info)
        if done:
            if "is_success" in info:
                episode.success = bool(info["is_success"])
            if episode.success is not None:
                colour = SUCCESS_COLOUR if episode.success else FAILURE_COLOUR
                episode.frames[-1] = draw_border(episode.frames[-1], colour)
        return observation, reward, terminated, truncated, info

    def _check_info_keys(self, info: dict[str, Any]) -> None:
        """Raise ValueError unless every key of ``info_keys`` is one number in ``info``."""
        for key in self.info_keys:
            if key not in info:
                held = ", ".join(sorted(map(str, info))) or "nothing"
                raise ValueError(
                    f"info key {key!r} is not in the step info of {_env_name(self.env)} "
                    f"(it holds {held})"
                )
            if _number(info[key]) is None:
                raise ValueError(f"info key {key!r} holds {info[key]!r}, not one number")

    def _keep_frame(self, info: dict[str, Any]) -> None:
        """Render, fit and annotate the frame now."""
        episode = self.episodes[-1]
        seed = "none" if episode.seed is None else episode.seed
        first = f"episode {len(self.episodes) - 1} · seed {seed}"
        lines = [first if self.label is None else f"{self.label} · {first}"]
        lines.append(f"step {episode.length} · return {episode.episode_return:.2f}")
        for key in self.info_keys:
            value = _number(info.get(key))
            lines.append(f"{key} {'–' if value is None else format(value, '.3g')}")
        frame = _fit(_render(self.env), self.size)
        episode.frames.append(draw_text(frame, lines, self._font))


def _number(value: Any) -> float | None:
    """``value`` as a float when it is one real number (or bool), else None."""
    array = np.asarray(value)
    return float(array.item()) if array.size == 1 and array.dtype.kind in "biuf" else None


def record_episodes(
    agent: Predictor,
    resolved: ResolvedConfig,
    n_episodes: int = 1,
    deterministic: bool = True,
    seed: int | None = 0,
    size: int = DEFAULT_SIZE,
    frame_skip: int = 1,
    max_steps: int | None = None,
    *,
    camera: str | None = None,
    info_keys: Sequence[str] = (),
    label: str | None = None,
    keep_steps: bool = False,
) -> tuple[list[RecordedEpisode], float]:
    """Roll out ``n_episodes`` annotated episodes; return them and the real-time frame rate.

    Args:
        agent: Anything with SB3's ``predict``.
        resolved: The run's config (env id, ``env_kwargs`` and wrappers).
        n_episodes: Number of episodes (one env plays them all, reset with their seeds).
        deterministic: Take the most likely actions.
        seed: Episode ``i`` starts with ``reset(seed=seed + i)``; None for unseeded.
        size: Side of each (square) frame in pixels.
        frame_skip: Keep every ``frame_skip``-th frame (the first and last are always kept).
        max_steps: Stop an episode after this many steps (None: when it ends).
        camera: The rlrobot env's ``render_camera`` (``check_camera``); None for its default.
        info_keys: Scalar ``info`` values to draw into each frame.
        label: Name drawn first into each frame (a run's, when several share a grid).
        keep_steps: Also keep each step's observation, action, reward and ``info`` scalars.

    Returns:
        ``(episodes, fps)``: the episodes, their frames ``(size, size, 3)`` uint8; and the frame
        rate (Hz) that plays them in real time (the env's ``render_fps / frame_skip``).

    Raises:
        ValueError: The grid is too large (``check_grid``), the env has no such camera, or an
            info key is not a number in the env's ``info``.
        EnvMakeError: The env's renderer needs a package that is not installed (pygame for
            Gymnasium's classic-control envs: the ``classic-control`` extra).
    """
    check_grid(n_episodes, size)
    # ``rgb_array`` needs no display; without this, SDL (Gymnasium's classic-control envs draw
    # with pygame) probes Wayland and X11 and prints errors on a headless machine.
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    render_kwargs: dict[str, Any] = {}
    if resolved.env.startswith("rlrobot/"):
        render_kwargs = {"render_width": size, "render_height": size}
    if camera is not None:
        check_camera(resolved.env, camera)
        render_kwargs["render_camera"] = camera
    env = make_env(resolved, render_mode="rgb_array", **render_kwargs)
    render_fps = float(env.metadata.get("render_fps") or 30.0)
    if max_steps is not None:
        env = gym.wrappers.TimeLimit(env, max_steps)
    recorder = FrameRecorder(env, size, frame_skip, info_keys, label, keep_steps)
    try:
        evaluate_policy(agent, recorder, n_episodes, deterministic, seed)
    finally:
        recorder.close()
    return recorder.episodes, render_fps / frame_skip


def _font(size: int) -> Any:
    """Pillow's bundled TrueType font at the text height for cells of ``size`` px."""
    from PIL import ImageFont

    return ImageFont.load_default(size=max(_MIN_TEXT_PX, round(size / _TEXT_SCALE)))


def draw_text(frame: np.ndarray, lines: Sequence[str], font: Any) -> np.ndarray:
    """Return ``frame`` with ``lines`` written in white on a darkened band along its top."""
    from PIL import Image, ImageDraw

    line_height = round(font.size * 1.25)
    # Clear of the border the last frame may get, so no letter is painted over.
    margin = border_width(frame.shape[0]) + font.size // 4
    band = min(frame.shape[0], 2 * margin + line_height * len(lines))
    shaded = frame.copy()
    shaded[:band] = (shaded[:band] * _BAND_SHADE).astype(np.uint8)
    image = Image.fromarray(shaded)
    draw = ImageDraw.Draw(image)
    for index, line in enumerate(lines):
        draw.text((margin, margin + index * line_height), line, fill=(255, 255, 255), font=font)
    return np.asarray(image)


def border_width(size: int) -> int:
    """Thickness (px) of the success border of a ``size`` px cell: 1/40 of it, at least 2."""
    return max(2, size // 40)


def draw_border(frame: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    """Return ``frame`` framed by a ``colour`` border ``border_width`` thick."""
    width = border_width(frame.shape[0])
    framed = frame.copy()
    framed[:width], framed[-width:] = colour, colour
    framed[:, :width], framed[:, -width:] = colour, colour
    return framed


def _render(env: gym.Env) -> np.ndarray:
    """Return the env's frame now; a renderer that is not installed is an ``EnvMakeError``
    naming the extra that installs it."""
    env_id = _env_name(env)
    try:
        return env.render()
    except gym.error.DependencyNotInstalled as error:
        if "pygame" not in str(error):
            raise EnvMakeError(f"rendering {env_id} needs a package: {error}") from None
        raise EnvMakeError(
            f"rendering {env_id} needs pygame (Gymnasium's classic-control envs draw with it): "
            "pip install 'rlrobot[classic-control]'"
        ) from None


def _env_name(env: gym.Env) -> str:
    """The env's id (its class name where it was not made by ``gym.make``)."""
    return env.spec.id if env.spec is not None else type(env.unwrapped).__name__


def _fit(frame: np.ndarray, size: int) -> np.ndarray:
    """Return an RGB uint8 frame resized to ``(size, size, 3)``."""
    frame = np.asarray(frame)[..., :3]
    if frame.shape[:2] == (size, size):
        return frame.astype(np.uint8, copy=False)
    from PIL import Image

    return np.asarray(Image.fromarray(frame.astype(np.uint8)).resize((size, size)))


def tile_episodes(
    episodes: list[list[np.ndarray]], gap: int = GRID_GAP, n_rows: int | None = None
) -> np.ndarray:
    """Lay episodes out in a grid, frame by frame: ``n_rows`` rows (one per policy) when given,
    else near-square.

    Args:
        episodes: Per episode, frames ``(height, width, 3)`` of one shared size.
        gap: Black pixels between cells.
        n_rows: Rows of the grid, filled row by row; None for the near-square grid.

    Returns:
        uint8 video ``(n_frames, rows·(height+gap)−gap, columns·(width+gap)−gap, 3)`` where
        ``n_frames`` is the longest episode; shorter ones repeat their last frame.
    """
    rows, columns = grid_shape(len(episodes), n_rows)
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
