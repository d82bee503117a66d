"""The reference set stored in the artifact as ``references.tsv`` (docs/model-artifact.md).

Labelled ARG proteins that the server aligns every query against to report the nearest reference,
optionally followed by known non-ARG relatives of them (class ``nonarg``): non-ARG proteins that
align to an ARG reference, so that a housekeeping protein finds its own kind as nearest reference
rather than the ARG it resembles. The file is UTF-8, tab-separated, with the header
``id gene accession class residues``; one row per reference, ARGs first, in input order.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .labelled import NONARG, LabelledProtein, read_labelled

FILE_NAME = "references.tsv"
COLUMNS = ("id", "gene", "accession", "class", "residues")
HEADER = "\t".join(COLUMNS)
VERSION_DIGITS = 12

# ResFinder ids are <gene>_<variant number>_<accession>; the accession may itself contain '_'.
_RESFINDER_ID = re.compile(r"^(.+?)_(\d+)_(.+)$")
_BREAKS = ("\t", "\n", "\r")


class ReferenceError(ValueError):
    """A reference set that cannot be written (duplicate id, tab in a field, empty protein...)."""


@dataclass(frozen=True)
class Reference:
    id: str
    gene: str
    accession: str
    label: str       # the ``class`` column
    residues: str    # upper-case, no final '*'


def gene_and_accession(record_id: str) -> tuple[str, str]:
    """``blaOXA-48_1_AY236073`` -> (``blaOXA-48``, ``AY236073``); any other id -> (id, "")."""
    m = _RESFINDER_ID.match(record_id)
    if m is None:
        return record_id, ""
    return m.group(1), m.group(3)


def clean_residues(seq: str) -> str:
    """Upper-cased, one final '*' (stop codon) removed."""
    s = seq.upper()
    return s[:-1] if s.endswith("*") else s


def _reference(r: LabelledProtein) -> Reference:
    gene, accession = gene_and_accession(r.id)
    ref = Reference(r.id, gene, accession, r.label, clean_residues(r.seq))
    if not ref.residues:
        raise ReferenceError(f"reference '{r.id}' has no residues")
    for column, value in zip(COLUMNS, (ref.id, ref.gene, ref.accession, ref.label,
                                       ref.residues)):
        if not value and column in ("id", "class"):
            raise ReferenceError(f"reference '{r.id}' has an empty {column}")
        if any(c in value for c in _BREAKS):
            raise ReferenceError(f"reference '{r.id}': its {column} contains a tab or a "
                                 f"line break")
    # The server's reader takes letters only: a stray '*' or '-' would make the artifact
    # unloadable there.
    bad = next((i for i, c in enumerate(ref.residues) if not "A" <= c <= "Z"), None)
    if bad is not None:
        raise ReferenceError(f"reference '{r.id}': residue {bad + 1} is "
                             f"{ref.residues[bad]!r}, not a letter")
    return ref


def build_references(records: Sequence[LabelledProtein], nonarg_class: str = NONARG,
                     *, nonarg: bool = False) -> list[Reference]:
    """The ARG records (label != ``nonarg_class``) as references, in input order; with ``nonarg``,
    the non-ARG records instead."""
    out: list[Reference] = []
    seen: set[str] = set()
    for r in records:
        if r.label is None or (r.label == nonarg_class) != nonarg:
            continue
        if r.id in seen:
            raise ReferenceError(f"reference id '{r.id}' occurs more than once")
        seen.add(r.id)
        out.append(_reference(r))
    return out


def read_references_fasta(paths: Sequence[str | os.PathLike], nonarg_class: str = NONARG,
                          *, nonarg: bool = False) -> list[Reference]:
    """The ARG records of labelled FASTA files (``>id|class``), in file order; with ``nonarg``,
    their non-ARG records."""
    records = [r for p in paths for r in read_labelled(p, nonarg_class)]
    refs = build_references(records, nonarg_class, nonarg=nonarg)
    if nonarg:
        return refs
    if not refs:
        raise ReferenceError(f"no ARG records (class other than '{nonarg_class}') in "
                             f"{', '.join(str(p) for p in paths)}")
    return refs


def unique_references(refs: Sequence[Reference]) -> list[Reference]:
    """The first of each id; the files may share proteins (a data set's non-ARGs come from
    Swiss-Prot too), but one id must not name two proteins."""
    seen: dict[str, str] = {}
    out = []
    for r in refs:
        if r.id in seen:
            if seen[r.id] != r.residues:
                raise ReferenceError(f"reference id '{r.id}' names two different proteins")
            continue
        seen[r.id] = r.residues
        out.append(r)
    return out


def read_shared_references(paths: Sequence[str | os.PathLike], nonarg_class: str = NONARG,
                           *, nonarg: bool = False) -> list[Reference]:
    """``read_references_fasta`` of each file, then ``unique_references`` across them: files that
    share proteins (the splits of one data set, Swiss-Prot and a data set from it) give each once."""
    return unique_references([r for path in paths
                              for r in read_references_fasta([path], nonarg_class, nonarg=nonarg)])


def references_tsv(refs: Sequence[Reference]) -> str:
    lines = [HEADER] + ["\t".join((r.id, r.gene, r.accession, r.label, r.residues)) for r in refs]
    return "\n".join(lines) + "\n"


def parse_references_tsv(text: str) -> list[Reference]:
    """The rows of a ``references.tsv`` (header checked)."""
    lines = text.splitlines()
    if not lines or lines[0] != HEADER:
        raise ReferenceError(f"{FILE_NAME}: the first line is not {HEADER!r}")
    out = []
    for n, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) != len(COLUMNS):
            raise ReferenceError(f"{FILE_NAME}:{n}: {len(fields)} fields, expected {len(COLUMNS)}")
        out.append(Reference(*fields))
    return out


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def references_json(text: str, count: int, source: str) -> dict:
    """model.json ``references``: where the file is, how many rows, its hash and a short version."""
    digest = sha256_hex(text)
    return {"file": FILE_NAME, "count": int(count), "sha256": digest, "source": source,
            "version": digest[:VERSION_DIGITS]}
