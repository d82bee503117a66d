"""The classifier's pooling and head options: what they compute, and that every stage of the
recipe (fine-tuning, head warm-up, resume, export, reuse as a backbone) keeps them."""

import json

import pytest
import torch

from argtrain import alphabet
from argtrain.checkpoints import load_backbone
from argtrain.classifier import ARGClassifier, HeadConfig
from argtrain.commands import export as export_cmd
from argtrain.commands import finetune as finetune_cmd
from argtrain.esm2 import ESM2Config
from argtrain.export import load_finetuned
from argtrain.lora import LoRAConfig, apply_lora

from test_finetune import TINY, write_synthetic

SEQS = ["MKTAYIAKQRQISFVK", "ACDEFGH", "WWY"]


def _model(pooling, hidden=0):
    torch.manual_seed(0)
    m = ARGClassifier.build(ESM2Config(2, 32, 4), 3, dropout=0.0,
                            head_config=HeadConfig(pooling, hidden))
    m.backbone.init_weights()
    return m.eval()


@pytest.mark.parametrize("pooling", ["mean", "max", "mean+max"])
def test_pooling_is_over_residues_only(pooling):
    m = _model(pooling)
    tokens = alphabet.batch_encode(SEQS)
    with torch.no_grad():
        reps = m.backbone.representations(tokens)
        pooled = m.embed(tokens)
    for i, s in enumerate(SEQS):
        residues = reps[i, 1:len(s) + 1]  # <cls> first, then the residues, then <eos>, <pad>
        want = {"mean": residues.mean(0), "max": residues.max(0).values}
        expected = torch.cat([want[p] for p in pooling.split("+")])
        assert torch.allclose(pooled[i], expected, atol=1e-5)


@pytest.mark.parametrize("pooling", ["max", "mean+max"])
def test_padding_does_not_change_a_protein_s_logits(pooling):
    m = _model(pooling, hidden=8)
    with torch.no_grad():
        batch = m(alphabet.batch_encode(SEQS))
        alone = torch.cat([m(alphabet.batch_encode([s])) for s in SEQS])
    assert torch.allclose(batch, alone, atol=1e-5)


def test_head_config_names_and_widths():
    assert HeadConfig().type_name() == "mean-pool-linear"
    assert HeadConfig("max", 256).type_name() == "max-pool-mlp"
    assert HeadConfig("mean+max").pooled_dim(128) == 256
    assert HeadConfig.from_dict(None) == HeadConfig("mean", 0)  # checkpoints from before
    with pytest.raises(ValueError, match="pooling"):
        HeadConfig("sum")


def test_standardization_is_fixed_and_kept_in_the_state_only_when_configured():
    m = _model("max", hidden=8)
    assert not any(k.startswith("pooled_") for k in m.state_dict())  # as checkpoints from before
    with pytest.raises(ValueError, match="standardize"):
        m.set_standardization(torch.zeros(4, 32))
    torch.manual_seed(0)
    s = ARGClassifier.build(ESM2Config(2, 32, 4), 3, dropout=0.0,
                            head_config=HeadConfig("max", 8, standardize=True)).eval()
    pooled = 5.0 + 0.1 * torch.randn(50, 32)
    s.set_standardization(pooled)
    assert {"pooled_shift", "pooled_scale"} <= set(s.state_dict())
    with torch.no_grad():
        standardized = (pooled - pooled.mean(0)) / pooled.std(0, unbiased=False)
        assert torch.allclose(s.classify(pooled), s.head(s.hidden(standardized)), atol=1e-5)


def test_lora_trains_the_hidden_layer_and_the_head():
    m = apply_lora(_model("max", hidden=8), LoRAConfig(targets=["q"]))
    names = {n for n, p in m.named_parameters() if p.requires_grad}
    assert {"hidden.0.weight", "hidden.0.bias", "head.weight", "head.bias"} <= names
    assert not any(n.startswith("backbone.") and "lora_" not in n for n in names)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    return write_synthetic(d / "train.fa", 30, 1), write_synthetic(d / "valid.fa", 10, 2)


def test_warm_up_trains_the_head_on_a_frozen_backbone(data, tmp_path):
    train, valid = data
    args = ["--train", str(train), "--valid", str(valid), "--pooling", "max", "--head-hidden",
            "16", "--standardize-pooled", "--patience", "0", "--seed", "0", *TINY]
    # The warm-up's validation records, one per epoch, show the head alone learning.
    assert finetune_cmd.main([*args, "--out", str(tmp_path / "w"), "--epochs", "1",
                              "--head-warmup-epochs", "4", "--head-warmup-lr", "1e-2"]) == 0
    ck = torch.load(tmp_path / "w" / "best.pt")
    warm = ck["training"]["head_warmup"]
    assert [r["head_warmup_epoch"] for r in warm] == [1, 2, 3, 4]
    assert warm[-1]["loss"] < warm[0]["loss"]
    assert torch.load(tmp_path / "w" / "last.pt")["head_warmup"] == warm  # kept for a resume
    history = torch.load(tmp_path / "w" / "last.pt")["history"]
    assert [h["epoch"] for h in history] == [0, 1]  # the warm-up's head was a candidate
    assert ck["head"] == {"pooling": "max", "hidden": 16, "standardize": True}
    # The statistics are the training proteins' under the frozen backbone: not the defaults.
    assert not torch.equal(ck["model"]["pooled_shift"], torch.zeros(32))


def test_standardization_needs_the_statistics(data, tmp_path, capsys):
    train, valid = data
    assert finetune_cmd.main(["--train", str(train), "--valid", str(valid), "--out",
                              str(tmp_path), "--standardize-pooled", *TINY]) == 1
    assert "--head-warmup-epochs" in capsys.readouterr().err


def test_configured_head_survives_resume_export_and_reuse(data, tmp_path):
    train, valid = data
    out = tmp_path / "run"
    args = ["--train", str(train), "--valid", str(valid), "--out", str(out), "--epochs", "2",
            "--patience", "0", "--pooling", "mean+max", "--head-hidden", "8", *TINY]
    assert finetune_cmd.main([*args, "--max-steps", "2"]) == 0
    assert finetune_cmd.main([*args[:-len(TINY)], "--resume", *TINY]) == 0
    model, meta = load_finetuned(str(out))
    assert meta["head"] == {"pooling": "mean+max", "hidden": 8, "standardize": False}
    # Resuming with another head is refused, not silently continued with the saved one.
    other = [a if a != "mean+max" else "max" for a in args]
    assert finetune_cmd.main([*other[:-len(TINY)], "--resume", *TINY]) == 1
    assert model.head.in_features == 8 and model.hidden[0].in_features == 64
    artifact = tmp_path / "m.pt"
    assert export_cmd.main(["--checkpoint", str(out), "--name", "t", "--out", str(artifact)]) == 0
    files = {"model.json": ""}
    scripted = torch.jit.load(str(artifact), _extra_files=files)
    assert json.loads(files["model.json"])["head"] == {
        "type": "mean-max-pool-mlp", "embedding_dim": 64, "pooling": "mean+max", "hidden": 8}
    tokens = alphabet.batch_encode(SEQS)
    with torch.no_grad():
        assert scripted(tokens).shape == (3, 3)
        assert scripted.embed(tokens).shape == (3, 64)
    backbone, _ = load_backbone(out / "best.pt")  # a fine-tuned backbone is reusable whatever head
    assert backbone.num_layers == 2
