"""Scoring a model artifact and/or the baselines on a labelled test set (``argtrain evaluate``).

Given a test FASTA with ``>id|class`` headers, writes (in ``--out``):
- ``evaluation.json``: accuracy, macro-F1, per-class precision/recall/F1/support, confusion matrix,
  ARG-vs-nonARG detection precision/recall, for the model and/or the baselines, and, for a model
  with a reference set, for the nearest reference alone and for the evidence rule
  (argtrain.evidence);
- ``confusion.png``: the confusion matrices, three to a row (rows normalised to recall, counts
  written in the cells);
- ``predictions.tsv``: one line per test protein;
and prints a summary table.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

from . import alphabet
from .batching import token_budget_batches
from .fasta import read_fasta
from .labelled import NONARG, DatasetError, read_labelled
from .references import FILE_NAME, sha256_hex


class EvaluationError(ValueError):
    pass


def read_proteomes(paths: Sequence[str | Path], nonarg_label: str = NONARG
                   ) -> list[tuple[str, str, str]]:
    """``(id, nonarg, protein)`` of unlabelled protein FASTA files (e.g. Prodigal's), ids
    ``proteome:<file name>:<first word>``, a final '*' dropped."""
    records = []
    for path in map(Path, paths):
        for header, protein in read_fasta(path):
            records.append((f"proteome:{path.name}:{header.split()[0]}", nonarg_label,
                            protein.rstrip("*")))
    return records


def read_labelled_set(path: str | Path, nonarg_label: str = NONARG
                      ) -> list[tuple[str, str, str]]:
    """``(id, label, sequence)`` of a labelled FASTA (``id|class`` headers); none is an error."""
    try:
        out = [(r.id, r.label, r.seq) for r in read_labelled(path, nonarg_label)]
    except DatasetError as exc:
        raise EvaluationError(str(exc)) from None
    if not out:
        raise EvaluationError(f"{path}: no records")
    return out


# ---------------------------------------------------------------------------------------------
# Model


def load_model(path: str | Path, device: str = "cpu"):
    """Load a TorchScript artifact and its ``model.json``; returns ``(module, meta)``."""
    module, meta, _ = load_artifact(path, device)
    return module, meta


def load_artifact(path: str | Path, device: str = "cpu"):
    """``(module, meta, references)``: the module, its ``model.json`` and the text of its
    ``references.tsv`` (None when model.json names no reference set), checked against its sha256."""
    import torch

    extra = {"model.json": "", FILE_NAME: ""}
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
    refs_meta = meta.get("references")
    if not refs_meta:
        return module, meta, None
    if refs_meta.get("file") != FILE_NAME:
        raise EvaluationError(f"{path}: model.json names the reference file "
                              f"{refs_meta.get('file')!r}, expected {FILE_NAME!r}")
    data = extra[FILE_NAME]
    references = data.decode("utf-8") if isinstance(data, bytes) else data
    if not references or sha256_hex(references) != refs_meta.get("sha256"):
        raise EvaluationError(f"{path}: {FILE_NAME} is missing or does not match the sha256 in "
                              f"model.json")
    return module, meta, references


def make_encoder(meta: dict):
    """Tokenizer following docs/model-artifact.md: ``seq -> (token ids, truncated?)``.

    The rules are argtrain.alphabet's; tokens, residues and the length limit are the artifact's own.
    """
    max_res = int(meta["max_residues"])
    index = {tok: i for i, tok in enumerate(meta["alphabet"])}
    special = meta["special_tokens"]
    residues = frozenset(meta["residues"])

    def encode(seq: str) -> tuple[list[int], bool]:
        s = alphabet.clean_sequence(seq, residues)
        ids = [special["cls"]] + [index[c] for c in s[:max_res]] + [special["eos"]]
        return ids, len(s) > max_res
    return encode


def predict_model(module, meta: dict, records: Sequence[tuple[str, str, str]], *,
                  batch_size: int = 64, max_tokens: int = 32768, device: str = "cpu"
                  ) -> tuple[list[str], list[float], dict]:
    """Predicted class and its softmax probability for each record, plus run information."""
    import torch

    encode = make_encoder(meta)
    classes = list(meta["classes"])
    pad = int(meta["special_tokens"]["pad"])
    tokens: list[list[int]] = []
    truncated = 0
    for rid, _, seq in records:
        try:
            ids, cut = encode(seq)
        except alphabet.TokenizationError as exc:
            raise EvaluationError(f"sequence '{rid}': {exc}") from None
        tokens.append(ids)
        truncated += cut
    import numpy as np

    from .calibrate import call

    all_probs = np.zeros((len(records), len(classes)), dtype=np.float64)
    batches = token_budget_batches([len(t) for t in tokens], max_tokens, batch_size, shuffle=False)
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
    # At most three matrices per row, so five reports still make a readable figure.
    ncols = min(3, len(names))
    nrows = -(-len(names) // ncols)
    fig, grid = plt.subplots(nrows, ncols, figsize=(side * ncols + 0.8, (side + 0.6) * nrows),
                             squeeze=False)
    axes = list(grid.flat)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    for ax, name in zip(axes, names):
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
    fig.colorbar(im, ax=axes[:len(names)], fraction=0.025, pad=0.02,
                 label="fraction of true class")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def format_summary(reports: dict[str, dict]) -> str:
    names = list(reports)
    classes = reports[names[0]]["classes"]
    width = max(len(c) for c in classes + ["macro-F1 (test classes)"])
    # Each report's column is as wide as its name (at least 8), so no name is cut.
    w = {n: max(8, len(n)) for n in names}
    head = f"{'class':<{width}} {'support':>7}"
    for n in names:
        head += f" | {n:>{w[n]}} {'P':>5} {'R':>5} {'F1':>5}"
    lines = [head, "-" * len(head)]
    for c in classes:
        sup = reports[names[0]]["per_class"][c]["support"]
        if not sup and not any(reports[n]["per_class"][c]["predicted"] for n in names):
            continue
        row = f"{c:<{width}} {sup:>7}"
        for n in names:
            pc = reports[n]["per_class"][c]
            row += (f" | {'':>{w[n]}} {pc['precision']:>5.3f} {pc['recall']:>5.3f} "
                    f"{pc['f1']:>5.3f}")
        lines.append(row)
    lines.append("-" * len(head))

    def add(label: str, get) -> None:
        row = f"{label:<{width}} {'':>7}"
        for n in names:
            v = get(reports[n])
            row += (f" | {'':>{w[n]}} {'':>5} {'':>5} {v:>5.3f}" if v is not None
                    else f" | {'':>{w[n] + 18}}")
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
