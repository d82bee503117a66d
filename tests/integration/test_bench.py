"""The benchmark tools: argserve-bench (load generator), argserve-raw-bench and bench/official_eager.py."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import BIN_DIR, TEST_MODEL, Server, many_sequences, model_metadata, write_fasta

SOURCE_DIR = Path(os.environ.get("ARGSERVE_SOURCE_DIR", "."))


def run_tool(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, timeout=timeout)


def test_raw_bench_packs_sorted_batches_and_reports_them(tmp_path):
    mixed = write_fasta(tmp_path / "mixed.faa", many_sequences(30))
    # 200 residues are 202 tokens: five fit in 1024 padded tokens, so 30 make 6 batches.
    equal = write_fasta(tmp_path / "equal.faa", [(f"e{i}", "ACDEFGHIKLMNPQRSTVWY" * 10) for i in range(10)])
    for fasta, batch, max_tokens, batches in ((mixed, 1, 1024, 30), (mixed, 8, 100000, 4),
                                              (equal, 64, 1024, 6)):
        out = tmp_path / f"raw-{batch}-{max_tokens}.json"
        result = run_tool(BIN_DIR / "argserve-raw-bench", f"--model={TEST_MODEL}", f"--fasta={fasta}",
                          "--sequences=30", f"--max_batch_size={batch}", f"--max_batch_tokens={max_tokens}",
                          "--workers=2", "--rounds=1", f"--json_out={out}")
        assert result.returncode == 0, result.stderr.decode()
        report = json.loads(out.read_text())
        assert (report["sequences"], report["batches"]) == (30, batches)
        assert (report["workers"], report["max_batch_size"], report["precision"]) == (2, batch, "fp32")
        # The server's load options unless told otherwise, so the two are compared like for like.
        assert (report["graph_passes"], report["grad_mode"], report["executor"]) == ("none", "inference", "profiling")
        assert "graph_passes=" not in result.stdout.decode()
        assert report["max_batch_tokens"] == max_tokens
        # Tokens add <cls> and <eos> to every sequence's residues.
        assert report["tokens_per_second"] > report["residues_per_second"] > 0
        assert report["allocator"] in ("jemalloc", "glibc")
        assert f"batch<={batch} " in result.stdout.decode()


def test_raw_bench_orders_and_load_options(tmp_path):
    # Lengths alternate short and long: batches in drawn order pad the short ones, sorted ones do not.
    alternating = [(f"s{i}", "ACDEFGHIKL" * (2 if i % 2 else 30)) for i in range(40)]
    fasta = write_fasta(tmp_path / "alternating.faa", alternating)
    efficiency = {}
    for order in ("sorted", "drawn"):
        out = tmp_path / f"{order}.json"
        result = run_tool(BIN_DIR / "argserve-raw-bench", f"--model={TEST_MODEL}", f"--fasta={fasta}",
                          "--sequences=40", "--max_batch_size=4", "--rounds=1", f"--order={order}",
                          f"--json_out={out}")
        assert result.returncode == 0, result.stderr.decode()
        report = json.loads(out.read_text())
        assert report["order"] == order
        efficiency[order] = report["padding_efficiency"]
        assert f"padding eff {efficiency[order]:.3f}" in result.stdout.decode()
    assert efficiency["sorted"] > 0.9 and efficiency["drawn"] < 0.7
    out = tmp_path / "frozen.json"
    result = run_tool(BIN_DIR / "argserve-raw-bench", f"--model={TEST_MODEL}", f"--fasta={fasta}",
                      "--sequences=8", "--rounds=1", "--graph_passes=optimize", "--grad_mode=no_grad",
                      "--executor=legacy", f"--json_out={out}")
    assert result.returncode == 0, result.stderr.decode()
    report = json.loads(out.read_text())
    assert (report["graph_passes"], report["grad_mode"], report["executor"]) == ("optimize", "no_grad", "legacy")
    assert "graph_passes=optimize, grad_mode=no_grad, executor=legacy" in result.stdout.decode()
    for flag, message in (("--order=random", "--order must be sorted or drawn"),
                          ("--graph_passes=fold", "graph passes must be none, freeze or optimize")):
        result = run_tool(BIN_DIR / "argserve-raw-bench", f"--model={TEST_MODEL}", f"--fasta={fasta}", flag)
        assert result.returncode == 2 and message in result.stderr.decode()


def test_raw_bench_refuses_input_it_cannot_use_instead_of_hanging(tmp_path):
    too_long = "M" * (model_metadata()["max_residues"] + 5)
    fasta = write_fasta(tmp_path / "long.faa", [("a", too_long), ("b", too_long)])
    result = run_tool(BIN_DIR / "argserve-raw-bench", f"--model={TEST_MODEL}", f"--fasta={fasta}",
                      "--sequences=5", timeout=60)
    assert result.returncode == 2
    assert str(fasta) in result.stderr.decode() and "max_residues" in result.stderr.decode()
    result = run_tool(BIN_DIR / "argserve-raw-bench", f"--model={TEST_MODEL}", f"--fasta={fasta}",
                      "--sequences=0")
    assert result.returncode == 2 and "--sequences" in result.stderr.decode()


def test_load_generator_measures_a_server_in_closed_and_open_loop(tmp_path):
    fasta = write_fasta(tmp_path / "p.faa", many_sequences(50))
    s = Server(tmp_path).wait_ready()
    try:
        common = [BIN_DIR / "argserve-bench", f"--target={s.target}", f"--metrics_url_port={s.metrics_port}",
                  f"--fasta={fasta}", "--warmup=0.5s", "--duration=2s"]
        out = tmp_path / "closed.json"
        result = run_tool(*common, "--mode=closed", "--concurrency=4", "--sequences_per_request=2",
                          f"--json_out={out}")
        assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
        closed = json.loads(out.read_text())
        assert closed["requests_ok"] > 0 and closed["codes"] == {"OK": closed["requests_ok"]}
        assert closed["sequences_per_second"] == pytest.approx(2 * closed["requests_ok"] / 2.0)
        latency = closed["latency_seconds"]
        assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]
        # Read from the server's /metrics over the measured window.
        assert closed["server_mean_batch_size"] >= 1
        assert 0 < closed["server_padding_efficiency"] <= 1

        out = tmp_path / "open.json"
        result = run_tool(*common, "--mode=open", "--rate=20", f"--json_out={out}")
        assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
        opened = json.loads(out.read_text())
        # Open loop: exactly the calls scheduled inside the 2 s window at 20/s, each answered.
        assert opened["codes"] == {"OK": 40} and opened["rate"] == 20
    finally:
        s.kill()


def test_closed_loop_throughput_obeys_littles_law_when_latency_is_long(tmp_path):
    # Each call waits out the server's 1 s batching delay (4 callers never fill a batch), so calls
    # finish in rounds about 1 s apart. 4 callers at a mean latency L complete 4 / L calls a second;
    # counting only calls that also started inside the 4 s window would report a quarter less.
    # Equal lengths put every call in one length bucket: calls of different buckets would drift
    # apart, and a call joining a bucket whose oldest call had already waited would wait less.
    fasta = write_fasta(tmp_path / "p.faa", [(f"e{i}", "ACDEFGHIKLMNPQRSTVWY" * 5) for i in range(20)])
    s = Server(tmp_path, "--max_queue_delay=1s").wait_ready()
    try:
        out = tmp_path / "closed.json"
        result = run_tool(BIN_DIR / "argserve-bench", f"--target={s.target}", f"--fasta={fasta}",
                          "--mode=closed", "--concurrency=4", "--warmup=0.5s", "--duration=4s",
                          f"--json_out={out}")
        assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
        report = json.loads(out.read_text())
        mean = report["latency_seconds"]["mean"]
        assert 1.0 <= mean < 1.5
        assert report["latency_seconds"]["p50"] <= report["latency_seconds"]["max"]
        assert report["sequences_per_second"] * mean == pytest.approx(4, rel=0.1)
    finally:
        s.kill()


def test_load_generator_counts_failures_by_status_code(tmp_path):
    fasta = write_fasta(tmp_path / "p.faa", many_sequences(5))
    with socket.socket() as sock:  # a port with nothing listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = tmp_path / "down.json"
    result = run_tool(BIN_DIR / "argserve-bench", f"--target=127.0.0.1:{port}", f"--fasta={fasta}",
                      "--mode=open", "--rate=10", "--warmup=0s", "--duration=1s", f"--json_out={out}")
    assert result.returncode == 1  # not every call succeeded
    report = json.loads(out.read_text())
    assert report["requests_ok"] == 0 and report["codes"] == {"UNAVAILABLE": 10}
    assert "UNAVAILABLE=10" in result.stdout.decode()


@pytest.fixture(scope="module")
def official_eager():
    sys.path[:0] = [str(SOURCE_DIR / "bench"), str(SOURCE_DIR / "training" / "tests"),
                    str(SOURCE_DIR / "training")]
    import official_eager as module
    return module


def test_official_eager_batches_follow_the_token_budget(official_eager):
    tokens = [[0] + [4] * n + [2] for n in (5, 40, 12, 30, 7, 90, 3)]
    batches = official_eager.batches_by_tokens(tokens, toks_per_batch=100)
    assert sorted(len(t) for t in tokens) == [int(n) for b in batches for n in b.ne(1).sum(1)]
    assert all(b.numel() <= 100 or b.shape[0] == 1 for b in batches)
    # Token lengths 5, 7, 9, 14 padded to 14 (56); 32, 42 padded to 42 (84); 92 alone.
    assert [b.shape[0] for b in batches] == [4, 2, 1]


def test_official_eager_reports_throughput(tmp_path):
    fasta = write_fasta(tmp_path / "p.faa", many_sequences(6))
    out = tmp_path / "eager.json"
    env = dict(os.environ, PYTHONPATH=f"{SOURCE_DIR / 'training'}:{SOURCE_DIR / 'training' / 'tests'}")
    result = subprocess.run([sys.executable, str(SOURCE_DIR / "bench" / "official_eager.py"), f"--fasta={fasta}",
                             "--sequences=6", "--layers=2", "--embed-dim=32", "--heads=4", "--rounds=1",
                             f"--json-out={out}"], capture_output=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr.decode()
    report = json.loads(out.read_text())
    assert report["sequences"] == 6 and report["best_tokens_per_second"] > 0
    assert report["best_tokens_per_second"] == max(report["batch 1"], report["toks_per_batch 4096"])


def test_genome_summary_holds_calls_against_resfinder_like_hits(tmp_path):
    header = ["id", "predicted_class", "is_arg", "tier", "arg_probability", "reference_gene",
              "identity", "status"]
    rows = [
        # ResFinder-like hit, called in its class.
        ["g1:a", "beta-lactam", "true", "reference", "0.99", "blaKPC-2", "100.00", "ok"],
        # ResFinder-like hit called in another class: a miss and an extra call.
        ["g1:b", "phenicol", "true", "reference", "0.98", "floR", "93.00", "ok"],
        # A distant hit only (below 90%): an extra call by the homolog tier.
        ["g1:c", "quinolone", "true", "homolog", "0.20", "OqxB", "27.10", "ok"],
        # ResFinder-like by identity but over too little of the reference: not truth.
        ["g2:d", "nonarg", "false", "model", "0.01", "", "", "ok"],
        # ResFinder-like, not called.
        ["g2:e", "nonarg", "false", "reference", "0.02", "sul1", "95.00", "ok"],
        ["g2:f", "nonarg", "false", "model", "0.00", "", "", "ok"],
    ]
    calls = tmp_path / "calls.tsv"
    calls.write_text("\n".join("\t".join(r) for r in [header] + rows) + "\n")
    diamond = tmp_path / "diamond.tsv"
    diamond.write_text("g1:a\tblaKPC-2_1_AY034847|beta-lactam\t100\t293\t1\t293\n"
                       "g1:b\tcatA1_1_V00622|tetracycline\t95\t200\t1\t200\n"
                       "g1:b\tfloR_2_AF118107|phenicol\t93\t404\t1\t404\n"
                       "g1:c\tOqxB_1_EU370913|quinolone\t27\t1050\t1\t1000\n"
                       "g2:d\tsul1_2_U12338|sulphonamide\t99\t279\t1\t100\n"
                       "g2:e\tsul1_2_U12338|sulphonamide\t95\t279\t279\t10\n")
    result = subprocess.run([sys.executable, str(SOURCE_DIR / "bench" / "genome_calls_summary.py"),
                             "--calls", str(calls), "--diamond", str(diamond), "--model", "m.pt",
                             "--seconds", "2", "--choice", "g2"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    table = {line.split(" | ")[0].strip("| "): line.strip("| ").split(" | ")
             for line in result.stdout.splitlines() if line.startswith("| g") or
             line.startswith("| all")}
    # genome, proteins, truth, called, agree, other homolog, other reference, missed, DIAMOND any
    assert table["g1"] == ["g1", "3", "2", "3", "1", "1", "1", "1", "3"]
    assert table["g2"] == ["g2", "3", "1", "0", "0", "0", "0", "1", "2"]
    assert table["all"] == ["all", "6", "3", "3", "1", "1", "1", "2", "5"]
    # g1:b is ResFinder-like (catA1) but called phenicol: a wrong class, not a call beyond them.
    assert "Calls beyond the ResFinder-like ones: 1 of 3 other proteins (33.33%)" in result.stdout
    assert "Genomes the rule was chosen on (g2): 0 of 2 other proteins called ARG (0.00%)" in \
        result.stdout
    assert "Genomes held out (g1): 1 of 1 other proteins called ARG (100.00%)" in result.stdout
    assert "6 proteins classified in 2 s (3 proteins/s, the CLI's defaults); 0 not" in result.stdout
    assert "g1:c: quinolone (homolog, P(ARG) 0.20, nearest OqxB 27%; OqxB_1_EU370913 27%)" in \
        result.stdout
