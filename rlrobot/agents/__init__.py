"""From-scratch PyTorch agents with an SB3-like API, and the algorithm registry."""

from rlrobot.agents.base import BaseAgent

ALGORITHMS: dict[str, type[BaseAgent]] = {}

__all__ = ["ALGORITHMS", "BaseAgent"]
