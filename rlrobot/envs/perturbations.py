"""Perturbations of an env's physics and scene, drawn per episode from seeded generators.

- ``DomainRandomization``: the robot envs' own ``randomization`` option (masses, friction,
  actuator strength, observation noise, action latency), applied by ``RobotTaskEnv.reset``.
- ``SceneRandomization`` (applied by a ``SceneRandomizer``): what the camera sees (colours,
  light, camera pose), for varied image datasets; the physics is untouched.
- ``RandomKicks``: sudden pushes of a body, for push-recovery and fall data.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Annotated, Any

import gymnasium as gym
import numpy as np

from rlrobot.envs.checks import Fraction, Interval, NonNegative, check_value, checked_hints

# Factors on the nominal values of the model files. 100× is far past any real spread of
# friction or motor strength; a mass must stay above 0, as PyBullet makes a 0 kg link static.
Scale = Annotated[float, Interval(0, 100)]
MassScale = Annotated[float, Interval(0, 100, low_open=True, reason="a 0 kg link is static")]
Steps = Annotated[int, Interval(0, unit="steps")]


def check_fields(settings: Any) -> None:
    """Check every hinted field of a (frozen) dataclass instance, storing the checked values."""
    hints = checked_hints(type(settings).__init__)
    for field in fields(settings):
        value = check_value(field.name, getattr(settings, field.name), hints[field.name])
        object.__setattr__(settings, field.name, value)


def check_range(name: str, low: float, high: float) -> None:
    """Raise ValueError unless low <= high (a uniform range (low, high))."""
    if low > high:
        raise ValueError(
            f"{name} must be a range (low, high) with low <= high, got {(low, high)!r}"
        )


@dataclass(frozen=True)
class DomainRandomization:
    """Physics and sensing perturbations, drawn per episode from the env's seeded generator.

    Ranges are (low, high), drawn uniformly; scales multiply the nominal values from the model
    files. Pass an instance, a dict of these fields, or `True` (`DomainRandomization.default()`)
    as the env's `randomization` keyword.

    Attributes:
        mass_scale: Factor on the mass (kg) of every link of every body, one draw per link.
        friction_scale: Factor on the lateral friction of every link, one draw per link.
        actuator_scale: Factor on the robot's force/torque limits, one draw per episode.
        observation_noise: Std of Gaussian noise added to the state observation at every step
            (in the observation's units; goals and pixels stay exact).
        action_latency: Delay in env steps of the applied action, an integer drawn per episode
            from [low, high]; during the first steps the episode's first action is applied.
    """

    mass_scale: tuple[MassScale, MassScale] = (1.0, 1.0)
    friction_scale: tuple[Scale, Scale] = (1.0, 1.0)
    actuator_scale: tuple[Scale, Scale] = (1.0, 1.0)
    observation_noise: NonNegative = 0.0
    action_latency: tuple[Steps, Steps] = (0, 0)

    def __post_init__(self) -> None:
        check_fields(self)
        for name in ("mass_scale", "friction_scale", "actuator_scale", "action_latency"):
            check_range(name, *getattr(self, name))

    @classmethod
    def default(cls) -> DomainRandomization:
        """Moderate ranges: ±20 % mass and strength, ±30 % friction, 0.01 noise, 0–1 step lag."""
        return cls((0.8, 1.2), (0.7, 1.3), (0.8, 1.2), 0.01, (0, 1))

    @classmethod
    def from_option(
        cls, option: DomainRandomization | dict[str, Any] | bool | None
    ) -> DomainRandomization | None:
        """Normalise the `randomization` keyword: None/False (off), True, a dict or an instance."""
        if option is None or option is False:
            return None
        if option is True:
            return cls.default()
        if isinstance(option, cls):
            return option
        if isinstance(option, dict):
            unknown = set(option) - {field.name for field in fields(cls)}
            if unknown:
                raise ValueError(f"unknown randomization keys {sorted(unknown)}")
            return cls(**{key: tuple(v) if isinstance(v, list) else v for key, v in option.items()})
        raise TypeError(f"randomization must be None, a bool, a dict or {cls.__name__}")


@dataclass(frozen=True)
class SceneRandomization:
    """Per-episode domain randomisation of what the camera sees, drawn from a seeded generator.

    Args:
        color_jitter: Every RGB channel of every link of ``bodies`` is its original value
            plus a uniform draw in ``±color_jitter`` (clipped to [0, 1]); 0 turns it off.
        bodies: Bodies to recolour (``None``: every body in the simulation).
        light: Draw a light direction in the upper hemisphere, a light colour (each channel
            in [0.8, 1]) and ambient/diffuse/specular coefficients around TinyRenderer's.
        camera_target_jitter: Uniform shift (m) of the camera's target point, per axis.
        camera_angle_jitter: Uniform change (degrees) of the camera's yaw and pitch.
        camera_distance_jitter: Uniform change (m) of the camera's distance.
    """

    color_jitter: Fraction = 0.2
    bodies: tuple[str, ...] | None = None
    light: bool = True
    camera_target_jitter: Annotated[float, Interval(0, unit="m")] = 0.0
    camera_angle_jitter: Annotated[float, Interval(0, unit="degrees")] = 0.0
    camera_distance_jitter: Annotated[float, Interval(0, unit="m")] = 0.0

    def __post_init__(self) -> None:
        check_fields(self)

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as JSON values."""
        values = dataclasses.asdict(self)
        values["bodies"] = None if self.bodies is None else list(self.bodies)
        return values


class SceneRandomizer:
    """Apply a ``SceneRandomization`` to an env, relative to the scene it had at creation.

    Args:
        env: The unwrapped rlrobot env (a ``RobotTaskEnv``).
        randomization: What to randomise.
    """

    def __init__(self, env: gym.Env, randomization: SceneRandomization) -> None:
        self.env, self.randomization = env, randomization
        bodies = randomization.bodies or env.body_names
        self.base_colors = {body: env.sim.get_visual_colors(body) for body in bodies}
        self.base_camera = env.camera

    def apply(self, rng: np.random.Generator) -> None:
        """Draw and apply new colours, light and camera for the next episode."""
        settings, sim = self.randomization, self.env.sim
        if settings.color_jitter > 0:
            for body, colors in self.base_colors.items():
                for link, rgba in colors.items():
                    rgb = np.clip(
                        np.asarray(rgba[:3]) + rng.uniform(-1, 1, 3) * settings.color_jitter, 0, 1
                    )
                    sim.set_color(body, (*rgb.tolist(), rgba[3]), link=link)
        if settings.light:
            direction = rng.normal(size=3)
            direction[2] = abs(direction[2]) + 0.5  # from above, never grazing
            sim.set_render_light(
                direction=(direction / np.linalg.norm(direction)).tolist(),
                color=rng.uniform(0.8, 1.0, 3).tolist(),
                ambient=float(rng.uniform(0.45, 0.75)),
                diffuse=float(rng.uniform(0.25, 0.5)),
                specular=float(rng.uniform(0.0, 0.1)),
            )
        camera = self.base_camera
        shift = rng.uniform(-1, 1, 3) * settings.camera_target_jitter
        angles = rng.uniform(-1, 1, 2) * settings.camera_angle_jitter
        self.env.camera = dataclasses.replace(
            camera,
            target=tuple(float(v) for v in np.asarray(camera.target) + shift),
            yaw=camera.yaw + float(angles[0]),
            pitch=camera.pitch + float(angles[1]),
            distance=camera.distance + float(rng.uniform(-1, 1) * settings.camera_distance_jitter),
        )


@dataclass(frozen=True)
class RandomKicks:
    """Random kicks of a body while collecting, for push-recovery data (e.g. quadruped falls).

    Before each step, with ``probability``, the body's base gets at once an upward velocity
    ``strength × up_speed`` (m/s) and a spin ``strength × spin`` (rad/s) about a random
    horizontal axis, ``strength`` uniform in ``strength_range``; weak kicks are recovered from,
    strong ones topple the robot.

    Args:
        body: Simulation body to kick (``"ant"`` in ``rlrobot/Quadruped-v0``).
        probability: Chance of a kick per env step.
        up_speed: Upward velocity (m/s) added by a full-strength kick.
        spin: Angular velocity (rad/s) added by a full-strength kick.
        strength_range: Range of the strength factor.
    """

    body: str
    probability: Fraction = 0.01
    up_speed: Annotated[float, Interval(0, unit="m/s")] = 3.0
    spin: Annotated[float, Interval(0, unit="rad/s")] = 15.0
    strength_range: tuple[NonNegative, NonNegative] = (0.3, 1.0)

    def __post_init__(self) -> None:
        check_fields(self)
        check_range("strength_range", *self.strength_range)

    def apply(self, env: gym.Env, rng: np.random.Generator) -> bool:
        """Maybe kick the body of ``env`` (an unwrapped ``RobotTaskEnv``); return whether it was."""
        if rng.random() >= self.probability:
            return False
        strength = rng.uniform(*self.strength_range)
        heading = rng.uniform(0.0, 2.0 * np.pi)
        axis = np.array([np.cos(heading), np.sin(heading), 0.0])
        linear, angular = env.sim.get_base_velocity(self.body)
        env.sim.set_base_velocity(
            self.body,
            linear + np.array([0.0, 0.0, strength * self.up_speed]),
            angular + strength * self.spin * axis,
        )
        return True

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as JSON values."""
        return {**dataclasses.asdict(self), "strength_range": list(self.strength_range)}
