"""The TorchScript artifact the server loads (docs/model-artifact.md), written by ``argtrain export``.

The model comes from a fine-tune checkpoint (``--checkpoint``) or is built with random weights
(``--random-init``, for tests and for wiring up the server before any training). LoRA is merged, the
model is scripted, scripted and eager outputs are compared, and ``model.json`` is stored inside the
file as an extra file, next to ``references.tsv`` when there is a reference set
(argtrain.references).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import torch

from . import alphabet
from .checkpoints import FINETUNE_FORMAT, CheckpointError, _strict_load, torch_load
from .classifier import ARGClassifier, HeadConfig
from .esm2 import ESM2Config
from .lora import LoRAConfig, apply_lora, merge_lora

ARTIFACT_FORMAT = "argserve-model/1"
REQUIRED_KEYS = ["format", "name", "version", "classes", "nonarg_class", "alphabet",
                 "special_tokens", "residues", "max_residues", "backbone"]
TOLERANCE = 1e-4


def random_model(num_layers: int, embed_dim: int, heads: int, num_classes: int, seed: int
                 ) -> ARGClassifier:
    torch.manual_seed(seed)
    model = ARGClassifier.build(ESM2Config(num_layers, embed_dim, heads), num_classes)
    model.backbone.init_weights()
    return model


def load_finetuned(path: str) -> tuple[ARGClassifier, dict]:
    """Model (LoRA not yet merged) and the checkpoint's metadata."""
    p = Path(path)
    if p.is_dir():
        p = p / "best.pt"
    data = torch_load(p)
    if not isinstance(data, dict) or data.get("format") != FINETUNE_FORMAT:
        raise CheckpointError(f"{p}: not a fine-tune checkpoint written by 'argtrain finetune'")
    model = ARGClassifier.build(ESM2Config.from_dict(data["backbone_config"]), len(data["classes"]),
                                float(data.get("head_dropout", 0.1)),
                                HeadConfig.from_dict(data.get("head")))
    if data.get("lora"):
        apply_lora(model, LoRAConfig.from_dict(data["lora"]))
    _strict_load(model, data["model"], str(p))
    meta = {k: v for k, v in data.items() if k != "model" and k != "optimizer"}
    return model, meta


def random_tokens(n: int, max_len: int, seed: int) -> tuple[list[str], torch.Tensor]:
    rng = random.Random(seed)
    seqs = ["".join(rng.choice(alphabet.STANDARD_AA) for _ in range(rng.randint(1, max_len)))
            for _ in range(n)]
    return seqs, alphabet.batch_encode(seqs)


def check_scripted(eager: ARGClassifier, scripted: torch.jit.ScriptModule, n: int, max_len: int,
                   seed: int) -> dict[str, float]:
    """Max abs differences scripted vs eager, and single vs padded-batch embedding."""
    seqs, tokens = random_tokens(max(2, n), max_len, seed)
    with torch.no_grad():
        d_fwd = (eager(tokens) - scripted(tokens)).abs().max().item()
        batch_emb = scripted.embed(tokens)
        d_emb = (eager.embed(tokens) - batch_emb).abs().max().item()
        d_pad = max((scripted.embed(alphabet.batch_encode([s]))[0] - batch_emb[i]).abs().max().item()
                    for i, s in enumerate(seqs))
    return {"forward": d_fwd, "embed": d_emb, "padding": d_pad}


def fold_temperature(model: ARGClassifier, temperature: float) -> None:
    """Divide the head's weights and bias by T, so the artifact's logits are already calibrated."""
    with torch.no_grad():
        model.head.weight.div_(temperature)
        model.head.bias.div_(temperature)


def calibration_json(calibration: dict | None) -> dict | None:
    if not calibration:
        return None
    out = {"temperature": calibration["temperature"], "temperature_in_logits": True,
           "min_residues": int(calibration.get("min_residues", 0))}
    if "arg_threshold" in calibration:
        out["arg_threshold"] = calibration["arg_threshold"]
    if "max_residues" in calibration:  # the length validation proteins were calibrated at
        out["max_residues"] = int(calibration["max_residues"])
    out["validation"] = calibration.get("validation")
    return out


def model_json(*, name: str, version: str, classes: list[str], nonarg_class: str, max_residues: int,
               config: ESM2Config, source: str, lora: dict | None, training: dict | None,
               metrics: dict | None, calibration: dict | None = None,
               references: dict | None = None, evidence: dict | None = None,
               head: HeadConfig | None = None) -> dict:
    if nonarg_class not in classes:
        raise ValueError(f"nonarg class {nonarg_class!r} is not one of the classes {classes}")
    return {
        "format": ARTIFACT_FORMAT,
        "name": name,
        "version": version,
        "classes": list(classes),
        "nonarg_class": nonarg_class,
        **alphabet.model_json_alphabet(),
        "max_residues": int(max_residues),
        "backbone": {"architecture": "esm2", "num_layers": config.num_layers,
                     "embed_dim": config.embed_dim, "attention_heads": config.attention_heads,
                     "token_dropout": config.token_dropout, "source": source},
        "head": head_json(head or HeadConfig(), config.embed_dim),
        "lora": None if lora is None else {**lora, "merged": True},
        "calibration": calibration_json(calibration),
        "references": references,
        "evidence": evidence,
        "training": training,
        "metrics": metrics,
    }


def head_json(head: HeadConfig, embed_dim: int) -> dict:
    out = {"type": head.type_name(), "embedding_dim": head.pooled_dim(embed_dim),
           "pooling": head.pooling}
    if head.hidden:
        out["hidden"] = head.hidden
    if head.standardize:
        out["standardized"] = True
    return out


def _as_text(data: str | bytes) -> str:
    # torch.jit.load hands extra files back as bytes (str in some versions).
    return data.decode("utf-8") if isinstance(data, bytes) else data


def export_model(model: ARGClassifier, meta: dict, out: str, check_sequences: int = 8,
                 seed: int = 0, extra_files: dict[str, str] | None = None) -> dict[str, float]:
    """Merge LoRA, script, check, save with model.json and ``extra_files`` (name -> text);
    returns the measured differences."""
    model = merge_lora(model).eval().float().cpu()
    for p in model.parameters():
        p.requires_grad_(False)
    scripted = torch.jit.script(model)
    diffs = check_scripted(model, scripted, check_sequences, min(64, meta["max_residues"]), seed)
    bad = {k: v for k, v in diffs.items() if not v < TOLERANCE}
    if bad:
        raise RuntimeError(f"scripted model differs from the eager model: {bad} (limit {TOLERANCE})")
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise ValueError(f"model.json lacks required keys {missing}")
    extra = dict(extra_files or {})
    if "model.json" in extra:
        raise ValueError("model.json is written from meta, not passed as an extra file")
    text = json.dumps(meta, indent=2, sort_keys=False)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    tmp = f"{out}.tmp"
    torch.jit.save(scripted, tmp, _extra_files={"model.json": text, **extra})
    os.replace(tmp, out)
    # Read it back the way the server will.
    files = {"model.json": "", **{name: "" for name in extra}}
    loaded = torch.jit.load(out, _extra_files=files)
    if json.loads(files["model.json"]) != meta:
        raise RuntimeError("model.json did not round-trip")
    for name, content in extra.items():
        if _as_text(files[name]) != content:
            raise RuntimeError(f"{name} did not round-trip")
    _, tokens = random_tokens(2, 16, seed + 1)
    with torch.no_grad():
        if not torch.allclose(loaded(tokens), scripted(tokens), atol=TOLERANCE, rtol=0):
            raise RuntimeError("the saved artifact gives different outputs")
    return diffs
