"""Small synthetic protein families for the data-set, baseline and evaluate tests (seeded)."""

from __future__ import annotations

import random

AA = "ACDEFGHIKLMNPQRSTVWY"
# One codon per amino acid (all free of stop codons), for back-translating test proteins.
CODON = {"A": "GCT", "C": "TGT", "D": "GAT", "E": "GAA", "F": "TTT", "G": "GGT", "H": "CAT",
         "I": "ATT", "K": "AAA", "L": "CTG", "M": "ATG", "N": "AAT", "P": "CCG", "Q": "CAG",
         "R": "CGT", "S": "TCT", "T": "ACC", "V": "GTT", "W": "TGG", "Y": "TAT"}


def random_protein(rng: random.Random, n: int) -> str:
    return "M" + "".join(rng.choice(AA) for _ in range(n - 1))


def mutate(rng: random.Random, seq: str, rate: float) -> str:
    """Point substitutions at ``rate``; the first residue is kept."""
    return seq[0] + "".join(rng.choice(AA) if rng.random() < rate else c for c in seq[1:])


def family(rng: random.Random, n_members: int, length: int, rate: float = 0.08) -> list[str]:
    parent = random_protein(rng, length)
    return [mutate(rng, parent, rate) for _ in range(n_members)]


def back_translate(protein: str, stop: str = "TAA") -> str:
    return "".join(CODON[a] for a in protein) + stop
