import numpy as np
import pytest

from argtrain import kmer_baseline as kb
from test_finetune import RICH, write_synthetic


def test_features_count_2mers_and_3mers_and_skip_other_letters():
    idx, values = kb.kmer_features("AAAX")
    # AA twice (index 0), AAA once (index 400); "AX", "AAX" are skipped.
    assert dict(zip(idx.tolist(), values.tolist())) == pytest.approx(
        {0: 2 / np.sqrt(5), 400: 1 / np.sqrt(5)})
    assert kb.kmer_features("M")[0].size == 0


def test_baseline_learns_a_composition_task(tmp_path):
    from argtrain.fasta import read_fasta

    def load(path):
        return [(h.split("|")[-1], s) for h, s in read_fasta(path)]

    train = load(write_synthetic(tmp_path / "train.fa", 40, 1))
    test = load(write_synthetic(tmp_path / "test.fa", 15, 2))
    classes = sorted(RICH)
    model, info = kb.train_kmer_baseline(train, classes, epochs=15, seed=0)
    labels, probs = kb.predict_kmer(model, [s for _, s in test], classes)
    accuracy = np.mean([p == y for p, (y, _) in zip(labels, test)])
    assert accuracy > 0.9
    assert probs.shape == (len(test), 3) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert info["features"] == 8400 and info["train_size"] == 120
