"""Data-set step 1, sources: ResFinder ARGs (translated CDS), the UniProt sample's non-ARG
candidates, or a user's labelled FASTA; each protein cleaned with the tokenization rules."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..alphabet import TokenizationError, clean_sequence
from ..fasta import read_fasta
from ..labelled import NONARG, UNIPROT_PREFIXES, DatasetError, read_labelled, sanitize_id
from ..translate import DROP_REASONS, translate_cds

RESFINDER_DIR = "/usr/share/resfinder/db"
UNIPROT_SAMPLE = "/usr/share/doc/mmseqs2/example-data/DB.fasta.gz"


@dataclass
class Record:
    """One labelled protein. ``aliases`` are the ids of identical proteins merged into it."""
    id: str
    label: str
    seq: str
    source: str
    description: str = ""
    aliases: list[str] = field(default_factory=list)


def clean_protein(seq: str) -> tuple[str | None, str | None]:
    """Protein QC with the tokenization rules: returns ``(protein, None)`` or ``(None, reason)``."""
    try:
        return clean_sequence("".join(seq.split())), None
    except TokenizationError as e:
        return None, e.reason


# ---------------------------------------------------------------------------------------------
# ResFinder


def resfinder_classes(db_dir: str | os.PathLike = RESFINDER_DIR) -> dict[str, str]:
    """Class prefix -> description, from the database's ``config`` (falls back to ``*.fsa``)."""
    db = Path(db_dir)
    classes: dict[str, str] = {}
    config = db / "config"
    if config.exists():
        for line in config.read_text(encoding="utf-8").splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.split("\t")
            classes[parts[0].strip()] = parts[2].strip() if len(parts) > 2 else parts[0].strip()
    if not classes:
        classes = {p.stem: p.stem for p in sorted(db.glob("*.fsa"))}
    missing = [c for c in classes if not (db / f"{c}.fsa").exists()]
    if missing:
        raise DatasetError(f"{db}: config names classes without a .fsa file: {missing}")
    if not classes:
        raise DatasetError(f"{db}: no ResFinder class files (*.fsa)")
    return dict(sorted(classes.items()))


def load_resfinder(db_dir: str | os.PathLike, classes: Iterable[str]) -> tuple[list[Record], dict]:
    """Translate every CDS of the given classes; returns kept records and QC statistics."""
    db = Path(db_dir)
    kept: list[Record] = []
    read = Counter()
    dropped: dict[str, Counter] = {r: Counter() for r in DROP_REASONS}
    starts = Counter()
    no_terminal_stop = 0
    details = []
    for cls in classes:
        path = db / f"{cls}.fsa"
        for header, nt in read_fasta(path):
            read[cls] += 1
            t = translate_cds(nt)
            rid = sanitize_id(header)
            if not t.ok:
                dropped[t.reason][cls] += 1
                details.append({"id": rid, "class": cls, "reason": t.reason, "detail": t.detail})
                continue
            starts[t.start_codon] += 1
            no_terminal_stop += not t.terminal_stop
            kept.append(Record(rid, cls, t.protein, f"resfinder:{cls}.fsa", header))
    stats = {
        "records_read": dict(read),
        "records_read_total": sum(read.values()),
        "translated": len(kept),
        "dropped_by_reason": {r: sum(c.values()) for r, c in dropped.items()},
        "dropped_by_reason_and_class": {r: dict(sorted(c.items()))
                                        for r, c in dropped.items() if c},
        "dropped_records": details,
        "first_codons": dict(starts.most_common()),
        "without_terminal_stop": no_terminal_stop,
    }
    return kept, stats


# ---------------------------------------------------------------------------------------------
# Non-ARG candidates (UniProt sample)


def parse_uniprot_header(header: str) -> tuple[str, str]:
    """``sp|P12345|NAME_SPECIES Description OS=...`` -> (accession, description)."""
    first, _, rest = header.partition(" ")
    parts = first.split("|")
    acc = parts[1] if len(parts) >= 3 and parts[0] in ("sp", "tr") and parts[1] else first
    desc = rest.split(" OS=")[0].strip()
    return sanitize_id(acc), desc


def load_uniprot(path: str | os.PathLike) -> tuple[list[Record], dict]:
    kept: list[Record] = []
    dropped = Counter()
    n = 0
    for header, seq in read_fasta(path):
        n += 1
        acc, desc = parse_uniprot_header(header)
        protein, reason = clean_protein(seq)
        if protein is None:
            dropped[reason] += 1
            continue
        kept.append(Record(acc, NONARG, protein, "uniprot-sample", desc))
    return kept, {"records_read": n, "dropped_by_reason": dict(dropped)}


# ---------------------------------------------------------------------------------------------
# User-provided labelled FASTA


def load_labelled_fasta(paths: Sequence[str | os.PathLike], nonarg_label: str = NONARG,
                        uniprot_prefixes: Sequence[str] = UNIPROT_PREFIXES
                        ) -> tuple[list[Record], dict]:
    kept: list[Record] = []
    dropped = Counter()
    n = 0
    for path in paths:
        for r in read_labelled(path, nonarg_label, uniprot_prefixes):
            n += 1
            protein, reason = clean_protein(r.seq)
            if protein is None:
                dropped[reason] += 1
                continue
            kept.append(Record(r.id, r.label, protein, f"user:{Path(path).name}", r.header))
    return kept, {"records_read": n, "dropped_by_reason": dict(dropped)}
