"""``argtrain finetune``: train the ARG classifier on labelled FASTA (see argtrain.finetune).

Backbone from our pretrain checkpoint, an official fair-esm ``.pt``, a Hugging Face directory, or
random weights; LoRA (default), head only (``--lora-targets classifier``) or ``--full-finetune``.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from collections import Counter

import numpy as np
import torch

from ..balance import cap_per_class, class_weights, stratified_split
from ..calibrate import DEFAULT_MIN_RESIDUES
from ..checkpoints import CheckpointError, torch_load
from ..classifier import POOLINGS, ARGClassifier, HeadConfig
from ..esm2 import ESM2Config, num_parameters
from ..finetune import (STATE_FORMAT, FeatureData, Finetuning, TokenData, build_model, embed_all,
                        make_optimizer, order_classes, tokenize_records, warm_up_head)
from ..labelled import NONARG, LabelledProtein, read_labelled
from ..lora import LoRAConfig, apply_lora, parse_targets
from ..provenance import sha256_file
from ..trainloop import Clock, Schedule, TrainLoop, fixed_total
from .common import add_runtime_args, command_main, start_run
from .helpformat import HelpFormatter


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
    d.add_argument("--nonarg-class", default=NONARG, help="name of the non-ARG class")
    d.add_argument("--extra-train", nargs="*", default=[], metavar="FASTA",
                   help="more labelled training proteins, e.g. the corpus' nonarg-extra.fasta")
    d.add_argument("--extra-max", type=int, default=0,
                   help="use at most this many of --extra-train, a seeded sample (0 = all)")
    d.add_argument("--hard-negatives", nargs="*", default=[], metavar="FASTA",
                   help="known non-ARGs that resemble ARGs (e.g. the non-ARG references an "
                        "export keeps), all of them, outside --extra-max")
    d.add_argument("--hard-negative-repeat", type=int, default=1,
                   help="each hard negative counts this many times in its class's draws")
    d.add_argument("--max-per-class", type=int, default=0,
                   help="keep at most this many training examples per class (0 = all)")
    d.add_argument("--max-residues", type=int, default=1022,
                   help="longer sequences: a random window in training, the first residues in "
                        "the per-epoch validation")
    d.add_argument("--calibration-max-residues", type=int, default=1022,
                   help="calibration (temperature, ARG threshold) sees the validation proteins "
                        "up to this length: the artifact's max_residues, as the server does")
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
                   help="dropout on the pooled embedding (and after the hidden layer)")
    m.add_argument("--pooling", choices=list(POOLINGS), default="mean",
                   help="how residue representations become one vector per protein")
    m.add_argument("--head-hidden", type=int, default=0,
                   help="width of a hidden GELU layer in the head (0 = linear head)")
    m.add_argument("--standardize-pooled", action="store_true",
                   help="standardize the pooled representation with the training proteins' "
                        "per-dimension mean and deviation under the frozen backbone (needs "
                        "--head-warmup-epochs or head-only training, which compute them)")
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
    o.add_argument("--head-warmup-epochs", type=int, default=0,
                   help="first train the head alone on the frozen backbone's pooled features for "
                        "this many epochs (--epoch-size examples each, --head-warmup-lr), then "
                        "adapt the backbone; a new run only")
    o.add_argument("--head-warmup-lr", type=float, default=3e-3,
                   help="learning rate of the head warm-up")
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
    add_runtime_args(r, seed_help="seeds weights, splits, caps, batch order and crops",
                     progress_help="no tqdm progress bars")
    return p


def main(argv: list[str]) -> int:
    return command_main("finetune", argv, build_parser().parse_args, run,
                        (ValueError, CheckpointError, OSError))


def run(args: argparse.Namespace) -> int:
    device, out, progress = start_run(args)
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
    extra_recs: list[LabelledProtein] = []
    for path in args.extra_train:
        extra_recs += read_labelled(path, args.nonarg_class)
    if args.extra_max and len(extra_recs) > args.extra_max:
        extra_recs = random.Random(args.seed).sample(extra_recs, args.extra_max)
    if args.hard_negative_repeat < 1:
        raise ValueError(f"--hard-negative-repeat must be at least 1, "
                         f"got {args.hard_negative_repeat}")
    hard_recs: list[LabelledProtein] = []
    for path in args.hard_negatives:
        hard_recs += read_labelled(path, args.nonarg_class)
    not_nonarg = sorted({r.label for r in hard_recs} - {args.nonarg_class})
    if not_nonarg:
        raise ValueError(f"--hard-negatives: classes other than {args.nonarg_class}: {not_nonarg}")
    train_recs = train_recs + extra_recs + hard_recs * args.hard_negative_repeat
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
    asked = HeadConfig(args.pooling, args.head_hidden, args.standardize_pooled)
    if args.resume and (out / "last.pt").is_file():
        state = torch_load(out / "last.pt")
        if state.get("format") != STATE_FORMAT or state["classes"] != classes:
            raise ValueError(f"{out / 'last.pt'}: not a resumable state for these classes")
        head_config = HeadConfig.from_dict(state.get("head"))
        if head_config != asked:
            raise ValueError(f"--resume: {out / 'last.pt'} has the head {head_config}, not the "
                             f"{asked} asked for; start a new run (another --out) to change it")
        model = ARGClassifier.build(ESM2Config.from_dict(state["backbone_config"]), len(classes),
                                    args.head_dropout, head_config)
        source = state["backbone_source"]
    elif args.resume:
        raise ValueError(f"--resume: {out / 'last.pt'} does not exist")
    else:
        head_config = asked
        if args.standardize_pooled and not (args.head_warmup_epochs or head_only):
            raise ValueError("--standardize-pooled needs --head-warmup-epochs (or head-only "
                             "training), which computes the statistics")
        model, source = build_model(len(classes), backbone=None if args.random_init
                                    else args.backbone, seed=args.seed,
                                    head_dropout=args.head_dropout, num_layers=args.num_layers,
                                    embed_dim=args.embed_dim, attention_heads=args.attention_heads,
                                    head_config=head_config)
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
    mode = "full" if args.full_finetune else ("head-only" if head_only else "lora")
    print(f"classes ({len(classes)}): {classes}", file=sys.stderr)
    print(f"train {len(y_tr)} / valid {len(y_va)} sequences; backbone {source} "
          f"{model.backbone.config}; trainable {num_parameters(model, True):,} of "
          f"{num_parameters(model):,} parameters; mode "
          f"{'lora ' + ','.join(targets) if mode == 'lora' else mode}; device {device}",
          file=sys.stderr)

    train_data: TokenData | FeatureData = TokenData(tr_toks, y_tr, args.max_residues,
                                                    args.max_tokens, args.max_batch,
                                                    args.sampling, args.epoch_size)
    valid_data: TokenData | FeatureData = TokenData(va_toks, y_va, args.max_residues,
                                                    args.max_tokens, args.max_batch)
    if head_only:
        # The frozen backbone has no dropout, so its embeddings are fixed: compute them once.
        train_data = FeatureData(embed_all(model, train_data, device, args.bf16, progress, "train"),
                                 y_tr, args.max_batch, args.sampling, args.epoch_size)
        if model.standardize:
            model.set_standardization(train_data.feats)
        valid_data = FeatureData(embed_all(model, valid_data, device, args.bf16, progress, "valid"),
                                 y_va, args.max_batch)

    # The warm-up counts against --max-minutes like the rest of the run.
    clock = Clock(args.max_minutes, state.get("elapsed_s", 0.0) if state else 0.0)
    warmup_records: list[dict] = state.get("head_warmup", []) if state else []
    if args.head_warmup_epochs and state is None and not head_only:
        # The adapters start at zero (LoRA B = 0), so these are the frozen backbone's features.
        feats = FeatureData(embed_all(model, train_data, device, args.bf16, progress, "train"),
                            y_tr, args.max_batch, args.sampling, args.epoch_size)
        if head_config.standardize:
            model.set_standardization(feats.feats)
        valid_feats = FeatureData(embed_all(model, valid_data, device, args.bf16, progress,
                                            "valid"), y_va, args.max_batch)
        warmup_records = warm_up_head(model, feats, valid_feats, epochs=args.head_warmup_epochs,
                                      lr=args.head_warmup_lr, weight_decay=args.weight_decay,
                                      seed=args.seed, classes=classes, nonarg=args.nonarg_class,
                                      weight=weight, device=device)
        del feats, valid_feats

    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(model, args.optimizer, args.lr, args.weight_decay)
    steps_per_epoch = math.ceil(len(train_data.batch_plan(0, args.seed, True)) / args.grad_accum)
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
    loop = TrainLoop(optimizer, trainable,
                     Schedule(args.lr, args.schedule, warmup_fraction=args.warmup_fraction),
                     clock,
                     max_steps=args.max_steps, max_epochs=args.epochs,
                     fixed_total=fixed_total(steps_per_epoch, args.epochs, args.max_steps),
                     grad_accum=args.grad_accum, grad_clip=args.grad_clip, replan_every=20,
                     progress=progress)
    train_info = {
        "train": {"path": str(args.train), "sha256": sha256_file(args.train),
                  "counts": dict(Counter(tr_labels)), "dropped": dict(tr_dropped),
                  "extra": [{"path": str(p), "sha256": sha256_file(p)} for p in args.extra_train],
                  "extra_used": len(extra_recs),
                  "hard_negatives": [{"path": str(p), "sha256": sha256_file(p)}
                                     for p in args.hard_negatives],
                  "hard_negatives_used": len(hard_recs),
                  "hard_negative_repeat": args.hard_negative_repeat},
        "valid": ({"path": str(args.valid), "sha256": sha256_file(args.valid)} if args.valid
                  else {"split_from_train": args.valid_fraction}) | {
                      "counts": dict(Counter(va_labels)), "dropped": dict(va_dropped)},
        "settings": {k: v for k, v in vars(args).items() if k not in ("resume", "no_progress")},
        "mode": mode,
        "head_warmup": warmup_records,
    }
    meta = {
        "backbone_config": model.backbone.config.to_dict(),
        "backbone_source": source,
        "classes": classes,
        "nonarg_class": args.nonarg_class if args.nonarg_class in classes else None,
        "max_residues": args.max_residues,
        "head_dropout": args.head_dropout,
        "head": head_config.to_dict(),
        "lora": None if lora_cfg is None else lora_cfg.to_dict(),
        "full_finetune": bool(args.full_finetune),
    }
    task = Finetuning(model, train_data, valid_data, loop, device, out, classes=classes,
                      nonarg=args.nonarg_class, head_only=head_only, weight=weight, bf16=args.bf16,
                      seed=args.seed, eval_every=args.eval_every, patience=args.patience,
                      meta=meta, train_info=train_info)
    if state is not None:
        task.restore(state)
        print(f"resumed at epoch {loop.epoch}, step {loop.step}", file=sys.stderr)
    elif warmup_records:
        task.evaluate()  # the warm-up's head on the frozen backbone is a candidate too (epoch 0)

    model.train()
    reason = loop.run(task)
    calibration_data: TokenData | FeatureData = TokenData(
        va_toks, y_va, args.calibration_max_residues, args.max_tokens, args.max_batch)
    if head_only:
        calibration_data = FeatureData(embed_all(model, calibration_data, device, False,
                                                 progress, "calibration"), y_va, args.max_batch)
    c = task.calibrate_best(y_va, [len(t) for t in va_toks], args.max_false_positive_rate,
                            args.min_residues, calibration_data, args.calibration_max_residues)
    if c is not None:
        print(f"calibration on validation: temperature {c['temperature']:.3f}, ECE "
              f"{c['validation']['ece_before']:.4f} -> {c['validation']['ece']:.4f}"
              + (f", ARG threshold {c['arg_threshold']:.3f} (macro-F1 "
                 f"{c['validation']['macro_f1']:.4f})" if "arg_threshold" in c else ""),
              file=sys.stderr)
    best = task.best
    print(f"stopped ({reason}) after {loop.step} steps, {loop.epoch} epochs, "
          f"{loop.clock.elapsed():.0f}s; best macro-F1 {best['macro_f1']:.4f} "
          f"(epoch {best['epoch']}, step {best['step']}) -> {out / 'best.pt'}", file=sys.stderr)
    return 0
