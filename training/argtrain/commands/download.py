"""``argtrain download``: print the official ESM-2 checkpoint locations, or fetch one
(see argtrain.download)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..download import FAIR_ESM_URL, HF_FILES, HF_REPO, HF_URL, MODELS, describe, fetch
from .common import command_main


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="argtrain download",
        description="Print the official ESM-2 checkpoint locations (fair-esm .pt and Hugging Face); "
                    "with --fetch, download one fair-esm file (needs network access).")
    p.add_argument("--model", choices=list(MODELS), default=None,
                   help="one model (default: list all)")
    p.add_argument("--fetch", action="store_true", help="download the fair-esm .pt of --model")
    p.add_argument("--hf", action="store_true",
                   help="with --fetch: download the Hugging Face files (config.json, "
                        "model.safetensors) into a directory instead")
    p.add_argument("--out", default=".", help="directory to download into")
    p.add_argument("--timeout", type=float, default=30.0, help="network timeout in seconds")
    return p


def main(argv: list[str]) -> int:
    return command_main("download", argv, build_parser().parse_args, run, (RuntimeError,))


def run(args: argparse.Namespace) -> int:
    names = [args.model] if args.model else list(MODELS)
    if not args.fetch:
        for n in names:
            print(describe(n))
        print("\nLoad either format with: python3 -m argtrain finetune --backbone PATH ...")
        return 0
    if not args.model:
        print("argtrain download: --fetch needs --model", file=sys.stderr)
        return 2
    out = Path(args.out)
    if args.hf:
        target = out / args.model
        target.mkdir(parents=True, exist_ok=True)
        for f in HF_FILES:
            fetch(HF_URL.format(repo=HF_REPO.format(name=args.model), file=f), target / f,
                  args.timeout)
    else:
        out.mkdir(parents=True, exist_ok=True)
        target = out / f"{args.model}.pt"
        fetch(FAIR_ESM_URL.format(name=args.model), target, args.timeout)
    print(f"saved {target}")
    return 0
