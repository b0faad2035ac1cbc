"""Studies: planned sets of benchmark runs with a report, run by ``rlrobot bench --study NAME``.

Each study is a module of this package with ``main(options: StudyOptions) -> report path``.
``STUDIES`` names them for the CLI: to add one, write its module and add a ``Study`` line.
``rlrobot bench --study all`` (``make bench``) runs, in this order, every study whose
``in_all`` is set. A study whose module defines ``PARTS`` (the names of the parts of its plan)
runs only the parts ``--only`` names; one with a ``report`` function rebuilds its page from its
saved results with ``--report-only``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from types import ModuleType

from rlrobot.benchmark.runner import Execution
from rlrobot.errors import ConfigError


@dataclass(frozen=True)
class StudyOptions:
    """What ``rlrobot bench --study`` gives a study's ``main``.

    Attributes:
        out_dir: Folder of the study's page (``docs/benchmarks`` for ``make bench``).
        trials_dir: Cache of its finished trials (or run folders), reused by the next run.
        seeds: The seeds of every planned trial.
        execution: Backend and parallelism of the trials (None: 2 local workers).
        budget_scale: Scales every budget of the plan.
        quick: A smoke run: tiny budgets, numbers meaningless.
        command: The command that reproduces the run, for the report.
        only: Parts of the plan to run (names of the module's ``PARTS``; empty: all of them).
    """

    out_dir: Path
    trials_dir: Path
    seeds: Sequence[int]
    execution: Execution | None = None
    budget_scale: float = 1.0
    quick: bool = False
    command: str = ""
    only: Sequence[str] = ()


@dataclass(frozen=True)
class Study:
    """A study as the CLI runs it.

    Attributes:
        module: Its module in this package (imported when it runs, so that ``rlrobot --help``
            loads no study).
        function: Its entry point in that module.
        seeds: Number of seeds (0 … N-1) when ``--seeds`` is not given.
        trials: Folder of its cached trials (or run folders) when ``--trials-dir`` is not
            given, a template of ``{out}`` (the output folder) and ``{name}``; relative to the
            working directory. ``--quick`` always uses ``OUT/NAME_trials``.
        in_all: Whether ``--study all`` runs it.
        report: The function of its module, ``(out_dir) -> report path``, that rewrites its
            page from the results it saved in ``out_dir`` (``--report-only``); None: it has none.
    """

    module: str
    function: str = "main"
    seeds: int = 5
    trials: str = "{out}/{name}_trials"
    in_all: bool = True
    report: str | None = None

    def run(self, options: StudyOptions) -> Path:
        """Import the study's module and run its entry point; return the report's path."""
        return getattr(self._module(), self.function)(options)

    def part_names(self) -> tuple[str, ...]:
        """Return the names ``only`` may choose: its module's ``PARTS`` (none: one piece)."""
        return tuple(getattr(self._module(), "PARTS", ()))

    def rewrite_report(self, out_dir: Path) -> Path:
        """Rewrite the study's page in ``out_dir`` from the results saved there."""
        if self.report is None:
            raise ConfigError(f"the {self.module} study cannot rebuild its page (no report)")
        return getattr(self._module(), self.report)(out_dir)

    def _module(self) -> ModuleType:
        return import_module(f"{__name__}.{self.module}")


STUDIES: dict[str, Study] = {
    "summary": Study("summary", seeds=3, trials="{out}/summary"),
    "on_policy": Study("on_policy", seeds=3, trials="{out}/on_policy", report="rewrite_report"),
    "off_policy": Study("off_policy", report="rewrite_report"),
    "delayed_rewards": Study("delayed_rewards"),
    # The learning tests' exact trials: a measurement for the tests, not a benchmark.
    "delayed_rewards_margins": Study("delayed_rewards", "main_margins", seeds=10, in_all=False),
    # Run folders hold checkpoints and replay buffers: they stay out of docs/.
    "configs": Study("configs", seeds=1, trials="runs/bench_configs"),
    # Env steps/s, a few minutes; the seeds are its repeats.
    "envs": Study("env_speed", seeds=3, report="rewrite_report"),
    # Single-observation latency of the exported policies (about a minute, one thread).
    "export_latency": Study("export_latency", seeds=1, report="rewrite_report"),
    # One update step per optimizer/compile/bfloat16 lever (about two minutes, one thread,
    # up to a minute of it torch.compile's compilation when its cache is cold).
    "update_levers": Study("update_levers", seeds=1, report="rewrite_report"),
    # The long reliability runs (about 30 minutes): they keep nothing but soak.json.
    "soak": Study("soak", seeds=1, report="rewrite_report"),
    # TPE + pruning against random search, tens of minutes on 2 cores; its studies and run
    # folders stay out of docs/.
    "tuning": Study("tuning", seeds=3, trials="runs/tuning_study", report="rewrite_report"),
    # Wall-clock until solved, ours against SB3 (`--time-to-solve`): hours on 2 cores for
    # every case, one trial at a time; its trial cache (curves) stays out of docs/.
    "time_to_solve": Study(
        "time_to_solve", trials="runs/time_to_solve", in_all=False, report="rewrite_report"
    ),
    # Hours of CPU, and its image datasets and models take gigabytes: run on its own, with
    # its cache outside docs/.
    "perception": Study(
        "perception.study",
        seeds=1,
        trials="runs/perception_study",
        in_all=False,
        report="rewrite_report",
    ),
}
