"""A run interrupted after a checkpoint and resumed ends exactly like the uninterrupted run."""

import itertools

import numpy as np
import pytest
import torch

from rlrobot.common.checkpoint import load_checkpoint, unpack_state
from rlrobot.errors import RunFolderError
from rlrobot.run.config import resolve_config
from rlrobot.run.folder import RunFolder, read_csv_rows
from rlrobot.run.training import RunMonitor, train

# Small budgets with every piece of state a resume must restore: a linear learning-rate schedule
# (step counter), observation and reward normalisation, Adam moments, sampling RNG; episodes
# (500 steps at most) run across every checkpoint. ``ppo-delayed`` adds a delayed reward,
# withheld inside the env, whose steps PPO holds back until it is paid.
CASES = {
    "ppo": (
        "ppo",
        "rlrobot/CartPole-v0",
        [
            "n_envs=2",
            "n_steps=64",
            "batch_size=64",
            "n_epochs=2",
            "lr_schedule=linear",
            "clip_range_schedule=linear",
            "normalize_observations=true",
            "normalize_rewards=true",
        ],
        768,
    ),
    "ppo-delayed": (
        "ppo",
        "rlrobot/CartPole-v0",
        [
            "n_envs=2",
            "n_steps=32",
            "batch_size=32",
            "n_epochs=2",
            "reward_redistribution=uniform",
            "env_kwargs.reward_mode=delayed",
        ],
        384,
    ),
    "sac": (
        "sac",
        "rlrobot/CartPoleContinuous-v0",
        [
            "n_envs=2",
            "net_arch=[32, 32]",
            "batch_size=32",
            "learning_starts=64",
            "train_freq=2",
            "buffer_size=2000",
            "log_interval=32",
            "lr_schedule=linear",
        ],
        384,
    ),
    "td3": (
        "td3",
        "rlrobot/CartPoleContinuous-v0",
        ["n_envs=2", "net_arch=[32, 32]", "batch_size=32", "learning_starts=64", "log_interval=32"],
        384,
    ),
}
WALL_CLOCK = ("time/fps", "time/time_elapsed")


class Crash(Exception):
    """Stands for a killed process."""


def _resolved(case, checkpoints=True):
    algo, env_id, overrides, steps = CASES[case]
    checkpoint_freq = steps // 3 if checkpoints else 0
    run_settings = [
        f"checkpoint_freq={checkpoint_freq}",
        f"eval_freq={steps // 6}",
        "eval_episodes=2",
    ]
    return resolve_config(
        algo, env_id, seed=3, overrides=[*overrides, *run_settings], explicit={"n_timesteps": steps}
    )


def _checkpoint_state(path):
    """Weights and training state of a checkpoint, less its wall-clock training time."""
    tensors, metadata = load_checkpoint(path)
    weights = {k: v for k, v in tensors.items() if not k.startswith("state/")}
    state = unpack_state(metadata["state"], tensors)
    state.pop("time_elapsed")
    return {"weights": weights, "state": state}


def _assert_same(expected, actual, where="checkpoint"):
    if isinstance(expected, dict):
        assert expected.keys() == actual.keys(), where
        for key in expected:
            _assert_same(expected[key], actual[key], f"{where}/{key}")
    elif isinstance(expected, list):
        assert len(expected) == len(actual), where
        for index, (left, right) in enumerate(zip(expected, actual, strict=True)):
            _assert_same(left, right, f"{where}/{index}")
    elif isinstance(expected, torch.Tensor):
        assert torch.equal(expected, actual), where
    else:
        # A 0-d statistic may come back from a checkpoint with shape (1,); compare values.
        assert np.array_equal(np.ravel(expected), np.ravel(actual)), where


def _comparable_rows(folder):
    rows = read_csv_rows(folder.progress_path)
    return [
        {k: None if np.isnan(v) else v for k, v in row.items() if k not in WALL_CLOCK}
        for row in rows
    ]


def _crash(resolved, out, crash_step, monkeypatch):
    """Train into ``out`` and crash after the monitor's call at ``crash_step``; the folder."""
    original_call = RunMonitor.__call__

    def crash_after_monitor(self, agent):
        result = original_call(self, agent)
        if agent.num_timesteps >= crash_step:
            raise Crash
        return result

    monkeypatch.setattr(RunMonitor, "__call__", crash_after_monitor)
    with pytest.raises(Crash):
        train(resolved, out, progress_bar=False)
    monkeypatch.undo()
    return RunFolder(out)


def _crash_and_resume(resolved, out, crash_step, monkeypatch):
    """Train into ``out``, crash after the first env step at ``crash_step``, then resume."""
    interrupted = _crash(resolved, out, crash_step, monkeypatch)
    # The crash came after the first checkpoint, with logs and evaluations past it to discard.
    assert [step for step, _ in interrupted.step_checkpoints()][-1] < crash_step
    assert read_csv_rows(interrupted.progress_path)[-1]["step"] >= crash_step
    return train(resolved, out, resume=True, progress_bar=False)


@pytest.mark.parametrize("case", sorted(CASES))
def test_runs_with_and_without_checkpoints_and_a_resumed_run_end_the_same(
    tmp_path, monkeypatch, case
):
    resolved = _resolved(case)
    crash_step = resolved.run.checkpoint_freq + resolved.run.checkpoint_freq // 2
    full = train(resolved, tmp_path / "full", progress_bar=False)
    # Checkpoints change nothing: a run without them (but the final one) learns the same.
    plain = train(_resolved(case, checkpoints=False), tmp_path / "plain", progress_bar=False)
    assert len(full.step_checkpoints()) > len(plain.step_checkpoints()) == 1
    _assert_same(_checkpoint_state(full.latest_path), _checkpoint_state(plain.latest_path))
    assert _comparable_rows(plain) == _comparable_rows(full)
    assert plain.evaluations_path.read_text() == full.evaluations_path.read_text()

    resumed = _crash_and_resume(resolved, tmp_path / "resumed", crash_step, monkeypatch)

    # Weights, optimizer moments, normaliser statistics, RNG states, step counter, episodes.
    _assert_same(_checkpoint_state(full.latest_path), _checkpoint_state(resumed.latest_path))
    assert _comparable_rows(resumed) == _comparable_rows(full)
    assert resumed.evaluations_path.read_text() == full.evaluations_path.read_text()
    # The counters go on across the resume: iterations (in the rows compared above) and the
    # training time, which adds the time before the crash to the time after it.
    rows = read_csv_rows(resumed.progress_path)
    times = [row["time/time_elapsed"] for row in rows if not np.isnan(row["time/time_elapsed"])]
    assert len(times) >= 4
    assert all(later > earlier for earlier, later in itertools.pairwise(times)), times


def test_an_env_without_state_starts_new_episodes_at_checkpoints_and_says_so(
    tmp_path, monkeypatch, capsys
):
    # Gymnasium's CartPole has no get_state: each checkpoint starts new episodes (segments).
    overrides = ["n_envs=2", "n_steps=32", "batch_size=32", "n_epochs=1", "eval_freq=0"]

    def resolved(checkpoint_freq):
        return resolve_config(
            "ppo",
            "CartPole-v1",
            seed=3,
            overrides=[*overrides, f"checkpoint_freq={checkpoint_freq}"],
            explicit={"n_timesteps": 384},
        )

    full = train(resolved(128), tmp_path / "full", progress_bar=False)
    assert "CartPole-v1 cannot save its state mid-episode" in capsys.readouterr().err
    plain = train(resolved(0), tmp_path / "plain", progress_bar=False)
    assert "cannot save its state" not in capsys.readouterr().err  # no checkpoints, no notice
    # Checkpoints then change what is learned, and a resumed run still ends like the full one.
    full_weights, plain_weights = (
        _checkpoint_state(run.latest_path)["weights"] for run in (full, plain)
    )
    assert not all(torch.equal(full_weights[key], plain_weights[key]) for key in full_weights)
    resumed = _crash_and_resume(resolved(128), tmp_path / "resumed", 192, monkeypatch)
    _assert_same(_checkpoint_state(full.latest_path), _checkpoint_state(resumed.latest_path))
    assert _comparable_rows(resumed) == _comparable_rows(full)


def test_a_run_stopped_before_its_first_checkpoint_resumes_from_the_start(
    tmp_path, monkeypatch, capsys
):
    from rlrobot.cli import main

    resolved = _resolved("ppo")
    full = train(resolved, tmp_path / "full", progress_bar=False)
    out = tmp_path / "stopped"
    # After the first evaluation (logs, evaluations.csv, best/), before the first checkpoint.
    crash_step = resolved.run.eval_freq
    assert crash_step < resolved.run.checkpoint_freq
    stopped = _crash(resolved, out, crash_step, monkeypatch)
    assert stopped.config_path.is_file() and stopped.best_path.is_dir()
    assert not stopped.latest_path.exists() and not stopped.step_checkpoints()
    assert stopped.find_resume_checkpoint() is None
    capsys.readouterr()

    assert main(["train", "--resume", "--out", str(out), "--no-progress"]) == 0
    assert "has no checkpoint yet: training it from step 0 again" in capsys.readouterr().out
    _assert_same(_checkpoint_state(full.latest_path), _checkpoint_state(stopped.latest_path))
    _assert_same(_checkpoint_state(full.best_path), _checkpoint_state(stopped.best_path))
    assert _comparable_rows(stopped) == _comparable_rows(full)
    assert stopped.evaluations_path.read_text() == full.evaluations_path.read_text()


def test_a_resume_refuses_a_run_whose_checkpoints_are_all_damaged(tmp_path):
    resolved = _resolved("ppo")
    folder = train(resolved, tmp_path / "run", progress_bar=False)
    for _, path in folder.step_checkpoints():
        (path / "run_state.json").unlink()
    (folder.latest_path / "run_state.json").unlink()
    resolved.run = resolved.run.replace(n_timesteps=2 * resolved.run.n_timesteps)
    with pytest.raises(RunFolderError, match="no complete checkpoint to resume from"):
        train(resolved, folder.path, resume=True, progress_bar=False)
