"""Supervised perception: datasets collected from rlrobot envs, MLP/CNN models, training, metrics.

A pretrained CNN encoder plugs into the agents as their image encoder:
``PPO(env, image_encoder=load_encoder(path, env_space), freeze_encoder=True)``.
The names below are imported on first use (``rlrobot --help`` needs no torch).
"""

from rlrobot.lazy import lazy_attributes

_EXPORTS = {
    "rlrobot.perception.collect": ["collect_event_windows", "collect_images"],
    "rlrobot.perception.dataset": ["Dataset"],
    "rlrobot.perception.labels": ["LABELS", "LabelSource"],
    "rlrobot.perception.metrics": ["choose_threshold", "ensemble_probabilities"],
    "rlrobot.perception.models": [
        "ModelSpec",
        "NatureCNNEncoder",
        "PerceptionModel",
        "ResidualCNNEncoder",
        "load_encoder",
        "load_model",
        "save_model",
    ],
    "rlrobot.perception.training": ["TrainConfig", "TrainResult", "evaluate_model", "train_model"],
}
__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS)
__all__ = sorted(name for names in _EXPORTS.values() for name in names)
