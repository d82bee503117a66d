"""``argtrain finetune``: train the ARG classifier (ESM-2 + mean pooling + linear head).

Backbone from our pretrain checkpoint, an official fair-esm ``.pt``, a Hugging Face directory, or
random weights. Adaptation is LoRA (default), head only (``--lora-targets classifier``: the backbone
is frozen and its embeddings are computed once), or full fine-tuning (``--full-finetune``).

Output directory:
  best.pt        the checkpoint with the best validation macro-F1 (what ``argtrain export`` reads)
  last.pt        the latest state incl. optimizer, for ``--resume``
  history.jsonl  one line per evaluation
  metrics.json   the validation report of the best checkpoint
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import math
import os
import random
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import alphabet
from .calibrate import (DEFAULT_MIN_RESIDUES, call, choose_threshold, expected_calibration_error,
                        fit_temperature, softmax)
from .checkpoints import FINETUNE_FORMAT, CheckpointError, load_backbone, torch_load
from .classifier import ARGClassifier
from .esm2 import ESM2, ESM2Config, num_parameters
from .lora import LoRAConfig, apply_lora, parse_targets
from .trainutil import (Deadline, HelpFormatter, Record, lr_at, pick_device, read_labelled,
                        seed_everything, set_threads, token_budget_batches)

STATE_FORMAT = "argtrain-finetune-state/1"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="argtrain finetune",
        description="Fine-tune an ESM-2 ARG classifier on labelled FASTA ('>id|class' headers; "
                    "'nonarg' is a class). Writes OUT/best.pt for 'argtrain export --checkpoint OUT'.",
        formatter_class=HelpFormatter)
    d = p.add_argument_group("data")
    d.add_argument("--train", required=True, help="training FASTA with '>id|class' headers")
    d.add_argument("--valid", help="validation FASTA; default: a stratified --valid-fraction of --train")
    d.add_argument("--valid-fraction", type=float, default=0.1,
                   help="validation share per class when --valid is not given")
    d.add_argument("--classes", help="comma-separated class order (default: sorted, nonarg last)")
    d.add_argument("--nonarg-class", default="nonarg", help="name of the non-ARG class")
    d.add_argument("--extra-train", nargs="*", default=[], metavar="FASTA",
                   help="more labelled training proteins, e.g. the corpus' nonarg-extra.fasta")
    d.add_argument("--extra-max", type=int, default=0,
                   help="use at most this many of --extra-train, a seeded sample (0 = all)")
    d.add_argument("--max-per-class", type=int, default=0,
                   help="keep at most this many training examples per class (0 = all)")
    d.add_argument("--max-residues", type=int, default=1022,
                   help="longer sequences: a random window in training, the first residues in "
                        "validation (as the server truncates)")
    m = p.add_argument_group("model")
    src = m.add_mutually_exclusive_group(required=True)
    src.add_argument("--backbone", help="our pretrain checkpoint (file or directory), an official "
                     "fair-esm .pt, or a Hugging Face directory")
    src.add_argument("--random-init", action="store_true", help="random backbone (for tests)")
    m.add_argument("--num-layers", type=int, default=4, help="with --random-init")
    m.add_argument("--embed-dim", type=int, default=128, help="with --random-init")
    m.add_argument("--attention-heads", type=int, default=None,
                   help="with --random-init (default 8), or for a fair-esm file without config")
    m.add_argument("--head-dropout", type=float, default=0.1,
                   help="dropout on the pooled embedding before the linear head")
    a = p.add_argument_group("adaptation")
    a.add_argument("--lora-targets", default="q,k,v,out,fc1,fc2",
                   help="comma list of q,k,v,out,fc1,fc2,classifier or 'all'; 'classifier' alone "
                        "trains only the head on a frozen backbone")
    a.add_argument("--lora-rank", type=int, default=8, help="rank r of the update B A")
    a.add_argument("--lora-alpha", type=float, default=16.0,
                   help="the update is scaled by alpha / rank")
    a.add_argument("--lora-dropout", type=float, default=0.1,
                   help="dropout on the input of the LoRA branch")
    a.add_argument("--lora-last-layers", type=int, default=0,
                   help="put LoRA only in the last N layers (0 = all); cheaper backward pass")
    a.add_argument("--train-norms", action="store_true",
                   help="with LoRA, also train the backbone's layer norms")
    a.add_argument("--full-finetune", action="store_true", help="train all weights instead of LoRA")
    o = p.add_argument_group("optimisation")
    o.add_argument("--optimizer", choices=["adamw", "adam"], default="adamw",
                   help="AdamW (decoupled weight decay) or Adam (L2 in the gradient)")
    o.add_argument("--lr", type=float, default=None,
                   help="peak learning rate (default 1e-3 LoRA, 3e-3 head only, 1e-4 full)")
    o.add_argument("--weight-decay", type=float, default=0.01,
                   help="on weight matrices only, not on biases or layer norms")
    o.add_argument("--warmup-fraction", type=float, default=0.06,
                   help="linear warm-up over this share of the steps")
    o.add_argument("--schedule", choices=["cosine", "linear", "constant"], default="cosine",
                   help="decay after warm-up (to 10%% of the peak)")
    o.add_argument("--sampling", choices=["natural", "sqrt", "balanced"], default="sqrt",
                   help="how each epoch draws its examples: as they come, or per class in "
                        "proportion to the square root of its size, or equally per class "
                        "(every example of a class is seen before any is repeated)")
    o.add_argument("--epoch-size", type=int, default=0,
                   help="examples per epoch with --sampling sqrt/balanced (0 = the training size)")
    o.add_argument("--max-false-positive-rate", type=float, default=0.002,
                   help="the ARG threshold chosen on validation keeps at most this share of "
                        "validation non-ARGs called ARG")
    o.add_argument("--min-residues", type=int, default=DEFAULT_MIN_RESIDUES,
                   help="proteins shorter than this are never called ARGs")
    o.add_argument("--class-weights", choices=["balanced", "sqrt", "none"], default="none",
                   help="loss weights: balanced = N / (C * n_c) as in scikit-learn (C classes "
                        "present); sqrt = proportional to 1 / sqrt(n_c), milder for classes with "
                        "a handful of examples")
    o.add_argument("--max-tokens", type=int, default=8192,
                   help="token budget per batch (batch size x longest sequence incl. padding)")
    o.add_argument("--max-batch", type=int, default=64, help="most sequences per batch")
    o.add_argument("--grad-accum", type=int, default=1, help="batches per optimizer step")
    o.add_argument("--grad-clip", type=float, default=1.0,
                   help="clip the gradient norm (0 = off)")
    o.add_argument("--epochs", type=int, default=None,
                   help="epochs (default 10; 200 head only, where an epoch costs next to nothing)")
    o.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0 = none)")
    o.add_argument("--patience", type=int, default=None,
                   help="stop after this many evaluations without a better macro-F1 (0 = never; "
                        "default 3, or 20 head only)")
    o.add_argument("--eval-every", type=int, default=0,
                   help="also evaluate every N steps (0 = once per epoch)")
    o.add_argument("--max-minutes", type=float, default=0, help="wall-clock budget (0 = none)")
    o.add_argument("--bf16", action="store_true", help="bfloat16 autocast (CPUs with AMX, GPUs)")
    r = p.add_argument_group("run")
    r.add_argument("--out", required=True, help="output directory")
    r.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    r.add_argument("--seed", type=int, default=0,
                   help="seeds weights, splits, caps, batch order and crops")
    r.add_argument("--num-threads", type=int, default=0, help="torch threads (0 = torch default)")
    r.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    r.add_argument("--no-progress", action="store_true", help="no tqdm progress bars")
    return p


# --------------------------------------------------------------------------------------------------
# Data


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tokenize_records(records: list[Record], where: str) -> tuple[list[np.ndarray], list[str], Counter]:
    """Residue token ids (no <cls>/<eos>) and labels; untokenizable sequences dropped and counted."""
    toks, labels, dropped = [], [], Counter()
    for r in records:
        try:
            ids = alphabet.encode(r.seq)[1:-1]
        except alphabet.TokenizationError as e:
            dropped[str(e).split(" at ")[0]] += 1
            continue
        toks.append(np.asarray(ids, dtype=np.int64))
        labels.append(r.label)
    if dropped:
        print(f"{where}: dropped {sum(dropped.values())} sequences: {dict(dropped)}", file=sys.stderr)
    return toks, labels, dropped


def stratified_split(labels: list[str], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    rng = random.Random(seed)
    by_class: dict[str, list[int]] = {}
    for i, y in enumerate(labels):
        by_class.setdefault(y, []).append(i)
    train, valid = [], []
    for y in sorted(by_class):
        idx = by_class[y]
        rng.shuffle(idx)
        k = int(round(len(idx) * fraction)) if len(idx) > 1 else 0
        valid += idx[:k]
        train += idx[k:]
    return sorted(train), sorted(valid)


def cap_per_class(labels: list[str], cap: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    by_class: dict[str, list[int]] = {}
    for i, y in enumerate(labels):
        by_class.setdefault(y, []).append(i)
    keep = []
    for y in sorted(by_class):
        idx = by_class[y]
        keep += rng.sample(idx, cap) if cap and len(idx) > cap else idx
    return sorted(keep)


def order_classes(labels: list[str], given: str | None, nonarg: str) -> list[str]:
    if given:
        classes = [c.strip() for c in given.split(",") if c.strip()]
        unknown = sorted(set(labels) - set(classes))
        if unknown:
            raise ValueError(f"labels not in --classes: {unknown}")
        return classes
    classes = sorted(set(labels) - {nonarg})
    return classes + [nonarg] if nonarg in labels else classes


def crop(ids: np.ndarray, max_residues: int, rng: random.Random | None) -> np.ndarray:
    if len(ids) <= max_residues:
        return ids
    start = rng.randint(0, len(ids) - max_residues) if rng is not None else 0
    return ids[start:start + max_residues]


def make_tokens(seqs: list[np.ndarray]) -> torch.Tensor:
    width = max(len(s) for s in seqs) + 2
    out = np.full((len(seqs), width), alphabet.PAD, dtype=np.int64)
    for i, s in enumerate(seqs):
        out[i, 0] = alphabet.CLS
        out[i, 1:len(s) + 1] = s
        out[i, len(s) + 1] = alphabet.EOS
    return torch.from_numpy(out)


def epoch_sample(y: np.ndarray, mode: str, size: int, epoch: int, seed: int) -> list[int]:
    """Example indices of one epoch: ``size`` draws split over classes in proportion to n_c
    (natural: every example once), sqrt(n_c) or 1. Within a class, examples are taken in a
    shuffled cycle that continues across epochs, so none repeats before all were seen."""
    if mode == "natural":
        return list(range(len(y)))
    by_class = [np.flatnonzero(y == c) for c in range(int(y.max()) + 1)]
    by_class = [idx for idx in by_class if len(idx)]
    weight = np.array([len(idx) ** 0.5 if mode == "sqrt" else 1.0 for idx in by_class])
    quota = np.maximum(1, np.round(size * weight / weight.sum()).astype(np.int64))
    out: list[int] = []
    for k, idx in enumerate(by_class):
        start = epoch * int(quota[k])
        cycle, pos = divmod(start, len(idx))
        taken: list[int] = []
        while len(taken) < quota[k]:
            order = list(idx)
            random.Random(seed * 1000003 + k * 7919 + cycle).shuffle(order)
            taken += order[pos:pos + int(quota[k]) - len(taken)]
            cycle, pos = cycle + 1, 0
        out += taken
    return out


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
        return make_tokens(seqs), torch.from_numpy(self.y[idx])


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


@torch.no_grad()
def embed_all(model: ARGClassifier, data: TokenData, device: torch.device, bf16: bool,
              progress: bool, what: str) -> torch.Tensor:
    model.eval()
    out = torch.zeros(len(data), model.backbone.embed_dim)
    for idx in _progress(data.batch_plan(0, 0, train=False), progress, f"embed {what}"):
        tokens, _ = data.batch(idx, None)
        with _autocast(device, bf16):
            out[idx] = model.embed(tokens.to(device)).float().cpu()
    return out


# --------------------------------------------------------------------------------------------------
# Training


def _progress(it, enabled: bool, desc: str):
    if not enabled:
        return it
    try:
        from tqdm import tqdm
    except ImportError:
        return it
    return tqdm(it, desc=desc, leave=False, dynamic_ncols=True)


def _autocast(device: torch.device, enabled: bool):
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


def class_weights(y: np.ndarray, n_classes: int, mode: str) -> torch.Tensor | None:
    if mode == "none":
        return None
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    present = counts > 0
    if mode == "sqrt":
        # Scaled so that the average weight per training example is 1, as with "balanced".
        w = np.where(present, counts.sum() / (np.sqrt(np.maximum(counts, 1)) * np.sqrt(counts).sum()),
                     0.0)
    else:
        w = np.where(present, counts.sum() / (present.sum() * np.maximum(counts, 1)), 0.0)
    return torch.tensor(w, dtype=torch.float32)


def logits_for(model: ARGClassifier, x: torch.Tensor, features: bool) -> torch.Tensor:
    return model.head(model.dropout(x)) if features else model(x)


@torch.no_grad()
def all_logits(model: ARGClassifier, data, features: bool, device: torch.device, bf16: bool
               ) -> np.ndarray:
    model.eval()
    out = np.zeros((len(data), model.head.out_features), dtype=np.float32)
    for idx in data.batch_plan(0, 0, train=False):
        x, _ = data.batch(idx, None)
        with _autocast(device, bf16):
            out[idx] = logits_for(model, x.to(device), features).float().cpu().numpy()
    return out


@torch.no_grad()
def evaluate(model: ARGClassifier, data, features: bool, classes: list[str], nonarg: str,
             device: torch.device, bf16: bool, weight: torch.Tensor | None) -> dict:
    from .metrics import classification_report

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
    from .metrics import classification_report

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


def build_model(args, n_classes: int) -> tuple[ARGClassifier, str]:
    if args.random_init:
        torch.manual_seed(args.seed)
        backbone = ESM2(ESM2Config(args.num_layers, args.embed_dim, args.attention_heads or 8))
        backbone.init_weights()
        source = "random"
    else:
        backbone, source = load_backbone(args.backbone, args.attention_heads)
    torch.manual_seed(args.seed + 1)
    return ARGClassifier(backbone, n_classes, args.head_dropout), source


def make_optimizer(model: ARGClassifier, args) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": args.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    if args.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=args.lr)
    # Adam's weight_decay is L2 added to the gradient; AdamW's is decoupled.
    return torch.optim.Adam(groups, lr=args.lr)


def _save(obj: dict, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except (ValueError, CheckpointError, OSError) as e:
        print(f"argtrain finetune: error: {e}", file=sys.stderr)
        return 1


def run(args) -> int:
    set_threads(args.num_threads)
    seed_everything(args.seed)
    device = pick_device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    progress = not args.no_progress and sys.stderr.isatty()
    targets = parse_targets(args.lora_targets)
    head_only = not args.full_finetune and targets == ["classifier"] and not args.train_norms
    if args.lr is None:
        args.lr = 1e-4 if args.full_finetune else (3e-3 if head_only else 1e-3)
    if args.epochs is None:
        args.epochs = 200 if head_only else 10
    if args.patience is None:
        args.patience = 20 if head_only else 3

    # ---- data
    train_recs = read_labelled(args.train, args.nonarg_class)
    if args.valid:
        valid_recs = read_labelled(args.valid, args.nonarg_class)
    else:
        tr, va = stratified_split([r.label for r in train_recs], args.valid_fraction, args.seed)
        train_recs, valid_recs = [train_recs[i] for i in tr], [train_recs[i] for i in va]
    extra_recs: list[Record] = []
    for path in args.extra_train:
        extra_recs += read_labelled(path, args.nonarg_class)
    if args.extra_max and len(extra_recs) > args.extra_max:
        extra_recs = random.Random(args.seed).sample(extra_recs, args.extra_max)
    train_recs = train_recs + extra_recs
    tr_toks, tr_labels, tr_dropped = tokenize_records(train_recs, args.train)
    va_toks, va_labels, va_dropped = tokenize_records(valid_recs, args.valid or "validation split")
    if args.max_per_class:
        keep = cap_per_class(tr_labels, args.max_per_class, args.seed)
        tr_toks, tr_labels = [tr_toks[i] for i in keep], [tr_labels[i] for i in keep]
    if not tr_toks or not va_toks:
        raise ValueError("empty training or validation set")
    classes = order_classes(tr_labels + va_labels, args.classes, args.nonarg_class)
    cidx = {c: i for i, c in enumerate(classes)}
    y_tr = np.array([cidx[y] for y in tr_labels], dtype=np.int64)
    y_va = np.array([cidx[y] for y in va_labels], dtype=np.int64)
    weight = class_weights(y_tr, len(classes), args.class_weights)

    # ---- model (from last.pt when resuming, so the backbone source need not be reloaded)
    state = None
    if args.resume and (out / "last.pt").is_file():
        state = torch_load(out / "last.pt")
        if state.get("format") != STATE_FORMAT or state["classes"] != classes:
            raise ValueError(f"{out / 'last.pt'}: not a resumable state for these classes")
        model = ARGClassifier.build(ESM2Config.from_dict(state["backbone_config"]), len(classes),
                                    args.head_dropout)
        source = state["backbone_source"]
    elif args.resume:
        raise ValueError(f"--resume: {out / 'last.pt'} does not exist")
    else:
        model, source = build_model(args, len(classes))
    lora_cfg = None
    if args.full_finetune:
        for p in model.parameters():
            p.requires_grad_(True)
    else:
        lora_cfg = LoRAConfig(args.lora_rank, args.lora_alpha, args.lora_dropout, targets,
                              args.lora_last_layers, args.train_norms)
        torch.manual_seed(args.seed + 2)
        apply_lora(model, lora_cfg)
    if state is not None:
        model.load_state_dict(state["model"])
    model.to(device)
    print(f"classes ({len(classes)}): {classes}", file=sys.stderr)
    print(f"train {len(y_tr)} / valid {len(y_va)} sequences; backbone {source} "
          f"{model.backbone.config}; trainable {num_parameters(model, True):,} of "
          f"{num_parameters(model):,} parameters; mode "
          f"{'full' if args.full_finetune else 'head-only' if head_only else 'lora ' + ','.join(targets)}"
          f"; device {device}", file=sys.stderr)

    train_data: TokenData | FeatureData = TokenData(tr_toks, y_tr, args.max_residues,
                                                    args.max_tokens, args.max_batch,
                                                    args.sampling, args.epoch_size)
    valid_data: TokenData | FeatureData = TokenData(va_toks, y_va, args.max_residues,
                                                    args.max_tokens, args.max_batch)
    if head_only:
        # The frozen backbone has no dropout, so its embeddings are fixed: compute them once.
        train_data = FeatureData(embed_all(model, train_data, device, args.bf16, progress, "train"),
                                 y_tr, args.max_batch, args.sampling, args.epoch_size)
        valid_data = FeatureData(embed_all(model, valid_data, device, args.bf16, progress, "valid"),
                                 y_va, args.max_batch)

    optimizer = make_optimizer(model, args)
    steps_per_epoch = math.ceil(len(train_data.batch_plan(0, args.seed, True)) / args.grad_accum)
    total_steps = args.epochs * steps_per_epoch
    if args.max_steps:
        total_steps = min(total_steps, args.max_steps) if total_steps else args.max_steps
    fixed_total = total_steps

    step, epoch, batch_pos, seen_tokens = 0, 0, 0, 0
    best = {"macro_f1": -1.0, "loss": math.inf, "epoch": -1, "step": -1}
    bad_evals, history = 0, []
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        step, epoch, batch_pos = state["step"], state["epoch"], state["batch_pos"]
        best, bad_evals, history = state["best"], state["bad_evals"], state["history"]
        seen_tokens = state.get("seen_tokens", 0)
        torch.set_rng_state(state["torch_rng"])
        print(f"resumed at epoch {epoch}, step {step}", file=sys.stderr)

    train_info = {
        "train": {"path": str(args.train), "sha256": sha256_file(args.train),
                  "counts": dict(Counter(tr_labels)), "dropped": dict(tr_dropped),
                  "extra": [{"path": str(p), "sha256": sha256_file(p)} for p in args.extra_train],
                  "extra_used": len(extra_recs)},
        "valid": ({"path": str(args.valid), "sha256": sha256_file(args.valid)} if args.valid
                  else {"split_from_train": args.valid_fraction}) | {
                      "counts": dict(Counter(va_labels)), "dropped": dict(va_dropped)},
        "settings": {k: v for k, v in vars(args).items() if k not in ("resume", "no_progress")},
        "mode": "full" if args.full_finetune else ("head-only" if head_only else "lora"),
    }
    deadline = Deadline(args.max_minutes)
    elapsed_before = state.get("elapsed_s", 0.0) if state else 0.0
    if args.max_minutes:  # the budget covers the whole run, earlier sessions included
        deadline.seconds = max(0.0, args.max_minutes * 60.0 - elapsed_before)

    def checkpoint_meta() -> dict:
        return {
            "format": FINETUNE_FORMAT,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "backbone_config": model.backbone.config.to_dict(),
            "backbone_source": source,
            "classes": classes,
            "nonarg_class": args.nonarg_class if args.nonarg_class in classes else None,
            "max_residues": args.max_residues,
            "head_dropout": args.head_dropout,
            "lora": None if lora_cfg is None else lora_cfg.to_dict(),
            "full_finetune": bool(args.full_finetune),
        }

    def cpu_state() -> dict:
        return {k: v.detach().cpu() for k, v in model.state_dict().items()}

    def save_last() -> None:
        _save({**checkpoint_meta(), "format": STATE_FORMAT, "model": cpu_state(),
               "optimizer": optimizer.state_dict(), "step": step, "epoch": epoch,
               "batch_pos": batch_pos, "best": best, "bad_evals": bad_evals, "history": history,
               "seen_tokens": seen_tokens, "torch_rng": torch.get_rng_state(),
               "elapsed_s": elapsed_before + deadline.elapsed()}, out / "last.pt")

    def do_eval() -> bool:
        """Evaluate, keep the best; returns True when patience is exhausted."""
        nonlocal best, bad_evals
        rep = evaluate(model, valid_data, head_only, classes, args.nonarg_class, device, args.bf16,
                       weight)
        model.train()
        rec = {"epoch": epoch, "step": step, "macro_f1": rep["macro_f1"], "accuracy": rep["accuracy"],
               "loss": rep["loss"], "elapsed_s": round(elapsed_before + deadline.elapsed(), 1),
               "tokens": seen_tokens}
        history.append(rec)
        with open(out / "history.jsonl", "a") as fh:
            fh.write(json.dumps(rec) + "\n")
        improved = (rep["macro_f1"] > best["macro_f1"] + 1e-9 or
                    (abs(rep["macro_f1"] - best["macro_f1"]) <= 1e-9 and rep["loss"] < best["loss"]))
        print(f"eval epoch {epoch} step {step}: macro-F1 {rep['macro_f1']:.4f} acc "
              f"{rep['accuracy']:.4f} loss {rep['loss']:.4f}{'  *best*' if improved else ''}",
              file=sys.stderr)
        if improved:
            best = {"macro_f1": rep["macro_f1"], "loss": rep["loss"], "epoch": epoch, "step": step}
            bad_evals = 0
            info = dict(train_info, steps=step, epochs=epoch, tokens=seen_tokens,
                        elapsed_s=round(elapsed_before + deadline.elapsed(), 1))
            _save({**checkpoint_meta(), "model": cpu_state(), "training": info,
                   "metrics": {"validation": rep, "epoch": epoch, "step": step}}, out / "best.pt")
            (out / "metrics.json").write_text(json.dumps(rep, indent=2))
        else:
            bad_evals += 1
        return args.patience > 0 and bad_evals >= args.patience

    model.train()
    stop_reason = "epochs"
    stop = False
    while epoch < args.epochs and not stop:
        plan = train_data.batch_plan(epoch, args.seed, train=True)
        crop_rng = random.Random(args.seed * 7919 + epoch)
        optimizer.zero_grad(set_to_none=True)
        micro = 0
        for bi in _progress(range(batch_pos, len(plan)), progress, f"epoch {epoch}"):
            x, y = train_data.batch(plan[bi], crop_rng)
            x, y = x.to(device), y.to(device)
            with _autocast(device, args.bf16):
                logits = logits_for(model, x, head_only).float()
            loss = F.cross_entropy(logits, y, weight=None if weight is None else weight.to(device))
            (loss / args.grad_accum).backward()
            seen_tokens += x.numel() if not head_only else 0
            micro += 1
            batch_pos = bi + 1
            if micro % args.grad_accum and bi != len(plan) - 1:
                continue
            if args.max_minutes and step >= 20 and (step < 100 or step % 20 == 0):
                # With a time budget, stretch the schedule over the steps this speed allows, so
                # the learning rate has decayed when time runs out (as pretrain does).
                rate = step / max(1e-9, elapsed_before + deadline.elapsed())
                by_time = int(rate * (elapsed_before + deadline.seconds))
                total_steps = max(step + 1, min(fixed_total, by_time))
            warmup = int(args.warmup_fraction * total_steps)
            for g in optimizer.param_groups:
                g["lr"] = lr_at(step, total_steps, warmup, args.lr, args.schedule)
            if args.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(
                    [p for p in model.parameters() if p.requires_grad], args.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if args.eval_every and step % args.eval_every == 0 and do_eval():
                stop, stop_reason = True, "early stopping"
            if args.max_steps and step >= args.max_steps:
                stop, stop_reason = True, "max steps"
            if deadline.expired():
                stop, stop_reason = True, "time budget"
            if stop:
                break
        if batch_pos >= len(plan):
            epoch, batch_pos = epoch + 1, 0
            if not (args.eval_every and step % args.eval_every == 0) and do_eval():
                stop, stop_reason = True, "early stopping"
        elif stop and stop_reason != "early stopping":
            do_eval()  # the partial epoch may hold the best model
        save_last()
    # Calibrate the kept checkpoint on validation: temperature, then the ARG threshold.
    best_path = out / "best.pt"
    if best_path.is_file():
        kept = torch_load(best_path)
        model.load_state_dict(kept["model"])
        logits = all_logits(model, valid_data, head_only, device, args.bf16)
        kept["calibration"] = calibrate(logits, y_va, [len(t) for t in va_toks], classes,
                                        args.nonarg_class, args.max_false_positive_rate,
                                        args.min_residues)
        _save(kept, best_path)
        c = kept["calibration"]
        print(f"calibration on validation: temperature {c['temperature']:.3f}, ECE "
              f"{c['validation']['ece_before']:.4f} -> {c['validation']['ece']:.4f}"
              + (f", ARG threshold {c['arg_threshold']:.3f} (macro-F1 "
                 f"{c['validation']['macro_f1']:.4f})" if "arg_threshold" in c else ""),
              file=sys.stderr)
        metrics = json.loads((out / "metrics.json").read_text())
        metrics["calibration"] = c
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(f"stopped ({stop_reason}) after {step} steps, {epoch} epochs, "
          f"{elapsed_before + deadline.elapsed():.0f}s; best macro-F1 {best['macro_f1']:.4f} "
          f"(epoch {best['epoch']}, step {best['step']}) -> {out / 'best.pt'}", file=sys.stderr)
    return 0
