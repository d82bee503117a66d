"""``argtrain pretrain``: masked-language-model pretraining of an ESM-2, from scratch or continued.

ESM/BERT masking (15% of residues; of those 80% <mask>, 10% a random amino acid, 10% unchanged),
length-bucketed batches under a token budget, random crops, AdamW with warm-up and cosine/linear
decay, gradient clipping, step/epoch/time budgets, periodic and resumable checkpoints, validation
perplexity. With only a time budget the schedule is stretched over the number of steps the measured
speed allows, so the learning rate still decays to its floor when time runs out.

Output directory:
  last.pt        latest state (weights, optimizer, position), for --resume; loadable as a backbone
  portable.pt    the same without optimizer state (a third of the size): what a run that must
                 move to another machine keeps; --resume-from it refills AdamW's moments
  best.pt        the weights with the lowest validation perplexity (give this to finetune)
  history.jsonl  one line per evaluation
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import alphabet
from .checkpoints import (PRETRAIN_FORMAT, CheckpointError, load_backbone, save_pretrain_checkpoint,
                          torch_load)
from .esm2 import ESM2, ESM2Config, num_parameters
from .trainutil import (Deadline, HelpFormatter, lr_at, pick_device, read_sequences,
                        seed_everything, set_threads, token_budget_batches)

IGNORE = -100


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
    r.add_argument("--seed", type=int, default=0,
                   help="seeds weights, held-out split, batch order, crops and masking")
    r.add_argument("--num-threads", type=int, default=0, help="torch threads (0 = torch default)")
    r.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    r.add_argument("--no-progress", action="store_true",
                   help="no tqdm progress bar (it is shown only on a terminal anyway)")
    return p


def mask_tokens(tokens: torch.Tensor, gen: torch.Generator, mask_prob: float = 0.15
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT/ESM masking: (inputs, targets); targets are IGNORE except at the selected positions.

    Only residues are selected (never <cls>/<eos>/<pad>), and every sequence gets at least one.
    """
    residue = tokens.ne(alphabet.CLS) & tokens.ne(alphabet.EOS) & tokens.ne(alphabet.PAD)
    u = torch.rand(tokens.shape, generator=gen)
    selected = (u < mask_prob) & residue
    none = ~selected.any(dim=1) & residue.any(dim=1)
    if bool(none.any()):
        # The residue with the smallest draw: a uniform choice among the row's residues.
        pick = u.masked_fill(~residue, 2.0).argmin(dim=1)
        rows = none.nonzero(as_tuple=True)[0]
        selected[rows, pick[rows]] = True
    targets = torch.where(selected, tokens, torch.full_like(tokens, IGNORE))
    v = torch.rand(tokens.shape, generator=gen)
    inputs = tokens.clone()
    inputs[selected & (v < 0.8)] = alphabet.MASK
    rand_pos = selected & (v >= 0.8) & (v < 0.9)
    n_rand = int(rand_pos.sum())
    if n_rand:
        aa = torch.tensor(alphabet.STANDARD_AA_IDS, dtype=tokens.dtype)
        inputs[rand_pos] = aa[torch.randint(len(aa), (n_rand,), generator=gen)]
    return inputs, targets


def mlm_loss(model: ESM2, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Mean cross-entropy over the selected positions; the LM head runs on those positions only."""
    reps = model.representations(inputs)
    sel = targets.ne(IGNORE)
    # The head is cheap on ~15% of positions; fp32 keeps it clear of autocast's dtype mixing.
    with torch.autocast(inputs.device.type, enabled=False):
        logits = model.lm_logits(reps[sel].float())
    return F.cross_entropy(logits, targets[sel]), int(sel.sum())


def tokenize_all(seqs: list[str], where: str) -> list[np.ndarray]:
    out, dropped = [], 0
    for s in seqs:
        try:
            out.append(np.asarray(alphabet.encode(s)[1:-1], dtype=np.int64))
        except alphabet.TokenizationError:
            dropped += 1
    if dropped:
        print(f"{where}: dropped {dropped} sequences that cannot be tokenized", file=sys.stderr)
    return out


def make_batch(seqs: list[np.ndarray], max_residues: int, rng: random.Random | None) -> torch.Tensor:
    crops = []
    for s in seqs:
        if len(s) > max_residues:
            start = rng.randint(0, len(s) - max_residues) if rng is not None else 0
            s = s[start:start + max_residues]
        crops.append(s)
    width = max(len(s) for s in crops) + 2
    out = np.full((len(crops), width), alphabet.PAD, dtype=np.int64)
    for i, s in enumerate(crops):
        out[i, 0] = alphabet.CLS
        out[i, 1:len(s) + 1] = s
        out[i, len(s) + 1] = alphabet.EOS
    return torch.from_numpy(out)


@torch.no_grad()
def validate(model: ESM2, data: list[np.ndarray], args, device: torch.device) -> dict:
    """Perplexity with a fixed masking draw, so evaluations are comparable across steps."""
    model.eval()
    gen = torch.Generator().manual_seed(12345)
    lengths = [min(len(s), args.max_length - 2) + 2 for s in data]
    total_loss, total_n = 0.0, 0
    for idx in token_budget_batches(lengths, args.max_tokens, args.max_batch, shuffle=False):
        tokens = make_batch([data[i] for i in idx], args.max_length - 2, None)
        inputs, targets = mask_tokens(tokens, gen, args.mask_prob)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
            loss, n = mlm_loss(model, inputs.to(device), targets.to(device))
        total_loss += loss.item() * n
        total_n += n
    model.train()
    mean = total_loss / max(1, total_n)
    return {"loss": mean, "perplexity": math.exp(min(mean, 50.0)), "masked": total_n}


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except (ValueError, CheckpointError, OSError) as e:
        print(f"argtrain pretrain: error: {e}", file=sys.stderr)
        return 1


def run(args) -> int:
    set_threads(args.num_threads)
    seed_everything(args.seed)
    device = pick_device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    progress = not args.no_progress and sys.stderr.isatty()
    if args.max_length < 3:
        raise ValueError("--max-length must be at least 3")
    if not (args.epochs or args.max_steps or args.max_minutes):
        raise ValueError("give a budget: --epochs, --max-steps and/or --max-minutes")

    train = tokenize_all([r.seq for r in read_sequences(args.train)], "train")
    if args.valid:
        valid = tokenize_all([r.seq for r in read_sequences([args.valid])], args.valid)
    else:
        rng = random.Random(args.seed)
        order = list(range(len(train)))
        rng.shuffle(order)
        k = min(args.valid_max, max(1, int(len(train) * args.valid_fraction)))
        held = set(order[:k])
        valid = [train[i] for i in sorted(held)]
        train = [train[i] for i in range(len(train)) if i not in held]
    valid = valid[: args.valid_max]
    if not train or not valid:
        raise ValueError("empty training or validation set")

    state = None
    if args.resume or args.resume_from:
        src = Path(args.resume_from) if args.resume_from else out / "last.pt"
        if not src.is_file():
            raise ValueError(f"--resume: {src} does not exist")
        state = torch_load(src)
        if state.get("format") != PRETRAIN_FORMAT or "elapsed_s" not in state:
            raise ValueError(f"{src}: not a resumable pretrain state")
        model = ESM2(ESM2Config.from_dict(state["config"]))
        model.load_state_dict(state["model"])
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

    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    betas = tuple(float(b) for b in args.betas.split(","))
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}],
                                  lr=args.lr, betas=betas, eps=1e-8)
    lengths = [min(len(s), args.max_length - 2) + 2 for s in train]

    def plan_for(epoch: int) -> list[list[int]]:
        return token_budget_batches(lengths, args.max_tokens, args.max_batch, shuffle=True,
                                    rng=random.Random(args.seed * 100003 + epoch),
                                    bucket_size=max(1, 100 * args.max_batch))

    steps_per_epoch = math.ceil(len(plan_for(0)) / args.grad_accum)
    budgets = [b for b in (args.max_steps, args.epochs * steps_per_epoch) if b]
    fixed_total = min(budgets) if budgets else 0

    step, epoch, batch_pos, tokens_seen, residues_seen = 0, 0, 0, 0, 0
    best_ppl, history = math.inf, []
    elapsed_before = 0.0
    gen = torch.Generator().manual_seed(args.seed)
    rewarm_from = None
    if state is not None:
        if "optimizer" in state:
            optimizer.load_state_dict(state["optimizer"])
        else:
            rewarm_from = state["step"]
            print(f"no optimizer state: fresh AdamW, learning rate ramped up over "
                  f"{args.rewarm_steps} steps", file=sys.stderr)
        step, epoch, batch_pos = state["step"], state["epoch"], state["batch_pos"]
        tokens_seen, residues_seen = state["tokens_seen"], state["residues_seen"]
        best_ppl, history = state["best_ppl"], state["history"]
        elapsed_before = state["elapsed_s"]
        gen.set_state(state["mask_rng"])
        print(f"resumed at step {step} (epoch {epoch})", file=sys.stderr)
    deadline = Deadline(args.max_minutes)
    if args.max_minutes:
        deadline.seconds = max(0.0, args.max_minutes * 60.0 - elapsed_before)
    total = fixed_total or max(1, step + 1)

    def schedule_total() -> int:
        """Steps the run will take: the fixed budget, or what the time budget allows at this speed."""
        if not args.max_minutes or step < 20:
            return fixed_total or 10 ** 9
        rate = step / (elapsed_before + deadline.elapsed())
        by_time = int(rate * (elapsed_before + deadline.seconds))
        return min(fixed_total, by_time) if fixed_total else by_time

    def save(path: Path, full: bool, optimizer_state: bool = True) -> None:
        extra = {"source": source, "step": step, "best_ppl": best_ppl,
                 "settings": {k: v for k, v in vars(args).items()
                              if k not in ("resume", "resume_from")}}
        if full:
            extra.update(epoch=epoch, batch_pos=batch_pos, tokens_seen=tokens_seen,
                         residues_seen=residues_seen, history=history,
                         elapsed_s=elapsed_before + deadline.elapsed(), mask_rng=gen.get_state())
            if optimizer_state:
                extra["optimizer"] = optimizer.state_dict()
        cpu_model = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        save_pretrain_checkpoint(path, model, {**extra, "model": cpu_model})

    def do_eval() -> None:
        nonlocal best_ppl
        rep = validate(model, valid, args, device)
        el = elapsed_before + deadline.elapsed()
        rec = {"step": step, "epoch": epoch, "val_loss": rep["loss"], "val_ppl": rep["perplexity"],
               "lr": optimizer.param_groups[0]["lr"], "tokens": tokens_seen, "elapsed_s": round(el, 1),
               "tokens_per_s": round(tokens_seen / max(el, 1e-9), 1)}
        history.append(rec)
        with open(out / "history.jsonl", "a") as fh:
            fh.write(json.dumps(rec) + "\n")
        better = rep["perplexity"] < best_ppl
        print(f"step {step}: val loss {rep['loss']:.4f} ppl {rep['perplexity']:.3f} "
              f"({tokens_seen / max(el, 1e-9):,.0f} tokens/s){'  *best*' if better else ''}",
              file=sys.stderr)
        if better:
            best_ppl = rep["perplexity"]
            save(out / "best.pt", full=False)

    bar = None
    if progress:
        try:
            from tqdm import tqdm
            bar = tqdm(total=None, initial=step, unit="step", dynamic_ncols=True)
        except ImportError:
            bar = None
    stop, reason = False, ""
    loss_ema = None
    while not stop:
        if args.epochs and epoch >= args.epochs:
            reason = "epochs"
            break
        plan = plan_for(epoch)
        crop_rng = random.Random(args.seed * 7919 + epoch * 31 + batch_pos)
        optimizer.zero_grad(set_to_none=True)
        micro = 0
        for bi in range(batch_pos, len(plan)):
            tokens = make_batch([train[i] for i in plan[bi]], args.max_length - 2, crop_rng)
            inputs, targets = mask_tokens(tokens, gen, args.mask_prob)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
                loss, _ = mlm_loss(model, inputs.to(device), targets.to(device))
            (loss / args.grad_accum).backward()
            tokens_seen += tokens.numel()
            residues_seen += int(tokens.ne(alphabet.PAD).sum()) - 2 * tokens.size(0)
            loss_ema = loss.item() if loss_ema is None else 0.98 * loss_ema + 0.02 * loss.item()
            micro += 1
            batch_pos = bi + 1
            if micro % args.grad_accum and bi != len(plan) - 1:
                continue
            if step < 100 or step % 50 == 0:
                total = schedule_total()
            warmup = args.warmup_steps or int(args.warmup_fraction * min(total, 10 ** 7))
            lr = lr_at(step, total, warmup, args.lr, args.schedule, args.min_lr_ratio)
            if rewarm_from is not None and step - rewarm_from < args.rewarm_steps:
                lr *= (step - rewarm_from + 1) / args.rewarm_steps
            for g in optimizer.param_groups:
                g["lr"] = lr
            if args.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss_ema:.3f}", lr=f"{lr:.2e}", epoch=epoch)
            if args.eval_every and step % args.eval_every == 0:
                do_eval()
            if args.save_every and step % args.save_every == 0:
                save(out / "last.pt", full=True)
                save(out / "portable.pt", full=True, optimizer_state=False)
            if args.max_steps and step >= args.max_steps:
                stop, reason = True, "max steps"
            elif deadline.expired():
                stop, reason = True, "time budget"
            if stop:
                break
        if batch_pos >= len(plan):
            epoch, batch_pos = epoch + 1, 0
    if bar is not None:
        bar.close()
    if not history or history[-1]["step"] != step:
        do_eval()
    save(out / "last.pt", full=True)
    save(out / "portable.pt", full=True, optimizer_state=False)
    el = elapsed_before + deadline.elapsed()
    print(f"stopped ({reason}) at step {step}, epoch {epoch}: {tokens_seen:,} tokens in {el:.0f}s "
          f"({tokens_seen / max(el, 1e-9):,.0f} tokens/s, {residues_seen / max(el, 1e-9):,.0f} "
          f"residues/s); best val perplexity {best_ppl:.3f} -> {out / 'best.pt'}", file=sys.stderr)
    return 0
