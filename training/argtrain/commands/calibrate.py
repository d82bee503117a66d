"""``argtrain calibrate``: calibrate a fine-tuned checkpoint again, on validation proteins as
served.

Fits the temperature and chooses the ARG threshold (argtrain.calibrate) from the validation
logits of OUT/best.pt, with every protein cut to ``--max-residues`` (the artifact's
``max_residues``, as the server sees it) and in float32, and stores the result in best.pt and
metrics.json, where ``argtrain export`` takes it from. ``argtrain finetune`` does the same at its
end; this command redoes it for a checkpoint calibrated otherwise (e.g. on training-length crops).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..calibrate import DEFAULT_MIN_RESIDUES
from ..checkpoints import CheckpointError
from .common import command_main
from .helpformat import HelpFormatter


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="argtrain calibrate",
        description="Calibrate a fine-tuned checkpoint (temperature, ARG threshold) on "
                    "validation proteins at the length the server sees them.",
        formatter_class=HelpFormatter)
    p.add_argument("--checkpoint", required=True,
                   help="the directory 'argtrain finetune' wrote (its best.pt is calibrated)")
    p.add_argument("--valid", required=True, help="validation FASTA ('>id|class')")
    p.add_argument("--max-residues", type=int, default=1022,
                   help="validation proteins are cut to their first residues up to this length")
    p.add_argument("--max-false-positive-rate", type=float, default=None,
                   help="the ARG threshold keeps at most this share of validation non-ARGs "
                        "called ARG (default: the fine-tuning run's, else 0.002)")
    p.add_argument("--min-residues", type=int, default=None,
                   help=f"proteins shorter than this are never called ARGs (default: the "
                        f"checkpoint's, else {DEFAULT_MIN_RESIDUES})")
    p.add_argument("--max-tokens", type=int, default=8192, help="token budget per batch")
    p.add_argument("--num-threads", type=int, default=0, help="torch threads (0 = torch default)")
    return p


def main(argv: list[str]) -> int:
    return command_main("calibrate", argv, build_parser().parse_args, run,
                        (ValueError, CheckpointError, OSError), print_summary)


def run(args: argparse.Namespace) -> dict:
    import numpy as np

    from ..export import load_finetuned
    from ..finetune import TokenData, calibrate_checkpoint, tokenize_records
    from ..labelled import NONARG, read_labelled
    from ..runtime import set_threads

    set_threads(args.num_threads)
    if args.max_residues < 1:
        raise ValueError(f"--max-residues must be at least 1, got {args.max_residues}")
    best = Path(args.checkpoint)
    best = best / "best.pt" if best.is_dir() else best
    model, ck = load_finetuned(str(best))
    classes = list(ck["classes"])
    nonarg = ck.get("nonarg_class") or NONARG
    records = read_labelled(args.valid, nonarg)
    toks, labels, _ = tokenize_records(records, args.valid)
    unknown = sorted(set(labels) - set(classes))
    if unknown:
        raise ValueError(f"{args.valid}: classes the checkpoint does not know: {unknown}")
    y = np.array([classes.index(label) for label in labels], dtype=np.int64)
    min_residues = args.min_residues
    if min_residues is None:
        min_residues = int((ck.get("calibration") or {}).get("min_residues", DEFAULT_MIN_RESIDUES))
    max_fpr = args.max_false_positive_rate
    if max_fpr is None:
        settings = (ck.get("training") or {}).get("settings") or {}
        max_fpr = float(settings.get("max_false_positive_rate", 0.002))
    data = TokenData(toks, y, args.max_residues, args.max_tokens, 64)
    return calibrate_checkpoint(best, model, data, y, [len(t) for t in toks], classes, nonarg,
                                max_fpr, min_residues,
                                max_residues=args.max_residues)


def print_summary(args: argparse.Namespace, c: dict) -> None:
    v = c["validation"]
    line = (f"{args.checkpoint}: temperature {c['temperature']:.3f}, ECE {v['ece_before']:.4f} -> "
            f"{v['ece']:.4f}")
    if "arg_threshold" in c:
        line += (f", ARG threshold {c['arg_threshold']:.3f} (validation macro-F1 "
                 f"{v['macro_f1']:.4f}, non-ARGs called ARG "
                 f"{v['threshold_choice']['false_positive_rate']:.4f})")
    print(line, file=sys.stdout)
