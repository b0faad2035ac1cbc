"""Sub-commands ``train``, ``eval``, ``record``, ``view``, ``plot``, ``demo`` and ``export`` of
``rlrobot``.

Parsers are built without importing torch or pybullet (so ``rlrobot --help`` is quick); each
handler imports what it needs and calls the functions of ``rlrobot.run`` that scripts use too.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rlrobot.common.arguments import non_negative_int, positive_float, positive_int
from rlrobot.common.files import check_writable
from rlrobot.errors import CommandError

ALGORITHM_NAMES = "reinforce, a2c, ppo, sac, td3"

TRAIN_EPILOG = """\
examples:
  rlrobot train --env rlrobot/CartPole-v0 --algo ppo --seed 0 --steps 50000 --out runs/cartpole
  rlrobot train --env rlrobot/Reach-v0 --algo ppo --set learning_rate=1e-3 --set n_steps=128 \\
      --set env_kwargs.reward_mode=sparse --out runs/reach-sparse
  rlrobot train --out runs/cartpole --resume --steps 80000   # continue, with a larger budget
  rlrobot train --env rlrobot/Reach-v0 --algo ppo --dry-run  # print the resolved config
  rlrobot train --algo ppo --list-keys                       # every key --set accepts

hyperparameters: rlrobot/configs/<algo>.yaml, shipped in the package, holds tuned defaults per
env id (its `default` entry, then the env's entry; their `delayed` sub-entries too under
env_kwargs.reward_mode=delayed); --config FILE and then --set key=value override them, and
--steps/--n-envs win over all. Values are read as YAML (3e-4, [64, 64], true). Unknown keys and
wrong types are errors. The resolved config is saved as RUN_DIR/config.yaml.

RL Zoo: --config hyperparams/ppo.yml reads a Zoo file as it is (an entry with a `policy` key
replaces the tuned defaults; lin_0.001, normalize, policy_kwargs strings, env_wrapper and
frame_stack are converted, the strings parsed, never run), and the Zoo's flags are aliases:
  rlrobot train --algo ppo --env CartPole-v1 --config ppo.yml -n 1e5 \\
      --hyperparams learning_rate:lin_3e-4 n_envs:4 --eval-freq 10000 --vec-env subproc -f logs \\
      --tensorboard-log tb
  rlrobot train --algo ppo --env CartPole-v1 -optimize --n-trials 20 --storage sqlite:///s.db

run folder: config.yaml, progress.csv + TensorBoard events (tensorboard --logdir RUN_DIR; with
--tensorboard-log DIR they go to DIR/<run folder name>_N instead, named in RUN_DIR/tensorboard.txt),
evaluations.csv, checkpoints/step_*/, latest/, best/, learning_curve.png.
"""


def add_subcommand(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train``, ``eval``, ``record``, ``view``, ``plot``, ``demo`` and ``export`` to the
    parser."""
    formatter = argparse.RawDescriptionHelpFormatter

    train = subparsers.add_parser(
        "train",
        help="train an agent into a run folder",
        description="Train an agent on an env; write config, logs, checkpoints and a learning "
        "curve into a run folder.",
        epilog=TRAIN_EPILOG,
        formatter_class=formatter,
    )
    train.add_argument("--env", metavar="ID", help="env id, e.g. rlrobot/CartPole-v0")
    train.add_argument("--algo", metavar="NAME", help=f"algorithm: {ALGORITHM_NAMES}")
    train.add_argument("--config", metavar="FILE", help="YAML file: flat, or keyed by env id")
    train.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        dest="overrides",
        help="override one config key (repeatable); VALUE is read as YAML",
    )
    train.add_argument(
        "--hyperparams",
        metavar="KEY:VALUE",
        nargs="+",
        action="extend",
        type=zoo_pair,
        dest="overrides",
        help="override config keys, several after one flag; the same as --set KEY=VALUE "
        "(RL Zoo alias)",
    )
    train.add_argument(
        "--seed", type=int, metavar="N", help="seed of networks, envs and sampling (default 0)"
    )
    train.add_argument(
        "--steps",
        "-n",
        "--n-timesteps",
        type=count,
        metavar="N",
        help="env steps to train for, 1e5 allowed (config n_timesteps; -n/--n-timesteps: RL "
        "Zoo aliases)",
    )
    train.add_argument("--n-envs", type=int, metavar="N", help="parallel envs (config n_envs)")
    train.add_argument(
        "--out", metavar="DIR", help="run folder (default runs/<algo>-<env>-seed<seed>)"
    )
    train.add_argument(
        "-f",
        "--log-folder",
        metavar="DIR",
        type=path_text,
        help="put the run folder <algo>-<env>-seed<seed> in DIR instead of runs/ (RL Zoo alias; "
        "not with --out)",
    )
    zoo = train.add_argument_group("RL Zoo aliases of config keys (the same as --set KEY=VALUE)")
    zoo.add_argument(
        "--eval-freq",
        type=non_negative_int,
        metavar="N",
        help="eval_freq: evaluate every N env steps (0: never, the Zoo's -1)",
    )
    zoo.add_argument(
        "--eval-episodes", type=positive_int, metavar="N", help="eval_episodes: episodes each"
    )
    zoo.add_argument(
        "--save-freq",
        type=non_negative_int,
        metavar="N",
        help="checkpoint_freq: checkpoint every N env steps (0: only at the end, the Zoo's -1)",
    )
    zoo.add_argument(
        "--vec-env",
        choices=tuple(VEC_ENV_ALIASES),
        help="vec_env: dummy = sync (one process), subproc = async (a process per env); "
        "rlrobot's sync, async, shm, shm_workers too",
    )
    zoo.add_argument("--device", metavar="DEVICE", help="device: auto, cpu, cuda, cuda:N")
    train.add_argument(
        "--tensorboard-log",
        metavar="DIR",
        type=path_text,
        help="write TensorBoard events into DIR/<run folder name>_N (SB3's naming) instead of "
        "the run folder, which names that folder in tensorboard.txt (RL Zoo alias; new runs)",
    )
    train.add_argument("--resume", action="store_true", help="continue the run in --out")
    train.add_argument(
        "--dry-run",
        action="store_true",
        help="check the run as a real one would (config, env, device), print the config, stop",
    )
    train.add_argument(
        "--list-keys", action="store_true", help="list the config keys of --algo, stop"
    )
    train.add_argument("--verbose", action="store_true", help="print logged values as tables")
    progress = train.add_mutually_exclusive_group()
    progress.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    progress.add_argument(
        "--progress",
        action="store_true",
        help="show the progress bar, as by default (RL Zoo alias)",
    )
    train.set_defaults(func=run_train, config_keys=all_config_keys)

    evaluate = subparsers.add_parser(
        "eval",
        help="evaluate a trained agent: return, success rate, episode length",
        description="Run a run folder's agent for whole episodes; print mean ± std return, "
        "success rate and episode length, and write them as JSON.",
        epilog="example:\n  rlrobot eval runs/cartpole --episodes 20 --deterministic",
        formatter_class=formatter,
    )
    evaluate.add_argument(
        "run_dir", metavar="RUN_DIR", nargs="?", type=path_text, help="run folder (or --onnx)"
    )
    evaluate.add_argument(
        "--episodes",
        type=eval_episodes,
        default=10,
        help=f"episodes (default 10, at most {MAX_EVAL_EPISODES:,})",
    )
    _add_policy_arguments(evaluate)
    evaluate.add_argument(
        "--out",
        metavar="FILE",
        type=path_text,
        help="JSON file, replaced if it exists (default RUN_DIR/eval.json, or eval-2.json … "
        "when taken: earlier evaluations are kept; with --onnx FILE, FILE.eval.json)",
    )
    evaluate.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    evaluate.set_defaults(func=run_eval)

    record = subparsers.add_parser(
        "record",
        help="record an annotated rollout video (GIF or MP4); several episodes and runs as a grid",
        description="Render episodes of a run folder's agent headless and write a video; "
        "several episodes play side by side in a grid. Each tile shows the episode, its seed, "
        "the step and the return so far (and --info-key values); the last frame of an episode "
        "has a green border when it succeeded, a red one when it failed (envs that report "
        "info['is_success']). Several runs play the same seeds, one row each, labelled with "
        "their names, so their tiles start from the same states.",
        epilog="examples:\n"
        "  rlrobot record runs/cartpole --episodes 4 --out runs/cartpole/rollout.mp4\n"
        "  rlrobot record runs/seed0 runs/seed1 runs/sb3-ppo.zip --episodes 3 --deterministic "
        "\\\n      --info-key reward_alive --out runs/comparison.gif\n"
        "  rlrobot record runs/quadruped --camera robot --out runs/quadruped/onboard.mp4\n\n"
        "A model .zip (saved by Stable-Baselines3 or by our agents' save) plays the env of the\n"
        "first run folder given, with its env_kwargs and wrappers.",
        formatter_class=formatter,
    )
    record.add_argument(
        "run_dirs",
        metavar="RUN_DIR",
        nargs="+",
        type=path_text,
        help="run folder, or a model .zip (SB3's or ours); several play side by side",
    )
    record.add_argument(
        "--episodes",
        type=positive_int,
        default=1,
        help="episodes per run, one per grid cell (at most 64 cells; the grid at most 2048 px "
        "a side)",
    )
    _add_policy_arguments(record)
    record.add_argument(
        "--out",
        metavar="VIDEO",
        type=path_text,
        help="video file, .gif or .mp4 (default RUN_DIR/rollout.gif; with several runs, "
        "comparison.gif in the first one's folder)",
    )
    record.add_argument(
        "--size", type=image_side, default=320, help="pixels per cell side (320, at most 2048)"
    )
    record.add_argument(
        "--frame-skip", type=positive_int, default=1, help="keep every n-th frame (1)"
    )
    record.add_argument(
        "--max-steps", type=positive_int, help="stop episodes after this many steps"
    )
    record.add_argument(
        "--fps",
        type=positive_float,
        help="frames per second (default: real time; at most 50 for a GIF, 240 for an MP4)",
    )
    record.add_argument(
        "--camera",
        metavar="NAME",
        help="rlrobot envs: fixed (the scene camera, following mobile robots; the default) or "
        "robot (mounted on the robot)",
    )
    record.add_argument(
        "--info-key",
        metavar="KEY",
        action="append",
        default=[],
        dest="info_keys",
        help="also draw this scalar of the step's info, e.g. reward_alive (repeatable)",
    )
    record.set_defaults(func=run_record)

    view = subparsers.add_parser(
        "view",
        help="write a rollout viewer: one HTML page, video next to per-step plots",
        description="Play episodes of a run folder's agent and write one self-contained HTML "
        "page (no network, no server): each episode's video next to per-step plots of the "
        "reward (its info terms, and the redistributed reward under reward_redistribution), "
        "the actions, chosen observations, V(s) or Q(s, a), and the policy's entropy or "
        "action std, on one time cursor. Scrub or play the video, or click a plot to seek; "
        "a table lists each episode's return, length and success and picks the episode.",
        epilog="examples:\n"
        "  rlrobot view runs/cartpole --episodes 3 --out runs/cartpole/view.html\n"
        "  rlrobot view runs/quadruped --obs 0 --obs 'torso linear velocity (world frame) [0]' "
        "--max-steps 300",
        formatter_class=formatter,
    )
    view.add_argument("run_dir", metavar="RUN_DIR", type=path_text, help="run folder")
    view.add_argument(
        "--episodes", type=positive_int, default=3, help="episodes to play (3, at most 20)"
    )
    _add_policy_arguments(view)
    view.add_argument(
        "--out", metavar="HTML", type=path_text, help="page to write (default RUN_DIR/view.html)"
    )
    view.add_argument(
        "--obs",
        metavar="INDEX|NAME",
        action="append",
        default=[],
        help="observation to plot, by index or by its name in the env's observation table "
        "(repeatable; default the first four)",
    )
    view.add_argument(
        "--size", type=image_side, default=240, help="pixels of the video's side (240)"
    )
    view.add_argument("--max-steps", type=positive_int, help="stop episodes after this many steps")
    view.set_defaults(func=run_view)

    plot = subparsers.add_parser(
        "plot",
        help="plot learning curves of runs and seeds (mean and 95%% band)",
        # Unlike help strings, descriptions are not %-formatted: one % sign.
        description="Plot learning curves against env steps. Runs that differ only in their "
        "seed are one curve: mean and 95% confidence band. A success-rate panel is added "
        "where the env reports success; runs of several envs and algorithms get one row of "
        "panels per env, each with its own scale.",
        epilog="examples:\n  rlrobot plot runs/cartpole\n"
        "  rlrobot plot runs/ppo-seed0 runs/ppo-seed1 runs/a2c-seed0 --out curves.png\n"
        "  rlrobot plot runs/sweep --source eval   # every run folder below runs/sweep",
        formatter_class=formatter,
    )
    plot.add_argument(
        "run_dirs", metavar="RUN_DIR", nargs="+", type=path_text, help="run folders or parents"
    )
    plot.add_argument(
        "--out",
        metavar="PNG",
        type=path_text,
        help="image file (default RUN_DIR/learning_curve.png for one run, else "
        "learning_curves.png)",
    )
    plot.add_argument(
        "--source",
        choices=("train", "eval", "both"),
        default="both",
        help="train: rollout/ep_rew_mean of progress.csv; eval: evaluations.csv; both (default)",
    )
    plot.add_argument("--title", help="figure title")
    plot.set_defaults(func=run_plot)

    demo = subparsers.add_parser(
        "demo",
        help="train PPO on CartPole in about a minute; write a complete run folder",
        description="Train PPO on rlrobot/CartPole-v0, evaluate it, record a rollout GIF and "
        "plot the learning curve: one complete run folder in about a minute on 2 cores.",
        formatter_class=formatter,
    )
    demo.add_argument("--out", metavar="DIR", help="run folder (default runs/demo, -2, -3 …)")
    demo.add_argument("--steps", type=positive_int, help="env steps (default 40960)")
    demo.add_argument("--seed", type=non_negative_int, default=0, help="seed (default 0)")
    demo.set_defaults(func=run_demo)
    _add_export_arguments(subparsers, evaluate)


# ``--vec-env`` choices → ``vec_env``: the Zoo's (SB3's VecEnv classes) and ours.
VEC_ENV_ALIASES = {
    "dummy": "sync",
    "subproc": "async",
    "sync": "sync",
    "async": "async",
    "shm": "shm",
    "shm_workers": "shm_workers",
}


def zoo_pair(text: str) -> str:
    """Parse the RL Zoo's ``KEY:VALUE`` into ``--set``'s ``KEY=VALUE`` (an argparse ``type``)."""
    key, separator, value = text.partition(":")
    if not separator or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY:VALUE, got {text!r}")
    return f"{key}={value}"


def count(text: str) -> int:
    """Parse a step count >= 1; ``1e5`` (integral) is 100000, as in YAML files and the Zoo."""
    try:
        value = int(text)
    except ValueError:
        try:
            number = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}") from None
        if not number.is_integer():
            raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}") from None
        value = int(number)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return value


def image_side(text: str) -> int:
    """Parse a frame side in px, 1 to ``MAX_IMAGE_SIDE`` (an argparse ``type``, like the env's
    own render size cap: a larger frame takes seconds to render, a 20000 px one minutes)."""
    from rlrobot.envs.checks import MAX_IMAGE_SIDE

    value = positive_int(text)
    if value > MAX_IMAGE_SIDE:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_IMAGE_SIDE} px, got {value}")
    return value


# Every episode's return and length is kept and written to eval.json; 10,000 CartPole episodes
# of 500 steps are 5 million steps, over half an hour (docs/reliability.md): more is a slip.
MAX_EVAL_EPISODES = 10_000


def eval_episodes(text: str) -> int:
    """Parse an episode count, 1 to ``MAX_EVAL_EPISODES`` (an argparse ``type``)."""
    value = positive_int(text)
    if value > MAX_EVAL_EPISODES:
        raise argparse.ArgumentTypeError(
            f"must be at most {MAX_EVAL_EPISODES:,} (each episode is kept in eval.json), "
            f"got {value:,}"
        )
    return value


def path_text(text: str) -> str:
    """Parse a path: not empty (``''`` would silently mean the current folder), no NUL byte."""
    if not text or "\0" in text:
        raise argparse.ArgumentTypeError(f"must name a path, got {text!r}")
    return text


def _add_policy_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--deterministic", action="store_true", help="take the most likely actions (no sampling)"
    )
    parser.add_argument("--checkpoint", default="latest", help="latest, best or a step number")
    parser.add_argument(
        "--seed", type=non_negative_int, default=0, help="episode i is reset with seed + i"
    )


def all_config_keys() -> list[str]:
    """Return the config keys of every algorithm's runs (what ``--set`` may name)."""
    from rlrobot.agents import ALGORITHMS
    from rlrobot.run.config import RunConfig

    keys = set(RunConfig.field_names())
    for agent_class in ALGORITHMS.values():
        keys |= set(agent_class.config_class.field_names())
    return sorted(keys)


# -- handlers ---------------------------------------------------------------------------------
def run_train(args: argparse.Namespace) -> int:
    """Handle ``rlrobot train``."""
    from rlrobot.errors import RunFolderError
    from rlrobot.run.config import config_help, read_run_config, resolve_config
    from rlrobot.run.folder import RunFolder
    from rlrobot.run.training import check_run, find_resume_point, train

    if args.log_folder is not None and args.out is not None:
        raise CommandError("give --out (the run folder) or -f/--log-folder (its parent), not both")
    if args.list_keys:
        if not args.algo:
            raise CommandError("--list-keys needs --algo")
        print(config_help(args.algo))
        return 0
    if args.resume:
        if not args.out:
            raise CommandError("--resume needs --out RUN_DIR (the run to continue)")
        resolved = _resumed_config(args, read_run_config, RunFolder(args.out))
        # ``train`` refuses a budget already reached too; here it is refused before any output.
        find_resume_point(RunFolder(args.out), resolved.run.n_timesteps)
    else:
        resolved = resolve_config(
            args.algo,
            args.env,
            args.seed,
            args.config,
            args.overrides,
            {
                "n_timesteps": args.steps,
                "n_envs": args.n_envs,
                "eval_freq": args.eval_freq,
                "eval_episodes": args.eval_episodes,
                "checkpoint_freq": args.save_freq,
                "vec_env": VEC_ENV_ALIASES.get(args.vec_env),
                "device": args.device,
            },
        )
    if args.dry_run:
        # What a real run's start checks (building its agent and envs), without starting it.
        check_run(resolved)
        print(resolved.to_yaml(), end="")
        return 0
    out = args.out or default_run_dir(
        resolved.algo, resolved.env, resolved.seed, args.log_folder or "runs"
    )
    check_writable(out, "--out", is_folder=True)
    if args.tensorboard_log is not None:
        check_writable(args.tensorboard_log, "--tensorboard-log", is_folder=True)
    action = "resuming" if args.resume else "training"
    print(f"{action} {resolved.algo} on {resolved.env} (seed {resolved.seed}) → {out}")
    try:
        folder = train(
            resolved,
            out,
            args.resume,
            progress_bar=not args.no_progress,
            verbose=args.verbose,
            tensorboard_log=args.tensorboard_log,
        )
    except RunFolderError as error:
        raise CommandError(str(error)) from None
    curve = f"{folder.curve_path.name}, " if folder.curve_path.exists() else ""
    print(f"done: {folder.path}/ (latest/ checkpoint, {curve}progress.csv)")
    print(f"next: rlrobot eval {folder.path} --deterministic; rlrobot record {folder.path}")
    return 0


def _resumed_config(args: argparse.Namespace, read_run_config: Any, folder: Any) -> Any:
    """Return the stored config of the run to resume, refusing changes other than --steps."""
    if not folder.config_path.is_file():
        raise CommandError(f"{folder.path} holds no run to resume (no config.yaml)")
    stored = read_run_config(folder.config_path)
    zoo_flags = {
        "--eval-freq": args.eval_freq,
        "--eval-episodes": args.eval_episodes,
        "--save-freq": args.save_freq,
        "--vec-env": args.vec_env,
        "--device": args.device,
        "--tensorboard-log": args.tensorboard_log,
    }
    zoo_flags.update({"--config": args.config, "--set/--hyperparams": args.overrides or None})
    given = [flag for flag, value in zoo_flags.items() if value is not None]
    if given:
        raise CommandError(
            f"a resumed run keeps its config.yaml; {', '.join(given)}: for new runs only "
            "(use --steps to train longer)"
        )
    for flag, given, kept in (
        ("--env", args.env, stored.env),
        ("--algo", args.algo, stored.algo),
        ("--seed", args.seed, stored.seed),
        ("--n-envs", args.n_envs, stored.run.n_envs),
    ):
        if given is not None and given != kept:
            raise CommandError(
                f"{flag} {given} differs from the run's {kept} ({folder.config_path})"
            )
    if args.steps is not None:
        stored.run = stored.run.replace(n_timesteps=args.steps)
        stored.sources.append(f"--resume --steps {args.steps}")
    return stored


def default_run_dir(algo: str, env_id: str, seed: int, parent: str = "runs") -> str:
    """Return ``<parent>/<algo>-<env name>-seed<seed>`` (``rlrobot/Reach-v0`` → ``Reach-v0``)."""
    return f"{parent}/{algo}-{env_id.split('/')[-1]}-seed{seed}"


def run_eval(args: argparse.Namespace) -> int:
    """Handle ``rlrobot eval``."""
    from rlrobot.common.evaluation import evaluate_policy
    from rlrobot.common.progress import make_progress_bar
    from rlrobot.run.evaluation import EpisodeProgress, describe_success, format_summary, make_env

    if args.onnx is not None or args.env is not None:
        return run_eval_onnx(args)
    if args.run_dir is None:
        raise CommandError("eval needs RUN_DIR, or --onnx FILE (an exported policy)")
    agent, resolved, folder = _load_agent(args)
    # An earlier evaluation is kept: eval-2.json … unless --out names the file to replace.
    out = Path(args.out) if args.out else folder.next_eval_path()
    replaced = out.exists()
    check_writable(out, "--out", is_folder=False)  # before the episodes, not after them
    env = make_env(resolved)
    success = describe_success(env)
    bar = make_progress_bar(not args.no_progress, args.episodes, "episode")
    try:
        evaluated = env if bar is None else EpisodeProgress(env, bar)
        result = evaluate_policy(agent, evaluated, args.episodes, args.deterministic, args.seed)
    finally:
        if bar is not None:
            bar.close()
        env.close()
    summary = {
        "run": str(folder.path),
        "checkpoint": args.checkpoint,
        "env": resolved.env,
        "algo": resolved.algo,
        "num_timesteps": agent.num_timesteps,
        "deterministic": args.deterministic,
        "seed": args.seed,
        **result.summary(),
        "success": success if result.successes else None,
        "returns": result.returns,
        "lengths": result.lengths,
        "successes": result.successes,
    }
    from rlrobot.common.files import atomic_write_bytes

    atomic_write_bytes(out, (json.dumps(summary, indent=2) + "\n").encode())
    print(f"{resolved.algo} on {resolved.env} after {agent.num_timesteps:,} steps")
    print(format_summary(summary))
    if result.successes:
        print(success)
    print(f"written to {out}" + (" (replaced)" if replaced else ""))
    return 0


def run_record(args: argparse.Namespace) -> int:
    """Handle ``rlrobot record``."""
    from rlrobot.run.recording import (
        VIDEO_SUFFIXES,
        check_camera,
        check_fps,
        check_grid,
        record_episodes,
        tile_episodes,
        write_video,
    )

    out = Path(args.out) if args.out else None
    if out is not None and out.suffix.lower() not in VIDEO_SUFFIXES:
        raise CommandError(
            f"--out must end in {' or '.join(VIDEO_SUFFIXES)} (a file name such as "
            f"rollout.gif), got {out.name!r}"
        )
    n_runs = len(args.run_dirs)
    try:  # before any checkpoint is loaded and any frame rendered
        check_grid(args.episodes, args.size, ("--episodes", "--size"), n_runs)
        if args.fps is not None:
            check_fps(args.fps, out.suffix.lower() if out else ".gif", "--fps")
    except ValueError as error:
        raise CommandError(str(error)) from None
    policies = _load_policies(args)
    if args.camera is not None:
        try:
            check_camera(policies[0][2].env, args.camera, "--camera")
        except ValueError as error:
            raise CommandError(str(error)) from None
    if out is None:
        first = Path(args.run_dirs[0])
        folder = first if first.is_dir() else first.parent
        out = folder / ("rollout.gif" if n_runs == 1 else "comparison.gif")
    check_writable(out, "--out", is_folder=False)
    recorded = []
    for name, agent, resolved in policies:
        try:
            episodes, real_time_fps = record_episodes(
                agent,
                resolved,
                n_episodes=args.episodes,
                deterministic=args.deterministic,
                seed=args.seed,
                size=args.size,
                frame_skip=args.frame_skip,
                max_steps=args.max_steps,
                camera=args.camera,
                info_keys=args.info_keys,
                label=name if n_runs > 1 else None,
            )
        except ValueError as error:  # a bad --info-key, an agent that does not fit the env
            raise CommandError(f"{name}: {error}" if n_runs > 1 else str(error)) from None
        recorded.append((name, episodes))
    fps = real_time_fps if args.fps is None else args.fps
    cells = [episode.frames for _, episodes in recorded for episode in episodes]
    video = tile_episodes(cells, n_rows=n_runs if n_runs > 1 else None)
    # What the file holds: an MP4 is padded, a GIF merges identical consecutive frames.
    n_frames, height, width = write_video(out, video, fps)
    lengths = ", ".join(str(len(frames)) for frames in cells)
    runs = f"{n_runs} runs × " if n_runs > 1 else ""
    notes = [f"{runs}{args.episodes} episodes; frames per episode: {lengths}"]
    if (height, width) != video.shape[1:3]:
        notes.append(f"padded from {video.shape[2]}×{video.shape[1]} to sides divisible by 16")
    if n_frames < len(video):
        notes.append(f"{len(video)} frames rendered, identical consecutive ones merged")
    print(f"wrote {out}: {n_frames} frames of {width}×{height} at {fps:g} fps ({'; '.join(notes)})")
    for name, episodes in recorded:
        print(f"  {name}: " + "; ".join(_describe_episode(episode) for episode in episodes))
    return 0


def run_view(args: argparse.Namespace) -> int:
    """Handle ``rlrobot view``."""
    from rlrobot.run.viewer import check_view_episodes, view_episodes, write_page

    try:  # before the checkpoint is loaded
        check_view_episodes(args.episodes)
    except ValueError as error:
        raise CommandError(str(error)) from None
    out = Path(args.out) if args.out else Path(args.run_dir) / "view.html"
    agent, resolved, _ = _load_agent(args)
    check_writable(out, "--out", is_folder=False)
    try:
        episodes, fps = view_episodes(
            agent, resolved, args.episodes, args.deterministic, args.seed, args.size, args.obs,
            args.max_steps,
        )  # fmt: skip
    except ValueError as error:
        raise CommandError(str(error)) from None
    title = (
        f"{resolved.algo} on {resolved.env} after {agent.num_timesteps:,} steps ({args.run_dir})"
    )
    size = write_page(out, episodes, title, fps)
    count = f"{len(episodes)} episode{'s' if len(episodes) > 1 else ''}"
    print(f"wrote {out}: {count}, {size / 1e6:.1f} MB")
    for viewed in episodes:
        print("  " + _describe_episode(viewed.recorded))
    return 0


def _describe_episode(episode: Any) -> str:
    """Return ``seed 3: return 9.00 in 9 steps, failed`` for a recorded episode."""
    outcome = {None: "", True: ", succeeded", False: ", failed"}[episode.success]
    played = f"return {episode.episode_return:.2f} in {episode.length} steps"
    return f"seed {episode.seed}: {played}{outcome}"


def _load_policies(args: argparse.Namespace) -> list[tuple[str, Any, Any]]:
    """Load ``(name, agent, run config)`` of every RUN of ``rlrobot record``: run folders with
    their own configs, model .zip files with the first run folder's (same env, same wrappers)."""
    from rlrobot.errors import CheckpointError

    names = [Path(run).name for run in args.run_dirs]
    if len(set(names)) < len(names):  # runs/a/seed0 and runs/b/seed0: keep what tells them apart
        names = list(args.run_dirs)
    folders = [run for run in args.run_dirs if not run.endswith(".zip")]
    if not folders:
        raise CommandError(
            "a model .zip plays the env of a run folder given with it; add one, e.g. "
            f"rlrobot record RUN_DIR {args.run_dirs[0]}"
        )
    loaded = {run: _load_agent(args, run)[:2] for run in folders}
    resolved = loaded[folders[0]][1]
    envs = {loaded[run][1].env for run in folders}
    if len(envs) > 1:
        played = ", ".join(f"{run} plays {loaded[run][1].env}" for run in folders)
        raise CommandError(f"the runs of one grid must play one env: {played}")
    policies = []
    for name, run in zip(names, args.run_dirs, strict=True):
        if run in loaded:
            policies.append((name, *loaded[run]))
            continue
        from rlrobot.agents import BaseAgent

        try:
            agent = BaseAgent.load(run, device="cpu")
        except (CheckpointError, OSError) as error:
            raise CommandError(f"{run}: {error}") from None
        policies.append((name, agent, resolved))
    return policies


def _load_agent(args: argparse.Namespace, run_dir: str | None = None) -> tuple[Any, Any, Any]:
    """Load ``(agent, run config, run folder)`` of ``run_dir`` (default ``args.run_dir``) at
    ``args.checkpoint``, with the run's torch thread count."""
    from rlrobot.errors import CheckpointError, RunFolderError
    from rlrobot.run.evaluation import load_run_agent

    try:
        agent, resolved, folder = load_run_agent(run_dir or args.run_dir, args.checkpoint)
    except (RunFolderError, CheckpointError) as error:
        raise CommandError(str(error)) from None
    import torch

    # This process only acts: the run's thread count, as in training (docs/benchmarks/threads.md).
    torch.set_num_threads(resolved.run.torch_threads)
    return agent, resolved, folder


def run_plot(args: argparse.Namespace) -> int:
    """Handle ``rlrobot plot``."""
    from rlrobot.run.plotting import plot_runs

    if args.out:
        out = Path(args.out)
    elif len(args.run_dirs) == 1:
        out = Path(args.run_dirs[0]) / "learning_curve.png"
    else:
        out = Path("learning_curves.png")
    check_writable(out, "--out", is_folder=False)
    try:
        plot_runs(args.run_dirs, out, args.source, args.title)
    except ValueError as error:
        raise CommandError(str(error)) from None
    print(f"wrote {out}")
    return 0


def run_demo(args: argparse.Namespace) -> int:
    """Handle ``rlrobot demo``."""
    from rlrobot.run.demo import demo

    if args.out is not None:
        check_writable(args.out, "--out", is_folder=True)
    demo(args.out, args.steps, args.seed)
    return 0


# -- export, and eval --onnx ------------------------------------------------------------------
EXPORT_EPILOG = """\
examples:
  rlrobot export runs/reach --format onnx                # runs/reach/policy.onnx (+ .json)
  rlrobot export runs/reach --format torchscript --checkpoint best --out reach.pt
  rlrobot eval --onnx runs/reach/policy.onnx --episodes 20   # check it before the robot does

The file holds the deterministic policy: observation normalisation, the network and the
mapping to the action bounds; its output equals the agent's predict(obs, deterministic=True).
FILE.json beside it lists the inputs (names, shapes, dtypes), the spaces, algo and env.
"""


def _add_export_arguments(
    subparsers: argparse._SubParsersAction, evaluate: argparse.ArgumentParser
) -> None:
    """Add ``export``, and ``eval``'s ``--onnx``/``--env`` options."""
    export = subparsers.add_parser(
        "export",
        help="export a run's policy to ONNX or TorchScript for a robot",
        description="Write a run folder's deterministic policy (preprocessing, network, action "
        "bounds) as an ONNX or TorchScript file that runs without rlrobot, and FILE.json "
        "describing its inputs and spaces.",
        epilog=EXPORT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument("run_dir", metavar="RUN_DIR", type=path_text, help="run folder")
    export.add_argument(
        "--format", choices=("onnx", "torchscript"), default="onnx", help="file format (onnx)"
    )
    export.add_argument("--checkpoint", default="latest", help="latest, best or a step number")
    export.add_argument(
        "--out",
        metavar="FILE",
        type=path_text,
        help="file to write (default RUN_DIR/policy.onnx, or policy.pt for torchscript)",
    )
    export.set_defaults(func=run_export)
    evaluate.add_argument(
        "--onnx",
        metavar="FILE",
        type=path_text,
        help="evaluate an exported ONNX policy (with onnxruntime) instead of a run folder",
    )
    evaluate.add_argument(
        "--env", metavar="ID", help="with --onnx: env id (default: the one in FILE.json)"
    )


def run_export(args: argparse.Namespace) -> int:
    """Handle ``rlrobot export``."""
    from rlrobot.run.export import FILE_SUFFIXES, export_policy, metadata_path

    if args.out:  # before the checkpoint is loaded
        check_writable(args.out, "--out", is_folder=False)
    agent, resolved, folder = _load_agent(args)
    out = Path(args.out) if args.out else folder.path / f"policy{FILE_SUFFIXES[args.format]}"
    check_writable(out, "--out", is_folder=False)
    details = {
        "env_id": resolved.env,
        "env_kwargs": resolved.run.env_kwargs,
        "run": str(folder.path),
        "checkpoint": args.checkpoint,
    }
    export_policy(agent, out, args.format, details)
    print(f"wrote {out} ({args.format}) and {metadata_path(out)}")
    return 0


def run_eval_onnx(args: argparse.Namespace) -> int:
    """Handle ``rlrobot eval --onnx FILE``: run the exported policy with ONNX Runtime."""
    from rlrobot.common.env_util import make_env
    from rlrobot.common.evaluation import evaluate_policy
    from rlrobot.common.files import atomic_write_bytes
    from rlrobot.common.progress import make_progress_bar
    from rlrobot.run.evaluation import EpisodeProgress, format_summary
    from rlrobot.run.export import OnnxPolicy, check_spaces

    if args.onnx is None:
        raise CommandError("--env applies only with --onnx FILE (a run folder names its env)")
    if args.run_dir is not None:
        raise CommandError("give RUN_DIR or --onnx FILE, not both")
    if args.checkpoint != "latest":
        raise CommandError(
            f"--checkpoint {args.checkpoint} applies to RUN_DIR; an exported file holds one "
            "policy (choose it with rlrobot export --checkpoint)"
        )
    out = Path(args.out) if args.out else Path(f"{args.onnx}.eval.json")
    check_writable(out, "--out", is_folder=False)
    policy = OnnxPolicy(args.onnx)
    description = policy.description
    env_id = args.env or description.get("env_id")
    if not env_id:
        raise CommandError(f"{args.onnx}.json names no env; give --env ID")
    env = make_env(env_id, description.get("env_kwargs") or {})
    bar = make_progress_bar(not args.no_progress, args.episodes, "episode")
    try:
        check_spaces(description, env)
        evaluated = env if bar is None else EpisodeProgress(env, bar)
        result = evaluate_policy(policy, evaluated, args.episodes, True, args.seed)
    finally:
        if bar is not None:
            bar.close()
        env.close()
    summary = {
        "policy": str(args.onnx),
        "env": env_id,
        "algo": description.get("algo"),
        "num_timesteps": description.get("num_timesteps"),
        "deterministic": True,
        "seed": args.seed,
        **result.summary(),
        "returns": result.returns,
        "lengths": result.lengths,
        "successes": result.successes,
    }
    atomic_write_bytes(out, (json.dumps(summary, indent=2) + "\n").encode())
    print(f"{summary['algo']} (ONNX, {args.onnx}) on {env_id}")
    print(format_summary(summary))
    print(f"written to {out}")
    return 0
