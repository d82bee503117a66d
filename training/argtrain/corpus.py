"""The masked-LM pretraining corpus without any relative of a test protein (``argtrain corpus``).

Sources: Swiss-Prot (January 2014) from Debian's ``metastudent-data`` (a BLAST database, dumped with
``blastdbcmd`` from ``ncbi-blast+``) and any FASTA given with ``--include`` (e.g. the labelled data
set's train and valid files; labels in headers are ignored). Proteins are cleaned with the
tokenization rules, shorter ones than ``--min-length`` dropped, and identical sequences kept once.
Then every protein that DIAMOND finds similar to a protein of a ``--exclude-like`` file (the test
splits) is removed: e-value <= 1e-5, identity >= ``--exclude-identity`` over at least
``--exclude-coverage`` of either sequence. That is stricter than the 40% identity / 80% coverage of
both sequences that defines the homology-aware split's clusters, so no test protein, nor anything
that could share its cluster, is seen in pretraining.

Outputs (in ``--out``): ``train.fasta``, ``valid.fasta`` (a seeded random sample, for perplexity),
``nonarg-extra.fasta`` (the Swiss-Prot proteins of train.fasta that are not ARG-like, labelled
``nonarg``: extra negatives for fine-tuning), ``manifest.json`` (sources, package versions,
licences, counts by reason, sha256 of each output).

Not ARG-like means: no GO term about antibiotics (``ANTIBIOTIC_GO_TERMS``) and no DIAMOND hit
(e <= 1e-5) at >= ``--arg-identity`` over >= ``--arg-coverage`` of either sequence to an ARG of the
``--arg-reference`` files (proteins labelled other than ``nonarg``).
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .dataset.curation import HomologFilter
from .dataset.sources import clean_protein
from .fasta import read_fasta, write_fasta
from .homology import ToolError, diamond_search
from .labelled import NONARG, read_labelled
from .provenance import debian_version, sha256_file

SWISSPROT_DB = "/usr/share/metastudent-data/dataset_201401/BPO/goasp.fasta"
# response to antibiotic; antibiotic catabolic process; beta-lactamase activity; beta-lactam
# antibiotic catabolic process; drug transmembrane transport; xenobiotic transmembrane transporter
# activity; antibiotic biosynthetic process.
ANTIBIOTIC_GO_TERMS = frozenset({"GO:0046677", "GO:0017001", "GO:0008800", "GO:0030655",
                                 "GO:0006855", "GO:0042910", "GO:0017000"})
SWISSPROT_LICENCE = ("UniProtKB/Swiss-Prot data, CC BY 4.0 (https://www.uniprot.org/help/license); "
                     "packaged by Debian's metastudent-data (GPL-2+ packaging)")


class CorpusError(ValueError):
    pass


@dataclass
class CorpusOptions:
    """What ``build`` reads and writes; percentages are of identity and of either sequence."""
    out: Path
    exclude_like: list[str]
    swissprot: str = SWISSPROT_DB
    include: list[str] = field(default_factory=list)
    exclude_identity: float = 40.0
    exclude_coverage: float = 50.0
    arg_reference: list[str] = field(default_factory=list)
    arg_identity: float = 30.0
    arg_coverage: float = 50.0
    min_length: int = 30
    valid_size: int = 2000
    seed: int = 42
    threads: int = 2


def dump_blastdb(db: str) -> Iterator[tuple[str, str]]:
    """``(title, protein)`` for every entry of a BLAST protein database."""
    exe = shutil.which("blastdbcmd")
    if exe is None:
        raise ToolError("'blastdbcmd' not found on PATH (Debian package: ncbi-blast+)")
    proc = subprocess.Popen([exe, "-db", db, "-entry", "all", "-outfmt", "%t\t%s"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        title, _, seq = line.rstrip("\n").partition("\t")
        yield title, seq
    err = proc.stderr.read() if proc.stderr else ""
    if proc.wait() != 0:
        raise ToolError(f"blastdbcmd -db {db} failed: {err.strip()[-500:]}")


def accession_of(title: str) -> str:
    """Swiss-Prot titles are ``ACCESSION|GO:...``; FASTA headers ``id|...``: the first field."""
    return title.split()[0].split("|")[0] if title.strip() else ""


def go_terms_of(title: str) -> frozenset[str]:
    fields = title.split()[0].split("|") if title.strip() else []
    return frozenset(t for f in fields[1:] for t in f.split(",") if t.startswith("GO:"))


def collect(sources: Sequence[tuple[str, Iterator[tuple[str, str]]]], min_length: int
            ) -> tuple[list[tuple[str, str]], dict, dict[int, frozenset[str]]]:
    """Cleaned, length-filtered, sequence-unique ``(id, protein)``; counts per source and reason;
    the GO terms of the Swiss-Prot ones (index -> terms)."""
    seen: set[str] = set()
    kept: list[tuple[str, str]] = []
    go: dict[int, frozenset[str]] = {}
    counts: dict[str, Counter] = {}
    for name, records in sources:
        c = counts.setdefault(name, Counter())
        for title, raw in records:
            c["read"] += 1
            seq, reason = clean_protein(raw)
            if seq is None:
                c[f"dropped_{reason}"] += 1
            elif len(seq) < min_length:
                c["dropped_short"] += 1
            elif seq in seen:
                c["dropped_duplicate"] += 1
            else:
                seen.add(seq)
                if name == "swissprot":
                    go[len(kept)] = go_terms_of(title)
                kept.append((accession_of(title) or f"{name}:{c['read']}", seq))
                c["kept"] += 1
    return kept, {k: dict(v) for k, v in counts.items()}, go


def relatives_of(corpus: Sequence[tuple[str, str]], held_out: Sequence[tuple[str, str]], *,
                 identity: float, coverage: float, threads: int,
                 only: Sequence[int] | None = None) -> set[int]:
    """Indices of corpus proteins (of ``only``, if given) similar or identical to a held-out one:
    the data set's homolog rule (``HomologFilter``) at this identity and coverage."""
    rule = HomologFilter(identity=identity, coverage=coverage)
    held_seqs = {seq for _, seq in held_out}
    candidates = range(len(corpus)) if only is None else only
    out = {i for i in candidates if corpus[i][1] in held_seqs}
    hits = diamond_search(((f"c{i}", corpus[i][1]) for i in candidates),
                          ((f"h{i}", seq) for i, (_, seq) in enumerate(held_out)),
                          evalue=rule.evalue, max_target_seqs=5, sensitivity=rule.sensitivity,
                          threads=threads)
    out.update(int(h.query[1:]) for h in hits if rule.qualifies(h))
    return out


def write_extra_nonargs(opts: CorpusOptions, corpus: Sequence[tuple[str, str]],
                        go: dict[int, frozenset[str]], train_idx: Sequence[int]) -> dict:
    """Write nonarg-extra.fasta: Swiss-Prot proteins of the training corpus that are not ARG-like."""
    args_ref: list[tuple[str, str]] = []
    for path in opts.arg_reference:
        for r in read_labelled(path):
            seq, _ = clean_protein(r.seq)
            if seq and r.label != NONARG:
                args_ref.append((r.header, seq))
    swissprot = [i for i in train_idx if i in go]
    by_go = {i for i in swissprot if go[i] & ANTIBIOTIC_GO_TERMS}
    rest = [i for i in swissprot if i not in by_go]
    by_homology = relatives_of(corpus, args_ref, identity=opts.arg_identity,
                               coverage=opts.arg_coverage, threads=opts.threads, only=rest)
    chosen = [i for i in rest if i not in by_homology]
    path = opts.out / "nonarg-extra.fasta"
    write_fasta(path, ((f"{corpus[i][0]}|{NONARG}", corpus[i][1]) for i in chosen))
    return {"proteins": len(chosen), "removed_by_go_term": len(by_go),
            "removed_as_arg_homologs": len(by_homology), "arg_reference_proteins": len(args_ref),
            "go_terms_excluded": sorted(ANTIBIOTIC_GO_TERMS),
            "rule": (f"Swiss-Prot proteins of train.fasta without those GO terms and without a "
                     f"DIAMOND hit (e <= 1e-5) at >= {opts.arg_identity:g}% identity over >= "
                     f"{opts.arg_coverage:g}% of either sequence to an ARG"),
            "sha256": sha256_file(path)}


def build(opts: CorpusOptions) -> dict:
    t0 = time.perf_counter()
    sources: list[tuple[str, Iterator[tuple[str, str]]]] = []
    if opts.swissprot:
        sources.append(("swissprot", dump_blastdb(opts.swissprot)))
    for path in opts.include:
        sources.append((str(path), read_fasta(path)))
    if not sources:
        raise CorpusError("no sources: give --swissprot and/or --include")
    corpus, counts, go = collect(sources, opts.min_length)
    held_out: list[tuple[str, str]] = []
    for path in opts.exclude_like:
        for header, raw in read_fasta(path):
            seq, _ = clean_protein(raw)
            if seq:
                held_out.append((header, seq))
    if not held_out:
        raise CorpusError(f"no proteins in {opts.exclude_like}")
    removed = relatives_of(corpus, held_out, identity=opts.exclude_identity,
                           coverage=opts.exclude_coverage, threads=opts.threads)
    kept_idx = [i for i in range(len(corpus)) if i not in removed]
    kept = [corpus[i] for i in kept_idx]
    if len(kept) <= opts.valid_size:
        raise CorpusError(f"only {len(kept)} proteins left, not more than --valid-size")
    order = list(range(len(kept)))
    random.Random(opts.seed).shuffle(order)
    valid_idx = set(order[:opts.valid_size])
    opts.out.mkdir(parents=True, exist_ok=True)
    write_fasta(opts.out / "train.fasta", (r for i, r in enumerate(kept) if i not in valid_idx))
    write_fasta(opts.out / "valid.fasta", (kept[i] for i in sorted(valid_idx)))
    nonarg_info = None
    if opts.arg_reference:
        nonarg_info = write_extra_nonargs(opts, corpus, go, [kept_idx[i] for i in range(len(kept))
                                                             if i not in valid_idx])
    manifest = {
        "sources": {"swissprot": {"db": opts.swissprot,
                                  "package": "metastudent-data",
                                  "version": debian_version("metastudent-data"),
                                  "licence": SWISSPROT_LICENCE} if opts.swissprot else None,
                    "include": [{"path": str(p), "sha256": sha256_file(p)} for p in opts.include]},
        "counts": counts,
        "unique_proteins": len(corpus),
        "held_out": {"files": [{"path": str(p), "sha256": sha256_file(p)}
                               for p in opts.exclude_like],
                     "proteins": len(held_out)},
        "removed_as_relatives": len(removed),
        "rule": (f"removed: identical to, or DIAMOND blastp --sensitive hit (e <= 1e-5) at >= "
                 f"{opts.exclude_identity:g}% identity over >= {opts.exclude_coverage:g}% of "
                 f"either sequence of, a held-out protein"),
        "tools": {"diamond": debian_version("diamond-aligner"),
                  "ncbi-blast+": debian_version("ncbi-blast+")},
        "train": {"proteins": len(kept) - len(valid_idx),
                  "residues": sum(len(s) for i, (_, s) in enumerate(kept) if i not in valid_idx),
                  "sha256": sha256_file(opts.out / "train.fasta")},
        "valid": {"proteins": len(valid_idx), "sha256": sha256_file(opts.out / "valid.fasta")},
        "nonarg_extra": nonarg_info,
        "min_length": opts.min_length, "seed": opts.seed,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    (opts.out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest
