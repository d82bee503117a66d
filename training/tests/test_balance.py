import pytest

pytest.importorskip("torch")

from argtrain import balance  # noqa: E402


def test_class_weights():
    import numpy as np

    y = np.array([0] * 90 + [1] * 9 + [2] * 1)
    bal = balance.class_weights(y, 4, "balanced").numpy()
    sq = balance.class_weights(y, 4, "sqrt").numpy()
    assert balance.class_weights(y, 4, "none") is None
    assert bal[3] == 0 and sq[3] == 0  # a class without examples
    assert bal[0] * 90 == pytest.approx(bal[2] * 1)  # balanced: every class weighs the same
    assert sq[2] / sq[0] == pytest.approx(90 ** 0.5)
    for w in (bal, sq):
        assert (w[y]).mean() == pytest.approx(1.0)


def test_epoch_sample_balances_classes_and_cycles_through_each():
    import numpy as np

    y = np.array([0] * 900 + [1] * 100 + [2] * 4)
    sqrt = balance.epoch_sample(y, "sqrt", 1000, 0, 0)
    counts = np.bincount(y[sqrt], minlength=3)
    assert counts.sum() == pytest.approx(1000, abs=2)
    assert counts[0] / counts[1] == pytest.approx(3.0, rel=0.05)  # sqrt(900) / sqrt(100)
    bal = balance.epoch_sample(y, "balanced", 300, 0, 0)
    assert np.bincount(y[bal]).tolist() == [100, 100, 100]
    # The 4 examples of class 2 are each drawn 25 times in the balanced epoch, never twice in a
    # row of 4 draws; the 900 of class 0 are not repeated until all were seen.
    twos = [i for i in bal if y[i] == 2]
    assert all(sorted(twos[k:k + 4]) == [1000, 1001, 1002, 1003] for k in range(0, 100, 4))
    zeros = [i for e in range(9) for i in balance.epoch_sample(y, "balanced", 300, e, 0)
             if y[i] == 0]
    assert sorted(zeros) == list(range(900))
    assert balance.epoch_sample(y, "natural", 5, 0, 0) == list(range(len(y)))
