"""The MIT racecar from pybullet_data: a 1/10-scale car with Ackermann steering and a lidar."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from gymnasium import spaces

from rlrobot.envs.checks import Interval
from rlrobot.envs.core import Robot
from rlrobot.sim import Simulation

WHEEL_JOINTS = (2, 3, 5, 7)
STEERING_JOINTS = (4, 6)
LIDAR_LINK = 8
CAMERA_LINK = 9
WHEEL_RADIUS = 0.05
START_HEIGHT = 0.05
BODY_COLOR = (0.85, 0.1, 0.1, 1.0)
WHEEL_COLOR = (0.15, 0.15, 0.15, 1.0)
# The car sits in its own collision group so that its lidar rays pass through its own body.
COLLISION_GROUP = 1 << 4
LIDAR_MASK = ~COLLISION_GROUP
# Rays are cast every step: 4,096 take about 45 ms a step (16 rays: under 1 ms), and PyBullet
# casts at most 16,384 in one batch.
MAX_RAYS = 4096
# The hint of `n_rays` in the signature of the env that checks it.
RayCount = Annotated[int, Interval(1, MAX_RAYS, reason="cast every step")]


class Racecar(Robot):
    """Car driven by a speed and a steering command; senses its pose, motion and lidar ranges.

    Action (`Box(-1, 1, (2,), float32)`): [speed command × `max_speed` m/s (all four wheels,
    velocity control with `max_wheel_torque` × `actuator_scale` N·m), steering angle ×
    `max_steering` rad (position control)].

    Observation (float, shape (8 + n_rays,)):

    | index     | meaning                                      | unit  |
    |-----------|----------------------------------------------|-------|
    | 0, 1      | base (rear axle) x, y                        | m     |
    | 2, 3      | cos yaw, sin yaw                             | —     |
    | 4, 5      | forward and leftward velocity (car frame)    | m/s   |
    | 6         | yaw rate                                     | rad/s |
    | 7         | steering angle                               | rad   |
    | 8 …       | lidar ranges: `n_rays` horizontal rays evenly  | m     |
    |           | over 360° counter-clockwise from straight     |       |
    |           | ahead, capped at `ray_length`                 |       |

    Mounted camera: the car's front stereo camera, looking ahead.

    Args:
        sim: The simulation to load into (with a ground plane).
        max_speed: Forward speed (m/s) of a unit speed command.
        max_steering: Steering angle (rad) of a unit steering command.
        n_rays: Number of lidar rays, at most `MAX_RAYS` (4096).
        ray_length: Lidar range (m).
        max_wheel_torque: Torque limit of each wheel motor (N·m).
    """

    episode_attributes = ("actuator_scale", "start_yaw")

    def __init__(
        self,
        sim: Simulation,
        max_speed: float,
        max_steering: float,
        n_rays: int,
        ray_length: float,
        max_wheel_torque: float = 20.0,
    ) -> None:
        super().__init__(sim)
        self.max_speed = max_speed
        self.max_steering = max_steering
        self.max_wheel_torque = max_wheel_torque
        self.n_rays = n_rays
        self.ray_length = ray_length
        self._ray_angles = np.linspace(0.0, 2 * np.pi, n_rays, endpoint=False)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        # The chassis has no collision shape to draw in its place, so the (light) visual meshes
        # are always loaded: without them the car would be invisible in pixel observations.
        sim.load_urdf(
            "racecar", "racecar/racecar.urdf", (0.0, 0.0, START_HEIGHT), visual_shapes=True
        )
        sim.set_collision_filter("racecar", COLLISION_GROUP)
        # A red body on dark wheels stands out on the blue-and-white floor in pixel observations.
        for link in range(-1, sim.get_num_joints("racecar")):
            sim.set_color("racecar", WHEEL_COLOR if link in WHEEL_JOINTS else BODY_COLOR, link)
        self.start_yaw = 0.0

    def reset(self, np_random: np.random.Generator) -> None:
        """Stand at the origin, at rest, wheels straight, facing a uniformly random heading."""
        self.start_yaw = float(np_random.uniform(-np.pi, np.pi))
        orientation = self.sim.quaternion_from_euler((0.0, 0.0, self.start_yaw))
        self.sim.set_base_pose("racecar", (0.0, 0.0, START_HEIGHT), orientation)
        self.sim.set_base_velocity("racecar")
        joints = WHEEL_JOINTS + STEERING_JOINTS
        self.sim.reset_joint_states("racecar", joints, np.zeros(len(joints)))
        self.set_action(np.zeros(2))

    def set_action(self, action: np.ndarray) -> None:
        """Spin the wheels towards the commanded speed and turn the front wheels."""
        wheel_speed = float(action[0]) * self.max_speed / WHEEL_RADIUS
        torque = self.max_wheel_torque * self.actuator_scale
        self.sim.set_joint_velocities_target(
            "racecar", WHEEL_JOINTS, [wheel_speed] * len(WHEEL_JOINTS), [torque] * 4
        )
        steering = float(action[1]) * self.max_steering
        self.sim.set_joint_positions_target(
            "racecar", STEERING_JOINTS, (steering, steering), (torque, torque)
        )

    def get_position(self) -> np.ndarray:
        """Base (rear axle) position x, y in m, shape (2,)."""
        return self.sim.get_base_position("racecar")[:2]

    def get_ranges(self, yaw: float) -> np.ndarray:
        """Lidar ranges (m) with the car heading `yaw` (rad), shape (n_rays,)."""
        lidar = self.sim.get_link_position("racecar", LIDAR_LINK)
        angles = yaw + self._ray_angles
        directions = np.stack([np.cos(angles), np.sin(angles), np.zeros(self.n_rays)], axis=1)
        ray_from = np.broadcast_to(lidar, directions.shape)
        fractions, _ = self.sim.ray_test_batch(
            ray_from, ray_from + self.ray_length * directions, collision_mask=LIDAR_MASK
        )
        return fractions * self.ray_length

    def get_obs(self) -> np.ndarray:
        """Pose, car-frame velocity, yaw rate, steering angle and lidar ranges (table above)."""
        position, orientation = self.sim.get_base_pose("racecar")
        linear, angular = self.sim.get_base_velocity("racecar")
        yaw = self.sim.euler_from_quaternion(orientation)[2]
        cos_yaw, sin_yaw = np.cos(yaw), np.sin(yaw)
        forward = cos_yaw * linear[0] + sin_yaw * linear[1]
        leftward = -sin_yaw * linear[0] + cos_yaw * linear[1]
        steering = self.sim.get_joint_states("racecar", STEERING_JOINTS[:1])[0][0]
        head = [position[0], position[1], cos_yaw, sin_yaw, forward, leftward, angular[2], steering]
        return np.concatenate([head, self.get_ranges(yaw)])

    def get_camera_pose(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The front camera, looking along the car's heading."""
        position, orientation = self.sim.get_link_pose("racecar", CAMERA_LINK)
        axes = self.sim.rotation_matrix(orientation)
        return position, position + axes[:, 0], axes[:, 2]
