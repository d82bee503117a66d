"""The loop pretrain and finetune share: schedule, budgets, history, stopping and resuming."""

import copy
import json
import random

import pytest
import torch

from argtrain.trainloop import Clock, History, Schedule, Task, TrainLoop, fixed_total


class FixedClock(Clock):
    """A clock that reads a set number of seconds."""

    def __init__(self, minutes=0.0, before=0.0, now=0.0):
        super().__init__(minutes, before)
        self.now = now

    def elapsed(self):
        return self.before + self.now

    def expired(self):
        return self.now >= self.seconds


class Line(Task):
    """Fits y = 2x with one weight; five batches of one point per epoch."""

    def __init__(self, model, stop_at=None):
        self.model, self.stop_at = model, stop_at
        self.x = torch.arange(1.0, 6.0).unsqueeze(1)
        self.seen = []

    def plan(self, epoch):
        order = list(range(5))
        random.Random(epoch).shuffle(order)
        return [[i] for i in order]

    def crop_rng(self, epoch, batch_pos):
        return random.Random(0)

    def backward(self, batch, rng, accumulate):
        self.seen.append(batch[0])
        x = self.x[batch]
        loss = ((self.model(x) - 2 * x) ** 2).mean()
        (loss / accumulate).backward()
        return loss.item()

    def after_step(self, step):
        return step == self.stop_at


def _loop(model, **kw):
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    return TrainLoop(opt, list(model.parameters()), Schedule(0.05, "constant"), Clock(), **kw)


def test_schedule_warms_up_by_fraction_and_rewarms_after_a_resume():
    s = Schedule(1.0, "cosine", 0.1, warmup_fraction=0.1)
    assert s.lr(0, 100) == pytest.approx(0.1) and s.lr(9, 100) == pytest.approx(1.0)
    assert s.lr(100, 100) == pytest.approx(0.1)
    assert Schedule(1.0, warmup_fraction=0.5).lr(0, 10 ** 9) == pytest.approx(1 / 5_000_000)
    r = Schedule(1.0, "constant", rewarm_from=50, rewarm_steps=4)
    assert [r.lr(s, 100) for s in (50, 51, 53, 54)] == pytest.approx([0.25, 0.5, 1.0, 1.0])


def test_clock_counts_earlier_sessions():
    c = Clock(10, before=120.0)
    assert c.limited and c.seconds == pytest.approx(480.0) and c.budget == pytest.approx(600.0)
    assert c.elapsed() >= 120.0 and not c.expired()
    assert Clock(1, before=90.0).expired()  # the budget was spent before this session
    assert not Clock().limited and not Clock().expired()


def test_planned_total_follows_the_speed_under_a_time_budget():
    loop = _loop(torch.nn.Linear(1, 1, bias=False), fixed_total=0)
    loop.clock = FixedClock(minutes=10, now=60.0)
    loop.step = 10
    assert loop.planned_total() == 10 ** 9  # too early to tell
    loop.step = 100  # 100 steps a minute, ten minutes in all
    assert loop.planned_total() == 1000
    loop.fixed_total = 500
    assert loop.planned_total() == 500
    loop.clock = FixedClock(minutes=10, now=600.0)
    loop.fixed_total, loop.step = 0, 1000
    assert loop.planned_total() == 1001  # never behind the current step
    assert fixed_total(100, 3, 0) == 300 and fixed_total(100, 3, 250) == 250
    assert fixed_total(100, 0, 0) == 0


def test_history_is_kept_and_written_as_json_lines(tmp_path):
    h = History(tmp_path / "history.jsonl")
    assert h.last_step() is None
    h.add({"step": 5, "loss": 1.0})
    h.add({"step": 10, "loss": 0.5})
    assert h.last_step() == 10
    lines = (tmp_path / "history.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == h.records


def test_budgets_accumulation_and_early_stopping():
    torch.manual_seed(0)
    model = torch.nn.Linear(1, 1, bias=False)
    loop = _loop(model, max_steps=7)
    assert loop.run(Line(model)) == "max steps" and loop.step == 7
    assert (loop.epoch, loop.batch_pos) == (1, 2)
    loop = _loop(model, max_epochs=2, grad_accum=2)
    task = Line(model)
    assert loop.run(task) == "epochs"
    assert loop.step == 6 and len(task.seen) == 10  # 2 + 1 steps per 5-batch epoch
    loop = _loop(model, max_epochs=5)
    assert loop.run(Line(model, stop_at=3)) == "early stopping" and loop.step == 3


def test_a_resumed_run_ends_where_an_uninterrupted_one_does():
    torch.manual_seed(0)
    start = torch.nn.Linear(1, 1, bias=False)
    whole = copy.deepcopy(start)
    loop = _loop(whole, max_steps=8)
    loop.run(Line(whole))

    first = copy.deepcopy(start)
    loop = _loop(first, max_steps=3)
    loop.run(Line(first))
    state = {"step": loop.step, "epoch": loop.epoch, "batch_pos": loop.batch_pos,
             "optimizer": loop.optimizer.state_dict()}
    again = copy.deepcopy(first)
    loop = _loop(again, max_steps=8)
    loop.optimizer.load_state_dict(state["optimizer"])
    loop.restore(state)
    assert loop.run(Line(again)) == "max steps"
    assert torch.equal(again.weight, whole.weight)
