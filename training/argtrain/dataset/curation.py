"""Data-set step 2, curation: identical proteins merged, label conflicts resolved, ARG homologs
and ARG-named proteins removed from the non-ARGs, ids made unique."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ..homology import Hit, best_hits, diamond_search
from .sources import Record

# Secondary, name-based filter for non-ARGs: descriptions that say "resistance to a drug" or name
# an antibiotic. Homology is the primary filter; this catches named resistance proteins whose
# ResFinder relatives are too remote for the homology thresholds. Target names (e.g. "dihydrofolate
# reductase", "elongation factor G") are deliberately absent: targets are not resistance genes.
NONARG_KEYWORDS = re.compile(
    r"lactamase|\bantibiotic|drug resistance|multidrug|antiseptic|quaternary ammonium|"
    r"tetracycline|aminoglycoside|chloramphenicol|florfenicol|streptomycin|kanamycin|gentamicin|"
    r"neomycin|tobramycin|amikacin|vancomycin|teicoplanin|erythromycin|macrolide|lincosamide|"
    r"lincomycin|streptogramin|virginiamycin|bleomycin|fosfomycin|trimethoprim|sulfonamide|"
    r"sulphonamide|quinolone|colistin|polymyxin|rifampi|fusidic|mupirocin|linezolid|methicillin",
    re.IGNORECASE)


def unique_ids(records: Iterable[Record]) -> None:
    """Make ids unique in place by appending ``~2``, ``~3``... to later repeats (input order)."""
    seen: set[str] = set()
    for r in records:
        if r.id in seen:
            k = 2
            while f"{r.id}~{k}" in seen:
                k += 1
            r.id = f"{r.id}~{k}"
        seen.add(r.id)


# ---------------------------------------------------------------------------------------------
# De-duplication and label conflicts

CONFLICT_RULES = ("nearest", "largest", "drop")


def dedupe(records: Sequence[Record]) -> tuple[list[Record], list[list[Record]], dict]:
    """Merge identical proteins.

    Returns ``(unique, conflicts, stats)``: ``unique`` holds one record per protein whose copies
    all carry the same label (the first copy in input order, the others as aliases); ``conflicts``
    holds, per protein seen under two or more labels, one record per label (first copy each).
    """
    by_seq: dict[str, list[Record]] = {}
    for r in records:
        by_seq.setdefault(r.seq, []).append(r)
    unique: list[Record] = []
    conflicts: list[list[Record]] = []
    same_label_copies = 0
    for copies in by_seq.values():
        per_label: dict[str, Record] = {}
        for r in copies:
            if r.label in per_label:
                per_label[r.label].aliases.append(r.id)
                same_label_copies += 1
            else:
                per_label[r.label] = r
        if len(per_label) == 1:
            unique.append(next(iter(per_label.values())))
        else:
            conflicts.append(list(per_label.values()))
    stats = {"input": len(records), "unique_proteins": len(by_seq),
             "identical_copies_merged": same_label_copies,
             "proteins_with_conflicting_labels": len(conflicts)}
    return unique, conflicts, stats


def resolve_conflicts(unique: list[Record], conflicts: list[list[Record]], rule: str,
                      nearest: Callable[[list[Record], list[Record]], dict[str, str]] | None = None
                      ) -> tuple[list[Record], list[dict]]:
    """Give each conflicting protein one label (or drop it), by ``rule``:

    - ``nearest``: the label of the protein's best DIAMOND hit among the proteins with a single
      label, when that label is one of its candidates (labels then agree with homology, which is
      what a classifier can learn); otherwise as ``largest``.
    - ``largest``: the candidate label with the most unique proteins (ties: alphabetical).
    - ``drop``: leave the protein out.

    ``nearest`` is ``f(queries, references) -> {query id: label of best hit}``.
    Returns the records to add and one decision entry per conflict for the manifest.
    """
    if rule not in CONFLICT_RULES:
        raise ValueError(f"unknown conflict rule '{rule}' (choose from {CONFLICT_RULES})")
    size = Counter(r.label for r in unique)
    nn: dict[str, str] = {}
    if rule == "nearest" and conflicts:
        if nearest is None:
            raise ValueError("conflict rule 'nearest' needs a nearest-neighbour function")
        queries = [group[0] for group in conflicts]
        nn = nearest(queries, unique)
    added: list[Record] = []
    decisions: list[dict] = []
    for group in conflicts:
        labels = sorted(r.label for r in group)
        ids = sorted({r.id for r in group} | {a for r in group for a in r.aliases})
        entry = {"ids": ids, "length": len(group[0].seq), "candidates": labels}
        if rule == "drop":
            entry.update(chosen=None, why="dropped: protein listed under several classes")
        else:
            hit = nn.get(group[0].id)
            if rule == "nearest" and hit in labels:
                chosen, why = hit, "class of the best DIAMOND hit among single-label proteins"
            else:
                chosen = sorted(labels, key=lambda c: (-size[c], c))[0]
                why = ("largest candidate class" if rule == "largest" else
                       "no informative hit; largest candidate class")
            rec = next(r for r in group if r.label == chosen)
            rec.aliases = [i for i in ids if i != rec.id]
            added.append(rec)
            entry.update(chosen=chosen, kept_id=rec.id, why=why)
        decisions.append(entry)
    return added, decisions


def diamond_nearest_label(threads: int = 2, workdir: str | None = None
                          ) -> Callable[[list[Record], list[Record]], dict[str, str]]:
    """A ``nearest`` function for :func:`resolve_conflicts` backed by DIAMOND (e-value 1e-5)."""
    def nearest(queries: list[Record], refs: list[Record]) -> dict[str, str]:
        label = {r.id: r.label for r in refs}
        hits = diamond_search([(q.id, q.seq) for q in queries], [(r.id, r.seq) for r in refs],
                              evalue=1e-5, max_target_seqs=1, sensitivity="sensitive",
                              threads=threads, workdir=workdir)
        return {q: label[h.target] for q, h in best_hits(hits).items()}
    return nearest


# ---------------------------------------------------------------------------------------------
# Non-ARGs: the homolog filter


@dataclass
class HomologFilter:
    """Thresholds for calling a non-ARG candidate an ARG homolog (any one qualifying hit)."""
    evalue: float = 1e-5
    identity: float = 40.0      # percent
    coverage: float = 50.0      # percent of the candidate or of the ARG
    sensitivity: str = "sensitive"

    def qualifies(self, hit) -> bool:
        return (hit.evalue <= self.evalue and hit.identity >= self.identity
                and max(hit.qcov, hit.tcov) >= self.coverage)

    def describe(self) -> str:
        return (f"DIAMOND blastp --{self.sensitivity} of each non-ARG candidate against all "
                f"translated ResFinder proteins (also those of excluded classes); removed when "
                f"any hit has e-value <= {self.evalue:g}, identity >= {self.identity:g}% and "
                f"alignment coverage >= {self.coverage:g}% of the candidate or of the ARG "
                f"(at that identity function, and so the label, is usually shared; the default "
                f"40% matches the identity of the cluster split)")


def filter_nonargs(candidates: list[Record], arg_refs: list[Record], flt: HomologFilter,
                   threads: int = 2, workdir: str | None = None) -> tuple[list[Record], dict]:
    """Remove ARG homologs (primary, by DIAMOND) and ARG-named proteins (secondary, by keyword)."""
    arg_seqs = {r.seq for r in arg_refs}
    identical = [r for r in candidates if r.seq in arg_seqs]
    rest = [r for r in candidates if r.seq not in arg_seqs]
    hits = diamond_search([(r.id, r.seq) for r in rest], [(r.id, r.seq) for r in arg_refs],
                          evalue=flt.evalue, max_target_seqs=25, sensitivity=flt.sensitivity,
                          threads=threads, workdir=workdir)
    homolog: dict[str, Hit] = {}
    weak: set[str] = set()
    for h in hits:
        if flt.qualifies(h):
            homolog.setdefault(h.query, h)
        else:
            weak.add(h.query)
    ref_label = {r.id: r.label for r in arg_refs}
    kept, by_keyword = [], []
    for r in rest:
        if r.id in homolog:
            continue
        m = NONARG_KEYWORDS.search(r.description)
        if m:
            by_keyword.append({"id": r.id, "description": r.description, "keyword": m.group(0)})
            continue
        kept.append(r)
    removed_classes = Counter(ref_label[h.target] for h in homolog.values())
    stats = {
        "candidates": len(candidates),
        "identical_to_arg": len(identical),
        "removed_by_homology": len(homolog),
        "removed_by_homology_per_arg_class": dict(sorted(removed_classes.items())),
        "removed_by_keyword": len(by_keyword),
        "removed_by_keyword_records": by_keyword,
        "kept": len(kept),
        # Kept on purpose: remote homologs (e.g. EF-G vs tet(M), IleRS vs mupA) are hard negatives.
        "kept_with_weaker_arg_hits": len(weak & {r.id for r in kept}),
        "removed_by_homology_examples": [
            {"id": h.query, "arg": h.target, "identity": h.identity, "evalue": h.evalue,
             "qcov": h.qcov, "tcov": h.tcov}
            for h in sorted(homolog.values(), key=lambda h: h.query)[:50]],
    }
    return kept, stats

