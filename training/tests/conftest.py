"""Puts training/ on sys.path and keeps torch to one thread (the machine is small and shared)."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import pytest  # noqa: E402

try:
    import torch  # noqa: E402
except ImportError:  # tests of the data modules do not need torch
    torch = None


@pytest.fixture(autouse=True)
def _one_thread():
    if torch is not None:
        torch.set_num_threads(1)
    yield
