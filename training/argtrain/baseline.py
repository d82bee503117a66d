"""DIAMOND best-hit baseline: each test protein takes the class of its best hit in the train split.

``diamond makedb`` on the training proteins, ``diamond blastp`` of the test proteins (e-value 1e-5,
one target per query, ``--threads 2`` by default); a protein with no hit is called non-ARG. This is
the nearest-neighbour rule that homology-based ARG annotation tools use, and the bar a language
model has to clear, especially on a homology-aware (cluster) split.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from .homology import best_hits, diamond_search
from .labelled import NONARG


@dataclass(frozen=True)
class BaselinePrediction:
    label: str                  # predicted class
    hit: str | None = None      # id of the best training hit, None when there was no hit
    identity: float | None = None         # percent
    evalue: float | None = None
    target_coverage: float | None = None  # percent of the training protein spanned


def diamond_baseline(train: Sequence[tuple[str, str, str]], test: Sequence[tuple[str, str]], *,
                     evalue: float = 1e-5, threads: int = 2, sensitivity: str = "sensitive",
                     nonarg_label: str = NONARG, workdir: str | None = None
                     ) -> tuple[list[BaselinePrediction], dict]:
    """Predict a class for each test protein.

    ``train``: ``(id, label, protein)``; ``test``: ``(id, protein)``. Returns predictions in test
    order and run information (seconds, hit count, settings). Positional ids are given to DIAMOND,
    so record ids may contain any character.
    """
    t0 = time.perf_counter()
    hits = diamond_search(((f"q{i}", seq) for i, (_, seq) in enumerate(test)),
                          ((f"t{i}", seq) for i, (_, _, seq) in enumerate(train)),
                          evalue=evalue, max_target_seqs=1, sensitivity=sensitivity,
                          threads=threads, workdir=workdir)
    best = best_hits(hits)
    preds: list[BaselinePrediction] = []
    for i in range(len(test)):
        h = best.get(f"q{i}")
        if h is None:
            preds.append(BaselinePrediction(nonarg_label))
        else:
            t = int(h.target[1:])
            preds.append(BaselinePrediction(train[t][1], train[t][0], h.identity, h.evalue,
                                            h.tcov))
    info = {"method": "diamond blastp best hit", "evalue": evalue, "sensitivity": sensitivity,
            "threads": threads, "train_size": len(train), "test_size": len(test),
            "queries_with_hit": len(best), "seconds": round(time.perf_counter() - t0, 3)}
    return preds, info
