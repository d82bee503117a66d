"""A small Python client for argserve (Snakemake rules, notebooks, pipeline glue).

Uses Debian's python3-grpcio and the stubs generated at build time into build/python
(put that folder and this one on PYTHONPATH). Example:

    from argserve_client import ArgServeClient
    with ArgServeClient("127.0.0.1:50051") as client:
        for p in client.classify([("seq1", "MKLV..."), ("seq2", "MSTN...")]):
            print(p.id, p.predicted_class, p.probability)
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Sequence

import grpc

from argserve.v1 import argserve_pb2, argserve_pb2_grpc

RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)
HEALTH_CHECK = "/grpc.health.v1.Health/Check"


TIERS = {0: "", 1: "reference", 2: "model", 3: "novel", 4: "homolog"}


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
    tier: str = ""  # "reference", "homolog", "model" or "novel": what decided the call
    model_class: str = ""  # the model's own call
    model_is_arg: bool = False
    nearest_reference: ReferenceHit | None = None
    # When nearest_reference is a known non-ARG: the nearest ARG reference, if one aligns.
    nearest_arg_reference: ReferenceHit | None = None

    @classmethod
    def from_proto(cls, p: argserve_pb2.Prediction) -> "Prediction":
        def hit(name: str) -> ReferenceHit | None:
            return ReferenceHit.from_proto(getattr(p, name)) if p.HasField(name) else None
        return cls(p.id, p.predicted_class, p.probability, p.is_arg, p.length, p.truncated,
                   [(s.class_name, s.probability) for s in p.scores], p.arg_probability,
                   p.below_min_residues, TIERS.get(p.tier, ""), p.model_class, p.model_is_arg,
                   hit("nearest_reference"), hit("nearest_arg_reference"))


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


class ArgServeError(RuntimeError):
    """A call that failed: the gRPC status code and the server's message, in one line."""

    def __init__(self, code: grpc.StatusCode, message: str, target: str):
        super().__init__(f"argserve at {target}: {code.name}: {message}")
        self.code = code
        self.message = message


class ArgServeClient:
    """A connection to one argserve target (any gRPC target: host:port, dns:///name:port,
    ipv4:a:p,b:p; calls are spread round-robin).

    target: default $ARGSERVE_TARGET, else 127.0.0.1:50051. TLS: root_certificates (PEM bytes),
    plus certificate_chain and private_key for mutual TLS. token: a bearer token (servers run
    with --auth_token_file). concurrency: requests in flight in classify(). Failed calls raise
    ArgServeError after `retries` retries of UNAVAILABLE/RESOURCE_EXHAUSTED with backoff.
    """

    def __init__(self, target: str | None = None, *, root_certificates: bytes | None = None,
                 certificate_chain: bytes | None = None, private_key: bytes | None = None,
                 token: str | None = None, timeout: float = 300.0, retries: int = 5,
                 concurrency: int = 4):
        self.target = target or os.environ.get("ARGSERVE_TARGET") or "127.0.0.1:50051"
        if (certificate_chain is None) != (private_key is None):
            raise ValueError("certificate_chain and private_key go together (mutual TLS)")
        if certificate_chain is not None and root_certificates is None:
            raise ValueError("mutual TLS needs root_certificates too")
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        options = [("grpc.lb_policy_name", "round_robin"), ("grpc.max_receive_message_length", -1)]
        if root_certificates is None:
            self._channel = grpc.insecure_channel(self.target, options=options)
        else:
            credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates,
                                                       private_key=private_key,
                                                       certificate_chain=certificate_chain)
            self._channel = grpc.secure_channel(self.target, credentials, options=options)
        self._stub = argserve_pb2_grpc.ArgClassifierStub(self._channel)
        self._timeout = timeout
        self._retries = retries
        self._concurrency = concurrency
        self._metadata = (("authorization", f"Bearer {token.strip()}"),) if token else None

    def __enter__(self) -> "ArgServeClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _call(self, method, request):
        for attempt in range(self._retries + 1):
            try:
                return method(request, timeout=self._timeout, metadata=self._metadata)
            except grpc.RpcError as error:
                if error.code() not in RETRYABLE or attempt == self._retries:
                    raise ArgServeError(error.code(), error.details() or "", self.target) from None
                time.sleep(min(0.1 * 2 ** attempt, 5.0))
        raise AssertionError("unreachable")

    def model_info(self) -> argserve_pb2.ModelInfo:
        return self._call(self._stub.GetModelInfo, argserve_pb2.GetModelInfoRequest())

    def classify(self, sequences: Iterable[tuple[str, str]], *, top_k: int = 3,
                 batch_size: int = 256) -> list[Prediction]:
        """Classifies (id, residues) pairs, `concurrency` requests in flight; results come back
        in input order. A bad sequence raises ArgServeError naming it."""
        from concurrent.futures import ThreadPoolExecutor
        batches: list[list[tuple[str, str]]] = [[]]
        for item in sequences:
            if len(batches[-1]) == batch_size:
                batches.append([])
            batches[-1].append(item)
        if not batches[-1]:
            return []
        with ThreadPoolExecutor(max_workers=self._concurrency) as pool:
            answers = list(pool.map(lambda b: self._classify_batch(b, top_k), batches))
        return [p for answer in answers for p in answer]

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
            response = check(request, timeout=min(self._timeout, 10.0), metadata=self._metadata)
        except grpc.RpcError:
            return False
        return response == b"\x08\x01"  # status = SERVING (1)
