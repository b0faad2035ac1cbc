"""Supervised perception: datasets collected from rlrobot envs, MLP/CNN models, training.

A pretrained CNN encoder plugs into the agents as their image encoder:
``PPO(env, image_encoder=load_encoder(path, env_space), freeze_encoder=True)``.
"""

from rlrobot.perception.datasets import (
    LABELS,
    Dataset,
    DatasetError,
    LabelSource,
    SceneRandomization,
    collect_event_windows,
    collect_images,
)
from rlrobot.perception.models import (
    ModelSpec,
    NatureCNNEncoder,
    PerceptionModel,
    ResidualCNNEncoder,
    load_encoder,
    load_model,
    save_model,
)
from rlrobot.perception.training import (
    TrainConfig,
    TrainResult,
    choose_threshold,
    ensemble_probabilities,
    evaluate_model,
    train_model,
)

__all__ = [
    "LABELS",
    "Dataset",
    "DatasetError",
    "LabelSource",
    "ModelSpec",
    "NatureCNNEncoder",
    "PerceptionModel",
    "ResidualCNNEncoder",
    "SceneRandomization",
    "TrainConfig",
    "TrainResult",
    "choose_threshold",
    "collect_event_windows",
    "collect_images",
    "ensemble_probabilities",
    "evaluate_model",
    "load_encoder",
    "load_model",
    "save_model",
    "train_model",
]
