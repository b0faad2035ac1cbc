"""``rlrobot bench --study perception``: run the chosen parts and write the page."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch

import rlrobot
from rlrobot.benchmark.report import merge_results, write_keeping_findings
from rlrobot.benchmark.studies import StudyOptions
from rlrobot.benchmark.studies.perception import scaled_budget
from rlrobot.benchmark.studies.perception.falls import run_fall_prediction
from rlrobot.benchmark.studies.perception.pixel_ppo import run_pixel_ppo
from rlrobot.benchmark.studies.perception.reach import run_reach_regression, run_two_view_reach
from rlrobot.benchmark.studies.perception.report import render_markdown
from rlrobot.benchmark.studies.perception.self_supervised import run_ssl_falls, run_ssl_reach

PARTS = ("reach", "reach2", "falls", "ppo", "ssl_falls", "ssl_reach")


def main(options: StudyOptions) -> Path:
    """Run the chosen parts, merge them into ``perception.json``, write the page (``out_dir``).

    ``trials_dir`` caches datasets, models and results, one folder per budget (``full``,
    ``quick``, times ``budget_scale``); ``ppo`` needs ``reach``'s encoder, so it runs (or
    reuses) ``reach`` too. Seeds and execution are not used: the budget fixes the seeds and
    everything runs in this process with one torch thread.
    """
    torch.set_num_threads(1)
    budget = scaled_budget(options.quick, options.budget_scale)
    work = options.trials_dir / ("quick" if options.quick else "full")
    if options.budget_scale != 1.0:
        work = work.with_name(f"{work.name}_x{options.budget_scale:g}")
    out_dir, parts = options.out_dir, options.only or PARTS
    out_dir.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    results: dict[str, Any] = {
        "command": options.command,
        "machine": f"{platform.machine()} with {os.cpu_count()} cores",
        "torch": torch.__version__,
        "rlrobot": rlrobot.__version__,
        "threads": torch.get_num_threads(),
        "load_average": [round(x, 1) for x in os.getloadavg()],
    }
    if "reach" in parts or "ppo" in parts:
        results["reach"] = run_reach_regression(budget, out_dir, work)
    if "reach2" in parts:
        results["reach2"] = run_two_view_reach(budget, out_dir, work)
    if "falls" in parts:
        results["falls"] = run_fall_prediction(budget, out_dir, work)
    if "ppo" in parts:
        encoder = results["reach"]["encoder_checkpoint"]
        results["ppo"] = run_pixel_ppo(budget, out_dir, work, encoder)
    if "ssl_falls" in parts:
        results["ssl_falls"] = run_ssl_falls(budget, out_dir, work)
    if "ssl_reach" in parts:
        results["ssl_reach"] = run_ssl_reach(budget, out_dir, work)
    results["total_s"] = time.perf_counter() - start
    merge_results(out_dir / "perception.json", results)
    return rewrite_report(out_dir)


def rewrite_report(out_dir: Path) -> Path:
    """Rewrite ``out_dir/perception.md`` from ``out_dir/perception.json``; return its path."""
    results = json.loads((out_dir / "perception.json").read_text())
    return write_keeping_findings(out_dir / "perception.md", render_markdown(results))
