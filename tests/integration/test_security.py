"""TLS, mutual TLS and bearer-token authentication, with certificates made by openssl per test run."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import SAMPLE_SEQUENCES, Server, run_cli, write_fasta

EXIT_BAD_INPUT, EXIT_UNAVAILABLE, EXIT_SERVER_ERROR = 3, 4, 5


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    (d / "san.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=argserve test CA", cwd=d)
    for name in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN={'localhost' if name == 'server' else 'pipeline'}", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.pem", "-days", "2", "-extfile", "san.cnf", cwd=d)
    # A second, unrelated CA: its client certificate must be refused.
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "rogue.key", "-out", "rogue.pem", "-days",
            "2", "-subj", "/CN=rogue", cwd=d)
    return d


def classify(target: str, fasta: Path, *extra: str):
    return run_cli("classify", "--target", target, "--retries", "0", "--deadline", "20", *extra, str(fasta))


def test_tls_server_accepts_tls_clients_only(pki, tmp_path):
    s = Server(tmp_path, f"--tls_cert={pki / 'server.pem'}", f"--tls_key={pki / 'server.key'}").wait_ready()
    try:
        fasta = write_fasta(tmp_path / "in.fasta", SAMPLE_SEQUENCES)
        ok = classify(s.target, fasta, "--tls-ca", str(pki / "ca.pem"))
        assert ok.returncode == 0, ok.stderr.decode()
        assert len(ok.stdout.decode().splitlines()) == len(SAMPLE_SEQUENCES) + 1
        assert classify(s.target, fasta).returncode == EXIT_UNAVAILABLE  # plaintext client
        assert classify(s.target, fasta, "--tls-ca", str(pki / "rogue.pem")).returncode == EXIT_UNAVAILABLE
        assert run_cli("health", "--target", s.target, "--tls-ca", str(pki / "ca.pem")).returncode == 0
    finally:
        s.kill()


def test_mutual_tls_requires_a_client_certificate_from_the_ca(pki, tmp_path):
    s = Server(tmp_path, f"--tls_cert={pki / 'server.pem'}", f"--tls_key={pki / 'server.key'}",
               f"--tls_client_ca={pki / 'ca.pem'}").wait_ready()
    try:
        fasta = write_fasta(tmp_path / "in.fasta", SAMPLE_SEQUENCES)
        ca = ("--tls-ca", str(pki / "ca.pem"))
        assert classify(s.target, fasta, *ca, "--tls-cert", str(pki / "client.pem"), "--tls-key",
                        str(pki / "client.key")).returncode == 0
        assert classify(s.target, fasta, *ca).returncode == EXIT_UNAVAILABLE
        assert classify(s.target, fasta, *ca, "--tls-cert", str(pki / "rogue.pem"), "--tls-key",
                        str(pki / "rogue.key")).returncode == EXIT_UNAVAILABLE
    finally:
        s.kill()


def test_bearer_token_is_required_health_stays_open_and_token_is_not_logged(tmp_path):
    token = "s3cr3t-token-0123456789"
    (tmp_path / "token").write_text(token + "\n")
    (tmp_path / "wrong").write_text("s3cr3t-token-0123456780\n")
    s = Server(tmp_path, f"--auth_token_file={tmp_path / 'token'}").wait_ready()
    try:
        fasta = write_fasta(tmp_path / "in.fasta", SAMPLE_SEQUENCES)
        missing = classify(s.target, fasta)
        assert missing.returncode == EXIT_SERVER_ERROR
        assert "missing or invalid bearer token" in missing.stderr.decode()
        assert "refused the call" in missing.stderr.decode()
        assert "cannot reach" not in missing.stderr.decode()
        assert classify(s.target, fasta, "--token-file", str(tmp_path / "wrong")).returncode == EXIT_SERVER_ERROR
        assert classify(s.target, fasta, "--token-file", str(tmp_path / "token")).returncode == 0
        stream = classify(s.target, fasta, "--stream", "--token-file", str(tmp_path / "token"))
        assert stream.returncode == 0, stream.stderr.decode()
        assert classify(s.target, fasta, "--stream").returncode == EXIT_SERVER_ERROR
        assert run_cli("health", "--target", s.target).returncode == 0
        metrics = s.metrics()
        assert 'argserve_requests_total{code="UNAUTHENTICATED",rpc="GetModelInfo"}' in metrics
    finally:
        s.stop()
    assert token not in s.logs()


def test_bad_security_flags_fail_fast(pki, tmp_path):
    from test_server import run_server
    from conftest import TEST_MODEL
    r = run_server(f"--model={TEST_MODEL}", f"--tls_cert={pki / 'server.pem'}")
    assert r.returncode != 0 and "--tls_cert and --tls_key go together" in r.stderr.decode()
    (tmp_path / "empty").write_text("\n")
    r = run_server(f"--model={TEST_MODEL}", f"--auth_token_file={tmp_path / 'empty'}")
    assert r.returncode != 0 and "is empty" in r.stderr.decode()
    r = run_server(f"--model={TEST_MODEL}", f"--auth_token_file={tmp_path / 'nope'}")
    assert r.returncode != 0 and "cannot read" in r.stderr.decode()


def test_python_client_speaks_mutual_tls_and_bearer_tokens(pki, tmp_path, monkeypatch):
    from argserve_client import ArgServeClient, ArgServeError
    token = "py-token-0123456789"
    (tmp_path / "token").write_text(token + "\n")
    s = Server(tmp_path, f"--tls_cert={pki / 'server.pem'}", f"--tls_key={pki / 'server.key'}",
               f"--tls_client_ca={pki / 'ca.pem'}", f"--auth_token_file={tmp_path / 'token'}").wait_ready()
    tls = dict(root_certificates=(pki / "ca.pem").read_bytes(),
               certificate_chain=(pki / "client.pem").read_bytes(),
               private_key=(pki / "client.key").read_bytes())
    try:
        # The target comes from $ARGSERVE_TARGET as for the CLI; several batches go in parallel.
        monkeypatch.setenv("ARGSERVE_TARGET", f"localhost:{s.grpc_port}")
        with ArgServeClient(token=token, concurrency=3, **tls) as client:
            predictions = client.classify(SAMPLE_SEQUENCES * 4, batch_size=3)
            assert [p.id for p in predictions] == [i for i, _ in SAMPLE_SEQUENCES * 4]
        with ArgServeClient(token="wrong", retries=0, **tls) as client:
            with pytest.raises(ArgServeError) as error:
                client.classify(SAMPLE_SEQUENCES[:1])
            assert error.value.code.name == "UNAUTHENTICATED"
            assert "UNAUTHENTICATED" in str(error.value) and "\n" not in str(error.value)
    finally:
        s.kill()
