"""Summarises bench/genome_calls.sh: argserve's ARG calls on whole proteomes against ResFinder-style
hits (>= 90% identity over >= 60% of the reference) and DIAMOND's best hit (E <= 1e-5).

  PYTHONPATH=training /usr/bin/python3 bench/genome_calls_summary.py --calls calls.tsv --diamond diamond.tsv \
      --model model.pt --seconds 123.4 > result.md

With training/ on PYTHONPATH (the ResFinder acceptance is argtrain.evidence's). Proteins are named
<genome>:<gene>; calls.tsv is argserve-cli's TSV, diamond.tsv has the columns
qseqid sseqid pident slen sstart send (sseqid: <reference id>|<class>).
"""

from __future__ import annotations

import argparse
import csv
import datetime
from collections import Counter, defaultdict
from dataclasses import dataclass

from argtrain.evidence import RESFINDER_COVERAGE
from argtrain.evidence import RESFINDER_IDENTITY as RESFINDER_FRACTION

RESFINDER_IDENTITY = 100 * RESFINDER_FRACTION  # DIAMOND reports percent


@dataclass(frozen=True)
class DiamondHit:
    reference: str
    label: str
    identity: float
    reference_coverage: float

    @property
    def resfinder_like(self) -> bool:
        return (self.identity >= RESFINDER_IDENTITY
                and self.reference_coverage >= RESFINDER_COVERAGE)


def read_diamond(path: str) -> dict[str, DiamondHit]:
    """The first (best) hit per query."""
    hits: dict[str, DiamondHit] = {}
    with open(path) as f:
        for line in f:
            query, subject, pident, slen, sstart, send = line.rstrip("\n").split("\t")
            if query in hits:
                continue
            reference, _, label = subject.rpartition("|")
            covered = abs(int(send) - int(sstart)) + 1
            hits[query] = DiamondHit(reference, label, float(pident), covered / int(slen))
    return hits


def genome_of(protein: str) -> str:
    return protein.split(":", 1)[0]


def describe(row: dict, hit: DiamondHit | None) -> str:
    identity = f"{float(row['identity']):.0f}%" if row["identity"] else "-"
    diamond = f"{hit.reference} {hit.identity:.0f}%" if hit else "no DIAMOND hit"
    return (f"- {row['id']}: {row['predicted_class']} ({row['tier']}, P(ARG) "
            f"{float(row['arg_probability']):.2f}, nearest {row['reference_gene'] or '-'} "
            f"{identity}; {diamond})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", required=True)
    p.add_argument("--diamond", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--choice", nargs="*", default=[], metavar="GENOME",
                   help="genomes the evidence rule was chosen on: reported apart from the others")
    args = p.parse_args()

    with open(args.calls, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    hits = read_diamond(args.diamond)
    failed = [r for r in rows if r["status"] != "ok"]
    per: dict[str, Counter] = defaultdict(Counter)
    agree, other, missed = [], [], []
    for r in rows:
        g = per[genome_of(r["id"])]
        hit = hits.get(r["id"])
        truth = hit.label if hit and hit.resfinder_like else None
        called = r["is_arg"] == "true"
        g["proteins"] += 1
        g["diamond_any"] += hit is not None
        g["truth"] += truth is not None
        g["called"] += called
        g["false"] += called and truth is None
        if truth and called and r["predicted_class"] == truth:
            g["agree"] += 1
            agree.append(r)
        elif called:
            g[f"other_{r['tier']}"] += 1
            other.append((r, hit))
        if truth and not (called and r["predicted_class"] == truth):
            g["missed"] += 1
            missed.append((r, hit))

    tiers = sorted({k[len("other_"):] for c in per.values() for k in c if k.startswith("other_")})
    total = sum((c for c in per.values()), Counter())
    print(f"# ARG calls on whole Klebsiella pneumoniae proteomes "
          f"({datetime.date.today().isoformat()})\n")
    print(f"Model `{args.model}`, server defaults (evidence on); `bash bench/genome_calls.sh`. "
          f"Genes: Prodigal, single genome mode. ResFinder-like: DIAMOND blastp --sensitive best "
          f"hit among the artifact's ARG references at >= {RESFINDER_IDENTITY:g}% identity over "
          f">= {RESFINDER_COVERAGE:.0%} of the reference (ResFinder's default thresholds); "
          f"DIAMOND best hit: any hit at E <= 1e-5, the evaluation's baseline rule. "
          f"{len(rows)} proteins classified in {args.seconds:.0f} s "
          f"({len(rows) / args.seconds:.0f} proteins/s, the CLI's defaults); "
          f"{len(failed)} not classified.\n")
    head = ["genome", "proteins", "ResFinder-like ARGs", "argserve ARG calls",
            "of them ResFinder-like, same class"] + [f"other calls, tier {t}" for t in tiers] + [
        "ResFinder-like not called", "DIAMOND best hit calls"]
    print("| " + " | ".join(head) + " |")
    print("| --- |" + " ---: |" * (len(head) - 1))
    for name, c in sorted(per.items()) + [("all", total)]:
        cells = [name, c["proteins"], c["truth"], c["called"], c["agree"]] + [
            c[f"other_{t}"] for t in tiers] + [c["missed"], c["diamond_any"]]
        print("| " + " | ".join(str(x) for x in cells) + " |")
    others = total["false"]
    nontruth = total["proteins"] - total["truth"]
    print(f"\nCalls beyond the ResFinder-like ones: {others} of {nontruth} other proteins "
          f"({others / max(nontruth, 1):.2%}); DIAMOND's best hit calls "
          f"{total['diamond_any'] - total['truth']} of them "
          f"({(total['diamond_any'] - total['truth']) / max(nontruth, 1):.2%}).\n")
    if args.choice:
        for group, names in (("the rule was chosen on", [n for n in per if n in args.choice]),
                             ("held out", [n for n in per if n not in args.choice])):
            c = sum((per[n] for n in names), Counter())
            calls, rest = c["false"], c["proteins"] - c["truth"]
            print(f"Genomes {group} ({', '.join(sorted(names)) or 'none'}): {calls} of {rest} "
                  f"other proteins called ARG ({calls / max(rest, 1):.2%}).\n")
    print("Calls beyond the ResFinder-like ones (class, tier, P(ARG), nearest reference and "
          "identity; DIAMOND's best hit):\n")
    for r, hit in other:
        print(describe(r, hit))
    print("\nResFinder-like ARGs not called so (what argserve answered):\n")
    for r, hit in missed:
        print(describe(r, hit))
    if not missed:
        print("(none)")
    print("\nResFinder-like ARGs called (gene, by class):\n")
    by_class: dict[str, list[str]] = defaultdict(list)
    for r in agree:
        by_class[r["predicted_class"]].append(r["reference_gene"])
    for label, genes in sorted(by_class.items()):
        print(f"- {label} ({len(genes)}): {', '.join(sorted(genes))}")


if __name__ == "__main__":
    main()
