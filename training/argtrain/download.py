"""Where the official ESM-2 weights live, and a plain download of them (``argtrain download``).

Nothing in training or testing downloads anything by itself; this command only prints the official
locations (fair-esm files on dl.fbaipublicfiles.com and the Hugging Face repositories), and with
``--fetch`` tries to download one fair-esm file with urllib. Either format loads with
``argtrain finetune --backbone PATH`` (a .pt file, or a Hugging Face directory holding config.json and
model.safetensors or pytorch_model.bin).
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

FAIR_ESM_URL = "https://dl.fbaipublicfiles.com/fair-esm/models/{name}.pt"
HF_REPO = "facebook/{name}"
HF_FILES = ("config.json", "model.safetensors")
HF_URL = "https://huggingface.co/{repo}/resolve/main/{file}"
# The sizes of esm2.OFFICIAL_MODELS plus parameter counts, here so that the command needs no torch.
MODELS = {  # name: (layers, dim, heads, parameters)
    "esm2_t6_8M_UR50D": (6, 320, 20, "8M"),
    "esm2_t12_35M_UR50D": (12, 480, 20, "35M"),
    "esm2_t30_150M_UR50D": (30, 640, 20, "150M"),
    "esm2_t33_650M_UR50D": (33, 1280, 20, "650M"),
    "esm2_t36_3B_UR50D": (36, 2560, 40, "3B"),
    "esm2_t48_15B_UR50D": (48, 5120, 40, "15B"),
}


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
