"""The optimisation loop that ``argtrain pretrain`` and ``argtrain finetune`` share.

The loop owns what both do alike: the position (step, epoch, batch) that checkpoints keep for
resuming, gradient accumulation and clipping, the learning-rate schedule (linear warm-up, then
cosine or linear decay), the step / epoch / wall-clock budgets, and the evaluation history. What a
batch computes, when to evaluate and which checkpoints to keep belong to the caller's :class:`Task`.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch


def lr_at(step: int, total: int, warmup: int, peak: float, schedule: str = "cosine",
          final_ratio: float = 0.1) -> float:
    """Linear warm-up to ``peak``, then linear or cosine decay to ``final_ratio * peak``."""
    if warmup > 0 and step < warmup:
        return peak * (step + 1) / warmup
    if schedule == "constant" or total <= warmup:
        return peak
    frac = min(1.0, (step - warmup) / max(1, total - warmup))
    if schedule == "linear":
        scale = 1.0 - frac
    elif schedule == "cosine":
        scale = 0.5 * (1.0 + math.cos(math.pi * frac))
    else:
        raise ValueError(f"unknown schedule {schedule!r}")
    return peak * (final_ratio + (1.0 - final_ratio) * scale)


@dataclass
class Schedule:
    """The learning rate of each step, given the number of steps the run is planned to take."""
    peak: float
    kind: str = "cosine"
    final_ratio: float = 0.1
    warmup_steps: int = 0           # 0: warmup_fraction of the planned steps
    warmup_fraction: float = 0.0
    rewarm_from: int | None = None  # resumed at this step without optimizer state
    rewarm_steps: int = 0           # ... so ramp up again while AdamW's moments refill

    def lr(self, step: int, total: int) -> float:
        # The cap keeps the warm-up finite while the plan is still a placeholder (time budget).
        warmup = self.warmup_steps or int(self.warmup_fraction * min(total, 10 ** 7))
        lr = lr_at(step, total, warmup, self.peak, self.kind, self.final_ratio)
        if self.rewarm_from is not None and step - self.rewarm_from < self.rewarm_steps:
            lr *= (step - self.rewarm_from + 1) / self.rewarm_steps
        return lr


class Clock:
    """A run's wall-clock budget (``minutes`` 0 = none), counting earlier sessions' ``before`` s."""

    def __init__(self, minutes: float = 0.0, before: float = 0.0):
        self.start = time.monotonic()
        self.before = before
        self.limited = bool(minutes)
        self.seconds = max(0.0, minutes * 60.0 - before) if minutes else math.inf  # this session

    def elapsed(self) -> float:
        """Seconds of the whole run so far."""
        return self.before + (time.monotonic() - self.start)

    def expired(self) -> bool:
        return time.monotonic() - self.start >= self.seconds

    @property
    def budget(self) -> float:
        """Seconds of the whole run."""
        return self.before + self.seconds


def fixed_total(steps_per_epoch: int, epochs: int, max_steps: int) -> int:
    """Steps the step and epoch budgets allow (0 when neither is set)."""
    budgets = [b for b in (max_steps, epochs * steps_per_epoch) if b]
    return min(budgets) if budgets else 0


class History:
    """Evaluation records of a run: kept in memory (checkpoints hold them) and in history.jsonl."""

    def __init__(self, path: Path, records: list[dict] | None = None):
        self.path = path
        self.records = records if records is not None else []

    def add(self, record: dict) -> None:
        self.records.append(record)
        with open(self.path, "a") as fh:
            fh.write(json.dumps(record) + "\n")

    def last_step(self) -> int | None:
        return self.records[-1]["step"] if self.records else None


class Task:
    """What a run computes. ``plan``, ``crop_rng`` and ``backward`` are required; the hooks are not."""

    def plan(self, epoch: int) -> list[list[int]]:
        """The batches (example indices) of an epoch: the same again for the same epoch."""
        raise NotImplementedError

    def crop_rng(self, epoch: int, batch_pos: int) -> random.Random:
        """Random crops for the batches of ``epoch`` from ``batch_pos`` on."""
        raise NotImplementedError

    def backward(self, batch: list[int], rng: random.Random, accumulate: int) -> float:
        """Forward and backward pass of one batch, the loss divided by ``accumulate``; the loss."""
        raise NotImplementedError

    def after_step(self, step: int) -> bool:
        """After each optimizer step (evaluate, save); True stops the run early."""
        return False

    def after_epoch(self, step: int) -> bool:
        """After a whole epoch; True stops the run early."""
        return False

    def after_partial_epoch(self, step: int) -> None:
        """When a budget stopped the run inside an epoch."""

    def after_pass(self) -> None:
        """After each pass of the loop: a whole epoch, or the part of it before a stop."""

    def postfix(self) -> dict:
        """Extra fields of the progress bar."""
        return {}


class TrainLoop:
    """Optimizer steps over a task's epochs until a budget is spent or the task stops the run."""

    def __init__(self, optimizer: torch.optim.Optimizer, params: list[torch.nn.Parameter],
                 schedule: Schedule, clock: Clock, *, max_steps: int = 0,
                 max_epochs: int | None = None, fixed_total: int = 0, grad_accum: int = 1,
                 grad_clip: float = 0.0, replan_every: int = 50, progress: bool = False):
        self.optimizer, self.params = optimizer, params
        self.schedule, self.clock = schedule, clock
        self.max_steps, self.max_epochs, self.fixed_total = max_steps, max_epochs, fixed_total
        self.grad_accum, self.grad_clip = grad_accum, grad_clip
        self.replan_every = replan_every  # after the first 100 steps, re-estimate this often
        self.progress = progress
        self.step = self.epoch = self.batch_pos = 0
        self.lr = 0.0

    def restore(self, state: dict) -> None:
        """Continue from the position a checkpoint holds."""
        self.step, self.epoch, self.batch_pos = state["step"], state["epoch"], state["batch_pos"]

    def planned_total(self) -> int:
        """Steps the run will take: the fixed budget, or what the time budget allows at this speed
        (so that the learning rate has decayed when time runs out)."""
        if not self.clock.limited or self.step < 20:
            return self.fixed_total or 10 ** 9
        rate = self.step / max(1e-9, self.clock.elapsed())
        by_time = int(rate * self.clock.budget)
        return max(self.step + 1, min(self.fixed_total, by_time) if self.fixed_total else by_time)

    def run(self, task: Task) -> str:
        """Train; returns why it stopped: epochs, max steps, time budget or early stopping."""
        total = self.fixed_total or max(1, self.step + 1)
        bar = _step_bar(self.step) if self.progress else None
        reason = ""
        while not reason:
            if self.max_epochs is not None and self.epoch >= self.max_epochs:
                reason = "epochs"
                break
            plan = task.plan(self.epoch)
            rng = task.crop_rng(self.epoch, self.batch_pos)
            self.optimizer.zero_grad(set_to_none=True)
            micro = 0
            for bi in range(self.batch_pos, len(plan)):
                task.backward(plan[bi], rng, self.grad_accum)
                micro += 1
                self.batch_pos = bi + 1
                if micro % self.grad_accum and bi != len(plan) - 1:
                    continue
                if self.step < 100 or self.step % self.replan_every == 0:
                    total = self.planned_total()
                self._optimizer_step(total)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(**task.postfix(), lr=f"{self.lr:.2e}", epoch=self.epoch)
                if task.after_step(self.step):
                    reason = "early stopping"
                if self.max_steps and self.step >= self.max_steps:
                    reason = "max steps"
                if self.clock.expired():
                    reason = "time budget"
                if reason:
                    break
            if self.batch_pos >= len(plan):
                self.epoch, self.batch_pos = self.epoch + 1, 0
                if task.after_epoch(self.step):
                    reason = "early stopping"
            elif reason and reason != "early stopping":
                task.after_partial_epoch(self.step)
            task.after_pass()
        if bar is not None:
            bar.close()
        return reason

    def _optimizer_step(self, total: int) -> None:
        self.lr = self.schedule.lr(self.step, total)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr
        if self.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1


def _step_bar(initial: int):
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=None, initial=initial, unit="step", dynamic_ncols=True)


def autocast(device: torch.device, bf16: bool):
    """bfloat16 autocast on ``device`` when asked, else a no-op context."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16)


def decay_groups(params: list[torch.nn.Parameter], weight_decay: float) -> list[dict]:
    """Optimizer groups: weight decay on weight matrices only, not on biases or layer norms."""
    return [{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
