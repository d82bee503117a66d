"""Hostile and unusual callers against the real server: each gets its documented status, and the
server stays healthy and answers the next normal request correctly."""

from __future__ import annotations

import shutil
import threading
import time

import grpc
import pytest

from conftest import SAMPLE_SEQUENCES, TEST_MODEL, Server
from argserve.v1 import argserve_pb2, argserve_pb2_grpc
from argserve_client import ArgServeClient

LIMIT = 256 * 1024


def request(*pairs) -> argserve_pb2.ClassifyRequest:
    return argserve_pb2.ClassifyRequest(sequences=[argserve_pb2.Sequence(id=i, residues=r) for i, r in pairs])


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("bad"), f"--max_message_bytes={LIMIT}", "--max_sequences_per_request=100000",
               "--max_queue_size=200000", "--max_stream_in_flight=64").wait_ready()
    yield s
    s.kill()


@pytest.fixture()
def stub(server):
    channel = grpc.insecure_channel(server.target, options=[("grpc.max_send_message_length", -1)])
    yield argserve_pb2_grpc.ArgClassifierStub(channel)
    channel.close()


def still_serving(stub) -> None:
    """The next normal request is answered in full and in order."""
    response = stub.Classify(request(*SAMPLE_SEQUENCES), timeout=60)
    assert [p.id for p in response.predictions] == [i for i, _ in SAMPLE_SEQUENCES]
    assert all(abs(sum(s.probability for s in p.scores) - 1) < 1e-5 for p in response.predictions)


def test_100k_residue_sequence_is_rejected_at_once(stub):
    start = time.monotonic()
    with pytest.raises(grpc.RpcError) as error:
        stub.Classify(request(("huge", "M" * 100_000)), timeout=30)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "100000 residues, more than the model's maximum of 1022" in error.value.details()
    assert time.monotonic() - start < 5
    still_serving(stub)


def test_100k_tiny_sequences_in_one_request(stub):
    pairs = [(f"t{i}", "MKV") for i in range(100_000)]
    big = request(*pairs)
    assert big.ByteSize() > LIMIT  # Refused by size before any work.
    with pytest.raises(grpc.RpcError) as error:
        stub.Classify(big, timeout=60)
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # The same count in pieces the size limit allows: all answered, in order.
    answered = []
    for k in range(0, 100_000, 10_000):
        response = stub.Classify(request(*pairs[k:k + 10_000]), timeout=300)
        answered += [p.id for p in response.predictions]
    assert answered == [i for i, _ in pairs]
    still_serving(stub)


def test_message_exactly_at_and_just_over_the_size_limit(stub):
    def sized(total: int) -> argserve_pb2.ClassifyRequest:
        # Pad one id until the serialized request has exactly `total` bytes.
        r = request(("x", "MKLV"))
        r.sequences[0].id = "x" * (total - r.ByteSize())
        while r.ByteSize() != total:
            r.sequences[0].id = "x" * (len(r.sequences[0].id) - (r.ByteSize() - total))
        return r

    at_limit = sized(LIMIT)
    assert at_limit.ByteSize() == LIMIT
    assert len(stub.Classify(at_limit, timeout=30).predictions) == 1
    with pytest.raises(grpc.RpcError) as error:
        stub.Classify(sized(LIMIT + 1), timeout=30)
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    still_serving(stub)


def test_non_utf8_and_control_bytes_in_ids(server):
    # Raw bytes on the wire: protobuf strings must be UTF-8, so gRPC's message parser refuses the
    # request before argserve sees it (gRPC 1.51's callback API answers UNIMPLEMENTED for a
    # message it cannot parse); a valid UTF-8 id with control characters is escaped in the error.
    channel = grpc.insecure_channel(server.target)
    raw = channel.unary_unary("/argserve.v1.ArgClassifier/Classify")
    bad_id = b"\xff\xfe"
    sequence = b"\x0a" + bytes([len(bad_id)]) + bad_id + b"\x12\x04MKLV"
    message = b"\x0a" + bytes([len(sequence)]) + sequence
    with pytest.raises(grpc.RpcError) as error:
        raw(message, timeout=30)
    assert error.value.code() in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.INTERNAL,
                                  grpc.StatusCode.INVALID_ARGUMENT)
    stub = argserve_pb2_grpc.ArgClassifierStub(channel)
    with pytest.raises(grpc.RpcError) as error:
        stub.Classify(request(("ok", "MK"), ("bell\x07\nid", "MK1")), timeout=30)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "sequence 'bell\\x07\\x0aid' (#2)" in error.value.details()
    still_serving(stub)
    channel.close()


def test_stream_client_that_never_reads_does_not_hurt_others(server, stub):
    channel = grpc.insecure_channel(server.target)
    greedy = argserve_pb2_grpc.ArgClassifierStub(channel)
    sent = 0
    stop = threading.Event()

    def messages():
        nonlocal sent
        for k in range(10_000):
            if stop.is_set():
                return
            sent += 1
            yield argserve_pb2.ClassifyStreamRequest(
                sequences=[argserve_pb2.Sequence(id=f"{k}:{i}", residues="MKLVAAGGST" * 10) for i in range(16)])

    call = greedy.ClassifyStream(messages(), timeout=120)  # Never read.
    time.sleep(3)
    # The server stopped reading this stream (flow control), so the sender is stuck far below 10k.
    assert sent < 10_000
    depth = float([line for line in server.metrics().splitlines() if line.startswith("argserve_queue_depth")][0]
                  .split()[-1])
    assert depth <= 64 + 16
    still_serving(stub)
    stop.set()
    call.cancel()
    channel.close()


def test_client_disconnecting_mid_stream(server, stub):
    channel = grpc.insecure_channel(server.target)
    other = argserve_pb2_grpc.ArgClassifierStub(channel)
    gate = threading.Event()

    def messages():
        for k in range(50):
            yield argserve_pb2.ClassifyStreamRequest(
                sequences=[argserve_pb2.Sequence(id=f"{k}:{i}", residues="MKLVAAGG" * 20) for i in range(8)])
        gate.wait(30)

    call = other.ClassifyStream(messages(), timeout=60)
    got = 0
    for response in call:
        got += len(response.predictions)
        if got >= 40:
            break
    channel.close()  # Gone without a goodbye.
    gate.set()
    time.sleep(1)
    assert got >= 40
    still_serving(stub)
    client = ArgServeClient(server.target)
    assert client.healthy()
    client.close()


def test_model_file_removed_or_corrupted_after_start_does_not_matter(tmp_path):
    model = tmp_path / "model.pt"
    shutil.copy(TEST_MODEL, model)
    s = Server(tmp_path, model=str(model)).wait_ready()
    try:
        channel = grpc.insecure_channel(s.target)
        stub = argserve_pb2_grpc.ArgClassifierStub(channel)
        before = stub.Classify(request(*SAMPLE_SEQUENCES), timeout=60)
        model.write_bytes(b"garbage" * 100)
        after_corrupt = stub.Classify(request(*SAMPLE_SEQUENCES), timeout=60)
        model.unlink()
        after_removal = stub.Classify(request(*SAMPLE_SEQUENCES), timeout=60)
        assert before == after_corrupt == after_removal
        channel.close()
    finally:
        s.kill()
