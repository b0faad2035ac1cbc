"""``make bench``: the ``rlrobot bench`` summary run, then every per-area benchmark script.

    python scripts/bench_all.py                      # everything (long: see each script)
    python scripts/bench_all.py --quick              # smoke run of each, into temp folders
    python scripts/bench_all.py --only summary --only on_policy

The summary run trains our PPO and A2C and Stable-Baselines3's side by side on our CartPole and
Reach and on Gymnasium's CartPole (3 seeds) and writes ``docs/benchmarks/summary/`` (report.md,
plots, per-trial JSON); finished trials are cached there, so an interrupted run resumes. Each
per-area script that exists is then run through its ``main(argv)``; a failing one is reported
and the others still run.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = Path(__file__).resolve().parent
SUMMARY_DIR = ROOT / "docs" / "benchmarks" / "summary"

# The summary: our envs and a third-party one, the on-policy agents, 3 seeds, one budget;
# about 20 minutes on 2 cores shared with other work. (SAC/TD3 are compared in
# bench_off_policy.py: at ~15-100 steps/s here they don't fit this budget.)
SUMMARY_ARGS = [
    "--envs",
    "rlrobot/CartPole-v0",
    "rlrobot/Reach-v0",
    "CartPole-v1",
    "--algos",
    "ppo",
    "a2c",
    "--seeds",
    "3",
    "--steps",
    "15000",
    "--eval-episodes",
    "5",
]
QUICK_SUMMARY_ARGS = [
    "--envs",
    "CartPole-v1",
    "--algos",
    "ppo",
    "--seeds",
    "2",
    "--steps",
    "1024",
    "--n-envs",
    "2",
    "--set",
    "batch_size=64",
    "--eval-episodes",
    "2",
]

# Name (for --only) → script module in scripts/ with main(argv).
AREA_SCRIPTS = {
    "on_policy": "bench_on_policy",
    "off_policy": "bench_off_policy",
    "envs": "bench_envs",
    "perception": "bench_perception",
    "configs": "bench_configs",
}
# Name → the studies of rlrobot.benchmark.studies, run through ``rlrobot bench --study``.
STUDY_DIR = ROOT / "docs" / "benchmarks"
STUDIES = ("delayed_rewards",)
NAMES = ["summary", *AREA_SCRIPTS, *STUDIES]


def run_summary(quick: bool) -> object:
    """Run ``rlrobot bench`` for the summary (quick: a tiny one in a temp folder)."""
    from rlrobot.cli import main

    # Relative to the repository root when run from it, so the report's command is portable.
    out = Path(tempfile.mkdtemp(prefix="rlrobot-bench-")) if quick else relative(SUMMARY_DIR)
    arguments = QUICK_SUMMARY_ARGS if quick else SUMMARY_ARGS
    code = main(["bench", *arguments, "--out", str(out)])
    if code:
        raise RuntimeError(f"rlrobot bench exited with {code}; see {out / 'report.md'}")
    return out / "report.md"


def study_runner(name: str) -> Callable[[bool], object]:
    """Return a runner of ``rlrobot bench --study NAME`` (5 seeds; quick: 1, a temp folder)."""

    def run(quick: bool) -> object:
        from rlrobot.cli import main

        arguments = ["--quick", "--seeds", "1"] if quick else ["--seeds", "5"]
        out = [] if quick else ["--out", str(relative(STUDY_DIR))]
        trials = [] if quick else ["--trials-dir", str(relative(STUDY_DIR / f"{name}_trials"))]
        return main(["bench", "--study", name, *arguments, *out, *trials])

    return run


def relative(path: Path) -> Path:
    """Return ``path`` relative to the working directory when it lies below it."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def area_runner(module_name: str) -> Callable[[bool], object] | None:
    """Return a runner of ``scripts/<module_name>.py``'s ``main``, or None if it doesn't exist."""
    if not (SCRIPTS / f"{module_name}.py").is_file():
        return None

    def run(quick: bool) -> object:
        # Imported by name (scripts/ on sys.path) so that worker processes can import it too.
        module = importlib.import_module(module_name)
        return module.main(["--quick"] if quick else [])

    return run


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected benchmarks; return 1 if any failed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run of each benchmark")
    parser.add_argument(
        "--only", action="append", choices=NAMES, metavar="NAME", help=f"one of {NAMES}"
    )
    args = parser.parse_args(argv)
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    selected = args.only or NAMES
    runners: dict[str, Callable[[bool], object] | None] = {"summary": run_summary}
    runners.update({name: area_runner(module) for name, module in AREA_SCRIPTS.items()})
    runners.update({name: study_runner(name) for name in STUDIES})
    outcomes = []
    for name in selected:
        runner = runners[name]
        if runner is None:
            outcomes.append((name, "skipped (script not written yet)", 0.0))
            continue
        print(f"=== {name}{' (quick)' if args.quick else ''} ===", flush=True)
        start = time.perf_counter()
        try:
            result = runner(args.quick)
            # main() may return an exit code (non-zero: failed) or what it wrote.
            failed = isinstance(result, int) and not isinstance(result, bool) and result != 0
            status = "FAILED" if failed else f"ok{f': {result}' if result else ''}"
        except (Exception, SystemExit):
            traceback.print_exc()
            status = "FAILED"
        outcomes.append((name, status, time.perf_counter() - start))
    print("\n=== benchmarks ===")
    for name, status, seconds in outcomes:
        print(f"{name:16s} {seconds:7.0f} s  {status}")
    return 1 if any(status == "FAILED" for _, status, _ in outcomes) else 0


if __name__ == "__main__":
    raise SystemExit(main())
