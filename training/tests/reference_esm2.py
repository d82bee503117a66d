"""Test helpers: an independent, literal ESM-2 forward pass and synthetic official checkpoints.

The reference follows the official fair-esm code path step by step (time-first layout, fairseq-style
head reshaping to [B*H, T, d], rotary tables built from the checkpoint's ``inv_freq``, explicit erf
GELU) and works on a plain dict of tensors, sharing no code with argtrain.esm2.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

PAD, MASK, CLS, EOS = 1, 32, 0, 2


def random_official_weights(num_layers: int, dim: int, heads: int, seed: int = 0,
                            vocab: int = 33) -> dict[str, torch.Tensor]:
    """Weights under the official names (prefixes stripped), incl. rotary buffers and tied LM weight.

    Layer norms get non-trivial scales and shifts so that a mix-up of any two tensors shows.
    """
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape, std=0.1):
        return torch.randn(*shape, generator=g) * std

    head_dim = dim // heads
    inv_freq = 1.0 / (10000 ** (torch.arange(0, head_dim, 2).float() / head_dim))
    w = {"embed_tokens.weight": rnd(vocab, dim, std=0.5)}
    w["embed_tokens.weight"][PAD] = 0.0
    for i in range(num_layers):
        p = f"layers.{i}."
        for proj in ("k_proj", "v_proj", "q_proj", "out_proj"):
            w[p + f"self_attn.{proj}.weight"] = rnd(dim, dim, std=dim ** -0.5)
            w[p + f"self_attn.{proj}.bias"] = rnd(dim, std=0.02)
        w[p + "self_attn.rot_emb.inv_freq"] = inv_freq.clone()
        for ln in ("self_attn_layer_norm", "final_layer_norm"):
            w[p + f"{ln}.weight"] = 1.0 + rnd(dim)
            w[p + f"{ln}.bias"] = rnd(dim)
        w[p + "fc1.weight"] = rnd(4 * dim, dim, std=dim ** -0.5)
        w[p + "fc1.bias"] = rnd(4 * dim, std=0.02)
        w[p + "fc2.weight"] = rnd(dim, 4 * dim, std=(4 * dim) ** -0.5)
        w[p + "fc2.bias"] = rnd(dim, std=0.02)
    w["emb_layer_norm_after.weight"] = 1.0 + rnd(dim)
    w["emb_layer_norm_after.bias"] = rnd(dim)
    w["lm_head.dense.weight"] = rnd(dim, dim, std=dim ** -0.5)
    w["lm_head.dense.bias"] = rnd(dim, std=0.02)
    w["lm_head.layer_norm.weight"] = 1.0 + rnd(dim)
    w["lm_head.layer_norm.bias"] = rnd(dim)
    w["lm_head.weight"] = w["embed_tokens.weight"]  # tied, as in the official model
    w["lm_head.bias"] = rnd(vocab)
    return w


def fair_esm_state_dict(w: dict[str, torch.Tensor], contact_head: bool = True) -> dict:
    """The key layout of the official esm2_*.pt files' "model" entry."""
    out = {}
    for k, v in w.items():
        prefix = "encoder." if k.startswith("lm_head.") else "encoder.sentence_encoder."
        out[prefix + k] = v.clone()
    if contact_head:
        n = sum(1 for k in w if k.endswith("self_attn.q_proj.weight"))
        out["encoder.sentence_encoder.contact_head.regression.weight"] = torch.zeros(1, n * 4)
        out["encoder.sentence_encoder.contact_head.regression.bias"] = torch.zeros(1)
    return out


_HF_LAYER = {
    "self_attn.q_proj": "attention.self.query",
    "self_attn.k_proj": "attention.self.key",
    "self_attn.v_proj": "attention.self.value",
    "self_attn.out_proj": "attention.output.dense",
    "self_attn_layer_norm": "attention.LayerNorm",
    "fc1": "intermediate.dense",
    "fc2": "output.dense",
    "final_layer_norm": "LayerNorm",
}


def hf_state_dict(w: dict[str, torch.Tensor]) -> dict:
    """The key layout of Hugging Face EsmForMaskedLM checkpoints (facebook/esm2_*)."""
    out = {}
    for k, v in w.items():
        v = v.clone()
        if k == "embed_tokens.weight":
            out["esm.embeddings.word_embeddings.weight"] = v
        elif k.startswith("emb_layer_norm_after."):
            out["esm.encoder." + k] = v
        elif k == "lm_head.weight":
            out["lm_head.decoder.weight"] = v
        elif k.startswith("lm_head."):
            out[k] = v
        elif k.endswith("rot_emb.inv_freq"):
            i = k.split(".")[1]
            out[f"esm.encoder.layer.{i}.attention.self.rotary_embeddings.inv_freq"] = v
        else:
            _, i, rest = k.split(".", 2)
            mod, leaf = rest.rsplit(".", 1)
            out[f"esm.encoder.layer.{i}.{_HF_LAYER[mod]}.{leaf}"] = v
    n = sum(1 for k in w if k.endswith("self_attn.q_proj.weight"))
    out["esm.contact_head.regression.weight"] = torch.zeros(1, n * 4)
    out["esm.contact_head.regression.bias"] = torch.zeros(1)
    return out


def hf_config(num_layers: int, dim: int, heads: int) -> dict:
    return {"architectures": ["EsmForMaskedLM"], "model_type": "esm", "hidden_size": dim,
            "num_hidden_layers": num_layers, "num_attention_heads": heads,
            "intermediate_size": 4 * dim, "vocab_size": 33, "token_dropout": True,
            "position_embedding_type": "rotary", "emb_layer_norm_before": False,
            "layer_norm_eps": 1e-5, "mask_token_id": 32, "pad_token_id": 1,
            "max_position_embeddings": 1026, "_name_or_path": "synthetic/esm2_test"}


# ---------------------------------------------------------------------------------------------
# The reference forward pass.

def _gelu(x):
    return x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


def _ln(x, w, prefix):
    return F.layer_norm(x, (x.shape[-1],), w[prefix + ".weight"], w[prefix + ".bias"], 1e-5)


def _lin(x, w, prefix):
    return x @ w[prefix + ".weight"].t() + w[prefix + ".bias"]


def _rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _attention(x, w, p, heads, key_padding_mask):
    tgt_len, bsz, dim = x.shape
    head_dim = dim // heads
    q = _lin(x, w, p + "q_proj") * head_dim ** -0.5
    k = _lin(x, w, p + "k_proj")
    v = _lin(x, w, p + "v_proj")
    q = q.contiguous().view(tgt_len, bsz * heads, head_dim).transpose(0, 1)
    k = k.contiguous().view(tgt_len, bsz * heads, head_dim).transpose(0, 1)
    v = v.contiguous().view(tgt_len, bsz * heads, head_dim).transpose(0, 1)
    inv_freq = w[p + "rot_emb.inv_freq"]
    t = torch.arange(tgt_len).type_as(inv_freq)
    freqs = torch.einsum("i,j->ij", t, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[None], emb.sin()[None]
    q = q * cos + _rotate_half(q) * sin
    k = k * cos + _rotate_half(k) * sin
    attn = torch.bmm(q, k.transpose(1, 2))
    if key_padding_mask is not None:
        attn = attn.view(bsz, heads, tgt_len, tgt_len)
        attn = attn.masked_fill(key_padding_mask.unsqueeze(1).unsqueeze(2), float("-inf"))
        attn = attn.view(bsz * heads, tgt_len, tgt_len)
    attn = F.softmax(attn.float(), dim=-1)
    out = torch.bmm(attn, v)
    out = out.transpose(0, 1).contiguous().view(tgt_len, bsz, dim)
    return _lin(out, w, p + "out_proj")


@torch.no_grad()
def reference_forward(w: dict[str, torch.Tensor], tokens: torch.Tensor, heads: int,
                      token_dropout: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(final representations [B, T, E] after emb_layer_norm_after, LM logits [B, T, V])."""
    num_layers = sum(1 for k in w if k.endswith("self_attn.q_proj.weight"))
    padding_mask = tokens.eq(PAD)
    x = F.embedding(tokens, w["embed_tokens.weight"])
    if token_dropout:
        x = x.masked_fill((tokens == MASK).unsqueeze(-1), 0.0)
        mask_ratio_train = 0.15 * 0.8
        src_lengths = (~padding_mask).sum(-1)
        mask_ratio_observed = (tokens == MASK).sum(-1).to(x.dtype) / src_lengths
        x = x * (1 - mask_ratio_train) / (1 - mask_ratio_observed)[:, None, None]
    x = x * (1 - padding_mask.unsqueeze(-1).type_as(x))
    x = x.transpose(0, 1)
    kpm = padding_mask if padding_mask.any() else None
    for i in range(num_layers):
        p = f"layers.{i}."
        residual = x
        x = _ln(x, w, p + "self_attn_layer_norm")
        x = residual + _attention(x, w, p + "self_attn.", heads, kpm)
        residual = x
        x = _ln(x, w, p + "final_layer_norm")
        x = _lin(_gelu(_lin(x, w, p + "fc1")), w, p + "fc2")
        x = residual + x
    x = _ln(x, w, "emb_layer_norm_after").transpose(0, 1)
    h = _ln(_gelu(_lin(x, w, "lm_head.dense")), w, "lm_head.layer_norm")
    logits = h @ w["lm_head.weight"].t() + w["lm_head.bias"]
    return x, logits


def reference_mean_pool(reps: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Mean over residue positions, one sequence at a time (no masking arithmetic to share)."""
    rows = []
    for b in range(tokens.shape[0]):
        pos = [j for j, t in enumerate(tokens[b].tolist()) if t not in (CLS, EOS, PAD)]
        rows.append(reps[b, pos].mean(dim=0))
    return torch.stack(rows)
