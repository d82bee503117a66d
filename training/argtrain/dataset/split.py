"""Data-set step 3, splits: stratified random or whole homology clusters per split, and the
train/valid/test FASTA files."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

from ..fasta import write_fasta
from .sources import Record

SPLITS = ("train", "valid", "test")



def apportion(n: int, fractions: Sequence[float]) -> list[int]:
    """Split ``n`` items by ``fractions``, largest-remainder method (ties: earlier split)."""
    quotas = [n * f for f in fractions]
    counts = [int(q) for q in quotas]
    order = sorted(range(len(fractions)), key=lambda i: (-(quotas[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts


def split_random(records: Sequence[Record], fractions: Sequence[float],
                 seed: int) -> dict[str, str]:
    """Stratified random split: each class is shuffled and apportioned on its own."""
    rng = random.Random(seed)
    by_label: dict[str, list[str]] = defaultdict(list)
    for r in records:
        by_label[r.label].append(r.id)
    out: dict[str, str] = {}
    for label in sorted(by_label):
        ids = sorted(by_label[label])
        rng.shuffle(ids)
        start = 0
        for split, k in zip(SPLITS, apportion(len(ids), fractions)):
            for rid in ids[start:start + k]:
                out[rid] = split
            start += k
    return out


def split_clusters(records: Sequence[Record], member_to_rep: dict[str, str],
                   fractions: Sequence[float], seed: int) -> dict[str, str]:
    """Assign whole clusters to splits, stratified by class as well as clusters allow.

    Greedy: clusters largest first (equal sizes in seeded random order); each goes to the split
    whose remaining per-class quota it fills best, with each class weighted by 1/its size, so rare
    classes count as much as common ones.
    """
    rng = random.Random(seed)
    label = {r.id: r.label for r in records}
    clusters: dict[str, list[str]] = defaultdict(list)
    for r in records:
        clusters[member_to_rep.get(r.id, r.id)].append(r.id)
    totals = Counter(label.values())
    target = [{c: f * n for c, n in totals.items()} for f in fractions]
    current = [Counter() for _ in fractions]
    reps = sorted(clusters)
    rng.shuffle(reps)
    tiebreak = {rep: i for i, rep in enumerate(reps)}
    order = sorted(clusters, key=lambda rep: (-len(clusters[rep]), tiebreak[rep]))
    out: dict[str, str] = {}
    for rep in order:
        counts = Counter(label[m] for m in clusters[rep])
        scores = [sum(k * (target[s][c] - current[s][c]) / totals[c] for c, k in counts.items())
                  for s in range(len(fractions))]
        best = max(range(len(fractions)), key=lambda s: (scores[s], -s))
        current[best].update(counts)
        for m in clusters[rep]:
            out[m] = SPLITS[best]
    return out


def write_splits(out_dir: Path, records: Sequence[Record], assignment: dict[str, str]) -> dict:
    """Write train/valid/test FASTA (``>id|class``, sorted by class then id) and return counts."""
    out_dir.mkdir(parents=True, exist_ok=True)
    per_split: dict[str, list[Record]] = {s: [] for s in SPLITS}
    for r in records:
        per_split[assignment[r.id]].append(r)
    counts: dict[str, dict[str, int]] = {}
    for split, recs in per_split.items():
        recs.sort(key=lambda r: (r.label, r.id))
        write_fasta(out_dir / f"{split}.fasta", ((f"{r.id}|{r.label}", r.seq) for r in recs))
        counts[split] = dict(sorted(Counter(r.label for r in recs).items()))
    return counts

