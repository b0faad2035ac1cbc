"""Unit tests of the PyBullet facade."""

import numpy as np
import pybullet
import pytest

from rlrobot.sim import Camera, Simulation


@pytest.fixture
def sim():
    simulation = Simulation(timestep=1 / 240, n_substeps=4)
    yield simulation
    simulation.close()


def test_bodies_are_addressed_by_name(sim):
    sim.create_box("crate", (0.1, 0.1, 0.1), 1.0, (0.0, 0.0, 1.0))
    sim.create_sphere("ball", 0.05, 0.0, (1.0, 0.0, 0.5), ghost=True)
    assert sim.body_names == ["crate", "ball"]
    assert sim.body_id("crate") != sim.body_id("ball")
    np.testing.assert_allclose(sim.get_base_position("ball"), [1.0, 0.0, 0.5])
    with pytest.raises(KeyError, match="crate"):
        sim.body_id("missing")
    with pytest.raises(ValueError, match="already exists"):
        sim.create_sphere("ball", 0.05, 0.0, (0.0, 0.0, 0.0))


def test_step_advances_n_substeps_of_physics(sim):
    sim.create_box("crate", (0.1, 0.1, 0.1), 1.0, (0.0, 0.0, 10.0))
    sim.change_dynamics("crate", linearDamping=0.0)  # PyBullet damps by default
    assert sim.dt == pytest.approx(4 / 240)
    for _ in range(30):
        sim.step()
    elapsed = 30 * sim.dt
    velocity, _ = sim.get_base_velocity("crate")
    # Free fall: v = g t (semi-implicit Euler matches it exactly for constant gravity).
    assert velocity[2] == pytest.approx(-9.81 * elapsed, rel=1e-3)


def test_save_restore_round_trip(sim):
    sim.load_urdf("cartpole", "cartpole.urdf", use_fixed_base=True)
    sim.disable_joint_motors("cartpole", (0, 1))
    sim.reset_joint_states("cartpole", (0, 1), (0.0, 0.1))
    state = sim.save_state()
    saved = sim.get_joint_states("cartpole", (0, 1))
    for _ in range(50):
        sim.step()
    moved = sim.get_joint_states("cartpole", (0, 1))
    assert not np.allclose(moved[0], saved[0])
    sim.restore_state(state)
    restored = sim.get_joint_states("cartpole", (0, 1))
    np.testing.assert_array_equal(restored[0], saved[0])
    np.testing.assert_array_equal(restored[1], saved[1])
    sim.remove_state(state)


def test_render_is_headless_uint8_of_requested_size(sim):
    sim.create_box("crate", (0.2, 0.2, 0.2), 0.0, (0.0, 0.0, 0.0), rgba=(1, 0, 0, 1))
    frame = sim.render(64, 48, Camera(distance=2.0))
    assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8
    # The red crate is in view: some pixels are strongly red.
    red = (frame[..., 0] > 150) & (frame[..., 1] < 80) & (frame[..., 2] < 80)
    assert red.sum() > 20


def test_clients_are_independent_and_close_disconnects():
    first, second = Simulation(), Simulation()
    assert first.client_id != second.client_id
    first.create_box("crate", (0.1, 0.1, 0.1), 1.0, (0, 0, 1))
    assert second.body_names == []
    first.close()
    assert not first.is_connected and second.is_connected
    first.close()  # idempotent
    second.close()


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="connection_mode"):
        Simulation(connection_mode="shared_memory")
    with pytest.raises(ValueError, match="n_substeps"):
        Simulation(n_substeps=0)


def test_gui_without_display_fails_clearly(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(RuntimeError, match="display"):
        Simulation(connection_mode="gui")


def test_state_queries_are_cached_until_the_state_changes(sim):
    sim.create_box("crate", (0.1, 0.1, 0.1), 1.0, (0.0, 0.0, 1.0))
    first = sim.get_base_position("crate")
    assert sim.get_base_position("crate") is first  # one PyBullet call per state
    with pytest.raises(ValueError, match="read-only"):
        first[0] = 5.0  # a caller cannot corrupt the cache
    sim.set_base_pose("crate", (1.0, 2.0, 3.0))
    np.testing.assert_allclose(sim.get_base_position("crate"), [1.0, 2.0, 3.0])
    sim.step()
    assert sim.get_base_position("crate")[2] < 3.0  # falling
    state = sim.save_state()
    sim.step()
    sim.restore_state(state)
    velocity, _ = sim.get_base_velocity("crate")
    sim.step()
    assert sim.get_base_velocity("crate")[0][2] < velocity[2]


def test_rays_ignore_bodies_outside_their_collision_mask(sim):
    sim.create_box("wall", (0.1, 1.0, 1.0), 0.0, (2.0, 0.0, 0.0))
    sim.create_box("robot", (0.2, 0.2, 0.2), 1.0, (0.0, 0.0, 0.0))
    sim.set_collision_filter("robot", 1 << 4)
    ray_from, ray_to = np.array([[-1.0, 0.0, 0.0]]), np.array([[3.0, 0.0, 0.0]])
    fractions, bodies = sim.ray_test_batch(ray_from, ray_to)
    assert bodies[0] == sim.body_id("robot")
    assert fractions[0] * 4.0 == pytest.approx(0.8, abs=1e-3)  # the robot's near face
    fractions, bodies = sim.ray_test_batch(ray_from, ray_to, collision_mask=~(1 << 4))
    assert bodies[0] == sim.body_id("wall")
    assert fractions[0] * 4.0 == pytest.approx(2.9, abs=1e-3)  # the wall's near face


def test_tracking_camera_follows_its_body():
    sim = Simulation()
    sim.create_box("crate", (0.2, 0.2, 0.2), 0.0, (0.0, 0.0, 0.0), rgba=(1, 0, 0, 1))
    fixed = Camera(distance=2.0)
    tracking = Camera(distance=2.0, track="crate")
    before = sim.render(48, 48, fixed), sim.render(48, 48, tracking)
    sim.set_base_pose("crate", (0.5, 0.3, 0.0))
    after = sim.render(48, 48, fixed), sim.render(48, 48, tracking)
    sim.close()
    assert not np.array_equal(before[0], after[0])  # the crate moved in the fixed view
    np.testing.assert_array_equal(before[1], after[1])  # and stayed put in the tracking view


def test_bodies_without_visual_meshes_are_drawn_with_their_collision_shapes():
    sim = Simulation(visual_shapes=False)
    sim.load_urdf("panda", "franka_panda/panda.urdf", use_fixed_base=True)
    sim.load_urdf("ground", "plane.urdf", visual_shapes=True)
    frame = sim.render(64, 64, Camera(target=(0.0, 0.0, 0.4), distance=1.5))
    files = {shape[4] for shape in sim._call(pybullet.getVisualShapeData, sim.body_id("panda"))}
    sim.close()
    assert frame.std() > 5
    assert all(b"collision" in file for file in files)  # no visual mesh was loaded


def test_joint_forces_are_held_over_every_substep():
    # PyBullet applies a TORQUE_CONTROL command for one stepSimulation call only; the
    # simulation re-sends it, so 4 substeps give 4 times the velocity of 1.
    speeds = []
    for n_substeps in (1, 4):
        sim = Simulation(timestep=1 / 240, n_substeps=n_substeps, gravity=0.0)
        sim.load_mjcf("ant", "mjcf/ant.xml")
        sim.disable_joint_motors("ant", [1])
        sim.set_joint_forces("ant", [1], [-80.0])
        sim.set_joint_forces("ant", [1], [50.0])  # replaces the first (PyBullet would add)
        sim.step()
        speeds.append(sim.get_joint_states("ant", [1])[1][0])
        sim.step()  # the force lasted one step: the joint coasts
        assert sim.get_joint_states("ant", [1])[1][0] == pytest.approx(speeds[-1], rel=0.02)
        sim.set_joint_forces("ant", [1], [50.0])
        sim.disable_joint_motors("ant", [1])  # releases the force before it acts
        sim.step()
        assert sim.get_joint_states("ant", [1])[1][0] == pytest.approx(speeds[-1], rel=0.02)
        sim.close()
    assert speeds[0] > 0.01
    assert speeds[1] == pytest.approx(4 * speeds[0], rel=0.02)
