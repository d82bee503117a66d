"""The ESM-2 alphabet and the tokenization rules of docs/model-artifact.md.

The token order is the official ESM-1b/ESM-2 one, so weights of official checkpoints index the same
rows. Serving (C++) implements the same rules; both sides read them from the artifact's model.json.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported on use, so that the data-set steps run without it
    import torch

ALPHABET: list[str] = [
    "<cls>", "<pad>", "<eos>", "<unk>",
    "L", "A", "G", "V", "S", "E", "R", "T", "I", "D", "P", "K", "Q", "N", "F", "Y", "M", "H",
    "W", "C", "X", "B", "U", "Z", "O", ".", "-",
    "<null_1>", "<mask>",
]
CLS, PAD, EOS, UNK, MASK = 0, 1, 2, 3, 32
SPECIAL_TOKENS: dict[str, int] = {"cls": CLS, "pad": PAD, "eos": EOS, "unk": UNK, "mask": MASK}
RESIDUES = "ACDEFGHIKLMNPQRSTVWYXBUZO"
RESIDUE_SET = frozenset(RESIDUES)
STANDARD_AA = "ACDEFGHIKLMNPQRSTVWY"
INDEX: dict[str, int] = {tok: i for i, tok in enumerate(ALPHABET)}
RESIDUE_INDEX: dict[str, int] = {aa: INDEX[aa] for aa in RESIDUES}
# Token ids of the 20 standard amino acids: what the 10% "random token" of BERT masking draws from.
STANDARD_AA_IDS: list[int] = [INDEX[aa] for aa in STANDARD_AA]

assert len(ALPHABET) == 33 and ALPHABET[MASK] == "<mask>" and ALPHABET[PAD] == "<pad>"


class TokenizationError(ValueError):
    """A sequence that the tokenization rules reject.

    ``reason`` names the broken rule (``empty``, ``internal_stop``, ``invalid_character``), so
    data-set builders can count drops by reason.
    """

    def __init__(self, message: str, reason: str = ""):
        super().__init__(message)
        self.reason = reason


def clean_sequence(seq: str, residues: Collection[str] = RESIDUE_SET) -> str:
    """Apply rules 1-4: upper-case, drop one trailing '*', validate. Returns the residue string.

    ``residues`` is the allowed set; another artifact's model.json may name its own.
    """
    s = seq.upper()
    if s.endswith("*"):
        s = s[:-1]
    if not s:
        raise TokenizationError("empty sequence", "empty")
    for pos, ch in enumerate(s, start=1):
        if ch not in residues:
            if ch == "*":
                raise TokenizationError(f"internal stop codon '*' at position {pos}",
                                        "internal_stop")
            raise TokenizationError(f"invalid character {ch!r} at position {pos}",
                                    "invalid_character")
    return s


def encode(seq: str, max_residues: int | None = None) -> list[int]:
    """Token ids ``<cls> residues <eos>``; keeps the first ``max_residues`` residues if given."""
    s = clean_sequence(seq)
    if max_residues is not None:
        s = s[:max_residues]
    return [CLS] + [RESIDUE_INDEX[c] for c in s] + [EOS]


def pad_batch(token_lists: Sequence[Sequence[int]], pad_to: int | None = None) -> torch.Tensor:
    """Right-pad token id lists with ``<pad>`` into an int64 tensor [B, L]."""
    import torch

    if not token_lists:
        raise ValueError("empty batch")
    width = max(len(t) for t in token_lists)
    if pad_to is not None:
        width = max(width, pad_to)
    out = torch.full((len(token_lists), width), PAD, dtype=torch.long)
    for i, toks in enumerate(token_lists):
        out[i, : len(toks)] = torch.as_tensor(toks, dtype=torch.long)
    return out


def batch_encode(seqs: Sequence[str], max_residues: int | None = None) -> torch.Tensor:
    """Tokenize and pad a list of sequences."""
    return pad_batch([encode(s, max_residues) for s in seqs])


def model_json_alphabet() -> dict:
    """The alphabet fields of model.json."""
    return {"alphabet": list(ALPHABET), "special_tokens": dict(SPECIAL_TOKENS), "residues": RESIDUES}
