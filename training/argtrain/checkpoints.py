"""Loading ESM-2 weights: official fair-esm ``.pt`` files, Hugging Face directories, and our own
pretrain / fine-tune checkpoints. Also a small safetensors reader and writer.

Every loader maps names onto ``esm2.ESM2`` and is strict: a key it does not know, or a parameter the
checkpoint lacks, is an error that names the keys. The few keys that are deliberately dropped (rotary
``inv_freq`` buffers, which are recomputed and compared; the contact-prediction head; HF
``position_ids``; the tied LM output weight, which is compared with the embedding) are listed here.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import json
import os
import re
import struct
import sys
import types
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from . import alphabet
from .esm2 import ESM2, OFFICIAL_MODELS, ESM2Config

PRETRAIN_FORMAT = "argtrain-pretrain/1"
FINETUNE_FORMAT = "argtrain-finetune/1"


class CheckpointError(ValueError):
    """A checkpoint that cannot be mapped onto the model."""


# --------------------------------------------------------------------------------------------------
# safetensors: 8-byte little-endian header length, a JSON header, then the raw tensor bytes.

_ST_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
}
_ST_NAMES = {v: k for k, v in _ST_DTYPES.items()}


def load_safetensors(path: str | os.PathLike) -> dict[str, Tensor]:
    data = Path(path).read_bytes()
    if len(data) < 8:
        raise CheckpointError(f"{path}: too short for a safetensors file")
    (header_len,) = struct.unpack("<Q", data[:8])
    if 8 + header_len > len(data):
        raise CheckpointError(f"{path}: header length {header_len} exceeds the file size")
    header = json.loads(data[8:8 + header_len].decode("utf-8"))
    body = memoryview(data)[8 + header_len:]
    out: dict[str, Tensor] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _ST_DTYPES.get(info["dtype"])
        if dtype is None:
            raise CheckpointError(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
        start, end = info["data_offsets"]
        if not 0 <= start <= end <= len(body):
            raise CheckpointError(f"{path}: tensor {name} has offsets outside the data")
        shape = [int(s) for s in info["shape"]]
        count = 1
        for s in shape:
            count *= s
        itemsize = torch.empty((), dtype=dtype).element_size()
        if end - start != count * itemsize:
            raise CheckpointError(f"{path}: tensor {name} has {end - start} bytes, expected "
                                  f"{count * itemsize} for shape {shape}")
        if count == 0:
            out[name] = torch.empty(shape, dtype=dtype)
            continue
        # frombuffer shares memory with the bytes object; clone so the tensor owns writable memory.
        t = torch.frombuffer(bytearray(body[start:end]), dtype=dtype, count=count)
        out[name] = t.reshape(shape).clone()
    return out


def save_safetensors(tensors: dict[str, Tensor], path: str | os.PathLike,
                     metadata: dict[str, str] | None = None) -> None:
    header: dict[str, Any] = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        if t.dtype not in _ST_NAMES:
            raise CheckpointError(f"tensor {name}: dtype {t.dtype} not supported by safetensors")
        raw = t.view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": _ST_NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    hbytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hbytes += b" " * (-len(hbytes) % 8)  # the format allows padding the header with spaces
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(hbytes)))
        fh.write(hbytes)
        for raw in blobs:
            fh.write(raw)


# --------------------------------------------------------------------------------------------------
# Unpickling fair-esm files without their dependencies. The "cfg" entry is an omegaconf object and
# old "args" an argparse Namespace; only the sizes matter, so unknown classes become plain stubs.

class _Stub:
    def __init__(self, *args: Any, **kwargs: Any):
        self._args = args
        self.__dict__.update(kwargs)

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
            state = {**(state[0] or {}), **state[1]} if isinstance(state[0], dict) else state[1]
        if isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self.__dict__["_state"] = state

    def __call__(self, *args: Any, **kwargs: Any) -> "_Stub":
        return _Stub(*args, **kwargs)


def _stub_class(name: str, module: str) -> type:
    return type(name, (_Stub,), {"__module__": module})


class _StubModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Last-resort import hook: any module that cannot be found becomes a module of stub classes.

    (torch 1.13's torch.load ignores a custom ``pickle_module``, so the hook works at import level.)
    """

    def __init__(self) -> None:
        self.created: list[str] = []

    def find_spec(self, fullname, path, target=None):
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        module = types.ModuleType(spec.name)
        module.__path__ = []  # a package, so that submodules resolve too
        module.__getattr__ = lambda attr, _m=spec.name: _stub_class(attr, _m)
        self.created.append(spec.name)
        return module

    def exec_module(self, module) -> None:
        pass


def torch_load(path: str | os.PathLike) -> Any:
    """torch.load on CPU; objects whose modules are not installed (omegaconf) load as stubs.
    Checkpoints hold more than tensors (configs, histories, fair-esm's argparse Namespace), so
    weights_only is off explicitly: PyTorch 2.6 and later default it to on."""
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except ModuleNotFoundError:
        pass
    hook = _StubModules()
    sys.meta_path.append(hook)
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    finally:
        sys.meta_path.remove(hook)
        for name in hook.created:
            sys.modules.pop(name, None)


def _find_value(obj: Any, key: str, depth: int = 0) -> Any:
    """Search dicts, Namespaces and stubs (omegaconf nodes keep values in ``_val``/``_content``)."""
    if depth > 12 or obj is None:
        return None
    if isinstance(obj, dict):
        items = obj
    elif hasattr(obj, "__dict__"):
        items = vars(obj)
    else:
        return None
    if key in items:
        val = items[key]
        while hasattr(val, "__dict__") and "_val" in vars(val):
            val = vars(val)["_val"]
        if isinstance(val, (int, float, bool, str)):
            return val
    for v in items.values():
        if isinstance(v, (dict, list, tuple)) or hasattr(v, "__dict__"):
            children = v if isinstance(v, (list, tuple)) else [v]
            for c in children:
                found = _find_value(c, key, depth + 1)
                if found is not None:
                    return found
    return None


# --------------------------------------------------------------------------------------------------
# Mapping state dicts onto ESM2.

_LAYER_RE = re.compile(r"^layers\.(\d+)\.")


def _infer_sizes(sd: dict[str, Tensor], where: str) -> tuple[int, int]:
    if "embed_tokens.weight" not in sd:
        raise CheckpointError(f"{where}: missing key(s) ['embed_tokens.weight']")
    vocab, dim = sd["embed_tokens.weight"].shape
    if vocab != len(alphabet.ALPHABET):
        raise CheckpointError(f"{where}: embedding has {vocab} tokens, the ESM-2 alphabet has "
                              f"{len(alphabet.ALPHABET)}")
    layers = {int(m.group(1)) for k in sd if (m := _LAYER_RE.match(k))}
    n = max(layers) + 1 if layers else 0
    if layers != set(range(n)):
        raise CheckpointError(f"{where}: layer indices are not contiguous: {sorted(layers)}")
    return n, int(dim)


def _guess_heads(num_layers: int, dim: int, where: str) -> int:
    for cfg in OFFICIAL_MODELS.values():
        if cfg.num_layers == num_layers and cfg.embed_dim == dim:
            return cfg.attention_heads
    raise CheckpointError(f"{where}: cannot tell the number of attention heads of a {num_layers}-layer "
                          f"{dim}-dim model; pass it explicitly")


def _check_inv_freq(name: str, t: Tensor, model: ESM2) -> None:
    expected = model.rotary.inv_freq
    if t.shape != expected.shape or not torch.allclose(t.float(), expected, rtol=1e-5, atol=1e-7):
        raise CheckpointError(f"rotary buffer {name} does not match head dimension "
                              f"{model.embed_dim // model.attention_heads}")


def load_into_esm2(sd: dict[str, Tensor], config: ESM2Config, where: str,
                   aux: dict[str, Tensor] | None = None, require_lm_head: bool = True) -> ESM2:
    """Build an ESM2 and load a state dict already in our names; strict both ways.

    ``aux`` holds the knowingly dropped entries: rotary ``inv_freq`` buffers and a tied LM weight.
    """
    model = ESM2(config)
    expected = model.state_dict()
    unknown = sorted(k for k in sd if k not in expected)
    missing = sorted(k for k in expected if k not in sd)
    if not require_lm_head:
        missing = [k for k in missing if not k.startswith("lm_head.")]
    if unknown:
        raise CheckpointError(f"{where}: unknown key(s) {unknown}")
    if missing:
        raise CheckpointError(f"{where}: missing key(s) {missing}")
    wrong = [f"{k} {tuple(v.shape)} != {tuple(expected[k].shape)}"
             for k, v in sd.items() if tuple(v.shape) != tuple(expected[k].shape)]
    if wrong:
        raise CheckpointError(f"{where}: shape mismatch: {wrong}")
    model.load_state_dict({k: v.float() for k, v in sd.items()}, strict=require_lm_head)
    for name, t in (aux or {}).items():
        if name.endswith("inv_freq"):
            _check_inv_freq(name, t, model)
        elif t.shape != model.embed_tokens.weight.shape or not torch.equal(
                t.float(), model.embed_tokens.weight.detach()):
            # ESM-2 ties the LM output projection to the embedding; this model relies on it.
            raise CheckpointError(f"{where}: {name} is not tied to the token embedding")
    return model


def _fair_esm_to_ours(raw: dict[str, Tensor], where: str) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    sd, aux, unknown = {}, {}, []
    for key, t in raw.items():
        name = re.sub(r"^(encoder\.sentence_encoder\.|encoder\.)", "", key)
        if name.startswith("contact_head."):
            continue  # contact prediction is not used; its weights ship separately anyway
        if name.endswith("self_attn.rot_emb.inv_freq") and _LAYER_RE.match(name):
            aux[key] = t
        elif name == "lm_head.weight":
            aux[key] = t
        elif name == "version" or name.endswith(".version"):
            unknown.append(key)
        else:
            sd[name] = t
    if unknown:
        raise CheckpointError(f"{where}: unknown key(s) {sorted(unknown)}")
    return sd, aux


def load_fair_esm(path: str | os.PathLike, attention_heads: int | None = None) -> ESM2:
    """An official fair-esm ESM-2 ``.pt`` file ({"model": state_dict, "cfg" | "args": ...})."""
    where = str(path)
    data = torch_load(path)
    if not isinstance(data, dict) or "model" not in data:
        raise CheckpointError(f"{where}: not a fair-esm checkpoint (no 'model' entry)")
    sd, aux = _fair_esm_to_ours(data["model"], where)
    num_layers, dim = _infer_sizes(sd, where)
    cfg_obj = data.get("cfg", data.get("args"))
    heads = attention_heads or _find_value(cfg_obj, "encoder_attention_heads")
    heads = int(heads) if heads else _guess_heads(num_layers, dim, where)
    token_dropout = _find_value(cfg_obj, "token_dropout")
    config = ESM2Config(num_layers, dim, heads, True if token_dropout is None else bool(token_dropout))
    return load_into_esm2(sd, config, where, aux)


_HF_LAYER = {
    "attention.self.query": "self_attn.q_proj",
    "attention.self.key": "self_attn.k_proj",
    "attention.self.value": "self_attn.v_proj",
    "attention.output.dense": "self_attn.out_proj",
    "attention.LayerNorm": "self_attn_layer_norm",
    "intermediate.dense": "fc1",
    "output.dense": "fc2",
    "LayerNorm": "final_layer_norm",
}
_HF_TOP = {
    "embeddings.word_embeddings.weight": "embed_tokens.weight",
    "encoder.emb_layer_norm_after.weight": "emb_layer_norm_after.weight",
    "encoder.emb_layer_norm_after.bias": "emb_layer_norm_after.bias",
    "lm_head.dense.weight": "lm_head.dense.weight",
    "lm_head.dense.bias": "lm_head.dense.bias",
    "lm_head.layer_norm.weight": "lm_head.layer_norm.weight",
    "lm_head.layer_norm.bias": "lm_head.layer_norm.bias",
    "lm_head.bias": "lm_head.bias",
}
_HF_LAYER_RE = re.compile(r"^encoder\.layer\.(\d+)\.(.+)\.(weight|bias)$")


def _hf_to_ours(raw: dict[str, Tensor], where: str) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    sd, aux, unknown = {}, {}, []
    for key, t in raw.items():
        name = key[len("esm."):] if key.startswith("esm.") else key
        if name in _HF_TOP:
            sd[_HF_TOP[name]] = t
            continue
        if name == "lm_head.decoder.weight":
            aux[key] = t
            continue
        if (name.startswith("contact_head.") or name.startswith("pooler.")
                or name == "embeddings.position_ids"):
            continue  # contact head, unused pooler, a constant buffer of old transformers versions
        if re.match(r"^encoder\.layer\.\d+\.attention\.self\.rotary_embeddings\.inv_freq$", name):
            aux[key] = t
            continue
        m = _HF_LAYER_RE.match(name)
        if m and m.group(2) in _HF_LAYER:
            sd[f"layers.{m.group(1)}.{_HF_LAYER[m.group(2)]}.{m.group(3)}"] = t
            continue
        unknown.append(key)
    if unknown:
        raise CheckpointError(f"{where}: unknown key(s) {sorted(unknown)}")
    return sd, aux


def load_hf(directory: str | os.PathLike, require_lm_head: bool = True) -> ESM2:
    """A Hugging Face ESM-2 directory: config.json plus model.safetensors or pytorch_model.bin."""
    d = Path(directory)
    where = str(d)
    cfg_path = d / "config.json"
    if not cfg_path.is_file():
        raise CheckpointError(f"{where}: no config.json")
    cfg = json.loads(cfg_path.read_text())
    if cfg.get("position_embedding_type", "rotary") != "rotary":
        raise CheckpointError(f"{where}: position_embedding_type {cfg['position_embedding_type']!r} "
                              "is not ESM-2's 'rotary'")
    if cfg.get("emb_layer_norm_before"):
        raise CheckpointError(f"{where}: emb_layer_norm_before=true is not an ESM-2 layout")
    if int(cfg.get("vocab_size", 33)) != len(alphabet.ALPHABET):
        raise CheckpointError(f"{where}: vocab_size {cfg['vocab_size']} is not the ESM-2 alphabet")
    if (d / "model.safetensors").is_file():
        raw = load_safetensors(d / "model.safetensors")
    elif (d / "pytorch_model.bin").is_file():
        raw = torch.load(d / "pytorch_model.bin", map_location="cpu")
    else:
        raise CheckpointError(f"{where}: neither model.safetensors nor pytorch_model.bin")
    sd, aux = _hf_to_ours(raw, where)
    num_layers, dim = _infer_sizes(sd, where)
    if int(cfg.get("num_hidden_layers", num_layers)) != num_layers or int(
            cfg.get("hidden_size", dim)) != dim:
        raise CheckpointError(f"{where}: config.json sizes disagree with the weights "
                              f"({num_layers} layers, {dim} dim)")
    if int(cfg.get("intermediate_size", 4 * dim)) != 4 * dim:
        raise CheckpointError(f"{where}: intermediate_size must be 4 * hidden_size for ESM-2")
    heads = cfg.get("num_attention_heads") or _guess_heads(num_layers, dim, where)
    config = ESM2Config(num_layers, dim, int(heads), bool(cfg.get("token_dropout", True)))
    return load_into_esm2(sd, config, where, aux, require_lm_head=require_lm_head)


# --------------------------------------------------------------------------------------------------
# Our own formats.

def save_atomic(state: dict, path: str | os.PathLike) -> None:
    """torch.save through a temporary file, so that a killed run never leaves half a checkpoint."""
    tmp = f"{path}.tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)


def save_pretrain_checkpoint(path: str | os.PathLike, model: ESM2, extra: dict | None = None) -> None:
    state = {"format": PRETRAIN_FORMAT, "config": model.config.to_dict(),
             "model": model.state_dict(), **(extra or {})}
    save_atomic(state, path)


def backbone_from_finetune(data: dict, where: str) -> ESM2:
    """The backbone of a fine-tune checkpoint, LoRA merged."""
    from .lora import LoRAConfig, apply_lora, merge_lora
    from .classifier import ARGClassifier, HeadConfig

    model = ARGClassifier.build(ESM2Config.from_dict(data["backbone_config"]), len(data["classes"]),
                                head_config=HeadConfig.from_dict(data.get("head")))
    if data.get("lora"):
        apply_lora(model, LoRAConfig.from_dict(data["lora"]))
    _strict_load(model, data["model"], where)
    merge_lora(model)
    return model.backbone


def _strict_load(model: torch.nn.Module, sd: dict[str, Tensor], where: str) -> None:
    expected = model.state_dict()
    unknown = sorted(k for k in sd if k not in expected)
    missing = sorted(k for k in expected if k not in sd)
    if unknown or missing:
        raise CheckpointError(f"{where}: unknown key(s) {unknown}; missing key(s) {missing}")
    model.load_state_dict(sd)


def load_backbone(path: str | os.PathLike, attention_heads: int | None = None) -> tuple[ESM2, str]:
    """Any supported backbone source -> (ESM2, source description for model.json)."""
    p = Path(path)
    if p.is_dir():
        if (p / "config.json").is_file():
            cfg = json.loads((p / "config.json").read_text())
            return load_hf(p), str(cfg.get("_name_or_path") or p.name)
        if (p / "best.pt").is_file():
            p = p / "best.pt"
        else:
            raise CheckpointError(f"{p}: a directory without config.json (HF) or best.pt (fine-tune)")
    data = torch_load(p)
    where = str(p)
    if isinstance(data, dict) and data.get("format") == PRETRAIN_FORMAT:
        config = ESM2Config.from_dict(data["config"])
        model = ESM2(config)
        _strict_load(model, data["model"], where)
        return model, str(data.get("source") or f"pretrained:{p.name}")
    if isinstance(data, dict) and data.get("format") == FINETUNE_FORMAT:
        return backbone_from_finetune(data, where), str(data.get("backbone_source") or p.name)
    if isinstance(data, dict) and "model" in data:
        return load_fair_esm(p, attention_heads), p.stem
    raise CheckpointError(f"{where}: not a fair-esm, Hugging Face, pretrain or fine-tune checkpoint")
