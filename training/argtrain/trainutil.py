"""Small pieces shared by pretrain and finetune: reading FASTA, token-budget batching, LR schedule."""

from __future__ import annotations

import argparse
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .fasta import read_fasta


@dataclass
class Record:
    id: str
    seq: str
    label: str | None


def read_sequences(paths: Sequence[str]) -> list[Record]:
    """Unlabelled records from FASTA files (headers are kept as ids; labels are ignored)."""
    out = []
    for path in paths:
        for header, seq in read_fasta(path):
            out.append(Record(header.split()[0] if header.split() else header, seq, None))
    return out


def read_labelled(path: str, nonarg_label: str = "nonarg") -> list[Record]:
    """Records with ``id|class`` / ``id|...|class`` headers (``sp|...``/``tr|...`` = non-ARG)."""
    from .dataset import parse_labelled_header

    out = []
    for header, seq in read_fasta(path):
        try:
            rid, label = parse_labelled_header(header, nonarg_label)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None
        out.append(Record(rid, seq, label))
    return out


def token_budget_batches(lengths: Sequence[int], max_tokens: int, max_batch: int = 512,
                         shuffle: bool = True, rng: random.Random | None = None,
                         bucket_size: int = 0) -> list[list[int]]:
    """Group example indices into batches whose padded size (B * longest) stays within max_tokens.

    Examples are sorted by length (within random buckets when shuffling, so the order still varies
    from epoch to epoch) so that a batch wastes little padding; batch order is shuffled.
    """
    rng = rng or random.Random(0)
    idx = list(range(len(lengths)))
    if shuffle:
        rng.shuffle(idx)
        # Sort inside large buckets: nearly as little padding as a global sort, more randomness.
        size = bucket_size or max(1, len(idx))
        idx = [i for s in range(0, len(idx), size)
               for i in sorted(idx[s:s + size], key=lambda j: lengths[j])]
    else:
        idx.sort(key=lambda j: lengths[j])
    batches: list[list[int]] = []
    cur: list[int] = []
    longest = 0
    for i in idx:
        n = lengths[i]
        new_longest = max(longest, n)
        if cur and (new_longest * (len(cur) + 1) > max_tokens or len(cur) >= max_batch):
            batches.append(cur)
            cur, new_longest = [], n
        cur.append(i)
        longest = new_longest
    if cur:
        batches.append(cur)
    if shuffle:
        rng.shuffle(batches)
    return batches


def lr_at(step: int, total: int, warmup: int, peak: float, schedule: str = "cosine",
          final_ratio: float = 0.1) -> float:
    """Linear warm-up to ``peak``, then linear or cosine decay to ``final_ratio * peak``."""
    if warmup > 0 and step < warmup:
        return peak * (step + 1) / warmup
    if schedule == "constant" or total <= warmup:
        return peak
    frac = min(1.0, (step - warmup) / max(1, total - warmup))
    if schedule == "linear":
        scale = 1.0 - frac
    elif schedule == "cosine":
        scale = 0.5 * (1.0 + math.cos(math.pi * frac))
    else:
        raise ValueError(f"unknown schedule {schedule!r}")
    return peak * (final_ratio + (1.0 - final_ratio) * scale)


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def set_threads(n: int) -> int:
    """Torch intra-op threads (0 keeps torch's default), and the same number for OpenBLAS.

    Debian's torch calls OpenBLAS for matrix products, and OpenBLAS starts one thread per core
    regardless of torch's setting; on a small shared machine the two thread pools then fight
    (measured: a batched product 6x slower). Returns the thread count in effect.
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


class Deadline:
    """Wall-clock budget; ``minutes <= 0`` means none."""

    def __init__(self, minutes: float):
        self.start = time.monotonic()
        self.seconds = minutes * 60.0 if minutes and minutes > 0 else math.inf

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def expired(self) -> bool:
        return self.elapsed() >= self.seconds


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default unless it is None/False (those are explained in the text)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default is None or action.default is False or action.default is argparse.SUPPRESS:
            return text
        if "%(default)" in text:
            return text
        return f"{text} (default: %(default)s)" if text else "(default: %(default)s)"
