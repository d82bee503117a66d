"""Checks the server's nearest-reference evidence against DIAMOND blastp's best hit.

For every query that DIAMOND hits at >= --min-identity, compares argserve-evidence's identity with
DIAMOND's (within --tolerance percentage points) and whether the nearest reference is DIAMOND's hit
or one of the same gene family; also the shortlist's recall against an exhaustive alignment.

  /usr/bin/python3 bench/evidence_vs_diamond.py --references refs.tsv --fasta test.fasta \
      [--tool build/bin/argserve-evidence] [--exhaustive]
"""

from __future__ import annotations

import argparse
import csv
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DIAMOND_FIELDS = ["qseqid", "sseqid", "pident", "length", "qlen", "slen", "evalue", "bitscore"]


def family(gene: str) -> str:
    """The gene name without a trailing allele number ("blaOXA-48" -> "blaOXA")."""
    return re.sub(r"-\d+$", "", gene)


def read_table(path: Path, key: str) -> dict[str, dict]:
    with open(path, newline="") as f:
        return {row[key]: row for row in csv.DictReader(f, delimiter="\t")}


def run_tool(tool: str, references: str, fasta: str, candidates: int | None, out: Path) -> float:
    cmd = [tool, "--references", references, "--fasta", fasta]
    if candidates is not None:
        cmd += ["--candidates", str(candidates)]
    start = time.perf_counter()
    with open(out, "w") as f:
        subprocess.run(cmd, stdout=f, check=True)
    return time.perf_counter() - start


def run_diamond(references: dict[str, dict], fasta: str, work: Path, threads: int) -> dict[str, dict]:
    targets = work / "refs.faa"
    with open(targets, "w") as f:
        for rid, row in references.items():
            f.write(f">{rid}\n{row['residues']}\n")
    subprocess.run(["diamond", "makedb", "--in", str(targets), "-d", str(work / "refs"), "--quiet"],
                   check=True)
    hits = work / "hits.tsv"
    subprocess.run(["diamond", "blastp", "-q", fasta, "-d", str(work / "refs"), "-o", str(hits),
                    "--sensitive", "--max-target-seqs", "1", "--evalue", "1e-5", "--threads",
                    str(threads), "--quiet", "--outfmt", "6", *DIAMOND_FIELDS], check=True)
    best: dict[str, dict] = {}
    with open(hits) as f:
        for line in f:
            row = dict(zip(DIAMOND_FIELDS, line.rstrip("\n").split("\t")))
            best.setdefault(row["qseqid"], row)
    return best


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--references", required=True, help="references.tsv")
    p.add_argument("--fasta", required=True, help="query proteins")
    p.add_argument("--tool", default="build/bin/argserve-evidence")
    p.add_argument("--min-identity", type=float, default=50.0)
    p.add_argument("--tolerance", type=float, default=2.0, help="percentage points")
    p.add_argument("--threads", type=int, default=2, help="DIAMOND threads")
    p.add_argument("--exhaustive", action="store_true",
                   help="also align every query to every reference, for the shortlist's recall")
    a = p.parse_args()
    with open(a.references, newline="") as f:
        refs = {row["id"]: row for row in csv.DictReader(f, delimiter="\t")}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        seconds = run_tool(a.tool, a.references, a.fasta, None, work / "ours.tsv")
        ours = read_table(work / "ours.tsv", "query_id")
        diamond = run_diamond(refs, a.fasta, work, a.threads)
        exhaustive = None
        if a.exhaustive:
            run_tool(a.tool, a.references, a.fasta, 0, work / "all.tsv")
            exhaustive = read_table(work / "all.tsv", "query_id")
    queries = sum(1 for line in open(a.fasta) if line.startswith(">"))
    print(f"queries {queries}, argserve-evidence {seconds:.2f} s ({1000 * seconds / queries:.2f} ms "
          f"per query, one thread, load included), hits {len(ours)}; DIAMOND hits {len(diamond)}")
    strong = [q for q, row in diamond.items() if float(row["pident"]) >= a.min_identity]
    within = same = 0
    for q in strong:
        hit = ours.get(q)
        if hit is None:
            continue
        if abs(100 * float(hit["identity"]) - float(diamond[q]["pident"])) <= a.tolerance:
            within += 1
        theirs = refs[diamond[q]["sseqid"]]
        if hit["reference_id"] == theirs["id"] or family(hit["gene"]) == family(theirs["gene"]):
            same += 1
    n = max(1, len(strong))
    print(f"DIAMOND hits at >= {a.min_identity:g}% identity: {len(strong)}; identity within "
          f"{a.tolerance:g} points: {within} ({100 * within / n:.1f}%); same reference or gene "
          f"family: {same} ({100 * same / n:.1f}%); no hit of ours: "
          f"{sum(1 for q in strong if q not in ours)}")
    if exhaustive is not None:
        found = sum(1 for q, row in exhaustive.items()
                    if q in ours and int(ours[q]["score"]) == int(row["score"]))
        print(f"shortlist recall: best alignment found for {found} of {len(exhaustive)} queries "
              f"with an exhaustive hit ({100 * found / max(1, len(exhaustive)):.1f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
