"""``argtrain hard-negatives``: the known non-ARGs that align to a training split's ARGs, for
``argtrain finetune --hard-negatives`` (see argtrain.relatives.aligning_nonargs).

They are the non-ARG part of the reference set an export of that split keeps, and the proteins a
classifier most easily mistakes for ARGs: housekeeping pumps, PBPs, acetyltransferases.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..evidence_tool import DEFAULT_TOOL, EvidenceError
from ..fasta import write_fasta
from ..homology import ToolError
from ..labelled import DatasetError
from ..references import ReferenceError, read_references_fasta, read_shared_references
from ..relatives import aligning_nonargs
from .common import add_aligner_args, command_main, require_tool


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="argtrain hard-negatives",
        description="Non-ARGs that align to an ARG of the given labelled FASTA, as labelled "
                    "FASTA for 'argtrain finetune --hard-negatives'.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--arg-reference", nargs="+", required=True, metavar="FASTA",
                   help="labelled FASTA ('>id|class'): its ARGs are aligned to (a training split)")
    p.add_argument("--candidates", nargs="+", required=True, metavar="FASTA",
                   help="labelled FASTA whose non-ARGs are kept when they align to one of those "
                        "ARGs (the training split, the Swiss-Prot relatives)")
    add_aligner_args(p, DEFAULT_TOOL)
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    require_tool(args.evidence_tool)
    arg_refs = read_references_fasta(args.arg_reference)
    candidates = read_shared_references(args.candidates, nonarg=True)
    kept = aligning_nonargs(arg_refs, candidates, args.evidence_tool, threads=args.threads,
                            max_evalue=args.max_evalue)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_fasta(args.out, ((f"{r.id}|{r.label}", r.residues) for r in kept), width=0)
    return {"arg_references": len(arg_refs), "candidates": len(candidates),
            "hard_negatives": len(kept)}


def main(argv: list[str]) -> int:
    return command_main("hard-negatives", argv, parse_args, run,
                        (DatasetError, ReferenceError, EvidenceError, ToolError, ValueError,
                         OSError), print_summary)


def print_summary(args: argparse.Namespace, result: dict) -> None:
    print(json.dumps(result))
    print(f"hard-negatives: {result['hard_negatives']} of the {result['candidates']} non-ARGs "
          f"align to one of {result['arg_references']} ARGs -> {args.out}", file=sys.stderr)
