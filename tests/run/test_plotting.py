"""Learning-curve plots: grouping of runs, one row of panels per env, and a legend that stays
inside the figure."""

import matplotlib.figure
import pytest

from rlrobot.cli import main
from rlrobot.run.config import resolve_config
from rlrobot.run.folder import RunFolder
from rlrobot.run.plotting import group_runs, plot_runs

SETTINGS = [
    ["learning_rate=0.001", "n_epochs=4", "gae_lambda=0.9", "clip_range=0.1", "ent_coef=0.01"],
    ["learning_rate=0.0003", "n_epochs=10", "gae_lambda=0.95", "clip_range=0.3", "ent_coef=0.0"],
]


def fake_run(path, overrides, seed, offset, algo="ppo", env="CartPole-v1"):
    """A run folder with a config and a short progress.csv (no training)."""
    resolved = resolve_config(algo, env, seed=seed, overrides=overrides)
    folder = RunFolder(path)
    path.mkdir(parents=True)
    folder.write_config(resolved.to_yaml())
    rows = [f"{step},{offset + step / 10}" for step in (100, 200, 300)]
    folder.progress_path.write_text("step,rollout/ep_rew_mean\n" + "\n".join(rows) + "\n")
    return folder


@pytest.fixture
def runs(tmp_path):
    return [
        fake_run(tmp_path / f"config{i}" / f"seed{seed}", overrides, seed, 10 * i + seed)
        for i, overrides in enumerate(SETTINGS)
        for seed in (0, 1)
    ]


def test_runs_differing_only_in_seed_form_one_group_labelled_by_what_differs(runs):
    groups = group_runs(runs)
    assert [len(members) for members in groups.values()] == [2, 2]
    first = next(iter(groups))
    assert first.startswith("ppo on CartPole-v1 (") and "learning_rate=0.001" in first


def test_long_legend_labels_stay_inside_the_figure(runs, tmp_path, monkeypatch):
    extents = []
    save = matplotlib.figure.Figure.savefig

    def save_and_measure(figure, *args, **kwargs):
        result = save(figure, *args, **kwargs)  # draws: the extents are final now
        renderer = figure.canvas.get_renderer()
        (legend,) = figure.legends
        extents.append(
            (
                legend.get_window_extent(renderer),
                figure.axes[0].get_window_extent(renderer),
                figure.bbox,
                len(legend.get_texts()),
            )
        )
        return result

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", save_and_measure)
    plot_runs([tmp_path], tmp_path / "curves.png", source="train")
    ((legend, axis, frame, n_entries),) = extents
    assert frame.x0 <= legend.x0 and legend.x1 <= frame.x1 and frame.y0 <= legend.y0
    assert legend.y1 <= axis.y0  # under the panel, not over the curves
    assert n_entries == 2


def test_runs_of_different_algorithms_and_envs_plot_together_one_panel_per_env(
    tmp_path, monkeypatch, capsys
):
    ppo = fake_run(tmp_path / "ppo_run", [], 0, 10)
    a2c = fake_run(tmp_path / "a2c_run", [], 0, 20, algo="a2c")
    sac = fake_run(tmp_path / "sac_run", [], 0, -1500, algo="sac", env="Pendulum-v1")
    assert list(group_runs([ppo, a2c, sac])) == [
        "ppo on CartPole-v1",
        "a2c on CartPole-v1",
        "sac on Pendulum-v1",
    ]
    figures = []
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda f, *a, **k: figures.append(f))
    out = tmp_path / "curves.png"
    arguments = ["plot", str(ppo.path), str(a2c.path), str(sac.path), "--out", str(out)]
    assert main([*arguments, "--source", "train"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    (figure,) = figures
    cartpole, pendulum = (axis for axis in figure.axes if axis.get_visible())
    assert (cartpole.get_title(), pendulum.get_title()) == ("CartPole-v1", "Pendulum-v1")
    assert len(cartpole.get_lines()) == 2 and len(pendulum.get_lines()) == 1
    # Each env keeps its own scale: CartPole's 10..50, Pendulum's around -1500.
    assert cartpole.get_ylim()[0] > 0 > pendulum.get_ylim()[1]
    assert not cartpole.get_shared_y_axes().joined(cartpole, pendulum)
