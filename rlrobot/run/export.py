"""Export a trained agent's deterministic policy to ONNX or TorchScript, and run an ONNX file.

``DeployablePolicy`` is one ``nn.Module`` doing what ``agent.predict(obs, deterministic=True)``
does to a batch: the observation normaliser's statistics, the agent's own network call
(``_predict_actions``: its feature extractor flattens ``Dict`` observations and scales uint8
images, its head takes the mean, ``tanh(mean)`` or the argmax) and the mapping of the actions to
the env's bounds. Traced, it becomes a file a robot runs with ONNX Runtime or ``torch.jit.load``
alone; ``<file>.json`` beside it describes its inputs, output and spaces.

The ONNX file comes from torch's TorchScript-based exporter (``dynamo=False``): the default
dynamo exporter of torch 2.13 needs ``onnxscript``, and these static feed-forward graphs need
nothing it adds.
"""

from __future__ import annotations

import importlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlrobot.agents.base import BaseAgent
from rlrobot.agents.off_policy import OffPolicyAgent
from rlrobot.common.files import atomic_output, atomic_write_bytes
from rlrobot.envs.checks import check_choice
from rlrobot.errors import CommandError, UnsupportedEnvError

EXPORT_FORMATS = ("onnx", "torchscript")
FILE_SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt"}
OUTPUT_NAME = "action"
# torch 2.13 calls both exporters deprecated (the TorchScript one, which its legacy ONNX exporter
# uses too); they are what it has that runs offline and without onnxscript.
DEPRECATION_MESSAGES = (
    r"(You are using the legacy|The feature will be removed|`torch\.jit\.\w+` is)"
)
# Opset 17 is read by ONNX Runtime 1.13 and later (2022), so older boards' runtimes load it too.
ONNX_OPSET = 17


def metadata_path(path: str | os.PathLike) -> Path:
    """Return the JSON file beside an exported policy: ``policy.onnx`` → ``policy.onnx.json``."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def input_names(observation_space: gym.Space) -> list[str]:
    """Return the exported inputs: a ``Dict`` space's keys in sorted order, or ``observation``."""
    if isinstance(observation_space, gym.spaces.Dict):
        return sorted(observation_space.spaces)
    return ["observation"]


def _bound(values: np.ndarray) -> Any:
    """One number for bounds that are all equal (an image's 0 and 255), else a list; ±inf
    become ``"inf"``/``"-inf"``, which strict JSON can hold."""
    values = np.asarray(values, dtype=np.float64)
    items = [values.flat[0]] if (values == values.flat[0]).all() else values.ravel().tolist()
    items = [float(v) if np.isfinite(v) else ("inf" if v > 0 else "-inf") for v in items]
    return items[0] if len(items) == 1 else items


def describe_space(space: gym.Space) -> dict[str, Any]:
    """Return a JSON description of a ``Box``, ``Discrete`` or ``Dict`` space (shapes, dtypes,
    bounds)."""
    if isinstance(space, gym.spaces.Dict):
        return {"type": "Dict", "spaces": {k: describe_space(s) for k, s in space.spaces.items()}}
    if isinstance(space, gym.spaces.Box):
        return {
            "type": "Box",
            "shape": list(space.shape),
            "dtype": str(space.dtype),
            "low": _bound(space.low),
            "high": _bound(space.high),
        }
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start), "dtype": "int64"}
    raise UnsupportedEnvError(f"cannot export a policy for the space {space}; use Box, Discrete")


class ObservationScaling(nn.Module):
    """``clip((obs − mean) / sqrt(var + ε), −clip, clip)`` for the normalised inputs, in float32.

    Args:
        normalizer: The agent's ``ObservationNormalizer`` (None: nothing is normalised).
        names: The exported inputs, in order (``input_names``).
    """

    def __init__(self, normalizer: Any, names: list[str]) -> None:
        super().__init__()
        self.clip = float(normalizer.clip) if normalizer is not None else 0.0
        stats = normalizer.stats if normalizer is not None else {}
        # A non-Dict normaliser keeps its one set of statistics under the key "".
        keys = names if normalizer is None or normalizer.is_dict else [""]
        self.positions = [i for i, key in enumerate(keys) if key in stats]
        for position in self.positions:
            stat = stats[keys[position]]
            std = np.sqrt(stat.var + normalizer.epsilon)
            self.register_buffer(
                f"mean_{position}", torch.as_tensor(stat.mean, dtype=torch.float32)
            )
            self.register_buffer(f"std_{position}", torch.as_tensor(std, dtype=torch.float32))

    def forward(self, observations: list[torch.Tensor]) -> list[torch.Tensor]:
        """Return the observations with the normalised ones replaced."""
        scaled = list(observations)
        for position in self.positions:
            mean, std = getattr(self, f"mean_{position}"), getattr(self, f"std_{position}")
            value = (observations[position].float() - mean) / std
            scaled[position] = value.clamp(-self.clip, self.clip)
        return scaled


class DeployablePolicy(nn.Module):
    """An agent's deterministic policy as one module: ``forward(*inputs) -> actions``.

    Args:
        agent: A trained (or loaded) rlrobot agent.

    ``forward`` takes one batched tensor per name of ``input_names`` (``(batch, *shape)``, the
    space's dtype) and returns ``(batch, *action_shape)``: what ``agent.predict(observations,
    deterministic=True)[0]`` returns for the same batch.
    """

    def __init__(self, agent: BaseAgent) -> None:
        super().__init__()
        self.observation_space, self.action_space = agent.observation_space, agent.action_space
        self.input_names = input_names(self.observation_space)
        self.is_dict = isinstance(self.observation_space, gym.spaces.Dict)
        self.scaling = ObservationScaling(agent.obs_normalizer, self.input_names)
        # The networks _predict_actions reads, registered so tracing keeps them as weights.
        self.networks = nn.ModuleDict(agent.modules())
        self._predict_actions = agent._predict_actions
        space = self.action_space
        self.rescale = isinstance(agent, OffPolicyAgent)
        self.discrete_start = int(space.start) if isinstance(space, gym.spaces.Discrete) else 0
        if isinstance(space, gym.spaces.Box):
            low, high = (torch.as_tensor(b, dtype=torch.float32) for b in (space.low, space.high))
            # As OffPolicyAgent maps [-1, 1] to the bounds, and BaseAgent clips to them.
            if self.rescale:
                self.register_buffer("center", (high + low) / 2.0)
                self.register_buffer("scale", (high - low) / 2.0)
            else:
                self.register_buffer("low", low)
                self.register_buffer("high", high)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Map batched observations (in ``input_names`` order) to env actions."""
        scaled = self.scaling(list(inputs))
        observations: Any = (
            dict(zip(self.input_names, scaled, strict=True)) if self.is_dict else scaled[0]
        )
        actions = self._predict_actions(observations, True)
        if not isinstance(self.action_space, gym.spaces.Box):
            return actions + self.discrete_start if self.discrete_start else actions
        if self.rescale:
            return self.center + self.scale * actions.clamp(-1.0, 1.0)
        # Per-dimension bounds: ONNX's Clip takes scalar bounds only.
        return torch.maximum(torch.minimum(actions, self.high), self.low)


def example_inputs(observation_space: gym.Space, batch: int = 2) -> tuple[torch.Tensor, ...]:
    """Return zero observations ``(batch, *shape)`` per input, in the space's dtypes."""
    spaces = (
        observation_space.spaces
        if isinstance(observation_space, gym.spaces.Dict)
        else {"observation": observation_space}
    )
    names = input_names(observation_space)
    return tuple(
        torch.as_tensor(np.zeros((batch, *spaces[name].shape), dtype=spaces[name].dtype))
        for name in names
    )


def export_policy(
    agent: BaseAgent,
    path: str | os.PathLike,
    export_format: str = "onnx",
    details: dict[str, Any] | None = None,
) -> Path:
    """Write ``agent``'s deterministic policy to ``path`` and its description to ``<path>.json``.

    Args:
        agent: The agent (its networks are traced on the CPU).
        path: The file to write (``.onnx`` or ``.pt`` by convention).
        export_format: ``"onnx"`` or ``"torchscript"``.
        details: More JSON values for the description (env id, env kwargs, checkpoint …).

    Returns:
        The path of the exported file.
    """
    export_format = check_choice("format", export_format, EXPORT_FORMATS)
    if export_format == "onnx":
        import_extra("onnx", "exporting to ONNX")  # torch's exporter writes with it
    path = Path(path)
    modules = agent.modules()
    modes = {name: module.training for name, module in modules.items()}
    policy = DeployablePolicy(agent).cpu().eval()
    inputs = example_inputs(agent.observation_space)
    try:
        # Before any file is written: a space the description cannot hold is refused here.
        description = describe_export(agent, policy, path.name, export_format, details)
        text = json.dumps(description, indent=2) + "\n"
        with atomic_output(path) as temporary, torch.no_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", DEPRECATION_MESSAGES)
            if export_format == "onnx":
                names = policy.input_names
                axes = {name: {0: "batch"} for name in [*names, OUTPUT_NAME]}
                torch.onnx.export(
                    policy,
                    inputs,
                    str(temporary),
                    input_names=names,
                    output_names=[OUTPUT_NAME],
                    dynamic_axes=axes,
                    opset_version=ONNX_OPSET,
                    dynamo=False,
                )
            else:
                traced = torch.jit.trace(policy, inputs, check_trace=False)
                # Frozen: weights become constants, so outputs need no grad-free scope.
                torch.jit.freeze(traced).save(str(temporary))
    finally:
        # The agent's own networks were traced: give them back their device and mode.
        for name, module in modules.items():
            module.to(agent.device).train(modes[name])
    atomic_write_bytes(metadata_path(path), text.encode())
    return path


def describe_export(
    agent: BaseAgent,
    policy: DeployablePolicy,
    file_name: str,
    export_format: str,
    details: dict[str, Any] | None,
) -> dict[str, Any]:
    """Return the JSON description written beside an exported policy."""
    from rlrobot import __version__

    space = agent.observation_space
    spaces = space.spaces if isinstance(space, gym.spaces.Dict) else {"observation": space}
    action = describe_space(agent.action_space)
    action_shape = action["shape"] if action["type"] == "Box" else []
    return {
        "file": file_name,
        "format": export_format,
        "algo": agent.algorithm,
        "env_id": agent.env_id,
        "rlrobot_version": __version__,
        "num_timesteps": agent.num_timesteps,
        **(details or {}),
        "inputs": [
            {"name": n, "shape": [None, *spaces[n].shape], "dtype": str(spaces[n].dtype)}
            for n in policy.input_names
        ],
        "output": {"name": OUTPUT_NAME, "shape": [None, *action_shape], "dtype": action["dtype"]},
        "normalized_inputs": [policy.input_names[i] for i in policy.scaling.positions],
        "observation_space": describe_space(space),
        "action_space": action,
    }


def read_description(path: str | os.PathLike) -> dict[str, Any]:
    """Read the JSON beside an exported policy; CommandError if it is missing or not ours."""
    json_path = metadata_path(path)
    if not Path(path).is_file():
        raise CommandError(f"no exported policy at {path}")
    try:
        description = json.loads(json_path.read_text())
    except (OSError, ValueError) as error:
        raise CommandError(
            f"{json_path} is missing or not JSON ({error}); export with `rlrobot export` "
            "writes it beside the policy"
        ) from None
    if not isinstance(description, dict) or not {"inputs", "observation_space"} <= set(description):
        raise CommandError(f"{json_path} is no description of an exported policy")
    return description


def check_spaces(description: dict[str, Any], env: gym.Env) -> None:
    """Raise CommandError unless ``env``'s spaces are those an exported policy was made for."""
    for name in ("observation_space", "action_space"):
        # Through JSON, as the description was written: tuples become lists, floats stay.
        found = json.loads(json.dumps(describe_space(getattr(env, name))))
        if found != description.get(name):
            raise CommandError(
                f"the env's {name.replace('_', ' ')} {found} differs from the exported "
                f"policy's {description.get(name)}; give the env it was trained in"
            )


def import_extra(name: str, purpose: str) -> Any:
    """Return the module ``name`` of the ``export`` extra; CommandError naming it if missing."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise CommandError(f"{purpose} needs {name}: pip install 'rlrobot[export]'") from None


class OnnxPolicy:
    """An exported ONNX policy with SB3's ``predict``, run by ONNX Runtime on the CPU.

    Args:
        path: The ``.onnx`` file (its ``.onnx.json`` description beside it).
        threads: ONNX Runtime's intra-op threads (1: one core, as a small board gives).
    """

    def __init__(self, path: str | os.PathLike, threads: int = 1) -> None:
        onnxruntime = import_extra("onnxruntime", "running an ONNX policy")
        self.description = read_description(path)
        if self.description.get("format") != "onnx":
            raise CommandError(
                f"{path} is a {self.description.get('format')} export, not ONNX; run it with "
                "torch.jit.load, or export with --format onnx"
            )
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = threads
        try:
            self.session = onnxruntime.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # its errors derive from Exception alone (InvalidProtobuf …)
            raise CommandError(f"ONNX Runtime cannot load {path}: {error}") from None
        self.inputs = [
            (item["name"], np.dtype(item["dtype"])) for item in self.description["inputs"]
        ]

    def predict(self, observation: Any, deterministic: bool = True) -> tuple[np.ndarray, None]:
        """Return the action for one observation (the policy is deterministic whatever
        ``deterministic`` says) and no recurrent state."""
        values = observation if isinstance(observation, dict) else {"observation": observation}
        feeds = {name: np.asarray(values[name], dtype=dtype)[None] for name, dtype in self.inputs}
        return self.session.run(None, feeds)[0][0], None
