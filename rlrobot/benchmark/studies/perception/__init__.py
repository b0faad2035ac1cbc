"""Perception study: ``perception.md``, its PNGs and ``perception.json``, on data our envs generate.

Parts (``rlrobot bench --study perception --only …``; each merges into ``perception.json``):

- ``reach`` (1a, ``reach.py``): a NatureCNN regresses Reach's target position (x, y, z) (m)
  from the env's 84×84 camera (colours and light randomised per episode); median error on
  held-out episodes against the number of training images, split along and across the camera
  ray, next to the *ray-ambiguity bound* (an oracle that knows the target's exact image
  position but nothing about its depth).
- ``reach2`` (1b, ``reach.py``): the same from two orthogonal 84×84 views side by side
  (``MultiViewImages``), which removes the depth ambiguity.
- ``falls`` (2, ``falls.py``): an MLP reads windows of the kicked ant's proprioception and
  predicts "falls within the next 10 steps"; window length, an ensemble of seeds and a
  decision threshold are candidates chosen on validation F1; test F1 of the fall class.
- ``ppo`` (3, ``pixel_ppo.py``): PPO on pixel Reach (image and end-effector position, not the
  target) with the frozen encoder of 1a or a NatureCNN from scratch, against an agent given
  the true target; ≥ 3 seeds, return and success against env steps, a final evaluation.
- ``ssl_falls`` (4a, 4b) and ``ssl_reach`` (4c, ``self_supervised.py``): β-VAE features with a
  small head against the supervised models on 1–100 % of the labels; a β-VAE of normal gait
  as a fall detector (AUROC, precision-recall, rare fall rates).

Datasets, models and each part's results are cached in ``trials_dir`` (one folder per
budget) and reused by the next run; delete the folder to measure again. ``report.py`` writes
the page; the findings and the choices the prototypes guided are hand-written there.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

BUDGETS = {
    "full": {
        "reach_episodes": 800,
        "reach_train_episodes": (80, 160, 320, 640),
        "reach_epochs": 40,
        "reach_min_steps": 1200,
        "reach2_episodes": 4000,
        "reach2_train_episodes": (400, 1200, 3600),
        "reach2_epochs": 30,
        "reach2_min_steps": 1000,
        "fall_episodes": 7000,
        "fall_seeds": 5,
        "ppo_steps": 10_240,
        "ppo_seeds": 3,
        "eval_episodes": 20,
        "ssl_fall_episodes": 1500,
        "ssl_reach_episodes": 400,
        "ssl_vae_epochs": 15,
        "ssl_reach_epochs": 30,
        "ssl_reach_min_steps": 500,
        "ssl_min_steps": 600,
    },
    "quick": {
        "reach_episodes": 40,
        "reach_train_episodes": (16, 32),
        "reach_epochs": 2,
        "reach_min_steps": 0,
        "reach2_episodes": 40,
        "reach2_train_episodes": (16, 32),
        "reach2_epochs": 2,
        "reach2_min_steps": 0,
        "fall_episodes": 30,
        "fall_seeds": 2,
        "ppo_steps": 1024,
        "ppo_seeds": 2,
        "eval_episodes": 2,
        "ssl_fall_episodes": 30,
        "ssl_reach_episodes": 20,
        "ssl_vae_epochs": 2,
        "ssl_reach_epochs": 2,
        "ssl_reach_min_steps": 0,
        "ssl_min_steps": 0,
    },
}
# Budget keys that --budget-scale scales: the amounts of data and of training.
SCALED_KEYS = ("reach_episodes", "reach_train_episodes", "reach2_episodes")
SCALED_KEYS += ("reach2_train_episodes", "fall_episodes", "ppo_steps")
SCALED_KEYS += ("ssl_fall_episodes", "ssl_reach_episodes")


def scaled_budget(quick: bool, budget_scale: float) -> dict[str, Any]:
    """Return the budget of a run: quick or full, its data and training amounts scaled."""

    def scale(value: int) -> int:
        return max(2, round(value * budget_scale))

    budget = dict(BUDGETS["quick" if quick else "full"])
    for key in SCALED_KEYS:
        value = budget[key]
        budget[key] = tuple(map(scale, value)) if isinstance(value, tuple) else scale(value)
    return budget


def cached(path: Path, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Return what an earlier run saved at ``path`` (marked ``reused``), else save ``compute()``."""
    if path.is_file():
        return {**json.loads(path.read_text()), "reused": True}
    result = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    return result
