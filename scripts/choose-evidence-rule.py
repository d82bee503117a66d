#!/usr/bin/python3
"""Chooses the evidence rule's identity threshold on a validation set (never a test set).

For a model artifact with a reference set, classifies the validation proteins, finds their nearest
references with argserve-evidence, and scores the combined call (docs/evidence.md) for each
identity threshold of a small grid, the reference coverage threshold and E-value limit fixed.
Prints the table and writes the best threshold (ties: the higher one) as JSON:

  PYTHONPATH=training /usr/bin/python3 scripts/choose-evidence-rule.py --model model.pt \
      --valid data/cluster40/valid.fasta --out rule.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from argtrain.evaluate import load_artifact, predict_model, read_labelled_set
from argtrain.evidence import Thresholds, combine
from argtrain.evidence_tool import DEFAULT_TOOL, run_evidence_tool
from argtrain.metrics import classification_report

GRID = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="artifact with references.tsv inside")
    p.add_argument("--valid", required=True, help="validation FASTA ('>id|class')")
    p.add_argument("--tool", default=str(DEFAULT_TOOL), help="argserve-evidence")
    p.add_argument("--reference-min-coverage", type=float, default=0.6)
    p.add_argument("--max-evalue", type=float, default=1e-5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, required=True, help="JSON with the chosen thresholds")
    a = p.parse_args()

    import torch
    torch.set_num_threads(max(1, a.threads))
    records = read_labelled_set(a.valid)
    module, meta, references = load_artifact(a.model)
    if references is None:
        print(f"{a.model}: no reference set inside", file=sys.stderr)
        return 2
    nonarg = meta["nonarg_class"]
    classes = list(meta["classes"])
    labels, _, _ = predict_model(module, meta, records)
    hits, command = run_evidence_tool(a.tool, references, [(i, s) for i, _, s in records],
                                      a.threads, a.max_evalue)
    y_true = [label for _, label, _ in records]
    rows = []
    for identity in GRID:
        rule = Thresholds(identity, a.reference_min_coverage, a.max_evalue)
        calls = [combine(y != nonarg, y, hits.get(i), rule, nonarg).label
                 for (i, _, _), y in zip(records, labels)]
        report = classification_report(y_true, calls, classes, nonarg)
        rows.append((identity, report["macro_f1"], report["accuracy"]))
    model_only = classification_report(y_true, labels, classes, nonarg)["macro_f1"]
    best = max(rows, key=lambda r: (r[1], r[0]))
    print(f"validation {a.valid}: {len(records)} proteins, {len(hits)} with a hit; "
          f"model alone macro-F1 {model_only:.3f}")
    print("| reference_min_identity | combined macro-F1 | accuracy |")
    print("| ---: | ---: | ---: |")
    for identity, f1, acc in rows:
        print(f"| {identity:.1f} | {f1:.3f} | {acc:.3f} |{' chosen' if identity == best[0] else ''}")
    chosen = Thresholds(best[0], a.reference_min_coverage, a.max_evalue).to_json()
    a.out.write_text(json.dumps({**chosen, "validation": {
        "fasta": a.valid, "macro_f1": best[1], "model_only_macro_f1": model_only,
        "grid": [{"reference_min_identity": i, "macro_f1": f, "accuracy": c} for i, f, c in rows],
        "command": command}}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
