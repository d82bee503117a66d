"""End to end: the real server and client on a real exported model."""

from __future__ import annotations

import csv
import gzip
import io
import json

import grpc
import numpy as np
import pytest
import torch

from conftest import (SAMPLE_SEQUENCES, TEST_MODEL, Server, assert_same_calls, many_sequences, model_metadata,
                      parse_metrics, run_cli, write_fasta)
from argserve.v1 import argserve_pb2, argserve_pb2_grpc


def direct_probabilities(records) -> np.ndarray:
    """The model's own outputs, tokenized per docs/model-artifact.md, one sequence at a time."""
    meta = model_metadata()
    alphabet = meta["alphabet"]
    special = meta["special_tokens"]
    module = torch.jit.load(TEST_MODEL)
    rows = []
    with torch.inference_mode():
        for _, residues in records:
            residues = residues.upper().removesuffix("*")
            tokens = [special["cls"]] + [alphabet.index(c) for c in residues] + [special["eos"]]
            logits = module(torch.tensor([tokens], dtype=torch.int64))
            rows.append(torch.softmax(logits.float(), dim=1)[0].numpy())
    return np.stack(rows)


def read_tsv(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text), delimiter="\t"))


def scores_of(row: dict, classes: list[str]) -> np.ndarray:
    table = dict(item.rsplit(":", 1) for item in row["top_k"].split(","))
    return np.array([float(table[c]) for c in classes])


def test_cli_classifies_fasta_with_correct_ids_count_and_probabilities(server, tmp_path):
    fasta = write_fasta(tmp_path / "in.fasta", SAMPLE_SEQUENCES)
    result = run_cli("classify", "--target", server.target, "--top-k", "0", str(fasta))
    assert result.returncode == 0, result.stderr.decode()
    rows = read_tsv(result.stdout.decode())
    assert [r["id"] for r in rows] == [i for i, _ in SAMPLE_SEQUENCES]
    classes = model_metadata()["classes"]
    expected = direct_probabilities(SAMPLE_SEQUENCES)
    for row, want in zip(rows, expected):
        got = scores_of(row, classes)
        assert got.sum() == pytest.approx(1.0, abs=1e-3)  # TSV rounds to 4 decimals.
        assert row["model_class"] == classes[int(want.argmax())]
        np.testing.assert_allclose(got, want, atol=1e-4)
        assert row["length"] == str(len(dict(SAMPLE_SEQUENCES)[row["id"]].removesuffix("*")))


def test_unary_and_stream_equal_the_model_within_1e5(server):
    expected = direct_probabilities(SAMPLE_SEQUENCES)
    classes = model_metadata()["classes"]
    channel = grpc.insecure_channel(server.target)
    stub = argserve_pb2_grpc.ArgClassifierStub(channel)
    sequences = [argserve_pb2.Sequence(id=i, residues=s) for i, s in SAMPLE_SEQUENCES]
    response = stub.Classify(argserve_pb2.ClassifyRequest(sequences=sequences), timeout=60)
    assert [p.id for p in response.predictions] == [i for i, _ in SAMPLE_SEQUENCES]

    def check(prediction, want):
        got = np.array([dict((s.class_name, s.probability) for s in prediction.scores)[c] for c in classes])
        np.testing.assert_allclose(got, want, atol=1e-5)
        assert got.sum() == pytest.approx(1.0, abs=1e-5)
        assert prediction.predicted_class == classes[int(want.argmax())]
        assert prediction.is_arg == (prediction.predicted_class != "nonarg")

    for prediction, want in zip(response.predictions, expected):
        check(prediction, want)

    # Two messages on one stream; each answered with its own results, in order.
    requests = [argserve_pb2.ClassifyStreamRequest(sequences=sequences[:2]),
                argserve_pb2.ClassifyStreamRequest(sequences=sequences[2:])]
    streamed = {}
    for message in stub.ClassifyStream(iter(requests), timeout=60):
        for p in message.predictions:
            assert p.status.code == 0, p.status.message
            streamed[p.id] = p
    assert sorted(streamed) == sorted(i for i, _ in SAMPLE_SEQUENCES)
    for (ident, _), want in zip(SAMPLE_SEQUENCES, expected):
        check(streamed[ident], want)
    channel.close()


def test_output_formats_agree(server, tmp_path):
    fasta = write_fasta(tmp_path / "in.fasta", SAMPLE_SEQUENCES)
    tsv = read_tsv(run_cli("classify", "--target", server.target, str(fasta)).stdout.decode())
    jsonl_out = run_cli("classify", "--target", server.target, "--format", "jsonl", str(fasta))
    assert jsonl_out.returncode == 0
    jsonl = [json.loads(line) for line in jsonl_out.stdout.decode().splitlines()]
    out = tmp_path / "out.json"
    assert run_cli("classify", "--target", server.target, "--format", "json", "-o", str(out), str(fasta)).returncode == 0
    document = json.loads(out.read_text())
    assert document["model"]["name"] == "tiny-random"
    assert [p["id"] for p in document["predictions"]] == [r["id"] for r in tsv] == [p["id"] for p in jsonl]
    for row, line, doc in zip(tsv, jsonl, document["predictions"]):
        assert row["predicted_class"] == line["predicted_class"] == doc["predicted_class"]
        assert len(line["top_k"]) == 3  # the default --top-k
        assert float(row["probability"]) == pytest.approx(line["probability"], abs=1e-4)


def test_gzip_stdin_and_seq_inputs(server, tmp_path):
    plain = write_fasta(tmp_path / "in.fasta", SAMPLE_SEQUENCES)
    packed = tmp_path / "in.fasta.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    from_file = run_cli("classify", "--target", server.target, str(plain)).stdout
    from_gz = run_cli("classify", "--target", server.target, str(packed))
    from_stdin = run_cli("classify", "--target", server.target, input=plain.read_bytes())
    from_dash = run_cli("classify", "--target", server.target, "-", input=packed.read_bytes())
    assert from_gz.returncode == from_stdin.returncode == from_dash.returncode == 0
    expected = read_tsv(from_file.decode())
    assert len(expected) == len(SAMPLE_SEQUENCES)
    for other in (from_gz, from_stdin, from_dash):
        assert_same_calls(read_tsv(other.stdout.decode()), expected)
    seq = run_cli("classify", "--target", server.target, "--seq", "short=MKLVAAGGSTRE", "--format", "jsonl")
    assert seq.returncode == 0
    assert json.loads(seq.stdout)["id"] == "short"


def test_order_is_preserved_with_concurrency_and_streaming(server, tmp_path):
    records = many_sequences(600)
    fasta = write_fasta(tmp_path / "many.fasta", records)
    unary = run_cli("classify", "--target", server.target, "--concurrency", "8", "--batch-size", "7", str(fasta))
    stream = run_cli("classify", "--target", server.target, "--stream", "--batch-size", "13", str(fasta))
    assert unary.returncode == 0, unary.stderr.decode()
    assert stream.returncode == 0, stream.stderr.decode()
    ids = [i for i, _ in records]
    unary_rows = read_tsv(unary.stdout.decode())
    stream_rows = read_tsv(stream.stdout.decode())
    assert [r["id"] for r in unary_rows] == ids
    assert [r["id"] for r in stream_rows] == ids
    assert_same_calls(unary_rows, stream_rows)


def test_metrics_parse_and_count_traffic(server, tmp_path):
    before = parse_metrics(server.metrics())
    fasta = write_fasta(tmp_path / "in.fasta", SAMPLE_SEQUENCES)
    assert run_cli("classify", "--target", server.target, "--batch-size", "5", str(fasta)).returncode == 0
    after = parse_metrics(server.metrics())
    key = 'argserve_requests_total{code="OK",rpc="Classify"}'
    seq_key = 'argserve_sequences_total{code="OK",rpc="Classify"}'
    assert after[key] - before.get(key, 0) == 1
    assert after[seq_key] - before.get(seq_key, 0) == len(SAMPLE_SEQUENCES)
    assert after["argserve_batch_size_count"] > before.get("argserve_batch_size_count", 0)
    assert 0 < after["argserve_padding_efficiency"] <= 1
    assert any(k.startswith("argserve_model_info{") for k in after)


def test_info_and_health(server):
    info = run_cli("info", "--target", server.target)
    assert info.returncode == 0
    assert "tiny-random" in info.stdout.decode()
    assert "nonarg" in info.stdout.decode()
    as_json = run_cli("info", "--target", server.target, "--format", "json")
    assert json.loads(as_json.stdout)["format"] == "argserve-model/1"
    health = run_cli("health", "--target", server.target)
    assert health.returncode == 0
    assert health.stdout.decode().strip() == "SERVING"
    service = run_cli("health", "--target", server.target, "--service", "argserve.v1.ArgClassifier")
    assert service.returncode == 0


def test_two_servers_share_a_comma_separated_target(tmp_path):
    a = Server(tmp_path / "a").wait_ready()
    b = Server(tmp_path / "b").wait_ready()
    try:
        fasta = write_fasta(tmp_path / "many.fasta", many_sequences(200))
        target = f"ipv4:127.0.0.1:{a.grpc_port},127.0.0.1:{b.grpc_port}"
        result = run_cli("classify", "--target", target, "--batch-size", "10", "--concurrency", "4", str(fasta))
        assert result.returncode == 0, result.stderr.decode()
        assert len(read_tsv(result.stdout.decode())) == 200
        key = 'argserve_sequences_total{code="OK",rpc="Classify"}'
        served_a = parse_metrics(a.metrics()).get(key, 0)
        served_b = parse_metrics(b.metrics()).get(key, 0)
        assert served_a > 0 and served_b > 0
        assert served_a + served_b == 200
    finally:
        a.kill()
        b.kill()
