"""Fine-tuning of the ARG classifier (ESM-2 + pooling + head, argtrain.classifier), as a task of
the shared training loop (``argtrain finetune``).

Adaptation is LoRA, head only (the backbone is frozen and its embeddings are computed once), or
full fine-tuning. The kept checkpoint is calibrated on validation (temperature, ARG threshold).

Output directory:
  best.pt        the checkpoint with the best validation macro-F1 (what ``argtrain export`` reads)
  last.pt        the latest state incl. optimizer, for ``--resume``
  history.jsonl  one line per evaluation
  metrics.json   the validation report of the best checkpoint
"""

from __future__ import annotations

import datetime as _dt
import json
import random
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import alphabet
from .balance import epoch_sample
from .batching import crop, residue_batch, residue_ids, token_budget_batches
from .calibrate import call, choose_threshold, expected_calibration_error, fit_temperature, softmax
from .checkpoints import FINETUNE_FORMAT, load_backbone, save_atomic, torch_load
from .classifier import ARGClassifier, HeadConfig
from .esm2 import ESM2, ESM2Config
from .labelled import LabelledProtein
from .metrics import classification_report
from .trainloop import History, Task, TrainLoop, autocast, decay_groups

STATE_FORMAT = "argtrain-finetune-state/1"

# --------------------------------------------------------------------------------------------------
# Data


def tokenize_records(records: list[LabelledProtein], where: str
                     ) -> tuple[list[np.ndarray], list[str], Counter]:
    """Residue token ids (no <cls>/<eos>) and labels; untokenizable sequences dropped and counted."""
    toks, labels, dropped = [], [], Counter()
    for r in records:
        try:
            ids = residue_ids(r.seq)
        except alphabet.TokenizationError as e:
            dropped[str(e).split(" at ")[0]] += 1
            continue
        toks.append(ids)
        labels.append(r.label)
    if dropped:
        print(f"{where}: dropped {sum(dropped.values())} sequences: {dict(dropped)}", file=sys.stderr)
    return toks, labels, dropped


def order_classes(labels: list[str], given: str | None, nonarg: str) -> list[str]:
    """``given`` (comma-separated) if set, else the labels sorted with ``nonarg`` last."""
    if given:
        classes = [c.strip() for c in given.split(",") if c.strip()]
        unknown = sorted(set(labels) - set(classes))
        if unknown:
            raise ValueError(f"labels not in --classes: {unknown}")
        return classes
    classes = sorted(set(labels) - {nonarg})
    return classes + [nonarg] if nonarg in labels else classes


class TokenData:
    """Tokenized sequences with labels, served in token-budget batches."""

    def __init__(self, toks: list[np.ndarray], y: np.ndarray, max_residues: int, max_tokens: int,
                 max_batch: int, sampling: str = "natural", epoch_size: int = 0):
        self.toks, self.y = toks, y
        self.max_residues = max_residues
        self.lengths = [min(len(t), max_residues) + 2 for t in toks]
        self.max_tokens, self.max_batch = max_tokens, max_batch
        self.sampling, self.epoch_size = sampling, epoch_size or len(toks)

    def __len__(self) -> int:
        return len(self.toks)

    def batch_plan(self, epoch: int, seed: int, train: bool) -> list[list[int]]:
        rng = random.Random(seed * 100003 + epoch)
        if not train or self.sampling == "natural":
            return token_budget_batches(self.lengths, self.max_tokens, self.max_batch,
                                        shuffle=train, rng=rng,
                                        bucket_size=max(1, 50 * self.max_batch) if train else 0)
        chosen = epoch_sample(self.y, self.sampling, self.epoch_size, epoch, seed)
        plan = token_budget_batches([self.lengths[i] for i in chosen], self.max_tokens,
                                    self.max_batch, shuffle=True, rng=rng,
                                    bucket_size=max(1, 50 * self.max_batch))
        return [[chosen[j] for j in batch] for batch in plan]

    def batch(self, idx: list[int], rng: random.Random | None) -> tuple[torch.Tensor, torch.Tensor]:
        seqs = [crop(self.toks[i], self.max_residues, rng) for i in idx]
        return residue_batch(seqs), torch.from_numpy(self.y[idx])


class FeatureData:
    """Pre-computed embeddings (head-only training on a frozen backbone)."""

    def __init__(self, feats: torch.Tensor, y: np.ndarray, batch_size: int,
                 sampling: str = "natural", epoch_size: int = 0):
        self.feats, self.y, self.batch_size = feats, y, batch_size
        self.sampling, self.epoch_size = sampling, epoch_size or len(y)

    def __len__(self) -> int:
        return len(self.y)

    def batch_plan(self, epoch: int, seed: int, train: bool) -> list[list[int]]:
        idx = list(range(len(self.y)))
        if train:
            idx = epoch_sample(self.y, self.sampling, self.epoch_size, epoch, seed)
            random.Random(seed * 100003 + epoch).shuffle(idx)
        return [idx[i:i + self.batch_size] for i in range(0, len(idx), self.batch_size)]

    def batch(self, idx: list[int], rng: random.Random | None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.feats[idx], torch.from_numpy(self.y[idx])


def _progress(it, enabled: bool, desc: str):
    if not enabled:
        return it
    try:
        from tqdm import tqdm
    except ImportError:
        return it
    return tqdm(it, desc=desc, leave=False, dynamic_ncols=True)


@torch.no_grad()
def embed_all(model: ARGClassifier, data: TokenData, device: torch.device, bf16: bool,
              progress: bool, what: str) -> torch.Tensor:
    model.eval()
    out = torch.zeros(len(data), model.head_config.pooled_dim(model.backbone.embed_dim))
    for idx in _progress(data.batch_plan(0, 0, train=False), progress, f"embed {what}"):
        tokens, _ = data.batch(idx, None)
        with autocast(device, bf16):
            out[idx] = model.embed(tokens.to(device)).float().cpu()
    return out


# --------------------------------------------------------------------------------------------------
# Model


def build_model(n_classes: int, *, backbone: str | None, seed: int, head_dropout: float,
                num_layers: int = 4, embed_dim: int = 128, attention_heads: int | None = None,
                head_config: HeadConfig | None = None) -> tuple[ARGClassifier, str]:
    """The classifier on a loaded backbone, or on random weights when ``backbone`` is None."""
    if backbone is None:
        torch.manual_seed(seed)
        esm = ESM2(ESM2Config(num_layers, embed_dim, attention_heads or 8))
        esm.init_weights()
        source = "random"
    else:
        esm, source = load_backbone(backbone, attention_heads)
    torch.manual_seed(seed + 1)
    return ARGClassifier(esm, n_classes, head_dropout, head_config), source


def warm_up_head(model: ARGClassifier, train: FeatureData, valid: FeatureData, *, epochs: int,
                 lr: float, weight_decay: float, seed: int, classes: list[str], nonarg: str,
                 weight: torch.Tensor | None, device: torch.device) -> list[dict]:
    """Train the head alone on the frozen backbone's pooled features before adapting the backbone
    (linear probing, then fine-tuning): a head that starts from random weights would otherwise
    send large, noisy gradients into the backbone's adapters. Returns one record per epoch."""
    params = [p for m in (model.hidden, model.head) for p in m.parameters()]
    optimizer = torch.optim.AdamW(decay_groups(params, weight_decay), lr=lr)
    loss_weight = None if weight is None else weight.to(device)
    records = []
    for epoch in range(epochs):
        model.train()
        for idx in train.batch_plan(epoch, seed, train=True):
            x, y = train.batch(idx, None)
            loss = F.cross_entropy(model.classify(x.to(device)), y.to(device), weight=loss_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        rep = evaluate(model, valid, True, classes, nonarg, device, False, weight)
        records.append({"head_warmup_epoch": epoch + 1, "macro_f1": rep["macro_f1"],
                        "accuracy": rep["accuracy"], "loss": rep["loss"]})
        print(f"head warm-up epoch {epoch + 1}: validation macro-F1 {rep['macro_f1']:.4f} "
              f"loss {rep['loss']:.4f}", file=sys.stderr)
    model.zero_grad(set_to_none=True)
    return records


def make_optimizer(model: ARGClassifier, kind: str, lr: float, weight_decay: float
                   ) -> torch.optim.Optimizer:
    groups = decay_groups([p for p in model.parameters() if p.requires_grad], weight_decay)
    if kind == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    # Adam's weight_decay is L2 added to the gradient; AdamW's is decoupled.
    return torch.optim.Adam(groups, lr=lr)


def logits_for(model: ARGClassifier, x: torch.Tensor, features: bool) -> torch.Tensor:
    return model.classify(x) if features else model(x)


@torch.no_grad()
def all_logits(model: ARGClassifier, data, features: bool, device: torch.device, bf16: bool
               ) -> np.ndarray:
    model.eval()
    out = np.zeros((len(data), model.head.out_features), dtype=np.float32)
    for idx in data.batch_plan(0, 0, train=False):
        x, _ = data.batch(idx, None)
        with autocast(device, bf16):
            out[idx] = logits_for(model, x.to(device), features).float().cpu().numpy()
    return out


@torch.no_grad()
def evaluate(model: ARGClassifier, data, features: bool, classes: list[str], nonarg: str,
             device: torch.device, bf16: bool, weight: torch.Tensor | None) -> dict:
    logits = all_logits(model, data, features, device, bf16)
    loss = F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(data.y),
                           weight=weight).item()
    preds = logits.argmax(-1)
    report = classification_report([classes[i] for i in data.y], [classes[i] for i in preds],
                                   classes, nonarg if nonarg in classes else None)
    report["loss"] = loss
    return report


def calibrate(logits: np.ndarray, y: np.ndarray, lengths: list[int], classes: list[str],
              nonarg: str, max_fpr: float, min_residues: int) -> dict:
    """Temperature, ARG threshold and their validation report (see calibrate.py)."""
    temperature = fit_temperature(logits, y)
    raw, scaled = softmax(logits), softmax(logits, temperature)
    correct = scaled.argmax(1) == y
    result = {"temperature": temperature, "min_residues": min_residues,
              "validation": {"ece_before": expected_calibration_error(raw.max(1), raw.argmax(1) == y),
                             "ece": expected_calibration_error(scaled.max(1), correct)}}
    if nonarg not in classes:
        return result
    k = classes.index(nonarg)
    choice = choose_threshold(1.0 - scaled[:, k], y != k, max_fpr)
    result["arg_threshold"] = choice["threshold"]
    result["validation"]["threshold_choice"] = choice
    pred, _, _ = call(scaled, k, choice["threshold"], np.array(lengths), min_residues)
    report = classification_report([classes[i] for i in y], [classes[i] for i in pred], classes,
                                   nonarg)
    result["validation"]["macro_f1"] = report["macro_f1"]
    result["validation"]["accuracy"] = report["accuracy"]
    return result


def calibrate_checkpoint(best_path: Path, model: ARGClassifier, data: TokenData | FeatureData,
                         y_valid: np.ndarray, lengths: list[int], classes: list[str], nonarg: str,
                         max_fpr: float, min_residues: int, *, features: bool = False,
                         device: torch.device | None = None,
                         max_residues: int | None = None) -> dict:
    """Calibrate the checkpoint at ``best_path`` on ``data`` and store the result in it (and in
    the metrics.json beside it), in float32 whatever the training precision: the server's
    default. ``model`` has the checkpoint's architecture; its weights are loaded here.
    ``max_residues``: the length validation proteins were cut to, recorded."""
    kept = torch_load(best_path)
    model.load_state_dict(kept["model"])
    logits = all_logits(model, data, features, device or torch.device("cpu"), bf16=False)
    kept["calibration"] = calibrate(logits, y_valid, lengths, classes, nonarg, max_fpr,
                                    min_residues)
    if max_residues is not None:
        kept["calibration"]["max_residues"] = int(max_residues)
    save_atomic(kept, best_path)
    metrics_path = best_path.parent / "metrics.json"
    if metrics_path.is_file():
        metrics = json.loads(metrics_path.read_text())
        metrics["calibration"] = kept["calibration"]
        metrics_path.write_text(json.dumps(metrics, indent=2))
    return kept["calibration"]


# --------------------------------------------------------------------------------------------------
# Training


class Finetuning(Task):
    """One fine-tuning run: evaluation per epoch (and every ``eval_every`` steps) with patience,
    best.pt on a better validation macro-F1, last.pt after each pass."""

    def __init__(self, model: ARGClassifier, train: TokenData | FeatureData,
                 valid: TokenData | FeatureData, loop: TrainLoop, device: torch.device, out: Path,
                 *, classes: list[str], nonarg: str, head_only: bool, weight: torch.Tensor | None,
                 bf16: bool, seed: int, eval_every: int, patience: int, meta: dict,
                 train_info: dict):
        self.model, self.train, self.valid, self.loop = model, train, valid, loop
        self.device, self.out, self.classes, self.nonarg = device, out, classes, nonarg
        self.head_only, self.weight, self.bf16, self.seed = head_only, weight, bf16, seed
        self.eval_every, self.patience = eval_every, patience
        self.meta, self.train_info = meta, train_info  # fixed checkpoint fields; training record
        self.best = {"macro_f1": -1.0, "loss": float("inf"), "epoch": -1, "step": -1}
        self.bad_evals = 0
        self.seen_tokens = 0
        self.history = History(out / "history.jsonl")

    def restore(self, state: dict) -> None:
        self.loop.restore(state)
        self.best, self.bad_evals = state["best"], state["bad_evals"]
        self.history.records = state["history"]
        self.seen_tokens = state.get("seen_tokens", 0)
        torch.set_rng_state(state["torch_rng"])

    def plan(self, epoch: int) -> list[list[int]]:
        return self.train.batch_plan(epoch, self.seed, train=True)

    def crop_rng(self, epoch: int, batch_pos: int) -> random.Random:
        return random.Random(self.seed * 7919 + epoch)

    def backward(self, batch: list[int], rng: random.Random, accumulate: int) -> float:
        x, y = self.train.batch(batch, rng)
        x, y = x.to(self.device), y.to(self.device)
        with autocast(self.device, self.bf16):
            logits = logits_for(self.model, x, self.head_only).float()
        weight = None if self.weight is None else self.weight.to(self.device)
        loss = F.cross_entropy(logits, y, weight=weight)
        (loss / accumulate).backward()
        self.seen_tokens += x.numel() if not self.head_only else 0
        return loss.item()

    def _evaluated_now(self, step: int) -> bool:
        return bool(self.eval_every and step % self.eval_every == 0)

    def after_step(self, step: int) -> bool:
        return self._evaluated_now(step) and self.evaluate()

    def after_epoch(self, step: int) -> bool:
        return not self._evaluated_now(step) and self.evaluate()

    def after_partial_epoch(self, step: int) -> None:
        self.evaluate()  # the partial epoch may hold the best model

    def after_pass(self) -> None:
        self.save_last()

    def checkpoint_meta(self) -> dict:
        now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        return {"format": FINETUNE_FORMAT, "created": now, **self.meta}

    def cpu_state(self) -> dict:
        return {k: v.detach().cpu() for k, v in self.model.state_dict().items()}

    def save_last(self) -> None:
        loop = self.loop
        save_atomic({**self.checkpoint_meta(), "format": STATE_FORMAT, "model": self.cpu_state(),
                     "optimizer": loop.optimizer.state_dict(), "step": loop.step,
                     "epoch": loop.epoch, "batch_pos": loop.batch_pos, "best": self.best,
                     "bad_evals": self.bad_evals, "history": self.history.records,
                     "seen_tokens": self.seen_tokens, "torch_rng": torch.get_rng_state(),
                     "head_warmup": self.train_info.get("head_warmup", []),
                     "elapsed_s": loop.clock.elapsed()}, self.out / "last.pt")

    def evaluate(self) -> bool:
        """Evaluate, keep the best; returns True when patience is exhausted."""
        loop = self.loop
        rep = evaluate(self.model, self.valid, self.head_only, self.classes, self.nonarg,
                       self.device, self.bf16, self.weight)
        self.model.train()
        rec = {"epoch": loop.epoch, "step": loop.step, "macro_f1": rep["macro_f1"],
               "accuracy": rep["accuracy"], "loss": rep["loss"],
               "elapsed_s": round(loop.clock.elapsed(), 1), "tokens": self.seen_tokens}
        self.history.add(rec)
        best = self.best
        improved = (rep["macro_f1"] > best["macro_f1"] + 1e-9 or
                    (abs(rep["macro_f1"] - best["macro_f1"]) <= 1e-9 and rep["loss"] < best["loss"]))
        print(f"eval epoch {loop.epoch} step {loop.step}: macro-F1 {rep['macro_f1']:.4f} acc "
              f"{rep['accuracy']:.4f} loss {rep['loss']:.4f}{'  *best*' if improved else ''}",
              file=sys.stderr)
        if improved:
            self.best = {"macro_f1": rep["macro_f1"], "loss": rep["loss"], "epoch": loop.epoch,
                         "step": loop.step}
            self.bad_evals = 0
            info = dict(self.train_info, steps=loop.step, epochs=loop.epoch,
                        tokens=self.seen_tokens, elapsed_s=round(loop.clock.elapsed(), 1))
            save_atomic({**self.checkpoint_meta(), "model": self.cpu_state(), "training": info,
                         "metrics": {"validation": rep, "epoch": loop.epoch, "step": loop.step}},
                        self.out / "best.pt")
            (self.out / "metrics.json").write_text(json.dumps(rep, indent=2))
        else:
            self.bad_evals += 1
        return self.patience > 0 and self.bad_evals >= self.patience

    def calibrate_best(self, y_valid: np.ndarray, lengths: list[int], max_fpr: float,
                       min_residues: int, data: TokenData | FeatureData | None = None,
                       max_residues: int | None = None) -> dict | None:
        """Calibrate the kept checkpoint on validation (temperature, then the ARG threshold),
        storing the result in best.pt and metrics.json. ``data``: the validation proteins as
        served (up to ``max_residues``), when that differs from the per-epoch validation."""
        best_path = self.out / "best.pt"
        if not best_path.is_file():
            return None
        return calibrate_checkpoint(best_path, self.model, data or self.valid, y_valid, lengths,
                                    self.classes, self.nonarg, max_fpr, min_residues,
                                    features=self.head_only, device=self.device,
                                    max_residues=max_residues)
