"""``argtrain evaluate``: score a TorchScript model artifact and/or the DIAMOND best-hit baseline.

Given a test FASTA with ``>id|class`` headers, writes (in ``--out``):
- ``evaluation.json``: accuracy, macro-F1, per-class precision/recall/F1/support, confusion matrix,
  ARG-vs-nonARG detection precision/recall, for the model and/or the baseline;
- ``confusion.png``: the confusion matrices side by side (rows normalised to recall, counts
  written in the cells);
- ``predictions.tsv``: one line per test protein;
and prints a summary table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from .fasta import read_fasta
from .metrics import classification_report

NONARG = "nonarg"


class EvaluationError(ValueError):
    pass


def read_labelled(path: str | Path, nonarg_label: str = NONARG) -> list[tuple[str, str, str]]:
    """``(id, label, sequence)`` from a FASTA with ``id|class`` (or ``id|...|class``) headers."""
    from .dataset import DatasetError, parse_labelled_header

    out = []
    for header, seq in read_fasta(path):
        try:
            rid, label = parse_labelled_header(header, nonarg_label)
        except DatasetError as exc:
            raise EvaluationError(f"{path}: {exc}") from None
        out.append((rid, label, seq))
    if not out:
        raise EvaluationError(f"{path}: no records")
    return out


# ---------------------------------------------------------------------------------------------
# Model


def load_model(path: str | Path, device: str = "cpu"):
    """Load a TorchScript artifact and its ``model.json``; returns ``(module, meta)``."""
    import torch

    extra = {"model.json": ""}
    module = torch.jit.load(str(path), map_location=device, _extra_files=extra)
    raw = extra["model.json"]
    if not raw:
        raise EvaluationError(f"{path}: no model.json inside the artifact "
                              f"(see docs/model-artifact.md)")
    meta = json.loads(raw)
    required = ("format", "name", "version", "classes", "nonarg_class", "alphabet",
                "special_tokens", "residues", "max_residues", "backbone")
    missing = [k for k in required if k not in meta]
    if missing:
        raise EvaluationError(f"{path}: model.json lacks required keys {missing}")
    module.eval()
    return module, meta


def make_encoder(meta: dict):
    """Tokenizer following docs/model-artifact.md: ``seq -> (token ids, truncated?)``.

    Uses argtrain.alphabet (the training tokenizer) when the artifact's alphabet is the same;
    otherwise encodes with the artifact's own alphabet, under the same rules.
    """
    from . import alphabet as ab

    max_res = int(meta["max_residues"])
    if list(meta["alphabet"]) == list(ab.ALPHABET) and meta["special_tokens"] == ab.SPECIAL_TOKENS \
            and meta["residues"] == ab.RESIDUES:
        def encode(seq: str) -> tuple[list[int], bool]:
            clean = ab.clean_sequence(seq)
            return ab.encode(clean, max_res), len(clean) > max_res
        return encode, ab.TokenizationError

    index = {tok: i for i, tok in enumerate(meta["alphabet"])}
    sp = meta["special_tokens"]
    residues = set(meta["residues"])

    def encode_generic(seq: str) -> tuple[list[int], bool]:
        s = seq.upper()
        if s.endswith("*"):
            s = s[:-1]
        if not s:
            raise ValueError("empty sequence")
        for pos, ch in enumerate(s, start=1):
            if ch not in residues:
                what = "internal stop codon '*'" if ch == "*" else f"invalid character {ch!r}"
                raise ValueError(f"{what} at position {pos}")
        return [sp["cls"]] + [index[c] for c in s[:max_res]] + [sp["eos"]], len(s) > max_res
    return encode_generic, ValueError


def length_batches(lengths: Sequence[int], batch_size: int, max_tokens: int) -> list[list[int]]:
    """Indices sorted by length, cut into batches of at most ``batch_size`` sequences and at most
    ``max_tokens`` padded tokens, so that little compute is spent on padding."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches: list[list[int]] = []
    cur: list[int] = []
    for i in order:
        width = lengths[i]  # sorted ascending: the new one is the longest
        if cur and (len(cur) >= batch_size or width * (len(cur) + 1) > max_tokens):
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    return batches


def predict_model(module, meta: dict, records: Sequence[tuple[str, str, str]], *,
                  batch_size: int = 64, max_tokens: int = 32768, device: str = "cpu"
                  ) -> tuple[list[str], list[float], dict]:
    """Predicted class and its softmax probability for each record, plus run information."""
    import torch

    encode, tok_error = make_encoder(meta)
    classes = list(meta["classes"])
    pad = int(meta["special_tokens"]["pad"])
    tokens: list[list[int]] = []
    truncated = 0
    for rid, _, seq in records:
        try:
            ids, cut = encode(seq)
        except tok_error as exc:
            raise EvaluationError(f"sequence '{rid}': {exc}") from None
        tokens.append(ids)
        truncated += cut
    import numpy as np

    from .calibrate import call

    all_probs = np.zeros((len(records), len(classes)), dtype=np.float64)
    batches = length_batches([len(t) for t in tokens], batch_size, max_tokens)
    t0 = time.perf_counter()
    with torch.inference_mode():
        for batch in batches:
            width = max(len(tokens[i]) for i in batch)
            x = torch.full((len(batch), width), pad, dtype=torch.long)
            for row, i in enumerate(batch):
                x[row, : len(tokens[i])] = torch.tensor(tokens[i], dtype=torch.long)
            logits = module(x.to(device)).float()
            if logits.dim() != 2 or logits.shape[1] != len(classes):
                raise EvaluationError(f"model returned logits of shape {tuple(logits.shape)}, "
                                      f"expected [{len(batch)}, {len(classes)}]")
            all_probs[batch] = torch.softmax(logits, dim=-1).cpu().double().numpy()
    seconds = time.perf_counter() - t0
    calibration = meta.get("calibration") or {}
    nonarg = meta.get("nonarg_class")
    if nonarg in classes and "arg_threshold" in calibration:
        pred, top, p_arg = call(all_probs, classes.index(nonarg), calibration["arg_threshold"],
                                np.array([len(t) - 2 for t in tokens]),
                                int(calibration.get("min_residues", 0)))
    else:  # no threshold in the artifact: the most probable class
        pred = all_probs.argmax(axis=1)
        top = all_probs.max(axis=1)
        p_arg = (1.0 - all_probs[:, classes.index(nonarg)] if nonarg in classes
                 else np.ones(len(records)))
    labels = [classes[int(i)] for i in pred]
    probs = [float(p) for p in top]
    info = {"name": meta.get("name"), "version": meta.get("version"), "format": meta.get("format"),
            "backbone": meta.get("backbone"), "classes": classes, "device": device,
            "batches": len(batches), "truncated_sequences": truncated,
            "max_residues": meta["max_residues"], "seconds": round(seconds, 3),
            "calibration": {k: v for k, v in calibration.items() if k != "validation"},
            "p_arg": [float(p) for p in p_arg],
            "class_probabilities": all_probs,
            "sequences_per_second": round(len(records) / seconds, 1) if seconds > 0 else None}
    return labels, probs, info


# ---------------------------------------------------------------------------------------------
# Output


def ordered_classes(*label_lists: Sequence[str], first: Sequence[str] = (),
                    nonarg_label: str = NONARG) -> list[str]:
    """``first`` (e.g. the model's classes) then any other labels sorted, ``nonarg`` last."""
    seen = list(dict.fromkeys(first))
    rest = sorted({y for labels in label_lists for y in labels} - set(seen) - {nonarg_label})
    out = [c for c in seen if c != nonarg_label] + rest
    if nonarg_label in seen or any(nonarg_label in labels for labels in label_lists):
        out.append(nonarg_label)
    return out


def plot_confusion(reports: dict[str, dict], path: str | Path, title: str = "") -> None:
    """Confusion matrices side by side; only classes that occur (true or predicted) are shown."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(reports)
    classes = reports[names[0]]["classes"]
    cms = {n: np.array(reports[n]["confusion_matrix"]) for n in names}
    used = [i for i in range(len(classes))
            if any(cm[i, :].sum() or cm[:, i].sum() for cm in cms.values())]
    labels = [classes[i] for i in used]
    k = len(labels)
    side = max(4.5, 0.45 * k + 2.5)
    fig, axes = plt.subplots(1, len(names), figsize=(side * len(names) + 0.8, side + 0.6),
                             squeeze=False)
    for ax, name in zip(axes[0], names):
        cm = cms[name][np.ix_(used, used)]
        support = cm.sum(axis=1, keepdims=True)
        norm = np.divide(cm, support, out=np.zeros(cm.shape), where=support > 0)
        im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(k))
        ax.set_yticks(range(k))
        ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=8)
        ax.set_yticklabels([f"{c} ({int(s)})" for c, s in zip(labels, support[:, 0])], fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true (support)")
        r = reports[name]
        ax.set_title(f"{name}: accuracy {r['accuracy']:.3f}, macro-F1 {r['macro_f1']:.3f}",
                     fontsize=10)
        fs = 7 if k <= 20 else 5
        for i in range(k):
            for j in range(k):
                if cm[i, j]:
                    ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=fs,
                            color="white" if norm[i, j] > 0.6 else "black")
    fig.colorbar(im, ax=list(axes[0]), fraction=0.025, pad=0.02, label="fraction of true class")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def format_summary(reports: dict[str, dict]) -> str:
    names = list(reports)
    classes = reports[names[0]]["classes"]
    width = max(len(c) for c in classes + ["macro-F1 (test classes)"])
    head = f"{'class':<{width}} {'support':>7}"
    for n in names:
        head += f" | {n[:8]:>8} {'P':>5} {'R':>5} {'F1':>5}"
    lines = [head, "-" * len(head)]
    for c in classes:
        sup = reports[names[0]]["per_class"][c]["support"]
        if not sup and not any(reports[n]["per_class"][c]["predicted"] for n in names):
            continue
        row = f"{c:<{width}} {sup:>7}"
        for n in names:
            pc = reports[n]["per_class"][c]
            row += f" | {'':>8} {pc['precision']:>5.3f} {pc['recall']:>5.3f} {pc['f1']:>5.3f}"
        lines.append(row)
    lines.append("-" * len(head))

    def add(label: str, get) -> None:
        row = f"{label:<{width}} {'':>7}"
        for n in names:
            v = get(reports[n])
            row += f" | {'':>8} {'':>5} {'':>5} {v:>5.3f}" if v is not None else f" | {'':>26}"
        lines.append(row)
    add("accuracy", lambda r: r["accuracy"])
    add("macro-F1", lambda r: r["macro_f1"])
    add("macro-F1 (test classes)", lambda r: r["macro_f1_supported"])
    add("ARG-only accuracy", lambda r: r.get("arg_only_accuracy"))
    add("ARG detection P", lambda r: r.get("binary", {}).get("precision"))
    add("ARG detection R", lambda r: r.get("binary", {}).get("recall"))
    add("non-ARGs called ARG", lambda r: r.get("nonarg_false_positive_rate"))
    add("calibration error (ECE)", lambda r: r.get("ece"))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Command line


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
    b = p.add_argument_group("baseline")
    b.add_argument("--evalue", type=float, default=1e-5,
                   help="DIAMOND e-value cut-off (default: %(default)g)")
    b.add_argument("--sensitivity", default="sensitive",
                   choices=("fast", "mid-sensitive", "sensitive", "more-sensitive",
                            "very-sensitive", "ultra-sensitive"),
                   help="DIAMOND sensitivity mode (default: %(default)s)")
    b.add_argument("--threads", type=int, default=2,
                   help="DIAMOND threads (default: %(default)s)")
    b.add_argument("--no-kmer-baseline", action="store_true",
                   help="skip the k-mer baseline (2-mer + 3-mer counts into an MLP, trained on "
                        "--baseline-train), reported as kmer_baseline")
    b.add_argument("--kmer-epochs", type=int, default=20,
                   help="training epochs of the k-mer baseline (default: %(default)s)")
    b.add_argument("--seed", type=int, default=0, help="k-mer baseline seed (default: %(default)s)")
    a = p.parse_args(argv)
    if not a.model and not a.baseline_train:
        p.error("give --model, --baseline-train or both")
    return a


def main(argv: list[str]) -> int:
    a = parse_args(argv)
    try:
        return run(a)
    except (EvaluationError, OSError, RuntimeError) as exc:
        print(f"argtrain evaluate: error: {exc}", file=sys.stderr)
        return 1


def run(a: argparse.Namespace) -> int:
    test = read_labelled(a.test, a.nonarg_label)
    y_true = [label for _, label, _ in test]
    preds: dict[str, list[str]] = {}
    extra_cols: dict[str, list] = {}
    infos: dict[str, dict] = {}
    model_classes: list[str] = []
    nonarg = a.nonarg_label

    if a.model:
        import torch
        torch.set_num_threads(max(1, a.num_threads))
        module, meta = load_model(a.model, a.device)
        model_classes = list(meta["classes"])
        nonarg = meta.get("nonarg_class") or nonarg
        labels, probs, info = predict_model(module, meta, test, batch_size=a.batch_size,
                                            max_tokens=a.max_tokens, device=a.device)
        info["path"] = str(a.model)
        info["num_threads"] = a.num_threads
        preds["model"] = labels
        extra_cols["model_prob"] = [f"{p:.4f}" for p in probs]
        extra_cols["model_p_arg"] = [f"{p:.4f}" for p in info.pop("p_arg")]
        model_probs = info.pop("class_probabilities")
        infos["model"] = info
        unseen = sorted(set(y_true) - set(model_classes))
        if unseen:
            print(f"note: test classes unknown to the model (always wrong): {unseen}",
                  file=sys.stderr)

    if a.baseline_train:
        from .baseline import diamond_baseline
        train = read_labelled(a.baseline_train, a.nonarg_label)
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
        if not a.no_kmer_baseline:
            from .kmer_baseline import predict_kmer, train_kmer_baseline
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
        from .calibrate import expected_calibration_error
        index = {c: i for i, c in enumerate(model_classes)}
        known = [i for i, y in enumerate(y_true) if y in index]
        top = model_probs[known].argmax(axis=1)
        reports["model"]["ece"] = expected_calibration_error(
            model_probs[known].max(axis=1), top == [index[y_true[i]] for i in known])

    a.out.mkdir(parents=True, exist_ok=True)
    result = {"test": {"path": str(a.test), "n": len(test),
                       "per_class": dict(sorted(Counter(y_true).items()))},
              "classes": classes, "nonarg_class": nonarg, **reports}
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
                                      if name == "baseline" else " to train"))
    print(format_summary(reports))
    print(f"written: {a.out / 'evaluation.json'}, {a.out / 'confusion.png'}, "
          f"{a.out / 'predictions.tsv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
