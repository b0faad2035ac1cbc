"""The agents' hyperparameters: ``AgentConfig`` (every agent), ``OnPolicyConfig`` and
``OffPolicyConfig`` (each family), and the device they train on."""

from __future__ import annotations

import math
import numbers
import re
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from rlrobot.common.config import COUNT, BaseConfig, option
from rlrobot.common.networks import (
    ACTIVATIONS,
)
from rlrobot.common.noise import (
    ActionNoise,
    describe_gaussian_noise,
)
from rlrobot.common.schedules import (
    Schedule,
    ScheduleKind,
    check_schedule,
    describe_schedule,
    get_schedule,
)
from rlrobot.envs.checks import (
    NON_NEGATIVE,
    POSITIVE,
    UNIT_INTERVAL,
    Interval,
)
from rlrobot.errors import ConfigError

# "package.module:Class.Inner": what ``class_path`` writes for a class.
CLASS_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")

# Hidden-layer widths: an 8192-wide pair of layers is 67M weights per network already.
LAYER_SIZE = Interval(1, 8192, reason="a wider layer takes GBs of memory per network")
# The initial log std of Gaussian actions, within the clamp of SB3's SAC (LOG_STD_MIN/MAX):
# beyond it the std is below 2e-9 or above 7.4 times the action scale.
LOG_STD = Interval(-20, 2)
DISCOUNT = Interval(0, 1, low_open=True)
# Passes over one rollout: PPO's papers use 3 to 30; 10**9 of them would run for years.
EPOCHS = Interval(1, 10**4, reason="more passes over one rollout only overfit it, for hours")


def _is_number(value: Any) -> bool:
    """Whether ``value`` is a real number (a Python, NumPy or 0-d torch one), not a bool."""
    if isinstance(value, torch.Tensor):
        return value.numel() == 1 and not value.dtype.is_complex and value.dtype != torch.bool
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


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
        3e-4,
        "optimizer step size, or a callable of progress_remaining (SB3's Schedule)",
        POSITIVE,
    )
    lr_schedule: ScheduleKind = option(
        "constant", "learning-rate schedule over each learn() call: constant or linear to 0"
    )
    gamma: float = option(0.99, "discount factor γ in (0, 1]", DISCOUNT)
    net_arch: tuple[int, ...] = option((64, 64), "hidden layer sizes of the networks", LAYER_SIZE)
    activation: str = option("tanh", "hidden activation: tanh, relu, elu, gelu, silu")
    critic_net_arch: tuple[int, ...] | None = option(
        None,
        "hidden layer sizes of the critic(s) when they differ from the actor's (None: net_arch)",
        LAYER_SIZE,
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
    optimizer_eps: float = option(
        1e-8, "epsilon of the actor and critic optimizers (SB3's optimizer_kwargs['eps'])", POSITIVE
    )
    optimizer_weight_decay: float = option(
        0.0,
        "L2 weight decay of the actor and critic optimizers (SB3's "
        "optimizer_kwargs['weight_decay']); SAC's entropy coefficient has none, as in SB3",
        NON_NEGATIVE,
    )
    normalize_observations: bool = option(False, "running mean/std observation normalisation")
    clip_observations: float = option(10.0, "clip normalised observations to ±this", POSITIVE)
    log_interval: int = option(1, "log every this many iterations", COUNT)
    reward_redistribution: Literal["uniform", "rrd"] | None = option(
        None,
        "delayed rewards: None (learn from the rewards as paid), uniform (each step of a "
        "released chunk gets its sum / length, IRCR) or rrd (a learned per-step reward model, "
        "Randomized Return Decomposition)",
    )
    rrd_learning_rate: float = option(3e-4, "RRD: Adam step size of the reward model", POSITIVE)
    rrd_net_arch: tuple[int, ...] = option(
        (256, 256), "RRD: hidden layer sizes of r̂(s, a, s′)", LAYER_SIZE
    )
    rrd_batch_size: int = option(4, "RRD: chunks (released episodes) per reward-model step", COUNT)
    rrd_subset_size: int = option(
        64, "RRD: steps K drawn from each chunk per reward-model step", COUNT
    )
    rrd_gradient_steps: int = option(
        1,
        "RRD: reward-model gradient steps per agent gradient step (on-policy: per rollout)",
        COUNT,
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

    def schedule_value(self, key: str, progress_remaining: float) -> float:
        """Return the value of the schedule ``key`` at ``progress_remaining``.

        Raises:
            ConfigError: A callable schedule gave a value that is not a finite number >= 0
                (training stops at the first one, rather than stepping with NaN).
        """
        schedule = self.get_schedule(key)
        value = schedule(progress_remaining)
        if not (_is_number(value) and 0 <= value < math.inf):
            raise ConfigError(
                f"config key {key!r}: the schedule {schedule!r} gave {value!r} at "
                f"progress_remaining={progress_remaining:.6g}; it must give finite numbers >= 0"
            )
        return float(value)

    def initial_value(self, key: str) -> float:
        """Return the value of the schedule ``key`` at the start of training (progress 1)."""
        return self.schedule_value(key, 1.0)

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
        """Check the schedules, the names and the rules that tie fields together."""
        check_schedule("learning_rate", self.learning_rate, self.lr_schedule, "lr_schedule")
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


@dataclass
class OnPolicyConfig(AgentConfig):
    """Hyperparameters shared by the on-policy agents."""

    learning_rate: float | Schedule = option(3e-4, "Adam/RMSprop step size", POSITIVE)
    n_steps: int = option(2048, "env steps per env per rollout (rollout = n_steps × n_envs)", COUNT)
    gae_lambda: float = option(
        0.95, "GAE λ in [0, 1]: 1 = Monte Carlo, 0 = one-step TD", UNIT_INTERVAL
    )
    ent_coef: float = option(0.0, "weight of the entropy bonus", NON_NEGATIVE)
    vf_coef: float = option(0.5, "weight of the value loss", NON_NEGATIVE)
    max_grad_norm: float = option(0.5, "clip the global gradient norm to this value", POSITIVE)
    normalize_advantage: bool = option(True, "standardise advantages per (mini)batch")
    net_arch: tuple[int, ...] = option(
        (64, 64), "hidden layer sizes of the actor and the critic", LAYER_SIZE
    )
    ortho_init: bool = option(True, "orthogonal initialisation (as in SB3/OpenAI baselines)")
    share_features_extractor: bool = option(
        True, "actor and critic read one feature extractor (SB3's default); False: one each"
    )
    log_std_init: float = option(0.0, "initial log standard deviation of Gaussian actions", LOG_STD)
    optimizer: Literal["adam", "rmsprop"] = option("adam", "optimizer")
    optimizer_eps: float = option(
        1e-5, "epsilon of the optimizer (SB3's optimizer_kwargs['eps'])", POSITIVE
    )
    normalize_rewards: bool = option(False, "scale rewards by the std of the discounted return")
    log_interval: int = option(1, "log every this many rollouts", COUNT)
    rrd_gradient_steps: int = option(32, "RRD: reward-model gradient steps per rollout", COUNT)
    rrd_buffer_size: int = option(
        100_000, "RRD: transitions kept to train the reward model on whole released chunks", COUNT
    )

    def validate(self) -> None:
        """Check the rules that tie fields together."""
        super().validate()
        if self.reward_redistribution is not None and self.normalize_rewards:
            raise ConfigError(
                "config keys 'reward_redistribution' and 'normalize_rewards': the normaliser "
                "scales rewards as they are paid, before they are redistributed; use one"
            )


@dataclass
class OffPolicyConfig(AgentConfig):
    """Hyperparameters shared by the off-policy agents (defaults as in SB3's SAC)."""

    learning_rate: float | Schedule = option(
        3e-4, "Adam step size of the actor, critics and α", POSITIVE
    )
    buffer_size: int = option(1_000_000, "transitions kept in the replay buffer", COUNT)
    learning_starts: int = option(
        100, "env steps of uniform random actions before learning", NON_NEGATIVE
    )
    batch_size: int = option(256, "minibatch size of each gradient step", COUNT)
    tau: float = option(
        0.005, "Polyak coefficient τ of the target networks (1: hard copy)", DISCOUNT
    )
    train_freq: int | tuple[int, Literal["step", "episode"]] = option(
        1,
        "vector-env steps between two training phases, or (n, 'step' | 'episode') as in SB3 "
        "(every n vector steps, or every n finished episodes over all envs)",
        COUNT,
    )
    gradient_steps: int = option(
        1,
        "gradient steps per training phase (-1: as many as env steps collected)",
        Interval(-1, reason="-1: as many as env steps collected; 0 is refused"),
    )
    action_noise: float | ActionNoise = option(
        0.0,
        "exploration noise added to the policy's actions (in the [-1, 1] action scale): the "
        "std of a Gaussian (0: none), or an SB3 NormalActionNoise, OrnsteinUhlenbeckActionNoise "
        "or VectorizedActionNoise (reset at episode ends)",
        NON_NEGATIVE,
    )
    optimize_memory_usage: bool = option(
        False,
        "SB3's memory-saving replay buffer; not supported (True is refused: the buffer keeps "
        "each next observation, which n-step returns and the real final observation of a "
        "truncated episode need)",
    )
    n_steps: int = option(1, "length of the n-step returns (1: one-step TD targets)", COUNT)
    net_arch: tuple[int, ...] = option(
        (256, 256), "hidden layer sizes of the actor and critics", LAYER_SIZE
    )
    activation: str = option("relu", "hidden activation: relu, tanh, elu, gelu, silu")
    replay_buffer: Literal["standard", "her"] = option(
        "standard", "replay buffer: standard, or her (hindsight relabelling, goal envs)"
    )
    goal_selection_strategy: Literal["future", "final", "episode"] = option(
        "future", "HER: where relabelled goals come from"
    )
    n_sampled_goal: int = option(4, "HER: relabelled goals per real one (k)", COUNT)
    n_critics: int = option(
        2,
        "Q-networks of the critic ensemble (targets use their minimum)",
        Interval(1, 100, reason="each critic is a whole Q-network with its target"),
    )
    matmul_dtype: Literal["float32", "bfloat16"] = option(
        "float32",
        "precision of the hidden layers' matmuls in the updates: float32, or bfloat16 (mixed "
        "precision: weights, outputs, losses and acting stay float32)",
    )
    log_interval: int = option(1000, "log every this many env steps", COUNT)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Any:
        """Build a config, first turning SB3's ``replay_buffer_class`` and ``_kwargs`` into
        ``replay_buffer``, ``n_sampled_goal`` and ``goal_selection_strategy``."""
        return super().from_dict(convert_replay_buffer_class(values))

    def to_json_dict(self, progress_remaining: float) -> dict[str, Any]:
        """Return ``AgentConfig.to_json_dict`` with a noise object as its σ where it has one.

        Another noise object (Ornstein-Uhlenbeck, a non-uniform σ) cannot go into JSON: it is
        saved as 0 (no noise) with a warning, and ``load(..., action_noise=…)`` sets it again.
        """
        values = super().to_json_dict(progress_remaining)
        noise = values["action_noise"]
        if isinstance(noise, float):
            return values
        sigma = describe_gaussian_noise(noise)
        values["action_noise"] = 0.0 if sigma is None else sigma
        if sigma is None:
            warnings.warn(
                f"action_noise={noise!r} cannot be saved (a checkpoint holds JSON, no objects); "
                "saved as 0.0 (no noise): pass action_noise=… to load to explore with it again",
                stacklevel=4,
            )
        return values

    def get_train_freq(self) -> tuple[int, Literal["step", "episode"]]:
        """Return ``train_freq`` as ``(frequency, unit)``."""
        if isinstance(self.train_freq, tuple):
            return self.train_freq
        return self.train_freq, "step"

    def validate(self) -> None:
        """Check the values a range cannot say and the rules that tie fields together."""
        super().validate()
        self._require(
            not self.optimize_memory_usage,
            "optimize_memory_usage",
            "is not supported: the replay buffer stores each next observation, which n-step "
            "returns and the real final observation of a truncated episode need; leave it False",
        )
        self._require(self.gradient_steps != 0, "gradient_steps", "must be >= 1 or -1")


# SB3's replay-buffer keywords that ours take only at one value: (that value, why).
FIXED_BUFFER_KWARGS = {
    "copy_info_dict": (False, "our HER calls compute_reward with an empty info dict"),
    "handle_timeout_termination": (
        True,
        "time-limit truncations are always bootstrapped from the real final observation",
    ),
}


def convert_replay_buffer_class(values: dict[str, Any]) -> dict[str, Any]:
    """Turn SB3's ``replay_buffer_class`` / ``replay_buffer_kwargs`` into our config keys.

    ``replay_buffer_class`` may be our ``rlrobot.agents.HerReplayBuffer``, SB3's class of the
    same name, a ``ReplayBuffer`` (either library's) or None; a class is recognised by its
    name, so SB3 is not imported here. HER's ``n_sampled_goal`` and ``goal_selection_strategy``
    (a string or SB3's ``GoalSelectionStrategy``) become config keys.

    Raises:
        ConfigError: Another class, or a keyword our buffers do not take at that value.
    """
    if "replay_buffer_class" not in values and "replay_buffer_kwargs" not in values:
        return values
    converted = dict(values)
    buffer_class = converted.pop("replay_buffer_class", None)
    buffer_kwargs = dict(converted.pop("replay_buffer_kwargs", None) or {})
    name = getattr(buffer_class, "__name__", None)
    if buffer_class is not None and name not in ("HerReplayBuffer", "ReplayBuffer"):
        raise ConfigError(
            f"config key 'replay_buffer_class': {buffer_class!r} is not supported; use "
            "HerReplayBuffer (rlrobot.agents' or SB3's), ReplayBuffer or None"
        )
    if buffer_class is not None:
        converted["replay_buffer"] = "her" if name == "HerReplayBuffer" else "standard"
    her = converted.get("replay_buffer") == "her"
    allowed = ["handle_timeout_termination"]
    if her:
        allowed = ["n_sampled_goal", "goal_selection_strategy", "copy_info_dict"]
    for key, value in buffer_kwargs.items():
        if key not in allowed:
            raise ConfigError(
                f"config key 'replay_buffer_kwargs': {key!r} is not supported with "
                f"{name or 'the standard buffer'}; supported: {', '.join(allowed)}"
            )
        if key in FIXED_BUFFER_KWARGS:
            expected, reason = FIXED_BUFFER_KWARGS[key]
            if value is not expected:
                raise ConfigError(
                    f"config key 'replay_buffer_kwargs': {key}={value!r} is not supported "
                    f"({reason}); leave it {expected}"
                )
            continue
        if key == "goal_selection_strategy" and not isinstance(value, str):
            value = str(getattr(value, "name", value)).lower()  # SB3's enum: FUTURE → future
        converted[key] = value
    return converted
