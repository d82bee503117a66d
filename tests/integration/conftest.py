"""Helpers for integration tests: run the real argserve and argserve-cli binaries on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

BIN_DIR = Path(os.environ.get("ARGSERVE_BIN_DIR", "build/bin"))
TEST_MODEL = os.environ.get("ARGSERVE_TEST_MODEL", "build/test-models/tiny.pt")


class Server:
    """One argserve process on free loopback ports (port 0 + --port_file)."""

    def __init__(self, workdir: Path, *flags: str, model: str = TEST_MODEL):
        workdir.mkdir(parents=True, exist_ok=True)
        self.port_file = workdir / f"ports-{time.monotonic_ns()}.txt"
        self.log_path = workdir / f"server-{time.monotonic_ns()}.log"
        self.args = [str(BIN_DIR / "argserve"), f"--model={model}", "--address=127.0.0.1:0",
                     "--metrics_address=127.0.0.1:0", f"--port_file={self.port_file}", "--intra_op_threads=1",
                     *flags]
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT)
        self.grpc_port = 0
        self.metrics_port = 0

    def wait_ready(self, timeout: float = 120) -> "Server":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"argserve exited with {self.process.returncode}:\n{self.logs()}")
            if self.port_file.exists():
                text = self.port_file.read_text()
                if text.endswith("\n"):
                    fields = dict(item.split("=") for item in text.split())
                    self.grpc_port = int(fields["grpc"])
                    self.metrics_port = int(fields["metrics"])
                    return self
            time.sleep(0.05)
        raise TimeoutError(f"argserve not ready in {timeout}s:\n{self.logs()}")

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def logs(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")

    def metrics(self) -> str:
        import urllib.request
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as response:
            return response.read().decode()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self.log.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("server")).wait_ready()
    yield s
    s.kill()


def run_cli(*args: str, input: bytes | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN_DIR / "argserve-cli"), *args], input=input, capture_output=True, timeout=timeout)


def model_metadata(path: str = TEST_MODEL) -> dict:
    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist() if n.endswith("extra/model.json"))
        return json.loads(archive.read(name))


def parse_metrics(text: str) -> dict[str, float]:
    """Parses Prometheus text format strictly enough to catch malformed output."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            assert line == "" or line.startswith("# HELP ") or line.startswith("# TYPE "), line
            continue
        name, _, value = line.rpartition(" ")
        assert name, line
        values[name] = float(value)
    return values


SAMPLE_SEQUENCES = [
    ("blaTEM-like", "MSIQHFRVALIPFFAAFCLPVFAHPETLVKVKDAEDQLGARVGYIELDLNSGKILESFRPEERFPMMSTFKVLLCGAVLSRIDAGQEQLGRRIHYSQNDLVEYSPVTEKHLTDGMTVRELCSAAITMSDNTAANLLLTTIGGPKELTAFLHNMGDHVTRLDRWEPELNEAIPNDERDTTMPVAMATTLRKLLTGELLTLASRQQLIDWMEADKVAGPLLRSALPAGWFIADKSGAGERGSRGIIAALGPDGKPSRIVVIYTTGSQATMDERNRQIAEIGASLIKHW"),
    ("tetM-fragment", "MKIINIGVLAHVDAGKTTLTESLLYNSGAITELGSVDKGTTRTDNTLLERQRGITIQTGITSFQWENTKVNIIDTPGHMDFLAEVYRSLSVLDGAILLISAKDGVQAQTRILFHALRKMGIPTIFFINKIDQNGIDLSTVYQDIKEKLSAEIVIKQKVELYPNVCVTNFTESEQWDTVIEGNDDLLEKYMSGKSLEALELEQEESIRFHNCSLFPVYHGSAKNNIGIDNLIEVITNKFYSSTHRGPSELCGNVFKIEYTKKRQRLAYIRLYSGVLHLRDSVRVSEKEKIKVTEMYTSINGELCKIDRAYSGEIVILQNEFLKLNSVLGDTKLLPQRKKIENPHPLLQTTVEPSKPEQREMLLDALLEISDSDPLLRYYVDSTTHEIILSFLGKVQMEVISALLQEKYHVEIELKEPTVIYMERPLKNAEYTIHIEVPPNPFWASIGLSVSPLPLGSGMQYESSVSLGYLNQSFQNAVMEGIRYGCEQGLYGWNVTDCKICFKYGLYYSPVSTPADFRMLAPIVLEQVLKKAGTELLEPYLSFKIYAPQEYLSRAYNDAPKYCANIVDTQLKNNEVILSGEIPARCIQEYRSDLTFFTNGRSVCLTELKGYHVTTGEPVCQPRRPNSRIDKVRYMFNKIT"),
    ("short", "MKLVAAGGSTRE"),
    ("lower-with-stop", "mstnpkpqrktkrntnrrpqdvkfpgg*"),
    ("ambiguous", "MKXXBZLLVV"),
]


def write_fasta(path: Path, records) -> Path:
    path.write_text("".join(f">{i}\n{s}\n" for i, s in records))
    return path


def many_sequences(n: int, seed: int = 1) -> list[tuple[str, str]]:
    import random
    rng = random.Random(seed)
    letters = "ACDEFGHIKLMNPQRSTVWY"
    return [(f"seq{i:06d}", "".join(rng.choice(letters) for _ in range(rng.randint(20, 240)))) for i in range(n)]


# Rows in different batches are padded to different lengths, so their probabilities may differ in
# the last float bits and, after rounding to 4 decimals, in the last printed digit.
PRINTED_PROBABILITY_TOLERANCE = 2e-4


def assert_same_top_k(first: str, second: str) -> None:
    """Same classes in the same order, scores up to batching noise."""
    ranked_first = [item.rsplit(":", 1) for item in first.split(",")]
    ranked_second = [item.rsplit(":", 1) for item in second.split(",")]
    assert [c for c, _ in ranked_first] == [c for c, _ in ranked_second], (first, second)
    assert [float(p) for _, p in ranked_first] == pytest.approx([float(p) for _, p in ranked_second],
                                                                abs=PRINTED_PROBABILITY_TOLERANCE), (first, second)


def assert_same_calls(first: list[dict], second: list[dict]) -> None:
    """Every column equal, probabilities up to batching noise."""
    assert [r["id"] for r in first] == [r["id"] for r in second]
    for a, b in zip(first, second):
        for column in ("probability", "arg_probability"):
            assert float(a[column]) == pytest.approx(float(b[column]), abs=PRINTED_PROBABILITY_TOLERANCE), a["id"]
        assert_same_top_k(a["top_k"], b["top_k"])
        exact = set(a) - {"probability", "arg_probability", "top_k"}
        assert {k: a[k] for k in exact} == {k: b[k] for k in exact}, a["id"]
