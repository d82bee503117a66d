#!/usr/bin/python3
"""Accuracy change of bfloat16 autocast versus fp32 for a model artifact on a labelled test FASTA.

    PYTHONPATH=training /usr/bin/python3 bench/bf16_accuracy.py model.pt data/cluster40/test.fasta
"""

import json
import sys

import numpy as np
import torch

from argtrain.alphabet import batch_encode
from argtrain.fasta import read_fasta
from argtrain.metrics import macro_f1


def main() -> int:
    model_path, fasta = sys.argv[1], sys.argv[2]
    torch.set_num_threads(2)
    module = torch.jit.load(model_path)
    extra = {"model.json": ""}
    torch.jit.load(model_path, _extra_files=extra)
    meta = json.loads(extra["model.json"])
    classes = meta["classes"]
    records = [(h.rsplit("|", 1)[1], s) for h, s in read_fasta(fasta)]
    records.sort(key=lambda r: len(r[1]))
    truth, fp32, bf16, max_diff = [], [], [], 0.0
    with torch.inference_mode():
        for start in range(0, len(records), 32):
            chunk = records[start:start + 32]
            batch = batch_encode([seq for _, seq in chunk], max_residues=meta["max_residues"])
            p32 = torch.softmax(module(batch).float(), 1)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                p16 = torch.softmax(module(batch).float(), 1)
            max_diff = max(max_diff, float((p32 - p16).abs().max()))
            truth += [label for label, _ in chunk]
            fp32 += [classes[i] for i in p32.argmax(1).tolist()]
            bf16 += [classes[i] for i in p16.argmax(1).tolist()]
    agree = float(np.mean([a == b for a, b in zip(fp32, bf16)]))
    print(f"sequences {len(truth)}; argmax agreement {agree:.4f}; max |p_fp32 - p_bf16| {max_diff:.4f}")
    print(f"macro-F1 fp32 {macro_f1(truth, fp32, classes):.4f}  bf16 {macro_f1(truth, bf16, classes):.4f}")
    print(f"accuracy fp32 {np.mean([a == b for a, b in zip(truth, fp32)]):.4f}  "
          f"bf16 {np.mean([a == b for a, b in zip(truth, bf16)]):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
