"""The generated part of ``perception.md``: how each part was run, its tables and figures.

Everything here reads only the results dict (``perception.json``), so ``rlrobot bench --study
perception --report-only DIR`` rebuilds the page without training. What the numbers mean,
and the prototypes behind the study's choices, are in the page's hand-written findings.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from rlrobot.benchmark.report import markdown_table
from rlrobot.benchmark.studies.perception.falls import FALL_ENV_KWARGS

POSITION_GOAL_M = 0.01  # median error of the target position
F1_GOAL = 0.95  # fall prediction on held-out episodes
PART_LABELS = {"reach": "1a", "reach2": "1b", "falls": "2", "ppo": "3"}


def met(reached: bool) -> str:
    """Return "met" or "not met"."""
    return "met" if reached else "not met"


def last_rollout_return(runs: list[dict[str, Any]]) -> float:
    """Return the mean over seeds of the return of the episodes of each run's last rollout."""
    return float(np.mean([run["curve"][-1]["return"] for run in runs if run["curve"]]))


def render_markdown(results: dict[str, Any]) -> str:
    """Return the generated part of the page from the results of every part run so far."""
    reused = [label for key, label in PART_LABELS.items() if results.get(key, {}).get("reused")]
    lines = [
        "# Perception benchmark",
        "",
        f"Written by `rlrobot bench --study perception`; last run `{results['command']}` on "
        f"{results['machine']}, torch {results['torch']} with {results['threads']} thread(s); "
        f"load average at its start {results['load_average']}, {results['total_s'] / 60:.1f} "
        "min"
        + (f" (parts {', '.join(reused)} reused from the cache)" if reused else "")
        + ". Parts not rerun keep their earlier results; every number is in `perception.json`.",
        "",
        *summary_lines(results),
    ]
    if results.get("reach"):
        lines += reach_lines(results["reach"])
    if results.get("reach2"):
        lines += two_view_lines(results["reach2"])
    if results.get("falls"):
        lines += fall_lines(results["falls"])
    if results.get("ppo"):
        lines += ppo_lines(results["ppo"])
    return "\n".join(lines)


def summary_lines(results: dict[str, Any]) -> list[str]:
    """Return one line per part: the headline number against its goal."""
    lines = ["## Summary", ""]
    if results.get("reach2"):
        best = results["reach2"]["rows"][-1]
        lines.append(
            f"- Reach target position from two orthogonal 84×84 views (side by side, 84×168): "
            f"median error **{100 * best['median_error']:.2f} cm** on held-out episodes with "
            f"{best['train_images']} training images (goal ≤ {100 * POSITION_GOAL_M:g} cm: "
            f"{met(best['median_error'] <= POSITION_GOAL_M)}; see 1b)."
        )
    if results.get("reach"):
        reach = results["reach"]
        best = reach["rows"][-1]
        lines.append(
            f"- Reach target position from the env's one 84×84 camera: median error "
            f"**{100 * best['median_error']:.1f} cm** with {best['train_images']} training "
            f"images (goal {met(best['median_error'] <= POSITION_GOAL_M)}: "
            f"{100 * best['median_lateral_error']:.1f} cm across the camera ray, "
            f"{100 * best['median_depth_error']:.1f} cm along it; ray-ambiguity bound "
            f"{100 * reach['ray_ambiguity_bound']:.1f} cm; see 1a)."
        )
    if results.get("falls"):
        falls = results["falls"]
        metrics = falls["metrics"]
        lines.append(
            f"- Quadruped fall within 10 steps: F1 **{metrics['f1']:.3f}** on held-out episodes "
            f"({falls['final']['predictor']}, chosen on validation; precision "
            f"{metrics['precision']:.3f}, recall {metrics['recall']:.3f}; goal ≥ {F1_GOAL}: "
            f"{met(metrics['f1'] >= F1_GOAL)}, by {metrics['f1'] - F1_GOAL:+.3f}; see 2)."
        )
    if results.get("ppo"):
        ppo = results["ppo"]
        conditions = dict.fromkeys(run["condition"] for run in ppo["runs"])
        described = ", ".join(
            f"{name} {last_rollout_return([r for r in ppo['runs'] if r['condition'] == name]):.1f}"
            for name in conditions
        )
        seeds = len(ppo["runs"]) // len(conditions)
        lines.append(
            f"- Pixel Reach, PPO, {ppo['steps']} steps × {seeds} seeds: return of the last "
            f"rollout {described}; see 3."
        )
    return [*lines, ""]


def figures(*names: str) -> list[str]:
    """Return Markdown image lines for the page's PNGs, by name."""
    return [f"![{name.replace('_', ' ')}](perception_{name}.png)" for name in names]


def reach_lines(reach: dict[str, Any]) -> list[str]:
    """Return section 1a: the target position from the env's one camera."""
    splits, best = reach["dataset"]["splits"], reach["rows"][-1]
    camera = reach["camera"]
    rows = [
        [row["train_images"]]
        + [
            f"{100 * row[key]:.1f} cm"
            for key in (
                "median_error",
                "median_lateral_error",
                "median_depth_error",
                "baseline_median_error",
            )
        ]
        + [f"{row['epochs_run']} ({row['best_epoch']})", f"{row['train_s']:.0f} s"]
        for row in reach["rows"]
    ]
    return [
        "## 1a. Reach: target position from the env's one 84×84 camera",
        "",
        'Data: `rlrobot/Reach-v0` with `obs_mode="pixels"` (the image a pixel agent sees), '
        "random arm motion, colours (±0.15 per channel) and light randomised per episode, 5 "
        f"frames per episode; split by episode ({splits['train']['episodes']} / "
        f"{splits['val']['episodes']} / {splits['test']['episodes']} train/val/test episodes, "
        f"{splits['test']['samples']} test images). Camera: eye at "
        f"{np.round(camera['eye'], 2).tolist()} m, {camera['fov']:g}° field of view. Model: "
        "NatureCNN + linear head, AdamW 3e-4, cosine schedule, early stopping on validation "
        "loss. *Ray-ambiguity bound*: the median 3-D error of an oracle that knows the "
        "target's exact image position but not its depth, computed for targets uniform in the "
        f"goal box: **{100 * reach['ray_ambiguity_bound']:.1f} cm**.",
        "",
        *markdown_table(
            [
                *("training images", "median 3-D error", "across the ray", "along the ray (depth)"),
                *("predict-the-mean", "epochs (best)", "train time"),
            ],
            rows,
            "rrrrrrr",
        ),
        "",
        *figures("reach_error_vs_size"),
        "",
        f"**Goal (≤ {100 * POSITION_GOAL_M:g} cm median error): "
        f"{met(best['median_error'] <= POSITION_GOAL_M)}** — best "
        f"{100 * best['median_error']:.1f} cm with {best['train_images']} images.",
        "",
        "Predicted vs true on the test images (largest training set) and its loss curves:",
        "",
        *figures("reach_test_predicted_vs_true", "reach_loss_curves"),
        "",
    ]


def two_view_lines(reach2: dict[str, Any]) -> list[str]:
    """Return section 1b: the target position from two orthogonal views."""
    splits = reach2["dataset"]["splits"]
    side, front = reach2["cameras"]
    best = reach2["rows"][-1]
    rows = [
        [
            f"{row['train_images']} ({row['train_episodes']})",
            f"{100 * row['median_error']:.2f} cm",
            " / ".join(f"{100 * value:.2f}" for value in row["mae_per_dim"]) + " cm",
            f"{100 * row['baseline_median_error']:.1f} cm",
            f"{row['epochs_run']} ({row['best_epoch']})",
            f"{row['train_s']:.0f} s",
        ]
        for row in reach2["rows"]
    ]
    return [
        "## 1b. Reach: target position from two orthogonal 84×84 views",
        "",
        "`rlrobot.envs.wrappers.MultiViewImages` renders the scene from a side camera (yaw "
        f"{side['yaw']:.0f}°) and a front camera (yaw {front['yaw']:.0f}°), both pitch "
        f"{side['pitch']:.0f}°, {side['distance']} m from {tuple(side['target'])} m with a "
        f"{side['fov']:.0f}° field of view, and puts the two 84×84 views side by side (uint8 "
        "84×168×3). Data: random arm motion, colours (±0.15 per channel) and light randomised "
        "per episode, 3 frames per episode (steps 0, 10, 20), split by episode "
        f"({splits['train']['episodes']} / {splits['val']['episodes']} / "
        f"{splits['test']['episodes']} train/val/test episodes, {splits['test']['samples']} "
        "test images); the smaller training sets are the first episodes of the largest. "
        "Model: NatureCNN + linear head, AdamW 3e-4, cosine schedule to 0, model selection on "
        "validation loss.",
        "",
        *markdown_table(
            [
                *("training images (episodes)", "median 3-D error", "MAE x / y / z"),
                *("predict-the-mean", "epochs (best)", "train time"),
            ],
            rows,
            "rrrrrr",
        ),
        "",
        *figures("reach2_error_vs_size"),
        "",
        f"**Goal (≤ {100 * POSITION_GOAL_M:g} cm median error): "
        f"{met(best['median_error'] <= POSITION_GOAL_M)}** — "
        f"{100 * best['median_error']:.2f} cm with {best['train_images']} training images.",
        "",
        "Predicted vs true on the test images (largest training set) and its loss curves:",
        "",
        *figures("reach2_test_predicted_vs_true", "reach2_loss_curves"),
        "",
    ]


def fall_lines(falls: dict[str, Any]) -> list[str]:
    """Return section 2: fall prediction, the label's definition, data, models, predictors."""
    settings, kicks, metrics = falls["settings"], falls["settings"]["kicks"], falls["metrics"]
    horizon, margin, final = settings["horizon"], settings["margin"], falls["final"]
    splits = falls["splits"]
    episodes = sum(split["episodes"] for split in splits.values())
    window = falls["selected_window"]
    lines = [
        f"## 2. Quadruped: will it fall within the next {horizon} steps?",
        "",
        f'**Label.** 1 when `info["fell"]` (torso below 0.26 m or tilted more than 1 rad) '
        f"comes within N = {horizon} steps (1/6 s) after the window's last observation, else 0. "
        "Windows that end at or after the fall are not samples (already fallen), nor are the "
        f"last {horizon} windows of an episode cut off at {settings['max_steps']} steps "
        f"(unknown future). Windows whose look-ahead holds a kick, and windows whose fall "
        f"comes {horizon + 1}–{horizon + margin} steps ahead (`margin={margin}`), are left out.",
        "",
        f"**Data.** `rlrobot/Quadruped-v0` with `max_torque={FALL_ENV_KWARGS['max_torque']}`, "
        f"policy `{settings['policy']}` (uniform i.i.d. torques in "
        f"±{FALL_ENV_KWARGS['max_torque']} N·m per joint, new at every step), and random kicks "
        "(probability "
        f"{kicks['probability']} per step; upward speed up to {kicks['up_speed']} m/s and spin "
        f"up to {kicks['spin']} rad/s about a random horizontal axis, strength uniform in "
        f"{kicks['strength_range']}). {episodes} episodes with windows, of at most "
        f"{settings['max_steps']} steps, {falls['n_events']} falls; split by episode "
        f"({splits['train']['episodes']} / {splits['val']['episodes']} / "
        f"{splits['test']['episodes']} train/val/test episodes); {falls['n_windows']} windows, "
        f"{100 * falls['positive_fraction']:.1f} % positive; collection seed {settings['seed']}.",
        "",
        "Model: MLP (256, 256) on standardised inputs, AdamW 1e-3 with a cosine schedule, "
        f"batch 256, up to {falls['training']['epochs']} epochs, early stopping and model "
        f"selection on validation F1. Window length (seed 0), then {falls['seeds'] - 1} more "
        "seeds of the selected window:",
        "",
        *markdown_table(
            [
                *(
                    "window (observations)",
                    "seed",
                    "validation F1",
                    "test F1",
                    "precision",
                    "recall",
                ),
                *("accuracy", "epochs (best)", "train time"),
            ],
            [
                [f"{row['window']}{' (selected)' if row['window'] == window else ''}", row["seed"]]
                + [f"{row[key]:.3f}" for key in ("val_f1", "f1", "precision", "recall")]
                + [f"{row['accuracy']:.3f}", f"{row['epochs_run']} ({row['best_epoch']})"]
                + [f"{row['train_s']:.0f} s"]
                for row in [*falls["rows"], *falls["seed_rows"]]
            ],
            "rrrrrrrrr",
        ),
        "",
        f"Predictors on the selected window ({window} observation(s)): one MLP or the "
        "ensemble (mean probability), at p > 0.5 or at the threshold with the best validation "
        "F1; the one with the best validation F1 is the result (test scores of the others are "
        "shown for the record, not used):",
        "",
    ]
    rows = []
    for predictor in falls["predictors"]:
        chosen = predictor["predictor"] == final["predictor"]
        test_f1 = f"{predictor['test']['f1']:.3f}"
        rows.append(
            [
                f"{predictor['predictor']}{' (selected)' if chosen else ''}",
                f"{predictor['val']['f1']:.4f}",
                f"**{test_f1}**" if chosen else test_f1,
                f"{predictor['test']['precision']:.3f}",
                f"{predictor['test']['recall']:.3f}",
            ]
        )
    header = ["predictor", "validation F1", "test F1", "test precision", "test recall"]
    lines += markdown_table(header, rows, "lrrrr")
    single_f1 = [
        row["f1"] for row in [*falls["rows"], *falls["seed_rows"]] if row["window"] == window
    ]
    return [
        *lines,
        "",
        f"Test windows: {metrics['n_samples']}; the majority class (never a fall) has F1 "
        f"{metrics['baseline_f1']:.3f} and accuracy {metrics['baseline_accuracy']:.3f}.",
        "",
        f"**Goal (F1 ≥ {F1_GOAL} on held-out episodes): {met(metrics['f1'] >= F1_GOAL)}** — "
        f"test F1 {metrics['f1']:.3f} (precision {metrics['precision']:.3f}, recall "
        f"{metrics['recall']:.3f}) for {final['predictor']}, window of {window} "
        f"observation(s), chosen on validation; margin {metrics['f1'] - F1_GOAL:+.3f}. The "
        f"single MLPs of the selected window score test F1 {min(single_f1):.3f}–"
        f"{max(single_f1):.3f}; validation and test F1 of the chosen predictor differ by "
        f"{abs(final['val']['f1'] - final['test']['f1']):.3f}.",
        "",
        *figures("falls_test_confusion_matrix", "falls_loss_curves"),
        "",
    ]


def ppo_lines(ppo: dict[str, Any]) -> list[str]:
    """Return section 3: PPO on pixel Reach with each encoder condition."""
    rows = []
    for condition in dict.fromkeys(run["condition"] for run in ppo["runs"]):
        runs = [run for run in ppo["runs"] if run["condition"] == condition]
        returns = np.array([run["eval_return"] for run in runs])
        rows.append(
            [
                condition,
                len(runs),
                f"{last_rollout_return(runs):.2f}",
                f"{returns.mean():.2f} ± {returns.std():.2f}",
                f"{np.mean([run['eval_success'] for run in runs]):.2f}",
                f"{np.mean([run['steps_per_s'] for run in runs]):.0f}",
            ]
        )
    return [
        "## 3. Pixel-based Reach: PPO with the pretrained encoder vs from scratch",
        "",
        "The agent observes the 84×84 image and its end-effector position (`achieved_goal`); "
        "the target is only in the image. `pretrained_frozen`: the single-camera NatureCNN of "
        "1a (largest training set), weights fixed (`PPO(..., image_encoder=load_encoder(path), "
        "freeze_encoder=True)`); `scratch`: PPO's default NatureCNN trained end to end; "
        "`state_oracle`: no image but the true target position (`desired_goal`), the ceiling a "
        "perfect perception module would reach. Same PPO settings for all: "
        f"`{json.dumps(ppo['settings'])}`, dense reward, {ppo['steps']} env steps per run. "
        "Curves: mean return and success of the episodes finished in each rollout (band: range "
        f"over seeds); final evaluation: {ppo['eval_episodes']} deterministic episodes per seed.",
        "",
        *markdown_table(
            [
                *("condition", "seeds", "last-rollout return", "final eval return (mean ± std)"),
                *("final eval success", "train steps/s"),
            ],
            rows,
            "lrrrrr",
        ),
        "",
        *figures("pixel_ppo"),
        "",
    ]
