import json
import random

import pytest
import torch

from argtrain import alphabet, finetune
from argtrain.checkpoints import FINETUNE_FORMAT, load_backbone
from argtrain.export import load_finetuned
from argtrain.trainutil import token_budget_batches

# Three classes told apart by residue composition (charged / small / hydrophobic-rich).
RICH = {"aminoglycoside": "KRDE", "beta-lactam": "GSAT", "nonarg": "LIVF"}


def write_synthetic(path, n_per_class, seed):
    rng = random.Random(seed)
    with open(path, "w") as fh:
        for label, rich in RICH.items():
            for i in range(n_per_class):
                seq = "".join(rng.choice(rich) if rng.random() < 0.5 else rng.choice("ACDEFGHIKLMNPQRSTVWY")
                              for _ in range(rng.randint(20, 50)))
                fh.write(f">{label[:3]}{i}|source|gene|{label}\n{seq}\n")
    return path


TINY = ["--random-init", "--num-layers", "2", "--embed-dim", "32", "--attention-heads", "4",
        "--max-tokens", "1024", "--no-progress", "--num-threads", "1"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    return write_synthetic(d / "train.fa", 30, 1), write_synthetic(d / "valid.fa", 10, 2)


@pytest.fixture(scope="module")
def lora_run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("ft")
    train, valid = data
    rc = finetune.main(["--train", str(train), "--valid", str(valid), "--out", str(out),
                        "--epochs", "6", "--lr", "3e-3", "--patience", "0", "--seed", "0", *TINY])
    assert rc == 0
    return out


def test_lora_finetune_learns_a_separable_task(lora_run):
    metrics = json.loads((lora_run / "metrics.json").read_text())
    assert metrics["accuracy"] > 0.9 and metrics["macro_f1"] > 0.9
    history = [json.loads(line) for line in (lora_run / "history.jsonl").read_text().splitlines()]
    assert len(history) == 6 and history[-1]["loss"] < history[0]["loss"]


def test_checkpoint_holds_what_export_needs(lora_run):
    ck = torch.load(lora_run / "best.pt")
    assert ck["format"] == FINETUNE_FORMAT
    assert ck["classes"] == ["aminoglycoside", "beta-lactam", "nonarg"]
    assert ck["nonarg_class"] == "nonarg"
    assert ck["backbone_config"] == {"num_layers": 2, "embed_dim": 32, "attention_heads": 4,
                                     "token_dropout": True}
    assert ck["lora"]["targets"] == ["q", "k", "v", "out", "fc1", "fc2"]
    assert ck["training"]["train"]["counts"] == {"aminoglycoside": 30, "beta-lactam": 30, "nonarg": 30}
    assert len(ck["training"]["train"]["sha256"]) == 64
    assert ck["metrics"]["validation"]["macro_f1"] > 0.9
    model, meta = load_finetuned(str(lora_run))
    assert meta["classes"] == ck["classes"]
    backbone, source = load_backbone(lora_run / "best.pt")  # a fine-tuned backbone can be reused
    assert source == "random" and backbone.num_layers == 2


def test_resume_continues_where_it_stopped(data, tmp_path):
    train, valid = data
    args = ["--train", str(train), "--valid", str(valid), "--out", str(tmp_path), "--epochs", "3",
            "--patience", "0", *TINY]
    assert finetune.main([*args, "--max-steps", "2"]) == 0
    first = torch.load(tmp_path / "last.pt")
    assert first["step"] == 2 and first["epoch"] == 0
    assert finetune.main([*args, "--resume"]) == 0
    last = torch.load(tmp_path / "last.pt")
    assert last["epoch"] == 3 and last["step"] > 2
    assert [h["epoch"] for h in last["history"]] == [0, 1, 2, 3]


def test_head_only_variant_trains_only_the_head(data, tmp_path):
    train, valid = data
    assert finetune.main(["--train", str(train), "--valid", str(valid), "--out", str(tmp_path),
                          "--epochs", "2", "--lora-targets", "classifier", "--max-per-class", "10",
                          *TINY]) == 0
    ck = torch.load(tmp_path / "best.pt")
    assert ck["lora"]["targets"] == ["classifier"]
    assert not any("lora_" in k for k in ck["model"])
    assert ck["training"]["mode"] == "head-only"
    assert ck["training"]["train"]["counts"] == {"aminoglycoside": 10, "beta-lactam": 10, "nonarg": 10}


def test_unlabelled_header_is_an_error(tmp_path, capsys):
    (tmp_path / "bad.fa").write_text(">seq1\nMKV\n")
    rc = finetune.main(["--train", str(tmp_path / "bad.fa"), "--out", str(tmp_path / "o"), *TINY])
    assert rc == 1 and "bad.fa" in capsys.readouterr().err


def test_token_budget_batches_respect_the_budget():
    rng = random.Random(0)
    lengths = [rng.randint(5, 300) for _ in range(500)]
    batches = token_budget_batches(lengths, 2048, max_batch=32, rng=random.Random(1))
    assert sorted(i for b in batches for i in b) == list(range(500))
    for b in batches:
        assert len(b) <= 32 and (len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 2048)
    # Sorting by length keeps padding low.
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    assert padded < 1.15 * sum(lengths)


def test_tokenize_records_drops_and_counts_bad_sequences():
    recs = [finetune.Record("a", "MKV*", "x"), finetune.Record("b", "MK*V", "x"),
            finetune.Record("c", "MKJ", "x")]
    toks, labels, dropped = finetune.tokenize_records(recs, "test")
    assert len(toks) == 1 and toks[0].tolist() == alphabet.encode("MKV")[1:-1]
    assert sum(dropped.values()) == 2


def test_class_weights():
    import numpy as np

    y = np.array([0] * 90 + [1] * 9 + [2] * 1)
    bal = finetune.class_weights(y, 4, "balanced").numpy()
    sq = finetune.class_weights(y, 4, "sqrt").numpy()
    assert finetune.class_weights(y, 4, "none") is None
    assert bal[3] == 0 and sq[3] == 0  # a class without examples
    assert bal[0] * 90 == pytest.approx(bal[2] * 1)  # balanced: every class weighs the same
    assert sq[2] / sq[0] == pytest.approx(90 ** 0.5)
    for w in (bal, sq):
        assert (w[y]).mean() == pytest.approx(1.0)


def test_epoch_sample_balances_classes_and_cycles_through_each():
    import numpy as np

    y = np.array([0] * 900 + [1] * 100 + [2] * 4)
    sqrt = finetune.epoch_sample(y, "sqrt", 1000, 0, 0)
    counts = np.bincount(y[sqrt], minlength=3)
    assert counts.sum() == pytest.approx(1000, abs=2)
    assert counts[0] / counts[1] == pytest.approx(3.0, rel=0.05)  # sqrt(900) / sqrt(100)
    bal = finetune.epoch_sample(y, "balanced", 300, 0, 0)
    assert np.bincount(y[bal]).tolist() == [100, 100, 100]
    # The 4 examples of class 2 are each drawn 25 times in the balanced epoch, never twice in a
    # row of 4 draws; the 900 of class 0 are not repeated until all were seen.
    twos = [i for i in bal if y[i] == 2]
    assert all(sorted(twos[k:k + 4]) == [1000, 1001, 1002, 1003] for k in range(0, 100, 4))
    zeros = [i for e in range(9) for i in finetune.epoch_sample(y, "balanced", 300, e, 0)
             if y[i] == 0]
    assert sorted(zeros) == list(range(900))
    assert finetune.epoch_sample(y, "natural", 5, 0, 0) == list(range(len(y)))


def test_finetune_calibrates_on_validation(lora_run):
    ck = torch.load(lora_run / "best.pt")
    c = ck["calibration"]
    assert 0.05 < c["temperature"] < 20 and 0.05 <= c["arg_threshold"] <= 0.995
    assert c["validation"]["ece"] <= c["validation"]["ece_before"] + 1e-9
    assert c["validation"]["threshold_choice"]["false_positive_rate"] <= 0.002
    assert json.loads((lora_run / "metrics.json").read_text())["calibration"] == c
