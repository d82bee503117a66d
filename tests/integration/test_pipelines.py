"""Pipeline inputs end to end: coding sequences, contigs (Prodigal), per-record outcomes, the
nucleotide refusal, empty input, gzip output, versions, and an install into a temporary prefix."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import BIN_DIR, TEST_MODEL, Server, assert_same_top_k, run_cli, write_fasta

SOURCE = Path(os.environ.get("ARGSERVE_SOURCE_DIR", "."))
RESFINDER = Path("/usr/share/resfinder/db")
SPACER = "TTAATTAATTAA" * 25  # stop codons in every frame, on both strands


def read_fasta(path: Path) -> dict[str, str]:
    out, name = {}, None
    for line in path.read_text().splitlines():
        if line.startswith(">"):
            name = line[1:].split()[0]
            out[name] = ""
        elif name:
            out[name] += line.strip()
    return out


def examples() -> list[tuple[str, str, str]]:
    """(id, protein, coding sequence) of the README examples' ARGs, CDS from ResFinder."""
    proteins = read_fasta(SOURCE / "examples/proteins.fasta")
    cds: dict[str, str] = {}
    for fsa in RESFINDER.glob("*.fsa"):
        cds.update({k: v.upper() for k, v in read_fasta(fsa).items() if k in proteins})
    return [(i, proteins[i], cds[i]) for i in proteins if i in cds]


def reverse_complement(dna: str) -> str:
    return dna[::-1].translate(str.maketrans("ACGT", "TGCA"))


def tsv(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text), delimiter="\t"))


def classify(server, *args: str, ok: int = 0) -> subprocess.CompletedProcess:
    result = run_cli("classify", "--target", server.target, "--top-k", "0", *args)
    assert result.returncode == ok, result.stderr.decode()
    return result


def test_coding_sequences_give_the_proteins_calls(server, tmp_path):
    genes = examples()
    assert len(genes) >= 8
    proteins = write_fasta(tmp_path / "p.faa", [(i, p) for i, p, _ in genes])
    cds = write_fasta(tmp_path / "g.ffn", [(i, c) for i, _, c in genes])
    by_protein = tsv(classify(server, str(proteins)).stdout.decode())
    by_cds = tsv(classify(server, "--input", "cds", str(cds)).stdout.decode())
    assert [r["id"] for r in by_cds] == [i for i, _, _ in genes]
    for a, b in zip(by_protein, by_cds):
        assert (a["predicted_class"], a["length"], a["reference_id"]) == \
            (b["predicted_class"], b["length"], b["reference_id"])
        assert_same_top_k(a["top_k"], b["top_k"])


def test_coding_sequence_problems_are_per_record(server, tmp_path):
    _, protein, cds = examples()[0]
    records = [("good", cds), ("frameshift", cds[:-1]), ("internal-stop", cds[:30] + "TAA" + cds[33:])]
    result = classify(server, "--input", "cds", str(write_fasta(tmp_path / "g.ffn", records)), ok=6)
    rows = {r["id"]: r for r in tsv(result.stdout.decode())}
    assert rows["good"]["status"] == "ok"
    assert "not a whole number of codons" in rows["frameshift"]["status"]
    assert "internal stop codon at codon 11" in rows["internal-stop"]["status"]
    assert b"2 of 3 records could not be classified" in result.stderr


def test_contigs_genes_are_prodigals_with_their_coordinates(server, tmp_path):
    genes = examples()
    (a_id, a_protein, a_cds), (b_id, b_protein, b_cds) = genes[0], genes[3]
    contig = SPACER + a_cds + SPACER + reverse_complement(b_cds) + SPACER
    fasta = write_fasta(tmp_path / "contigs.fna", [("contig1", contig)])
    rows = tsv(classify(server, "--input", "contigs", str(fasta)).stdout.decode())
    # Prodigal itself, run by hand, calls the same genes at the same places.
    subprocess.run(["prodigal", "-q", "-p", "meta", "-i", str(fasta), "-a", str(tmp_path / "own.faa"),
                    "-o", os.devnull], check=True)
    own = [line[1:].split(" # ") for line in (tmp_path / "own.faa").read_text().splitlines()
           if line.startswith(">")]
    assert [(r["id"], r["gene_start"], r["gene_end"], r["strand"]) for r in rows] == \
        [(h[0], h[1], h[2], "+" if h[3] == "1" else "-") for h in own]
    assert all(r["contig"] == "contig1" for r in rows)
    start_a = len(SPACER) + 1
    start_b = 2 * len(SPACER) + len(a_cds) + 1
    found_a = next(r for r in rows if int(r["gene_start"]) == start_a)
    found_b = next(r for r in rows if int(r["gene_end"]) == start_b + len(b_cds) - 1)
    assert found_a["strand"] == "+" and int(found_a["gene_end"]) == start_a + len(a_cds) - 1
    assert found_b["strand"] == "-" and int(found_b["gene_start"]) == start_b
    by_protein = {r["id"]: r for r in tsv(classify(
        server, str(write_fasta(tmp_path / "p.faa", [(a_id, a_protein), (b_id, b_protein)]))).stdout.decode())}
    assert_same_top_k(found_a["top_k"], by_protein[a_id]["top_k"])
    assert_same_top_k(found_b["top_k"], by_protein[b_id]["top_k"])
    assert found_a["reference_id"] == a_id and found_b["reference_id"] == b_id
    hamronized = tsv(classify(server, "--input", "contigs", "--format", "hamronization", str(fasta)).stdout.decode())
    for row in hamronized:
        assert row["input_sequence_id"] == "contig1" and row["strand_orientation"] in "+-"


def test_nucleotide_given_as_protein_is_refused_naming_the_record_and_flag(server, tmp_path):
    _, _, cds = examples()[0]
    fasta = write_fasta(tmp_path / "g.fasta", [("p1", "MKVLAAGIV" * 5), ("blaNDM-like", cds)])
    result = classify(server, str(fasta), ok=3)
    message = result.stderr.decode()
    assert "record 'blaNDM-like'" in message and "--input cds" in message and "--input contigs" in message
    assert result.stdout == b""


def test_bad_records_are_reported_and_the_rest_classified(server, tmp_path):
    records = [("ok1", "MKVLAAGIVALLLAAGCSS"), ("letter-j", "MKVJLL"), ("long", "MKVLAAGIVALLLAAGCSSWYR" * 50),
               ("ok2", "MSTNPKPQRKTKRNTNRR")]
    fasta = tmp_path / "mixed.faa"
    fasta.write_text("".join(f">{i}\n{s}\n" for i, s in records) + ">digits\nMK3V\n")
    result = classify(server, str(fasta), ok=6)
    rows = {r["id"]: r for r in tsv(result.stdout.decode())}
    assert list(rows) == ["ok1", "letter-j", "long", "ok2", "digits"]
    assert rows["ok1"]["status"] == rows["ok2"]["status"] == "ok"
    assert rows["ok1"]["predicted_class"] != ""
    assert "invalid character 'J' at residue 4" in rows["letter-j"]["status"]
    assert "1100 residues, more than the model's maximum of 1022" in rows["long"]["status"]
    assert "mixed.faa:10: record 'digits'" in rows["digits"]["status"]
    assert b"3 of 5 records could not be classified" in result.stderr
    # The stream reports the same records the same way.
    streamed = {r["id"]: r["status"] for r in tsv(classify(server, "--stream", str(fasta), ok=6).stdout.decode())}
    assert streamed == {i: r["status"] for i, r in rows.items()}
    # Truncation by request instead of rejection.
    truncated = {r["id"]: r for r in tsv(classify(server, "--long-sequences", "truncate", str(fasta), ok=6)
                                         .stdout.decode())}
    assert truncated["long"]["status"] == "ok" and truncated["long"]["truncated"] == "true"
    # --strict: the first bad record ends the run, nothing is written.
    strict = classify(server, "--strict", "-o", str(tmp_path / "out.tsv"), str(fasta), ok=3)
    assert b"record 'digits'" in strict.stderr and not (tmp_path / "out.tsv").exists()


def test_empty_input_gives_a_header_and_exit_zero(server, tmp_path):
    empty = tmp_path / "empty.faa"
    empty.write_text("")
    result = classify(server, str(empty))
    lines = result.stdout.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("id\tpredicted_class\t")
    assert classify(server, "--format", "jsonl", str(empty)).stdout == b""


def test_gz_output_is_gzip(server, tmp_path):
    out = tmp_path / "calls.tsv.gz"
    fasta = write_fasta(tmp_path / "p.faa", [("a", "MKVLAAGIVALLL"), ("b", "MSTNPKPQRKT")])
    classify(server, "-o", str(out), str(fasta))
    rows = tsv(gzip.decompress(out.read_bytes()).decode())
    assert [r["id"] for r in rows] == ["a", "b"]


def test_every_binary_prints_its_version_and_the_server_its_flags():
    cli = run_cli("--version")
    assert cli.returncode == 0 and cli.stdout.decode().startswith("argserve-cli 0.")
    server = subprocess.run([str(BIN_DIR / "argserve"), f"--model={TEST_MODEL}", "--version"],
                            capture_output=True, timeout=120)
    assert server.returncode == 0
    text = server.stdout.decode()
    assert text.startswith("argserve 0.") and "model tiny-random" in text
    helped = subprocess.run([str(BIN_DIR / "argserve"), "--help"], capture_output=True, timeout=60)
    assert b"--long_sequences" in helped.stdout + helped.stderr
    assert b"No flags matched" not in helped.stdout + helped.stderr
    tool = subprocess.run([str(BIN_DIR / "argserve-evidence"), "--version"], capture_output=True)
    assert tool.returncode == 0 and tool.stdout.decode().startswith("argserve-evidence 0.")


def test_installed_binaries_find_the_default_model_and_run(tmp_path):
    build = BIN_DIR.resolve().parent
    prefix = tmp_path / "prefix"
    subprocess.run(["cmake", "--install", str(build), "--prefix", str(prefix)], check=True,
                   capture_output=True, timeout=300)
    for name in ("argserve", "argserve-cli", "argserve-evidence"):
        assert (prefix / "bin" / name).is_file()
    version = subprocess.run([str(prefix / "bin/argserve"), "--version"], capture_output=True, timeout=120)
    assert str(prefix / "share/argserve/model/argserve-default.pt").encode() in version.stdout
    port_file = tmp_path / "ports"
    server = subprocess.Popen([str(prefix / "bin/argserve"), "--address=127.0.0.1:0", "--metrics_address=",
                               f"--port_file={port_file}", "--intra_op_threads=1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        import time
        deadline = time.monotonic() + 120
        while not (port_file.exists() and port_file.read_text().endswith("\n")):
            assert server.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        port = dict(x.split("=") for x in port_file.read_text().split())["grpc"]
        result = subprocess.run([str(prefix / "bin/argserve-cli"), "classify", "--target", f"127.0.0.1:{port}",
                                 "--format", "jsonl", str(SOURCE / "examples/proteins.fasta")],
                                capture_output=True, timeout=300)
        assert result.returncode == 0, result.stderr.decode()
        lines = [json.loads(line) for line in result.stdout.decode().splitlines()]
        assert len(lines) == 16 and lines[0]["versions"]["model"] == "argserve-default"
        client = subprocess.run(["/usr/bin/python3", "-c",
                                 "import argserve_client, argserve.v1.argserve_pb2 as p; print(p.ModelInfo)"],
                                env={**os.environ, "PYTHONPATH": str(prefix / "lib/python3/dist-packages")},
                                capture_output=True, timeout=60)
        assert client.returncode == 0, client.stderr.decode()
    finally:
        server.kill()
        server.wait()


def test_a_run_rides_out_a_server_restart_of_30_seconds(tmp_path):
    import socket
    import time
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    flags = (f"--address=127.0.0.1:{port}", "--max_batch_size=8")
    first = Server(tmp_path / "a", *flags).wait_ready()
    records = [(f"s{i}", "MKVLAAGIVALLLAAGCSSWYRHEDQNT"[: 10 + i % 18] * 8) for i in range(20000)]
    fasta = write_fasta(tmp_path / "in.faa", records)
    out = tmp_path / "calls.tsv"
    cli = subprocess.Popen([str(BIN_DIR / "argserve-cli"), "classify", "--target", f"127.0.0.1:{port}",
                            "--batch-size", "16", "--concurrency", "1", "-o", str(out), str(fasta)],
                           stderr=subprocess.PIPE)
    try:
        # Results go to a temporary file next to -o as they arrive.
        deadline = time.monotonic() + 60
        while not any(p.stat().st_size > 10000 for p in tmp_path.glob("calls.tsv.partial")):
            assert time.monotonic() < deadline and cli.poll() is None
            time.sleep(0.02)
        first.kill()  # Mid-run, without a goodbye.
        time.sleep(31)
        assert cli.poll() is None  # Still waiting for the server.
        second = Server(tmp_path / "b", *flags).wait_ready()
        try:
            assert cli.wait(timeout=300) == 0, cli.stderr.read().decode()
        finally:
            second.kill()
    finally:
        if cli.poll() is None:
            cli.kill()
    rows = tsv(out.read_text())
    assert [r["id"] for r in rows] == [i for i, _ in records]
    assert all(r["status"] == "ok" for r in rows)


def test_long_proteins_by_windows_take_their_best_window(server, tmp_path):
    import random
    rng = random.Random(4)
    protein = "".join(rng.choice("ACDEFGHIKLMNPQRSTVWY") for _ in range(2300))
    fasta = write_fasta(tmp_path / "long.faa", [("long", protein), ("short", protein[:300])])
    rows = {r["id"]: r for r in tsv(classify(server, "--long-sequences", "window", str(fasta)).stdout.decode())}
    assert rows["long"]["status"] == "ok" and rows["long"]["truncated"] == "false"
    # 1022-residue windows every 511: starts 0, 511, 1022, and 1278 (the last ends with the protein).
    assert rows["long"]["windows"] == "4" and rows["short"]["windows"] == "0"
    starts = [0, 511, 1022, 2300 - 1022]
    windows = write_fasta(tmp_path / "w.faa", [(f"w{s}", protein[s:s + 1022]) for s in starts])
    each = tsv(classify(server, str(windows)).stdout.decode())
    best = max(each, key=lambda r: float(r["arg_probability"]))
    assert float(rows["long"]["arg_probability"]) == pytest.approx(float(best["arg_probability"]), abs=2e-4)
    assert_same_top_k(rows["long"]["top_k"], best["top_k"])
    streamed = {r["id"]: r for r in tsv(classify(server, "--stream", "--long-sequences", "window",
                                                 str(fasta)).stdout.decode())}
    assert_same_top_k(streamed["long"]["top_k"], rows["long"]["top_k"])
    assert streamed["long"]["windows"] == "4"


def test_resume_continues_a_run_whose_server_died(tmp_path):
    import time
    records = [(f"s{i}", "MKVLAAGIVALLLAAGCSSWYRHEDQNT"[: 10 + i % 18] * 8) for i in range(20000)]
    fasta = write_fasta(tmp_path / "in.faa", records)
    out = tmp_path / "calls.tsv"
    first = Server(tmp_path / "a", "--max_batch_size=8").wait_ready()
    cli = subprocess.Popen([str(BIN_DIR / "argserve-cli"), "classify", "--target", first.target,
                            "--batch-size", "16", "--concurrency", "1", "--deadline", "3", "--retries", "0",
                            "-o", str(out), str(fasta)], stderr=subprocess.PIPE)
    partial = tmp_path / "calls.tsv.partial"
    deadline = time.monotonic() + 60
    while not (partial.exists() and partial.stat().st_size > 10000):
        assert time.monotonic() < deadline and cli.poll() is None
        time.sleep(0.02)
    first.kill()
    assert cli.wait(timeout=120) != 0
    assert b"--resume" in cli.stderr.read()
    assert not out.exists() and partial.exists()
    second = Server(tmp_path / "b").wait_ready()
    try:
        result = run_cli("classify", "--target", second.target, "--resume", "-o", str(out), str(fasta))
        assert result.returncode == 0, result.stderr.decode()
    finally:
        second.kill()
    done_before = int(result.stderr.decode().split(": ")[2].split()[0])
    assert 0 < done_before < len(records)
    rows = tsv(out.read_text())
    assert [r["id"] for r in rows] == [i for i, _ in records]  # Each once, in input order.
    assert not partial.exists()
    # --resume needs a file to continue.
    assert run_cli("classify", "--resume", str(fasta)).returncode == 2


def test_debian_package_holds_binaries_model_and_client_with_their_dependencies(tmp_path):
    build = BIN_DIR.resolve().parent
    subprocess.run(["cpack", "--config", str(build / "CPackConfig.cmake"), "-B", str(tmp_path)],
                   check=True, capture_output=True, timeout=600)
    deb = next(tmp_path.glob("argserve_*_amd64.deb"))
    files = subprocess.run(["dpkg-deb", "-c", str(deb)], check=True, capture_output=True).stdout.decode()
    for path in ("./usr/bin/argserve", "./usr/bin/argserve-cli", "./usr/bin/argserve-evidence",
                 "./usr/share/argserve/model/argserve-default.pt",
                 "./usr/lib/python3/dist-packages/argserve_client.py",
                 "./usr/lib/python3/dist-packages/argserve/v1/argserve_pb2.py"):
        assert path in files
    depends = subprocess.run(["dpkg-deb", "-f", str(deb), "Depends"], check=True,
                             capture_output=True).stdout.decode()
    for package in ("libtorch1.13", "libgrpc++1.51", "libparasail8", "libssw0",
                    "python3-grpcio"):
        assert package in depends
