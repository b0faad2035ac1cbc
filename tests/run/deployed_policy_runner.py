"""What a robot computer runs: an exported policy, without rlrobot (nor torch, for ONNX).

``python deployed_policy_runner.py onnx|torchscript MANIFEST.json``: the manifest lists
``{"model", "observations", "out"}`` entries; each model's ``<model>.json`` names its inputs.
Every model acts on its recorded observations, as one batch and one observation at a time
(the first 8), and the actions are written to ``out`` (``batch`` and ``single``). The script
fails if rlrobot (or, for ONNX, torch) was imported.
"""

import json
import sys
from pathlib import Path

import numpy as np


def load_runner(export_format, path):
    """Return ``run(feeds: dict of batched arrays) -> actions`` for an exported file."""
    if export_format == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        return lambda feeds: session.run(None, feeds)[0]
    import torch

    module = torch.jit.load(path)
    names = [item["name"] for item in json.loads(Path(path + ".json").read_text())["inputs"]]
    return lambda feeds: module(*[torch.from_numpy(feeds[name]) for name in names]).numpy()


def main():
    """Run every model of the manifest on its observations."""
    export_format, manifest = sys.argv[1], json.loads(Path(sys.argv[2]).read_text())
    for entry in manifest:
        run = load_runner(export_format, entry["model"])
        with np.load(entry["observations"]) as stored:
            observations = {name: stored[name] for name in stored.files}
        batch = run(observations)
        single = np.concatenate(
            [run({k: v[i : i + 1] for k, v in observations.items()}) for i in range(8)]
        )
        np.savez(entry["out"], batch=batch, single=single)
    forbidden = {"rlrobot"} | ({"torch"} if export_format == "onnx" else set())
    assert not forbidden & set(sys.modules), sorted(forbidden & set(sys.modules))
    print("imported:", sorted(name for name in sys.modules if "." not in name))


if __name__ == "__main__":
    main()
