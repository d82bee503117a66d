"""``argtrain dataset``: build the labelled ARG / non-ARG protein data set and its splits."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..dataset.build import BuildOptions, build
from ..dataset.curation import CONFLICT_RULES, HomologFilter
from ..dataset.sources import RESFINDER_DIR, UNIPROT_SAMPLE
from ..dataset.split import SPLITS
from ..homology import DIAMOND_SENSITIVITIES, ToolError
from ..labelled import NONARG, DatasetError
from .common import command_main

EPILOG = """\
outputs (in --out):
  train.fasta valid.fasta test.fasta   proteins with headers '>id|class'
  clusters.tsv                         id, class, cluster representative, split (cluster mode)
  manifest.json                        sources and package versions, rules, counts per class and
                                       split, drops by reason, seed, timings, sha256 of outputs

examples:
  python3 -m argtrain dataset --split cluster --identity 0.4 --out data/cluster40
  python3 -m argtrain dataset --split random --out data/random
  python3 -m argtrain dataset --input-fasta my_args.fasta --split cluster --out data/mine
"""


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="argtrain dataset", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Build the labelled protein data set: ARGs translated from ResFinder "
                    "(resfinder-db, one class per file) plus 'nonarg' proteins from the UniProt "
                    "sample of mmseqs2-examples with ARG homologs removed, or a labelled FASTA "
                    "of your own; then split it into train/valid/test, at random (stratified by "
                    "class) or by homology clusters.",
        epilog=EPILOG)
    p.add_argument("--out", required=True, type=Path, help="output directory (created)")
    p.add_argument("--split", choices=("cluster", "random"), default="cluster",
                   help="'cluster': whole mmseqs clusters per split, so test proteins are remote "
                        "from training ones; 'random': stratified random (default: %(default)s)")
    p.add_argument("--identity", type=float, default=0.4,
                   help="cluster mode: minimum sequence identity within a cluster, as a fraction "
                        "(mmseqs --min-seq-id; default: %(default)s)")
    p.add_argument("--coverage", type=float, default=0.8,
                   help="cluster mode: minimum alignment coverage of both sequences (mmseqs -c, "
                        "--cov-mode 0; default: %(default)s)")
    p.add_argument("--fractions", type=float, nargs=3, default=[0.8, 0.1, 0.1],
                   metavar=("TRAIN", "VALID", "TEST"),
                   help="split fractions, summing to 1 (default: 0.8 0.1 0.1)")
    p.add_argument("--seed", type=int, default=42, help="random seed (default: %(default)s)")
    p.add_argument("--threads", type=int, default=2,
                   help="threads for diamond and mmseqs (default: %(default)s)")

    src = p.add_argument_group("sources")
    src.add_argument("--resfinder-dir", default=RESFINDER_DIR,
                     help="ResFinder database directory with <class>.fsa (default: %(default)s)")
    src.add_argument("--uniprot", default=UNIPROT_SAMPLE,
                     help="non-ARG source, protein FASTA (plain or gz) with UniProt headers "
                          "(default: %(default)s)")
    src.add_argument("--input-fasta", action="append", default=[], metavar="FILE",
                     help="use this labelled protein FASTA instead of ResFinder + UniProt "
                          "(repeatable). Headers: 'id|class', 'id|...|class' (class = last field) "
                          "or UniProt 'sp|ACC|...'/'tr|ACC|...' = non-ARG")
    src.add_argument("--nonarg-label", default=NONARG,
                     help="label of non-ARG proteins (default: %(default)s)")
    src.add_argument("--uniprot-prefixes", default="sp,tr",
                     help="--input-fasta: comma-separated first header fields meaning UniProt "
                          "non-ARG (default: %(default)s)")

    rules = p.add_argument_group("rules")
    rules.add_argument("--exclude-class", action="append", default=[], metavar="CLASS",
                       help="leave a ResFinder class out of the labels (repeatable), e.g. "
                            "disinfectant; its proteins still count as ARG references when "
                            "non-ARG homologs are removed. Default: keep all")
    rules.add_argument("--conflict-rule", choices=CONFLICT_RULES, default="nearest",
                       help="a protein listed under several classes: 'nearest' = class of its "
                            "best DIAMOND hit among single-class proteins, 'largest' = largest "
                            "candidate class, 'drop' (default: %(default)s)")
    rules.add_argument("--max-nonarg", type=int, default=None,
                       help="keep at most this many non-ARGs (seeded random sample; default: all)")
    rules.add_argument("--homolog-evalue", type=float, default=1e-5,
                       help="non-ARG filter: DIAMOND e-value cut-off (default: %(default)g)")
    rules.add_argument("--homolog-identity", type=float, default=40.0,
                       help="non-ARG filter: minimum percent identity of a hit that makes a "
                            "candidate an ARG homolog (default: %(default)g)")
    rules.add_argument("--homolog-coverage", type=float, default=50.0,
                       help="non-ARG filter: minimum percent coverage of the candidate or of the "
                            "ARG (default: %(default)g)")
    rules.add_argument("--homolog-sensitivity", choices=DIAMOND_SENSITIVITIES, default="sensitive",
                       help="DIAMOND sensitivity mode of the non-ARG filter (default: %(default)s)")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    return command_main("dataset", argv, parse_args, lambda a: run(a, argv),
                        (DatasetError, ToolError, OSError), lambda a, m: print_summary(m, a.out))


def run(a: argparse.Namespace, argv: list[str]) -> dict:
    """Build the data set; returns its manifest."""
    return build(BuildOptions(
        out=a.out, split=a.split, identity=a.identity, coverage=a.coverage,
        fractions=tuple(a.fractions), seed=a.seed, resfinder_dir=a.resfinder_dir,
        uniprot=a.uniprot, input_fasta=a.input_fasta, exclude_classes=a.exclude_class,
        max_nonarg=a.max_nonarg, conflict_rule=a.conflict_rule,
        homolog=HomologFilter(a.homolog_evalue, a.homolog_identity, a.homolog_coverage,
                              a.homolog_sensitivity),
        threads=a.threads, nonarg_label=a.nonarg_label,
        uniprot_prefixes=tuple(x for x in a.uniprot_prefixes.split(",") if x),
        command=["argtrain", "dataset", *argv]))


def print_summary(m: dict, out: Path) -> None:
    counts = m["counts"]
    width = max(len(c) for c in m["classes"] + ["class"])
    print(f"data set written to {out}  ({m['split']['mode']} split, seed {m['split']['seed']})")
    print(f"{'class':<{width}} " + " ".join(f"{s:>7}" for s in SPLITS) + f" {'total':>7}")
    for c in m["classes"]:
        row = [counts["per_split_and_class"][s][c] for s in SPLITS]
        print(f"{c:<{width}} " + " ".join(f"{n:>7}" for n in row) + f" {sum(row):>7}")
    print(f"{'total':<{width}} " + " ".join(f"{counts['per_split'][s]:>7}" for s in SPLITS)
          + f" {counts['total']:>7}")
    if "arg_qc" in m:
        d = {k: v for k, v in m["arg_qc"]["dropped_by_reason"].items() if v}
        print(f"ResFinder: {m['arg_qc']['records_read_total']} CDS read, "
              f"{m['arg_qc']['translated']} translated, dropped {d}")
        dd = m["arg_dedupe"]
        print(f"ARG proteins: {dd['unique_proteins']} unique, "
              f"{dd['proteins_with_conflicting_labels']} with conflicting classes "
              f"(rule '{dd['conflict_rule']}'), {dd['final']} kept")
        nf = m["nonarg_filter"]
        print(f"non-ARGs: {nf['candidates']} candidates, {nf['identical_to_arg']} identical to "
              f"an ARG, {nf['removed_by_homology']} removed as ARG homologs, "
              f"{nf['removed_by_keyword']} by keyword, {nf['used']} used")
    if m["split"]["mode"] == "cluster":
        cl = m["split"]["clusters"]
        print(f"clusters: {cl['total']} total, per split {cl['per_split']}")
    print("timings (s): " + ", ".join(f"{k} {v}" for k, v in m["timings_s"].items()))
