"""Labelled protein FASTA: ``>id|class`` headers, as the data set writes them and every step reads.

Accepted headers: ``id|class`` and ``id|...|class`` (the class is the last field of the first word),
and UniProt's ``sp|ACCESSION|...`` / ``tr|ACCESSION|...``, which mean a non-ARG.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .fasta import read_fasta

NONARG = "nonarg"
UNIPROT_PREFIXES = ("sp", "tr")


class DatasetError(ValueError):
    """Input that cannot make a data set (bad header, unknown class, too few records...)."""


@dataclass
class LabelledProtein:
    id: str
    seq: str          # as read: case and a final '*' kept (the tokenization rules decide)
    label: str | None
    header: str = ""


_ID_BAD = re.compile(r"[^A-Za-z0-9_.:()'+,/=-]")


def sanitize_id(text: str) -> str:
    """A record id for ``>id|class`` headers: first word, no '|' or odd characters."""
    word = text.strip().split()[0] if text.strip() else ""
    word = _ID_BAD.sub("_", word)
    if not word:
        raise DatasetError(f"cannot make an id from header {text!r}")
    return word


def parse_labelled_header(header: str, nonarg_label: str = NONARG,
                          uniprot_prefixes: Sequence[str] = UNIPROT_PREFIXES) -> tuple[str, str]:
    """``id|class``, ``a|b|c|class`` -> (a, class); ``sp|ACC|...`` -> (ACC, nonarg).

    Only the first whitespace-separated word of the header is parsed, so UniProt descriptions and
    trailing comments are ignored.
    """
    word = header.split()[0] if header.split() else ""
    fields = word.split("|")
    if fields[0] in uniprot_prefixes and len(fields) >= 2:
        return sanitize_id(fields[1] or fields[0]), nonarg_label
    if len(fields) < 2 or not fields[0] or not fields[-1]:
        raise DatasetError(f"header {header!r}: expected 'id|class', 'id|...|class' or "
                           f"'sp|accession|...' (UniProt, taken as {nonarg_label})")
    return sanitize_id(fields[0]), fields[-1]


def read_labelled(path: str | os.PathLike, nonarg_label: str = NONARG,
                  uniprot_prefixes: Sequence[str] = UNIPROT_PREFIXES) -> list[LabelledProtein]:
    """The records of a labelled FASTA, in file order; a bad header is an error naming the file."""
    out = []
    for header, seq in read_fasta(path):
        try:
            rid, label = parse_labelled_header(header, nonarg_label, uniprot_prefixes)
        except DatasetError as exc:
            raise DatasetError(f"{path}: {exc}") from None
        out.append(LabelledProtein(rid, seq, label, header))
    return out
