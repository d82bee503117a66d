"""Thin wrappers around the two external homology tools: DIAMOND (search) and MMseqs2 (clustering).

Both are run as subprocesses on FASTA files written to a scratch directory. Sequence identifiers
handed to the tools must be single words; callers use their own record ids (no spaces).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .fasta import write_fasta

DIAMOND_SENSITIVITIES = ("fast", "mid-sensitive", "sensitive", "more-sensitive", "very-sensitive",
                         "ultra-sensitive")


class ToolError(RuntimeError):
    """An external tool is missing or failed; the message carries its stderr tail."""


def find_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ToolError(f"'{name}' not found on PATH (Debian package: "
                        f"{'diamond-aligner' if name == 'diamond' else 'mmseqs2'})")
    return path


def tool_version(name: str) -> str | None:
    """The version line a tool prints, or None when the tool is absent."""
    exe = shutil.which(name)
    if exe is None:
        return None
    arg = "version"
    try:
        out = subprocess.run([exe, arg], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else None


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise ToolError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{tail}")


@dataclass(frozen=True)
class Hit:
    query: str
    target: str
    identity: float        # percent
    length: int            # alignment length
    qlen: int
    tlen: int
    evalue: float
    bitscore: float
    qcov: float            # percent of the query covered by the alignment
    tcov: float            # percent of the target covered


def diamond_search(queries: Iterable[tuple[str, str]], targets: Iterable[tuple[str, str]], *,
                   evalue: float = 1e-5, max_target_seqs: int = 1, sensitivity: str = "sensitive",
                   threads: int = 2, workdir: str | os.PathLike | None = None) -> list[Hit]:
    """DIAMOND blastp of ``queries`` against ``targets`` (both ``(id, protein)`` iterables).

    Returns hits in DIAMOND's order: per query, best first (by e-value, then bit score).
    """
    exe = find_tool("diamond")
    if sensitivity not in DIAMOND_SENSITIVITIES:
        raise ValueError(f"unknown DIAMOND sensitivity '{sensitivity}'")
    with tempfile.TemporaryDirectory(prefix="argtrain-diamond-", dir=workdir) as tmp:
        tmp = Path(tmp)
        n_t = write_fasta(tmp / "targets.faa", targets, width=0)
        n_q = write_fasta(tmp / "queries.faa", queries, width=0)
        if n_t == 0 or n_q == 0:
            return []
        _run([exe, "makedb", "--in", str(tmp / "targets.faa"), "-d", str(tmp / "targets"),
              "--threads", str(threads), "--quiet"], "diamond makedb")
        cmd = [exe, "blastp", "-q", str(tmp / "queries.faa"), "-d", str(tmp / "targets"),
               "-o", str(tmp / "hits.tsv"), "--threads", str(threads), "--evalue", str(evalue),
               "--max-target-seqs", str(max_target_seqs), "--tmpdir", str(tmp), "--quiet",
               "--outfmt", "6", "qseqid", "sseqid", "pident", "length", "qlen", "slen",
               "evalue", "bitscore", "qcovhsp", "scovhsp"]
        if sensitivity != "fast":
            cmd.append(f"--{sensitivity}")
        _run(cmd, "diamond blastp")
        hits = []
        with open(tmp / "hits.tsv", encoding="utf-8") as fh:
            for line in fh:
                f = line.rstrip("\n").split("\t")
                hits.append(Hit(f[0], f[1], float(f[2]), int(f[3]), int(f[4]), int(f[5]),
                                float(f[6]), float(f[7]), float(f[8]), float(f[9])))
    return hits


def best_hits(hits: Iterable[Hit]) -> dict[str, Hit]:
    """The first (best) hit of each query."""
    best: dict[str, Hit] = {}
    for h in hits:
        best.setdefault(h.query, h)
    return best


def mmseqs_cluster(records: Iterable[tuple[str, str]], *, identity: float, coverage: float,
                   cov_mode: int = 0, threads: int = 2,
                   workdir: str | os.PathLike | None = None) -> dict[str, str]:
    """Cluster ``(id, protein)`` records with ``mmseqs easy-cluster``; returns id -> representative.

    ``cov_mode`` 0 requires ``coverage`` of both sequences (MMseqs2's default), so a short domain
    does not pull a long multi-domain protein into its cluster.
    """
    exe = find_tool("mmseqs")
    with tempfile.TemporaryDirectory(prefix="argtrain-mmseqs-", dir=workdir) as tmp:
        tmp = Path(tmp)
        n = write_fasta(tmp / "in.faa", records, width=0)
        if n == 0:
            return {}
        _run([exe, "easy-cluster", str(tmp / "in.faa"), str(tmp / "res"), str(tmp / "work"),
              "--min-seq-id", str(identity), "-c", str(coverage), "--cov-mode", str(cov_mode),
              "--threads", str(threads), "-v", "1"], "mmseqs easy-cluster")
        member_to_rep: dict[str, str] = {}
        with open(tmp / "res_cluster.tsv", encoding="utf-8") as fh:
            for line in fh:
                rep, member = line.rstrip("\n").split("\t")
                member_to_rep[member] = rep
    return member_to_rep
