"""Class balance in training data: stratified hold-outs, per-class caps, per-epoch draws, loss
weights (shared by fine-tuning and the k-mer baseline)."""

from __future__ import annotations

import random

import numpy as np
import torch


def _by_class(labels: list[str]) -> dict[str, list[int]]:
    by_class: dict[str, list[int]] = {}
    for i, y in enumerate(labels):
        by_class.setdefault(y, []).append(i)
    return by_class


def stratified_split(labels: list[str], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, valid) indices: ``fraction`` of each class (of two or more) held out, seeded."""
    rng = random.Random(seed)
    by_class = _by_class(labels)
    train, valid = [], []
    for y in sorted(by_class):
        idx = by_class[y]
        rng.shuffle(idx)
        k = int(round(len(idx) * fraction)) if len(idx) > 1 else 0
        valid += idx[:k]
        train += idx[k:]
    return sorted(train), sorted(valid)


def cap_per_class(labels: list[str], cap: int, seed: int) -> list[int]:
    """Indices kept when each class keeps at most ``cap`` examples (a seeded sample)."""
    rng = random.Random(seed)
    by_class = _by_class(labels)
    keep = []
    for y in sorted(by_class):
        idx = by_class[y]
        keep += rng.sample(idx, cap) if cap and len(idx) > cap else idx
    return sorted(keep)


def epoch_sample(y: np.ndarray, mode: str, size: int, epoch: int, seed: int) -> list[int]:
    """Example indices of one epoch: ``size`` draws split over classes in proportion to n_c
    (natural: every example once), sqrt(n_c) or 1. Within a class, examples are taken in a
    shuffled cycle that continues across epochs, so none repeats before all were seen."""
    if mode == "natural":
        return list(range(len(y)))
    by_class = [np.flatnonzero(y == c) for c in range(int(y.max()) + 1)]
    by_class = [idx for idx in by_class if len(idx)]
    weight = np.array([len(idx) ** 0.5 if mode == "sqrt" else 1.0 for idx in by_class])
    quota = np.maximum(1, np.round(size * weight / weight.sum()).astype(np.int64))
    out: list[int] = []
    for k, idx in enumerate(by_class):
        start = epoch * int(quota[k])
        cycle, pos = divmod(start, len(idx))
        taken: list[int] = []
        while len(taken) < quota[k]:
            order = list(idx)
            random.Random(seed * 1000003 + k * 7919 + cycle).shuffle(order)
            taken += order[pos:pos + int(quota[k]) - len(taken)]
            cycle, pos = cycle + 1, 0
        out += taken
    return out


def class_weights(y: np.ndarray, n_classes: int, mode: str) -> torch.Tensor | None:
    """Cross-entropy weights: balanced = N / (C * n_c) as in scikit-learn (C classes present),
    sqrt = proportional to 1 / sqrt(n_c); none = None."""
    if mode == "none":
        return None
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    present = counts > 0
    if mode == "sqrt":
        # Scaled so that the average weight per training example is 1, as with "balanced".
        w = np.where(present, counts.sum() / (np.sqrt(np.maximum(counts, 1)) * np.sqrt(counts).sum()),
                     0.0)
    else:
        w = np.where(present, counts.sum() / (present.sum() * np.maximum(counts, 1)), 0.0)
    return torch.tensor(w, dtype=torch.float32)
