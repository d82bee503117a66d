"""``argtrain evaluate``: score a model artifact and/or the DIAMOND best-hit and k-mer baselines
on a labelled test FASTA (see argtrain.evaluate); for a model with a reference set, also the
nearest reference alone and the evidence rule (argtrain.evidence), aligned by argserve-evidence."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

from ..baseline import BaselinePrediction, diamond_baseline
from ..baseline_floor import (Floor, called_share, choose_floor, floored_label, reaches,
                             resfinder_like, score_floors)
from ..evaluate import (EvaluationError, format_summary, load_artifact, ordered_classes,
                        plot_confusion, predict_model, read_labelled_set, read_proteomes)
from ..evidence import Thresholds, combine, counted, reference_only, supporting_probabilities
from ..evidence_tool import DEFAULT_TOOL, EvidenceError, run_evidence_tool
from ..homology import DIAMOND_SENSITIVITIES
from ..labelled import NONARG
from ..metrics import classification_report
from .common import command_main


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="argtrain evaluate", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Evaluate a TorchScript model artifact (--model) and/or the DIAMOND best-hit "
                    "baseline (--baseline-train) on a labelled test FASTA ('>id|class'). Writes "
                    "evaluation.json, confusion.png and predictions.tsv into --out and prints a "
                    "summary table.",
        epilog="examples:\n"
               "  python3 -m argtrain evaluate --test data/cluster40/test.fasta \\\n"
               "      --baseline-train data/cluster40/train.fasta --out runs/eval-baseline\n"
               "  python3 -m argtrain evaluate --test data/cluster40/test.fasta \\\n"
               "      --model model.pt --baseline-train data/cluster40/train.fasta --out runs/eval")
    p.add_argument("--test", required=True, help="test FASTA with '>id|class' headers")
    p.add_argument("--model", help="TorchScript artifact (with model.json inside) to evaluate")
    p.add_argument("--baseline-train", metavar="FASTA",
                   help="training FASTA for the DIAMOND best-hit baseline")
    p.add_argument("--out", required=True, type=Path, help="output directory (created)")
    p.add_argument("--nonarg-label", default=NONARG,
                   help="label of non-ARG proteins in the FASTA files (default: %(default)s)")
    m = p.add_argument_group("model")
    m.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default: cpu)")
    m.add_argument("--num-threads", type=int, default=2,
                   help="torch CPU threads (default: %(default)s)")
    m.add_argument("--batch-size", type=int, default=64,
                   help="most sequences per batch (default: %(default)s)")
    m.add_argument("--max-tokens", type=int, default=32768,
                   help="most padded tokens per batch; batches are length-sorted "
                        "(default: %(default)s)")
    e = p.add_argument_group("evidence (a model with a reference set)")
    e.add_argument("--evidence-tool", metavar="PATH", type=Path, default=None,
                   help=f"the aligner that finds each test protein's nearest reference "
                        f"(default: {DEFAULT_TOOL} when it exists, else evidence is skipped); "
                        f"run with --threads")
    e.add_argument("--no-evidence", action="store_true",
                   help="skip the reference_only and combined evaluations")
    b = p.add_argument_group("baseline")
    b.add_argument("--evalue", type=float, default=1e-5,
                   help="DIAMOND e-value cut-off (default: %(default)g)")
    b.add_argument("--sensitivity", default="sensitive",
                   choices=DIAMOND_SENSITIVITIES,
                   help="DIAMOND sensitivity mode (default: %(default)s)")
    b.add_argument("--threads", type=int, default=2,
                   help="DIAMOND and evidence tool threads (default: %(default)s)")
    b.add_argument("--baseline-valid", metavar="FASTA",
                   help="validation FASTA on which to choose the identity and coverage floors of "
                        "a second DIAMOND row, baseline_bounded: best hit within the bounds below")
    b.add_argument("--baseline-proteome", metavar="FASTA", nargs="+", type=Path,
                   help="whole proteomes' proteins (unlabelled) for baseline_bounded's second "
                        "bound; those with a ResFinder-like best hit are left out")
    b.add_argument("--baseline-held-out-proteome", metavar="FASTA", nargs="+", type=Path,
                   help="whole proteomes not used in the choice: baseline_bounded's share of "
                        "their other proteins called an ARG is reported")
    b.add_argument("--baseline-proteome-references", metavar="FASTA", nargs="+",
                   help="labelled proteins the proteome is searched against, as a DIAMOND user "
                        "would deploy them (default: --baseline-train)")
    b.add_argument("--max-false-positive-rate", type=float, default=0.002,
                   help="most validation non-ARGs baseline_bounded may call an ARG "
                        "(default: %(default)s)")
    b.add_argument("--max-proteome-false-positive-rate", type=float, default=0.005,
                   help="largest share of the proteome's other proteins baseline_bounded may "
                        "call an ARG (default: %(default)s)")
    b.add_argument("--no-kmer-baseline", action="store_true",
                   help="skip the k-mer baseline (2-mer + 3-mer counts into an MLP, trained on "
                        "--baseline-train), reported as kmer_baseline")
    b.add_argument("--kmer-epochs", type=int, default=20,
                   help="training epochs of the k-mer baseline (default: %(default)s)")
    b.add_argument("--seed", type=int, default=0, help="k-mer baseline seed (default: %(default)s)")
    a = p.parse_args(argv)
    if not a.model and not a.baseline_train:
        p.error("give --model, --baseline-train or both")
    if a.baseline_valid and not a.baseline_train:
        p.error("--baseline-valid needs --baseline-train")
    if (a.baseline_proteome or a.baseline_held_out_proteome) and not a.baseline_valid:
        p.error("--baseline-proteome and --baseline-held-out-proteome need --baseline-valid")
    return a


def main(argv: list[str]) -> int:
    return command_main("evaluate", argv, parse_args, run,
                        (EvaluationError, EvidenceError, OSError, RuntimeError))


def evidence_tool(a: argparse.Namespace) -> Path | None:
    """The tool to run, or None (with a note on stderr) when there is none."""
    if a.evidence_tool is not None:
        if not a.evidence_tool.is_file():
            raise EvaluationError(f"--evidence-tool {a.evidence_tool}: no such file")
        return a.evidence_tool
    if DEFAULT_TOOL.is_file():
        return DEFAULT_TOOL
    print(f"note: evidence skipped: {DEFAULT_TOOL} not found (bash scripts/build.sh builds it; "
          f"or give --evidence-tool)", file=sys.stderr)
    return None


def run(a: argparse.Namespace) -> int:
    test = read_labelled_set(a.test, a.nonarg_label)
    y_true = [label for _, label, _ in test]
    preds: dict[str, list[str]] = {}
    extra_cols: dict[str, list] = {}
    infos: dict[str, dict] = {}
    model_classes: list[str] = []
    nonarg = a.nonarg_label

    tool: Path | None = None        # the evidence tool, when there is one and a reference set
    evidence: dict | None = None
    if a.model:
        import torch
        torch.set_num_threads(max(1, a.num_threads))
        module, meta, references = load_artifact(a.model, a.device)
        model_classes = list(meta["classes"])
        nonarg = meta.get("nonarg_class") or nonarg
        labels, probs, info = predict_model(module, meta, test, batch_size=a.batch_size,
                                            max_tokens=a.max_tokens, device=a.device)
        info["path"] = str(a.model)
        info["num_threads"] = a.num_threads
        preds["model"] = labels
        extra_cols["model_prob"] = [f"{p:.4f}" for p in probs]
        model_p_arg = info.pop("p_arg")
        extra_cols["model_p_arg"] = [f"{p:.4f}" for p in model_p_arg]
        model_probs = info.pop("class_probabilities")
        infos["model"] = info
        unseen = sorted(set(y_true) - set(model_classes))
        if unseen:
            print(f"note: test classes unknown to the model (always wrong): {unseen}",
                  file=sys.stderr)
        if references is not None and not a.no_evidence:
            tool = evidence_tool(a)
        elif not a.no_evidence:
            print("note: evidence skipped: the model has no reference set", file=sys.stderr)

    if a.baseline_train:
        train = read_labelled_set(a.baseline_train, a.nonarg_label)
        bpreds, info = diamond_baseline([(i, y, s) for i, y, s in train],
                                        [(i, s) for i, _, s in test], evalue=a.evalue,
                                        threads=a.threads, sensitivity=a.sensitivity,
                                        nonarg_label=nonarg)
        info["train"] = str(a.baseline_train)
        preds["baseline"] = [p.label for p in bpreds]
        extra_cols["baseline_hit"] = [p.hit or "" for p in bpreds]
        extra_cols["baseline_identity"] = ["" if p.identity is None else f"{p.identity:.1f}"
                                           for p in bpreds]
        infos["baseline"] = info
        train_classes = Counter(y for _, y, _ in train)
        unseen = sorted(set(y_true) - set(train_classes))
        if unseen:
            infos["baseline"]["test_classes_absent_from_train"] = unseen
        if a.baseline_valid:
            bounded, info = bounded_baseline(a, train, bpreds, nonarg)
            preds["baseline_bounded"] = bounded
            infos["baseline_bounded"] = info
        if not a.no_kmer_baseline:
            from ..kmer_baseline import predict_kmer, train_kmer_baseline
            kmer_classes = ordered_classes([y for _, y, _ in train], nonarg_label=nonarg)
            kmer, info = train_kmer_baseline([(y, s) for _, y, s in train], kmer_classes,
                                             epochs=a.kmer_epochs, seed=a.seed)
            t0 = time.perf_counter()
            kpreds, kprobs = predict_kmer(kmer, [s for _, _, s in test], kmer_classes)
            info["predict_seconds"] = round(time.perf_counter() - t0, 3)
            info["train"] = str(a.baseline_train)
            preds["kmer_baseline"] = kpreds
            extra_cols["kmer_baseline_prob"] = [f"{p:.4f}" for p in kprobs.max(axis=1)]
            infos["kmer_baseline"] = info

    # After the baselines, so that their columns keep their places in predictions.tsv.
    if tool is not None:
        evidence = evaluate_evidence(tool, references, meta, test, preds["model"], model_p_arg,
                                     nonarg, a.threads, preds, extra_cols, infos)

    classes = ordered_classes(y_true, *preds.values(), first=model_classes, nonarg_label=nonarg)
    reports = {}
    for name, y_pred in preds.items():
        rep = classification_report(y_true, y_pred, classes, nonarg_class=nonarg)
        rep["info"] = infos[name]
        negatives = [i for i, y in enumerate(y_true) if y == nonarg]
        if negatives:
            rep["nonarg_false_positive_rate"] = (
                sum(y_pred[i] != nonarg for i in negatives) / len(negatives))
        reports[name] = rep
    if a.model:
        from ..calibrate import expected_calibration_error
        index = {c: i for i, c in enumerate(model_classes)}
        known = [i for i, y in enumerate(y_true) if y in index]
        top = model_probs[known].argmax(axis=1)
        reports["model"]["ece"] = expected_calibration_error(
            model_probs[known].max(axis=1), top == [index[y_true[i]] for i in known])

    a.out.mkdir(parents=True, exist_ok=True)
    result = {"test": {"path": str(a.test), "n": len(test),
                       "per_class": dict(sorted(Counter(y_true).items()))},
              "classes": classes, "nonarg_class": nonarg, **reports}
    if evidence is not None:
        result["evidence"] = evidence
    (a.out / "evaluation.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    with open(a.out / "predictions.tsv", "w", encoding="utf-8", newline="\n") as fh:
        cols = ["id", "true"] + [f"{n}_pred" for n in preds] + list(extra_cols)
        fh.write("\t".join(cols) + "\n")
        for i, (rid, y, _) in enumerate(test):
            row = [rid, y] + [p[i] for p in preds.values()] + [c[i] for c in extra_cols.values()]
            fh.write("\t".join(str(v) for v in row) + "\n")
    plot_confusion(reports, a.out / "confusion.png", title=f"test set: {a.test} (n={len(test)})")

    print(f"test set {a.test}: {len(test)} proteins, {len(set(y_true))} classes")
    for name, info in infos.items():
        secs = info.get("seconds")
        print(f"{name}: {secs} s" + (f", {info['sequences_per_second']} seq/s, "
                                      f"{info['truncated_sequences']} truncated"
                                      if name == "model" else
                                      f", {info['queries_with_hit']} of {len(test)} with a hit"
                                      if name in ("baseline", "baseline_bounded",
                                                  "reference_only") else
                                      f", tiers {info['tiers']}" if name == "combined" else
                                      " to train"))
    print(format_summary(reports))
    print(f"written: {a.out / 'evaluation.json'}, {a.out / 'confusion.png'}, "
          f"{a.out / 'predictions.tsv'}")
    return 0


def proteome_hits(paths: list[Path], refs: list[tuple[str, str, str]], search: dict,
                  nonarg: str) -> tuple[list[BaselinePrediction], dict]:
    """Best hits of whole proteomes' proteins among ``refs``, those with a ResFinder-like one
    left out; and their evaluation.json record."""
    proteins = [(i, s) for i, _, s in read_proteomes(paths, nonarg)]
    if not proteins:
        raise EvaluationError(f"{' '.join(map(str, paths))}: no proteins")
    found, _ = diamond_baseline(refs, proteins, **search)
    kept = [p for p in found if not resfinder_like(p, nonarg)]
    if not kept:
        raise EvaluationError(f"{' '.join(map(str, paths))}: every protein is ResFinder-like")
    return kept, {"fasta": [str(p) for p in paths], "proteins": len(kept),
                  "resfinder_like_left_out": len(found) - len(kept)}


def bounded_baseline(a: argparse.Namespace, train: list[tuple[str, str, str]],
                     test_preds: list[BaselinePrediction], nonarg: str) -> tuple[list[str], dict]:
    """baseline_bounded: the test's best hits under the floors chosen on --baseline-valid (and
    --baseline-proteome); its calls and evaluation.json ``info``."""
    t0 = time.perf_counter()
    valid = read_labelled_set(a.baseline_valid, a.nonarg_label)
    search = {"evalue": a.evalue, "threads": a.threads, "sensitivity": a.sensitivity,
              "nonarg_label": nonarg}
    valid_preds, _ = diamond_baseline(train, [(i, s) for i, _, s in valid], **search)
    ref_paths = a.baseline_proteome_references or [a.baseline_train]
    refs = []
    if a.baseline_proteome or a.baseline_held_out_proteome:
        refs = [r for path in ref_paths for r in read_labelled_set(path, a.nonarg_label)]
    proteome, proteome_info = (None, None)
    if a.baseline_proteome:
        proteome, proteome_info = proteome_hits(a.baseline_proteome, refs, search, nonarg)
        proteome_info.update(references=ref_paths,
                             max_false_positive_rate=a.max_proteome_false_positive_rate)
    held_out, held_out_info = (None, None)
    if a.baseline_held_out_proteome:
        held_out, held_out_info = proteome_hits(a.baseline_held_out_proteome, refs, search,
                                                nonarg)
        held_out_info["references"] = ref_paths
    y_valid = [y for _, y, _ in valid]
    classes = ordered_classes(y_valid, [y for _, y, _ in train], nonarg_label=nonarg)
    rows = score_floors(y_valid, valid_preds, classes, nonarg, proteome)
    best = choose_floor(rows, a.max_false_positive_rate, a.max_proteome_false_positive_rate)
    if best is None:
        raise EvaluationError("baseline_bounded: no identity and coverage floor keeps the "
                              "validation (and proteome) false calls within the bounds")
    calls = [floored_label(p, best.floor, nonarg) for p in test_preds]
    for proteins, record in ((proteome, proteome_info), (held_out, held_out_info)):
        if record is not None:
            record["false_positive_rate"] = called_share(proteins, best.floor, nonarg)
            record["best_hit_false_positive_rate"] = called_share(proteins, Floor(0.0, 0.0),
                                                                  nonarg)
    info = {"method": "diamond blastp best hit at or above floors chosen on validation",
            **best.floor.to_json(), "evalue": a.evalue, "sensitivity": a.sensitivity,
            "train": str(a.baseline_train),
            "queries_with_hit": sum(reaches(p, best.floor) for p in test_preds),
            "validation": {"fasta": str(a.baseline_valid), "macro_f1": best.macro_f1,
                           "false_positive_rate": best.false_positive_rate,
                           "max_false_positive_rate": a.max_false_positive_rate},
            "proteome": proteome_info, "held_out_proteome": held_out_info,
            "seconds": round(time.perf_counter() - t0, 3)}
    return calls, info


def evaluate_evidence(tool: Path, references: str, meta: dict, test: list[tuple[str, str, str]],
                      model_labels: list[str], model_p_arg: list[float], nonarg: str,
                      threads: int,
                      preds: dict[str, list[str]], extra_cols: dict[str, list],
                      infos: dict[str, dict]) -> dict:
    """Nearest references of the test proteins; adds the reference_only and combined calls (and
    their columns) and returns evaluation.json ``evidence``."""
    thresholds = Thresholds.from_json(meta.get("evidence") or Thresholds().to_json())
    t0 = time.perf_counter()
    raw, command = run_evidence_tool(tool, references, [(i, s) for i, _, s in test], threads,
                                     thresholds.max_evalue, nonarg)
    seconds = round(time.perf_counter() - t0, 3)
    hits = [raw.get(rid) for rid, _, _ in test]
    support = supporting_probabilities(model_p_arg, [s for _, _, s in test], meta)
    calls = [combine(y != nonarg, y, h, thresholds, nonarg, arg_probability=p)
             for y, p, h in zip(model_labels, support, hits)]
    preds["reference_only"] = [reference_only(h, thresholds, nonarg) for h in hits]
    preds["combined"] = [c.label for c in calls]
    extra_cols["tier"] = [c.tier for c in calls]
    nearest = [counted(h, thresholds) for h in hits]
    extra_cols["nearest_reference"] = [h.reference_id if h else "" for h in nearest]
    extra_cols["reference_identity"] = [f"{h.identity:.3f}" if h else "" for h in nearest]
    extra_cols["nearest_arg_reference"] = [h.nearest_arg.reference_id if h and h.nearest_arg
                                           else "" for h in nearest]
    with_hit = sum(h is not None for h in nearest)
    tiers = dict(sorted(Counter(c.tier for c in calls).items()))
    refs = meta["references"]
    info = {"tool": str(tool), "seconds": seconds, "references": refs["count"],
            "references_version": refs.get("version"), "queries_with_hit": with_hit}
    infos["reference_only"] = {"method": "nearest reference (Smith-Waterman)", **info}
    infos["combined"] = {"method": "evidence rule (argtrain.evidence)", **info, "tiers": tiers}
    return {"thresholds": thresholds.to_json(), "queries_with_hit": with_hit,
            "tool_rows": len(raw), "tiers": tiers, "references": refs,
            "command": command, "seconds": seconds}
