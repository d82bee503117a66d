"""argserve server behaviour: validation, limits, overload, deadlines, health and graceful drain."""

from __future__ import annotations

import os
import re
import signal
import socket
import threading
import time
from pathlib import Path

import grpc
import pytest

from conftest import SAMPLE_SEQUENCES, TEST_MODEL, Server, many_sequences, parse_metrics
from argserve.v1 import argserve_pb2, argserve_pb2_grpc
from argserve_client import ArgServeClient


def request(*pairs, top_k: int = 0) -> argserve_pb2.ClassifyRequest:
    return argserve_pb2.ClassifyRequest(sequences=[argserve_pb2.Sequence(id=i, residues=r) for i, r in pairs],
                                        options=argserve_pb2.ClassifyOptions(top_k=top_k))


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("limited"), "--max_sequences_per_request=50",
               f"--max_message_bytes={64 * 1024}").wait_ready()
    yield s
    s.kill()


@pytest.fixture()
def stub(limited):
    channel = grpc.insecure_channel(limited.target)
    yield argserve_pb2_grpc.ArgClassifierStub(channel)
    channel.close()


@pytest.mark.parametrize("pairs, message", [
    ([], "request has no sequences"),
    ([("a", "")], "sequence 'a' (#1): empty sequence"),
    ([("a", "MK"), ("", "MK")], "sequence #2 has an empty id"),
    ([("a", "MK"), ("b", "MK"), ("a", "ML")], "duplicate sequence id 'a' (sequences #1 and #3)"),
    ([("a", "MK"), ("b", "MKJL")], "sequence 'b' (#2): invalid character 'J' at position 3"),
    ([("a", "MK*L")], "sequence 'a' (#1): internal stop codon '*' at position 3"),
    ([("a", "MK L")], "sequence 'a' (#1): invalid character ' ' (space) at position 3"),
    ([("bad\xffid", "MK\x00")], "sequence 'bad\\xc3\\xbfid' (#1): invalid character \\x00 at position 3"),
    ([("long", "M" * 1023)], "sequence 'long' (#1): 1023 residues, more than the model's maximum of 1022"),
    ([(f"s{i}", "MK") for i in range(51)], "request has 51 sequences, more than the limit of 50"),
])
def test_invalid_requests_are_named_precisely(stub, pairs, message):
    with pytest.raises(grpc.RpcError) as error:
        stub.Classify(request(*pairs), timeout=30)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in error.value.details()


def test_message_size_limit(stub):
    just_under = request(("a", "M" * 1000), *[(f"s{i}", "MKLV" * 200) for i in range(40)])
    assert just_under.ByteSize() < 64 * 1024
    assert len(stub.Classify(just_under, timeout=60).predictions) == 41
    over = request(*[(f"s{i}", "MKLV" * 400) for i in range(49)])
    assert over.ByteSize() > 64 * 1024
    with pytest.raises(grpc.RpcError) as error:
        stub.Classify(over, timeout=30)
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # The server is still fine.
    assert len(stub.Classify(request(*SAMPLE_SEQUENCES), timeout=30).predictions) == len(SAMPLE_SEQUENCES)


def test_stream_reports_bad_sequences_per_sequence_and_carries_on(stub):
    messages = [argserve_pb2.ClassifyStreamRequest(sequences=[argserve_pb2.Sequence(id="ok1", residues="MKLV"),
                                                              argserve_pb2.Sequence(id="bad", residues="MKJ"),
                                                              argserve_pb2.Sequence(id="ok1", residues="MK")]),
                argserve_pb2.ClassifyStreamRequest(sequences=[argserve_pb2.Sequence(id="ok2", residues="MSTN")])]
    got = [p for m in stub.ClassifyStream(iter(messages), timeout=30) for p in m.predictions]
    by_id = {}
    for p in got:
        by_id.setdefault(p.id, []).append(p)
    assert by_id["ok1"][0].status.code == 0 and by_id["ok1"][0].predicted_class
    assert by_id["ok1"][1].status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "duplicate sequence id 'ok1'" in by_id["ok1"][1].status.message
    assert by_id["bad"][0].status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "invalid character 'J' at position 3" in by_id["bad"][0].status.message
    assert by_id["ok2"][0].status.code == 0


def test_truncate_policy_flags_the_result(tmp_path):
    s = Server(tmp_path, "--long_sequences=truncate").wait_ready()
    try:
        with ArgServeClient(s.target) as client:
            result = client.classify([("long", "MKLV" * 300), ("short", "MKLV")])
        assert result[0].truncated and result[0].length == 1200
        assert not result[1].truncated
        assert client is not None
    finally:
        s.kill()


def test_overload_is_rejected_quickly_and_accepted_work_completes(tmp_path):
    # A tiny queue and a long batching delay: the queue fills, the rest is refused at once.
    s = Server(tmp_path, "--max_queue_size=40", "--max_sequences_per_request=20", "--max_batch_size=1",
               "--warmup_batches=0").wait_ready()
    try:
        channel = grpc.insecure_channel(s.target)
        stub = argserve_pb2_grpc.ArgClassifierStub(channel)
        records = many_sequences(20 * 30, seed=3)
        outcomes: list[tuple[str, float, int]] = []
        lock = threading.Lock()

        def call(k: int) -> None:
            start = time.monotonic()
            try:
                response = stub.Classify(request(*records[k * 20:(k + 1) * 20]), timeout=120)
                code, n = "OK", len(response.predictions)
            except grpc.RpcError as error:
                code, n = error.code().name, 0
            with lock:
                outcomes.append((code, time.monotonic() - start, n))

        threads = [threading.Thread(target=call, args=(k,)) for k in range(30)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=180)
        assert not any(t.is_alive() for t in threads), "a call hung"
        codes = [c for c, _, _ in outcomes]
        assert set(codes) <= {"OK", "RESOURCE_EXHAUSTED"}
        assert codes.count("RESOURCE_EXHAUSTED") > 0 and codes.count("OK") > 0
        assert all(n == 20 for c, _, n in outcomes if c == "OK")
        rejected_latency = max(t for c, t, _ in outcomes if c == "RESOURCE_EXHAUSTED")
        assert rejected_latency < 5.0
        metrics = parse_metrics(s.metrics())
        assert metrics['argserve_requests_total{code="RESOURCE_EXHAUSTED",rpc="Classify"}'] == codes.count(
            "RESOURCE_EXHAUSTED")
        channel.close()
    finally:
        s.kill()


def test_deadline_shorter_than_queue_wait_is_not_computed(tmp_path):
    s = Server(tmp_path, "--max_batch_size=1", "--warmup_batches=0").wait_ready()
    try:
        channel = grpc.insecure_channel(s.target)
        stub = argserve_pb2_grpc.ArgClassifierStub(channel)
        long_records = [(f"l{i}", "MKLV" * 250) for i in range(200)]
        # Fill the queue with slow work, then send a request that cannot make its deadline.
        background = stub.Classify.future(request(*long_records), timeout=300)
        time.sleep(0.2)
        with pytest.raises(grpc.RpcError) as error:
            stub.Classify(request(*[(f"x{i}", "MKLV" * 100) for i in range(20)]), timeout=0.3)
        assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert len(background.result().predictions) == 200

        def dropped() -> float:
            metrics = parse_metrics(s.metrics())
            return sum(metrics.get(f'argserve_sequences_dropped_total{{reason="{r}"}}', 0)
                       for r in ("DEADLINE_EXCEEDED", "CANCELLED"))

        # The late items sit behind the long ones (older first), so they are dropped just after.
        deadline = time.monotonic() + 30
        while dropped() < 20 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert dropped() == 20  # None of the late request's sequences reached the model.
        assert parse_metrics(s.metrics())["argserve_batch_size_count"] == 200
        channel.close()
    finally:
        s.kill()


def test_sigterm_drains_health_goes_not_serving_and_nothing_is_lost(tmp_path):
    s = Server(tmp_path, "--shutdown_delay=1s", "--max_batch_size=4", "--warmup_batches=0").wait_ready()
    client = ArgServeClient(s.target, retries=0)
    assert client.healthy() and client.healthy("argserve.v1.ArgClassifier")
    channel = grpc.insecure_channel(s.target)
    stub = argserve_pb2_grpc.ArgClassifierStub(channel)
    records = many_sequences(400, seed=5)
    futures = [stub.Classify.future(request(*records[k * 40:(k + 1) * 40]), timeout=120) for k in range(10)]
    time.sleep(0.3)
    s.process.send_signal(signal.SIGTERM)
    time.sleep(0.4)
    assert not client.healthy()  # NOT_SERVING during the shutdown delay
    for future in futures:  # Every request accepted before SIGTERM is answered in full.
        assert len(future.result().predictions) == 40
    assert s.process.wait(timeout=60) == 0
    assert "draining" in s.logs() and "stopped" in s.logs()
    channel.close()
    client.close()


def busy_port() -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock, sock.getsockname()[1]


def run_server(*args: str) -> "subprocess.CompletedProcess":
    import subprocess
    from conftest import BIN_DIR
    return subprocess.run([str(BIN_DIR / "argserve"), "--metrics_address=", *args], capture_output=True, timeout=120)


def test_missing_and_corrupt_models_fail_fast_with_one_line(tmp_path):
    missing = run_server(f"--model={tmp_path / 'none.pt'}")
    assert missing.returncode != 0
    lines = missing.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and str(tmp_path / "none.pt") in lines[0] and "cannot be opened" in lines[0]
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(Path(TEST_MODEL).read_bytes()[:5000])
    result = run_server(f"--model={corrupt}")
    assert result.returncode != 0
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and str(corrupt) in lines[0]


def test_busy_port_and_bad_flags_fail_fast(tmp_path):
    sock, port = busy_port()
    try:
        result = run_server(f"--model={TEST_MODEL}", f"--address=127.0.0.1:{port}")
        assert result.returncode != 0
        assert f"cannot listen on '127.0.0.1:{port}'" in result.stderr.decode()
        result = run_server(f"--model={TEST_MODEL}", "--address=127.0.0.1:0", f"--metrics_address=127.0.0.1:{port}")
        assert result.returncode != 0
        assert "metrics" in result.stderr.decode() and "Address already in use" in result.stderr.decode()
    finally:
        sock.close()
    assert "--long_sequences must be" in run_server(f"--model={TEST_MODEL}", "--long_sequences=maybe").stderr.decode()
    assert run_server(f"--model={TEST_MODEL}", "--max_batch_size=0").returncode != 0
    assert run_server("--no_such_flag").returncode != 0


@pytest.mark.parametrize("flags, workers, intra_op", [
    ((), os.cpu_count(), 1),  # fp32 on CPU: one worker per core, one thread each
    (("--workers=3",), 3, 1),
    (("--workers=1", "--intra_op_threads=0"), 1, os.cpu_count()),
    (("--precision=bf16", "--intra_op_threads=0"), os.cpu_count(), 1),  # bf16 too: forwards side by side
])
def test_thread_layout_defaults_are_applied_and_logged(tmp_path, flags, workers, intra_op):
    s = Server(tmp_path, *flags).wait_ready()
    try:
        loaded = next(line for line in s.logs().splitlines() if "model loaded" in line)
        assert f"workers={workers} " in loaded + " "
        assert f"intra_op_threads={intra_op} " in loaded + " "
        assert "blas_threads=1" in loaded
        assert "forwards=side_by_side" in loaded  # bf16 too, with Debian's oneDNN
        with ArgServeClient(s.target) as client:
            assert len(client.classify([("a", "MKLV"), ("b", "MKVLAG")])) == 2
    finally:
        s.kill()
    for flag in ("--workers", "--intra_op_threads", "--blas_threads"):
        assert f"{flag} must not be negative" in run_server(f"--model={TEST_MODEL}", f"{flag}=-1").stderr.decode()


def test_graph_passes_are_applied_logged_and_checked(tmp_path):
    records = many_sequences(30)
    results = {}
    for flags, passes in (((), "none"), (("--graph_passes=freeze",), "freeze"), (("--graph_passes=optimize",), "optimize")):
        s = Server(tmp_path, *flags).wait_ready()
        try:
            loaded = next(line for line in s.logs().splitlines() if "model loaded" in line)
            assert f"graph_passes={passes} " in loaded + " "
            with ArgServeClient(s.target) as client:
                results[passes] = client.classify(records, top_k=0)
        finally:
            s.kill()
    # The passes change how the forward runs, not what it computes.
    for passes in ("freeze", "optimize"):
        for got, expected in zip(results[passes], results["none"]):
            assert got.id == expected.id and got.predicted_class == expected.predicted_class
            assert [c for c, _ in got.scores] == [c for c, _ in expected.scores]
            assert [p for _, p in got.scores] == pytest.approx([p for _, p in expected.scores], abs=1e-5)
    result = run_server(f"--model={TEST_MODEL}", "--graph_passes=fold")
    assert result.returncode != 0
    assert "graph passes must be none, freeze or optimize, not 'fold'" in result.stderr.decode()


@pytest.mark.parametrize("flags, expected", [((), 1024), (("--max_batch_tokens=5000",), 5000)])
def test_cpu_batches_hold_at_most_1024_tokens_unless_told(tmp_path, flags, expected):
    s = Server(tmp_path, *flags).wait_ready()
    try:
        # 40 sequences at once: however they are batched, each answer comes back.
        with ArgServeClient(s.target) as client:
            records = many_sequences(40)
            assert [r.id for r in client.classify(records)] == [rid for rid, _ in records]
        # Logged just after the port file that wait_ready() reads, so looked up after a call.
        serving = next(line for line in s.logs().splitlines() if "msg=serving " in line)
        assert f"max_batch_tokens={expected} " in serving + " "
        # Every batch held at most the budget (one longer sequence alone may exceed it).
        metrics = parse_metrics(s.metrics())
        batches = metrics["argserve_batch_size_count"]
        computed = metrics['argserve_tokens_total{kind="computed"}']
        assert batches >= 1 and computed <= batches * max(expected, 242)
    finally:
        s.kill()
    assert "--max_batch_tokens must not be negative" in run_server(
        f"--model={TEST_MODEL}", "--max_batch_tokens=-1").stderr.decode()


def test_logged_allocator_is_the_one_in_use_with_its_release_default(tmp_path):
    s = Server(tmp_path).wait_ready()
    try:
        loaded = next(line for line in s.logs().splitlines() if "model loaded" in line)
        maps = Path(f"/proc/{s.process.pid}/maps").read_text()
    finally:
        s.kill()
    allocator = re.search(r"allocator=(\S+)", loaded).group(1)
    interval = re.search(r"memory_release_interval=(\S+)", loaded).group(1)
    # jemalloc releases pages by itself; glibc's arenas are trimmed every second.
    assert (allocator, interval) in {("jemalloc", "0"), ("glibc", "1s")}, loaded
    assert ("libjemalloc" in maps) == (allocator == "jemalloc")


def test_memory_release_interval_flag(tmp_path):
    # 1ms: memory is released after nearly every batch, which must not disturb the answers.
    s = Server(tmp_path, "--memory_release_interval=1ms").wait_ready()
    try:
        assert "memory_release_interval=1ms" in s.logs()
        with ArgServeClient(s.target) as client:
            records = many_sequences(40)
            assert [r.id for r in client.classify(records)] == [rid for rid, _ in records]
    finally:
        s.kill()
    message = run_server(f"--model={TEST_MODEL}", "--memory_release_interval=-1s").stderr.decode()
    assert "--memory_release_interval must not be negative" in message
