"""ARG classifier: ESM-2 backbone, pooling over residue positions, dropout, classification head.

The head is a linear layer on the pooled representation, optionally after one hidden layer (GELU).
Pooling is the mean over residues (the seed design), their maximum per dimension, or both side by
side: the maximum keeps a motif that occurs in a few residues of a long protein, which the mean
dilutes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from . import alphabet
from .esm2 import ESM2, ESM2Config

POOLINGS = ("mean", "max", "mean+max")


@dataclass
class HeadConfig:
    pooling: str = "mean"
    hidden: int = 0  # width of the hidden layer; 0 = linear head on the pooled representation
    # Standardize the pooled representation per dimension with fixed statistics (set from the
    # training proteins by the head warm-up): max-pooled values sit far from 0 with a small spread,
    # which a head trained by SGD on them learns slowly.
    standardize: bool = False

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {self.pooling!r}; choose from {list(POOLINGS)}")
        if self.hidden < 0:
            raise ValueError("hidden width must be >= 0")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> "HeadConfig":
        """Checkpoints written before heads were configurable hold none: the mean-linear head."""
        d = d or {}
        return cls(str(d.get("pooling", "mean")), int(d.get("hidden", 0)),
                   bool(d.get("standardize", False)))

    def pooled_dim(self, embed_dim: int) -> int:
        return 2 * embed_dim if self.pooling == "mean+max" else embed_dim

    def type_name(self) -> str:
        """The artifact's ``head.type``: e.g. mean-pool-linear, max-pool-mlp."""
        return f"{self.pooling.replace('+', '-')}-pool-{'mlp' if self.hidden else 'linear'}"


class ARGClassifier(nn.Module):
    __jit_ignored_attributes__ = ["head_config"]

    def __init__(self, backbone: ESM2, num_classes: int, dropout: float = 0.1,
                 head_config: HeadConfig | None = None):
        super().__init__()
        cfg = head_config or HeadConfig()
        self.head_config = cfg
        self.backbone = backbone
        self.cls_idx = alphabet.CLS
        self.eos_idx = alphabet.EOS
        self.padding_idx = alphabet.PAD
        self.use_mean = cfg.pooling in ("mean", "mean+max")
        self.use_max = cfg.pooling in ("max", "mean+max")
        self.dropout = nn.Dropout(dropout)
        width = cfg.pooled_dim(backbone.embed_dim)
        self.standardize = cfg.standardize
        # Not in the state dict of a head without standardization (checkpoints from before).
        self.register_buffer("pooled_shift", torch.zeros(width), persistent=cfg.standardize)
        self.register_buffer("pooled_scale", torch.ones(width), persistent=cfg.standardize)
        if cfg.hidden:
            self.hidden = nn.Sequential(nn.Linear(width, cfg.hidden), nn.GELU(), nn.Dropout(dropout))
            width = cfg.hidden
        else:
            self.hidden = nn.Sequential()
        # The last linear layer stays ``head``: calibration folds the temperature into it.
        self.head = nn.Linear(width, num_classes)

    @classmethod
    def build(cls, config: ESM2Config, num_classes: int, dropout: float = 0.1,
              head_config: HeadConfig | None = None) -> "ARGClassifier":
        return cls(ESM2(config), num_classes, dropout, head_config)

    @torch.jit.export
    def embed(self, tokens: Tensor) -> Tensor:
        """Pooled final representations over residue positions (no <cls>, <eos>, <pad>)."""
        reps = self.backbone.representations(tokens)
        keep = (tokens.ne(self.cls_idx) & tokens.ne(self.eos_idx)
                & tokens.ne(self.padding_idx)).unsqueeze(-1)
        parts: list[Tensor] = []
        if self.use_mean:
            weights = keep.to(reps.dtype)
            counts = weights.sum(dim=1).clamp(min=1.0)
            parts.append((reps * weights).sum(dim=1) / counts)
        if self.use_max:
            # Layer-normed values are far above -1e4, which bf16 and fp16 both hold.
            parts.append(reps.masked_fill(~keep, -1e4).amax(dim=1))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)

    def classify(self, pooled: Tensor) -> Tensor:
        """Class logits [B, C] of pooled representations [B, D]."""
        if self.standardize:
            pooled = (pooled - self.pooled_shift) / self.pooled_scale
        return self.head(self.hidden(self.dropout(pooled)))

    @torch.jit.ignore
    def set_standardization(self, pooled: Tensor) -> None:
        """Per-dimension mean and standard deviation of ``pooled`` [N, D] become the fixed
        standardization (a head configured with ``standardize``)."""
        if not self.standardize:
            raise ValueError("this head is not configured to standardize")
        with torch.no_grad():
            self.pooled_shift.copy_(pooled.mean(dim=0))
            # A floor keeps a dimension that barely varies from magnifying bf16 noise.
            self.pooled_scale.copy_(pooled.std(dim=0, unbiased=False).clamp(min=1e-2))

    def forward(self, tokens: Tensor) -> Tensor:
        """Class logits [B, C]."""
        return self.classify(self.embed(tokens))
