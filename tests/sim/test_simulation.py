"""Unit tests of the PyBullet facade."""

import numpy as np
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
