"""The artifact of docs/model-artifact.md: TorchScript + model.json, as the server will load it."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from argtrain import alphabet, export
from argtrain.checkpoints import FINETUNE_FORMAT
from argtrain.commands import export as export_cmd
from argtrain.classifier import ARGClassifier
from argtrain.esm2 import ESM2Config
from argtrain.lora import LoRAConfig, apply_lora

TRAINING = Path(__file__).resolve().parents[1]
REPO = TRAINING.parent
CLASSES = ["aminoglycoside", "beta-lactam", "tetracycline", "nonarg"]
CLI = ["-m", "argtrain", "export", "--random-init", "--num-layers", "2", "--embed-dim", "32",
       "--attention-heads", "4", "--classes", ",".join(CLASSES), "--max-residues", "1022",
       "--seed", "0", "--name", "tiny-random", "--out"]


def _load(path):
    files = {"model.json": ""}
    module = torch.jit.load(str(path), _extra_files=files)
    return module, json.loads(files["model.json"])


def _run_cli(out: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(TRAINING), PYTHONHASHSEED="0")
    subprocess.run([sys.executable, *CLI, str(out), "--num-threads", "1"], cwd=REPO, env=env,
                   check=True, capture_output=True)


@pytest.fixture(scope="module")
def cli_artifacts(tmp_path_factory):
    base = tmp_path_factory.mktemp("cli")
    paths = [base / "a" / "tiny.pt", base / "b" / "tiny.pt"]
    for p in paths:
        _run_cli(p)
    return paths


def test_cli_artifact_has_the_contract_model_json(cli_artifacts):
    _, meta = _load(cli_artifacts[0])
    for key in export.REQUIRED_KEYS:
        assert key in meta, key
    assert meta["format"] == "argserve-model/1"
    assert meta["name"] == "tiny-random"
    assert meta["classes"] == CLASSES and meta["nonarg_class"] == "nonarg"
    assert meta["alphabet"] == alphabet.ALPHABET and len(meta["alphabet"]) == 33
    assert meta["special_tokens"] == {"cls": 0, "pad": 1, "eos": 2, "unk": 3, "mask": 32}
    assert meta["residues"] == "ACDEFGHIKLMNPQRSTVWYXBUZO"
    assert meta["max_residues"] == 1022
    assert meta["backbone"] == {"architecture": "esm2", "num_layers": 2, "embed_dim": 32,
                                "attention_heads": 4, "token_dropout": True, "source": "random"}
    assert meta["head"] == {"type": "mean-pool-linear", "embedding_dim": 32}


def test_cli_artifact_is_deterministic(cli_artifacts):
    a, b = (hashlib.sha256(p.read_bytes()).hexdigest() for p in cli_artifacts)
    assert a == b


def test_cli_artifact_matches_the_eager_model(cli_artifacts):
    art, _ = _load(cli_artifacts[0])
    eager = export.random_model(2, 32, 4, len(CLASSES), seed=0).eval()
    tokens = alphabet.batch_encode(["MKTAYIAKQRQISFVKSHFSRQ", "ACDEFGHIK", "MA"])
    with torch.no_grad():
        logits = art(tokens)
        assert logits.dtype == torch.float32 and logits.shape == (3, 4)
        assert torch.allclose(logits, eager(tokens), atol=1e-5, rtol=0)
        assert torch.allclose(art.embed(tokens), eager.embed(tokens), atol=1e-5, rtol=0)


def test_embed_ignores_special_tokens_and_padding(cli_artifacts):
    art, _ = _load(cli_artifacts[0])
    short, long = "MKVLAT", "MKVLATGGHHKKRREEDDSSQQNNWWYY"
    with torch.no_grad():
        alone = art.embed(alphabet.batch_encode([short]))
        padded = art.embed(alphabet.batch_encode([long, short]))[1:]
        logits_alone = art(alphabet.batch_encode([short]))
        logits_padded = art(alphabet.batch_encode([long, short]))[1:]
    assert (alone - padded).abs().max().item() < 1e-5
    assert (logits_alone - logits_padded).abs().max().item() < 1e-5
    # The mean over residues only: the embedding changes if <cls>/<eos> were counted.
    eager = export.random_model(2, 32, 4, len(CLASSES), seed=0).eval()
    with torch.no_grad():
        reps = eager.backbone.representations(alphabet.batch_encode([short]))[0]
    assert torch.allclose(alone[0], reps[1:-1].mean(0), atol=1e-5, rtol=0)
    assert not torch.allclose(alone[0], reps.mean(0), atol=1e-4)


def _finetune_checkpoint(path: Path) -> ARGClassifier:
    torch.manual_seed(0)
    model = ARGClassifier.build(ESM2Config(2, 32, 4), 3, dropout=0.0)
    model.backbone.init_weights()
    lora = LoRAConfig(rank=4, alpha=8, dropout=0.0, targets=["q", "v", "fc2"])
    apply_lora(model, lora)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1)
    torch.save({"format": FINETUNE_FORMAT, "created": "2026-11-25T10:00:00+00:00",
                "backbone_config": model.backbone.config.to_dict(), "backbone_source": "test",
                "classes": ["a", "b", "nonarg"], "nonarg_class": "nonarg", "max_residues": 500,
                "head_dropout": 0.0, "lora": lora.to_dict(), "full_finetune": False,
                "model": model.state_dict(), "training": {"note": "synthetic"},
                "metrics": {"validation": {"macro_f1": 0.5}}}, path)
    return model.eval()


def test_export_from_finetune_checkpoint_merges_lora(tmp_path):
    eager = _finetune_checkpoint(tmp_path / "best.pt")
    out = tmp_path / "model.pt"
    assert export_cmd.main(["--checkpoint", str(tmp_path), "--out", str(out),
                            "--version", "9.9"]) == 0
    art, meta = _load(out)
    assert meta["classes"] == ["a", "b", "nonarg"] and meta["max_residues"] == 500
    assert meta["version"] == "9.9" and meta["backbone"]["source"] == "test"
    assert meta["lora"] == {"rank": 4, "alpha": 8.0, "dropout": 0.0, "targets": ["q", "v", "fc2"],
                            "last_layers": 0, "train_norms": False, "merged": True}
    assert meta["training"] == {"note": "synthetic"}
    assert meta["metrics"] == {"validation": {"macro_f1": 0.5}}
    tokens = alphabet.batch_encode(["MKTAYIAKQRQ", "GHW"])
    with torch.no_grad():
        assert (art(tokens) - eager(tokens)).abs().max().item() < 1e-5
    assert "lora" not in " ".join(art.state_dict())


def test_export_rejects_a_missing_nonarg_class(tmp_path, capsys):
    rc = export_cmd.main(["--random-init", "--classes", "a,b", "--out", str(tmp_path / "x.pt")])
    assert rc == 1 and "nonarg" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()


def test_export_folds_the_temperature_into_the_logits(tmp_path):
    eager = _finetune_checkpoint(tmp_path / "best.pt")
    ck = torch.load(tmp_path / "best.pt")
    ck["calibration"] = {"temperature": 2.5, "arg_threshold": 0.7, "min_residues": 50,
                         "validation": {"ece": 0.01}}
    torch.save(ck, tmp_path / "best.pt")
    out = tmp_path / "model.pt"
    assert export_cmd.main(["--checkpoint", str(tmp_path), "--out", str(out)]) == 0
    art, meta = _load(out)
    assert meta["calibration"] == {"temperature": 2.5, "temperature_in_logits": True,
                                   "min_residues": 50, "arg_threshold": 0.7,
                                   "validation": {"ece": 0.01}}
    tokens = alphabet.batch_encode(["MKTAYIAKQRQ", "GHW"])
    with torch.no_grad():
        assert (art(tokens) - eager(tokens) / 2.5).abs().max().item() < 1e-5
