"""The simulation layer: the only code in rlrobot that imports pybullet."""

from rlrobot.sim.simulation import Camera, Simulation, display_available

__all__ = ["Camera", "Simulation", "display_available"]
