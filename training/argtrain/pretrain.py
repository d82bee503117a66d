"""Masked-language-model pretraining of an ESM-2, from scratch or continued (``argtrain pretrain``).

ESM/BERT masking (15% of residues; of those 80% <mask>, 10% a random amino acid, 10% unchanged),
length-bucketed batches under a token budget, random crops and validation perplexity, as a
:class:`~argtrain.trainloop.Task` of the shared training loop.

Output directory:
  last.pt        latest state (weights, optimizer, position), for --resume; loadable as a backbone
  portable.pt    the same without optimizer state (a third of the size): what a run that must
                 move to another machine keeps; --resume-from it refills AdamW's moments
  best.pt        the weights with the lowest validation perplexity (give this to finetune)
  history.jsonl  one line per evaluation
"""

from __future__ import annotations

import math
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import alphabet
from .batching import crop, residue_batch, residue_ids, token_budget_batches
from .checkpoints import PRETRAIN_FORMAT, save_pretrain_checkpoint, torch_load
from .esm2 import ESM2, ESM2Config
from .trainloop import History, Task, TrainLoop, autocast

IGNORE = -100


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
    """Residue ids of every sequence the tokenization rules accept (the others are counted)."""
    out, dropped = [], 0
    for s in seqs:
        try:
            out.append(residue_ids(s))
        except alphabet.TokenizationError:
            dropped += 1
    if dropped:
        print(f"{where}: dropped {dropped} sequences that cannot be tokenized", file=sys.stderr)
    return out


def hold_out(train: list[np.ndarray], fraction: float, max_n: int, seed: int
             ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A seeded random ``fraction`` of ``train`` (at most ``max_n``) as the validation set."""
    order = list(range(len(train)))
    random.Random(seed).shuffle(order)
    held = set(order[:min(max_n, max(1, int(len(train) * fraction)))])
    return [train[i] for i in range(len(train)) if i not in held], [train[i] for i in sorted(held)]


@dataclass
class MaskedBatches:
    """How sequences become masked batches."""
    max_length: int = 512   # tokens incl. <cls>/<eos>; longer sequences are cropped
    max_tokens: int = 8192
    max_batch: int = 256
    mask_prob: float = 0.15
    bf16: bool = False

    def lengths(self, data: list[np.ndarray]) -> list[int]:
        return [min(len(s), self.max_length - 2) + 2 for s in data]

    def tokens(self, seqs: list[np.ndarray], rng: random.Random | None) -> torch.Tensor:
        return residue_batch([crop(s, self.max_length - 2, rng) for s in seqs])


@torch.no_grad()
def validate(model: ESM2, data: list[np.ndarray], batches: MaskedBatches,
             device: torch.device) -> dict:
    """Perplexity with a fixed masking draw, so evaluations are comparable across steps."""
    model.eval()
    gen = torch.Generator().manual_seed(12345)
    total_loss, total_n = 0.0, 0
    for idx in token_budget_batches(batches.lengths(data), batches.max_tokens, batches.max_batch,
                                    shuffle=False):
        tokens = batches.tokens([data[i] for i in idx], None)
        inputs, targets = mask_tokens(tokens, gen, batches.mask_prob)
        with autocast(device, batches.bf16):
            loss, n = mlm_loss(model, inputs.to(device), targets.to(device))
        total_loss += loss.item() * n
        total_n += n
    model.train()
    mean = total_loss / max(1, total_n)
    return {"loss": mean, "perplexity": math.exp(min(mean, 50.0)), "masked": total_n}


def load_resumable(path: Path) -> tuple[dict, ESM2]:
    """A last.pt or portable.pt state and its model."""
    if not path.is_file():
        raise ValueError(f"--resume: {path} does not exist")
    state = torch_load(path)
    if state.get("format") != PRETRAIN_FORMAT or "elapsed_s" not in state:
        raise ValueError(f"{path}: not a resumable pretrain state")
    model = ESM2(ESM2Config.from_dict(state["config"]))
    model.load_state_dict(state["model"])
    return state, model


class Pretraining(Task):
    """One pretraining run: masked batches, periodic validation, best.pt / last.pt / portable.pt."""

    def __init__(self, model: ESM2, train: list[np.ndarray], valid: list[np.ndarray],
                 batches: MaskedBatches, loop: TrainLoop, device: torch.device, out: Path, *,
                 seed: int, source: str, settings: dict, eval_every: int, save_every: int):
        self.model, self.train, self.valid, self.batches = model, train, valid, batches
        self.loop, self.device, self.out, self.seed = loop, device, out, seed
        self.source, self.settings = source, settings
        self.eval_every, self.save_every = eval_every, save_every
        self.lengths = batches.lengths(train)
        self.gen = torch.Generator().manual_seed(seed)
        self.tokens_seen = self.residues_seen = 0
        self.best_ppl = math.inf
        self.history = History(out / "history.jsonl")
        self.loss_ema: float | None = None

    def restore(self, state: dict) -> None:
        self.loop.restore(state)
        self.tokens_seen, self.residues_seen = state["tokens_seen"], state["residues_seen"]
        self.best_ppl = state["best_ppl"]
        self.history.records = state["history"]
        self.gen.set_state(state["mask_rng"])

    def plan(self, epoch: int) -> list[list[int]]:
        b = self.batches
        return token_budget_batches(self.lengths, b.max_tokens, b.max_batch, shuffle=True,
                                    rng=random.Random(self.seed * 100003 + epoch),
                                    bucket_size=max(1, 100 * b.max_batch))

    def crop_rng(self, epoch: int, batch_pos: int) -> random.Random:
        return random.Random(self.seed * 7919 + epoch * 31 + batch_pos)

    def backward(self, batch: list[int], rng: random.Random, accumulate: int) -> float:
        tokens = self.batches.tokens([self.train[i] for i in batch], rng)
        inputs, targets = mask_tokens(tokens, self.gen, self.batches.mask_prob)
        with autocast(self.device, self.batches.bf16):
            loss, _ = mlm_loss(self.model, inputs.to(self.device), targets.to(self.device))
        (loss / accumulate).backward()
        self.tokens_seen += tokens.numel()
        self.residues_seen += int(tokens.ne(alphabet.PAD).sum()) - 2 * tokens.size(0)
        value = loss.item()
        self.loss_ema = value if self.loss_ema is None else 0.98 * self.loss_ema + 0.02 * value
        return value

    def after_step(self, step: int) -> bool:
        if self.eval_every and step % self.eval_every == 0:
            self.evaluate()
        if self.save_every and step % self.save_every == 0:
            self.save_last()
        return False

    def postfix(self) -> dict:
        return {"loss": f"{self.loss_ema:.3f}"}

    def evaluate(self) -> None:
        rep = validate(self.model, self.valid, self.batches, self.device)
        el = self.loop.clock.elapsed()
        rec = {"step": self.loop.step, "epoch": self.loop.epoch, "val_loss": rep["loss"],
               "val_ppl": rep["perplexity"], "lr": self.loop.optimizer.param_groups[0]["lr"],
               "tokens": self.tokens_seen, "elapsed_s": round(el, 1),
               "tokens_per_s": round(self.tokens_seen / max(el, 1e-9), 1)}
        self.history.add(rec)
        better = rep["perplexity"] < self.best_ppl
        print(f"step {self.loop.step}: val loss {rep['loss']:.4f} ppl {rep['perplexity']:.3f} "
              f"({self.tokens_seen / max(el, 1e-9):,.0f} tokens/s){'  *best*' if better else ''}",
              file=sys.stderr)
        if better:
            self.best_ppl = rep["perplexity"]
            self.save(self.out / "best.pt", full=False)

    def save_last(self) -> None:
        self.save(self.out / "last.pt", full=True)
        self.save(self.out / "portable.pt", full=True, optimizer_state=False)

    def save(self, path: Path, full: bool, optimizer_state: bool = True) -> None:
        loop = self.loop
        extra = {"source": self.source, "step": loop.step, "best_ppl": self.best_ppl,
                 "settings": self.settings}
        if full:
            extra.update(epoch=loop.epoch, batch_pos=loop.batch_pos, tokens_seen=self.tokens_seen,
                         residues_seen=self.residues_seen, history=self.history.records,
                         elapsed_s=loop.clock.elapsed(), mask_rng=self.gen.get_state())
            if optimizer_state:
                extra["optimizer"] = loop.optimizer.state_dict()
        cpu_model = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        save_pretrain_checkpoint(path, self.model, {**extra, "model": cpu_model})
