"""Shared test set-up: one torch thread per test process (tests run in parallel workers)."""

import os

import torch

os.environ.setdefault("CI", "1")
torch.set_num_threads(1)
