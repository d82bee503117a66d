"""Low-rank adaptation (Hu et al. 2021) of the ESM-2 linear layers.

``W x + b`` becomes ``W x + b + (alpha / r) * B A dropout(x)`` with A [r, in] random and B [out, r]
zero, so an adapted model starts out computing exactly what the base model does. For export the
update is merged into W and the layer turns back into a plain ``nn.Linear``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .classifier import ARGClassifier

# Target name -> attribute name inside a TransformerLayer; "classifier" is the head.
LAYER_TARGETS = {
    "q": "self_attn.q_proj",
    "k": "self_attn.k_proj",
    "v": "self_attn.v_proj",
    "out": "self_attn.out_proj",
    "fc1": "fc1",
    "fc2": "fc2",
}
ALL_TARGETS = list(LAYER_TARGETS) + ["classifier"]


@dataclass
class LoRAConfig:
    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.1
    targets: list[str] = field(default_factory=lambda: ["q", "k", "v", "out", "fc1", "fc2"])
    # Adapt only the last N transformer layers (0 = all). Gradients then stop at the first adapted
    # layer, so training skips the backward pass through the frozen lower layers.
    last_layers: int = 0
    # Also train the backbone's layer norms (weights and biases) in full: few parameters.
    train_norms: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "LoRAConfig":
        return cls(int(d["rank"]), float(d["alpha"]), float(d["dropout"]), list(d["targets"]),
                   int(d.get("last_layers", 0)), bool(d.get("train_norms", False)))


def parse_targets(text: str) -> list[str]:
    targets = [t.strip() for t in text.split(",") if t.strip()]
    if "all" in targets:
        return list(ALL_TARGETS)
    unknown = [t for t in targets if t not in ALL_TARGETS]
    if unknown or not targets:
        raise ValueError(f"unknown LoRA targets {unknown}; choose from {ALL_TARGETS} or 'all'")
    return targets


class LoRALinear(nn.Linear):
    """A frozen ``nn.Linear`` plus a trainable low-rank update. Keeps the base parameter names."""

    def __init__(self, in_features: int, out_features: int, rank: int, alpha: float, dropout: float):
        super().__init__(in_features, out_features)
        if rank < 1:
            raise ValueError("LoRA rank must be >= 1")
        self.rank = rank
        self.scaling = alpha / rank
        self.lora_A = nn.Parameter(torch.empty(rank, in_features))
        self.lora_B = nn.Parameter(torch.zeros(out_features, rank))
        # Same initialisation as loralib: A like a Linear weight, B zero -> the update starts at 0.
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.weight.requires_grad_(False)
        self.bias.requires_grad_(False)

    @classmethod
    def wrap(cls, base: nn.Linear, rank: int, alpha: float, dropout: float) -> "LoRALinear":
        layer = cls(base.in_features, base.out_features, rank, alpha, dropout)
        layer.to(base.weight.device, base.weight.dtype)
        with torch.no_grad():
            layer.weight.copy_(base.weight)
            layer.bias.copy_(base.bias)
        return layer

    def forward(self, x: Tensor) -> Tensor:
        base = F.linear(x, self.weight, self.bias)
        update = F.linear(F.linear(self.lora_dropout(x), self.lora_A), self.lora_B)
        return base + update * self.scaling

    def merged(self) -> nn.Linear:
        """A plain Linear whose weight includes the low-rank update."""
        out = nn.Linear(self.in_features, self.out_features).to(self.weight.device, self.weight.dtype)
        with torch.no_grad():
            out.weight.copy_(self.weight + (self.lora_B @ self.lora_A) * self.scaling)
            out.bias.copy_(self.bias)
        return out


def _set(root: nn.Module, dotted: str, module: nn.Module) -> None:
    parent, _, last = dotted.rpartition(".")
    setattr(root.get_submodule(parent), last, module)


def apply_lora(model: ARGClassifier, cfg: LoRAConfig) -> ARGClassifier:
    """Freeze the backbone, put LoRA on the targets, leave the classification head trainable.

    The head is new, so it is always trained in full; ``targets=["classifier"]`` alone therefore
    trains only the head on a frozen backbone (the "seed" linear-probe variant).
    """
    unknown = [t for t in cfg.targets if t not in ALL_TARGETS]
    if unknown:
        raise ValueError(f"unknown LoRA targets {unknown}; choose from {ALL_TARGETS}")
    for p in model.backbone.parameters():
        p.requires_grad_(False)
    layers = list(model.backbone.layers)
    if cfg.last_layers > 0:
        layers = layers[-cfg.last_layers:]
    for layer in layers:
        for t in cfg.targets:
            if t == "classifier":
                continue
            path = LAYER_TARGETS[t]
            base = layer.get_submodule(path)
            if isinstance(base, LoRALinear):
                raise ValueError(f"LoRA already applied to {path}")
            _set(layer, path, LoRALinear.wrap(base, cfg.rank, cfg.alpha, cfg.dropout))
    if cfg.train_norms:
        for m in model.backbone.modules():
            if isinstance(m, nn.LayerNorm):
                for p in m.parameters():
                    p.requires_grad_(True)
    for p in [*model.hidden.parameters(), *model.head.parameters()]:
        p.requires_grad_(True)
    return model


def merge_lora(model: nn.Module) -> nn.Module:
    """Replace every LoRALinear by its merged plain Linear (in place); returns the model."""
    names = [name for name, m in model.named_modules() if isinstance(m, LoRALinear)]
    for name in names:
        _set(model, name, model.get_submodule(name).merged())
    return model


def lora_state_dict(model: nn.Module) -> dict[str, Tensor]:
    return {k: v for k, v in model.state_dict().items() if "lora_" in k}


def trainable_parameter_names(model: nn.Module) -> list[str]:
    return [n for n, p in model.named_parameters() if p.requires_grad]
