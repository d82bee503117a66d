"""argserve-cli: exit codes and messages for usage errors, bad input and unreachable servers."""

from __future__ import annotations

import socket

import pytest

from conftest import SAMPLE_SEQUENCES, run_cli, write_fasta

EXIT_USAGE, EXIT_BAD_INPUT, EXIT_UNAVAILABLE = 2, 3, 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("args, message", [
    ([], "missing subcommand"),
    (["frobnicate"], "unknown subcommand 'frobnicate'"),
    (["classify", "--bogus"], "unknown option '--bogus'"),
    (["classify", "--top-k", "x"], "--top-k needs a whole number"),
    (["classify", "--format", "xml", "--seq", "MK"], "--format must be tsv, jsonl, json or hamronization"),
    (["classify", "--target"], "--target needs a value"),
])
def test_usage_errors_exit_2(args, message):
    result = run_cli(*args)
    assert result.returncode == EXIT_USAGE
    assert message in result.stderr.decode()
    assert result.stdout == b""


def test_help_exits_0():
    result = run_cli("--help")
    assert result.returncode == 0
    assert "Exit codes" in result.stdout.decode()


@pytest.mark.parametrize("text, message", [
    ("MKLV\n>a\nMK\n", "in.fa:1: sequence data before the first '>' header"),
    (">a\nMK\n>empty\n>c\nMK\n", "in.fa:3: record 'empty' has no sequence"),
    (">a\nMKLV\nMK1V\n", "in.fa:3: record 'a': invalid character '1' at residue 7"),
    (">a\nMK*LV\n", "in.fa:2: record 'a': internal stop codon '*' at residue 3"),
    (">a\nMK\x00\x13\x88junk\n", "in.fa:2: binary data"),
    (">a\nMK\n>a\nML\n", "in.fa:3: duplicate id 'a' (first seen at in.fa:1)"),
    (">a\xff\nMK\n", "in.fa:1: id is not valid UTF-8 (byte \\xff at column 3)"),
])
def test_malformed_fasta_is_reported_before_sending(tmp_path, text, message):
    path = tmp_path / "in.fa"
    path.write_bytes(text.encode("latin-1"))
    # The target is unreachable: a bad-input exit proves nothing was sent first. --strict: a bad
    # record ends the run (without it, such a record gets its status in the output).
    result = run_cli("classify", "--strict", "--target", f"127.0.0.1:{free_port()}", "--retries", "0",
                     str(path))
    assert result.returncode == EXIT_BAD_INPUT, result.stderr.decode()
    assert message.replace("in.fa", str(path)) in result.stderr.decode()
    assert result.stdout == b""


def test_unreachable_server_exits_4_and_writes_no_output(tmp_path):
    fasta = write_fasta(tmp_path / "in.fasta", SAMPLE_SEQUENCES)
    out = tmp_path / "out.tsv"
    result = run_cli("classify", "--target", f"127.0.0.1:{free_port()}", "--retries", "1", "--deadline", "5",
                     "-o", str(out), str(fasta))
    assert result.returncode == EXIT_UNAVAILABLE
    assert "cannot reach the server" in result.stderr.decode()
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [fasta]  # No temporary file left behind either.
    health = run_cli("health", "--target", f"127.0.0.1:{free_port()}", "--deadline", "3")
    assert health.returncode == EXIT_UNAVAILABLE


def test_missing_input_file_exits_3(tmp_path):
    result = run_cli("classify", str(tmp_path / "nope.fa"))
    assert result.returncode == EXIT_BAD_INPUT
    assert "nope.fa: cannot open" in result.stderr.decode()


def test_residues_outside_the_models_alphabet_are_reported_before_classifying(server, tmp_path):
    # 'J' is a letter, so the file reads; the model's alphabet (from GetModelInfo) refuses it.
    path = write_fasta(tmp_path / "in.fa", [("ok", "MKLV"), ("a", "MKJV")])
    result = run_cli("classify", "--strict", "--target", server.target, str(path))
    assert result.returncode == EXIT_BAD_INPUT, result.stderr.decode()
    assert f"{path}:3: record 'a': invalid character 'J' at residue 3; the model accepts " \
           "ACDEFGHIKLMNPQRSTVWYXBUZO" in result.stderr.decode()
    assert result.stdout == b""
