"""ARG classifier: ESM-2 backbone, mean pooling over residue positions, dropout, linear head."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from . import alphabet
from .esm2 import ESM2, ESM2Config


class ARGClassifier(nn.Module):
    def __init__(self, backbone: ESM2, num_classes: int, dropout: float = 0.1):
        super().__init__()
        self.backbone = backbone
        self.cls_idx = alphabet.CLS
        self.eos_idx = alphabet.EOS
        self.padding_idx = alphabet.PAD
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(backbone.embed_dim, num_classes)

    @classmethod
    def build(cls, config: ESM2Config, num_classes: int, dropout: float = 0.1) -> "ARGClassifier":
        return cls(ESM2(config), num_classes, dropout)

    @torch.jit.export
    def embed(self, tokens: Tensor) -> Tensor:
        """Mean of the final representations over residue positions (no <cls>, <eos>, <pad>)."""
        reps = self.backbone.representations(tokens)
        keep = tokens.ne(self.cls_idx) & tokens.ne(self.eos_idx) & tokens.ne(self.padding_idx)
        weights = keep.unsqueeze(-1).to(reps.dtype)
        counts = weights.sum(dim=1).clamp(min=1.0)
        return (reps * weights).sum(dim=1) / counts

    def forward(self, tokens: Tensor) -> Tensor:
        """Class logits [B, C]."""
        return self.head(self.dropout(self.embed(tokens)))
