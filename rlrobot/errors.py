"""The errors rlrobot raises for mistakes a user can fix, under one base class.

This module imports nothing from rlrobot, so every layer may raise these errors, and the CLI
catches ``RLRobotError`` and prints the message without a traceback. Each class also derives
from the built-in error a Python user would expect (``ValueError`` for a bad value), so
``except ValueError`` keeps working.
"""

from __future__ import annotations


class RLRobotError(Exception):
    """A mistake in the user's input; the message says what is wrong and what is allowed."""


class ConfigError(RLRobotError, ValueError):
    """A config key is unknown, has the wrong type, or its value is out of range."""


class EnvMakeError(RLRobotError, ValueError):
    """An env id is unknown, or its env rejects a ``gym.make`` keyword or an option value."""


class UnsupportedEnvError(RLRobotError, ValueError):
    """An env whose spaces or interface the agent cannot use (e.g. SAC with Discrete actions)."""


class CheckpointError(RLRobotError, ValueError):
    """A checkpoint is missing, damaged, from another agent, or does not fit this one."""


class RunFolderError(RLRobotError, ValueError):
    """A run folder is missing, incomplete, or already holds another run."""


class DatasetError(RLRobotError, ValueError):
    """A perception dataset is missing, malformed, or does not fit the model."""


class CommandError(RLRobotError):
    """A mistake in a command's arguments (bad path, bad option)."""
