"""`rlrobot envs`: every registered env id with its spaces, episode length and options.

`rlrobot envs --gallery DIR` also renders one frame of each env (the README's gallery).
"""

from __future__ import annotations

import argparse
import inspect
import json
from pathlib import Path
from typing import Any

# gymnasium, pybullet and the envs are imported inside the functions: `rlrobot --help` loads
# this module and must stay fast.


def describe_space(space: Any) -> str:
    """A compact description of a Gymnasium space, e.g. `Box(-1.0, 1.0, (3,), float32)`."""
    from gymnasium import spaces

    if isinstance(space, spaces.Dict):
        return "Dict(" + ", ".join(f"{k}: {describe_space(v)}" for k, v in space.items()) + ")"
    if isinstance(space, spaces.Box):
        low, high = space.low.flat[0], space.high.flat[0]
        bounded = (space.low == low).all() and (space.high == high).all()
        bounds = f"{low}, {high}, " if bounded else ""
        return f"Box({bounds}{space.shape}, {space.dtype})"
    return str(space)


def _keyword_defaults(function: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Keyword parameters of `function` with their defaults (no *args/**kwargs, no `skip`)."""
    return {
        name: parameter.default
        for name, parameter in inspect.signature(function).parameters.items()
        if parameter.default is not inspect.Parameter.empty and name not in skip
    }


def describe_envs() -> list[dict[str, Any]]:
    """One dict per registered rlrobot env: id, spaces, `max_episode_steps` and options.

    Keys: `id`, `summary` (first docstring line), `observation_space`, `action_space` (compact
    strings of the default configuration), `max_episode_steps`, `reward_modes`, `obs_modes`,
    `options` (every `gym.make` keyword with its default: the env's own, then those every
    robot env takes) and `fixed_kwargs` (keywords the registration sets for this id).
    """
    import gymnasium as gym

    import rlrobot
    from rlrobot.envs.core import OBS_MODES, RobotTaskEnv

    common = _keyword_defaults(
        RobotTaskEnv.__init__, skip=("build", "timestep", "n_substeps", "camera")
    )
    descriptions = []
    for env_id in rlrobot.ENV_IDS:
        spec = gym.spec(env_id)
        env_class = gym.envs.registration.load_env_creator(spec.entry_point)
        env = gym.make(env_id)
        try:
            unwrapped = env.unwrapped
            descriptions.append(
                {
                    "id": env_id,
                    "summary": (inspect.getdoc(env_class) or "").splitlines()[0],
                    "observation_space": describe_space(env.observation_space),
                    "action_space": describe_space(env.action_space),
                    "max_episode_steps": spec.max_episode_steps,
                    "reward_modes": list(unwrapped.task.reward_modes),
                    "obs_modes": list(OBS_MODES),
                    "options": {**_keyword_defaults(env_class.__init__), **spec.kwargs, **common},
                    "fixed_kwargs": dict(spec.kwargs),
                }
            )
        finally:
            env.close()
    return descriptions


def format_table(descriptions: list[dict[str, Any]], verbose: bool = False) -> str:
    """A plain-text table of `describe_envs()`; `verbose` adds every option's default."""
    lines = []
    for description in descriptions:
        lines.append(f"{description['id']}  (max_episode_steps={description['max_episode_steps']})")
        lines.append(f"    {description['summary']}")
        lines.append(f"    action:      {description['action_space']}")
        lines.append(f"    observation: {description['observation_space']}")
        lines.append(
            f"    reward_mode: {' | '.join(description['reward_modes'])};  "
            f"obs_mode: {' | '.join(description['obs_modes'])}"
        )
        if verbose:
            options = ", ".join(f"{k}={v!r}" for k, v in description["options"].items())
            lines.append(f"    options:     {options}")
            if description["fixed_kwargs"]:
                lines.append(f"    fixed:       {description['fixed_kwargs']}")
    return "\n".join(lines)


def gallery_name(env_id: str) -> str:
    """The gallery file stem of an env id: `rlrobot/Reach-v0` → `Reach`."""
    return env_id.split("/")[-1].rsplit("-v", 1)[0]


def render_frame(env_id: str, width: int, height: int, steps: int) -> Any:
    """An RGB frame, uint8 (height, width, 3), of `env_id` after `steps` seeded random steps.

    The steps catch the robot mid-motion; seed 0 makes the frame the same on every run.
    """
    import gymnasium as gym

    env = gym.make(env_id, render_mode="rgb_array", render_width=width, render_height=height)
    try:
        env.reset(seed=0)
        env.action_space.seed(0)
        for _ in range(steps):
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:
                env.reset()
        return env.render()
    finally:
        env.close()


def write_gallery(directory: Path, width: int, height: int, steps: int) -> list[Path]:
    """Write `<directory>/<Name>.png`, one frame per registered env; return the paths."""
    import imageio.v2 as imageio

    import rlrobot

    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for env_id in rlrobot.ENV_IDS:
        path = directory / f"{gallery_name(env_id)}.png"
        imageio.imwrite(path, render_frame(env_id, width, height, steps), optimize=True)
        paths.append(path)
    return paths


def run_envs_command(args: argparse.Namespace) -> int:
    """Print every env id with its spaces and options (text or JSON), or write the gallery."""
    if args.gallery is not None:
        from rlrobot.envs.checks import MAX_IMAGE_SIDE
        from rlrobot.errors import CommandError

        if not 1 <= min(args.width, args.height) <= max(args.width, args.height) <= MAX_IMAGE_SIDE:
            raise CommandError(
                f"--width and --height must be in [1, {MAX_IMAGE_SIDE}] px, got "
                f"{args.width} and {args.height}"
            )
        if args.steps < 0:
            raise CommandError(f"--steps must be >= 0, got {args.steps}")
        if not args.gallery or "\0" in args.gallery:  # Path('') is the current folder
            raise CommandError(f"--gallery must name a folder, got {args.gallery!r}")
        gallery = Path(args.gallery)
        try:  # before the first frame is rendered
            gallery.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise CommandError(
                f"--gallery {gallery}: cannot make the folder ({error.strerror})"
            ) from None
        for path in write_gallery(gallery, args.width, args.height, args.steps):
            print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")
        return 0
    descriptions = describe_envs()
    if args.json:
        print(json.dumps(descriptions, indent=2, default=repr))
    else:
        print(format_table(descriptions, verbose=args.verbose))
    return 0


def add_subcommand(subparsers: argparse._SubParsersAction) -> None:
    """Add `rlrobot envs` to the `rlrobot` command's sub-parsers."""
    parser = subparsers.add_parser(
        "envs",
        help="list the robot envs with their spaces and options",
        description="List every rlrobot env id with its action and observation spaces, "
        "episode length, reward/observation modes and (with -v) every gym.make option; "
        "or, with --gallery, render one frame of each.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show every option")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--gallery",
        metavar="DIR",
        help="write one frame per env to DIR/<Name>.png instead (the README uses docs/gallery)",
    )
    parser.add_argument("--width", type=int, default=320, help="--gallery: frame width (px)")
    parser.add_argument("--height", type=int, default=240, help="--gallery: frame height (px)")
    parser.add_argument(
        "--steps", type=int, default=15, help="--gallery: seeded random steps before the frame"
    )
    parser.set_defaults(func=run_envs_command)
