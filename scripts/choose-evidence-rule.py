#!/usr/bin/python3
"""Chooses the evidence rule on a validation set (never a test set).

For a model artifact with a reference set, classifies the validation proteins, finds their nearest
references with argserve-evidence, and scores the combined call (docs/evidence.md) for every rule
of small grids: the identity at which a reference decides alone, the P(ARG) at which the model lets
a more distant ARG reference decide (tier homolog), and the P(ARG) an ARG call needs when no
reference aligns (tier novel); the reference coverage threshold and E-value limit fixed. Prints
the best rules and writes as JSON the one with the best macro-F1 (ties: fewer false positives,
fewer ARG calls, then the stricter rule) among those whose combined call keeps the validation
non-ARGs called ARG within --max-false-positive-rate (the fine-tuning's own bound), with a
proteome-like background's false calls counted in that rate when --background is given (Swiss-Prot
non-ARGs that fine-tuning never saw, argtrain.background), and with --proteome, the share of whole
proteomes' proteins called an ARG within --max-proteome-false-positive-rate (the proteins that a
ResFinder search finds, an ARG reference at >= 90% identity over >= 60% of it, left out):

  PYTHONPATH=training /usr/bin/python3 scripts/choose-evidence-rule.py --model model.pt \
      --valid data/cluster40/valid.fasta --out rule.json \
      [--background data/pretrain/nonarg-extra.fasta] [--proteome data/proteomes/choice.faa]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from argtrain.evaluate import load_artifact, predict_model, read_labelled_set, read_proteomes
from argtrain.background import unseen_background
from argtrain.evidence import (HOMOLOG_GRID, NOVEL_GRID, Background, RuleScore, choose_rule,
                               parse_grid, preference, resfinder_like, score_rules,
                               supporting_probabilities, within_bounds)
from argtrain.evidence_tool import DEFAULT_TOOL, run_evidence_tool
from argtrain.metrics import classification_report


SHOWN = 15


def _or_dash(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def _row_json(r: RuleScore) -> dict:
    return {**r.rule.to_json(), "macro_f1": r.macro_f1, "accuracy": r.accuracy,
            "false_positive_rate": r.false_positive_rate, "arg_calls": r.arg_calls,
            "background_false_positives": r.background_false_positives,
            "proteome_false_positive_rate": r.proteome_false_positive_rate}


def _rate_or_dash(x: float | None) -> str:
    return "-" if x is None else f"{x:.2%}"


def grid_argument(text: str) -> tuple[float | None, ...]:
    try:
        return parse_grid(text)
    except ValueError as e:  # argparse shows ArgumentTypeError's message, not ValueError's
        raise argparse.ArgumentTypeError(str(e)) from None


def model_and_references(module, meta: dict, references: str, records: list, a
                         ) -> tuple[list[str], list[float], list, str]:
    """The model's calls, its P(ARG) as the rule takes it, and the nearest references (or None)
    of ``(id, label, protein)`` records; and the aligner's command line."""
    labels, _, info = predict_model(module, meta, records)
    hits, command = run_evidence_tool(a.tool, references, [(i, s) for i, _, s in records],
                                      a.threads, a.max_evalue, meta["nonarg_class"])
    support = supporting_probabilities(info["p_arg"], [s for _, _, s in records], meta)
    return labels, support, [hits.get(i) for i, _, _ in records], command


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="artifact with references.tsv inside")
    p.add_argument("--valid", required=True, help="validation FASTA ('>id|class')")
    p.add_argument("--tool", default=str(DEFAULT_TOOL), help="argserve-evidence")
    p.add_argument("--reference-min-coverage", type=float, default=0.6)
    p.add_argument("--max-evalue", type=float, default=1e-5)
    p.add_argument("--max-false-positive-rate", type=float, default=0.002,
                   help="most validation non-ARGs the combined call may call an ARG (a fraction)")
    p.add_argument("--background", type=Path, default=None,
                   help="the non-ARGs fine-tuning drew its extra examples from "
                        "(--extra-train); those it did not draw form the background")
    p.add_argument("--background-proteins", type=int, default=10000,
                   help="background proteins to classify (default: %(default)s)")
    p.add_argument("--finetune-extra-max", type=int, default=20000,
                   help="fine-tuning's --extra-max (default: %(default)s)")
    p.add_argument("--finetune-seed", type=int, default=42,
                   help="fine-tuning's --seed (default: %(default)s)")
    p.add_argument("--proteome", type=Path, nargs="+", default=None, metavar="FASTA",
                   help="proteins of whole genomes (e.g. Prodigal's); those without a "
                        "ResFinder-like hit count as non-ARGs, with a bound of their own")
    p.add_argument("--proteome-references", type=Path, default=None, metavar="ARTIFACT",
                   help="the artifact whose reference set the proteome is aligned against: the "
                        "one to be shipped, which holds every known ARG (default: --model's)")
    p.add_argument("--max-proteome-false-positive-rate", type=float, default=0.005,
                   help="largest share of the proteome's other proteins called an ARG")
    p.add_argument("--homolog-grid", type=grid_argument, default=HOMOLOG_GRID,
                   help="homolog P(ARG) thresholds to try, 'none' for no homolog tier "
                        "(default: " + ",".join("none" if v is None else f"{v:g}"
                                                for v in HOMOLOG_GRID) + ")")
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
    labels, support, hits, command = model_and_references(module, meta, references, records, a)
    y_true = [label for _, label, _ in records]
    background = None
    if a.background is not None:
        drawn = unseen_background(a.background, a.background_proteins, a.finetune_extra_max,
                                  a.finetune_seed, nonarg)
        if not drawn:
            print(f"{a.background}: fine-tuning saw every protein; no background", file=sys.stderr)
            return 2
        bg = [(f"background:{r.id}", nonarg, r.seq) for r in drawn]
        background = Background(*model_and_references(module, meta, references, bg, a)[:3])
    proteome = None
    left_out = 0
    if a.proteome:
        shipped = references
        if a.proteome_references is not None:
            shipped = load_artifact(a.proteome_references)[2]
            if shipped is None:
                print(f"{a.proteome_references}: no reference set inside", file=sys.stderr)
                return 2
        found = Background(*model_and_references(module, meta, shipped,
                                                 read_proteomes(a.proteome, nonarg), a)[:3])
        keep = [i for i, h in enumerate(found.hits) if not resfinder_like(h, nonarg)]
        left_out = len(found.hits) - len(keep)
        proteome = Background([found.model_labels[i] for i in keep],
                              [found.arg_probabilities[i] for i in keep],
                              [found.hits[i] for i in keep])
    proteome_bound = a.max_proteome_false_positive_rate if proteome else None
    rows = score_rules(y_true, labels, support, hits, classes, nonarg, a.reference_min_coverage,
                       a.max_evalue, homolog_grid=a.homolog_grid, novel_grid=NOVEL_GRID,
                       arg_threshold=(meta.get("calibration") or {}).get("arg_threshold"),
                       background=background, proteome=proteome)
    model_only = classification_report(y_true, labels, classes, nonarg)["macro_f1"]
    best = choose_rule(rows, a.max_false_positive_rate, proteome_bound)
    with_hit = sum(h is not None for h in hits)
    print(f"validation {a.valid}: {len(records)} proteins, {with_hit} with a hit; "
          f"model alone macro-F1 {model_only:.3f}; non-ARGs called ARG at most "
          f"{a.max_false_positive_rate:.2%}"
          + (f" (with {len(background.hits)} background non-ARGs from {a.background})"
             if background else "")
          + (f"; proteome {', '.join(map(str, a.proteome))}: {len(proteome.hits)} proteins "
             f"({left_out} ResFinder-like left out), at most {proteome_bound:.2%} called ARG"
             if proteome else ""))
    print(f"{len(rows)} rules; the best {SHOWN} within the bound, and the identity-only rules:")
    print("| identity | homolog P(ARG) | novel P(ARG) | combined macro-F1 | accuracy | "
          "non-ARGs called ARG | of them background | proteome called ARG | ARG calls |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    within = sorted((r for r in rows
                     if within_bounds(r, a.max_false_positive_rate, proteome_bound)),
                    key=preference, reverse=True)[:SHOWN]
    plain = [r for r in rows if r.rule.homolog_min_arg_probability is None
             and r.rule.novel_min_arg_probability is None and r not in within]
    for r in within + plain:
        print(f"| {r.reference_min_identity:.2f} | "
              f"{_or_dash(r.rule.homolog_min_arg_probability)} | "
              f"{_or_dash(r.rule.novel_min_arg_probability)} | {r.macro_f1:.3f} | "
              f"{r.accuracy:.3f} | {r.false_positive_rate:.2%} | "
              f"{r.background_false_positives} | "
              f"{_rate_or_dash(r.proteome_false_positive_rate)} | {r.arg_calls} |"
              f"{' chosen' if r == best else ''}")
    a.out.write_text(json.dumps({**best.rule.to_json(), "validation": {
        "fasta": a.valid, "macro_f1": best.macro_f1,
        "false_positive_rate": best.false_positive_rate,
        "max_false_positive_rate": a.max_false_positive_rate, "model_only_macro_f1": model_only,
        "background": None if background is None else {
            "fasta": str(a.background), "proteins": len(background.hits),
            "finetune_extra_max": a.finetune_extra_max, "finetune_seed": a.finetune_seed,
            "false_positives": best.background_false_positives},
        "proteome": None if proteome is None else {
            "fasta": [str(p) for p in a.proteome], "proteins": len(proteome.hits),
            "references": str(a.proteome_references or a.model),
            "resfinder_like_left_out": left_out, "max_false_positive_rate": proteome_bound,
            "false_positive_rate": best.proteome_false_positive_rate},
        "grid": [_row_json(r) for r in rows], "command": command}}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
