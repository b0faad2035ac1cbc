"""A real two-node Ray cluster on this machine: bench and sweep on it, as a cluster user runs them.

The nodes are ``ray start --block`` processes of this test (one CPU each, their own ports and
temporary folder); stopping them stops only what they started (never ``ray stop``, which
would stop every Ray instance of the user on the machine). Token authentication is off
(``RAY_AUTH_MODE=disabled``): Ray reads the mode once per process, so this process could not
switch to a token of the test's (docs/ray.md shows how a user runs with one).
"""

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ray = pytest.importorskip(
    "ray", reason="Ray is not installed: pip install 'rlrobot[ray]' to test on a Ray cluster"
)
pytest.importorskip("optuna", reason="sweeps need Optuna: pip install 'rlrobot[tune]'")

from rlrobot.benchmark.trial import TrialSpec, code_version, run_trial  # noqa: E402
from rlrobot.cli import main  # noqa: E402

RAY = Path(sys.executable).parent / "ray"
START_TIMEOUT_S = 60


def free_port() -> int:
    """Return a TCP port free on 127.0.0.1 now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_node(arguments: list[str], log: Path) -> subprocess.Popen:
    """Start ``ray start --block`` with ``arguments`` and this process's environment."""
    command = [str(RAY), "start", "--block", "--num-cpus=1", "--node-ip-address=127.0.0.1"]
    command += ["--disable-usage-stats", f"--dashboard-agent-listen-port={free_port()}"]
    command += [f"--metrics-export-port={free_port()}", *arguments]
    with log.open("w") as output:  # shown when the cluster does not start
        return subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def ray_cluster():
    """Yield the address of a head and a worker node started here; stop them afterwards."""
    if not RAY.is_file():
        pytest.skip(f"no ray command next to {sys.executable}")
    temp_dir = tempfile.mkdtemp(prefix="rr-ray-", dir="/tmp")  # Ray's socket paths are short
    environment = pytest.MonkeyPatch()
    environment.setenv("RAY_AUTH_MODE", "disabled")
    environment.delenv("RAY_ADDRESS", raising=False)
    port = free_port()
    address = f"127.0.0.1:{port}"
    head = start_node(
        [
            "--head",
            f"--port={port}",
            f"--ray-client-server-port={free_port()}",
            "--include-dashboard=false",
            f"--dashboard-port={free_port()}",
            f"--temp-dir={temp_dir}",
        ],
        Path(temp_dir) / "head.log",
    )
    nodes = [head]
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:  # the head must be up before a node can join it
            try:
                ray.init(address=address, log_to_driver=False)
                break
            except ConnectionError:
                if time.monotonic() > deadline or head.poll() is not None:
                    log = (Path(temp_dir) / "head.log").read_text()
                    pytest.fail(f"the Ray head at {address} did not start:\n{log}")
                time.sleep(1)
        nodes.append(start_node([f"--address={address}"], Path(temp_dir) / "node.log"))
        while len([node for node in ray.nodes() if node["Alive"]]) < 2:
            if time.monotonic() > deadline:
                log = (Path(temp_dir) / "node.log").read_text()
                pytest.fail(f"the second Ray node did not join:\n{log}")
            time.sleep(0.5)
        ray.shutdown()
        yield address
    finally:
        ray.shutdown()
        for node in reversed(nodes):
            node.terminate()  # --block: ray start stops the processes it started
        for node in nodes:
            try:
                node.wait(timeout=30)
            except subprocess.TimeoutExpired:
                node.kill()
        shutil.rmtree(temp_dir, ignore_errors=True)
        environment.undo()


def test_bench_and_sweep_on_a_two_node_cluster_by_address(
    tmp_path, capsys, ray_cluster, tiny_bench_argv
):
    # A trial no node can fit: an error naming the request and the nodes, not a hang.
    out = tmp_path / "bench"
    on_cluster = [*tiny_bench_argv, "--baseline", "none", "--backend", "ray"]
    on_cluster += ["--ray-address", ray_cluster]
    assert main([*on_cluster, "--cpus-per-trial", "4", "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert "a trial asks for 4 CPUs (--cpus-per-trial), but no Ray node has that many" in error
    assert "2 live node(s) with ['1', '1'] CPUs" in error

    assert main([*on_cluster, "--out", str(out)]) == 0
    assert "--workers 2 is ignored on a Ray cluster" in capsys.readouterr().out
    results = [json.loads(path.read_text()) for path in (out / "trials").glob("*.json")]
    assert [result["status"] for result in results] == ["ok"] * 2
    # The workers ran this checkout's code (shipped as py_modules), on both nodes.
    assert {result["code_version"] for result in results} == {code_version()}
    cluster_nodes = {result["machine"]["ray_node"] for result in results}
    assert len(cluster_nodes) == 2
    # The same numbers as a local run.
    result = next(r for r in results if r["spec"]["seed"] == 0)
    assert run_trial(TrialSpec.from_dict(result["spec"]))["curve"] == result["curve"]

    assert f"--ray-address {ray_cluster} --cpus-per-trial 1.0" in (out / "report.md").read_text()

    # No --ray-address: the cluster in RAY_ADDRESS (as ``ray job submit`` sets it) is used,
    # not a new local instance (which Ray refused with num_cpus before).
    sweep = tmp_path / "sweep"
    argv = ["sweep", "--env", "CartPole-v1", "--algo", "a2c", "--set", "n_steps=8"]
    argv += ["--param", "learning_rate=loguniform(1e-4, 1e-2)", "--seeds", "1"]
    argv += ["--steps", "128", "--n-envs", "1", "--eval-episodes", "1", "--trials", "2"]
    argv += ["--n-jobs", "2", "--backend", "ray", "--out", str(sweep)]
    with pytest.MonkeyPatch.context() as environment:
        environment.setenv("RAY_ADDRESS", ray_cluster)
        assert main(argv) == 0
    ranking = json.loads((sweep / "ranking.json").read_text())
    assert [row["state"] for row in ranking] == ["COMPLETE", "COMPLETE"]
    # The trials ran on the cluster's nodes (its sqlite storage is on this machine's disk). Not
    # necessarily on both: an Optuna worker that starts first may take both trials.
    results = [json.loads(path.read_text()) for path in (sweep / "trials").glob("*.json")]
    assert len(results) == 2
    assert {result["machine"]["ray_node"] for result in results} <= cluster_nodes
