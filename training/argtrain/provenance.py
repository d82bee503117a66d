"""Where outputs came from, for manifests and checkpoints: file digests, Debian package versions,
stage timings."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def debian_version(package: str) -> str | None:
    if shutil.which("dpkg-query") is None:
        return None
    proc = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package],
                          capture_output=True, text=True)
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def debian_package_of(path: str | os.PathLike) -> str | None:
    if shutil.which("dpkg") is None:
        return None
    proc = subprocess.run(["dpkg", "-S", str(path)], capture_output=True, text=True)
    if proc.returncode != 0 or ":" not in proc.stdout:
        return None
    return proc.stdout.split(":", 1)[0].strip()


class Timer:
    """Wall-clock seconds per named stage, for the manifest."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def stage(self, name: str):
        timer = self

        class _Stage:
            def __enter__(self):
                self.t0 = time.perf_counter()

            def __exit__(self, *exc):
                timer.seconds[name] = round(time.perf_counter() - self.t0, 3)
        return _Stage()
