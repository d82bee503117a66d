"""Small FASTA reader and writer (plain text or gzip, detected by content, not by name).

``read_fasta`` yields ``(header, sequence)``: the header without the leading ``>`` and stripped of
surrounding whitespace, the sequence with all whitespace removed and case kept (callers decide on
alphabet and case). Malformed input raises :class:`FastaError` naming the file and line, because a
data set silently built from half a file is worse than no data set.
"""

from __future__ import annotations

import gzip
import io
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

GZIP_MAGIC = b"\x1f\x8b"


class FastaError(ValueError):
    """Malformed FASTA input; the message names the file and the 1-based line number."""

    def __init__(self, path: str | os.PathLike, line: int, message: str):
        self.path = str(path)
        self.line = line
        super().__init__(f"{self.path}:{line}: {message}")


def _open_text(path: str | os.PathLike) -> io.TextIOBase:
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == GZIP_MAGIC:
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline=None)
    return open(path, "r", encoding="utf-8", newline=None)


def read_fasta(path: str | os.PathLike, allow_empty: bool = True) -> Iterator[tuple[str, str]]:
    """Yield ``(header, sequence)`` records from ``path``.

    Blank lines are ignored; ``;`` comment lines (old FASTA) are ignored. Errors: sequence data
    before the first header, an empty header, non-UTF-8 bytes, a ``>`` inside a sequence line,
    a record with no sequence when ``allow_empty`` is false.
    """
    header: str | None = None
    header_line = 0
    chunks: list[str] = []
    lineno = 0
    with _open_text(path) as fh:
        try:
            for lineno, line in enumerate(fh, start=1):
                text = line.strip()
                if not text or text.startswith(";"):
                    continue
                if text.startswith(">"):
                    if header is not None:
                        yield _finish(path, header, header_line, chunks, allow_empty)
                    header = text[1:].strip()
                    header_line = lineno
                    if not header:
                        raise FastaError(path, lineno, "empty FASTA header ('>' with no name)")
                    chunks = []
                    continue
                if header is None:
                    raise FastaError(path, lineno, "sequence data before the first '>' header "
                                     "(is this a FASTA file?)")
                if ">" in text:
                    raise FastaError(path, lineno, "'>' inside a sequence line")
                chunks.append("".join(text.split()))
        except UnicodeDecodeError as exc:
            raise FastaError(path, lineno + 1, f"not UTF-8 text ({exc.reason})") from None
        except (OSError, EOFError) as exc:  # truncated gzip and the like
            raise FastaError(path, lineno + 1, f"cannot read: {exc}") from None
    if header is not None:
        yield _finish(path, header, header_line, chunks, allow_empty)


def _finish(path, header: str, header_line: int, chunks: list[str],
            allow_empty: bool) -> tuple[str, str]:
    seq = "".join(chunks)
    if not seq and not allow_empty:
        raise FastaError(path, header_line, f"record '{header}' has no sequence")
    return header, seq


def write_fasta(path: str | os.PathLike, records: Iterable[tuple[str, str]],
                width: int = 60) -> int:
    """Write ``(header, sequence)`` records; gzip when ``path`` ends in ``.gz``. Returns the count.

    ``width`` <= 0 writes each sequence on one line. Gzip output has a fixed mtime so that the
    same records give the same bytes (the manifest records sha256 of outputs).
    """
    path = Path(path)
    n = 0
    if path.suffix == ".gz":
        raw = open(path, "wb")
        gz = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)
        fh = io.TextIOWrapper(gz, encoding="utf-8", newline="\n")
    else:
        raw = None
        fh = open(path, "w", encoding="utf-8", newline="\n")
    try:
        for header, seq in records:
            if "\n" in header or "\r" in header:
                raise ValueError(f"FASTA header contains a line break: {header!r}")
            fh.write(f">{header}\n")
            if width > 0:
                for i in range(0, len(seq), width):
                    fh.write(seq[i:i + width])
                    fh.write("\n")
            elif seq:
                fh.write(seq + "\n")
            n += 1
    finally:
        fh.close()
        if raw is not None:
            raw.close()
    return n


def read_sequences(paths: Iterable[str | os.PathLike]) -> list[str]:
    """The sequences of several FASTA files, in order (headers ignored)."""
    return [seq for path in paths for _, seq in read_fasta(path)]
