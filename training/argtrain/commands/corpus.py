"""``argtrain corpus``: the masked-LM pretraining corpus (see argtrain.corpus)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..corpus import SWISSPROT_DB, CorpusError, CorpusOptions, build
from ..homology import ToolError
from ..labelled import DatasetError
from .common import command_main


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="argtrain corpus",
        description="the masked-LM pretraining corpus, with every relative of a test protein "
                    "removed.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", required=True, type=Path, help="output directory (created)")
    p.add_argument("--swissprot", default=SWISSPROT_DB,
                   help="BLAST protein database to include ('' for none)")
    p.add_argument("--include", nargs="*", default=[], metavar="FASTA",
                   help="more proteins (headers' labels are ignored)")
    p.add_argument("--exclude-like", nargs="+", required=True, metavar="FASTA",
                   help="held-out proteins (test splits): they and their relatives are removed")
    p.add_argument("--exclude-identity", type=float, default=40.0, help="percent identity")
    p.add_argument("--exclude-coverage", type=float, default=50.0,
                   help="percent of either sequence the alignment covers")
    p.add_argument("--arg-reference", nargs="*", default=[], metavar="FASTA",
                   help="labelled FASTA ('>id|class'); its ARGs define what nonarg-extra excludes")
    p.add_argument("--arg-identity", type=float, default=30.0, help="percent identity to an ARG")
    p.add_argument("--arg-coverage", type=float, default=50.0,
                   help="percent of either sequence the alignment to an ARG covers")
    p.add_argument("--min-length", type=int, default=30, help="shortest protein kept")
    p.add_argument("--valid-size", type=int, default=2000, help="proteins held out for perplexity")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=int, default=2)
    return p.parse_args(argv)


def options(args: argparse.Namespace) -> CorpusOptions:
    return CorpusOptions(**vars(args))


def main(argv: list[str]) -> int:
    return command_main("corpus", argv, parse_args, run,
                        (CorpusError, DatasetError, ToolError, OSError), print_summary)


def run(args: argparse.Namespace) -> dict:
    """Build the corpus; returns its manifest."""
    return build(options(args))


def print_summary(args: argparse.Namespace, m: dict) -> None:
    print(f"corpus: {m['train']['proteins']} train ({m['train']['residues']:,} residues), "
          f"{m['valid']['proteins']} valid; {m['removed_as_relatives']} removed as relatives of "
          f"{m['held_out']['proteins']} held-out proteins -> {args.out}", file=sys.stderr)
