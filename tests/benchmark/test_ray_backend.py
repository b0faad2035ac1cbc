"""The Ray backend: the tiny bench as Ray tasks on a local instance, same results as locally."""

import json

import pytest

ray = pytest.importorskip(
    "ray", reason="Ray is not installed: pip install 'rlrobot[ray]' to test the ray backend"
)

from rlrobot.benchmark.trial import TrialSpec, run_trial  # noqa: E402
from rlrobot.cli import main  # noqa: E402


@pytest.fixture
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_tiny_bench_on_ray_matches_the_local_backend(tmp_path, local_ray, tiny_bench_argv):
    out = tmp_path / "bench-ray"
    assert main([*tiny_bench_argv, "--backend", "ray", "--out", str(out)]) == 0
    assert ray.is_initialized()  # an instance started by the caller is left running
    results = [json.loads(path.read_text()) for path in (out / "trials").glob("*.json")]
    assert len(results) == 4
    assert all(result["status"] == "ok" for result in results)
    # Our env ids were registered inside the Ray workers (rlrobot/CartPole-v0 was made there).
    assert {result["spec"]["env_id"] for result in results} == {"rlrobot/CartPole-v0"}
    assert "| rlrobot/CartPole-v0 | ppo | 2/2 |" in (out / "report.md").read_text()
    # Same specs, same numbers as a run outside Ray (what the local pool's workers execute).
    for result in results:
        if result["spec"]["seed"] == 0:
            local = run_trial(TrialSpec.from_dict(result["spec"]))
            assert local["curve"] == result["curve"]
            assert local["key"] == result["key"]
