"""Running ``argserve-evidence`` (the server's aligner as a command-line tool) on a query set.

``TOOL --references refs.tsv --fasta queries.fasta --threads N`` prints a TSV on stdout: a header
line, then one row per query that has a hit (its nearest reference), in the columns of ``COLUMNS``;
when that reference is a known non-ARG, the ``arg_*`` columns name the nearest ARG reference (else
they are empty).
"""

from __future__ import annotations

import math
import shlex
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .evidence import Hit
from .fasta import write_fasta
from .homology import ToolError
from .labelled import NONARG
from .references import FILE_NAME, clean_residues

DEFAULT_TOOL = Path("build/bin/argserve-evidence")
HIT_COLUMNS = ("reference_id", "gene", "accession", "class", "identity", "query_coverage",
               "reference_coverage", "score", "bits", "evalue")
COLUMNS = ("query_id",) + HIT_COLUMNS + tuple(f"arg_{c}" for c in HIT_COLUMNS)
HEADER = "\t".join(COLUMNS)
_FRACTIONS = ("identity", "query_coverage", "reference_coverage")
_NAMES = 4  # reference_id, gene, accession, class; then the numbers


class EvidenceError(ValueError):
    """Output of the evidence tool that does not follow its format."""


def _number(value: str, column: str, line: int) -> float:
    try:
        x = float(value)
    except ValueError:
        raise EvidenceError(f"line {line}: {column} {value!r} is not a number") from None
    if math.isnan(x):
        raise EvidenceError(f"line {line}: {column} is NaN")
    if column.removeprefix("arg_") in _FRACTIONS and not 0.0 <= x <= 1.0:
        raise EvidenceError(f"line {line}: {column} {x} is not a fraction in [0, 1]")
    return x


def parse_hits(text: str) -> dict[str, Hit]:
    """query id -> its nearest reference, from the tool's stdout."""
    lines = text.splitlines()
    if not lines or lines[0] != HEADER:
        first = lines[0] if lines else ""
        raise EvidenceError(f"expected the header {HEADER!r}, got {first!r}")
    hits: dict[str, Hit] = {}
    for n, line in enumerate(lines[1:], start=2):
        if not line:
            continue
        f = line.split("\t")
        if len(f) != len(COLUMNS):
            raise EvidenceError(f"line {n}: {len(f)} fields, expected {len(COLUMNS)}")
        if f[0] in hits:
            raise EvidenceError(f"line {n}: query '{f[0]}' has more than one row")
        split = 1 + len(HIT_COLUMNS)
        nearest_arg = _hit(f[split:], COLUMNS[split:], n) if any(f[split:]) else None
        hits[f[0]] = _hit(f[1:split], COLUMNS[1:split], n, nearest_arg)
    return hits


def _hit(fields: list[str], columns: Sequence[str], line: int,
         nearest_arg: Hit | None = None) -> Hit:
    numbers = [_number(v, c, line) for v, c in zip(fields[_NAMES:], columns[_NAMES:])]
    return Hit(*fields[:_NAMES], *numbers, nearest_arg=nearest_arg)


def run_evidence_tool(tool: str | Path, references_tsv: str, queries: Sequence[tuple[str, str]],
                      threads: int = 2, max_evalue: float | None = None,
                      nonarg_class: str = NONARG) -> tuple[dict[str, Hit], str]:
    """Align ``(id, protein)`` queries against a references.tsv (references of ``nonarg_class``
    are known non-ARGs); returns the hits by query id and the command line that was run."""
    ids = [q for q, _ in queries]
    if len(set(ids)) != len(ids):
        dup = next(q for i, q in enumerate(ids) if q in ids[:i])
        raise EvidenceError(f"query id '{dup}' occurs more than once")
    with tempfile.TemporaryDirectory(prefix="argtrain-evidence-") as tmp:
        refs = Path(tmp) / FILE_NAME
        refs.write_text(references_tsv, encoding="utf-8", newline="\n")
        fasta = Path(tmp) / "test_queries.fasta"
        write_fasta(fasta, ((q, clean_residues(s)) for q, s in queries), width=0)
        cmd = [str(tool), "--references", str(refs), "--fasta", str(fasta),
               "--threads", str(threads), "--nonarg-class", nonarg_class]
        if max_evalue is not None:
            cmd += ["--max-evalue", repr(max_evalue)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True)
        except OSError as exc:
            raise ToolError(f"cannot run {tool}: {exc}") from None
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
            raise ToolError(f"{shlex.join(cmd)} failed (exit {proc.returncode})\n{tail}")
    try:
        hits = parse_hits(proc.stdout)
    except EvidenceError as exc:
        raise EvidenceError(f"{tool}: {exc}") from None
    unknown = sorted(set(hits) - set(ids))
    if unknown:
        raise EvidenceError(f"{tool}: hits for queries that were not asked: {unknown[:5]}")
    return hits, shlex.join(cmd)
