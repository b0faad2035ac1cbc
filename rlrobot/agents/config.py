"""``AgentConfig``, the hyperparameters every agent has, and the device they train on."""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch

from rlrobot.common.config import BaseConfig, option
from rlrobot.common.networks import ACTIVATIONS
from rlrobot.common.schedules import (
    Schedule,
    ScheduleKind,
    check_schedule,
    describe_schedule,
    get_schedule,
)
from rlrobot.errors import ConfigError

# "package.module:Class.Inner": what ``class_path`` writes for a class.
CLASS_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Return CUDA for ``"auto"`` when available, else CPU; check other values.

    Raises:
        ConfigError: ``device`` is not a torch device, or names a CUDA device this machine
            does not have.
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(
            f"device {device!r} is not a torch device; use auto, cpu, cuda or cuda:N"
        ) from None
    if resolved.type == "cuda" and (resolved.index or 0) >= torch.cuda.device_count():
        raise ConfigError(
            f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s); "
            "use device='auto' or 'cpu'"
        )
    return resolved


@dataclass
class AgentConfig(BaseConfig):
    """Hyperparameters every agent has; the agent families override defaults and help."""

    learning_rate: float | Schedule = option(
        3e-4, "optimizer step size, or a callable of progress_remaining (SB3's Schedule)"
    )
    lr_schedule: ScheduleKind = option(
        "constant", "learning-rate schedule over each learn() call: constant or linear to 0"
    )
    gamma: float = option(0.99, "discount factor γ in (0, 1]")
    net_arch: tuple[int, ...] = option((64, 64), "hidden layer sizes of the networks")
    activation: str = option("tanh", "hidden activation: tanh, relu, elu, gelu, silu")
    critic_net_arch: tuple[int, ...] | None = option(
        None,
        "hidden layer sizes of the critic(s) when they differ from the actor's (None: net_arch)",
    )
    policy_name: Literal["auto", "MlpPolicy", "CnnPolicy", "MultiInputPolicy"] = option(
        "auto",
        "SB3 policy name: auto (by observation space), MlpPolicy (images flattened), CnnPolicy "
        "(image Box) or MultiInputPolicy (Dict)",
    )
    features_extractor_class: str | None = option(
        None, "'module:qualname' of an SB3-style feature extractor class (None: built-in)"
    )
    features_extractor_kwargs: dict[str, Any] | None = option(
        None, "JSON keyword arguments of features_extractor_class"
    )
    normalize_observations: bool = option(False, "running mean/std observation normalisation")
    clip_observations: float = option(10.0, "clip normalised observations to ±this")
    log_interval: int = option(1, "log every this many iterations")
    reward_redistribution: Literal["uniform", "rrd"] | None = option(
        None,
        "delayed rewards: None (learn from the rewards as paid), uniform (each step of a "
        "released chunk gets its sum / length, IRCR) or rrd (a learned per-step reward model, "
        "Randomized Return Decomposition)",
    )
    rrd_learning_rate: float = option(3e-4, "RRD: Adam step size of the reward model")
    rrd_net_arch: tuple[int, ...] = option((256, 256), "RRD: hidden layer sizes of r̂(s, a, s′)")
    rrd_batch_size: int = option(4, "RRD: chunks (released episodes) per reward-model step")
    rrd_subset_size: int = option(64, "RRD: steps K drawn from each chunk per reward-model step")
    rrd_gradient_steps: int = option(
        1, "RRD: reward-model gradient steps per agent gradient step (on-policy: per rollout)"
    )

    @classmethod
    def upgrade(cls, values: dict[str, Any]) -> dict[str, Any]:
        """Return config values saved by an older rlrobot in today's keys (here: unchanged)."""
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Any:
        """Build a config from a dict, upgraded first, checking keys, types and ranges."""
        return super().from_dict(cls.upgrade(values))

    # Fields that may hold a schedule, each with the field naming its kind (None: constant).
    schedule_fields: ClassVar[dict[str, str | None]] = {"learning_rate": "lr_schedule"}

    def get_schedule(self, key: str) -> Schedule:
        """Return the schedule of the field ``key`` (its float and kind, or its callable)."""
        kind_key = self.schedule_fields[key]
        return get_schedule(getattr(self, key), getattr(self, kind_key) if kind_key else "constant")

    def initial_value(self, key: str) -> float:
        """Return the value of the schedule ``key`` at the start of training (progress 1)."""
        return float(self.get_schedule(key)(1.0))

    def to_json_dict(self, progress_remaining: float) -> dict[str, Any]:
        """Return ``to_dict()`` with every callable schedule in its float-and-kind form.

        A callable that is not constant or linear to 0 (or linear where the field has no kind)
        is stored as its value at ``progress_remaining`` (at the start, where that is 0),
        constant from then on, with a warning: a checkpoint holds JSON, never code.
        """
        values = self.to_dict()
        for key, kind_key in self.schedule_fields.items():
            schedule = values[key]
            if not callable(schedule):
                continue
            described = describe_schedule(schedule)
            if described is not None and (kind_key is not None or described[1] == "constant"):
                values[key] = described[0]
                if kind_key is not None:
                    values[kind_key] = described[1]
                continue
            current = float(schedule(progress_remaining))
            values[key] = current if current > 0 else float(schedule(1.0))
            if kind_key is not None:
                values[kind_key] = "constant"
            warnings.warn(
                f"{key}={schedule!r} is a schedule a checkpoint cannot describe (JSON holds no "
                f"code); saved as the constant {values[key]!r} (pass {key}=… to load to set it "
                "again)",
                stacklevel=4,
            )
        return values

    def validate(self) -> None:
        """Check value ranges."""
        check_schedule("learning_rate", self.learning_rate, self.lr_schedule, "lr_schedule")
        self._require(
            0 < self.rrd_learning_rate < math.inf, "rrd_learning_rate", "must be > 0 and finite"
        )
        self._require(all(n > 0 for n in self.rrd_net_arch), "rrd_net_arch", "sizes must be > 0")
        for key in ("rrd_batch_size", "rrd_subset_size", "rrd_gradient_steps"):
            self._require(getattr(self, key) >= 1, key, "must be >= 1")
        self._require(0 < self.gamma <= 1, "gamma", "must be in (0, 1]")
        self._require(all(n > 0 for n in self.net_arch), "net_arch", "sizes must be > 0")
        self._require(
            all(n > 0 for n in self.critic_net_arch or ()), "critic_net_arch", "sizes must be > 0"
        )
        self._require(
            self.features_extractor_class is None
            or CLASS_PATH.fullmatch(self.features_extractor_class) is not None,
            "features_extractor_class",
            "must be 'module:qualname' (dotted Python names) or None",
        )
        self._require(
            self.activation.lower() in ACTIVATIONS,
            "activation",
            f"must be one of {sorted(ACTIVATIONS)}",
        )
        self._require(self.clip_observations > 0, "clip_observations", "must be > 0")
        self._require(self.log_interval >= 1, "log_interval", "must be >= 1")
