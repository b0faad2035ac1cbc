"""On-policy benchmark: our PPO/A2C (and REINFORCE) against Stable-Baselines3, side by side.

Both libraries get the same hyperparameters (``configs/{algo}.yaml``), the same env ids, number
of envs, seeds and step budgets, and one torch thread each; trials run in a pool of worker
processes with ours and SB3's interleaved, so machine load hits both alike. Final return is the
mean of deterministic evaluation episodes scored by SB3's own ``evaluate_policy``; steps/s is
env steps divided by the wall time of ``learn`` alone. Writes ``docs/benchmarks/on_policy.md``
and ``docs/benchmarks/on_policy.png``.

    python scripts/bench_on_policy.py            # full run (about 15 minutes on 2 cores)
    python scripts/bench_on_policy.py --quick    # smoke run (seconds), writes to a temp folder
"""

from __future__ import annotations

import argparse
import multiprocessing
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ENV_IDS = ["CartPole-v1", "Acrobot-v1", "rlrobot/CartPole-v0", "rlrobot/Reach-v0"]
ALGOS = ["ppo", "a2c", "reinforce"]
SEEDS = [0, 1, 2]
EVAL_EPISODES = 10


def get_hyperparameters(algo: str, env_id: str) -> tuple[dict[str, Any], int, int]:
    """Return ``(config fields, n_envs, n_timesteps)`` from ``configs/{algo}.yaml``."""
    from rlrobot.common.config import load_env_hyperparameters

    values = load_env_hyperparameters(ROOT / "configs" / f"{algo}.yaml", env_id)
    n_envs = int(values.pop("n_envs", 1))
    n_timesteps = int(values.pop("n_timesteps", 50_000))
    return values, n_envs, n_timesteps


def sb3_kwargs(algo: str, config: Any) -> dict[str, Any]:
    """Translate our config into SB3 constructor arguments for the same algorithm."""
    import torch

    from rlrobot.common.networks import get_activation

    def schedule(value: float, kind: str) -> Any:
        return value if kind == "constant" else (lambda progress: value * progress)

    kwargs: dict[str, Any] = {
        "learning_rate": schedule(config.learning_rate, config.lr_schedule),
        "n_steps": config.n_steps,
        "gamma": config.gamma,
        "gae_lambda": config.gae_lambda,
        "ent_coef": config.ent_coef,
        "vf_coef": config.vf_coef,
        "max_grad_norm": config.max_grad_norm,
        "normalize_advantage": config.normalize_advantage,
        "policy_kwargs": {
            "net_arch": {"pi": list(config.net_arch), "vf": list(config.net_arch)},
            "activation_fn": get_activation(config.activation),
            "ortho_init": config.ortho_init,
            "log_std_init": config.log_std_init,
        },
    }
    if algo == "ppo":
        kwargs.update(
            batch_size=config.batch_size,
            n_epochs=config.n_epochs,
            clip_range=schedule(config.clip_range, config.clip_range_schedule),
            clip_range_vf=config.clip_range_vf,
            target_kl=config.target_kl,
        )
        kwargs["policy_kwargs"]["optimizer_kwargs"] = {"eps": config.optimizer_eps}
    else:
        kwargs.update(use_rms_prop=config.optimizer == "rmsprop", rms_prop_eps=config.optimizer_eps)
        if config.optimizer == "adam":
            kwargs["policy_kwargs"].update(
                optimizer_class=torch.optim.Adam, optimizer_kwargs={"eps": config.optimizer_eps}
            )
    return kwargs


def run_trial(trial: dict[str, Any]) -> dict[str, Any]:
    """Run ``train_and_evaluate``; a failing trial is reported, not fatal to the benchmark."""
    try:
        return train_and_evaluate(trial)
    except Exception as error:
        return {**trial, "error": f"{type(error).__name__}: {error}"}


def train_and_evaluate(trial: dict[str, Any]) -> dict[str, Any]:
    """Train and evaluate one (library, algo, env, seed); return scores and the learning curve."""
    import gymnasium as gym
    import torch
    from stable_baselines3.common.evaluation import evaluate_policy

    import rlrobot  # noqa: F401 - registers the rlrobot envs
    from rlrobot.agents import ALGORITHMS

    torch.set_num_threads(1)
    library, algo, env_id, seed, steps = (
        trial[k] for k in ("library", "algo", "env_id", "seed", "steps")
    )
    values, n_envs, _ = get_hyperparameters(algo, env_id)
    config = ALGORITHMS[algo].config_class.from_dict(values)
    curve: list[tuple[int, float]] = []
    if library == "rlrobot":
        agent = ALGORITHMS[algo](env_id, n_envs=n_envs, seed=seed, device="cpu", config=config)

        def record(agent: Any) -> None:
            summary = agent.episode_tracker.summary()
            if summary:
                curve.append((agent.num_timesteps, summary["rollout/ep_rew_mean"]))

        start = time.perf_counter()
        agent.learn(steps, callback=record)
        train_time = time.perf_counter() - start
        model, trained_steps = agent, agent.num_timesteps
    else:
        import stable_baselines3
        from stable_baselines3.common.callbacks import BaseCallback
        from stable_baselines3.common.env_util import make_vec_env

        class Record(BaseCallback):
            def _on_step(self) -> bool:
                return True

            def _on_rollout_end(self) -> None:
                buffer = self.model.ep_info_buffer
                if buffer:
                    reward = float(np.mean([info["r"] for info in buffer]))
                    curve.append((self.model.num_timesteps, reward))

        env = make_vec_env(env_id, n_envs=n_envs, seed=seed)
        policy = (
            "MultiInputPolicy"
            if isinstance(env.observation_space, gym.spaces.Dict)
            else "MlpPolicy"
        )
        sb3_class = getattr(stable_baselines3, algo.upper())
        model = sb3_class(policy, env, seed=seed, device="cpu", **sb3_kwargs(algo, config))
        start = time.perf_counter()
        model.learn(steps, callback=Record())
        train_time = time.perf_counter() - start
        trained_steps = model.num_timesteps
    eval_env = gym.make(env_id)
    eval_env.reset(seed=10_000 + seed)
    mean_return, _ = evaluate_policy(model, eval_env, n_eval_episodes=EVAL_EPISODES, warn=False)
    return {
        **trial,
        "final_return": float(mean_return),
        "train_time": train_time,
        "steps_per_second": trained_steps / train_time,
        "curve": curve,
    }


def confidence_interval(values: list[float]) -> float:
    """Half-width of the 95 % Student-t confidence interval of the mean."""
    t_values = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26}
    if len(values) < 2:
        return float("nan")
    return t_values.get(len(values) - 1, 2.0) * float(np.std(values, ddof=1)) / np.sqrt(len(values))


def write_report(
    results: list[dict[str, Any]],
    out_dir: Path,
    quick: bool,
    wall: float,
    failures: list[dict[str, Any]] | None = None,
) -> Path:
    """Write the markdown table and the learning-curve PNG; return the markdown path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = {}
    for result in results:
        key = (result["env_id"], result["algo"])
        groups.setdefault(key, {}).setdefault(result["library"], []).append(result)
    lines = [
        "| env | algo | library | final return (mean ± 95% CI) | steps/s | wall time/run (s) "
        "| speed-up | return − SB3 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    speedups = []
    for (env_id, algo), by_library in groups.items():
        sb3 = by_library.get("sb3")
        for library in ("rlrobot", "sb3"):
            runs = by_library.get(library)
            if not runs:
                continue
            returns = [r["final_return"] for r in runs]
            sps = float(np.mean([r["steps_per_second"] for r in runs]))
            time_per_run = float(np.mean([r["train_time"] for r in runs]))
            speedup = gap = "—"
            if library == "rlrobot" and sb3:
                ratio = sps / float(np.mean([r["steps_per_second"] for r in sb3]))
                speedups.append(ratio)
                speedup = f"{ratio:.2f}×"
                gap = f"{np.mean(returns) - np.mean([r['final_return'] for r in sb3]):+.1f}"
            lines.append(
                f"| {env_id} | {algo} | {library} | {np.mean(returns):.1f} ± "
                f"{confidence_interval(returns):.1f} | {sps:,.0f} | {time_per_run:.1f} "
                f"| {speedup} | {gap} |"
            )
    n_cols = 4
    n_rows = int(np.ceil(len(groups) / n_cols))
    figure, axes = plt.subplots(n_rows, n_cols, figsize=(4 * n_cols, 3 * n_rows), squeeze=False)
    for axis, ((env_id, algo), by_library) in zip(axes.flat, groups.items(), strict=False):
        for library, runs in sorted(by_library.items()):
            grid = np.linspace(0, max(r["steps"] for r in runs), 50)
            curves = [
                np.interp(grid, *zip(*r["curve"], strict=True), left=np.nan)
                for r in runs
                if r["curve"]
            ]
            if not curves:
                continue
            mean = np.nanmean(curves, axis=0)
            axis.plot(grid, mean, label=library)
            if len(curves) > 1:
                spread = np.nanstd(curves, axis=0)
                axis.fill_between(grid, mean - spread, mean + spread, alpha=0.2)
        axis.set_title(f"{algo.upper()} — {env_id}", fontsize=9)
        axis.set_xlabel("env steps")
        axis.set_ylabel("episode return")
        axis.legend(fontsize=8)
    for axis in list(axes.flat)[len(groups) :]:
        axis.axis("off")
    figure.tight_layout()
    png = out_dir / "on_policy.png"
    figure.savefig(png, dpi=90)
    plt.close(figure)
    import stable_baselines3
    import torch

    seeds = sorted({r["seed"] for r in results})
    geo_mean = float(np.exp(np.mean(np.log(speedups)))) if speedups else float("nan")
    text = [
        "# On-policy benchmark: rlrobot vs Stable-Baselines3",
        "",
        "Written by `scripts/bench_on_policy.py`"
        + (" in `--quick` mode (smoke run, numbers meaningless)." if quick else "."),
        "",
        f"- Seeds {seeds}; hyperparameters from `configs/{{ppo,a2c,reinforce}}.yaml`, the same "
        "for both libraries (SB3 gets the translated config: same net_arch, activation, "
        "orthogonal init, optimizer and eps, schedules, n_envs).",
        f"- Final return: mean of {EVAL_EPISODES} deterministic episodes scored by SB3's "
        "`evaluate_policy` after training; ± is the 95% t-interval over seeds.",
        "- steps/s: env steps / wall time of `learn()` only; 1 torch thread per run; two runs "
        "in parallel on a shared 2-core machine, ours and SB3's interleaved (other engineers "
        "were using the machine too, so absolute figures are noisy; ratios less so).",
        f"- Budgets are small (whole benchmark: {wall / 60:.1f} min): these are short-budget "
        "results, not converged performance. REINFORCE has no SB3 counterpart and is "
        "reported alone (compare it with A2C on the same env).",
        f"- torch {torch.__version__}, SB3 {stable_baselines3.__version__}, Python "
        f"{platform.python_version()}.",
        "",
        *lines,
        "",
        f"Geometric-mean speed-up over SB3: **{geo_mean:.2f}×**.",
        "",
        *(
            f"- Failed trial: {f['library']} {f['algo']} {f['env_id']} seed {f['seed']}: "
            f"`{f['error']}`"
            for f in failures or []
        ),
        "",
        "![learning curves](on_policy.png)",
        "",
        "## Settings for delayed rewards",
        "",
        "When the reward arrives only at the end of an episode every earlier step must learn "
        "from it through the discounted return: keep γ close to 1 (γ ≥ 1 − 1/T for episodes "
        "of T steps: 0.99 for T≈100, 0.999 for T≈1000), use λ between 0.95 and 1 (λ = 1 is "
        "Monte Carlo, which carries the final reward back undiminished by an untrained critic; "
        "smaller λ leans on the critic and propagates the reward only a few steps per update), "
        "and make each rollout hold whole episodes (`n_steps · n_envs` several times T; for "
        "A2C raise `n_steps` well above its default of 5). REINFORCE's Monte Carlo returns need "
        "no critic to carry the reward back but have higher variance; reward normalisation "
        "(`normalize_rewards=True`) helps when the final reward is large.",
        "",
    ]
    markdown = out_dir / "on_policy.md"
    markdown.write_text("\n".join(text))
    return markdown


def main(argv: list[str] | None = None) -> Path:
    """Run the benchmark and write the report; return the markdown path."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (seconds)")
    parser.add_argument("--workers", type=int, default=2, help="parallel trial processes")
    parser.add_argument("--out", type=Path, default=None, help="report folder")
    parser.add_argument("--envs", nargs="+", default=ENV_IDS, help="env ids to run")
    parser.add_argument(
        "--budget-scale", type=float, default=1.0, help="multiply every n_timesteps budget"
    )
    args = parser.parse_args(argv)
    out_dir = args.out or (
        Path(tempfile.mkdtemp(prefix="bench_on_policy_"))
        if args.quick
        else ROOT / "docs" / "benchmarks"
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    trials = []
    envs = args.envs[:1] if args.quick else args.envs
    seeds = SEEDS[:1] if args.quick else SEEDS
    for env_id in envs:
        for algo in ALGOS:
            budget = get_hyperparameters(algo, env_id)[2]
            steps = 512 if args.quick else max(512, int(budget * args.budget_scale))
            libraries = ["rlrobot"] if algo == "reinforce" else ["rlrobot", "sb3"]
            for seed in seeds:
                for library in libraries:
                    trials.append(
                        {
                            "library": library,
                            "algo": algo,
                            "env_id": env_id,
                            "seed": seed,
                            "steps": steps,
                        }
                    )
    # Longest first keeps both workers busy to the end.
    trials.sort(key=lambda t: -t["steps"] * (3 if "Reach" in t["env_id"] else 1))
    start = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    with context.Pool(args.workers, maxtasksperchild=1) as pool:
        results, failures = [], []
        for result in pool.imap_unordered(run_trial, trials):
            if "error" in result:
                failures.append(result)
                print(
                    f"FAILED {result['library']} {result['algo']} {result['env_id']}: "
                    f"{result['error']}"
                )
                continue
            results.append(result)
            print(
                f"[{len(results)}/{len(trials)}] {result['library']:8s} {result['algo']:9s} "
                f"{result['env_id']:22s} seed {result['seed']}: "
                f"return {result['final_return']:8.1f}"
                f"  {result['steps_per_second']:7.0f} steps/s",
                flush=True,
            )
    results.sort(
        key=lambda r: (ENV_IDS.index(r["env_id"]), ALGOS.index(r["algo"]), r["library"], r["seed"])
    )
    markdown = write_report(results, out_dir, args.quick, time.perf_counter() - start, failures)
    print(f"wrote {markdown}")
    return markdown


if __name__ == "__main__":
    main()
