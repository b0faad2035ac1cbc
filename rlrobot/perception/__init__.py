"""Perception: datasets collected from rlrobot envs, MLP/CNN models (supervised, or autoencoders
and β-VAEs trained without labels), training, metrics.

A pretrained CNN encoder (a supervised model's or a VAE's) plugs into the agents as their image
encoder:
``PPO(env, image_encoder=load_encoder(path, env_space), freeze_encoder=True)``.
The names below are imported on first use (``rlrobot --help`` needs no torch).
"""

from rlrobot.lazy import lazy_attributes

_EXPORTS = {
    "rlrobot.perception.collect": ["collect_event_windows", "collect_images"],
    "rlrobot.perception.dataset": ["Dataset"],
    "rlrobot.perception.labels": ["LABELS", "LabelSource"],
    "rlrobot.perception.metrics": [
        "average_precision",
        "choose_threshold",
        "ensemble_probabilities",
        "roc_auc",
    ],
    "rlrobot.perception.models": [
        "AutoencoderModel",
        "ModelSpec",
        "NatureCNNEncoder",
        "PerceptionModel",
        "ResidualCNNEncoder",
        "load_encoder",
        "load_model",
        "make_model",
        "save_model",
    ],
    "rlrobot.perception.training": ["TrainConfig", "TrainResult", "evaluate_model", "train_model"],
}
__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS)
__all__ = sorted(name for names in _EXPORTS.values() for name in names)
