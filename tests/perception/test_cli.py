"""``rlrobot perception collect|train|eval`` end to end, tiny budgets, in-process."""

from __future__ import annotations

import json

import pytest

from rlrobot.cli import main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_collect_train_eval_images(tmp_path, capsys) -> None:
    data, run = tmp_path / "reach.npz", tmp_path / "run"
    collect = ["perception", "collect", "--env", "rlrobot/Reach-v0", "--episodes", "5"]
    collect += ["--max-steps", "2", "--frame-interval", "1", "--randomize", "--out", str(data)]
    assert main(collect) == 0
    card = json.loads(data.with_suffix(".json").read_text())
    assert card["n_samples"] == 15 and card["labels"]["target_position"]["units"] == "m"
    assert card["randomization"]["color_jitter"] > 0
    assert "wrote" in capsys.readouterr().out

    train = ["perception", "train", "--data", str(data), "--out", str(run), "--features-dim"]
    train += ["16", "--set", "epochs=2", "--set", "batch_size=4", "--no-progress"]
    assert main(train) == 0
    assert "median_error" in capsys.readouterr().out
    assert (run / "model" / "model.safetensors").is_file()
    assert (run / "loss_curves.png").read_bytes()[:8] == PNG_SIGNATURE
    assert (run / "test_predicted_vs_true.png").read_bytes()[:8] == PNG_SIGNATURE

    evaluate = ["perception", "eval", str(run), "--data", str(data), "--split", "all"]
    assert main([*evaluate, "--out", str(tmp_path / "eval")]) == 0
    metrics = json.loads((tmp_path / "eval" / "all_metrics.json").read_text())
    assert metrics["n_samples"] == 15 and metrics["units"] == "m"


def test_collect_and_train_event_windows(tmp_path, capsys) -> None:
    data, run = tmp_path / "falls.npz", tmp_path / "run"
    collect = ["perception", "collect", "--kind", "events", "--env", "rlrobot/CartPole-v0"]
    collect += ["--event-key", "terminated", "--episodes", "20", "--window", "4"]
    assert main([*collect, "--horizon", "3", "--out", str(data)]) == 0
    card = json.loads(data.with_suffix(".json").read_text())
    assert card["kind"] == "event_windows" and card["n_events"] == 20
    train = ["perception", "train", "--data", str(data), "--out", str(run), "--set", "epochs=2"]
    assert main([*train, "--no-progress"]) == 0
    assert (run / "test_confusion_matrix.png").read_bytes()[:8] == PNG_SIGNATURE
    assert "f1" in capsys.readouterr().out


def test_user_mistakes_exit_with_a_message(tmp_path, capsys) -> None:
    missing = ["perception", "train", "--data", str(tmp_path / "none.npz"), "--out", "x"]
    assert main(missing) == 2
    assert "no dataset" in capsys.readouterr().err
    wrong_label = ["perception", "collect", "--env", "rlrobot/CartPole-v0", "--episodes", "3"]
    assert main([*wrong_label, "--out", str(tmp_path / "c.npz")]) == 2
    assert "label 'target_position' cannot be read" in capsys.readouterr().err
    bad_set = ["perception", "train", "--data", "d.npz", "--out", "x", "--set", "epochs"]
    assert main(bad_set) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_train_offers_every_model_architecture() -> None:
    from rlrobot.cli import build_parser
    from rlrobot.perception.models import ARCHITECTURES

    for architecture in ARCHITECTURES:
        args = build_parser().parse_args(
            ["perception", "train", "--data", "d.npz", "--out", "r", "--model", architecture]
        )
        assert args.model == architecture


def test_train_and_eval_a_vae_and_an_image_autoencoder(tmp_path, capsys) -> None:
    data, run = tmp_path / "windows.npz", tmp_path / "vae"
    collect = ["perception", "collect", "--kind", "events", "--env", "rlrobot/CartPole-v0"]
    collect += ["--event-key", "terminated", "--episodes", "20", "--window", "4"]
    assert main([*collect, "--horizon", "3", "--out", str(data)]) == 0
    train = ["perception", "train", "--data", str(data), "--out", str(run), "--objective", "vae"]
    train += ["--beta", "2", "--latent-dim", "4", "--set", "epochs=2", "--no-progress"]
    assert main(train) == 0
    assert "reconstruction_mse" in capsys.readouterr().out
    metadata = json.loads((run / "model" / "metadata.json").read_text())
    assert metadata["model"]["task"] == "reconstruction" and metadata["model"]["variational"]
    assert metadata["model"]["beta"] == 2.0 and metadata["model"]["output_dim"] == 4
    assert (run / "test_reconstructions.png").read_bytes()[:8] == PNG_SIGNATURE
    assert main(["perception", "eval", str(run), "--data", str(data), "--split", "all"]) == 0
    metrics = json.loads((run / "all_metrics.json").read_text())
    assert metrics["reconstruction_mse"] < metrics["baseline_reconstruction_mse"] * 2
    assert metrics["kl"] > 0 and (run / "all_reconstructions.png").is_file()

    images, image_run = tmp_path / "reach.npz", tmp_path / "ae"
    collect = ["perception", "collect", "--env", "rlrobot/Reach-v0", "--episodes", "4"]
    assert main([*collect, "--max-steps", "2", "--frame-interval", "1", "--out", str(images)]) == 0
    train = ["perception", "train", "--data", str(images), "--out", str(image_run)]
    train += ["--objective", "ae", "--features-dim", "16", "--set", "epochs=1", "--no-progress"]
    assert main(train) == 0
    metadata = json.loads((image_run / "model" / "metadata.json").read_text())
    assert metadata["model"]["architecture"] == "nature_cnn"
    assert not metadata["model"]["variational"]


def test_train_refuses_options_of_another_objective(tmp_path, capsys) -> None:
    base = ["perception", "train", "--data", str(tmp_path / "d.npz"), "--out", str(tmp_path)]
    cases = {
        ("--objective", "ae", "--beta", "4"): "it needs --objective vae, not ae",
        ("--beta", "4"): "it needs --objective vae, not supervised",
        ("--latent-dim", "8"): "--latent-dim needs --objective ae or vae",
        ("--objective", "vae", "--label", "fall"): "learns without labels; drop --label",
    }
    for options, message in cases.items():
        assert main([*base, *options]) == 2
        assert message in capsys.readouterr().err
    for options in (("--objective", "contrastive"), ("--objective", "vae", "--beta", "-1")):
        with pytest.raises(SystemExit) as exit_info:  # argparse refuses these itself
            main([*base, *options])
        assert exit_info.value.code == 2
    assert "invalid choice: 'contrastive'" in capsys.readouterr().err
