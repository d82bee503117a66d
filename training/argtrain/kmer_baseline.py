"""k-mer baseline: 2-mer and 3-mer counts of a protein, L2-normalised, into a one-hidden-layer MLP.

The cheap alignment-free model a language model has to beat: 400 + 8,000 features over the 20
standard amino acids (k-mers holding any other letter are skipped), trained with AdamW and
balanced class weights on the same training split as the model, for a fixed number of epochs.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .alphabet import STANDARD_AA
from .balance import class_weights

_AA_INDEX = np.full(256, -1, dtype=np.int64)
for _i, _aa in enumerate(STANDARD_AA):
    _AA_INDEX[ord(_aa)] = _i
N_FEATURES = 20 ** 2 + 20 ** 3


def kmer_features(seq: str) -> tuple[np.ndarray, np.ndarray]:
    """Sparse ``(feature indices, L2-normalised counts)`` of one protein's 2-mers and 3-mers."""
    codes = _AA_INDEX[np.frombuffer(seq.upper().encode("ascii", "replace"), dtype=np.uint8)]
    parts = []
    if len(codes) >= 2:
        a, b = codes[:-1], codes[1:]
        ok = (a >= 0) & (b >= 0)
        parts.append((a * 20 + b)[ok])
    if len(codes) >= 3:
        a, b, c = codes[:-2], codes[1:-1], codes[2:]
        ok = (a >= 0) & (b >= 0) & (c >= 0)
        parts.append(400 + (a * 400 + b * 20 + c)[ok])
    if not parts or not sum(len(p) for p in parts):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    idx, counts = np.unique(np.concatenate(parts), return_counts=True)
    values = counts.astype(np.float32)
    return idx, values / np.linalg.norm(values)


def dense(features: Sequence[tuple[np.ndarray, np.ndarray]]) -> torch.Tensor:
    out = np.zeros((len(features), N_FEATURES), dtype=np.float32)
    for row, (idx, values) in enumerate(features):
        out[row, idx] = values
    return torch.from_numpy(out)


class KmerMLP(nn.Module):
    def __init__(self, num_classes: int, hidden: int = 256, dropout: float = 0.2):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(N_FEATURES, hidden), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def train_kmer_baseline(train: Sequence[tuple[str, str]], classes: Sequence[str], *,
                        epochs: int = 20, hidden: int = 256, lr: float = 1e-3,
                        batch_size: int = 128, seed: int = 0) -> tuple[KmerMLP, dict]:
    """Fit on ``(label, protein)`` pairs; returns the model (eval mode) and run information."""
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    index = {c: i for i, c in enumerate(classes)}
    feats = [kmer_features(seq) for _, seq in train]
    y = np.array([index[label] for label, _ in train], dtype=np.int64)
    weight = class_weights(y, len(classes), "balanced")
    model = KmerMLP(len(classes), hidden)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    rng = random.Random(seed)
    order = list(range(len(train)))
    model.train()
    for _ in range(epochs):
        rng.shuffle(order)
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            loss = F.cross_entropy(model(dense([feats[i] for i in idx])),
                                   torch.from_numpy(y[idx]), weight=weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    model.eval()
    info = {"method": "2-mer + 3-mer counts (L2-normalised) -> MLP", "features": N_FEATURES,
            "hidden": hidden, "epochs": epochs, "lr": lr, "seed": seed,
            "train_size": len(train), "seconds": round(time.perf_counter() - t0, 3)}
    return model, info


@torch.no_grad()
def predict_kmer(model: KmerMLP, proteins: Sequence[str], classes: Sequence[str],
                 batch_size: int = 512) -> tuple[list[str], np.ndarray]:
    """Predicted class and class probabilities [N, C] for each protein."""
    probs = []
    for start in range(0, len(proteins), batch_size):
        x = dense([kmer_features(s) for s in proteins[start:start + batch_size]])
        probs.append(torch.softmax(model(x), dim=-1).numpy())
    p = np.concatenate(probs) if probs else np.zeros((0, len(classes)), dtype=np.float32)
    return [classes[i] for i in p.argmax(axis=1)], p
