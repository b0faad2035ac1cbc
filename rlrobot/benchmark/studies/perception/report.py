"""The generated part of ``perception.md``: how each part was run, its tables and figures.

Everything here reads only the results dict (``perception.json``), so ``rlrobot bench --study
perception --report-only DIR`` rebuilds the page without training. What the numbers mean,
and the prototypes behind the study's choices, are in the page's hand-written findings.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np

from rlrobot.benchmark.report import markdown_table
from rlrobot.benchmark.studies.perception.falls import FALL_ENV_KWARGS

POSITION_GOAL_M = 0.01  # median error of the target position
F1_GOAL = 0.95  # fall prediction on held-out episodes
PART_LABELS = {"reach": "1a", "reach2": "1b", "falls": "2", "ppo": "3"}
PART_LABELS |= {"ssl_falls": "4a-4b", "ssl_reach": "4c"}
# Part 4's goals at 5 % of the labels, against the supervised model on all of them.
FEW_LABEL_FRACTION = 0.05
FEW_LABEL_F1_GAP = 0.02  # falls: F1 at most this much lower
FEW_LABEL_ERROR_RATIO = 1.10  # target position: median error at most 10 % higher


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
    if results.get("ssl_falls") or results.get("ssl_reach"):
        lines += self_supervised_lines(results.get("ssl_falls"), results.get("ssl_reach"))
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
    if results.get("ssl_falls"):
        vae_f1, supervised_f1 = few_label_falls_goal(results["ssl_falls"])
        anomaly = results["ssl_falls"]["anomaly"]
        detector = next(r for r in anomaly["rows"] if r["score"] == anomaly["selected"])
        reference = next(r for r in anomaly["rows"] if r["score"] == "supervised MLP")
        lines.append(
            f"- Falls from 5 % of the labels: β-VAE features + head F1 **{vae_f1:.3f}** vs the "
            f"supervised MLP on all labels {supervised_f1:.3f} (goal within "
            f"{FEW_LABEL_F1_GAP}: {met(vae_f1 >= supervised_f1 - FEW_LABEL_F1_GAP)}, "
            f"{vae_f1 - supervised_f1:+.3f}); a β-VAE of normal gait as a fall detector "
            f"({anomaly['selected']}): AUROC **{detector['auroc']:.3f}** vs "
            f"{reference['auroc']:.3f} supervised; see 4a-4b."
        )
    if results.get("ssl_reach"):
        vae_error, supervised_error = few_label_reach_goal(results["ssl_reach"])
        lines.append(
            f"- Reach target position from 5 % of the labels: β-VAE features + head "
            f"**{100 * vae_error:.1f} cm** vs the NatureCNN on all labels "
            f"{100 * supervised_error:.1f} cm (goal ≤ +10 %: "
            f"{met(vae_error <= FEW_LABEL_ERROR_RATIO * supervised_error)}, "
            f"{100 * (vae_error / supervised_error - 1):+.0f} %); see 4c."
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


def few_label_falls_goal(ssl_falls: dict[str, Any]) -> tuple[float, float]:
    """Test F1 of the VAE head at 5 % of the labels and of the supervised MLP at 100 %."""
    index = ssl_falls["fractions"].index(FEW_LABEL_FRACTION)
    return ssl_falls["vae_head"][index]["test"]["f1"], ssl_falls["supervised"][-1]["test"]["f1"]


def few_label_reach_goal(ssl_reach: dict[str, Any]) -> tuple[float, float]:
    """Median test error (m) of the VAE head at 5 % of the labels and of the CNN at 100 %."""
    index = ssl_reach["fractions"].index(FEW_LABEL_FRACTION)
    head = ssl_reach["vae_head"][index]["test"]["median_error"]
    return head, ssl_reach["supervised"][-1]["median_error"]


def vae_row(name: str, vae: dict[str, Any]) -> list[Any]:
    """One row of the β-VAE table."""
    test = vae["test"]
    return [
        name,
        vae["train_samples"],
        f"{test['reconstruction_mse']:.4f}",
        f"{test['baseline_reconstruction_mse']:.4f}",
        f"{test['kl']:.1f}",
        f"{vae['epochs_run']} ({vae['best_epoch']})",
        f"{vae['train_s']:.0f} s",
    ]


def self_supervised_lines(
    ssl_falls: dict[str, Any] | None, ssl_reach: dict[str, Any] | None
) -> list[str]:
    """Return section 4: β-VAE features with few labels (falls, Reach), falls as anomalies."""
    settings = (ssl_falls or ssl_reach)["settings"]
    head = (ssl_falls or ssl_reach)["head"]
    betas = " and ".join(
        f"{part['settings']['vae']['beta']:g} ({name})"
        for name, part in (("windows", ssl_falls), ("images", ssl_reach))
        if part
    )
    vaes = []
    if ssl_falls:
        vaes.append(vae_row("ant windows (all)", ssl_falls["vae"]))
        vaes.append(vae_row("ant windows (normal gait only, 4b)", ssl_falls["anomaly"]["vae"]))
    if ssl_reach:
        vaes.append(vae_row("Reach 84×84 images", ssl_reach["vae"]))
    lines = [
        "## 4. Self-supervised features: β-VAE, few labels, falls as anomalies",
        "",
        "A β-VAE (`rlrobot perception train --objective vae`) learns the inputs without labels: "
        "for the ant's windows an MLP encoder (256, 256) → a Gaussian posterior with "
        f"{settings['vae']['latent_dim']} dimensions → the MLP reversed, on standardised "
        "inputs; for images a NatureCNN encoder → the posterior → NatureCNN mirrored "
        "(transposed convolutions, sigmoid pixels, starting from the mean image); loss "
        f"Σ (x̂ − x)² + β·KL with β = {betas}, AdamW "
        f"{settings['vae_training']['learning_rate']:g}, early stopping on validation loss. "
        "Its features are the posterior mean. *Few labels*: the first 1 %, 5 %, 20 % or 100 % "
        "of the training episodes keep their labels; the supervised model of part 2 (MLP) or "
        f"1a (NatureCNN) and a small head (MLP {tuple(head['hidden_sizes'])}) on the frozen "
        "β-VAE features learn from them, with the same training settings, at least "
        f"{settings['min_steps']} updates (the smaller sets run more epochs), and the full "
        "validation split for early stopping and model selection (the same for both). "
        "Reconstruction error: mean squared error per input dimension in the "
        "preprocessed space (pixels in [0, 1], standardised features), next to that of the "
        "train-set mean input.",
        "",
        *markdown_table(
            [
                *("β-VAE of", "training samples", "test reconstruction MSE", "mean input's MSE"),
                *("KL (nats)", "epochs (best)", "train time"),
            ],
            vaes,
            "lrrrrrr",
        ),
        "",
    ]
    if ssl_falls:
        lines += few_label_falls_lines(ssl_falls) + anomaly_lines(ssl_falls)
    if ssl_reach:
        lines += few_label_reach_lines(ssl_reach)
    return lines


def fraction_rows(
    part: dict[str, Any], samples: tuple[str, str], cells: Callable[[dict, dict], list[str]]
) -> list[list[str]]:
    """One table row per label fraction: the fraction, then ``cells(supervised, head)``.

    ``samples`` is the supervised rows' key of the labelled samples and their name.
    """
    key, name = samples
    return [
        [
            f"{100 * fraction:g} % ({supervised['train_episodes']} episodes, "
            f"{supervised[key]} {name})",
            *cells(supervised, head),
        ]
        for fraction, supervised, head in zip(
            part["fractions"], part["supervised"], part["vae_head"], strict=True
        )
    ]


def few_label_falls_lines(ssl_falls: dict[str, Any]) -> list[str]:
    """Return section 4a: fall prediction from few labels, VAE head vs supervised MLP."""

    def cells(supervised: dict[str, Any], head: dict[str, Any]) -> list[str]:
        return [
            f"{supervised['test']['f1']:.3f}",
            f"{head['test']['f1']:.3f}",
            f"{supervised['test']['precision']:.3f} / {supervised['test']['recall']:.3f}",
            f"{head['test']['precision']:.3f} / {head['test']['recall']:.3f}",
            f"{supervised['train_s']:.0f} s / {head['train_s']:.0f} s",
        ]

    rows = fraction_rows(ssl_falls, ("train_samples", "windows"), cells)
    vae_f1, supervised_f1 = few_label_falls_goal(ssl_falls)
    splits = ssl_falls["splits"]
    return [
        "### 4a. Falls from few labels",
        "",
        f"Data: part 2's kicked ant (same env, kicks, label and exclusions), "
        f"{sum(s['episodes'] for s in splits.values())} episodes, {ssl_falls['n_windows']} "
        f"windows of 4 observations, {100 * ssl_falls['positive_fraction']:.1f} % positive; "
        f"split by episode ({splits['train']['episodes']} / {splits['val']['episodes']} / "
        f"{splits['test']['episodes']}). Both models see the whole 4-observation window. "
        "Test F1 of the fall class at p > 0.5:",
        "",
        *markdown_table(
            [
                *("labels", "supervised MLP F1", "β-VAE + head F1"),
                *("supervised precision / recall", "β-VAE + head precision / recall"),
                "train time (supervised / head)",
            ],
            rows,
            "lrrrrr",
        ),
        "",
        f"**Goal (5 % of the labels within {FEW_LABEL_F1_GAP} F1 of the supervised model on "
        f"100 %): {met(vae_f1 >= supervised_f1 - FEW_LABEL_F1_GAP)}** — {vae_f1:.3f} vs "
        f"{supervised_f1:.3f} ({vae_f1 - supervised_f1:+.3f}).",
        "",
        *figures("ssl_falls_reconstructions", "ssl_falls_latents"),
        "",
    ]


def anomaly_lines(ssl_falls: dict[str, Any]) -> list[str]:
    """Return section 4b: the normal-gait β-VAE as a fall detector."""
    anomaly = ssl_falls["anomaly"]
    rates = [key for key in anomaly["rows"][0]["average_precision"] if key != "data"]
    rows = []
    for row in anomaly["rows"]:
        name = row["score"] + (" (selected)" if row["score"] == anomaly["selected"] else "")
        rows.append(
            [name, f"{row['val_auroc']:.3f}", f"{row['auroc']:.3f}"]
            + [f"{row['average_precision'][key]:.3f}" for key in ("data", *rates)]
            + [f"{row['precision_at_recall_0.5'][key]:.3f}" for key in ("data", *rates)]
        )
    data_rate = f"{100 * anomaly['test_fall_rate']:.1f} %"
    rate_names = [f"{100 * float(rate):g} %" for rate in rates]
    header = ["score", "val AUROC", "test AUROC"]
    header += [f"AP at {rate}" for rate in (data_rate, *rate_names)]
    header += [f"precision at recall 0.5, {rate}" for rate in (data_rate, *rate_names)]
    return [
        "### 4b. Falls as anomalies: a β-VAE of normal gait",
        "",
        f"The β-VAE learns only windows with no fall ahead ({anomaly['normal_train_windows']} "
        "training windows; no fall label is used to train it). Scores of a test window: its "
        "reconstruction error, its negative ELBO (summed squared error + KL) and the "
        "Mahalanobis distance of its code under a Gaussian fitted to the training codes; the "
        "detector is the score with the best validation AUROC. The reference is the "
        "supervised MLP of 4a trained on all labels (its fall probability). AUROC does not "
        "depend on the fall rate; average precision (AP, the area under the precision-recall "
        f"curve) and precision do: they are given at the test split's rate ({data_rate}) and "
        "at rarer falls, every normal window kept and the fall windows subsampled "
        "(mean of 20 draws, the same for every score).",
        "",
        *markdown_table(header, rows, "l" + "r" * (len(header) - 1)),
        "",
        *figures("ssl_falls_precision_recall"),
        "",
    ]


def few_label_reach_lines(ssl_reach: dict[str, Any]) -> list[str]:
    """Return section 4c: Reach's target position from few labels."""

    def cells(supervised: dict[str, Any], head: dict[str, Any]) -> list[str]:
        return [
            f"{100 * supervised['median_error']:.1f} cm",
            f"{100 * head['test']['median_error']:.1f} cm",
            f"{100 * supervised['baseline_median_error']:.1f} cm",
            f"{supervised['train_s']:.0f} s / {head['train_s']:.0f} s",
        ]

    rows = fraction_rows(ssl_reach, ("train_images", "images"), cells)
    vae_error, supervised_error = few_label_reach_goal(ssl_reach)
    splits = ssl_reach["splits"]
    return [
        "### 4c. Reach target position from few labels",
        "",
        "Data: part 1a's images (the env's one 84×84 camera, colours and light randomised), "
        f"split by episode ({splits['train']['episodes']} / {splits['val']['episodes']} / "
        f"{splits['test']['episodes']} episodes, {splits['train']['samples']} training "
        "images). The supervised model is 1a's NatureCNN with 1a's settings. Median 3-D "
        "error on the test images:",
        "",
        *markdown_table(
            [
                *("labels", "supervised NatureCNN", "β-VAE + head", "predict-the-mean"),
                "train time (supervised / head)",
            ],
            rows,
            "lrrrr",
        ),
        "",
        f"**Goal (5 % of the labels within 10 % of the supervised model's error on 100 %): "
        f"{met(vae_error <= FEW_LABEL_ERROR_RATIO * supervised_error)}** — "
        f"{100 * vae_error:.1f} cm vs {100 * supervised_error:.1f} cm "
        f"({100 * (vae_error / supervised_error - 1):+.0f} %).",
        "",
        *figures("ssl_reach_reconstructions", "ssl_reach_latents"),
        "",
    ]
