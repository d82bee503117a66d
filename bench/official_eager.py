"""Throughput of the official ESM-2 forward pass run eagerly in Python (fp32, PyTorch's defaults).

This is the yardstick the ESM-2 8M speed target is stated against ("2x the official eager fp32
forward"), measured on the same machine and the same FASTA as argserve, so the ratio comes from one
run. The forward is training/tests/reference_esm2.py, the step-by-step re-creation of fair-esm's
code path that the training tests check argtrain against, with its Linear layers computed as
nn.Linear does (one fused addmm) and random weights (speed only). Batches are formed as fair-esm's
extract script does: sequences sorted by length, at most --toks-per-batch tokens each.

    PYTHONPATH=training:training/tests /usr/bin/python3 bench/official_eager.py \
        --fasta data/cluster40/test.fasta --sequences 300
"""

from __future__ import annotations

import argparse
import json
import random
import time

import torch
import torch.nn.functional as F

import reference_esm2
from argtrain import alphabet
from argtrain.fasta import read_fasta


def _linear(x: torch.Tensor, w: dict[str, torch.Tensor], prefix: str) -> torch.Tensor:
    return F.linear(x, w[prefix + ".weight"], w[prefix + ".bias"])


def batches_by_tokens(tokens: list[list[int]], toks_per_batch: int) -> list[torch.Tensor]:
    """Length-sorted batches of at most toks_per_batch padded tokens (fair-esm's rule)."""
    order = sorted(tokens, key=len)
    out: list[list[list[int]]] = []
    current: list[list[int]] = []
    longest = 0
    for t in order:
        if current and max(longest, len(t)) * (len(current) + 1) > toks_per_batch:
            out.append(current)
            current, longest = [], 0
        current.append(t)
        longest = max(longest, len(t))
    if current:
        out.append(current)
    return [alphabet.pad_batch(b) for b in out]


def tokens_per_second(weights: dict[str, torch.Tensor], batches: list[torch.Tensor], heads: int,
                      real_tokens: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for batch in batches:
            reference_esm2.reference_forward(weights, batch, heads)
        best = min(best, time.perf_counter() - start)
    return real_tokens / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fasta", required=True)
    parser.add_argument("--sequences", type=int, default=300, help="drawn (seeded) from --fasta")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--embed-dim", type=int, default=320)
    parser.add_argument("--heads", type=int, default=20)
    parser.add_argument("--toks-per-batch", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=2, help="passes; the best one counts")
    parser.add_argument("--threads", type=int, default=0,
                        help="Torch intra-op threads (0: PyTorch's default, as a user gets it)")
    parser.add_argument("--json-out")
    args = parser.parse_args()

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    reference_esm2._lin = _linear  # nn.Linear's fused product and bias, as the official modules do
    records = [seq for _, seq in read_fasta(args.fasta)]
    random.Random(args.seed).shuffle(records)
    tokens = [alphabet.encode(seq, max_residues=1022) for seq in records[:args.sequences]]
    real_tokens = sum(len(t) for t in tokens)
    weights = reference_esm2.random_official_weights(args.layers, args.embed_dim, args.heads)

    result = {"model": f"esm2 {args.layers} layers, {args.embed_dim} dim, {args.heads} heads",
              "torch_threads": torch.get_num_threads(), "sequences": len(tokens),
              "tokens": real_tokens}
    for name, batches in (("batch 1", [alphabet.pad_batch([t]) for t in tokens]),
                          (f"toks_per_batch {args.toks_per_batch}",
                           batches_by_tokens(tokens, args.toks_per_batch))):
        rate = tokens_per_second(weights, batches, args.heads, real_tokens, args.rounds)
        result[name] = rate
        print(f"official eager fp32 forward, {result['model']}, {name} ({len(batches)} batches), "
              f"{torch.get_num_threads()} Torch threads: {rate:9.0f} tokens/s", flush=True)
    result["best_tokens_per_second"] = max(result["batch 1"],
                                           result[f"toks_per_batch {args.toks_per_batch}"])
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
