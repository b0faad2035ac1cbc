"""``scripts/bench_off_policy.py``: the matmul profile behind the update-step table."""

import pytest
import torch

from tests.benchmark.script_modules import load_script


@pytest.fixture(scope="module")
def script():
    """The benchmark script, imported as a module."""
    return load_script("bench_off_policy")


def test_matmul_profile_counts_only_matmul_kernels_and_their_flops(script):
    left, right = torch.randn(64, 48), torch.randn(48, 32)
    batch_left, batch_right = torch.randn(3, 64, 48), torch.randn(3, 48, 32)
    elementwise = torch.randn(512, 512)

    def train(steps: int) -> None:
        for _ in range(steps):
            torch.mm(left, right)
            torch.bmm(batch_left, batch_right)
            elementwise.exp()

    milliseconds, gflops = script.matmul_profile(train, steps=4)
    flops_per_step = 2 * 64 * 48 * 32 * (1 + 3)
    assert milliseconds > 0
    # GFLOP/s × seconds per step gives back each step's matmul FLOPs, exp's work excluded.
    assert gflops * 1e9 * milliseconds / 1e3 == pytest.approx(flops_per_step, rel=1e-6)


def test_matmul_peak_is_a_plausible_float32_rate(script):
    previous_threads = torch.get_num_threads()
    try:
        peak = script.matmul_peak_gflops(size=256, repeats=2)
    finally:
        torch.set_num_threads(previous_threads)
    # Any CPU with a BLAS does more than 0.1 GFLOP/s and less than 10 TFLOP/s on one thread.
    assert 0.1 < peak < 10_000
