"""A proteome-like background: Swiss-Prot non-ARGs (the corpus's ``nonarg-extra.fasta``) that
fine-tuning never saw, for counting false ARG calls where nearly nothing is an ARG.

``argtrain finetune --extra-max N --seed S`` trains on ``random.Random(S).sample(records, N)`` of
the extra non-ARGs; the background is drawn from the rest, with its own seed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

from .labelled import NONARG, LabelledProtein, read_labelled

DRAW_SEED = 7  # the background's own draw, apart from fine-tuning's


def unseen_background(extra_fasta: str | Path, proteins: int, finetune_extra_max: int,
                      finetune_seed: int, nonarg_label: str = NONARG) -> list[LabelledProtein]:
    """``proteins`` records of ``extra_fasta`` (the file fine-tuning took its extra non-ARGs
    from) outside fine-tuning's sample of it (all of them when fewer remain), in a reproducible
    order. ``finetune_extra_max`` 0, like a limit above the file's size, means fine-tuning saw
    every record: then there is no background."""
    return unseen_of(read_labelled(extra_fasta, nonarg_label), proteins, finetune_extra_max,
                     finetune_seed)


def unseen_of(records: Sequence[LabelledProtein], proteins: int, finetune_extra_max: int,
              finetune_seed: int) -> list[LabelledProtein]:
    """``unseen_background`` of the records of the extra non-ARG file, already read."""
    if finetune_extra_max and len(records) > finetune_extra_max:
        seen = {r.id for r in random.Random(finetune_seed).sample(records, finetune_extra_max)}
    else:
        seen = {r.id for r in records}
    unseen = [r for r in records if r.id not in seen]
    return random.Random(DRAW_SEED).sample(unseen, min(proteins, len(unseen)))
