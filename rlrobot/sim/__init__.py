"""The simulation layer: the only code in rlrobot that imports pybullet."""

from rlrobot.sim.simulation import Camera, Simulation, connected_client_ids, display_available

__all__ = ["Camera", "Simulation", "connected_client_ids", "display_available"]
