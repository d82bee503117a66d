import json
import random

import pytest
import torch

from argtrain import alphabet, finetune
from argtrain.checkpoints import FINETUNE_FORMAT, load_backbone
from argtrain.commands import finetune as finetune_cmd
from argtrain.export import load_finetuned
from argtrain.labelled import LabelledProtein

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
    rc = finetune_cmd.main(["--train", str(train), "--valid", str(valid), "--out", str(out),
                            "--epochs", "6", "--lr", "3e-3", "--patience", "0", "--seed", "0",
                            *TINY])
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
    assert finetune_cmd.main([*args, "--max-steps", "2"]) == 0
    first = torch.load(tmp_path / "last.pt")
    assert first["step"] == 2 and first["epoch"] == 0
    assert finetune_cmd.main([*args, "--resume"]) == 0
    last = torch.load(tmp_path / "last.pt")
    assert last["epoch"] == 3 and last["step"] > 2
    assert [h["epoch"] for h in last["history"]] == [0, 1, 2, 3]


def test_head_only_variant_trains_only_the_head(data, tmp_path):
    train, valid = data
    assert finetune_cmd.main(["--train", str(train), "--valid", str(valid), "--out", str(tmp_path),
                              "--epochs", "2", "--lora-targets", "classifier",
                              "--max-per-class", "10", *TINY]) == 0
    ck = torch.load(tmp_path / "best.pt")
    assert ck["lora"]["targets"] == ["classifier"]
    assert not any("lora_" in k for k in ck["model"])
    assert ck["training"]["mode"] == "head-only"
    assert ck["training"]["train"]["counts"] == {"aminoglycoside": 10, "beta-lactam": 10, "nonarg": 10}


def test_hard_negatives_join_whole_and_repeated_outside_the_extra_sample(data, tmp_path):
    train, valid = data
    extra = write_synthetic(tmp_path / "extra.fa", 20, 3)  # 20 per class, 5 of them drawn
    hard = tmp_path / "hard.fa"
    hard.write_text("".join(f">h{i}|nonarg\nLIVFLIVFKRDE{'A' * i}\n" for i in range(4)))
    assert finetune_cmd.main(["--train", str(train), "--valid", str(valid),
                              "--out", str(tmp_path / "o"), "--epochs", "1",
                              "--lora-targets", "classifier", "--extra-train", str(extra),
                              "--extra-max", "5", "--hard-negatives", str(hard),
                              "--hard-negative-repeat", "3", *TINY]) == 0
    info = torch.load(tmp_path / "o" / "best.pt")["training"]["train"]
    assert info["extra_used"] == 5
    assert info["hard_negatives_used"] == 4 and info["hard_negative_repeat"] == 3
    assert sum(info["counts"].values()) == 90 + 5 + 4 * 3
    assert info["counts"]["nonarg"] >= 30 + 4 * 3


def test_hard_negatives_must_be_nonargs(data, tmp_path, capsys):
    train, valid = data
    hard = tmp_path / "hard.fa"
    hard.write_text(">h1|nonarg\nLIVFLIVF\n>h2|beta-lactam\nGSATGSAT\n")
    rc = finetune_cmd.main(["--train", str(train), "--valid", str(valid),
                            "--out", str(tmp_path / "o"), "--hard-negatives", str(hard), *TINY])
    assert rc == 1 and "beta-lactam" in capsys.readouterr().err


def test_unlabelled_header_is_an_error(tmp_path, capsys):
    (tmp_path / "bad.fa").write_text(">seq1\nMKV\n")
    rc = finetune_cmd.main(["--train", str(tmp_path / "bad.fa"), "--out", str(tmp_path / "o"),
                            *TINY])
    assert rc == 1 and "bad.fa" in capsys.readouterr().err


def test_tokenize_records_drops_and_counts_bad_sequences():
    recs = [LabelledProtein("a", "MKV*", "x"), LabelledProtein("b", "MK*V", "x"),
            LabelledProtein("c", "MKJ", "x")]
    toks, labels, dropped = finetune.tokenize_records(recs, "test")
    assert len(toks) == 1 and toks[0].tolist() == alphabet.encode("MKV")[1:-1]
    assert sum(dropped.values()) == 2


def test_finetune_calibrates_on_validation(lora_run):
    ck = torch.load(lora_run / "best.pt")
    c = ck["calibration"]
    assert 0.05 < c["temperature"] < 20 and 0.05 <= c["arg_threshold"] <= 0.995
    assert c["validation"]["ece"] <= c["validation"]["ece_before"] + 1e-9
    assert c["validation"]["threshold_choice"]["false_positive_rate"] <= 0.002
    assert json.loads((lora_run / "metrics.json").read_text())["calibration"] == c


def test_finetune_calibrates_on_whole_proteins_not_training_crops(data, tmp_path, capsys):
    from argtrain.commands import calibrate as calibrate_cmd
    train, valid = data
    out = tmp_path / "run"
    # Proteins are 20-50 residues: 16-residue crops in training and per-epoch validation.
    assert finetune_cmd.main(["--train", str(train), "--valid", str(valid), "--out", str(out),
                              "--epochs", "3", "--lr", "3e-3", "--patience", "0", "--seed", "0",
                              *TINY, "--max-residues", "16"]) == 0
    own = torch.load(out / "best.pt")
    assert own["calibration"]["max_residues"] == 1022
    args = ["--checkpoint", str(out), "--valid", str(valid), "--num-threads", "1"]
    assert calibrate_cmd.main([*args, "--max-residues", "16"]) == 0
    cropped = torch.load(out / "best.pt")["calibration"]
    assert cropped["max_residues"] == 16
    assert json.loads((out / "metrics.json").read_text())["calibration"] == cropped
    assert cropped["temperature"] != pytest.approx(own["calibration"]["temperature"], rel=1e-3)
    assert calibrate_cmd.main(args) == 0
    whole = torch.load(out / "best.pt")["calibration"]
    assert whole["max_residues"] == 1022
    assert whole["min_residues"] == own["calibration"]["min_residues"]
    # Whole proteins again: the fine-tuning's own calibration, reproduced.
    assert whole["temperature"] == pytest.approx(own["calibration"]["temperature"], rel=1e-4)
    assert whole["arg_threshold"] == pytest.approx(own["calibration"]["arg_threshold"])
    assert "ARG threshold" in capsys.readouterr().out


def test_calibrate_command_names_classes_the_checkpoint_lacks(lora_run, tmp_path, capsys):
    from argtrain.commands import calibrate as calibrate_cmd
    valid = tmp_path / "valid.fa"
    valid.write_text(">x1|source|gene|colistin\nMKVLLAAGGT\n")
    assert calibrate_cmd.main(["--checkpoint", str(lora_run), "--valid", str(valid)]) == 1
    assert "colistin" in capsys.readouterr().err
