#!/usr/bin/python3
"""Chooses the evidence rule's identity threshold on a validation set (never a test set).

For a model artifact with a reference set, classifies the validation proteins, finds their nearest
references with argserve-evidence, and scores the combined call (docs/evidence.md) for each
identity threshold of a small grid, the reference coverage threshold and E-value limit fixed.
Prints the table and writes as JSON the threshold with the best macro-F1 (ties: the higher one)
among those whose combined call keeps the validation non-ARGs called ARG within
--max-false-positive-rate (the fine-tuning's own bound):

  PYTHONPATH=training /usr/bin/python3 scripts/choose-evidence-rule.py --model model.pt \
      --valid data/cluster40/valid.fasta --out rule.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from argtrain.evaluate import load_artifact, predict_model, read_labelled_set
from argtrain.evidence import Thresholds, choose_rule, score_rules
from argtrain.evidence_tool import DEFAULT_TOOL, run_evidence_tool
from argtrain.metrics import classification_report


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="artifact with references.tsv inside")
    p.add_argument("--valid", required=True, help="validation FASTA ('>id|class')")
    p.add_argument("--tool", default=str(DEFAULT_TOOL), help="argserve-evidence")
    p.add_argument("--reference-min-coverage", type=float, default=0.6)
    p.add_argument("--max-evalue", type=float, default=1e-5)
    p.add_argument("--max-false-positive-rate", type=float, default=0.002,
                   help="most validation non-ARGs the combined call may call an ARG (a fraction)")
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
    rows = score_rules(y_true, labels, [hits.get(i) for i, _, _ in records], classes, nonarg,
                       a.reference_min_coverage, a.max_evalue)
    model_only = classification_report(y_true, labels, classes, nonarg)["macro_f1"]
    best = choose_rule(rows, a.max_false_positive_rate)
    print(f"validation {a.valid}: {len(records)} proteins, {len(hits)} with a hit; "
          f"model alone macro-F1 {model_only:.3f}; non-ARGs called ARG at most "
          f"{a.max_false_positive_rate:.2%}")
    print("| reference_min_identity | combined macro-F1 | accuracy | non-ARGs called ARG |")
    print("| ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r.reference_min_identity:.2f} | {r.macro_f1:.3f} | {r.accuracy:.3f} | "
              f"{r.false_positive_rate:.2%} |{' chosen' if r == best else ''}")
    chosen = Thresholds(best.reference_min_identity, a.reference_min_coverage,
                        a.max_evalue).to_json()
    a.out.write_text(json.dumps({**chosen, "validation": {
        "fasta": a.valid, "macro_f1": best.macro_f1, "false_positive_rate": best.false_positive_rate,
        "max_false_positive_rate": a.max_false_positive_rate, "model_only_macro_f1": model_only,
        "grid": [{"reference_min_identity": r.reference_min_identity, "macro_f1": r.macro_f1,
                  "accuracy": r.accuracy, "false_positive_rate": r.false_positive_rate}
                 for r in rows],
        "command": command}}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
