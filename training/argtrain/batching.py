"""Batches of residue token ids for training: length-sorted under a token budget, cropped, padded."""

from __future__ import annotations

import random
from collections.abc import Sequence

from typing import TYPE_CHECKING

import numpy as np

from . import alphabet

if TYPE_CHECKING:  # torch is imported on use: evaluate's baseline-only runs do without it
    import torch


def residue_ids(seq: str) -> np.ndarray:
    """Token ids of a sequence's residues (no <cls>/<eos>); TokenizationError when rejected."""
    return np.asarray(alphabet.encode(seq)[1:-1], dtype=np.int64)


def token_budget_batches(lengths: Sequence[int], max_tokens: int, max_batch: int = 512,
                         shuffle: bool = True, rng: random.Random | None = None,
                         bucket_size: int = 0) -> list[list[int]]:
    """Group example indices into batches whose padded size (B * longest) stays within max_tokens.

    Examples are sorted by length (within random buckets when shuffling, so the order still varies
    from epoch to epoch) so that a batch wastes little padding; batch order is shuffled. Without
    shuffling, indices of equal length keep their order.
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


def crop(ids: np.ndarray, max_residues: int, rng: random.Random | None) -> np.ndarray:
    """At most ``max_residues``: a random window with ``rng``, else the first ones (as served)."""
    if len(ids) <= max_residues:
        return ids
    start = rng.randint(0, len(ids) - max_residues) if rng is not None else 0
    return ids[start:start + max_residues]


def residue_batch(seqs: Sequence[np.ndarray]) -> torch.Tensor:
    """``<cls> residues <eos>`` rows, right-padded with ``<pad>``, as an int64 tensor [B, L]."""
    import torch

    width = max(len(s) for s in seqs) + 2
    out = np.full((len(seqs), width), alphabet.PAD, dtype=np.int64)
    for i, s in enumerate(seqs):
        out[i, 0] = alphabet.CLS
        out[i, 1:len(s) + 1] = s
        out[i, len(s) + 1] = alphabet.EOS
    return torch.from_numpy(out)
