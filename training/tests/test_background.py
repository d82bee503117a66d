"""The proteome-like background (argtrain.background): Swiss-Prot non-ARGs fine-tuning never saw."""

import random

from argtrain.background import unseen_background, unseen_of
from argtrain.labelled import read_labelled


def _extra(path, n):
    path.write_text("".join(f">P{i:05d}|nonarg\nMKV{'A' * (i % 7)}LLT\n" for i in range(n)))
    return path


def test_background_leaves_out_the_fine_tuning_sample(tmp_path):
    extra = _extra(tmp_path / "extra.fasta", 100)
    records = read_labelled(extra)
    # The same draw as argtrain finetune --extra-max 30 --seed 42.
    trained = {r.id for r in random.Random(42).sample(records, 30)}
    background = unseen_background(extra, 50, finetune_extra_max=30, finetune_seed=42)
    ids = [r.id for r in background]
    assert len(ids) == len(set(ids)) == 50
    assert not set(ids) & trained
    assert [r.id for r in unseen_background(extra, 50, 30, 42)] == ids  # reproducible
    # The same draw from records already read (argtrain relatives reads the file once).
    assert [r.id for r in unseen_of(records, 50, 30, 42)] == ids
    # Fewer left than asked for: all of them.
    assert len(unseen_background(extra, 500, 30, 42)) == 70


def test_no_background_when_fine_tuning_saw_every_record(tmp_path):
    extra = _extra(tmp_path / "extra.fasta", 20)
    assert unseen_background(extra, 10, finetune_extra_max=0, finetune_seed=42) == []
    assert unseen_background(extra, 10, finetune_extra_max=20, finetune_seed=42) == []
