"""``argtrain relatives``: known non-ARG relatives of the ARGs, for the reference set
(see argtrain.relatives)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..evidence_tool import DEFAULT_TOOL, EvidenceError
from ..fasta import write_fasta
from ..homology import ToolError
from ..labelled import DatasetError
from ..references import ReferenceError, read_shared_references
from ..relatives import nonarg_relatives
from .common import add_aligner_args, command_main, require_tool


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="argtrain relatives",
        description="Swiss-Prot non-ARGs that align to an ARG, clustered, as labelled FASTA "
                    "for 'argtrain export --nonarg-references'.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--extra", required=True, type=Path,
                   help="the corpus's nonarg-extra.fasta ('>id|nonarg')")
    p.add_argument("--arg-reference", nargs="+", required=True, metavar="FASTA",
                   help="labelled FASTA ('>id|class') whose ARGs the relatives must align to")
    p.add_argument("--background-proteins", type=int, default=10000,
                   help="left out: the background scripts/choose-evidence-rule.py draws")
    p.add_argument("--finetune-extra-max", type=int, default=20000,
                   help="fine-tuning's --extra-max (the background is drawn from the rest)")
    p.add_argument("--finetune-seed", type=int, default=42, help="fine-tuning's --seed")
    p.add_argument("--cluster-identity", type=float, default=0.7,
                   help="MMseqs2 --min-seq-id of the clustering (fraction)")
    p.add_argument("--cluster-coverage", type=float, default=0.8,
                   help="MMseqs2 -c, of both sequences (fraction)")
    add_aligner_args(p, DEFAULT_TOOL)
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    require_tool(args.evidence_tool)
    arg_refs = read_shared_references(args.arg_reference)
    kept, counts = nonarg_relatives(
        args.extra, arg_refs, args.evidence_tool, background_proteins=args.background_proteins,
        finetune_extra_max=args.finetune_extra_max, finetune_seed=args.finetune_seed,
        cluster_identity=args.cluster_identity, cluster_coverage=args.cluster_coverage,
        max_evalue=args.max_evalue, threads=args.threads)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_fasta(args.out, ((f"{r.id}|{r.label}", r.seq) for r in kept), width=0)
    return {**counts, "arg_references": len(arg_refs)}


def print_summary(args: argparse.Namespace, counts: dict) -> None:
    print(json.dumps(counts))
    print(f"relatives: {counts['representatives']} representatives of the "
          f"{counts['aligned_to_an_arg']} non-ARGs that align to one of "
          f"{counts['arg_references']} ARGs -> {args.out}", file=sys.stderr)


def main(argv: list[str]) -> int:
    return command_main("relatives", argv, parse_args, run,
                        (DatasetError, EvidenceError, ReferenceError, ToolError, OSError),
                        print_summary)
