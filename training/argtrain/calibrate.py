"""Honest probabilities: temperature scaling, expected calibration error, and the ARG threshold.

All three are fitted on validation data only. The call rule they serve (also the server's, see
docs/model-artifact.md): P(ARG) = 1 - P(nonarg); a protein is an ARG when P(ARG) >= the threshold,
and then its class is the most probable ARG class; otherwise it is ``nonarg``. Proteins shorter
than ``min_residues`` are never called ARGs.
"""

from __future__ import annotations

import math

import numpy as np

# Below the shortest ResFinder ARG protein, with room to spare: a call there would be a guess.
DEFAULT_MIN_RESIDUES = 50


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits.astype(np.float64) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def nll(logits: np.ndarray, y: np.ndarray, temperature: float) -> float:
    p = softmax(logits, temperature)
    return float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None)).mean())


def fit_temperature(logits: np.ndarray, y: np.ndarray, low: float = 0.05, high: float = 20.0
                    ) -> float:
    """The temperature minimising the negative log-likelihood (golden-section search on log T)."""
    a, b = math.log(low), math.log(high)
    g = (math.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = nll(logits, y, math.exp(c)), nll(logits, y, math.exp(d))
    for _ in range(60):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = nll(logits, y, math.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = nll(logits, y, math.exp(d))
    return math.exp((a + b) / 2)


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 15
                               ) -> float:
    """Equal-width bins over [0, 1]: sum of |accuracy - confidence| weighted by bin share."""
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    if len(confidence) == 0:
        return 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for k in range(bins):
        m = which == k
        if m.any():
            ece += m.mean() * abs(correct[m].mean() - confidence[m].mean())
    return float(ece)


def call(probs: np.ndarray, nonarg_index: int, threshold: float,
         lengths: np.ndarray | None = None, min_residues: int = 0
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The call rule: ``(class index, its probability, P(ARG))`` per row."""
    p_arg = 1.0 - probs[:, nonarg_index]
    arg_probs = probs.copy()
    arg_probs[:, nonarg_index] = -1.0
    best_arg = arg_probs.argmax(axis=1)
    is_arg = p_arg >= threshold
    if lengths is not None and min_residues:
        is_arg &= np.asarray(lengths) >= min_residues
    pred = np.where(is_arg, best_arg, nonarg_index)
    return pred, probs[np.arange(len(pred)), pred], p_arg


def choose_threshold(p_arg: np.ndarray, is_arg: np.ndarray, max_false_positive_rate: float
                     ) -> dict:
    """The P(ARG) threshold with the best ARG-detection F1 among those whose share of non-ARGs
    called ARG stays within ``max_false_positive_rate``; 0.5 when that is already the best."""
    p_arg = np.asarray(p_arg, dtype=np.float64)
    is_arg = np.asarray(is_arg, dtype=bool)
    n_neg, n_pos = int((~is_arg).sum()), int(is_arg.sum())
    best = None
    for t in np.unique(np.concatenate([np.linspace(0.05, 0.995, 190), [0.5]])):
        called = p_arg >= t
        fp = int((called & ~is_arg).sum())
        tp = int((called & is_arg).sum())
        fpr = fp / n_neg if n_neg else 0.0
        if fpr > max_false_positive_rate:
            continue
        precision = tp / max(1, int(called.sum()))
        recall = tp / max(1, n_pos)
        f1 = 2 * precision * recall / max(1e-12, precision + recall)
        key = (f1, -abs(t - 0.5))
        if best is None or key > best[0]:
            best = (key, {"threshold": float(t), "f1": f1, "precision": precision,
                          "recall": recall, "false_positive_rate": fpr})
    if best is None:  # no threshold meets the bound: the strictest one
        t = 0.995
        called = p_arg >= t
        return {"threshold": t, "f1": None, "false_positive_rate":
                float((called & ~is_arg).sum() / max(1, n_neg)), "bound_met": False}
    return {**best[1], "bound_met": True}
