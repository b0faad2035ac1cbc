"""``rlrobot bench`` and ``rlrobot sweep`` (registered through ``rlrobot.cli.SUBCOMMAND_MODULES``).

Heavy imports (torch, SB3, Ray) stay inside the handlers so that ``rlrobot --help`` is fast.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rlrobot.common.arguments import non_negative_int, positive_float, positive_int
from rlrobot.common.files import check_writable

BENCH_EPILOG = """\
examples:
  rlrobot bench --envs rlrobot/CartPole-v0 CartPole-v1 --algos ppo a2c --seeds 3 \\
      --steps 50000 --out runs/bench
  rlrobot bench --report-only runs/bench          # rebuild report.md from the saved JSON
  rlrobot bench --envs rlrobot/Reach-v0 --algos ppo --seeds 5 --steps 30000 \\
      --backend ray --ray-address auto --out runs/bench-ray
  rlrobot bench --study delayed_rewards --out docs/benchmarks   # a planned study
  rlrobot bench --study all --out docs/benchmarks   # make bench: every study
  rlrobot bench --study all --quick                 # a smoke run of each
  rlrobot bench --study envs --only vector --out docs/benchmarks   # one part of a study
  rlrobot bench --study soak --report-only docs/benchmarks   # rebuild soak.md from soak.json
  rlrobot bench --study on_policy --report-only docs/benchmarks   # on_policy.md from its trials
  rlrobot bench --time-to-solve --only CartPole-v1:ppo --out docs/benchmarks   # time to solve
Hyperparameters come from rlrobot/configs/<algo>.yaml (keyed by env id), then --set key=value (all
algorithms) or --set ppo:key=value (one algorithm); SB3 gets the same values through one
mapping (rlrobot.benchmark.sb3.to_sb3). Finished trials are cached in OUT/trials/ and not rerun.
"""

DEFAULT_SEEDS = 3
DEFAULT_TRIALS = 10
ALL_STUDIES = "all"

SWEEP_EPILOG = """\
examples:
  rlrobot sweep --env CartPole-v1 --algo ppo --param 'learning_rate=loguniform(1e-4, 3e-3)' \\
      --param 'n_epochs=[4, 10]' --trials 20 --seeds 2 --steps 30000 --out runs/sweep
  rlrobot sweep --env CartPole-v1 --algo ppo --sampler grid --pruner none \\
      --param 'learning_rate=[3e-4, 1e-3]' --param 'n_epochs=[4, 10]' --out runs/grid
  rlrobot sweep ... --out runs/sweep   # again: the study continues (OUT/study.db)
  rlrobot sweep --env rlrobot/Reach-v0 --algo ppo --trials 40 --n-jobs 8 \\
      --param 'learning_rate=loguniform(1e-4, 3e-3)' --param 'gae_lambda=uniform(0.9, 1.0)' \\
      --seeds 3 --steps 30000 --backend ray --storage postgresql://host/db --out runs/reach
  rlrobot sweep --report-only runs/sweep   # rebuild sweep.md and the plots from the study
  rlrobot plot runs/sweep --source eval    # every trial's evaluation curves
"""


def _add_execution_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options bench and sweep share: budget, evaluation, hyperparameters, backend."""
    parser.add_argument(
        "--seeds",
        type=positive_int,
        default=None,
        help=f"number of seeds (0 … N-1; default {DEFAULT_SEEDS}, a study's own for --study)",
    )
    parser.add_argument(
        "--steps",
        type=positive_int,
        default=None,
        help="env steps per trial (default: n_timesteps of the config)",
    )
    parser.add_argument(
        "--n-envs", type=positive_int, default=None, help="envs per trial (default: config)"
    )
    parser.add_argument(
        "--eval-interval",
        type=positive_int,
        default=None,
        help="env steps between evaluations (a tenth of the budget)",
    )
    parser.add_argument(
        "--eval-episodes",
        type=positive_int,
        default=5,
        help="deterministic episodes per evaluation",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="[ALGO:]KEY=VALUE",
        help="override a config key for every trial, or with ALGO: for that algorithm's "
        "trials only (repeatable; VALUE is read as YAML; defaults: rlrobot/configs/<algo>.yaml)",
    )
    parser.add_argument("--backend", choices=("local", "ray"), default="local")
    parser.add_argument("--ray-address", default=None, help="existing Ray cluster (e.g. auto)")
    parser.add_argument(
        "--cpus-per-trial",
        type=positive_float,
        default=1.0,
        help="CPUs Ray reserves for each trial",
    )
    parser.add_argument(
        "--workers", type=positive_int, default=None, help="parallel trials (default: CPU cores)"
    )
    parser.add_argument(
        "--retries",
        type=non_negative_int,
        default=1,
        help="extra attempts of a failed trial (default 1)",
    )
    parser.add_argument("--out", help="output folder (results, report, plots)")
    parser.add_argument(
        "--report-only",
        nargs="?",
        const="",
        default=None,
        metavar="DIR",
        help="rebuild the report from the results in DIR (or --out) without training",
    )


def _output_folder(args: argparse.Namespace) -> str:
    """Return the folder to write to or report on (``--report-only DIR`` or ``--out``)."""
    from rlrobot.errors import CommandError

    out = args.report_only or args.out
    if not out:
        raise CommandError("give --out DIR (or --report-only DIR)")
    check_writable(out, "--report-only" if args.report_only else "--out", is_folder=True)
    return out


def add_subcommand(subparsers: Any) -> None:
    """Add the ``bench`` and ``sweep`` sub-commands."""
    from rlrobot.benchmark.studies import STUDIES

    bench = subparsers.add_parser(
        "bench",
        help="train our agents and their SB3 counterparts side by side and compare them",
        description="Train our agents and Stable-Baselines3's with matched hyperparameters, "
        "the same envs, seeds and budgets, then report returns (mean, IQM, 95% CIs), sample "
        "efficiency and speed in OUT/report.md with learning-curve plots.",
        epilog=BENCH_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench.add_argument("--envs", nargs="+", default=[], metavar="ID", help="Gymnasium env ids")
    bench.add_argument("--algos", nargs="+", default=["ppo"], metavar="ALGO")
    bench.add_argument(
        "--baseline", choices=("sb3", "none"), default="sb3", help="also train SB3's agents"
    )
    bench.add_argument(
        "--study",
        choices=[*STUDIES, ALL_STUDIES],
        help="run a planned study (rlrobot.benchmark.studies) instead of --envs × --algos, or "
        f"with {ALL_STUDIES} every one in turn but "
        + ", ".join(name for name, study in STUDIES.items() if not study.in_all)
        + "; it takes --seeds, --out, --workers, --backend, "
        "--budget-scale, --quick, --trials-dir, --only and (a study that saves its "
        "results) --report-only",
    )
    bench.add_argument(
        "--time-to-solve",
        dest="study",
        action="store_const",
        const="time_to_solve",
        help="the same as --study time_to_solve: wall-clock until solved, ours against SB3 "
        "and the simulator's bound (docs/benchmarks/time_to_solve.md)",
    )
    bench.add_argument(
        "--budget-scale", type=positive_float, default=1.0, help="--study: scale every budget"
    )
    bench.add_argument(
        "--quick", action="store_true", help="--study: a smoke run into a temporary folder"
    )
    bench.add_argument(
        "--trials-dir",
        help="--study: cache of finished trials, in DIR/trials/ (default: the study's, "
        "e.g. OUT/<study>_trials)",
    )
    bench.add_argument(
        "--only",
        action="extend",
        nargs="+",
        default=[],
        metavar="PART",
        help="--study: run only these parts of its plan and keep the saved results of the "
        "others (repeatable; e.g. configs: ENV:ALGO, soak: kills; an unknown name lists the "
        "study's parts)",
    )
    _add_execution_arguments(bench)
    bench.set_defaults(func=bench_command)

    sweep = subparsers.add_parser(
        "sweep",
        help="tune config keys with Optuna (TPE, random or grid; pruning; local pool or Ray)",
        description="Tune configs of one algorithm on one env with Optuna, each trial several "
        "seeds, ranked by mean final evaluation return in OUT/sweep.md (with the best entry as "
        "YAML for rlrobot/configs/ and Optuna's plots). The study lives in --storage, so a rerun "
        "continues it.",
        epilog=SWEEP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sweep.add_argument("--env", metavar="ID", help="env id, e.g. rlrobot/Reach-v0 (required)")
    sweep.add_argument("--algo", default="ppo", help="algorithm to tune (default ppo)")
    add_sweep_arguments(sweep)
    _add_execution_arguments(sweep)
    sweep.set_defaults(func=sweep_command)
    add_optimize_options(subparsers.choices["train"])


def add_optimize_options(train: argparse.ArgumentParser) -> None:
    """Give ``train`` the RL Zoo's tuning flags: ``-optimize`` runs a sweep of --env and --algo.

    Added here, not in ``rlrobot.run.cli``: the sweep is a layer above ``run``.
    """
    group = train.add_argument_group(
        "hyperparameter tuning (the RL Zoo's flags)",
        "-optimize runs rlrobot sweep on --env and --algo, one seed per trial, into --out\n"
        "(default: runs/ or -f DIR, then sweep-<algo>-<env>). Each trial takes -n/--steps,\n"
        "--n-envs, --set/--hyperparams, --eval-freq and --eval-episodes; --seed seeds the\n"
        "sampler.",
    )
    group.add_argument(
        "-optimize",
        "--optimize-hyperparameters",
        dest="optimize",
        action="store_true",
        help="tune instead of training: without --param, the algorithm's default search space "
        "(rlrobot.benchmark.sweep.DEFAULT_SPACES)",
    )
    add_sweep_arguments(group)
    train.set_defaults(func=train_or_optimize, train_func=train.get_default("func"))


def train_or_optimize(args: argparse.Namespace) -> int:
    """Handle ``rlrobot train``: train, or with ``-optimize`` run the sweep of its env and algo."""
    from rlrobot.benchmark.sweep import default_parameters
    from rlrobot.errors import CommandError

    sweep_flags = {
        "params": "--param",
        "sampler": "--sampler",
        "pruner": "--pruner",
        "trials": "--n-trials",
        "n_jobs": "--n-jobs",
        "storage": "--storage",
        "study_name": "--study-name",
        "sweep_seed": "--sweep-seed",
    }
    if not args.optimize:
        given = [
            flag for dest, flag in sweep_flags.items() if getattr(args, dest) != _default(dest)
        ]
        if given:
            raise CommandError(f"{' '.join(given)}: tuning options, for train -optimize only")
        return args.train_func(args)
    refused = [flag for flag in ("config", "resume", "dry_run") if getattr(args, flag, None)]
    if refused:
        flags = " ".join("--" + flag.replace("_", "-") for flag in refused)
        raise CommandError(f"-optimize tunes from rlrobot/configs/ and --set: no {flags}")
    # ``train``'s options that configure one run's folder and process, not a sweep's trials.
    run_only = {
        "--save-freq": args.save_freq,
        "--vec-env": args.vec_env,
        "--device": args.device,
        "--tensorboard-log": args.tensorboard_log,
        "--list-keys": args.list_keys or None,
        "--verbose": args.verbose or None,
    }
    given = [flag for flag, value in run_only.items() if value is not None]
    if given:
        raise CommandError(f"{' '.join(given)}: for train runs, not for -optimize's trials")
    if args.eval_freq == 0:
        raise CommandError("--eval-freq 0: -optimize prunes trials from their evaluations")
    if args.log_folder is not None and args.out is not None:
        raise CommandError(
            "give --out (the sweep folder) or -f/--log-folder (its parent), not both"
        )
    if not args.env or not args.algo:
        raise CommandError("-optimize needs --env ID and --algo NAME")
    args.params = args.params or default_parameters(args.algo)
    args.seeds = 1
    args.eval_interval = args.eval_freq
    args.eval_episodes = getattr(args, "eval_episodes", None) or 5
    args.backend, args.ray_address, args.cpus_per_trial, args.workers = "local", None, 1.0, None
    args.retries = 1
    args.report_only = None
    name = f"sweep-{args.algo}-{args.env.replace('/', '-')}"
    args.out = args.out or f"{args.log_folder or 'runs'}/{name}"
    if args.seed is not None:
        args.sweep_seed = args.seed
    return sweep_command(args)


def _default(dest: str) -> Any:
    """Return the default of a sweep option (as ``add_sweep_arguments`` sets it)."""
    parser = argparse.ArgumentParser()
    add_sweep_arguments(parser)
    return parser.get_default(dest)


def add_sweep_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Add the Optuna options of ``sweep`` (``train --optimize-hyperparameters`` takes them too)."""
    from rlrobot.benchmark.sweep import PRUNERS, SAMPLERS

    parser.add_argument(
        "--param",
        dest="params",
        action="append",
        default=[],
        metavar="KEY=VALUES",
        help="a config key to sweep (repeatable, at least one): a YAML list like "
        "'n_epochs=[4, 10]', or (not for --sampler grid) loguniform(a, b), uniform(a, b) or "
        "randint(a, b)",
    )
    parser.add_argument(
        "--sampler",
        choices=SAMPLERS,
        default="tpe",
        help="tpe: Optuna's TPE, seeded (default); random; grid: every combination of the "
        "--param lists",
    )
    parser.add_argument(
        "--pruner",
        choices=PRUNERS,
        default="median",
        help="stop poor trials from their periodic evaluations: median (default), halving "
        "(successive halving) or none",
    )
    parser.add_argument(
        "--trials",
        "--n-trials",
        dest="trials",
        type=positive_int,
        default=None,
        help="trials to run now (default 10; grid: the whole grid); a continued study adds them",
    )
    parser.add_argument(
        "--n-jobs",
        type=positive_int,
        default=1,
        help="trials run in parallel, each in its own process or Ray task (default 1)",
    )
    parser.add_argument(
        "--storage",
        metavar="URL",
        help="Optuna storage: sqlite:///path.db or a database URL (default sqlite:///OUT/study.db)",
    )
    parser.add_argument(
        "--study-name", default="sweep", help="study in the storage (default sweep)"
    )
    parser.add_argument(
        "--sweep-seed", type=non_negative_int, default=0, help="seed of the sampler (default 0)"
    )


def _check_positive(**values: int | None) -> None:
    from rlrobot.errors import CommandError

    for name, value in values.items():
        if value is not None and value < 1:
            raise CommandError(f"--{name.replace('_', '-')} must be >= 1, got {value}")


def bench_command(args: argparse.Namespace) -> int:
    """Run (or only report) a bench; return 0, or 1 when some trial failed."""
    from rlrobot.benchmark.bench import build_bench_specs, rebuild_report, run_bench
    from rlrobot.errors import CommandError

    if args.study is not None:
        return study_command(args)
    out = _output_folder(args)
    if args.report_only is not None:
        try:
            path = rebuild_report(out)
        except FileNotFoundError as error:
            raise CommandError(str(error)) from None
        print(f"report: {path}")
        return 0
    if not args.envs:
        raise CommandError("give --envs ID … (or --report-only)")
    args.seeds = DEFAULT_SEEDS if args.seeds is None else args.seeds
    _check_positive(seeds=args.seeds, steps=args.steps, n_envs=args.n_envs, workers=args.workers)
    _check_positive(eval_interval=args.eval_interval, eval_episodes=args.eval_episodes)
    _check_algorithms(args.algos)
    specs = build_bench_specs(
        args.envs,
        args.algos,
        range(args.seeds),
        args.steps,
        baseline=None if args.baseline == "none" else args.baseline,
        overrides=args.overrides,
        n_envs=args.n_envs,
        eval_interval=args.eval_interval,
        eval_episodes=args.eval_episodes,
    )
    settings = {
        "seeds": args.seeds,
        "steps": args.steps or "from configs",
        "eval interval": args.eval_interval or "a tenth of the steps",
        "eval episodes": args.eval_episodes,
        "baseline": args.baseline,
    }
    print(f"bench: {len(specs)} trials ({args.backend} backend) → {out}")
    path = run_bench(specs, out, _execution(args), settings, bench_command_line(args, out))
    print(f"report: {path}")
    return _exit_code(out, [spec.key for spec in specs])


def sweep_command(args: argparse.Namespace) -> int:
    """Run (or only report) a sweep; return 0, or 1 when some trial failed."""
    import importlib.util

    from rlrobot.errors import CommandError

    if importlib.util.find_spec("optuna") is None:
        raise CommandError("sweep needs Optuna: pip install 'rlrobot[tune]'")
    from rlrobot.benchmark.sweep import SWEEP_FILE, run_sweep, write_sweep_report

    out = _output_folder(args)
    if args.report_only is not None:
        try:
            path = write_sweep_report(out)
        except (FileNotFoundError, KeyError) as error:
            raise CommandError(f"no sweep in {out}: {error}") from None
        print(f"report: {path}")
        return 0
    if not args.env or not args.params:
        raise CommandError("give --env ID and at least one --param KEY=VALUES (or --report-only)")
    if args.workers is not None:
        raise CommandError("sweep runs --n-jobs trials at once: give --n-jobs, not --workers")
    plan = sweep_plan(args, out)
    n_trials = args.trials or (plan.grid_size if plan.sampler == "grid" else DEFAULT_TRIALS)
    info = {
        "settings": {
            "sampler": args.sampler,
            "pruner": args.pruner,
            "seeds": len(plan.seeds),
            "steps": plan.steps,
            "eval interval": plan.eval_interval,
            "backend": args.backend,
        },
        "command": sweep_command_line(args, out),
    }
    print(
        f"sweep: {n_trials} trials × {len(plan.seeds)} seeds, {args.sampler} sampler, "
        f"{args.pruner} pruner, {args.n_jobs} job(s) ({args.backend}) → {out}"
    )
    path = run_sweep(plan, n_trials, args.n_jobs, _execution(args), info)
    print(f"report: {path}")
    failed = [
        row
        for row in json.loads((Path(out) / "ranking.json").read_text())
        if row["state"] == "FAIL"
    ]
    failed_jobs = json.loads((Path(out) / SWEEP_FILE).read_text()).get("failed_jobs", [])
    if failed or failed_jobs:
        print(f"{len(failed)} trial(s) and {len(failed_jobs)} worker(s) failed; see the report")
    return 1 if failed or failed_jobs else 0


def sweep_plan(args: argparse.Namespace, out: str) -> Any:
    """Return the ``SweepPlan`` of parsed ``sweep`` (or ``train --optimize``) arguments."""
    from rlrobot.benchmark.bench import resolve_trial_config, split_overrides
    from rlrobot.benchmark.sweep import SweepPlan, default_storage, fixed_entry, parse_parameter

    args.seeds = DEFAULT_SEEDS if args.seeds is None else args.seeds
    _check_positive(seeds=args.seeds, steps=args.steps, trials=args.trials, n_envs=args.n_envs)
    _check_positive(eval_interval=args.eval_interval, eval_episodes=args.eval_episodes)
    _check_algorithms([args.algo])
    parameters = tuple(parse_parameter(text) for text in args.params)
    overrides = split_overrides(args.overrides, args.algo)
    resolved = resolve_trial_config(args.algo, args.env, overrides, args.n_envs, args.steps)
    return SweepPlan(
        env_id=args.env,
        algo=args.algo,
        parameters=parameters,
        base_config=resolved.config,
        seeds=tuple(range(args.seeds)),
        steps=resolved.steps,
        n_envs=resolved.n_envs,
        env_kwargs=resolved.env_kwargs,
        eval_interval=args.eval_interval or max(1, resolved.steps // 10),
        eval_episodes=args.eval_episodes,
        out=str(out),
        storage=args.storage or default_storage(out),
        study_name=args.study_name,
        sampler=args.sampler,
        pruner=args.pruner,
        sampler_seed=args.sweep_seed,
        retries=args.retries,
        fixed=fixed_entry(
            args.algo,
            args.env,
            overrides,
            {"n_envs": resolved.n_envs, "n_timesteps": resolved.steps},
        ),
    )


def sweep_command_line(args: argparse.Namespace, out: str) -> str:
    """Return the ``rlrobot sweep`` command that reproduces (or continues) a sweep."""
    words = ["rlrobot", "sweep", "--env", args.env, "--algo", args.algo]
    for text in args.params:
        words += ["--param", text]
    options = {
        "--sampler": args.sampler,
        "--pruner": args.pruner,
        "--trials": args.trials,
        "--n-jobs": args.n_jobs,
        "--storage": args.storage,
        "--study-name": args.study_name,
        "--sweep-seed": args.sweep_seed,
        "--seeds": args.seeds,
        "--steps": args.steps,
        "--n-envs": args.n_envs,
        "--eval-interval": args.eval_interval,
        "--eval-episodes": args.eval_episodes,
        "--backend": args.backend,
        "--ray-address": args.ray_address,
        "--cpus-per-trial": args.cpus_per_trial if args.backend == "ray" else None,
    }
    return command_line(words, options, args.overrides, out)


def command_line(words: list[str], options: dict[str, Any], overrides: list[str], out: str) -> str:
    """Return the shell command ``words`` plus each option that is set, ``--set``s and ``--out``."""
    import shlex

    words = [*words, *(w for flag, v in options.items() if v is not None for w in (flag, str(v)))]
    words += [word for text in overrides for word in ("--set", text)]
    return shlex.join([*words, "--out", out])


def study_command(args: argparse.Namespace) -> int:
    """Run ``rlrobot bench --study NAME`` (or ``all``); return 0, or 1 when something failed."""
    import tempfile

    from rlrobot.benchmark.studies import STUDIES
    from rlrobot.errors import CommandError

    if args.envs:
        raise CommandError("--study runs its own plan: give no --envs")
    if args.report_only is not None:
        return _rewrite_study_report(args)
    _check_positive(seeds=args.seeds, workers=args.workers)
    if not 0 < args.budget_scale < float("inf"):
        raise CommandError(f"--budget-scale must be > 0, got {args.budget_scale}")
    if args.quick:
        out = Path(args.out or tempfile.mkdtemp(prefix=f"rlrobot-{args.study}-"))
    else:
        out = Path(_output_folder(args))
    if args.study != ALL_STUDIES:
        return _run_study(args.study, out, args)
    if args.trials_dir or args.only:
        raise CommandError(
            f"--study {ALL_STUDIES} uses each study's own trials: no --trials-dir, --only"
        )
    return _run_all_studies([name for name, study in STUDIES.items() if study.in_all], out, args)


def _rewrite_study_report(args: argparse.Namespace) -> int:
    """Rebuild one study's page from the results it saved (``--report-only``); return 0."""
    from rlrobot.benchmark.studies import STUDIES
    from rlrobot.errors import CommandError

    study = STUDIES.get(args.study)
    if study is None or study.report is None:
        offered = [name for name, entry in STUDIES.items() if entry.report is not None]
        raise CommandError(f"--report-only: --study {args.study} has none; these do: {offered}")
    try:
        path = study.rewrite_report(Path(_output_folder(args)))
    except FileNotFoundError as error:
        raise CommandError(f"no saved results of --study {args.study}: {error}") from None
    print(f"report: {path}")
    return 0


def _run_all_studies(names: Sequence[str], out: Path, args: argparse.Namespace) -> int:
    """Run the studies in turn, past any that fails; print how each went; 1 if any failed."""
    import time
    import traceback

    outcomes = []
    for name in names:
        print(f"=== {name}{' (quick)' if args.quick else ''} ===", flush=True)
        start = time.perf_counter()
        try:
            status = "ok" if _run_study(name, out, args) == 0 else "FAILED: some trials failed"
        except Exception as error:  # one study's bug or bad config must not stop the others
            traceback.print_exc()
            status = f"FAILED: {type(error).__name__}: {error}"
        outcomes.append((name, status, time.perf_counter() - start))
    print("\n=== studies ===")
    for name, status, seconds in outcomes:
        print(f"{name:24s} {seconds:7.0f} s  {status}")
    return 1 if any(status != "ok" for _, status, _ in outcomes) else 0


def _run_study(name: str, out: Path, args: argparse.Namespace) -> int:
    """Run one study into ``out``; return 0, or 1 when some of its trials failed."""
    import shlex

    from rlrobot.benchmark.runner import TrialStore
    from rlrobot.benchmark.studies import STUDIES, StudyOptions
    from rlrobot.errors import CommandError

    study = STUDIES[name]
    if args.trials_dir:
        trials = Path(args.trials_dir)
    elif args.quick:  # a smoke run writes nothing outside its folder
        trials = out / f"{name}_trials"
    else:
        trials = Path(study.trials.format(out=out, name=name))
    seeds = args.seeds if args.seeds is not None else 1 if args.quick else study.seeds
    words = ["rlrobot", "bench", "--study", name, "--seeds", str(seeds)]
    if args.budget_scale != 1.0:
        words += ["--budget-scale", str(args.budget_scale)]
    if args.quick:
        words.append("--quick")
    if args.only:
        parts = study.part_names()
        if not parts:
            raise CommandError(f"--only: the {name} study has no parts to choose from")
        unknown = [part for part in args.only if part not in parts]
        if unknown:
            raise CommandError(
                f"--only: the {name} study has no part(s) {unknown}; parts: {' '.join(parts)}"
            )
    if args.only:
        words += ["--only", *args.only]
    options = StudyOptions(
        out_dir=out,
        trials_dir=trials,
        seeds=range(seeds),
        execution=_execution(args),
        budget_scale=args.budget_scale,
        quick=args.quick,
        command=shlex.join(words),
        only=args.only,
    )
    path = study.run(options)
    print(f"report: {path}")
    failed = [r for r in TrialStore(trials).load_all() if r.get("status") != "ok"]
    if failed:
        print(f"{len(failed)} trial(s) failed; see {trials}")
    return 1 if failed else 0


def bench_command_line(args: argparse.Namespace, out: str) -> str:
    """Return the ``rlrobot bench`` command that reproduces a run (for the report)."""
    words = ["rlrobot", "bench", "--envs", *args.envs, "--algos", *args.algos]
    options = {
        "--seeds": args.seeds,
        "--steps": args.steps,
        "--n-envs": args.n_envs,
        "--eval-interval": args.eval_interval,
        "--eval-episodes": args.eval_episodes,
        "--baseline": args.baseline,
        "--backend": args.backend,
        "--ray-address": args.ray_address,
        "--cpus-per-trial": args.cpus_per_trial if args.backend == "ray" else None,
    }
    return command_line(words, options, args.overrides, out)


def _execution(args: argparse.Namespace) -> Any:
    import importlib.util

    from rlrobot.benchmark.runner import Execution
    from rlrobot.errors import CommandError

    if args.backend == "ray" and importlib.util.find_spec("ray") is None:
        raise CommandError("--backend ray needs Ray: pip install 'rlrobot[ray]'")
    return Execution(
        args.backend, args.workers, args.ray_address, args.cpus_per_trial, args.retries
    )


def _check_algorithms(algos: Sequence[str]) -> None:
    from rlrobot.agents import ALGORITHMS
    from rlrobot.errors import CommandError

    unknown = [algo for algo in algos if algo not in ALGORITHMS]
    if unknown:
        raise CommandError(f"unknown algorithm(s) {unknown}; choose from {sorted(ALGORITHMS)}")


def _exit_code(out: str, keys: Sequence[str]) -> int:
    from rlrobot.benchmark.runner import TrialStore

    store = TrialStore(out)
    failed = [key for key in keys if (store.load(key) or {}).get("status") != "ok"]
    if failed:
        print(f"{len(failed)} trial(s) failed; see the report")
    return 1 if failed else 0
