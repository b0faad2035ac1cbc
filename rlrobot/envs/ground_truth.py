"""The robot envs' ground truth: what the simulator knows exactly, for labels and analyses.

`RobotTaskEnv` inherits these queries, so that perception datasets and studies read body
poses, label values, proprioception and camera views through a small public API, and never
through the env's `sim`, `robot` or `task`. Nothing here is part of an observation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rlrobot.sim import Camera, Simulation


class GroundTruth:
    """Public ground-truth queries of an env built on a `Simulation` (mixed into `RobotTaskEnv`).

    Needs the attributes that `RobotTaskEnv` sets: `sim`, `robot` (a `Robot`), `task` (a
    `Task`) and `camera` (the scene camera). Every quantity is exact: no observation noise.

    Queries:
        body_names: Names of the bodies in the scene, e.g. ("plane", "panda", "table", "target").
        get_body_pose(body): Base position (m) (3,) and quaternion (x, y, z, w) (4,) of a body.
        get_ground_truth(): `{name: float64 array}`: `<body>_position` (3,) m of every body,
            the robot's own (`ee_position` (3,) m on arms), and `achieved_goal` and
            `desired_goal` (m) on goal tasks.
        get_proprioception(): The robot's own observation, float32 (n,).
        render_view(camera, width, height): The scene from any camera, uint8 (height, width, 3).
    """

    sim: Simulation
    # A Robot and a Task: typed loosely because core.py, which defines them, imports this module.
    robot: Any
    task: Any
    camera: Camera
    # `RobotTaskEnv._check_open(call)`: a closed env's bodies are gone, so every query says so.
    _check_open: Any

    @property
    def body_names(self) -> tuple[str, ...]:
        """Names of the bodies in the scene."""
        self._check_open("body_names")
        return tuple(self.sim.body_names)

    def get_body_pose(self, body: str) -> tuple[np.ndarray, np.ndarray]:
        """Base position (m) shape (3,) and orientation quaternion (x, y, z, w) shape (4,).

        Raises:
            KeyError: No body called `body` (the message lists the bodies).
        """
        self._check_open("get_body_pose")
        position, orientation = self.sim.get_base_pose(body)
        return position.copy(), orientation.copy()

    def get_ground_truth(self) -> dict[str, np.ndarray]:
        """Exact quantities now by name, float64 (see the class docstring for the names)."""
        self._check_open("get_ground_truth")
        truth = {f"{body}_position": self.get_body_pose(body)[0] for body in self.body_names}
        truth.update(self.robot.get_ground_truth())
        if self.task.goal_conditioned:
            truth["achieved_goal"] = np.array(self.task.get_achieved_goal(), dtype=np.float64)
            truth["desired_goal"] = np.array(self.task.get_desired_goal(), dtype=np.float64)
        return truth

    def get_proprioception(self) -> np.ndarray:
        """The robot's own observation without observation noise, float32 shape (n,)."""
        self._check_open("get_proprioception")
        return np.asarray(self.robot.get_obs(), dtype=np.float32)

    def render_view(self, camera: Camera, width: int, height: int) -> np.ndarray:
        """The scene seen from `camera` now (TinyRenderer), uint8 shape (height, width, 3)."""
        self._check_open("render_view")
        return self.sim.render(width, height, camera)
