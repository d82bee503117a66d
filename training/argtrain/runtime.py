"""Process set-up for training commands: torch and BLAS threads, seeds, device."""

from __future__ import annotations

import random

import torch


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def set_threads(n: int) -> int:
    """Torch intra-op threads (0 keeps torch's default), and the same number for OpenBLAS.

    Debian's torch calls OpenBLAS for matrix products, and OpenBLAS starts one thread per core
    regardless of torch's setting; on a small shared machine the two thread pools then fight.
    Returns the thread count in effect.
    """
    if n > 0:
        torch.set_num_threads(n)
    n = torch.get_num_threads()
    _set_openblas_threads(n)
    return n


def _set_openblas_threads(n: int) -> bool:
    """Limit the BLAS libraries loaded in this process (OpenBLAS here) to ``n`` threads."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # Debian package python3-threadpoolctl
        return False
    threadpool_limits(limits=n, user_api="blas")
    return True


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np
        np.random.seed(seed)
    except ImportError:  # numpy is optional here
        pass
