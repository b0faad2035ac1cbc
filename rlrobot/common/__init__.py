"""Shared building blocks of the agents: returns, networks, distributions, checkpoints, logging."""
