"""The shipped default model: its model.json follows the contract, and served by the real server it
classifies held-out ARGs of the largest class correctly (examples/proteins.fasta holds proteins of
the homology-aware test split, never seen in pretraining or fine-tuning)."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from conftest import Server, model_metadata, run_cli

SOURCE = Path(os.environ.get("ARGSERVE_SOURCE_DIR", "."))
DEFAULT_MODEL = SOURCE / "model/default/argserve-default.pt"
EXAMPLES = SOURCE / "examples/proteins.fasta"
ESM_ALPHABET = ["<cls>", "<pad>", "<eos>", "<unk>", *"LAGVSERTIDPKQNFYMHWCXBUZO.-", "<null_1>", "<mask>"]


def expected_classes() -> dict[str, str]:
    return {line[1:].split()[0]: line.split("expected=")[1].split()[0]
            for line in EXAMPLES.read_text().splitlines() if line.startswith(">")}


def test_model_json_follows_the_contract():
    meta = model_metadata(str(DEFAULT_MODEL))
    for key in ("format", "name", "version", "classes", "nonarg_class", "alphabet", "special_tokens", "residues",
                "max_residues", "backbone"):
        assert key in meta, key
    assert meta["format"] == "argserve-model/1"
    assert meta["name"] == "argserve-default"
    assert meta["alphabet"] == ESM_ALPHABET
    assert meta["special_tokens"] == {"cls": 0, "pad": 1, "eos": 2, "unk": 3, "mask": 32}
    assert meta["nonarg_class"] == "nonarg" and meta["classes"][-1] == "nonarg"
    assert {"beta-lactam", "aminoglycoside", "tetracycline", "macrolide"} <= set(meta["classes"])
    assert meta["max_residues"] == 1022
    assert meta["backbone"]["architecture"] == "esm2"
    # Evaluation on both splits travels with the model.
    assert {"homology_split_40", "random_split"} <= set(meta["metrics"])


def test_served_default_model_calls_held_out_beta_lactamases_and_no_non_args(tmp_path):
    s = Server(tmp_path, model=str(DEFAULT_MODEL)).wait_ready()
    try:
        result = run_cli("classify", "--target", s.target, "--top-k", "0", str(EXAMPLES))
        assert result.returncode == 0, result.stderr.decode()
        rows = list(csv.DictReader(io.StringIO(result.stdout.decode()), delimiter="\t"))
        expected = expected_classes()
        assert [r["id"] for r in rows] == list(expected)
        betas = [r for r in rows if expected[r["id"]] == "beta-lactam"]
        assert len(betas) >= 4
        # Most held-out beta-lactamases are called so, and no held-out non-ARG is called an ARG.
        called = [r for r in betas if r["predicted_class"] == "beta-lactam" and r["is_arg"] == "true"]
        assert len(called) >= len(betas) - 1, betas
        assert all(r["is_arg"] == "false" for r in rows if expected[r["id"]] == "nonarg")
        for r in rows:
            assert abs(sum(float(x.rsplit(":", 1)[1]) for x in r["top_k"].split(",")) - 1) < 2e-3
    finally:
        s.kill()
