"""``rlrobot train``: train an agent into a run folder, with evaluation, checkpoints and resume.

Exact resume. A checkpoint ``S`` holds the weights, optimizer, normalisers, global RNG states,
step counter, the replay buffer (with its sampling RNG) and the episodes in progress: every
env's state (physics snapshot, env RNG, time-limit counter, withheld rewards …; see
``rlrobot.envs.state``), the observations the next step starts from, the per-episode
accumulators and the held-back steps of on-policy reward redistribution. Saving changes
nothing, so a run with checkpoints learns what a run without them learns; a run resumed from
``S`` continues those episodes step for step, and ends with the same weights as both. Off-policy
checkpoints fall on a training phase (a multiple of ``train_freq``, which ``learn`` counts from
its start). Periodic evaluations use their own env and leave the global RNG states as they
found them.

Envs that cannot save their state (third-party envs without ``get_state``/``set_state``) fall
back to segments, and the run says so: right after each checkpoint the run abandons the episodes
in progress and starts new ones, with env ``i`` reset with ``segment_seed(seed, S) + i``, and a
resumed run starts the same new episodes. Runs are still reproducible, but ``checkpoint_freq``
then changes what is learned (one abandoned partial episode per env per checkpoint,
bootstrapped like a time-limit truncation). See ``docs/reliability.md``.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from rlrobot.agents.config import resolve_device
from rlrobot.common.evaluation import evaluate_policy
from rlrobot.common.logger import Logger
from rlrobot.common.seeding import get_rng_state, set_rng_state
from rlrobot.envs.checks import short_repr
from rlrobot.errors import RunFolderError
from rlrobot.run.config import ResolvedConfig, algorithm_class, read_run_config
from rlrobot.run.evaluation import format_summary, make_env, vector_env_arguments
from rlrobot.run.folder import RunFolder, read_run_state
from rlrobot.run.lock import LOCK_FILE


def segment_seed(seed: int, step: int) -> int:
    """Return the seed of the episodes a run seeded ``seed`` starts at env step ``step``."""
    return int(np.random.SeedSequence([seed, step]).generate_state(1)[0])


def evaluation_seed(seed: int) -> int:
    """Return the seed of the periodic evaluations (the same episodes every time)."""
    return int(np.random.SeedSequence([seed, 0xE7A1]).generate_state(1)[0])


def tracker_state(tracker: Any) -> dict[str, Any]:
    """Return the recent-episode statistics of an ``EpisodeTracker`` as JSON values."""
    return {
        "recent_returns": list(tracker.recent_returns),
        "recent_lengths": list(tracker.recent_lengths),
        "recent_successes": list(tracker.recent_successes),
        "n_episodes": tracker.n_episodes,
    }


def load_tracker_state(tracker: Any, state: dict[str, Any]) -> None:
    """Restore what ``tracker_state`` returned."""
    for name in ("recent_returns", "recent_lengths", "recent_successes"):
        window = getattr(tracker, name)
        window.clear()
        window.extend(state[name])
    tracker.n_episodes = state["n_episodes"]


def report(message: str, to_stderr: bool = False) -> None:
    """Print a line (a notice: to stderr) without breaking a progress bar that may be on screen."""
    from tqdm.auto import tqdm

    tqdm.write(message, file=sys.stderr if to_stderr else sys.stdout)


def budget_rounding_notice(agent: Any, start_step: int, n_timesteps: int) -> str | None:
    """Return a notice when the agent will overshoot ``n_timesteps``, else None.

    ``learn`` runs whole iterations (on-policy: rollouts of ``n_steps × n_envs`` env steps;
    off-policy: one step of every env), so a budget that is not a multiple of one ends at the
    next multiple (``step 8,192/100``).
    """
    end = start_step + agent.steps_to_run(n_timesteps - start_step)
    if end == n_timesteps:
        return None
    return (
        f"note: training runs whole iterations of {agent.steps_per_iteration:,} env steps "
        f"(on-policy: n_steps × n_envs; off-policy: n_envs), so this run ends at step {end:,}, "
        f"not {n_timesteps:,}"
    )


def episodes_abandoned_notice(resolved: ResolvedConfig) -> str:
    """Return the notice of a run whose envs cannot save their episodes in progress."""
    run = resolved.run
    wrapped = run.env_wrapper or run.frame_stack != 1
    # Only the wrappers of rlrobot and gym.make save their state: others stop an exact resume.
    env = f"{resolved.env} in its env_wrapper/frame_stack wrappers" if wrapped else resolved.env
    return (
        f"note: {env} cannot save its state mid-episode (no get_state/set_state, see "
        "docs/reliability.md), so each checkpoint ends the episodes in progress and starts new "
        "ones: checkpoint_freq changes what is learned"
    )


class RunMonitor:
    """The ``learn`` callback of a run: periodic evaluation, best model, checkpoints, segments.

    Args:
        folder: The run folder.
        resolved: The run's config.
        logger: The run's logger (evaluation results go to it as ``eval/…``).
        eval_env: Env for the periodic evaluations (None: no evaluation).
        start_step: ``num_timesteps`` when this (possibly resumed) run segment starts.
        best_mean_reward: Best evaluation return so far.
        exact_resume: Checkpoints hold the episodes in progress; False: the envs cannot save
            theirs, so each checkpoint starts new episodes (see the module docstring).
    """

    def __init__(
        self,
        folder: RunFolder,
        resolved: ResolvedConfig,
        logger: Logger,
        eval_env: Any,
        start_step: int,
        best_mean_reward: float = -math.inf,
        exact_resume: bool = True,
    ) -> None:
        self.folder, self.resolved, self.logger, self.eval_env = folder, resolved, logger, eval_env
        self.best_mean_reward, self.exact_resume = best_mean_reward, exact_resume
        run = resolved.run
        self.next_evaluation = _next_multiple(start_step, run.eval_freq)
        self.next_checkpoint = _next_multiple(start_step, run.checkpoint_freq)
        self.last_evaluation = self.last_checkpoint = start_step

    def __call__(self, agent: Any) -> bool:
        """Evaluate and checkpoint when due; always continue training."""
        step = agent.num_timesteps
        if self.eval_env is not None and step >= self.next_evaluation:
            self.evaluate(agent)
            self.next_evaluation = _next_multiple(step, self.resolved.run.eval_freq)
        if (
            self.resolved.run.checkpoint_freq
            and step >= self.next_checkpoint
            and (_at_training_phase(agent))
        ):
            self.checkpoint(agent)
            if not self.exact_resume:
                agent.start_new_episodes(segment_seed(self.resolved.seed, step))
            self.next_checkpoint = _next_multiple(step, self.resolved.run.checkpoint_freq)
        return True

    def finish(self, agent: Any) -> None:
        """Evaluate and checkpoint the final agent unless that just happened."""
        step = agent.num_timesteps
        if self.eval_env is not None and self.last_evaluation != step:
            self.evaluate(agent)
        if self.last_checkpoint != step or not self.folder.latest_path.exists():
            self.checkpoint(agent)

    def run_state(self, agent: Any) -> dict[str, Any]:
        """Return what a resumed run needs besides the agent's checkpoint."""
        return {
            "num_timesteps": agent.num_timesteps,
            "episode_tracker": tracker_state(agent.episode_tracker),
            "best_mean_reward": self.best_mean_reward,
        }

    def evaluate(self, agent: Any) -> dict[str, Any]:
        """Evaluate, log ``eval/…``, append to ``evaluations.csv``, keep ``best`` up to date."""
        step, run = agent.num_timesteps, self.resolved.run
        rng_state = get_rng_state()  # evaluation must not change what training samples next
        result = evaluate_policy(
            agent,
            self.eval_env,
            run.eval_episodes,
            run.eval_deterministic,
            seed=evaluation_seed(self.resolved.seed),
        )
        set_rng_state(rng_state)
        summary = result.summary()
        self.folder.append_evaluation({"step": step, **summary})
        self.logger.record("eval/mean_reward", summary["mean_reward"])
        self.logger.record("eval/mean_ep_length", summary["mean_ep_length"])
        if summary["success_rate"] is not None:
            self.logger.record("eval/success_rate", summary["success_rate"])
        self.logger.dump(step)
        improved = summary["mean_reward"] > self.best_mean_reward
        if improved:
            self.best_mean_reward = summary["mean_reward"]
            self.folder.save_best(agent, self.run_state(agent))
        self.last_evaluation = step
        report(
            f"step {step:>9,}/{run.n_timesteps:,}  eval {format_summary(summary)}"
            + ("  (new best)" if improved else "")
        )
        return summary

    def checkpoint(self, agent: Any) -> None:
        """Save ``checkpoints/step_<step>`` and ``latest``; prune old checkpoints."""
        self.folder.save_checkpoint(agent, agent.num_timesteps, self.run_state(agent))
        self.folder.prune_checkpoints(self.resolved.run.keep_checkpoints)
        self.last_checkpoint = agent.num_timesteps


def _at_training_phase(agent: Any) -> bool:
    """Tell whether a segment may end here for an agent that trains every ``train_freq`` steps.

    Off-policy agents count ``train_freq`` (steps or episodes) from the start of each ``learn``
    call; a resumed run trains at the same steps as the uninterrupted one only if segments end
    where a training phase just ended (agents without phases: anywhere).
    """
    return getattr(agent, "at_training_phase", True)


def _next_multiple(step: int, frequency: int) -> int:
    """Return the first multiple of ``frequency`` after ``step`` (infinity for 0)."""
    if frequency <= 0:
        return sys.maxsize
    return (step // frequency + 1) * frequency


def find_resume_point(folder: RunFolder, n_timesteps: int) -> tuple[Path, dict[str, Any]] | None:
    """Return the checkpoint a resume loads and its run state; writes nothing.

    Returns:
        The checkpoint and its run state, or None for a run stopped before its first
        checkpoint (after ``config.yaml`` was written), which a resume trains from the start.

    Raises:
        RunFolderError: A damaged log or checkpoint folder (``RunFolder.check_layout``),
            checkpoints but none complete, or ``n_timesteps`` not above the step count of
            the newest.
    """
    folder.check_layout()
    checkpoint = folder.find_resume_checkpoint()
    if checkpoint is None:
        return None
    state = read_run_state(checkpoint)
    done = state["num_timesteps"]
    if n_timesteps <= done:
        raise RunFolderError(
            f"{folder.path} is already at {done:,} steps; pass --steps above that to continue"
        )
    return checkpoint, state


def check_run(resolved: ResolvedConfig) -> None:
    """Make the checks of a run's start that its config alone cannot, by building its agent
    and envs once (in this process: no workers started) and closing them: the device exists,
    the env id and ``env_kwargs`` make envs, and the buffers fit the machine's memory.

    ``rlrobot train --dry-run`` calls it, so a dry run fails where the run's start would (a
    real run makes these checks when it builds its agent, before it writes anything).

    Raises:
        ConfigError: A device this machine lacks, or buffers it cannot hold.
        EnvMakeError: An unknown env id, keyword or a value the env refuses.
    """
    run = resolved.run
    resolve_device(run.device)
    agent = algorithm_class(resolved.algo)(
        seed=resolved.seed,
        config=resolved.algorithm,
        n_envs=run.n_envs,
        vec_env="sync",
        device=run.device,
        **vector_env_arguments(resolved),
    )
    agent.env.close()


def config_difference(saved: Any, resolved: ResolvedConfig, checkpoint: Path) -> str | None:
    """Describe the keys in which ``resolved`` (a run's ``config.yaml``) differs from
    ``saved``, the config of the checkpoint a resume loads; None when they agree.

    The checkpoint's config is the one its weights and optimizer state were made with, and
    the one a resume trains on: an edit of ``config.yaml`` (``net_arch: [32]``) would be
    ignored while the file claims otherwise. Only run keys (``n_timesteps``) may change.
    """
    saved_values, given = saved.to_dict(), resolved.algorithm.to_dict()
    differing = sorted(key for key in given if saved_values.get(key) != given[key])
    if not differing:
        return None
    changes = "; ".join(
        f"{key}: {short_repr(given[key])} here, {short_repr(saved_values.get(key))} in the "
        "checkpoint"
        for key in differing[:5]
    )
    more = f" (and {len(differing) - 5} more)" if len(differing) > 5 else ""
    return (
        f"differs from its checkpoint {checkpoint.name} in {changes}{more}; a resume trains "
        "on the checkpoint's config: undo the edit, or train a new run"
    )


def train(
    resolved: ResolvedConfig,
    out: str | os.PathLike,
    resume: bool = False,
    progress_bar: bool = True,
    verbose: bool = False,
    tensorboard_log: str | os.PathLike | None = None,
) -> RunFolder:
    """Train ``resolved.algo`` on ``resolved.env`` into the run folder ``out``.

    Args:
        resolved: The run's config (for a resume: the one in ``out/config.yaml``, whose
            ``n_timesteps`` may have been raised).
        out: The run folder; a new run refuses a folder that already holds one.
        resume: Continue from the newest complete checkpoint in ``out``; a run stopped
            before its first checkpoint trains again from step 0 with its config.
        progress_bar: Show a tqdm bar (only on a terminal and outside CI).
        verbose: Also print the SB3-style table of logged values at each log step.
        tensorboard_log: A new run's TensorBoard events go to
            ``tensorboard_log/<run folder name>_N`` (SB3's naming) instead of the run folder,
            which names that folder in ``tensorboard.txt``; a resume writes where the note
            says. None: into the run folder.

    Returns:
        The run folder.

    Raises:
        RunFolderError: Another process is writing ``out``; ``out`` holds a run (and no
            ``resume``), holds no run or only damaged checkpoints (``resume``), or is already
            at ``n_timesteps``; ``tensorboard_log`` with ``resume``.
    """
    if resume and tensorboard_log is not None:
        raise RunFolderError(
            "a resumed run keeps writing its TensorBoard events where it did (tensorboard.txt): "
            "no tensorboard_log"
        )
    folder = RunFolder(out)
    # Held from before the first look at the folder: a second writer is refused before it
    # reads, cleans or writes anything.
    with folder.writer_lock() as stale_holder:
        if stale_holder is not None:
            report(
                f"note: took over {folder.path / LOCK_FILE} from {stale_holder}, which is no "
                "longer running",
                to_stderr=True,
            )
        _train_into(folder, resolved, resume, progress_bar, verbose, tensorboard_log)
    return folder


def _train_into(
    folder: RunFolder,
    resolved: ResolvedConfig,
    resume: bool,
    progress_bar: bool,
    verbose: bool,
    tensorboard_log: str | os.PathLike | None,
) -> None:
    """Do ``train``'s work while it holds the folder's lock."""
    run = resolved.run
    resume_point = None
    if resume:
        folder.require_run()
        # Checked before the clean-up, so a refused resume leaves the folder as it was; the
        # clean-up only touches temporary names, never the checkpoint found here.
        resume_point = find_resume_point(folder, run.n_timesteps)
        folder.remove_temporaries()  # left by a killed run; rewritten from the checkpoint
        if resume_point is None:
            # Nothing of the killed start survives but its config: the run starts again from
            # step 0, and its first evaluation replaces the old ``best``.
            folder.remove_best()
    else:
        folder.check_unused()
    agent_class = algorithm_class(resolved.algo)
    eval_env = make_env(resolved) if run.eval_freq > 0 else None
    env_options = {
        "n_envs": run.n_envs,
        "vec_env": run.vec_env,
        "worker_timeout_s": run.worker_timeout_s,
        "device": run.device,
        **vector_env_arguments(resolved),
    }
    if resume_point is not None:
        checkpoint, state = resume_point
        # No seed: the checkpoint's RNG states are restored instead, and its episodes go on.
        agent = agent_class.load(checkpoint, force_reset=False, **env_options)
        difference = config_difference(agent.config, resolved, checkpoint)
        if difference is not None:
            agent.env.close()
            if eval_env is not None:
                eval_env.close()
            raise RunFolderError(f"{folder.config_path} {difference}")
        load_tracker_state(agent.episode_tracker, state["episode_tracker"])
        best_mean_reward = state["best_mean_reward"]
        report(f"resuming {folder.path} from {checkpoint.name} at step {agent.num_timesteps:,}")
    else:
        agent = agent_class(seed=resolved.seed, config=resolved.algorithm, **env_options)
        best_mean_reward = -math.inf
        if resume:
            report(f"{folder.path} has no checkpoint yet: training it from step 0 again")
    agent.torch_threads = run.torch_threads  # learn uses them, its evaluations included
    if resume:
        folder.truncate_evaluations(agent.num_timesteps)
    # Written once the agent and its envs exist, so a config they reject leaves no run behind;
    # a resume rewrites it only when --steps changed the budget.
    if not resume or read_run_config(folder.config_path).to_dict() != resolved.to_dict():
        folder.write_config(resolved.to_yaml())
    if tensorboard_log is not None:
        report(f"TensorBoard events → {folder.record_tensorboard_folder(tensorboard_log)}")
    start_step = agent.num_timesteps
    notice = budget_rounding_notice(agent, start_step, run.n_timesteps)
    if notice is not None:
        report(notice, to_stderr=True)
    outputs = ("csv", "tensorboard", "stdout") if verbose else ("csv", "tensorboard")
    logger = Logger(
        folder.path,
        outputs,
        resume_step=start_step if resume else None,
        tensorboard_folder=folder.tensorboard_folder(),
    )
    try:
        # A resume continues the checkpoint's episodes if it holds them (``load`` restored them).
        if not agent.episodes_in_progress:
            agent.start_new_episodes(segment_seed(resolved.seed, start_step))
        exact_resume = agent.get_episode_state() is not None
        if not exact_resume and run.checkpoint_freq:
            report(episodes_abandoned_notice(resolved), to_stderr=True)
        monitor = RunMonitor(
            folder, resolved, logger, eval_env, start_step, best_mean_reward, exact_resume
        )
        remaining = run.n_timesteps - start_step  # >= 1: a resume at its budget is refused
        agent.learn(
            remaining,
            callback=monitor,
            reset_num_timesteps=False,  # a resume counts on from its checkpoint
            progress_bar=progress_bar,
            logger=logger,
        )
        monitor.finish(agent)
    finally:
        logger.close()
        agent.env.close()
        if eval_env is not None:
            eval_env.close()
    from rlrobot.run.plotting import plot_runs, read_curve

    if any(read_curve(folder, source) is not None for source in ("train", "eval")):
        plot_runs([folder.path], folder.curve_path, title=f"{resolved.algo} on {resolved.env}")
    else:
        report(
            "note: no episode ended during the run, so there is no learning curve", to_stderr=True
        )
