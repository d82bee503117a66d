"""Translation of coding sequences with NCBI genetic code table 11 (bacterial, archaeal, plastid).

Table 11 has the same codon -> amino acid assignments as the standard code; what differs is the set
of initiation codons: TTG, CTG, ATT, ATC, ATA, ATG and GTG. As in NCBI's own translation of CDS
features, an initiation codon in the first position is translated as methionine (the initiator
tRNA carries fMet whatever the codon); elsewhere the same codons get their ordinary amino acid.

QC: ``translate_cds`` returns a drop reason instead of a protein when the record is unusable, so the
data-set builder can count drops by reason. Reasons, checked in this order:

- ``empty``: no nucleotides (or only a stop codon);
- ``invalid_character``: a character that is not a nucleotide nor an IUPAC ambiguity code;
- ``ambiguous_nucleotide``: an IUPAC ambiguity code (N, R, Y, ...): the codon has no single
  translation, and guessing would put invented residues into training data;
- ``length_not_multiple_of_3``: a frameshift or truncated record;
- ``internal_stop``: a stop codon before the last codon (pseudogene or wrong frame).

One terminal stop codon is removed. Lower case and RNA (U) are accepted.
"""

from __future__ import annotations

from dataclasses import dataclass

# NCBI table 11, in the TCAG order NCBI publishes it (base1 slowest, base3 fastest).
_BASES = "TCAG"
_AAS = "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG"
_STARTS = "---M------**--*----M------------MMMM---------------M------------"

CODON_TABLE: dict[str, str] = {}
START_CODONS: frozenset[str]
_starts = set()
for _i, _aa in enumerate(_AAS):
    _codon = _BASES[_i // 16] + _BASES[(_i // 4) % 4] + _BASES[_i % 4]
    CODON_TABLE[_codon] = _aa
    if _STARTS[_i] == "M":
        _starts.add(_codon)
START_CODONS = frozenset(_starts)
STOP_CODONS = frozenset(c for c, a in CODON_TABLE.items() if a == "*")

NUCLEOTIDES = frozenset("ACGT")
AMBIGUITY_CODES = frozenset("NRYKMSWBDHV")

DROP_REASONS = ("empty", "invalid_character", "ambiguous_nucleotide",
                "length_not_multiple_of_3", "internal_stop")


@dataclass(frozen=True)
class Translation:
    protein: str | None       # None when dropped
    reason: str | None        # one of DROP_REASONS when dropped, else None
    detail: str = ""          # human-readable detail for a drop (position, character)
    start_codon: str = ""     # the first codon, when translated
    terminal_stop: bool = False  # whether a terminal stop codon was present (and removed)

    @property
    def ok(self) -> bool:
        return self.protein is not None


def translate_cds(seq: str) -> Translation:
    """Translate one coding sequence with table 11, or say why it cannot be used."""
    nt = "".join(seq.split()).upper().replace("U", "T")
    if not nt:
        return Translation(None, "empty", "no nucleotides")
    for pos, ch in enumerate(nt, start=1):
        if ch not in NUCLEOTIDES:
            if ch in AMBIGUITY_CODES:
                return Translation(None, "ambiguous_nucleotide", f"'{ch}' at position {pos}")
            return Translation(None, "invalid_character", f"'{ch}' at position {pos}")
    if len(nt) % 3:
        return Translation(None, "length_not_multiple_of_3", f"length {len(nt)}")
    codons = [nt[i:i + 3] for i in range(0, len(nt), 3)]
    protein = [CODON_TABLE[c] for c in codons]
    if codons[0] in START_CODONS:
        protein[0] = "M"
    terminal_stop = protein[-1] == "*"
    if terminal_stop:
        protein.pop()
    if not protein:
        return Translation(None, "empty", "only a stop codon")
    if "*" in protein:
        pos = protein.index("*") + 1
        return Translation(None, "internal_stop", f"stop codon {codons[pos - 1]} at codon {pos}")
    return Translation("".join(protein), None, "", codons[0], terminal_stop)
