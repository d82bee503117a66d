"""Puts training/ on sys.path and keeps torch (and OpenBLAS) to one thread: the machine is small
and shared, and the tests use tiny models."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import pytest  # noqa: E402

try:
    import torch  # noqa: E402
except ImportError:  # the data-set tests do not need torch
    torch = None


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    if torch is not None:
        from argtrain.runtime import set_threads

        set_threads(1)
    yield
