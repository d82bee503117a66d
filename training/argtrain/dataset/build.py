"""The whole data-set build: sources, curation, split, then manifest.json with the provenance of
every input and output (``argtrain dataset``). Deterministic for a given seed."""

from __future__ import annotations

import json
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..homology import mmseqs_cluster, tool_version
from ..labelled import NONARG, DatasetError
from ..provenance import Timer, debian_package_of, debian_version, sha256_file
from .curation import (NONARG_KEYWORDS, HomologFilter, dedupe, diamond_nearest_label,
                       filter_nonargs, resolve_conflicts, unique_ids)
from .sources import (RESFINDER_DIR, UNIPROT_SAMPLE, Record, load_labelled_fasta, load_resfinder,
                      load_uniprot, resfinder_classes)
from .split import SPLITS, split_clusters, split_random, write_splits


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


def _dedupe_and_resolve(records: list[Record], o: BuildOptions,
                        timer: Timer) -> tuple[list[Record], dict]:
    """Identical proteins merged, then those listed under several classes settled by
    ``o.conflict_rule``; returns the records and the start of their manifest entry (the dedupe
    counts, the rule and its decisions)."""
    with timer.stage("dedupe_and_conflicts"):
        unique, conflicts, dd = dedupe(records)
        added, decisions = resolve_conflicts(unique, conflicts, o.conflict_rule,
                                             diamond_nearest_label(o.threads))
    return unique + added, {**dd, "conflict_rule": o.conflict_rule, "conflicts": decisions}


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
    args, dedupe_info = _dedupe_and_resolve(translated, o, timer)
    excluded = [r for r in args if r.label in o.exclude_classes]
    args = [r for r in args if r.label not in o.exclude_classes]
    manifest["arg_dedupe"] = {**dedupe_info, "excluded_class_proteins": len(excluded),
                              "final": len(args)}

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
    out, dedupe_info = _dedupe_and_resolve(records, o, timer)
    nonargs = sorted((r for r in out if r.label == o.nonarg_label), key=lambda r: r.id)
    available = len(nonargs)
    if o.max_nonarg is not None and o.max_nonarg < len(nonargs):
        keep = {r.id for r in random.Random(o.seed).sample(nonargs, o.max_nonarg)}
        out = [r for r in out if r.label != o.nonarg_label or r.id in keep]
    manifest["user_dedupe"] = {**dedupe_info, "nonarg_available": available,
                               "max_nonarg": o.max_nonarg, "final": len(out)}
    manifest["class_descriptions"] = {c: "user label" for c in sorted({r.label for r in out})}
    return out


def build(o: BuildOptions) -> dict:
    """Build the data set into ``o.out``; returns the manifest (also written as manifest.json)."""
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
