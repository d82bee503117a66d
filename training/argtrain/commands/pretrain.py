"""``argtrain pretrain``: masked-language-model pretraining of an ESM-2 (see argtrain.pretrain).

AdamW with warm-up and cosine/linear decay, gradient clipping, step/epoch/time budgets, periodic and
resumable checkpoints. With only a time budget the schedule is stretched over the number of steps
the speed so far allows, so the learning rate still decays to its floor when time runs out.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

from ..checkpoints import CheckpointError, load_backbone
from ..esm2 import ESM2, ESM2Config, num_parameters
from ..fasta import read_sequences
from ..pretrain import MaskedBatches, Pretraining, hold_out, load_resumable, tokenize_all
from ..trainloop import Clock, Schedule, TrainLoop, decay_groups, fixed_total
from .common import add_runtime_args, command_main, start_run
from .helpformat import HelpFormatter


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="argtrain pretrain",
        description="Masked-LM pretraining of an ESM-2 on protein FASTA (labels in headers are "
                    "ignored). Writes OUT/best.pt for 'argtrain finetune --backbone'.",
        formatter_class=HelpFormatter)
    d = p.add_argument_group("data")
    d.add_argument("--train", nargs="+", required=True, help="FASTA file(s), plain or gzip")
    d.add_argument("--valid", help="held-out FASTA for perplexity (default: --valid-fraction of train)")
    d.add_argument("--valid-fraction", type=float, default=0.02,
                   help="share of --train held out when --valid is not given")
    d.add_argument("--valid-max", type=int, default=1000, help="at most this many validation sequences")
    d.add_argument("--max-length", type=int, default=512,
                   help="crop sequences to this many tokens incl. <cls>/<eos> (random window)")
    m = p.add_argument_group("model")
    m.add_argument("--init-from", help="continue from a checkpoint (ours, fair-esm .pt, HF directory)")
    m.add_argument("--num-layers", type=int, default=4, help="transformer layers (from scratch)")
    m.add_argument("--embed-dim", type=int, default=128, help="model width (from scratch)")
    m.add_argument("--attention-heads", type=int, default=8,
                   help="heads; the head size embed-dim/heads must be even (from scratch)")
    m.add_argument("--no-token-dropout", action="store_true",
                   help="disable ESM-2's mask-token embedding rescaling")
    o = p.add_argument_group("optimisation")
    o.add_argument("--mask-prob", type=float, default=0.15, help="share of residues selected")
    o.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    o.add_argument("--min-lr-ratio", type=float, default=0.1, help="final lr as a fraction of peak")
    o.add_argument("--weight-decay", type=float, default=0.01,
                   help="on weight matrices only, not on biases or layer norms")
    o.add_argument("--betas", default="0.9,0.98", help="AdamW beta1,beta2")
    o.add_argument("--warmup-steps", type=int, default=0,
                   help="warm-up steps (0 = --warmup-fraction of the total)")
    o.add_argument("--warmup-fraction", type=float, default=0.05,
                   help="warm-up share of the total steps")
    o.add_argument("--schedule", choices=["cosine", "linear", "constant"], default="cosine",
                   help="decay after warm-up")
    o.add_argument("--max-tokens", type=int, default=8192,
                   help="token budget per batch (batch size x longest sequence incl. padding)")
    o.add_argument("--max-batch", type=int, default=256, help="most sequences per batch")
    o.add_argument("--grad-accum", type=int, default=1, help="batches per optimizer step")
    o.add_argument("--grad-clip", type=float, default=1.0, help="clip the gradient norm (0 = off)")
    o.add_argument("--epochs", type=int, default=0, help="epoch budget (0 = none)")
    o.add_argument("--max-steps", type=int, default=0, help="step budget (0 = none)")
    o.add_argument("--max-minutes", type=float, default=0, help="wall-clock budget (0 = none)")
    o.add_argument("--bf16", action="store_true", help="bfloat16 autocast (CPUs with AMX, GPUs)")
    r = p.add_argument_group("run")
    r.add_argument("--out", required=True, help="output directory")
    r.add_argument("--eval-every", type=int, default=500, help="validate every N steps")
    r.add_argument("--save-every", type=int, default=500, help="write last.pt every N steps")
    r.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    r.add_argument("--resume-from",
                   help="continue from this state instead of OUT/last.pt: a last.pt, or a portable "
                        "state (OUT/portable.pt: weights and progress, no optimizer state)")
    r.add_argument("--rewarm-steps", type=int, default=200,
                   help="when resuming without optimizer state, ramp the learning rate up over "
                        "this many steps while AdamW's moments refill")
    add_runtime_args(r, seed_help="seeds weights, held-out split, batch order, crops and masking",
                     progress_help="no tqdm progress bar (it is shown only on a terminal anyway)")
    return p


def main(argv: list[str]) -> int:
    return command_main("pretrain", argv, build_parser().parse_args, run,
                        (ValueError, CheckpointError, OSError))


def run(args: argparse.Namespace) -> int:
    device, out, progress = start_run(args)
    if args.max_length < 3:
        raise ValueError("--max-length must be at least 3")
    if not (args.epochs or args.max_steps or args.max_minutes):
        raise ValueError("give a budget: --epochs, --max-steps and/or --max-minutes")

    train = tokenize_all(read_sequences(args.train), "train")
    if args.valid:
        valid = tokenize_all(read_sequences([args.valid]), args.valid)
    else:
        train, valid = hold_out(train, args.valid_fraction, args.valid_max, args.seed)
    valid = valid[: args.valid_max]
    if not train or not valid:
        raise ValueError("empty training or validation set")

    state = None
    if args.resume or args.resume_from:
        state, model = load_resumable(Path(args.resume_from) if args.resume_from
                                      else out / "last.pt")
        source = state.get("source", "pretrained")
    elif args.init_from:
        model, base = load_backbone(args.init_from)
        source = f"pretrained:{base}+continued"
    else:
        torch.manual_seed(args.seed)
        model = ESM2(ESM2Config(args.num_layers, args.embed_dim, args.attention_heads,
                                not args.no_token_dropout))
        model.init_weights()
        source = f"pretrained:esm2-{args.num_layers}x{args.embed_dim}"
    model.to(device).train()
    n_res = sum(len(s) for s in train)
    print(f"train {len(train)} sequences ({n_res:,} residues), valid {len(valid)}; model "
          f"{model.config}, {num_parameters(model):,} parameters; device {device}", file=sys.stderr)

    params = list(model.parameters())
    betas = tuple(float(b) for b in args.betas.split(","))
    optimizer = torch.optim.AdamW(decay_groups(params, args.weight_decay), lr=args.lr, betas=betas,
                                  eps=1e-8)
    schedule = Schedule(args.lr, args.schedule, args.min_lr_ratio, args.warmup_steps,
                        args.warmup_fraction, rewarm_steps=args.rewarm_steps)
    if state is not None and "optimizer" in state:
        optimizer.load_state_dict(state["optimizer"])
    elif state is not None:
        schedule.rewarm_from = state["step"]
        print(f"no optimizer state: fresh AdamW, learning rate ramped up over "
              f"{args.rewarm_steps} steps", file=sys.stderr)
    loop = TrainLoop(optimizer, params, schedule,
                     Clock(args.max_minutes, state["elapsed_s"] if state else 0.0),
                     max_steps=args.max_steps, max_epochs=args.epochs or None,
                     grad_accum=args.grad_accum, grad_clip=args.grad_clip, replan_every=50,
                     progress=progress)
    batches = MaskedBatches(args.max_length, args.max_tokens, args.max_batch, args.mask_prob,
                            args.bf16)
    settings = {k: v for k, v in vars(args).items() if k not in ("resume", "resume_from")}
    task = Pretraining(model, train, valid, batches, loop, device, out, seed=args.seed,
                       source=source, settings=settings, eval_every=args.eval_every,
                       save_every=args.save_every)
    steps_per_epoch = math.ceil(len(task.plan(0)) / args.grad_accum)
    loop.fixed_total = fixed_total(steps_per_epoch, args.epochs, args.max_steps)
    if state is not None:
        task.restore(state)
        print(f"resumed at step {loop.step} (epoch {loop.epoch})", file=sys.stderr)

    reason = loop.run(task)
    if task.history.last_step() != loop.step:
        task.evaluate()
    task.save_last()
    el = loop.clock.elapsed()
    print(f"stopped ({reason}) at step {loop.step}, epoch {loop.epoch}: {task.tokens_seen:,} tokens "
          f"in {el:.0f}s ({task.tokens_seen / max(el, 1e-9):,.0f} tokens/s, "
          f"{task.residues_seen / max(el, 1e-9):,.0f} residues/s); best val perplexity "
          f"{task.best_ppl:.3f} -> {out / 'best.pt'}", file=sys.stderr)
    return 0
