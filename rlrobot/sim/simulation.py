"""The PyBullet facade: one physics client per instance, bodies addressed by name.

This is the only module that calls PyBullet, and it is one class in one file on purpose: every
call goes through the instance's client id (``_call``) and the cache of body states that each
state change clears (``_cached``), so splitting the facade would spread that one contract over
several files.
"""

from __future__ import annotations

import os
import sys
import tempfile
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pybullet
import pybullet_data

CONNECTION_MODES = ("direct", "gui")
# Every .bullet file begins so (then "d" or "f" and a version): a cheap check of a blob.
BULLET_FILE_MAGIC = b"BULLET"
# pybullet.c's MAX_PHYSICS_CLIENTS: client ids run from 0 to 1023.
MAX_CLIENTS = 1024


@dataclass(frozen=True)
class Camera:
    """A camera looking at `target` (m) from `distance` (m), angles in degrees."""

    target: tuple[float, float, float] = (0.0, 0.0, 0.0)
    distance: float = 1.5
    yaw: float = 45.0
    pitch: float = -30.0
    roll: float = 0.0
    fov: float = 60.0
    near: float = 0.01
    far: float = 100.0
    track: str | None = None
    """Name of a body to follow: `target` is then an offset (m) from its base position."""


def _as_list(values: Sequence[float]) -> list[float]:
    """Plain Python floats for PyBullet (numpy scalars are slower to convert)."""
    return values.tolist() if isinstance(values, np.ndarray) else list(values)


def connected_client_ids() -> list[int]:
    """Ids of the PyBullet clients connected in this process (a leaked client shows here)."""
    return [
        client_id
        for client_id in range(MAX_CLIENTS)
        if pybullet.getConnectionInfo(physicsClientId=client_id)["isConnected"]
    ]


def _disconnect(client_id: int) -> None:
    """Disconnect `client_id` if it is still connected (the finaliser of a dropped Simulation)."""
    if pybullet.getConnectionInfo(physicsClientId=client_id)["isConnected"]:
        pybullet.disconnect(physicsClientId=client_id)


def display_available() -> bool:
    """Whether a GUI window can be opened (an X display on Linux; always elsewhere)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


class Simulation:
    """One PyBullet physics client, with bodies named instead of integer ids.

    Every call passes `physicsClientId`, so several simulations live side by side in one
    process and none touches PyBullet's implicit default client.

    State queries (base pose and velocity, joint states, link states) are cached until the
    state changes (`step`, a teleport, `restore_state`), because a robot, its task and the
    env often read the same quantity several times per step. Cached arrays are read-only.

    Args:
        connection_mode: "direct" (headless, default) or "gui" (a window; needs a display).
        timestep: Physics timestep in s.
        n_substeps: `stepSimulation` calls per `step()`; the control period is
            `timestep * n_substeps` s.
        gravity: Gravity along z in m/s².
        visual_shapes: Load the visual meshes of URDF/MJCF files. Without them a body is drawn
            with its (coarser, white) collision shapes, and loading is several times faster:
            physics-only envs (no rendering, no pixel observations) pass False.
    """

    def __init__(
        self,
        connection_mode: str = "direct",
        timestep: float = 1.0 / 240.0,
        n_substeps: int = 1,
        gravity: float = -9.81,
        visual_shapes: bool = True,
    ) -> None:
        if connection_mode not in CONNECTION_MODES:
            raise ValueError(
                f"connection_mode must be one of {CONNECTION_MODES}, got {connection_mode!r}"
            )
        if timestep <= 0 or n_substeps < 1:
            raise ValueError(
                f"timestep must be > 0 and n_substeps >= 1, got {timestep} and {n_substeps}"
            )
        if connection_mode == "gui" and not display_available():
            # PyBullet's GUI aborts the whole process without a display; fail politely first.
            raise RuntimeError(
                "PyBullet GUI needs a display (DISPLAY is unset); use render_mode='rgb_array' "
                "for headless rendering or run under xvfb-run."
            )
        mode = pybullet.GUI if connection_mode == "gui" else pybullet.DIRECT
        self.client_id: int = pybullet.connect(mode)
        if self.client_id < 0:
            raise RuntimeError(f"could not connect to PyBullet in {connection_mode} mode")
        # A simulation (or env) dropped without close() must not keep its client: each holds
        # tens of MB, and a process can have only MAX_CLIENTS of them.
        self._finalizer = weakref.finalize(self, _disconnect, self.client_id)
        self.connection_mode = connection_mode
        self.timestep = timestep
        self.n_substeps = n_substeps
        self._load_flags = 0 if visual_shapes else pybullet.URDF_IGNORE_VISUAL_SHAPES
        self._bodies: dict[str, int] = {}
        self._cache: dict[tuple, Any] = {}
        # Torque commands per body for the next step(), re-sent before each of its substeps:
        # PyBullet applies a TORQUE_CONTROL force for one stepSimulation call only.
        self._held_forces: dict[str, tuple[list[int], list[float]]] = {}
        self._render_light: dict[str, object] = {}
        self._call(pybullet.setAdditionalSearchPath, pybullet_data.getDataPath())
        self._call(pybullet.setTimeStep, timestep)
        self._call(pybullet.setGravity, 0.0, 0.0, gravity)
        if connection_mode == "gui":
            self._call(pybullet.configureDebugVisualizer, pybullet.COV_ENABLE_GUI, 0)

    def _call(self, function, *args, **kwargs):
        """Call a PyBullet function on this client."""
        return function(*args, physicsClientId=self.client_id, **kwargs)

    def _cached(self, key: tuple, compute: Callable[[], Any]) -> Any:
        """`compute()`, remembered under `key` until the simulation state next changes."""
        value = self._cache.get(key)
        if value is None:
            value = self._cache[key] = compute()
        return value

    @staticmethod
    def _frozen(values: Sequence[float]) -> np.ndarray:
        array = np.array(values, dtype=np.float64)
        array.flags.writeable = False
        return array

    @property
    def dt(self) -> float:
        """Control period in s: the simulated time that one `step()` advances."""
        return self.timestep * self.n_substeps

    @property
    def is_connected(self) -> bool:
        """Whether the physics client is still connected."""
        return self.client_id >= 0 and bool(
            pybullet.getConnectionInfo(physicsClientId=self.client_id)["isConnected"]
        )

    def close(self) -> None:
        """Disconnect the physics client (idempotent)."""
        self._finalizer()  # disconnects once; later calls and garbage collection do nothing
        self._bodies.clear()
        self._cache.clear()
        self._held_forces.clear()

    def step(self) -> None:
        """Advance the physics by one control period (`n_substeps` timesteps), holding the
        forces of `set_joint_forces` over all of it (and no longer)."""
        self._cache.clear()
        for substep in range(self.n_substeps):
            if substep:
                for name, (joints, forces) in self._held_forces.items():
                    self._send_forces(name, joints, forces)
            pybullet.stepSimulation(physicsClientId=self.client_id)
        self._held_forces.clear()

    # ----------------------------------------------------------------------------- bodies
    def body_id(self, name: str) -> int:
        """The PyBullet id of the body called `name`."""
        try:
            return self._bodies[name]
        except KeyError:
            raise KeyError(f"no body named {name!r}; bodies: {sorted(self._bodies)}") from None

    @property
    def body_names(self) -> list[str]:
        """Names of the bodies in this simulation."""
        return list(self._bodies)

    def _add_body(self, name: str, body_id: int) -> int:
        if name in self._bodies:
            raise ValueError(f"a body named {name!r} already exists")
        self._bodies[name] = body_id
        return body_id

    def load_urdf(
        self,
        name: str,
        file_name: str,
        base_position: Sequence[float] = (0.0, 0.0, 0.0),
        base_orientation: Sequence[float] = (0.0, 0.0, 0.0, 1.0),
        use_fixed_base: bool = False,
        flags: int = 0,
        global_scaling: float = 1.0,
        visual_shapes: bool | None = None,
    ) -> int:
        """Load a URDF (path relative to pybullet_data or absolute) as body `name`.

        `visual_shapes` overrides the simulation's choice for this body (e.g. True for a
        ground whose cheap textured visual gives pixel observations motion cues).
        """
        if visual_shapes is not None:
            flags |= 0 if visual_shapes else pybullet.URDF_IGNORE_VISUAL_SHAPES
        else:
            flags |= self._load_flags
        body_id = self._call(
            pybullet.loadURDF,
            file_name,
            basePosition=base_position,
            baseOrientation=base_orientation,
            useFixedBase=use_fixed_base,
            flags=flags,
            globalScaling=global_scaling,
        )
        return self._add_body(name, body_id)

    def load_mjcf(self, name: str, file_name: str) -> int:
        """Load the first body of an MJCF file as body `name`."""
        body_ids = self._call(pybullet.loadMJCF, file_name, flags=self._load_flags)
        return self._add_body(name, body_ids[0])

    def create_box(
        self,
        name: str,
        half_extents: Sequence[float],
        mass: float,
        position: Sequence[float],
        rgba: Sequence[float] = (0.8, 0.8, 0.8, 1.0),
        ghost: bool = False,
        lateral_friction: float | None = None,
    ) -> int:
        """Create a box of `half_extents` (m) and `mass` (kg); ghosts have no collision."""
        visual = self._call(
            pybullet.createVisualShape, pybullet.GEOM_BOX, halfExtents=half_extents, rgbaColor=rgba
        )
        collision = (
            -1
            if ghost
            else self._call(
                pybullet.createCollisionShape, pybullet.GEOM_BOX, halfExtents=half_extents
            )
        )
        return self._create_body(name, mass, position, visual, collision, lateral_friction)

    def create_sphere(
        self,
        name: str,
        radius: float,
        mass: float,
        position: Sequence[float],
        rgba: Sequence[float] = (0.9, 0.1, 0.1, 1.0),
        ghost: bool = False,
    ) -> int:
        """Create a sphere of `radius` (m) and `mass` (kg); ghosts have no collision."""
        visual = self._call(
            pybullet.createVisualShape, pybullet.GEOM_SPHERE, radius=radius, rgbaColor=rgba
        )
        collision = (
            -1
            if ghost
            else self._call(pybullet.createCollisionShape, pybullet.GEOM_SPHERE, radius=radius)
        )
        return self._create_body(name, mass, position, visual, collision, None)

    def _create_body(
        self,
        name: str,
        mass: float,
        position: Sequence[float],
        visual: int,
        collision: int,
        lateral_friction: float | None,
    ) -> int:
        body_id = self._call(
            pybullet.createMultiBody,
            baseMass=mass,
            baseCollisionShapeIndex=collision,
            baseVisualShapeIndex=visual,
            basePosition=position,
        )
        if lateral_friction is not None:
            self._call(pybullet.changeDynamics, body_id, -1, lateralFriction=lateral_friction)
        return self._add_body(name, body_id)

    # ------------------------------------------------------------------------ base state
    def get_base_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Base position (m) shape (3,) and orientation quaternion (x, y, z, w) shape (4,)."""

        def compute() -> tuple[np.ndarray, np.ndarray]:
            position, orientation = self._call(
                pybullet.getBasePositionAndOrientation, self.body_id(name)
            )
            return self._frozen(position), self._frozen(orientation)

        return self._cached(("base_pose", name), compute)

    def get_base_position(self, name: str) -> np.ndarray:
        """Base position (x, y, z) in m, shape (3,)."""
        return self.get_base_pose(name)[0]

    def get_base_orientation(self, name: str) -> np.ndarray:
        """Base orientation quaternion (x, y, z, w), shape (4,)."""
        return self.get_base_pose(name)[1]

    def get_base_velocity(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Base linear (m/s) and angular (rad/s) velocity, each shape (3,)."""

        def compute() -> tuple[np.ndarray, np.ndarray]:
            linear, angular = self._call(pybullet.getBaseVelocity, self.body_id(name))
            return self._frozen(linear), self._frozen(angular)

        return self._cached(("base_velocity", name), compute)

    def set_base_pose(
        self,
        name: str,
        position: Sequence[float],
        orientation: Sequence[float] = (0.0, 0.0, 0.0, 1.0),
    ) -> None:
        """Teleport a body's base to `position` (m) and `orientation` (quaternion xyzw)."""
        self._cache.clear()
        self._call(
            pybullet.resetBasePositionAndOrientation, self.body_id(name), position, orientation
        )

    def set_base_velocity(
        self,
        name: str,
        linear: Sequence[float] = (0.0, 0.0, 0.0),
        angular: Sequence[float] = (0.0, 0.0, 0.0),
    ) -> None:
        """Set a body's base linear (m/s) and angular (rad/s) velocity (default: at rest)."""
        self._cache.clear()
        self._call(
            pybullet.resetBaseVelocity,
            self.body_id(name),
            linearVelocity=list(linear),
            angularVelocity=list(angular),
        )

    # ---------------------------------------------------------------------------- joints
    def get_num_joints(self, name: str) -> int:
        """Number of joints of body `name`."""
        return self._call(pybullet.getNumJoints, self.body_id(name))

    def get_joint_info(self, name: str, joint: int) -> tuple:
        """PyBullet's raw `getJointInfo` tuple for one joint."""
        return self._call(pybullet.getJointInfo, self.body_id(name), joint)

    def get_joint_states(self, name: str, joints: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Positions (rad or m) and velocities of `joints` in one call, each shape (n,)."""

        def compute() -> tuple[np.ndarray, np.ndarray]:
            states = self._call(pybullet.getJointStates, self.body_id(name), list(joints))
            # Rows of one frozen (2, n) array: one allocation for both.
            positions, velocities = self._frozen([state[:2] for state in states]).T
            return positions, velocities

        return self._cached(("joint_states", name, tuple(joints)), compute)

    def reset_joint_states(
        self,
        name: str,
        joints: Sequence[int],
        positions: Sequence[float],
        velocities: Sequence[float] | None = None,
    ) -> None:
        """Teleport `joints` to `positions` (and `velocities`, default zero); forces held on
        the body are released."""
        self._cache.clear()
        self._release_forces(name)
        body = self.body_id(name)
        if velocities is None:
            velocities = [0.0] * len(joints)
        for joint, position, velocity in zip(joints, positions, velocities, strict=True):
            self._call(
                pybullet.resetJointState,
                body,
                joint,
                targetValue=float(position),
                targetVelocity=float(velocity),
            )

    def disable_joint_motors(self, name: str, joints: Sequence[int]) -> None:
        """Switch off PyBullet's default velocity motors (and held forces) so joints move
        freely."""
        self._release_forces(name)
        self._call(
            pybullet.setJointMotorControlArray,
            self.body_id(name),
            list(joints),
            pybullet.VELOCITY_CONTROL,
            forces=[0.0] * len(joints),
        )

    def set_joint_forces(self, name: str, joints: Sequence[int], forces: Sequence[float]) -> None:
        """Apply `forces` (N or N·m) to `joints` during every substep of the next `step()`
        (torque control; a later call for the same body replaces them)."""
        self._release_forces(name)
        self._held_forces[name] = (list(joints), _as_list(forces))
        self._send_forces(name, *self._held_forces[name])

    def _release_forces(self, name: str) -> None:
        """Cancel the forces set on `name` for the next step: PyBullet adds up the torque
        commands sent before a stepSimulation, whatever control mode is set afterwards."""
        held = self._held_forces.pop(name, None)
        if held is not None:
            joints, forces = held
            self._send_forces(name, joints, [-force for force in forces])

    def _send_forces(self, name: str, joints: list[int], forces: list[float]) -> None:
        self._call(
            pybullet.setJointMotorControlArray,
            self.body_id(name),
            joints,
            pybullet.TORQUE_CONTROL,
            forces=forces,
        )

    def set_joint_positions_target(
        self,
        name: str,
        joints: Sequence[int],
        target_positions: Sequence[float],
        forces: Sequence[float],
    ) -> None:
        """Drive `joints` towards `target_positions` with PD position control."""
        self._motor_control(
            name, joints, pybullet.POSITION_CONTROL, forces, targetPositions=target_positions
        )

    def set_joint_velocities_target(
        self,
        name: str,
        joints: Sequence[int],
        target_velocities: Sequence[float],
        forces: Sequence[float],
    ) -> None:
        """Drive `joints` at `target_velocities` with velocity control."""
        self._motor_control(
            name, joints, pybullet.VELOCITY_CONTROL, forces, targetVelocities=target_velocities
        )

    def _motor_control(
        self,
        name: str,
        joints: Sequence[int],
        mode: int,
        forces: Sequence[float],
        **targets: Sequence[float],
    ) -> None:
        self._release_forces(name)
        self._call(
            pybullet.setJointMotorControlArray,
            self.body_id(name),
            list(joints),
            mode,
            forces=_as_list(forces),
            **{key: _as_list(value) for key, value in targets.items()},
        )

    # ----------------------------------------------------------------------------- links
    def _get_link_frame(self, name: str, link: int) -> tuple[np.ndarray, ...]:
        """World position (m), orientation (xyzw) and linear velocity (m/s) of a link frame."""

        def compute() -> tuple[np.ndarray, ...]:
            state = self._call(
                pybullet.getLinkState, self.body_id(name), link, computeLinkVelocity=1
            )
            return self._frozen(state[4]), self._frozen(state[5]), self._frozen(state[6])

        return self._cached(("link_frame", name, link), compute)

    def get_link_position(self, name: str, link: int) -> np.ndarray:
        """World position (m) of a link frame, shape (3,)."""
        return self._get_link_frame(name, link)[0]

    def get_link_velocity(self, name: str, link: int) -> np.ndarray:
        """World linear velocity (m/s) of a link frame, shape (3,)."""
        return self._get_link_frame(name, link)[2]

    def get_link_state(self, name: str, link: int) -> tuple[np.ndarray, np.ndarray]:
        """World position (m) and linear velocity (m/s) of a link frame, each shape (3,)."""
        position, _, velocity = self._get_link_frame(name, link)
        return position, velocity

    def get_link_pose(self, name: str, link: int) -> tuple[np.ndarray, np.ndarray]:
        """World position (m) shape (3,) and orientation (x, y, z, w) shape (4,) of a link frame."""
        position, orientation, _ = self._get_link_frame(name, link)
        return position, orientation

    def get_link_positions(self, name: str, links: Sequence[int]) -> np.ndarray:
        """World positions (m) of several link frames in one call, shape (n, 3)."""
        states = self._call(pybullet.getLinkStates, self.body_id(name), list(links))
        return np.asarray([state[4] for state in states], dtype=np.float64)

    def inverse_kinematics(
        self,
        name: str,
        link: int,
        position: Sequence[float],
        orientation: Sequence[float] | None = None,
    ) -> np.ndarray:
        """Joint positions that bring `link` to `position` (m), optionally `orientation`."""
        kwargs = {} if orientation is None else {"targetOrientation": orientation}
        solution = self._call(
            pybullet.calculateInverseKinematics, self.body_id(name), link, position, **kwargs
        )
        return np.asarray(solution, dtype=np.float64)

    def get_linear_jacobian(
        self, name: str, link: int, joint_positions: Sequence[float]
    ) -> np.ndarray:
        """d(link frame position)/d(joint positions) at `joint_positions`, shape (3, n_dofs).

        `joint_positions` lists every movable joint of the body (its degrees of freedom).
        """
        n_dofs = len(joint_positions)
        zeros = [0.0] * n_dofs
        linear, _ = self._call(
            pybullet.calculateJacobian,
            self.body_id(name),
            link,
            [0.0, 0.0, 0.0],
            list(joint_positions),
            zeros,
            zeros,
        )
        return np.asarray(linear, dtype=np.float64)

    def change_dynamics(self, name: str, link: int = -1, **dynamics: float) -> None:
        """Change dynamics of a link (e.g. `mass`, `lateralFriction`); link -1 is the base."""
        self._call(pybullet.changeDynamics, self.body_id(name), link, **dynamics)

    def get_dynamics_info(self, name: str, link: int = -1) -> tuple:
        """PyBullet's raw `getDynamicsInfo` tuple (mass first, lateral friction second)."""
        return self._call(pybullet.getDynamicsInfo, self.body_id(name), link)

    def set_color(self, name: str, rgba: Sequence[float], link: int = -1) -> None:
        """Set a link's colour (RGBA in [0, 1])."""
        self._call(pybullet.changeVisualShape, self.body_id(name), link, rgbaColor=list(rgba))

    def get_visual_colors(self, name: str) -> dict[int, tuple[float, float, float, float]]:
        """RGBA colour (in [0, 1]) of each visual link of body `name`; link -1 is the base."""
        shapes = self._call(pybullet.getVisualShapeData, self.body_id(name))
        return {int(shape[1]): tuple(float(c) for c in shape[7]) for shape in shapes}

    def set_collision_filter(self, name: str, group: int, mask: int = -1) -> None:
        """Put every link of `name` in collision `group` (a bit mask) colliding with `mask`."""
        body = self.body_id(name)
        for link in range(-1, self.get_num_joints(name)):
            self._call(pybullet.setCollisionFilterGroupMask, body, link, group, mask)

    def ray_test_batch(
        self, ray_from: np.ndarray, ray_to: np.ndarray, collision_mask: int = -1
    ) -> tuple[np.ndarray, np.ndarray]:
        """Cast rays (n, 3) → (hit fraction in [0, 1], hit body id or -1), each shape (n,).

        Rays only hit bodies whose collision group shares a bit with `collision_mask`, so a
        robot in its own group (`set_collision_filter`) does not see itself.
        """
        results = self._call(
            pybullet.rayTestBatch,
            ray_from.tolist(),
            ray_to.tolist(),
            collisionFilterMask=collision_mask,
        )
        fractions = np.fromiter((r[2] for r in results), dtype=np.float64, count=len(results))
        bodies = np.fromiter((r[0] for r in results), dtype=np.int64, count=len(results))
        return fractions, bodies

    def get_contact_bodies(self, name: str) -> set[int]:
        """Ids of the bodies touching `name` now."""
        return {c[2] for c in self._call(pybullet.getContactPoints, bodyA=self.body_id(name))}

    # ---------------------------------------------------------------------- save/restore
    def perform_collision_detection(self) -> None:
        """Update contact points for the current poses without advancing time."""
        self._call(pybullet.performCollisionDetection)

    def save_state(self) -> int:
        """Snapshot the whole simulation in memory, contact points included; returns an id.

        Restoring re-syncs every contact cache (warm-started impulses) to the snapshot only
        when the snapshot holds at least one contact manifold; otherwise caches left by later
        steps survive the restore.
        """
        return self._call(pybullet.saveState)

    def restore_state(self, state_id: int) -> None:
        """Restore a snapshot taken by `save_state`."""
        self._cache.clear()
        self._call(pybullet.restoreState, stateId=state_id)

    def remove_state(self, state_id: int) -> None:
        """Free a snapshot taken by `save_state`."""
        self._call(pybullet.removeState, state_id)

    def export_state(self) -> bytes:
        """Snapshot the whole simulation as the bytes of a `.bullet` file, which outlive the
        process (`save_state` ids do not).

        It holds what `save_state` holds (poses, velocities, contact points); it is written
        through a temporary file because PyBullet saves `.bullet` snapshots only to files.
        """
        with tempfile.TemporaryDirectory(prefix="rlrobot-sim-") as directory:
            path = Path(directory) / "state.bullet"
            self._call(pybullet.saveBullet, str(path))
            return path.read_bytes()

    def import_state(self, data: bytes) -> None:
        """Restore a snapshot returned by `export_state` (of a simulation of the same bodies).

        Raises:
            ValueError: `data` is not a `.bullet` snapshot, or PyBullet cannot restore it.
        """
        if not data.startswith(BULLET_FILE_MAGIC):
            raise ValueError(f"not a .bullet snapshot (it starts with {data[:8]!r})")
        self._cache.clear()
        with tempfile.TemporaryDirectory(prefix="rlrobot-sim-") as directory:
            path = Path(directory) / "state.bullet"
            path.write_bytes(data)
            try:
                self._call(pybullet.restoreState, fileName=str(path))
            except pybullet.error as error:
                raise ValueError(f"PyBullet cannot restore the snapshot: {error}") from None
        # The restore sets joint positions but leaves the links where they were: recompute
        # their frames, which link queries, inverse kinematics and ray tests read.
        for body_id in self._bodies.values():
            if self._call(pybullet.getNumJoints, body_id):
                self._call(pybullet.getLinkState, body_id, 0, computeForwardKinematics=1)

    # --------------------------------------------------------------------------- render
    def render(self, width: int, height: int, camera: Camera) -> np.ndarray:
        """Render an RGB image with the TinyRenderer (headless), uint8 shape (height, width, 3)."""
        target = np.asarray(camera.target, dtype=np.float64)
        if camera.track is not None:
            target = target + self.get_base_position(camera.track)
        view = self._call(
            pybullet.computeViewMatrixFromYawPitchRoll,
            cameraTargetPosition=target.tolist(),
            distance=camera.distance,
            yaw=camera.yaw,
            pitch=camera.pitch,
            roll=camera.roll,
            upAxisIndex=2,
        )
        projection = self._call(
            pybullet.computeProjectionMatrixFOV,
            fov=camera.fov,
            aspect=width / height,
            nearVal=camera.near,
            farVal=camera.far,
        )
        return self.render_from_matrices(width, height, view, projection)

    def render_from_matrices(
        self, width: int, height: int, view: Sequence[float], projection: Sequence[float]
    ) -> np.ndarray:
        """Render with explicit view/projection matrices, uint8 shape (height, width, 3)."""
        _, _, rgba, _, _ = self._call(
            pybullet.getCameraImage,
            width=width,
            height=height,
            viewMatrix=view,
            projectionMatrix=projection,
            renderer=pybullet.ER_TINY_RENDERER,
            flags=pybullet.ER_NO_SEGMENTATION_MASK,
            **self._render_light,
        )
        return np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)[..., :3].copy()

    def set_render_light(
        self,
        direction: Sequence[float] | None = None,
        color: Sequence[float] | None = None,
        ambient: float | None = None,
        diffuse: float | None = None,
        specular: float | None = None,
    ) -> None:
        """Set the TinyRenderer light for later renders; a `None` keeps PyBullet's default.

        Args:
            direction: Direction towards the light (x, y, z), world frame.
            color: Light RGB in [0, 1].
            ambient: Ambient coefficient (PyBullet's default 0.6).
            diffuse: Diffuse coefficient (default 0.35).
            specular: Specular coefficient (default 0.05).
        """
        settings = {
            "lightDirection": None if direction is None else list(direction),
            "lightColor": None if color is None else list(color),
            "lightAmbientCoeff": ambient,
            "lightDiffuseCoeff": diffuse,
            "lightSpecularCoeff": specular,
        }
        self._render_light = {key: value for key, value in settings.items() if value is not None}

    def compute_view_matrix(
        self, eye: Sequence[float], target: Sequence[float], up: Sequence[float]
    ) -> tuple:
        """A view matrix from an eye position looking at a target (for robot-mounted cameras)."""
        return self._call(
            pybullet.computeViewMatrix,
            cameraEyePosition=eye,
            cameraTargetPosition=target,
            cameraUpVector=up,
        )

    def compute_projection_matrix(
        self, fov: float, aspect: float, near: float, far: float
    ) -> tuple:
        """A perspective projection matrix (fov in degrees)."""
        return self._call(
            pybullet.computeProjectionMatrixFOV, fov=fov, aspect=aspect, nearVal=near, farVal=far
        )

    def reset_debug_camera(self, camera: Camera) -> None:
        """Point the GUI window's camera (no effect headless)."""
        if self.connection_mode == "gui":
            self._call(
                pybullet.resetDebugVisualizerCamera,
                cameraDistance=camera.distance,
                cameraYaw=camera.yaw,
                cameraPitch=camera.pitch,
                cameraTargetPosition=camera.target,
            )

    @staticmethod
    def quaternion_from_euler(euler: Sequence[float]) -> np.ndarray:
        """Quaternion (x, y, z, w) from roll, pitch, yaw in rad."""
        return np.asarray(pybullet.getQuaternionFromEuler(euler), dtype=np.float64)

    @staticmethod
    def rotation_matrix(quaternion: Sequence[float]) -> np.ndarray:
        """Rotation matrix of a quaternion (x, y, z, w), shape (3, 3); columns are body axes."""
        return np.asarray(pybullet.getMatrixFromQuaternion(quaternion), dtype=np.float64).reshape(
            3, 3
        )

    @staticmethod
    def euler_from_quaternion(quaternion: Sequence[float]) -> np.ndarray:
        """Roll, pitch, yaw in rad from a quaternion (x, y, z, w)."""
        return np.asarray(pybullet.getEulerFromQuaternion(quaternion), dtype=np.float64)
