"""Classification metrics with numpy only: accuracy, macro-F1, per-class P/R/F1, confusion matrix.

Conventions (the same as scikit-learn's defaults with ``zero_division=0``):
- a class with no predictions has precision 0, a class with no true examples has recall 0;
- macro-F1 averages F1 over the classes that occur in ``y_true`` or ``y_pred`` (a class that appears
  in neither says nothing about the model and would only drag the mean towards 0 or 1).
Labels not in ``classes`` are an error: a silent drop would make the numbers lie.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _indices(labels: Sequence[str], classes: Sequence[str], what: str) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted({y for y in labels if y not in index})
    if unknown:
        raise ValueError(f"{what} contains labels not in classes: {unknown}")
    return np.fromiter((index[y] for y in labels), dtype=np.int64, count=len(labels))


def confusion_matrix(y_true: Sequence[str], y_pred: Sequence[str],
                     classes: Sequence[str]) -> np.ndarray:
    """``cm[i, j]`` = number of examples of true class ``classes[i]`` predicted ``classes[j]``."""
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} labels but y_pred has {len(y_pred)}")
    if len(set(classes)) != len(classes):
        raise ValueError("classes contains duplicates")
    t = _indices(y_true, classes, "y_true")
    p = _indices(y_pred, classes, "y_pred")
    k = len(classes)
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (t, p), 1)
    return cm


def _prf(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1).astype(np.float64)   # true count per class
    predicted = cm.sum(axis=0).astype(np.float64)  # predicted count per class
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    present = (support > 0) | (predicted > 0)
    return precision, recall, f1, support, present


def accuracy(y_true: Sequence[str], y_pred: Sequence[str]) -> float:
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} labels but y_pred has {len(y_pred)}")
    if not y_true:
        return 0.0
    return float(sum(a == b for a, b in zip(y_true, y_pred)) / len(y_true))


def macro_f1(y_true: Sequence[str], y_pred: Sequence[str], classes: Sequence[str]) -> float:
    """Unweighted mean F1 over the classes present in ``y_true`` or ``y_pred``."""
    cm = confusion_matrix(y_true, y_pred, classes)
    _, _, f1, _, present = _prf(cm)
    return float(f1[present].mean()) if present.any() else 0.0


def binary_detection(y_true: Sequence[str], y_pred: Sequence[str],
                     nonarg_class: str = "nonarg") -> dict:
    """ARG-vs-nonARG detection, positive = any ARG class (the class itself need not be right)."""
    t = np.array([y != nonarg_class for y in y_true], dtype=bool)
    p = np.array([y != nonarg_class for y in y_pred], dtype=bool)
    tp = int(np.sum(t & p))
    fp = int(np.sum(~t & p))
    fn = int(np.sum(t & ~p))
    tn = int(np.sum(~t & ~p))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn,
            "precision": precision, "recall": recall, "f1": f1}


def classification_report(y_true: list[str], y_pred: list[str], classes: list[str],
                          nonarg_class: str | None = "nonarg") -> dict:
    """All metrics in one JSON-serialisable dict.

    Keys: n, accuracy, macro_f1, macro_f1_supported, weighted_f1, classes, per_class {class: precision, recall, f1,
    support, predicted}, confusion_matrix (rows = true, columns = predicted, in ``classes`` order),
    and, when ``nonarg_class`` is in ``classes``: binary (ARG-vs-nonARG detection) and
    arg_only_accuracy (accuracy restricted to examples whose true class is an ARG class).
    """
    classes = list(classes)
    cm = confusion_matrix(y_true, y_pred, classes)
    precision, recall, f1, support, present = _prf(cm)
    total = support.sum()
    report: dict = {
        "n": int(len(y_true)),
        "accuracy": accuracy(y_true, y_pred),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        # Over classes with test examples only: a class that is merely predicted (a false
        # positive of a class absent from the test set) does not pull this one down.
        "macro_f1_supported": float(f1[support > 0].mean()) if (support > 0).any() else 0.0,
        "weighted_f1": float((f1 * support).sum() / total) if total else 0.0,
        "classes": classes,
        "per_class": {
            c: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                "support": int(support[i]), "predicted": int(cm[:, i].sum())}
            for i, c in enumerate(classes)
        },
        "confusion_matrix": cm.tolist(),
    }
    if nonarg_class is not None and nonarg_class in classes:
        report["binary"] = binary_detection(y_true, y_pred, nonarg_class)
        arg = [(a, b) for a, b in zip(y_true, y_pred) if a != nonarg_class]
        report["arg_only_accuracy"] = (sum(a == b for a, b in arg) / len(arg)) if arg else 0.0
    return report
