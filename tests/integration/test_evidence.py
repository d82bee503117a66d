"""Nearest-reference evidence end to end: the test model carries tests/data/reference-proteins.fasta
as its reference set; the server aligns every protein to it and every output format carries it."""

from __future__ import annotations

import csv
import io
import json
import random

import pytest

from conftest import Server, model_metadata, run_cli, write_fasta

SOURCE_FASTA = "tests/data/reference-proteins.fasta"


def references() -> list[tuple[str, str, str]]:
    """(id, class, residues) of the test model's reference set."""
    import os
    path = os.path.join(os.environ.get("ARGSERVE_SOURCE_DIR", "."), SOURCE_FASTA)
    out, header, seq = [], None, []
    for line in open(path):
        line = line.strip()
        if line.startswith(">"):
            if header:
                out.append((*header, "".join(seq)))
            header, seq = tuple(line[1:].split("|")), []
        elif line:
            seq.append(line)
    out.append((*header, "".join(seq)))
    return out


def shuffled(residues: str, seed: int) -> str:
    letters = list(residues)
    random.Random(seed).shuffle(letters)
    return "".join(letters)


def read_tsv(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text), delimiter="\t"))


@pytest.fixture(scope="module")
def queries(tmp_path_factory):
    """Copies and shuffles of four references whose class the model knows."""
    known = set(model_metadata()["classes"])
    refs = [r for r in references() if r[1] in known][:4]
    assert len(refs) == 4
    records = [(f"copy-{rid}", residues) for rid, _, residues in refs]
    records += [(f"shuffled-{rid}", shuffled(residues, i)) for i, (rid, _, residues) in enumerate(refs)]
    return write_fasta(tmp_path_factory.mktemp("evidence") / "queries.fasta", records), refs


def classify(server, fasta, fmt: str) -> str:
    result = run_cli("classify", "--target", server.target, "--format", fmt, str(fasta))
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def test_model_info_describes_the_reference_set(server):
    meta = model_metadata()
    result = run_cli("info", "--target", server.target, "--format", "json")
    assert result.returncode == 0, result.stderr.decode()
    assert meta["references"]["count"] == len(references())
    assert json.loads(result.stdout)["references"]["version"] == meta["references"]["version"]


def test_identical_protein_is_its_reference_and_shuffled_has_none(server, queries):
    fasta, refs = queries
    rows = {r["id"]: r for r in read_tsv(classify(server, fasta, "tsv"))}
    version = model_metadata()["references"]["version"]
    for rid, cls, _ in refs:
        row = rows[f"copy-{rid}"]
        assert row["reference_id"] == rid
        assert float(row["identity"]) == 100.0
        assert float(row["query_coverage"]) == 100.0
        assert float(row["reference_coverage"]) == 100.0
        assert row["tier"] == "reference"
        assert row["predicted_class"] == cls and row["is_arg"] == "true"
        assert row["reference_set"] == version
        shuffled_row = rows[f"shuffled-{rid}"]
        assert shuffled_row["reference_id"] == "" and shuffled_row["identity"] == ""
        assert shuffled_row["tier"] in ("model", "novel")
        assert shuffled_row["predicted_class"] == shuffled_row["model_class"]


def test_evidence_survives_every_output_format(server, queries):
    fasta, refs = queries
    rid, cls, residues = refs[0]
    lines = [json.loads(line) for line in classify(server, fasta, "jsonl").splitlines()]
    first = next(line for line in lines if line["id"] == f"copy-{rid}")
    assert first["nearest_reference"]["id"] == rid
    assert first["nearest_reference"]["identity"] == pytest.approx(100.0)
    assert first["nearest_reference"]["reference_length"] == len(residues)
    assert first["versions"]["reference_set_version"] == model_metadata()["references"]["version"]

    doc = json.loads(classify(server, fasta, "json"))
    assert doc["versions"]["model"] == model_metadata()["name"]
    same = next(p for p in doc["predictions"] if p["id"] == f"copy-{rid}")
    assert same["tier"] == "reference" and same["nearest_reference"]["gene"] == first["nearest_reference"]["gene"]

    table = read_tsv(classify(server, fasta, "hamronization"))
    # One row per protein called an ARG; the copies all are (their reference decides).
    found = {row["input_sequence_id"]: row for row in table}
    for rid, cls, residues in refs:
        row = found[f"copy-{rid}"]
        assert row["input_file_name"] == "queries"
        assert row["sequence_identity"] == "100.00" and row["coverage_percentage"] == "100.00"
        assert row["reference_accession"] == rid.rsplit("_", 1)[1]
        assert row["drug_class"] == cls and row["argserve_tier"] == "reference"
        assert row["analysis_software_name"] == "argserve" and row["analysis_software_version"]
        assert row["reference_database_version"] == model_metadata()["references"]["version"]
    assert all(row["argserve_tier"] in ("reference", "model", "novel") for row in table)


def test_reference_of_a_class_the_model_lacks_does_not_decide(server, tmp_path):
    known = set(model_metadata()["classes"])
    rid, cls, residues = next(r for r in references() if r[1] not in known)
    rows = read_tsv(classify(server, write_fasta(tmp_path / "q.fasta", [("x", residues)]), "tsv"))
    assert rows[0]["reference_id"] == rid and float(rows[0]["identity"]) == 100.0
    assert rows[0]["tier"] != "reference" and rows[0]["predicted_class"] == rows[0]["model_class"]


def test_evidence_can_be_switched_off(tmp_path, queries):
    fasta, refs = queries
    server = Server(tmp_path, "--evidence=false").wait_ready()
    try:
        rows = read_tsv(classify(server, fasta, "tsv"))
        assert all(r["reference_id"] == "" and r["tier"] == "model" for r in rows)
        assert all(r["predicted_class"] == r["model_class"] for r in rows)
    finally:
        server.kill()


def test_python_client_carries_the_evidence(server, queries):
    from argserve_client import ArgServeClient
    _, refs = queries
    rid, cls, residues = refs[1]
    with ArgServeClient(server.target) as client:
        same, other = client.classify([("same", residues), ("other", shuffled(residues, 9))])
    assert same.tier == "reference" and same.predicted_class == cls
    assert same.nearest_reference is not None and same.nearest_reference.id == rid
    assert same.nearest_reference.identity == pytest.approx(100.0)
    assert same.nearest_arg_reference is None  # the nearest is an ARG itself
    assert other.nearest_reference is None and other.tier in ("model", "novel")
