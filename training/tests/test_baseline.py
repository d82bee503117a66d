import random
import shutil

import pytest
from synthdata import family, mutate, random_protein

from argtrain.baseline import diamond_baseline

pytestmark = pytest.mark.skipif(shutil.which("diamond") is None,
                                reason="diamond (Debian package diamond-aligner) not installed")


def test_best_hit_labels_and_no_hit_is_nonarg():
    rng = random.Random(11)
    fam_x = family(rng, 3, 160)
    fam_y = family(rng, 3, 160)
    train = [(f"x{i}|odd id", "xclass", s) for i, s in enumerate(fam_x)] + \
            [(f"y{i}", "yclass", s) for i, s in enumerate(fam_y)] + \
            [(f"n{i}", "nonarg", random_protein(rng, 160)) for i in range(5)]
    test = [("tx", mutate(rng, fam_x[0], 0.15)),
            ("ty", mutate(rng, fam_y[1], 0.15)),
            ("tn", mutate(rng, train[-1][2], 0.1)),
            ("unrelated", random_protein(rng, 160))]
    preds, info = diamond_baseline(train, test, threads=1)
    assert [p.label for p in preds] == ["xclass", "yclass", "nonarg", "nonarg"]
    assert preds[0].hit.startswith("x") and preds[0].identity > 70
    assert preds[3].hit is None and preds[3].identity is None
    assert info["queries_with_hit"] == 3 and info["test_size"] == 4 and info["evalue"] == 1e-5


def test_custom_nonarg_label_and_empty_test():
    rng = random.Random(1)
    train = [("a", "x", random_protein(rng, 100))]
    preds, _ = diamond_baseline(train, [("q", random_protein(rng, 100))], nonarg_label="other")
    assert [p.label for p in preds] == ["other"]
    assert diamond_baseline(train, [])[0] == []
