"""``rlrobot perception collect|train|eval``, and the same three steps as Python functions.

- ``collect``: run a policy in an env and save a labelled dataset (``.npz`` + ``.json`` card);
- ``train``: train a perception model on one label, or (``--objective ae|vae``) an autoencoder
  or β-VAE on the inputs alone, into a run folder (checkpoint, CSV, plots);
- ``evaluate``: score a trained model on a split of a dataset (metrics JSON and a plot).

The parser is built without importing torch or pybullet, so ``rlrobot --help`` stays quick.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from rlrobot.common.arguments import (
    non_negative_float,
    non_negative_int,
    positive_int,
)
from rlrobot.common.files import check_writable
from rlrobot.errors import CommandError

EPILOG = """\
examples:
  rlrobot perception collect --env rlrobot/Reach-v0 --episodes 500 --frame-interval 10 \\
      --randomize --seed 0 --out data/reach.npz
  rlrobot perception train --data data/reach.npz --label target_position --model nature_cnn \\
      --set epochs=40 --out runs/perception/reach
  rlrobot perception eval runs/perception/reach --data data/reach.npz --split test
  rlrobot perception train --data data/reach.npz --objective vae --beta 0.01 --latent-dim 32 \\
      --out runs/perception/reach_vae
  rlrobot perception collect --kind events --env rlrobot/Quadruped-v0 --event-key fell \\
      --episodes 200 --window 16 --horizon 10 --out data/falls.npz

Use the trained CNN (supervised or a VAE's encoder) as an agent's image encoder (Python):
  from rlrobot.perception import load_encoder
  PPO(env, image_encoder=load_encoder("runs/perception/reach/model"), freeze_encoder=True)
"""


# ---------------------------------------------------------------------------- Python functions
def collect(
    out: str | os.PathLike, kind: str = "images", env: str = "rlrobot/Reach-v0", **kwargs: Any
) -> Path:
    """Collect a dataset and save it to ``out`` (``.npz`` plus its ``.json`` card).

    Args:
        out: Dataset path (``.npz``).
        kind: ``"images"`` (``collect_images``) or ``"events"`` (``collect_event_windows``).
        env: Env id.
        **kwargs: Keywords of the collection function.

    Returns:
        The ``.npz`` path.
    """
    from rlrobot.perception.collect import collect_event_windows, collect_images

    collectors = {"images": collect_images, "events": collect_event_windows}
    if kind not in collectors:
        raise ValueError(f"kind must be one of {sorted(collectors)}, got {kind!r}")
    return collectors[kind](env, **kwargs).save(out)


def default_label(dataset: Any, label: str | None) -> str:
    """Return ``label``, or the dataset's only label; raise if that is ambiguous."""
    if label is not None:
        return label
    if len(dataset.labels) != 1:
        raise ValueError(f"the dataset has labels {sorted(dataset.labels)}: choose one with label")
    return next(iter(dataset.labels))


def train(
    data: str | os.PathLike,
    out: str | os.PathLike,
    label: str | None = None,
    architecture: str | None = None,
    model_options: dict[str, Any] | None = None,
    progress_bar: bool = False,
    objective: str = "supervised",
    **config_fields: Any,
) -> Any:
    """Train a perception model on a saved dataset into the run folder ``out``.

    Args:
        data: Dataset path (``.npz``).
        out: Run folder: ``model/``, ``progress.csv``, ``loss_curves.png``, test metrics/plot.
        label: Label to learn (default: the dataset's only label; none for ``ae``/``vae``).
        architecture: One of ``models.ARCHITECTURES`` (default by input).
        model_options: Other ``ModelSpec`` fields (``features_dim``, ``hidden_sizes``,
            ``beta`` …) and ``latent_dim`` (autoencoders).
        objective: ``"supervised"``, ``"ae"`` or ``"vae"`` (``models.OBJECTIVES``).
        progress_bar: Show a tqdm bar over epochs.
        **config_fields: ``TrainConfig`` fields.

    Returns:
        The ``TrainResult``.
    """
    from rlrobot.perception.dataset import Dataset
    from rlrobot.perception.models import make_model
    from rlrobot.perception.training import model_spec_for, train_model

    dataset = Dataset.load(data)
    if objective == "supervised":
        label = default_label(dataset, label)
    spec = model_spec_for(dataset, label, architecture, objective, **(model_options or {}))
    return train_model(
        dataset,
        label,
        make_model(spec),
        out_dir=out,
        progress_bar=progress_bar,
        **config_fields,
    )


def evaluate(
    run: str | os.PathLike,
    data: str | os.PathLike,
    split: str = "test",
    out: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Score a trained model (run folder or checkpoint) on a split of a dataset.

    Args:
        run: Run folder written by ``train`` (its ``model/``) or a checkpoint directory.
        data: Dataset path (``.npz``).
        split: ``"train"``, ``"val"``, ``"test"`` or ``"all"``.
        out: Folder for ``<split>_metrics.json`` and the plot (default: ``run``).

    Returns:
        The metrics (each with its ``baseline_`` twin: train mean / majority class).
    """
    from rlrobot.perception.dataset import Dataset
    from rlrobot.perception.models import load_model
    from rlrobot.perception.training import evaluate_model

    run = Path(run)
    checkpoint = run / "model" if (run / "model").is_dir() else run
    model, metadata = load_model(checkpoint)
    dataset = Dataset.load(data)
    label = None  # an autoencoder is scored on its inputs
    if model.spec.task != "reconstruction":
        label = metadata.get("label") or default_label(dataset, None)
    return evaluate_model(model, dataset, label, split=split, out_dir=out or run)


# --------------------------------------------------------------------------------- the parser
def add_subcommand(subparsers: argparse._SubParsersAction) -> None:
    """Add ``perception`` with its ``collect``, ``train`` and ``eval`` sub-commands."""
    formatter = argparse.RawDescriptionHelpFormatter
    perception = subparsers.add_parser(
        "perception",
        help="supervised perception: collect datasets, train and evaluate MLP/CNN models",
        description="Collect labelled datasets from rlrobot envs, train MLP/CNN perception "
        "models on them and evaluate them; trained CNNs become agents' image encoders.",
        epilog=EPILOG,
        formatter_class=formatter,
    )
    commands = perception.add_subparsers(dest="perception_command", metavar="STEP")
    commands.required = True

    collect_parser = commands.add_parser(
        "collect",
        help="run a policy in an env and save a labelled dataset (.npz + .json card)",
        epilog=EPILOG,
        formatter_class=formatter,
    )
    collect_parser.add_argument("--out", required=True, metavar="FILE", help="dataset .npz")
    collect_parser.add_argument(
        "--kind",
        choices=("images", "events"),
        default="images",
        help="images with simulator ground truth, or proprioceptive windows before an event",
    )
    collect_parser.add_argument("--env", default="rlrobot/Reach-v0", metavar="ID", help="env id")
    collect_parser.add_argument("--episodes", type=positive_int, default=100, help="episodes (100)")
    collect_parser.add_argument("--seed", type=non_negative_int, default=0, help="seed (0)")
    collect_parser.add_argument(
        "--policy", default="random", help="random or goal_seeking (images) (default random)"
    )
    collect_parser.add_argument("--max-steps", type=positive_int, help="cut episodes after N steps")
    collect_parser.add_argument(
        "--env-kwarg",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="gym.make keyword (repeatable); VALUE is read as YAML",
    )
    images = collect_parser.add_argument_group("images")
    images.add_argument(
        "--labels", nargs="+", default=["target_position"], help="ground-truth labels"
    )
    images.add_argument(
        "--frame-interval", type=positive_int, default=10, help="keep every n-th frame"
    )
    images.add_argument(
        "--image-size", type=positive_int, default=84, help="image side in pixels (84)"
    )
    images.add_argument(
        "--randomize", action="store_true", help="randomise colours and light per episode"
    )
    images.add_argument(
        "--camera-jitter",
        type=non_negative_float,
        default=0.0,
        metavar="DEG",
        help="with --randomize: ± degrees of camera yaw/pitch (0)",
    )
    events = collect_parser.add_argument_group("events")
    events.add_argument(
        "--event-key", default="fell", help="info key of the event; 'terminated' for termination"
    )
    events.add_argument(
        "--window", type=positive_int, default=16, help="observations per window (16)"
    )
    events.add_argument("--horizon", type=positive_int, default=10, help="look-ahead in steps (10)")
    collect_parser.set_defaults(func=run_collect)

    train_parser = commands.add_parser(
        "train",
        help="train a perception model on one label into a run folder",
        epilog=EPILOG,
        formatter_class=formatter,
    )
    train_parser.add_argument("--data", required=True, metavar="FILE", help="dataset .npz")
    train_parser.add_argument("--out", required=True, metavar="DIR", help="run folder")
    train_parser.add_argument("--label", help="label to learn (default: the only one)")
    train_parser.add_argument(
        "--model",
        # models.ARCHITECTURES, spelled out: the parser must not import torch.
        choices=("mlp", "nature_cnn", "residual_cnn", "spatial_softmax_cnn"),
        help="architecture (default: nature_cnn for images, mlp otherwise)",
    )
    train_parser.add_argument(
        "--objective",
        # models.OBJECTIVES, spelled out: the parser must not import torch.
        choices=("supervised", "ae", "vae"),
        default="supervised",
        help="learn a label, or reconstruct the inputs without labels: autoencoder or β-VAE "
        "(default supervised)",
    )
    train_parser.add_argument(
        "--beta",
        type=non_negative_float,
        help="--objective vae: weight of the KL term (default 0.01 for images, 0.1 for "
        "vectors, as measured in docs/benchmarks/perception.md; 1 is the plain VAE)",
    )
    train_parser.add_argument(
        "--latent-dim", type=positive_int, help="--objective ae|vae: code dimensions (default 32)"
    )
    train_parser.add_argument("--features-dim", type=positive_int, help="CNN output features")
    train_parser.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        dest="overrides",
        help="training option (epochs, batch_size, learning_rate, …); VALUE is read as YAML",
    )
    train_parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    train_parser.set_defaults(func=run_train)

    eval_parser = commands.add_parser(
        "eval",
        help="score a trained model on a dataset split; write metrics JSON and a plot",
        epilog=EPILOG,
        formatter_class=formatter,
    )
    eval_parser.add_argument("run", metavar="RUN_DIR", help="run folder or checkpoint directory")
    eval_parser.add_argument("--data", required=True, metavar="FILE", help="dataset .npz")
    eval_parser.add_argument(
        "--split", choices=("train", "val", "test", "all"), default="test", help="(test)"
    )
    eval_parser.add_argument("--out", metavar="DIR", help="output folder (default RUN_DIR)")
    eval_parser.set_defaults(func=run_eval)


def parse_assignments(items: list[str]) -> dict[str, Any]:
    """Parse ``["key=value", …]`` with YAML values (``3e-4``, ``[64, 64]``, ``true``)."""
    import yaml

    from rlrobot.common.yaml_loading import describe_yaml_error, load_yaml

    values = {}
    for item in items:
        key, separator, text = item.partition("=")
        if not separator or not key:
            raise CommandError(f"expected KEY=VALUE, got {item!r}")
        try:
            values[key] = load_yaml(text)
        except yaml.YAMLError as error:
            raise CommandError(
                f"{key}: {text!r} is not a valid YAML value ({describe_yaml_error(error)})"
            ) from None
    return values


def _user_errors() -> tuple[type[Exception], ...]:
    from rlrobot.errors import CheckpointError, DatasetError

    return (CheckpointError, DatasetError, ValueError, TypeError)


def run_collect(args: argparse.Namespace) -> None:
    """Handle ``rlrobot perception collect``."""
    from rlrobot.envs.perturbations import SceneRandomization

    options: dict[str, Any] = {
        "n_episodes": args.episodes,
        "seed": args.seed,
        "policy": args.policy,
        "max_steps": args.max_steps,
        "env_kwargs": parse_assignments(args.env_kwarg),
        "progress_bar": True,
    }
    if args.kind == "images":
        options.update(
            labels=args.labels,
            frame_interval=args.frame_interval,
            image_size=args.image_size,
            randomization=SceneRandomization(camera_angle_jitter=args.camera_jitter)
            if args.randomize
            else None,
        )
    else:
        event_key = None if args.event_key == "terminated" else args.event_key
        options.update(event_key=event_key, window=args.window, horizon=args.horizon)
    check_writable(args.out, "--out", is_folder=False)
    from rlrobot.common.env_util import check_env_id

    check_env_id(args.env, options["env_kwargs"])  # an unknown id: ours, not Gymnasium's error
    try:
        path = collect(args.out, args.kind, args.env, **options)
    except _user_errors() as error:
        raise CommandError(str(error)) from None
    card = json.loads(path.with_suffix(".json").read_text())
    print(f"wrote {path} ({card['n_samples']} samples) and {path.with_suffix('.json')}")
    for split, sizes in card["splits"].items():
        print(f"  {split:5s}: {sizes['samples']} samples from {sizes['episodes']} episodes")


def run_train(args: argparse.Namespace) -> None:
    """Handle ``rlrobot perception train``."""
    if args.beta is not None and args.objective != "vae":
        raise CommandError(
            f"--beta weighs a VAE's KL term; it needs --objective vae, not {args.objective}"
        )
    if args.latent_dim is not None and args.objective == "supervised":
        raise CommandError("--latent-dim needs --objective ae or vae")
    if args.label is not None and args.objective != "supervised":
        raise CommandError(f"--objective {args.objective} learns without labels; drop --label")
    given = {"features_dim": args.features_dim, "beta": args.beta, "latent_dim": args.latent_dim}
    model_options = {key: value for key, value in given.items() if value is not None}
    check_writable(args.out, "--out", is_folder=True)
    try:
        result = train(
            args.data,
            args.out,
            args.label,
            args.model,
            model_options,
            progress_bar=not args.no_progress,
            objective=args.objective,
            **parse_assignments(args.overrides),
        )
    except _user_errors() as error:
        raise CommandError(str(error)) from None
    print(f"best epoch {result.best_epoch} of {len(result.history)}; wrote {args.out}")
    _print_metrics("test", result.test_metrics)


def run_eval(args: argparse.Namespace) -> None:
    """Handle ``rlrobot perception eval``."""
    if args.out is not None:
        check_writable(args.out, "--out", is_folder=True)
    try:
        metrics = evaluate(args.run, args.data, args.split, args.out)
    except _user_errors() as error:
        raise CommandError(str(error)) from None
    _print_metrics(args.split, metrics)


def _print_metrics(split: str, metrics: dict[str, Any]) -> None:
    if not metrics:
        return
    if "reconstruction_mse" in metrics:
        names: tuple[str, ...] = ("reconstruction_mse",)
    elif "mae" in metrics:
        names = ("median_error", "mae", "rmse")
    else:
        names = ("accuracy", "f1", "recall")
    units = f" {metrics['units']}" if metrics.get("units") else ""
    print(f"{split} ({metrics['n_samples']} samples)     model    baseline")
    for name in names:
        print(f"  {name:14s} {metrics[name]:10.4g} {metrics[f'baseline_{name}']:10.4g}{units}")
