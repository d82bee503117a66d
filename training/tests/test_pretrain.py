import json
import math
import random
from pathlib import Path

import pytest
import torch

from argtrain import alphabet, pretrain
from argtrain.checkpoints import load_backbone
from argtrain.commands import pretrain as pretrain_cmd

TINY = ["--num-layers", "2", "--embed-dim", "32", "--attention-heads", "4", "--max-tokens", "768",
        "--no-progress", "--num-threads", "1"]


def write_corpus(path, n, seed):
    """Proteins made of a few repeated motifs: easy to predict from context once learned."""
    rng = random.Random(seed)
    motifs = ["MKVLAT", "GHWYER", "PPDNQS", "CFIKLM"]
    with open(path, "w") as fh:
        for i in range(n):
            m = rng.choice(motifs)
            seq = (m * 20)[: rng.randint(20, 60)]
            fh.write(f">p{i}|ignored_label\n{seq}\n")
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    return write_corpus(d / "train.fa", 200, 1), write_corpus(d / "valid.fa", 30, 2)


def test_masking_follows_esm_rules():
    tokens = alphabet.batch_encode(["A" * 300, "MKV", "W" * 40])
    gen = torch.Generator().manual_seed(0)
    inputs, targets = pretrain.mask_tokens(tokens, gen, 0.15)
    sel = targets.ne(pretrain.IGNORE)
    residue = tokens.ne(alphabet.CLS) & tokens.ne(alphabet.EOS) & tokens.ne(alphabet.PAD)
    assert not (sel & ~residue).any()  # never <cls>, <eos>, <pad>
    assert sel.any(dim=1).all()  # at least one per sequence, even for 3 residues
    assert torch.equal(targets[sel], tokens[sel])
    assert torch.equal(inputs[~sel], tokens[~sel])
    # Proportions over many draws: 15% selected; of those 80% <mask>, 10% random, 10% kept.
    big = alphabet.batch_encode(["A" * 1000] * 40)
    inputs, targets = pretrain.mask_tokens(big, gen, 0.15)
    sel = targets.ne(pretrain.IGNORE)
    n = sel.sum().item()
    assert abs(n / (40 * 1000) - 0.15) < 0.01
    masked = (inputs[sel] == alphabet.MASK).float().mean().item()
    kept = (inputs[sel] == big[sel]).float().mean().item()
    assert abs(masked - 0.8) < 0.02 and abs(kept - 0.1 - 0.1 / 20) < 0.02
    assert set(inputs[sel].unique().tolist()) <= set(alphabet.STANDARD_AA_IDS) | {alphabet.MASK}


def test_pretrain_loss_decreases_and_checkpoint_feeds_finetune(corpus, tmp_path):
    train, valid = corpus
    rc = pretrain_cmd.main(["--train", str(train), "--valid", str(valid), "--out", str(tmp_path),
                            "--max-steps", "60", "--eval-every", "10", "--lr", "3e-3",
                            "--warmup-steps", "5", *TINY])
    assert rc == 0
    hist = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in hist] == [10, 20, 30, 40, 50, 60]
    assert hist[-1]["val_loss"] < hist[0]["val_loss"] - 0.3
    assert hist[-1]["val_loss"] < math.log(20)  # better than guessing among the amino acids
    model, source = load_backbone(tmp_path / "best.pt")
    assert source.startswith("pretrained:") and model.num_layers == 2
    model, _ = load_backbone(tmp_path)  # the directory works too (best.pt)


def test_pretrain_resumes(corpus, tmp_path):
    train, valid = corpus
    args = ["--train", str(train), "--valid", str(valid), "--out", str(tmp_path),
            "--eval-every", "0", "--save-every", "0", *TINY]
    assert pretrain_cmd.main([*args, "--max-steps", "3"]) == 0
    assert torch.load(tmp_path / "last.pt")["step"] == 3
    assert pretrain_cmd.main([*args, "--max-steps", "6", "--resume"]) == 0
    state = torch.load(tmp_path / "last.pt")
    assert state["step"] == 6 and len(state["history"]) == 2


def test_continued_pretraining_from_a_checkpoint(corpus, tmp_path):
    train, valid = corpus
    first = tmp_path / "a"
    assert pretrain_cmd.main(["--train", str(train), "--valid", str(valid), "--out", str(first),
                              "--max-steps", "2", "--eval-every", "0", *TINY]) == 0
    assert pretrain_cmd.main(["--train", str(train), "--valid", str(valid),
                              "--out", str(tmp_path / "b"), "--init-from", str(first / "last.pt"),
                              "--max-steps", "2", "--eval-every", "0", *TINY]) == 0
    assert torch.load(tmp_path / "b" / "last.pt")["source"].endswith("+continued")


def test_a_budget_is_required(corpus, tmp_path, capsys):
    train, _ = corpus
    assert pretrain_cmd.main(["--train", str(train), "--out", str(tmp_path), *TINY]) == 1
    assert "budget" in capsys.readouterr().err


def test_learning_rate_schedule():
    from argtrain.trainloop import lr_at

    assert lr_at(0, 100, 10, 1.0) == pytest.approx(0.1)
    assert lr_at(9, 100, 10, 1.0) == pytest.approx(1.0)
    assert lr_at(10, 100, 10, 1.0) == pytest.approx(1.0)
    assert lr_at(100, 100, 10, 1.0, "cosine", 0.1) == pytest.approx(0.1)
    assert lr_at(55, 100, 10, 1.0, "linear", 0.0) == pytest.approx(0.5)
    values = [lr_at(s, 100, 10, 1.0) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_pretrain_resumes_from_a_portable_state_elsewhere(corpus, tmp_path):
    train, valid = corpus
    first = tmp_path / "first"
    args = ["--train", str(train), "--valid", str(valid), "--eval-every", "0", "--save-every", "0",
            *TINY]
    assert pretrain_cmd.main([*args, "--out", str(first), "--max-steps", "3"]) == 0
    portable = torch.load(first / "portable.pt")
    assert "optimizer" not in portable and portable["step"] == 3
    assert (first / "portable.pt").stat().st_size < (first / "last.pt").stat().st_size / 2
    moved = tmp_path / "moved"
    assert pretrain_cmd.main([*args, "--out", str(moved), "--max-steps", "6", "--rewarm-steps", "2",
                              "--resume-from", str(first / "portable.pt")]) == 0
    state = torch.load(moved / "last.pt")
    assert state["step"] == 6 and len(state["history"]) == 2
    load_backbone(moved / "portable.pt")  # the portable state is a backbone too


def test_set_threads_limits_openblas_too():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from argtrain.runtime import set_threads

    before = torch.get_num_threads()
    try:
        assert set_threads(1) == 1
        blas = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
        assert blas and all(i["num_threads"] == 1 for i in blas)
    finally:
        set_threads(before)


COMMITTED_BACKBONE = Path(__file__).resolve().parents[2] / "model" / "default" / "backbone.pt"


@pytest.mark.skipif(not COMMITTED_BACKBONE.is_file(), reason="no committed model/default/backbone.pt")
def test_the_committed_backbone_is_a_resumable_state_and_a_backbone():
    # scripts/train-default-model.sh resumes from it on a fresh machine (--resume-from).
    state, model = pretrain.load_resumable(COMMITTED_BACKBONE)
    for key in ("step", "epoch", "batch_pos", "tokens_seen", "residues_seen", "best_ppl",
                "history", "elapsed_s", "mask_rng", "settings", "source"):
        assert key in state, key
    assert "optimizer" not in state
    backbone, _ = load_backbone(COMMITTED_BACKBONE)
    assert backbone.config == model.config
