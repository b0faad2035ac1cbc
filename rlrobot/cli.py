"""The ``rlrobot`` command: one entry point, one sub-command per everyday task.

Each module in ``SUBCOMMAND_MODULES`` defines ``add_subcommand(subparsers) -> None``, which adds
its parser(s) with ``parser.set_defaults(func=handler)``; ``handler(args)`` returns an exit code
(``None`` means 0). Modules keep heavy imports (torch, pybullet) inside their handlers so that
``rlrobot --help`` stays fast. Handlers raise an ``rlrobot.errors`` class (``CommandError`` for
a bad argument) for mistakes a user can fix; the CLI prints its message without a traceback.

Run ``python -m rlrobot.cli --help`` (or ``rlrobot --help`` once installed).
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import sys
from collections.abc import Sequence

# The order here is the order of the commands in ``rlrobot --help``.
SUBCOMMAND_MODULES: list[str] = [
    "rlrobot.run.cli",  # train, eval, record, view, plot, demo
    "rlrobot.benchmark.cli",  # bench, sweep
    "rlrobot.perception.cli",  # perception collect|train|eval
    "rlrobot.envs.listing",  # envs
]

EPILOG = """\
quick start (each step writes into the run folder runs/cartpole):
  rlrobot train --env rlrobot/CartPole-v0 --algo ppo --seed 0 --steps 50000 --out runs/cartpole
  rlrobot eval runs/cartpole --episodes 20 --deterministic
  rlrobot record runs/cartpole --episodes 4 --out runs/cartpole/rollout.gif
  rlrobot plot runs/cartpole runs/cartpole-seed1 --out curves.png
  rlrobot demo                      # all of the above in about a minute
  rlrobot view runs/cartpole        # video next to per-step plots: runs/cartpole/view.html

change hyperparameters:
  rlrobot train --env rlrobot/Reach-v0 --algo sac --set learning_rate=1e-3 --set batch_size=256 \\
      --seed 0 --steps 20000 --out runs/reach
  (defaults come from rlrobot/configs/<algo>.yaml in the package, keyed by env id; the
  resolved config is saved as runs/reach/config.yaml; see `rlrobot train --help`)

Every command has its own --help, e.g. `rlrobot train --help`.
"""


def is_user_error(error: BaseException) -> bool:
    """Tell whether ``error`` is a mistake in the user's input (an ``RLRobotError``)."""
    from rlrobot.errors import RLRobotError

    return isinstance(error, RLRobotError)


def build_parser() -> argparse.ArgumentParser:
    """Return the ``rlrobot`` parser with the sub-commands of every ``SUBCOMMAND_MODULES`` entry."""
    parser = argparse.ArgumentParser(
        prog="rlrobot",
        description="Robot reinforcement learning: train agents on PyBullet robot envs, "
        "evaluate them, record videos and plot learning curves.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from rlrobot import __version__

    parser.add_argument("--version", action="version", version=f"rlrobot {__version__}")
    subparsers = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    for module_name in SUBCOMMAND_MODULES:
        importlib.import_module(module_name).add_subcommand(subparsers)
    return parser


def describe_unknown_arguments(
    parser: argparse.ArgumentParser,
    argv: Sequence[str],
    args: argparse.Namespace,
    extras: list[str],
) -> str:
    """Return one line naming the sub-command, the first unknown option and its closest ones.

    argparse would print the top-level usage and ``unrecognized arguments``, which names
    neither the sub-command nor what was meant.
    """
    names, owner = [parser.prog], parser
    for token in argv:  # down to the innermost sub-command (``perception collect``)
        choices = _subparsers(owner)
        if token in choices:
            names.append(token)
            owner = choices[token]
    name = " ".join(names)
    unknown = next((extra for extra in extras if extra.startswith("-")), extras[0])
    if not unknown.startswith("-"):
        return f"{name}: error: unexpected argument {unknown!r} (see {name} --help)"
    flag = unknown.split("=", 1)[0]
    known = [option for action in owner._actions for option in action.option_strings]
    close = difflib.get_close_matches(flag, known, n=3, cutoff=0.6)
    config_keys = getattr(args, "config_keys", None)  # commands with --set offer their keys
    if config_keys is not None:
        key = flag.lstrip("-").replace("-", "_")
        close += [f"--set {k}=…" for k in difflib.get_close_matches(key, config_keys(), n=2)]
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return f"{name}: error: unknown option {flag}{hint} (see {name} --help)"


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Return the sub-command parsers of ``parser`` by name."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the chosen command, return its exit code."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args, extras = parser.parse_known_args(argv)
    if extras:
        print(describe_unknown_arguments(parser, argv, args, extras), file=sys.stderr)
        return 2
    handler = getattr(args, "func", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        result = handler(args)
    except Exception as error:
        if not is_user_error(error):
            raise
        print(f"rlrobot {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    return 0 if result is None else int(result)


if __name__ == "__main__":
    raise SystemExit(main())
