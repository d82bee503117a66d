import numpy as np
import pytest

from argtrain.metrics import (accuracy, binary_detection, classification_report,
                              confusion_matrix, macro_f1)

CLASSES = ["a", "b", "c", "nonarg"]
# Hand-worked example:
#   a: true 2, predicted a 1 (+1 as b)             P 1/1  R 1/2  F1 2/3
#   b: true 2, predicted b 2; 1 a predicted b      P 2/3  R 2/2  F1 4/5
#   c: true 1, predicted nonarg                    P 0    R 0    F1 0
#   nonarg: true 3, all right; plus the c           P 3/4  R 3/3  F1 6/7
Y_TRUE = ["a", "a", "b", "b", "c", "nonarg", "nonarg", "nonarg"]
Y_PRED = ["a", "b", "b", "b", "nonarg", "nonarg", "nonarg", "nonarg"]


def test_confusion_matrix():
    cm = confusion_matrix(Y_TRUE, Y_PRED, CLASSES)
    assert cm.tolist() == [[1, 1, 0, 0], [0, 2, 0, 0], [0, 0, 0, 1], [0, 0, 0, 3]]


def test_accuracy_and_macro_f1_by_hand():
    assert accuracy(Y_TRUE, Y_PRED) == pytest.approx(6 / 8)
    assert macro_f1(Y_TRUE, Y_PRED, CLASSES) == pytest.approx((2 / 3 + 4 / 5 + 0 + 6 / 7) / 4)


def test_report_per_class_and_binary():
    r = classification_report(Y_TRUE, Y_PRED, CLASSES)
    assert r["n"] == 8
    assert r["per_class"]["a"] == pytest.approx(
        {"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2, "predicted": 1})
    assert r["per_class"]["b"]["precision"] == pytest.approx(2 / 3)
    assert r["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1,
                                   "predicted": 0}
    assert r["per_class"]["nonarg"]["f1"] == pytest.approx(6 / 7)
    assert r["weighted_f1"] == pytest.approx((2 * 2 / 3 + 2 * 4 / 5 + 0 + 3 * 6 / 7) / 8)
    # ARG detection: 5 true ARGs, 4 predicted as some ARG, all 4 are ARGs.
    assert r["binary"] == pytest.approx({"tp": 4, "fp": 0, "fn": 1, "tn": 3,
                                         "precision": 1.0, "recall": 0.8, "f1": 8 / 9})
    assert r["arg_only_accuracy"] == pytest.approx(3 / 5)
    assert np.array(r["confusion_matrix"]).sum() == 8


def test_absent_classes_do_not_count_in_macro_f1():
    classes = ["a", "b", "unused"]
    assert macro_f1(["a", "b"], ["a", "b"], classes) == 1.0
    # A class that is only predicted (a false positive) does count, with F1 0.
    assert macro_f1(["a", "a"], ["a", "unused"], classes) == pytest.approx((2 / 3 + 0) / 2)
    r = classification_report(["a", "a"], ["a", "unused"], classes, nonarg_class=None)
    assert r["macro_f1_supported"] == pytest.approx(2 / 3)
    assert "binary" not in r


def test_binary_detection_counts_wrong_arg_class_as_detected():
    b = binary_detection(["a", "nonarg"], ["b", "a"])
    assert (b["tp"], b["fp"], b["fn"], b["tn"]) == (1, 1, 0, 0)


def test_errors():
    with pytest.raises(ValueError, match="not in classes"):
        confusion_matrix(["a"], ["z"], ["a"])
    with pytest.raises(ValueError, match="labels"):
        confusion_matrix(["a"], [], ["a"])
