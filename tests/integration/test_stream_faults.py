"""Streams that end badly, against the real server: cancelled while the server has paused their
reads, a client killed with SIGKILL, shutdown with such streams open. None may outlive its call."""

from __future__ import annotations

import gc
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc

from conftest import Server, parse_metrics
from argserve.v1 import argserve_pb2, argserve_pb2_grpc

IN_FLIGHT = 64
LONG = 1000  # residues; many of them keep the model busy for seconds


def long_message(n: int, seed: int) -> argserve_pb2.ClassifyStreamRequest:
    rng = random.Random(seed)
    return argserve_pb2.ClassifyStreamRequest(sequences=[
        argserve_pb2.Sequence(id=f"s{i}", residues="".join(rng.choice("ACDEFGHIKLMNPQRSTVWY")
                                                           for _ in range(LONG)))
        for i in range(n)])


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def resident_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))


def wait_until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def stream_counts(s: Server) -> dict[str, float]:
    m = parse_metrics(s.metrics())
    return {code: m.get(f'argserve_requests_total{{code="{code}",rpc="ClassifyStream"}}', 0.0)
            for code in ("OK", "CANCELLED", "DEADLINE_EXCEEDED", "UNAVAILABLE")}


CANCELLING_CLIENT = """
import sys, time, grpc
sys.path[:0] = sys.argv[3:]
from argserve.v1 import argserve_pb2_grpc
from test_stream_faults import IN_FLIGHT, long_message
message = long_message(3 * IN_FLIGHT, seed=1)  # more than may be in flight: reads pause
for k in range(int(sys.argv[2])):
    channel = grpc.insecure_channel(sys.argv[1])  # one connection each, as separate clients
    call = argserve_pb2_grpc.ArgClassifierStub(channel).ClassifyStream(iter([message]), timeout=60)
    time.sleep(0.05 if k % 2 else 0.0)
    call.cancel()
    channel.close()
"""


def test_cancelled_streams_with_paused_reads_end_and_free_their_connections(tmp_path):
    s = Server(tmp_path, f"--max_stream_in_flight={IN_FLIGHT}", "--warmup_batches=0").wait_ready()
    try:
        before = open_fds(s.process.pid)
        rss_before = resident_bytes(s.process.pid)
        # 1,000 streams from clients that then exit: Python's gRPC keeps some cancelled calls'
        # connections open while its process lives, which says nothing about the server.
        clients, rounds = 10, 100
        for _ in range(clients):
            subprocess.run([sys.executable, "-c", CANCELLING_CLIENT, s.target, str(rounds),
                            str(Path(__file__).parent)], check=True, timeout=300)

        # Every stream the server saw cancelled has ended (a call cancelled before it reached the
        # server is in neither count).
        def seen() -> float:
            return parse_metrics(s.metrics()).get(
                'argserve_calls_cancelled_total{rpc="ClassifyStream"}', 0.0)

        # Half the calls are cancelled at once, and may never reach a loaded server.
        assert wait_until(lambda: seen() >= clients * rounds / 4 and
                          sum(stream_counts(s).values()) == seen(), 60), (seen(), stream_counts(s))
        assert stream_counts(s)["CANCELLED"] == seen()
        # Every connection is closed again (a stuck stream held its connection for good), and the
        # memory the streams took is given back.
        assert wait_until(lambda: open_fds(s.process.pid) <= before + 2, 30), \
            (before, open_fds(s.process.pid))
        assert wait_until(lambda: resident_bytes(s.process.pid) < rss_before + 64 * 2**20, 30), \
            (rss_before / 2**20, resident_bytes(s.process.pid) / 2**20)
    finally:
        s.kill()


CLIENT = """
import sys, grpc
sys.path[:0] = sys.argv[2:]
from argserve.v1 import argserve_pb2, argserve_pb2_grpc
from test_stream_faults import long_message
stub = argserve_pb2_grpc.ArgClassifierStub(grpc.insecure_channel(sys.argv[1]))
call = stub.ClassifyStream(iter([long_message(192, 2)] * 3), timeout=600)
print("sent", flush=True)
for _ in call:
    pass
"""


def test_sigkilled_streaming_client_and_sigterm_with_streams_open(tmp_path):
    grace = 2.0
    s = Server(tmp_path, f"--max_stream_in_flight={IN_FLIGHT}", "--warmup_batches=0",
               f"--grace_period={grace:g}s").wait_ready()
    try:
        here = Path(__file__).parent
        paths = [str(here)]  # PYTHONPATH (inherited) has the rest
        client = subprocess.Popen([sys.executable, "-c", CLIENT, s.target, *paths],
                                  stdout=subprocess.PIPE, env=dict(os.environ))
        assert client.stdout.readline().strip() == b"sent"
        time.sleep(0.5)
        client.send_signal(signal.SIGKILL)
        client.wait()
        assert wait_until(lambda: sum(stream_counts(s).values()) == 1, 60), stream_counts(s)
        assert stream_counts(s)["OK"] == 0  # a vanished client is not an OK call

        # Streams open with paused reads when SIGTERM comes: the server is gone within the grace.
        channel = grpc.insecure_channel(s.target)
        stub = argserve_pb2_grpc.ArgClassifierStub(channel)
        calls = [stub.ClassifyStream(iter([long_message(3 * IN_FLIGHT, seed=3 + k)]), timeout=600)
                 for k in range(3)]
        time.sleep(0.5)
        start = time.monotonic()
        s.process.send_signal(signal.SIGTERM)
        assert s.process.wait(timeout=60) == 0
        assert time.monotonic() - start < grace + 1.5, time.monotonic() - start
        for call in calls:
            call.cancel()
        channel.close()
    finally:
        s.kill()
