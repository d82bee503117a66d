#!/usr/bin/python3
"""Accuracy of reduced precision versus fp32 on a labelled test FASTA: bfloat16 autocast of the
exported artifact, and (with --checkpoint, which gives the eager model) int8 dynamic quantization
of every Linear layer. Also times each variant on this machine (one thread, batches of 32).

    PYTHONPATH=training /usr/bin/python3 bench/precision_accuracy.py model.pt data/cluster40/test.fasta \\
        [--checkpoint runs/default-model/finetune-cluster40]
"""

import argparse
import json
import sys
import time
from typing import Callable

import numpy as np
import torch
from torch import nn

from argtrain.alphabet import batch_encode
from argtrain.export import load_finetuned
from argtrain.fasta import read_fasta
from argtrain.lora import merge_lora
from argtrain.metrics import macro_f1
from argtrain.runtime import set_threads


def predict(forward: Callable[[torch.Tensor], torch.Tensor], batches: list[torch.Tensor]
            ) -> tuple[torch.Tensor, float]:
    start = time.perf_counter()
    with torch.inference_mode():
        probs = [torch.softmax(forward(b).float(), 1) for b in batches]
    return torch.cat(probs), time.perf_counter() - start


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    p.add_argument("fasta")
    p.add_argument("--checkpoint", help="fine-tune checkpoint of the same model, for int8")
    args = p.parse_args()
    set_threads(1)
    extra = {"model.json": ""}
    module = torch.jit.load(args.model, _extra_files=extra)
    meta = json.loads(extra["model.json"])
    classes = meta["classes"]
    records = sorted(((h.rsplit("|", 1)[1], s) for h, s in read_fasta(args.fasta)),
                     key=lambda r: len(r[1]))
    truth = [label for label, _ in records]
    batches = [batch_encode([s for _, s in records[i:i + 32]], max_residues=meta["max_residues"])
               for i in range(0, len(records), 32)]

    def bf16(batch: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return module(batch)

    variants = {"fp32": module, "bf16 autocast": bf16}
    if args.checkpoint:
        model, _ = load_finetuned(args.checkpoint)
        model = merge_lora(model).eval().float()
        int8 = torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
        variants["int8 dynamic Linear"] = torch.jit.script(int8)
    reference, _ = predict(module, batches)  # also warms up
    print(f"{len(truth)} sequences; {args.model}")
    print("| variant | seconds | argmax agreement with fp32 | max abs prob. diff | macro-F1 | accuracy |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, forward in variants.items():
        probs, seconds = predict(forward, batches)
        labels = [classes[i] for i in probs.argmax(1).tolist()]
        agree = float((probs.argmax(1) == reference.argmax(1)).float().mean())
        diff = float((probs - reference).abs().max())
        acc = float(np.mean([a == b for a, b in zip(truth, labels)]))
        print(f"| {name} | {seconds:.1f} | {agree:.4f} | {diff:.4f} | "
              f"{macro_f1(truth, labels, classes):.4f} | {acc:.4f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
