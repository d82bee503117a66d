"""Build the labelled protein data set (ARG classes + ``nonarg``) and its train/valid/test splits.

Sources (Debian packages, so every machine can rebuild the same set):
- ARGs: resfinder-db, one nucleotide CDS file per antibiotic class; translated with table 11.
- non-ARGs: the UniProt sample shipped with mmseqs2-examples, with ARG homologs removed.
Or a user's own labelled protein FASTA (``id|class``, ``a|b|c|class``, ``sp|...`` = non-ARG).

Everything here is deterministic for a given seed; the command-line front end is dataset_cli.py.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import shutil
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .fasta import read_fasta, write_fasta
from .translate import DROP_REASONS, translate_cds

RESFINDER_DIR = "/usr/share/resfinder/db"
UNIPROT_SAMPLE = "/usr/share/doc/mmseqs2/example-data/DB.fasta.gz"
NONARG = "nonarg"
SPLITS = ("train", "valid", "test")
# The residues of docs/model-artifact.md; a protein with anything else cannot be tokenized.
RESIDUES = frozenset("ACDEFGHIKLMNPQRSTVWYXBUZO")

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


class DatasetError(ValueError):
    """Input that cannot make a data set (bad header, unknown class, too few records...)."""


# ---------------------------------------------------------------------------------------------
# Records


@dataclass
class Record:
    """One labelled protein. ``aliases`` are the ids of identical proteins merged into it."""
    id: str
    label: str
    seq: str
    source: str
    description: str = ""
    aliases: list[str] = field(default_factory=list)


_ID_BAD = re.compile(r"[^A-Za-z0-9_.:()'+,/=-]")


def sanitize_id(text: str) -> str:
    """A record id for ``>id|class`` headers: first word, no '|' or odd characters."""
    word = text.strip().split()[0] if text.strip() else ""
    word = _ID_BAD.sub("_", word)
    if not word:
        raise DatasetError(f"cannot make an id from header {text!r}")
    return word


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


def clean_protein(seq: str) -> tuple[str | None, str | None]:
    """Protein QC with the tokenization rules: returns ``(protein, None)`` or ``(None, reason)``."""
    s = "".join(seq.split()).upper()
    if s.endswith("*"):
        s = s[:-1]
    if not s:
        return None, "empty"
    if "*" in s:
        return None, "internal_stop"
    if any(c not in RESIDUES for c in s):
        return None, "invalid_character"
    return s, None


# ---------------------------------------------------------------------------------------------
# ResFinder


def resfinder_classes(db_dir: str | os.PathLike = RESFINDER_DIR) -> dict[str, str]:
    """Class prefix -> description, from the database's ``config`` (falls back to ``*.fsa``)."""
    db = Path(db_dir)
    classes: dict[str, str] = {}
    config = db / "config"
    if config.exists():
        for line in config.read_text(encoding="utf-8").splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.split("\t")
            classes[parts[0].strip()] = parts[2].strip() if len(parts) > 2 else parts[0].strip()
    if not classes:
        classes = {p.stem: p.stem for p in sorted(db.glob("*.fsa"))}
    missing = [c for c in classes if not (db / f"{c}.fsa").exists()]
    if missing:
        raise DatasetError(f"{db}: config names classes without a .fsa file: {missing}")
    if not classes:
        raise DatasetError(f"{db}: no ResFinder class files (*.fsa)")
    return dict(sorted(classes.items()))


def load_resfinder(db_dir: str | os.PathLike, classes: Iterable[str]) -> tuple[list[Record], dict]:
    """Translate every CDS of the given classes; returns kept records and QC statistics."""
    db = Path(db_dir)
    kept: list[Record] = []
    read = Counter()
    dropped: dict[str, Counter] = {r: Counter() for r in DROP_REASONS}
    starts = Counter()
    no_terminal_stop = 0
    details = []
    for cls in classes:
        path = db / f"{cls}.fsa"
        for header, nt in read_fasta(path):
            read[cls] += 1
            t = translate_cds(nt)
            rid = sanitize_id(header)
            if not t.ok:
                dropped[t.reason][cls] += 1
                details.append({"id": rid, "class": cls, "reason": t.reason, "detail": t.detail})
                continue
            starts[t.start_codon] += 1
            no_terminal_stop += not t.terminal_stop
            kept.append(Record(rid, cls, t.protein, f"resfinder:{cls}.fsa", header))
    stats = {
        "records_read": dict(read),
        "records_read_total": sum(read.values()),
        "translated": len(kept),
        "dropped_by_reason": {r: sum(c.values()) for r, c in dropped.items()},
        "dropped_by_reason_and_class": {r: dict(sorted(c.items()))
                                        for r, c in dropped.items() if c},
        "dropped_records": details,
        "first_codons": dict(starts.most_common()),
        "without_terminal_stop": no_terminal_stop,
    }
    return kept, stats


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
    from .homology import best_hits, diamond_search

    def nearest(queries: list[Record], refs: list[Record]) -> dict[str, str]:
        label = {r.id: r.label for r in refs}
        hits = diamond_search([(q.id, q.seq) for q in queries], [(r.id, r.seq) for r in refs],
                              evalue=1e-5, max_target_seqs=1, sensitivity="sensitive",
                              threads=threads, workdir=workdir)
        return {q: label[h.target] for q, h in best_hits(hits).items()}
    return nearest


# ---------------------------------------------------------------------------------------------
# Non-ARGs (UniProt sample)


def parse_uniprot_header(header: str) -> tuple[str, str]:
    """``sp|P12345|NAME_SPECIES Description OS=...`` -> (accession, description)."""
    first, _, rest = header.partition(" ")
    parts = first.split("|")
    acc = parts[1] if len(parts) >= 3 and parts[0] in ("sp", "tr") and parts[1] else first
    desc = rest.split(" OS=")[0].strip()
    return sanitize_id(acc), desc


def load_uniprot(path: str | os.PathLike) -> tuple[list[Record], dict]:
    kept: list[Record] = []
    dropped = Counter()
    n = 0
    for header, seq in read_fasta(path):
        n += 1
        acc, desc = parse_uniprot_header(header)
        protein, reason = clean_protein(seq)
        if protein is None:
            dropped[reason] += 1
            continue
        kept.append(Record(acc, NONARG, protein, "uniprot-sample", desc))
    return kept, {"records_read": n, "dropped_by_reason": dict(dropped)}


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
    from .homology import diamond_search

    arg_seqs = {r.seq for r in arg_refs}
    identical = [r for r in candidates if r.seq in arg_seqs]
    rest = [r for r in candidates if r.seq not in arg_seqs]
    hits = diamond_search([(r.id, r.seq) for r in rest], [(r.id, r.seq) for r in arg_refs],
                          evalue=flt.evalue, max_target_seqs=25, sensitivity=flt.sensitivity,
                          threads=threads, workdir=workdir)
    homolog: dict[str, object] = {}
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


# ---------------------------------------------------------------------------------------------
# User-provided labelled FASTA


def parse_labelled_header(header: str, nonarg_label: str = NONARG,
                          uniprot_prefixes: Sequence[str] = ("sp", "tr")) -> tuple[str, str]:
    """``id|class``, ``a|b|c|class`` -> (a, class); ``sp|ACC|...`` -> (ACC, nonarg).

    Only the first whitespace-separated word of the header is parsed, so UniProt descriptions and
    trailing comments are ignored.
    """
    word = header.split()[0] if header.split() else ""
    fields = word.split("|")
    if fields[0] in uniprot_prefixes and len(fields) >= 2:
        return sanitize_id(fields[1] or fields[0]), nonarg_label
    if len(fields) < 2 or not fields[0] or not fields[-1]:
        raise DatasetError(f"header {header!r}: expected 'id|class', 'id|...|class' or "
                           f"'sp|accession|...' (UniProt, taken as {nonarg_label})")
    return sanitize_id(fields[0]), fields[-1]


def load_labelled_fasta(paths: Sequence[str | os.PathLike], nonarg_label: str = NONARG,
                        uniprot_prefixes: Sequence[str] = ("sp", "tr")
                        ) -> tuple[list[Record], dict]:
    kept: list[Record] = []
    dropped = Counter()
    n = 0
    for path in paths:
        for header, seq in read_fasta(path):
            n += 1
            try:
                rid, label = parse_labelled_header(header, nonarg_label, uniprot_prefixes)
            except DatasetError as exc:
                raise DatasetError(f"{path}: {exc}") from None
            protein, reason = clean_protein(seq)
            if protein is None:
                dropped[reason] += 1
                continue
            kept.append(Record(rid, label, protein, f"user:{Path(path).name}", header))
    return kept, {"records_read": n, "dropped_by_reason": dict(dropped)}


# ---------------------------------------------------------------------------------------------
# Splits


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


# ---------------------------------------------------------------------------------------------
# Provenance helpers


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def debian_version(package: str) -> str | None:
    if shutil.which("dpkg-query") is None:
        return None
    proc = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package],
                          capture_output=True, text=True)
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def debian_package_of(path: str | os.PathLike) -> str | None:
    if shutil.which("dpkg") is None:
        return None
    proc = subprocess.run(["dpkg", "-S", str(path)], capture_output=True, text=True)
    if proc.returncode != 0 or ":" not in proc.stdout:
        return None
    return proc.stdout.split(":", 1)[0].strip()


class Timer:
    """Wall-clock seconds per named stage, for the manifest."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def stage(self, name: str):
        timer = self

        class _Stage:
            def __enter__(self):
                self.t0 = time.perf_counter()

            def __exit__(self, *exc):
                timer.seconds[name] = round(time.perf_counter() - self.t0, 3)
        return _Stage()


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


# ---------------------------------------------------------------------------------------------
# The whole build


@dataclass
class BuildOptions:
    out: Path
    split: str = "cluster"                    # "cluster" or "random"
    identity: float = 0.4                     # mmseqs --min-seq-id (cluster mode)
    coverage: float = 0.8                     # mmseqs -c (cluster mode, both sequences)
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 42
    resfinder_dir: str = RESFINDER_DIR
    uniprot: str = UNIPROT_SAMPLE
    input_fasta: list[str] = field(default_factory=list)
    exclude_classes: list[str] = field(default_factory=list)
    max_nonarg: int | None = None
    conflict_rule: str = "nearest"
    homolog: HomologFilter = field(default_factory=HomologFilter)
    threads: int = 2
    nonarg_label: str = NONARG
    uniprot_prefixes: tuple[str, ...] = ("sp", "tr")
    command: list[str] = field(default_factory=list)


def _check_options(o: BuildOptions) -> None:
    if o.split not in ("cluster", "random"):
        raise DatasetError(f"unknown split mode '{o.split}' (cluster or random)")
    if len(o.fractions) != 3 or any(f < 0 for f in o.fractions) or abs(sum(o.fractions) - 1) > 1e-6:
        raise DatasetError(f"split fractions must be three non-negative numbers summing to 1, "
                           f"got {list(o.fractions)}")
    if o.fractions[0] <= 0:
        raise DatasetError("the train fraction must be > 0")
    if not 0 < o.identity <= 1 or not 0 < o.coverage <= 1:
        raise DatasetError("--identity and --coverage are fractions in (0, 1]")
    if o.max_nonarg is not None and o.max_nonarg < 0:
        raise DatasetError("--max-nonarg must be >= 0")
    if "|" in o.nonarg_label or not o.nonarg_label.strip():
        raise DatasetError("the non-ARG label must be a non-empty word without '|'")


def _builtin_records(o: BuildOptions, timer: Timer, manifest: dict) -> list[Record]:
    classes = resfinder_classes(o.resfinder_dir)
    unknown = sorted(set(o.exclude_classes) - set(classes))
    if unknown:
        raise DatasetError(f"--exclude-class: not ResFinder classes: {unknown} "
                           f"(known: {', '.join(classes)})")
    if o.nonarg_label in classes:
        raise DatasetError(f"non-ARG label '{o.nonarg_label}' collides with a ResFinder class")
    db = Path(o.resfinder_dir)
    uniprot = Path(o.uniprot)
    manifest["sources"] = {
        "arg": {"kind": "resfinder-db", "path": str(db),
                "debian_package": debian_package_of(db / "config") or "resfinder-db",
                "version": debian_version(debian_package_of(db / "config") or "resfinder-db"),
                "files": {f"{c}.fsa": sha256_file(db / f"{c}.fsa") for c in classes}},
        "nonarg": {"kind": "uniprot-sample", "path": str(uniprot),
                   "debian_package": debian_package_of(uniprot) or "mmseqs2-examples",
                   "version": debian_version(debian_package_of(uniprot) or "mmseqs2-examples"),
                   "sha256": sha256_file(uniprot)},
    }
    manifest["class_descriptions"] = {c: d for c, d in classes.items()
                                      if c not in o.exclude_classes}
    manifest["class_descriptions"][o.nonarg_label] = "not an antibiotic-resistance gene"

    with timer.stage("translate_resfinder"):
        translated, qc = load_resfinder(db, classes)
    manifest["arg_qc"] = qc
    with timer.stage("dedupe_and_conflicts"):
        unique, conflicts, dd = dedupe(translated)
        added, decisions = resolve_conflicts(unique, conflicts, o.conflict_rule,
                                             diamond_nearest_label(o.threads))
    args = unique + added
    excluded = [r for r in args if r.label in o.exclude_classes]
    args = [r for r in args if r.label not in o.exclude_classes]
    manifest["arg_dedupe"] = {**dd, "conflict_rule": o.conflict_rule, "conflicts": decisions,
                              "excluded_class_proteins": len(excluded), "final": len(args)}

    # Homology references: every translated ResFinder protein, excluded classes and conflicting
    # proteins included, so that nothing resistance-like slips into nonarg.
    refs_by_seq: dict[str, Record] = {}
    for r in translated:
        refs_by_seq.setdefault(r.seq, r)
    refs = list(refs_by_seq.values())

    with timer.stage("load_uniprot"):
        candidates, ustats = load_uniprot(uniprot)
        cand_unique, _, cdd = dedupe([Record(r.id, r.label, r.seq, r.source, r.description)
                                      for r in candidates])
    with timer.stage("nonarg_homology_filter"):
        nonargs, fstats = filter_nonargs(cand_unique, refs, o.homolog, o.threads)
    for r in nonargs:
        r.label = o.nonarg_label
    nonargs.sort(key=lambda r: r.id)
    available = len(nonargs)
    if o.max_nonarg is not None and o.max_nonarg < len(nonargs):
        nonargs = sorted(random.Random(o.seed).sample(nonargs, o.max_nonarg), key=lambda r: r.id)
    manifest["nonarg_filter"] = {"uniprot_qc": ustats,
                                 "identical_copies_merged": cdd["identical_copies_merged"],
                                 **fstats, "available_after_filter": available,
                                 "max_nonarg": o.max_nonarg, "used": len(nonargs)}
    return args + nonargs


def _user_records(o: BuildOptions, timer: Timer, manifest: dict) -> list[Record]:
    manifest["sources"] = {"user": [{"path": str(Path(p).resolve()), "sha256": sha256_file(p)}
                                    for p in o.input_fasta]}
    with timer.stage("load_user_fasta"):
        records, stats = load_labelled_fasta(o.input_fasta, o.nonarg_label, o.uniprot_prefixes)
    manifest["user_qc"] = stats
    with timer.stage("dedupe_and_conflicts"):
        unique, conflicts, dd = dedupe(records)
        added, decisions = resolve_conflicts(unique, conflicts, o.conflict_rule,
                                             diamond_nearest_label(o.threads))
    out = unique + added
    nonargs = sorted((r for r in out if r.label == o.nonarg_label), key=lambda r: r.id)
    available = len(nonargs)
    if o.max_nonarg is not None and o.max_nonarg < len(nonargs):
        keep = {r.id for r in random.Random(o.seed).sample(nonargs, o.max_nonarg)}
        out = [r for r in out if r.label != o.nonarg_label or r.id in keep]
    manifest["user_dedupe"] = {**dd, "conflict_rule": o.conflict_rule, "conflicts": decisions,
                               "nonarg_available": available, "max_nonarg": o.max_nonarg,
                               "final": len(out)}
    manifest["class_descriptions"] = {c: "user label" for c in sorted({r.label for r in out})}
    return out


def build(o: BuildOptions) -> dict:
    """Build the data set into ``o.out``; returns the manifest (also written as manifest.json)."""
    import json

    from .homology import tool_version

    _check_options(o)
    timer = Timer()
    t_start = time.perf_counter()
    manifest: dict = {"format": "argserve-dataset/1", "command": o.command}
    records = (_user_records if o.input_fasta else _builtin_records)(o, timer, manifest)
    if not records:
        raise DatasetError("no records left to split")
    # Deterministic order before ids are made unique and splits drawn.
    records.sort(key=lambda r: (r.label != o.nonarg_label, r.label, r.source, r.id))
    unique_ids(records)
    labels = sorted({r.label for r in records} - {o.nonarg_label})
    classes = labels + ([o.nonarg_label] if any(r.label == o.nonarg_label for r in records) else [])

    out = Path(o.out)
    out.mkdir(parents=True, exist_ok=True)
    split_info: dict = {"mode": o.split, "fractions": dict(zip(SPLITS, o.fractions)),
                        "seed": o.seed}
    if o.split == "cluster":
        from .homology import mmseqs_cluster
        with timer.stage("mmseqs_cluster"):
            member_to_rep = mmseqs_cluster(((r.id, r.seq) for r in records), identity=o.identity,
                                           coverage=o.coverage, cov_mode=0, threads=o.threads)
        missing = [r.id for r in records if r.id not in member_to_rep]
        if missing:
            raise DatasetError(f"mmseqs left {len(missing)} records unclustered, "
                               f"e.g. {missing[:3]}")
        assignment = split_clusters(records, member_to_rep, o.fractions, o.seed)
        split_info.update(identity=o.identity, coverage=o.coverage, cov_mode=0,
                          tool="mmseqs easy-cluster", threads=o.threads)
        with open(out / "clusters.tsv", "w", encoding="utf-8", newline="\n") as fh:
            fh.write("id\tclass\tcluster\tsplit\n")
            for r in records:
                fh.write(f"{r.id}\t{r.label}\t{member_to_rep[r.id]}\t{assignment[r.id]}\n")
        clusters_per_split = {s: len({member_to_rep[r.id] for r in records
                                      if assignment[r.id] == s}) for s in SPLITS}
        clusters_per_class = {c: len({member_to_rep[r.id] for r in records if r.label == c})
                              for c in classes}
        rep_labels: dict[str, set] = defaultdict(set)
        for r in records:
            rep_labels[member_to_rep[r.id]].add(r.label)
        split_info["clusters"] = {
            "total": len(rep_labels), "per_split": clusters_per_split,
            "per_class": clusters_per_class,
            "mixed_label_clusters": sum(len(v) > 1 for v in rep_labels.values())}
    else:
        assignment = split_random(records, o.fractions, o.seed)
        split_info.update(identity=None, coverage=None)

    with timer.stage("write"):
        counts = write_splits(out, records, assignment)
    per_class = Counter(r.label for r in records)
    manifest["classes"] = classes
    manifest["split"] = split_info
    manifest["counts"] = {
        "total": len(records),
        "per_class": {c: per_class[c] for c in classes},
        "per_split": {s: sum(counts[s].values()) for s in SPLITS},
        "per_split_and_class": {s: {c: counts[s].get(c, 0) for c in classes} for s in SPLITS},
        "classes_missing_from": {s: [c for c in classes if not counts[s].get(c)] for s in SPLITS},
    }
    manifest["rules"] = rules_text(o)
    manifest["tools"] = {"diamond": tool_version("diamond"), "mmseqs": tool_version("mmseqs"),
                         "diamond_package_version": debian_version("diamond-aligner"),
                         "mmseqs_package_version": debian_version("mmseqs2")}
    outputs = ["train.fasta", "valid.fasta", "test.fasta"]
    if o.split == "cluster":
        outputs.append("clusters.tsv")
    manifest["outputs"] = {name: {"sha256": sha256_file(out / name)} for name in outputs}
    for s in SPLITS:
        manifest["outputs"][f"{s}.fasta"]["records"] = sum(counts[s].values())
    timer.seconds["total"] = round(time.perf_counter() - t_start, 3)
    manifest["timings_s"] = timer.seconds
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def rules_text(o: BuildOptions) -> dict[str, str]:
    """The rules applied, in words, for the manifest."""
    rules = {
        "headers": "output FASTA headers are '>id|class'; ids are unique, without spaces or '|'",
        "protein_qc": "upper-cased; one trailing '*' removed; dropped when empty, with an internal "
                      "'*', or with a character outside ACDEFGHIKLMNPQRSTVWYXBUZO",
        "dedupe": "identical proteins are merged (first copy kept, others listed as aliases)",
        "conflicts": {
            "nearest": "a protein listed under several classes gets the class of its best DIAMOND "
                       "hit (e-value <= 1e-5) among single-class proteins when that class is one "
                       "of its candidates, else the candidate class with the most proteins",
            "largest": "a protein listed under several classes gets the candidate class with the "
                       "most proteins (ties: alphabetical)",
            "drop": "a protein listed under several classes is dropped",
        }[o.conflict_rule],
        "split": ("stratified random: each class shuffled with the seed and apportioned by the "
                  "largest-remainder method" if o.split == "random" else
                  f"all proteins (ARG and non-ARG) clustered with mmseqs easy-cluster "
                  f"--min-seq-id {o.identity} -c {o.coverage} --cov-mode 0; whole clusters go to "
                  f"one split, largest first (ties in seeded random order), each to the split "
                  f"whose per-class quota (weighted by 1/class size) it fills best; no cluster is "
                  f"in two splits"),
    }
    if o.input_fasta:
        rules["labels"] = (f"user FASTA: 'id|class' or 'id|...|class' (class = last field of the "
                           f"first word); first field in {list(o.uniprot_prefixes)} (UniProt "
                           f"style) means '{o.nonarg_label}' with the accession as id; no homology "
                           f"filtering of user labels")
    else:
        rules["arg_classes"] = (
            "one class per ResFinder file (config prefix as label). All 17 are kept by default, "
            "'disinfectant' included: its genes (qac efflux pumps, formA, ClpL...) are "
            "resistance determinants carried with ARGs, and leaving the class out would not make "
            "its homologs non-ARGs; excluded here: " + (", ".join(o.exclude_classes) or "none") +
            " (excluded classes still count as ARG references for the non-ARG filter)")
        rules["translation"] = ("NCBI table 11; an initiation codon (TTG CTG ATT ATC ATA ATG GTG) "
                                "in first position -> M; one terminal stop removed; dropped: "
                                "empty, invalid character, IUPAC ambiguity code, length not a "
                                "multiple of 3, internal stop")
        rules["nonarg"] = (o.homolog.describe() + "; proteins identical to an ARG removed; then "
                           "descriptions matching a keyword list of antibiotic names and "
                           "'resistance to drugs' terms removed (regex in manifest); remote "
                           "homologs below the thresholds are kept as hard negatives")
        rules["nonarg_keywords"] = NONARG_KEYWORDS.pattern
        rules["nonarg_subsample"] = ("all non-ARGs that remain" if o.max_nonarg is None else
                                     f"seeded random sample of {o.max_nonarg}")
    return rules
