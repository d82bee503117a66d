"""``argtrain download``: where the official ESM-2 weights live, and an optional fetch.

Nothing in training or testing downloads anything by itself; this command only prints the official
locations (fair-esm files on dl.fbaipublicfiles.com and the Hugging Face repositories), and with
``--fetch`` tries to download one fair-esm file with urllib. Either format loads with
``argtrain finetune --backbone PATH`` (a .pt file, or a Hugging Face directory holding config.json and
model.safetensors or pytorch_model.bin).
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

FAIR_ESM_URL = "https://dl.fbaipublicfiles.com/fair-esm/models/{name}.pt"
HF_REPO = "facebook/{name}"
HF_FILES = ("config.json", "model.safetensors")
HF_URL = "https://huggingface.co/{repo}/resolve/main/{file}"
MODELS = {  # name: (layers, dim, heads, parameters)
    "esm2_t6_8M_UR50D": (6, 320, 20, "8M"),
    "esm2_t12_35M_UR50D": (12, 480, 20, "35M"),
    "esm2_t30_150M_UR50D": (30, 640, 20, "150M"),
    "esm2_t33_650M_UR50D": (33, 1280, 20, "650M"),
    "esm2_t36_3B_UR50D": (36, 2560, 40, "3B"),
    "esm2_t48_15B_UR50D": (48, 5120, 40, "15B"),
}


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


def describe(name: str) -> str:
    layers, dim, heads, size = MODELS[name]
    repo = HF_REPO.format(name=name)
    return (f"{name}  ({size} parameters: {layers} layers, {dim} dim, {heads} heads)\n"
            f"  fair-esm:     {FAIR_ESM_URL.format(name=name)}\n"
            f"  hugging face: {repo}  ({', '.join(HF_URL.format(repo=repo, file=f) for f in HF_FILES)})")


def fetch(url: str, dest: Path, timeout: float) -> None:
    tmp = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as fh:
            total = int(resp.headers.get("Content-Length") or 0)
            done = 0
            while chunk := resp.read(1 << 20):
                fh.write(chunk)
                done += len(chunk)
                if total:
                    print(f"\r{dest.name}: {done / 1e6:.0f}/{total / 1e6:.0f} MB", end="", file=sys.stderr)
        print(file=sys.stderr)
        os.replace(tmp, dest)
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        tmp.unlink(missing_ok=True)
        reason = getattr(e, "reason", e)
        raise RuntimeError(f"cannot download {url}: {reason}. This machine may have no network "
                           f"access; download the file elsewhere and copy it to {dest}") from None


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
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
    try:
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
    except RuntimeError as e:
        print(f"argtrain download: error: {e}", file=sys.stderr)
        return 1
    print(f"saved {target}")
    return 0
