import numpy as np
import pytest

from argtrain import calibrate


def _overconfident(n=4000, classes=4, temperature=3.0, seed=0):
    """Logits whose calibrated temperature is known: labels drawn from softmax(z), logits 3z."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, size=(n, classes))
    p = calibrate.softmax(z)
    y = np.array([rng.choice(classes, p=row) for row in p])
    return z * temperature, y


def test_fit_temperature_recovers_the_scaling():
    logits, y = _overconfident()
    t = calibrate.fit_temperature(logits, y)
    assert t == pytest.approx(3.0, rel=0.1)
    assert calibrate.nll(logits, y, t) < calibrate.nll(logits, y, 1.0)


def test_temperature_scaling_lowers_the_calibration_error():
    logits, y = _overconfident()
    before = calibrate.softmax(logits)
    after = calibrate.softmax(logits, calibrate.fit_temperature(logits, y))
    ece_before = calibrate.expected_calibration_error(before.max(1), before.argmax(1) == y)
    ece_after = calibrate.expected_calibration_error(after.max(1), after.argmax(1) == y)
    assert ece_before > 0.1 and ece_after < 0.03


def test_expected_calibration_error_of_exact_confidences():
    conf = np.array([0.9] * 10 + [0.6] * 10)
    correct = np.array([1] * 9 + [0] + [1] * 6 + [0] * 4)
    assert calibrate.expected_calibration_error(conf, correct) == pytest.approx(0.0)
    assert calibrate.expected_calibration_error(np.array([1.0, 1.0]), np.array([0, 0])) == 1.0


def test_threshold_keeps_false_positives_within_the_bound():
    rng = np.random.default_rng(1)
    is_arg = np.array([True] * 200 + [False] * 2000)
    p_arg = np.where(is_arg, rng.beta(8, 2, is_arg.size), rng.beta(1, 12, is_arg.size))
    choice = calibrate.choose_threshold(p_arg, is_arg, 0.002)
    assert choice["bound_met"]
    fp = ((p_arg >= choice["threshold"]) & ~is_arg).sum()
    assert fp <= 0.002 * 2000
    assert choice["recall"] > 0.5


def test_call_rule_uses_p_arg_and_the_length_floor():
    # classes: a, b, nonarg. Row 0: nonarg is the top class but P(ARG) = 0.6.
    probs = np.array([[0.35, 0.25, 0.40], [0.05, 0.05, 0.90], [0.80, 0.10, 0.10]])
    pred, top, p_arg = calibrate.call(probs, 2, 0.5)
    assert pred.tolist() == [0, 2, 0] and p_arg == pytest.approx([0.6, 0.1, 0.9])
    assert top == pytest.approx([0.35, 0.90, 0.80])
    pred, _, _ = calibrate.call(probs, 2, 0.5, lengths=np.array([100, 100, 20]), min_residues=50)
    assert pred.tolist() == [0, 2, 2]
