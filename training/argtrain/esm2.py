"""ESM-2 (Lin et al. 2022) in plain PyTorch, scriptable with ``torch.jit.script``.

The computation follows the official ``esm.model.esm2.ESM2`` exactly (token-dropout rescaling,
pre-layer-norm blocks, rotary q/k, erf GELU, final layer norm, tied RoBERTa-style LM head). The layout
is batch-first ([B, T, E]) instead of the official time-first one, which changes nothing numerically.
Parameter names are the official ones with the ``encoder.sentence_encoder.`` / ``encoder.`` prefixes
stripped, so a fair-esm state dict maps one-to-one (see checkpoints.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import alphabet

# ESM-2 was trained with 15% of positions selected and 80% of those replaced by <mask>; the
# embedding is rescaled as if that fraction had been dropped (the official "token dropout").
MASK_RATIO_TRAIN = 0.15 * 0.8


@dataclass
class ESM2Config:
    num_layers: int
    embed_dim: int
    attention_heads: int
    token_dropout: bool = True

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ESM2Config":
        return cls(int(d["num_layers"]), int(d["embed_dim"]), int(d["attention_heads"]),
                   bool(d.get("token_dropout", True)))


# The official models, for guessing the head count of a bare state dict (attention heads are the
# one size a state dict does not reveal); download.py lists the same without importing torch.
OFFICIAL_MODELS: dict[str, ESM2Config] = {
    "esm2_t6_8M_UR50D": ESM2Config(6, 320, 20),
    "esm2_t12_35M_UR50D": ESM2Config(12, 480, 20),
    "esm2_t30_150M_UR50D": ESM2Config(30, 640, 20),
    "esm2_t33_650M_UR50D": ESM2Config(33, 1280, 20),
    "esm2_t36_3B_UR50D": ESM2Config(36, 2560, 40),
    "esm2_t48_15B_UR50D": ESM2Config(48, 5120, 40),
}


def rotate_half(x: Tensor) -> Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class RotaryEmbedding(nn.Module):
    """Rotary position embedding over the head dimension (RoFormer / GPT-NeoX form, as in ESM)."""

    def __init__(self, head_dim: int):
        super().__init__()
        inv_freq = 1.0 / (10000 ** (torch.arange(0, head_dim, 2).float() / head_dim))
        # Not persistent: it is a function of head_dim; checkpoints that carry it are checked instead.
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, seq_len: int, device: torch.device) -> Tuple[Tensor, Tensor]:
        """cos and sin tables [1, 1, T, head_dim], computed once per forward for all layers."""
        inv_freq = self.inv_freq.to(device)
        t = torch.arange(seq_len, device=device).type_as(inv_freq)
        freqs = torch.outer(t, inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos()[None, None, :, :], emb.sin()[None, None, :, :]


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    return (x * cos) + (rotate_half(x) * sin)


class SelfAttention(nn.Module):
    def __init__(self, embed_dim: int, num_heads: int, max_scores: int = 1 << 18):
        super().__init__()
        if embed_dim % num_heads != 0:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by attention_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        if self.head_dim % 2 != 0:
            raise ValueError(f"head dimension {self.head_dim} must be even for rotary embeddings")
        self.scaling = self.head_dim ** -0.5
        # Attention scores are computed for at most this many (head, query, key) entries at a time
        # (1 MiB of fp32). Softmax and the two batched products are memory-bound at small head
        # sizes, so chunks that stay in the L2 cache run faster than one [heads, T, T] tensor
        # (bench/results/ has the timings).
        self.max_scores = max_scores
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.out_proj = nn.Linear(embed_dim, embed_dim)

    def _attend(self, q: Tensor, k: Tensor, v: Tensor, key_bias: Optional[Tensor]) -> Tensor:
        if key_bias is None:
            scores = torch.bmm(q, k.transpose(1, 2))  # [N, T, T]
        else:
            # The padding mask is added inside the product (0 or -inf per key), which saves a
            # separate masking pass over the score tensor.
            scores = torch.baddbmm(key_bias, q, k.transpose(1, 2))
        if self.training:
            # The official float softmax, which also keeps its gradient in fp32 under autocast.
            probs = F.softmax(scores.float(), dim=-1).type_as(q)
        else:
            # Softmax accumulates in fp32 internally for bf16 input; a round trip through a float
            # copy gives the same bf16 result, only slower.
            probs = F.softmax(scores, dim=-1)
        return torch.bmm(probs, v)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, padding_mask: Optional[Tensor]) -> Tensor:
        b, t, e = x.shape
        h, d = self.num_heads, self.head_dim
        # Scale q before the rotation, in the official order.
        q = self.q_proj(x) * self.scaling
        k = self.k_proj(x)
        v = self.v_proj(x)
        # Contiguous [B*H, T, D]: batched products over a strided head layout run slower.
        q = apply_rotary(q.view(b, t, h, d).transpose(1, 2), cos, sin).contiguous().view(b * h, t, d)
        k = apply_rotary(k.view(b, t, h, d).transpose(1, 2), cos, sin).contiguous().view(b * h, t, d)
        v = v.view(b, t, h, d).transpose(1, 2).contiguous().view(b * h, t, d)
        key_bias: Optional[Tensor] = None
        if padding_mask is not None:
            bias = torch.zeros(b, t, dtype=q.dtype, device=q.device).masked_fill(
                padding_mask, float("-inf"))
            key_bias = bias[:, None, None, :].expand(b, h, 1, t).reshape(b * h, 1, t)
        n = b * h
        chunk = max(1, self.max_scores // (t * t))
        if chunk >= n:
            out = self._attend(q, k, v, key_bias)
        else:
            parts: List[Tensor] = []
            for s in range(0, n, chunk):
                m: Optional[Tensor] = None
                if key_bias is not None:
                    m = key_bias[s:s + chunk]
                parts.append(self._attend(q[s:s + chunk], k[s:s + chunk], v[s:s + chunk], m))
            out = torch.cat(parts, 0)
        out = out.view(b, h, t, d).transpose(1, 2).reshape(b, t, e)
        return self.out_proj(out)


class TransformerLayer(nn.Module):
    """Pre-layer-norm block: x + attn(LN(x)), then x + fc2(gelu(fc1(LN(x))))."""

    def __init__(self, embed_dim: int, ffn_dim: int, num_heads: int):
        super().__init__()
        self.self_attn = SelfAttention(embed_dim, num_heads)
        self.self_attn_layer_norm = nn.LayerNorm(embed_dim)
        self.fc1 = nn.Linear(embed_dim, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, embed_dim)
        self.final_layer_norm = nn.LayerNorm(embed_dim)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, padding_mask: Optional[Tensor]) -> Tensor:
        x = x + self.self_attn(self.self_attn_layer_norm(x), cos, sin, padding_mask)
        x = x + self.fc2(F.gelu(self.fc1(self.final_layer_norm(x))))
        return x


class LMHead(nn.Module):
    """RoBERTa LM head; the output projection is the token embedding (passed in, i.e. tied)."""

    def __init__(self, embed_dim: int, vocab_size: int):
        super().__init__()
        self.dense = nn.Linear(embed_dim, embed_dim)
        self.layer_norm = nn.LayerNorm(embed_dim)
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, x: Tensor, embed_weight: Tensor) -> Tensor:
        x = self.layer_norm(F.gelu(self.dense(x)))
        return F.linear(x, embed_weight) + self.bias


class ESM2(nn.Module):
    __jit_unused_properties__ = ["config"]

    def __init__(self, config: ESM2Config):
        super().__init__()
        self.num_layers = config.num_layers
        self.embed_dim = config.embed_dim
        self.attention_heads = config.attention_heads
        self.token_dropout = config.token_dropout
        self.padding_idx = alphabet.PAD
        self.mask_idx = alphabet.MASK
        self.mask_ratio_train = MASK_RATIO_TRAIN
        vocab = len(alphabet.ALPHABET)
        self.embed_tokens = nn.Embedding(vocab, config.embed_dim, padding_idx=alphabet.PAD)
        self.layers = nn.ModuleList(
            [TransformerLayer(config.embed_dim, 4 * config.embed_dim, config.attention_heads)
             for _ in range(config.num_layers)]
        )
        self.emb_layer_norm_after = nn.LayerNorm(config.embed_dim)
        self.lm_head = LMHead(config.embed_dim, vocab)
        self.rotary = RotaryEmbedding(config.embed_dim // config.attention_heads)

    @property
    def config(self) -> ESM2Config:
        return ESM2Config(self.num_layers, self.embed_dim, self.attention_heads, self.token_dropout)

    def init_weights(self, std: float = 0.02) -> None:
        """BERT-style initialisation for training from scratch (the official class keeps torch's)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, std)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.embed_tokens.weight, 0.0, std)
        with torch.no_grad():
            self.embed_tokens.weight[self.padding_idx].zero_()
        nn.init.zeros_(self.lm_head.bias)

    def representations(self, tokens: Tensor) -> Tensor:
        """Final-layer representations [B, T, E], after ``emb_layer_norm_after``."""
        padding_mask = tokens.eq(self.padding_idx)
        x = self.embed_tokens(tokens)  # embed_scale is 1 in ESM-2
        if self.token_dropout:
            is_mask = tokens.eq(self.mask_idx)
            x = x.masked_fill(is_mask.unsqueeze(-1), 0.0)
            src_lengths = (~padding_mask).sum(-1)
            mask_ratio_observed = is_mask.sum(-1).to(x.dtype) / src_lengths
            x = x * (1 - self.mask_ratio_train) / (1 - mask_ratio_observed)[:, None, None]
        x = x * (1 - padding_mask.unsqueeze(-1).type_as(x))
        cos, sin = self.rotary(tokens.size(1), tokens.device)
        cos = cos.to(x.dtype)
        sin = sin.to(x.dtype)
        key_mask: Optional[Tensor] = padding_mask if bool(padding_mask.any()) else None
        for layer in self.layers:
            x = layer(x, cos, sin, key_mask)
        return self.emb_layer_norm_after(x)

    def lm_logits(self, reps: Tensor) -> Tensor:
        return self.lm_head(reps, self.embed_tokens.weight)

    def forward(self, tokens: Tensor) -> Tensor:
        """Masked-LM logits [B, T, vocab]."""
        return self.lm_logits(self.representations(tokens))


def num_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)

