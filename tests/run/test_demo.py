"""``rlrobot demo`` writes a complete run folder (tiny budget here; ``make demo`` runs it full)."""

import json

import imageio.v3 as iio

from rlrobot.run.demo import demo, free_run_dir


def test_demo_writes_everything_it_announces(tmp_path, capsys):
    folder = demo(tmp_path / "demo", steps=512)
    names = {path.name for path in folder.iterdir()}
    expected = {"config.yaml", "progress.csv", "evaluations.csv", "latest", "best"}
    assert expected | {"learning_curve.png", "eval.json", "rollout.gif"} <= names
    assert json.loads((folder / "eval.json").read_text())["n_episodes"] == 10
    video = iio.imread(folder / "rollout.gif", index=None)
    assert video.shape[1:] == (482, 482, 3)  # 2×2 grid of 240-pixel cells, 2-pixel gaps
    printed = capsys.readouterr().out
    assert f"into {folder}/" in printed and "rlrobot eval" in printed


def test_demo_never_overwrites_a_run(tmp_path):
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo-2").mkdir()
    assert free_run_dir(tmp_path / "demo") == tmp_path / "demo-3"
