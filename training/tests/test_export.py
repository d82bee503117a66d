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
from argtrain.evaluate import load_artifact
from argtrain.evidence_tool import HEADER as EVIDENCE_HEADER
from argtrain.fasta import write_fasta
from fakeevidence import fake_tool
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
    assert meta["head"] == {"type": "mean-pool-linear", "embedding_dim": 32, "pooling": "mean"}


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
                         "max_residues": 1022, "validation": {"ece": 0.01}}
    torch.save(ck, tmp_path / "best.pt")
    out = tmp_path / "model.pt"
    assert export_cmd.main(["--checkpoint", str(tmp_path), "--out", str(out)]) == 0
    art, meta = _load(out)
    assert meta["calibration"] == {"temperature": 2.5, "temperature_in_logits": True,
                                   "min_residues": 50, "arg_threshold": 0.7,
                                   "max_residues": 1022, "validation": {"ece": 0.01}}
    tokens = alphabet.batch_encode(["MKTAYIAKQRQ", "GHW"])
    with torch.no_grad():
        assert (art(tokens) - eager(tokens) / 2.5).abs().max().item() < 1e-5


def _load_with_references(path):
    files = {"model.json": "", "references.tsv": ""}
    torch.jit.load(str(path), _extra_files=files)
    return json.loads(files["model.json"]), files["references.tsv"].decode("utf-8")


def _reference_fasta(path: Path, records) -> Path:
    write_fasta(path, records)
    return path


RANDOM = ["--random-init", "--num-layers", "1", "--embed-dim", "16", "--attention-heads", "2",
          "--check-sequences", "2"]


def test_export_stores_the_reference_set(tmp_path, capsys):
    a = _reference_fasta(tmp_path / "a.fasta", [
        ("blaOXA-48_1_AY236073|beta-lactam", "mrvlalsavf*"), ("sp|P00001|X_HUMAN", "MKKKK"),
        ("aac(6')-Ib-cr_1_DQ303918|aminoglycoside", "MSNAKTKL")])
    b = _reference_fasta(tmp_path / "b.fasta", [("blaCTX-M-15_23_NG_047525|beta-lactam", "MVKK"),
                                                ("n2|nonarg", "MAAAA")])
    out = tmp_path / "m.pt"
    assert export_cmd.main([*RANDOM, "--out", str(out), "--references", str(a), str(b),
                            "--reference-min-identity", "0.9", "--max-evalue", "1e-10"]) == 0
    meta, text = _load_with_references(out)
    assert text == ("id\tgene\taccession\tclass\tresidues\n"
                    "blaOXA-48_1_AY236073\tblaOXA-48\tAY236073\tbeta-lactam\tMRVLALSAVF\n"
                    "aac(6')-Ib-cr_1_DQ303918\taac(6')-Ib-cr\tDQ303918\taminoglycoside\tMSNAKTKL\n"
                    "blaCTX-M-15_23_NG_047525\tblaCTX-M-15\tNG_047525\tbeta-lactam\tMVKK\n")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert meta["references"] == {"file": "references.tsv", "count": 3, "sha256": digest,
                                  "source": f"{a}, {b}", "version": digest[:12]}
    assert meta["evidence"] == {"reference_min_identity": 0.9, "reference_min_coverage": 0.6,
                                "max_evalue": 1e-10}
    assert "reference set: 3 proteins" in capsys.readouterr().out
    _, meta2, text2 = load_artifact(out)
    assert meta2 == meta and text2 == text


def test_export_stores_the_p_arg_steps_of_the_rule(tmp_path):
    a = _reference_fasta(tmp_path / "a.fasta", [("blaOXA-48_1_AY236073|beta-lactam", "MRVLAL")])
    out = tmp_path / "m.pt"
    assert export_cmd.main([*RANDOM, "--out", str(out), "--references", str(a),
                            "--reference-min-identity", "0.35",
                            "--homolog-min-arg-probability", "0.05",
                            "--novel-min-arg-probability", "0.99"]) == 0
    meta, _ = _load_with_references(out)
    assert meta["evidence"] == {"reference_min_identity": 0.35, "reference_min_coverage": 0.6,
                                "max_evalue": 1e-05, "homolog_min_arg_probability": 0.05,
                                "novel_min_arg_probability": 0.99}
    assert export_cmd.main([*RANDOM, "--out", str(out), "--references", str(a),
                            "--novel-min-arg-probability", "1.5"]) != 0


def test_export_adds_the_non_args_that_align_to_an_arg(tmp_path, capsys):
    arg = _reference_fasta(tmp_path / "a.fasta", [("blaOXA-48_1_AY236073|beta-lactam", "MRVLAL"),
                                                  ("house|nonarg", "MKKAAA")])
    more = _reference_fasta(tmp_path / "b.fasta", [("far|nonarg", "MWWWW"),
                                                   ("tet_1_X|tetracycline", "MTTT")])
    # The aligner finds 'house' near the OXA reference, 'far' near nothing.
    tool = fake_tool(tmp_path, f"{EVIDENCE_HEADER}\nhouse\tblaOXA-48_1_AY236073\tblaOXA-48\t"
                               "AY236073\tbeta-lactam\t0.41\t0.9\t0.95\t150\t62.1\t1e-20"
                               + "\t" * 10 + "\n")
    out = tmp_path / "m.pt"
    assert export_cmd.main([*RANDOM, "--out", str(out), "--references", str(arg),
                            "--nonarg-references", str(arg), str(more),
                            "--evidence-tool", str(tool), "--max-evalue", "1e-6"]) == 0
    meta, text = _load_with_references(out)
    assert text.splitlines()[1:] == ["blaOXA-48_1_AY236073\tblaOXA-48\tAY236073\tbeta-lactam\tMRVLAL",
                                     "house\thouse\t\tnonarg\tMKKAAA"]
    assert meta["references"]["count"] == 2
    assert meta["references"]["source"] == f"{arg}; non-ARG relatives from {arg}, {more}"
    # Only the ARGs are searched, only the non-ARGs are queries, with the export's E-value limit.
    seen = (tmp_path / "seen_references.tsv").read_text()
    assert "blaOXA-48_1_AY236073" in seen and "house" not in seen and "tet_1_X" not in seen
    queries = (tmp_path / "seen_queries.fasta").read_text()
    assert ">house" in queries and ">far" in queries and "blaOXA" not in queries
    assert "1e-06" in (tmp_path / "argv.txt").read_text().split("\n")
    assert "1 non-ARG references" in capsys.readouterr().err


def test_export_non_arg_references_need_the_aligner(tmp_path, capsys):
    fasta = _reference_fasta(tmp_path / "r.fasta", [("a|beta-lactam", "MK"), ("n|nonarg", "MV")])
    assert export_cmd.main([*RANDOM, "--out", str(tmp_path / "m.pt"), "--references", str(fasta),
                            "--nonarg-references", str(fasta),
                            "--evidence-tool", str(tmp_path / "missing")]) == 1
    assert "--nonarg-references needs" in capsys.readouterr().err


def test_export_without_references_has_null_keys(tmp_path):
    out = tmp_path / "m.pt"
    assert export_cmd.main([*RANDOM, "--out", str(out)]) == 0
    meta, text = _load_with_references(out)
    assert meta["references"] is None and meta["evidence"] is None and text == ""


@pytest.mark.parametrize("records, message", [
    ([("x_1_A|beta-lactam", "MK"), ("x_1_A|aminoglycoside", "MV")],
     "'x_1_A' occurs more than once"),
    ([("e|beta-lactam", "*")], "'e' has no residues"),
    ([("n|nonarg", "MK")], "no ARG records"),
])
def test_export_reference_errors(tmp_path, capsys, records, message):
    fasta = _reference_fasta(tmp_path / "r.fasta", records)
    out = tmp_path / "m.pt"
    assert export_cmd.main([*RANDOM, "--out", str(out), "--references", str(fasta)]) == 1
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_export_rejects_bad_thresholds(tmp_path, capsys):
    fasta = _reference_fasta(tmp_path / "r.fasta", [("a|beta-lactam", "MK")])
    assert export_cmd.main([*RANDOM, "--out", str(tmp_path / "m.pt"), "--references", str(fasta),
                            "--reference-min-coverage", "60"]) == 1
    assert "reference_min_coverage must be a fraction" in capsys.readouterr().err


def test_export_checks_that_extra_files_round_trip(tmp_path, monkeypatch):
    model = export.random_model(1, 16, 2, len(CLASSES), seed=0)
    meta = export.model_json(name="t", version="0", classes=CLASSES, nonarg_class="nonarg",
                             max_residues=64, config=model.backbone.config, source="random",
                             lora=None, training=None, metrics=None)
    export.export_model(model, meta, str(tmp_path / "ok.pt"), 2, extra_files={"x.tsv": "é\n"})
    monkeypatch.setattr(export, "_as_text", lambda data: "changed")
    with pytest.raises(RuntimeError, match="x.tsv did not round-trip"):
        export.export_model(model, meta, str(tmp_path / "bad.pt"), 2, extra_files={"x.tsv": "a"})


def test_export_serves_at_the_length_the_checkpoint_was_calibrated_at(tmp_path):
    _finetune_checkpoint(tmp_path / "best.pt")
    ck = torch.load(tmp_path / "best.pt")
    ck["max_residues"] = 256  # the training crops
    ck["calibration"] = {"temperature": 1.0, "arg_threshold": 0.7, "min_residues": 50,
                         "max_residues": 700, "validation": {}}
    torch.save(ck, tmp_path / "best.pt")
    assert export_cmd.main(["--checkpoint", str(tmp_path), "--out", str(tmp_path / "a.pt")]) == 0
    assert _load(tmp_path / "a.pt")[1]["max_residues"] == 700
    del ck["calibration"]["max_residues"]
    torch.save(ck, tmp_path / "best.pt")
    assert export_cmd.main(["--checkpoint", str(tmp_path), "--out", str(tmp_path / "b.pt")]) == 0
    assert _load(tmp_path / "b.pt")[1]["max_residues"] == 256


def test_export_takes_a_non_arg_shared_by_two_files_once(tmp_path):
    arg = _reference_fasta(tmp_path / "a.fasta", [("blaOXA-48_1_AY236073|beta-lactam", "MRVLAL"),
                                                  ("house|nonarg", "MKKAAA")])
    pool = _reference_fasta(tmp_path / "pool.fasta", [("house|nonarg", "MKKAAA")])
    tool = fake_tool(tmp_path, f"{EVIDENCE_HEADER}\nhouse\tblaOXA-48_1_AY236073\tblaOXA-48\t"
                               "AY236073\tbeta-lactam\t0.41\t0.9\t0.95\t150\t62.1\t1e-20"
                               + "\t" * 10 + "\n")
    out = tmp_path / "m.pt"
    assert export_cmd.main([*RANDOM, "--out", str(out), "--references", str(arg),
                            "--nonarg-references", str(arg), str(pool),
                            "--evidence-tool", str(tool)]) == 0
    assert (tmp_path / "seen_queries.fasta").read_text().count(">house") == 1
    assert _load_with_references(out)[0]["references"]["count"] == 2
    # The same id for another protein is an error, not a silent choice.
    clash = _reference_fasta(tmp_path / "clash.fasta", [("house|nonarg", "MKKAAC")])
    assert export_cmd.main([*RANDOM, "--out", str(out), "--references", str(arg),
                            "--nonarg-references", str(arg), str(clash),
                            "--evidence-tool", str(tool)]) == 1
