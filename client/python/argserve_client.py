"""A small Python client for argserve (Snakemake rules, notebooks, pipeline glue).

Uses Debian's python3-grpcio and the stubs generated at build time into build/python
(put that folder and this one on PYTHONPATH). Example:

    from argserve_client import ArgServeClient
    with ArgServeClient("127.0.0.1:50051") as client:
        for p in client.classify([("seq1", "MKLV..."), ("seq2", "MSTN...")]):
            print(p.id, p.predicted_class, p.probability)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Sequence

import grpc

from argserve.v1 import argserve_pb2, argserve_pb2_grpc

RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)
HEALTH_CHECK = "/grpc.health.v1.Health/Check"


TIERS = {0: "", 1: "reference", 2: "model", 3: "novel"}


@dataclass
class ReferenceHit:
    """The nearest reference of a protein (docs/evidence.md); percentages 0-100."""
    id: str
    gene: str
    accession: str
    class_name: str
    identity: float
    query_coverage: float
    reference_coverage: float
    score: int
    bit_score: float
    evalue: float

    @classmethod
    def from_proto(cls, r: argserve_pb2.ReferenceHit) -> "ReferenceHit":
        return cls(r.id, r.gene, r.accession, r.class_name, r.identity_percent,
                   r.query_coverage_percent, r.reference_coverage_percent, r.score, r.bit_score,
                   r.evalue)


@dataclass
class Prediction:
    id: str
    predicted_class: str
    probability: float
    is_arg: bool
    length: int
    truncated: bool
    scores: list[tuple[str, float]] = field(default_factory=list)
    arg_probability: float = 0.0  # P(ARG) = 1 - P(nonarg)
    below_min_residues: bool = False  # too short for a call: never an ARG
    tier: str = ""  # "reference", "model" or "novel": what decided the call
    model_class: str = ""  # the model's own call
    model_is_arg: bool = False
    nearest_reference: ReferenceHit | None = None

    @classmethod
    def from_proto(cls, p: argserve_pb2.Prediction) -> "Prediction":
        hit = ReferenceHit.from_proto(p.nearest_reference) if p.HasField("nearest_reference") else None
        return cls(p.id, p.predicted_class, p.probability, p.is_arg, p.length, p.truncated,
                   [(s.class_name, s.probability) for s in p.scores], p.arg_probability,
                   p.below_min_residues, TIERS.get(p.tier, ""), p.model_class, p.model_is_arg, hit)


def read_fasta(path: str) -> Iterator[tuple[str, str]]:
    """Yields (id, residues) from a FASTA file (plain or .gz)."""
    import gzip
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as handle:
        ident, chunks = None, []
        for line in handle:
            line = line.strip()
            if line.startswith(">"):
                if ident is not None:
                    yield ident, "".join(chunks)
                ident, chunks = line[1:].split()[0], []
            elif line:
                chunks.append(line)
        if ident is not None:
            yield ident, "".join(chunks)


class ArgServeClient:
    def __init__(self, target: str = "127.0.0.1:50051", *, root_certificates: bytes | None = None,
                 timeout: float = 300.0, retries: int = 5):
        options = [("grpc.lb_policy_name", "round_robin"), ("grpc.max_receive_message_length", -1)]
        if root_certificates is None:
            self._channel = grpc.insecure_channel(target, options=options)
        else:
            credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates)
            self._channel = grpc.secure_channel(target, credentials, options=options)
        self._stub = argserve_pb2_grpc.ArgClassifierStub(self._channel)
        self._timeout = timeout
        self._retries = retries

    def __enter__(self) -> "ArgServeClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _call(self, method, request):
        for attempt in range(self._retries + 1):
            try:
                return method(request, timeout=self._timeout)
            except grpc.RpcError as error:
                if error.code() not in RETRYABLE or attempt == self._retries:
                    raise
                time.sleep(min(0.1 * 2 ** attempt, 5.0))
        raise AssertionError("unreachable")

    def model_info(self) -> argserve_pb2.ModelInfo:
        return self._call(self._stub.GetModelInfo, argserve_pb2.GetModelInfoRequest())

    def classify(self, sequences: Iterable[tuple[str, str]], *, top_k: int = 3,
                 batch_size: int = 256) -> list[Prediction]:
        """Classifies (id, residues) pairs; results come back in input order."""
        results: list[Prediction] = []
        batch: list[tuple[str, str]] = []
        for item in sequences:
            batch.append(item)
            if len(batch) == batch_size:
                results.extend(self._classify_batch(batch, top_k))
                batch = []
        if batch:
            results.extend(self._classify_batch(batch, top_k))
        return results

    def _classify_batch(self, batch: Sequence[tuple[str, str]], top_k: int) -> list[Prediction]:
        request = argserve_pb2.ClassifyRequest(
            sequences=[argserve_pb2.Sequence(id=i, residues=r) for i, r in batch],
            options=argserve_pb2.ClassifyOptions(top_k=top_k))
        response = self._call(self._stub.Classify, request)
        return [Prediction.from_proto(p) for p in response.predictions]

    def healthy(self, service: str = "") -> bool:
        """True when the server reports SERVING (grpc.health.v1)."""
        check = self._channel.unary_unary(HEALTH_CHECK)
        # HealthCheckRequest{service} and HealthCheckResponse{status} are one field each; encoding
        # them by hand avoids generating code for the grpc.health package.
        encoded = service.encode()
        request = (b"\x0a" + bytes([len(encoded)]) + encoded) if encoded else b""
        try:
            response = check(request, timeout=min(self._timeout, 10.0))
        except grpc.RpcError:
            return False
        return response == b"\x08\x01"  # status = SERVING (1)
