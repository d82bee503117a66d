"""The shipped default model: its model.json follows the contract; served by the real server, its
reference set (every labelled ResFinder ARG) decides the example ARGs, and neither the call with
evidence nor the model alone calls an example non-ARG an ARG (examples/proteins.fasta holds proteins
of the homology-aware test split, never seen in pretraining or fine-tuning)."""

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


def classify_examples(tmp_path: Path, *flags: str) -> list[dict]:
    s = Server(tmp_path, *flags, model=str(DEFAULT_MODEL)).wait_ready()
    try:
        result = run_cli("classify", "--target", s.target, "--top-k", "0", str(EXAMPLES))
        assert result.returncode == 0, result.stderr.decode()
        rows = list(csv.DictReader(io.StringIO(result.stdout.decode()), delimiter="\t"))
    finally:
        s.kill()
    assert [r["id"] for r in rows] == list(expected_classes())
    for r in rows:
        assert abs(sum(float(x.rsplit(":", 1)[1]) for x in r["top_k"].split(",")) - 1) < 2e-3
    return rows


def test_shipped_reference_set_decides_the_example_args(tmp_path):
    expected = expected_classes()
    rows = classify_examples(tmp_path)
    args = [r for r in rows if expected[r["id"]] != "nonarg"]
    assert len(args) >= 8
    for r in args:
        # A ResFinder id is <gene>_<variant>_<accession>: the protein is its own nearest reference.
        assert (r["tier"], r["reference_id"]) == ("reference", r["id"]), r
        assert float(r["identity"]) == 100 and r["predicted_class"] == expected[r["id"]]
    assert all(r["is_arg"] == "false" for r in rows if expected[r["id"]] == "nonarg")


def test_model_alone_calls_no_example_non_arg_an_arg(tmp_path):
    expected = expected_classes()
    rows = classify_examples(tmp_path, "--evidence=false")
    assert all(r["tier"] == "model" and r["reference_id"] == "" for r in rows)
    assert all(r["is_arg"] == "false" for r in rows if expected[r["id"]] == "nonarg")
