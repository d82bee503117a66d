"""A stand-in for the C++ argserve-evidence tool, so that the evaluate tests need no C++ build."""

from __future__ import annotations

import stat
import sys
import textwrap
from pathlib import Path


def fake_tool(directory: Path, stdout: str, exit_code: int = 0) -> Path:
    """An executable standing in for argserve-evidence: records its arguments, the references and
    the queries it was given next to itself, prints ``stdout`` and exits with ``exit_code``."""
    (directory / "fake_stdout.tsv").write_text(stdout, encoding="utf-8")
    path = directory / "fake-evidence"
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(f"""\
        import shutil, sys
        from pathlib import Path
        here = Path({str(directory)!r})
        args = sys.argv[1:]
        (here / "argv.txt").write_text("\\n".join(args))
        shutil.copy(args[args.index("--references") + 1], here / "seen_references.tsv")
        shutil.copy(args[args.index("--fasta") + 1], here / "seen_queries.fasta")
        sys.stdout.write((here / "fake_stdout.tsv").read_text())
        if {exit_code}:
            sys.stderr.write("fake failure\\n")
        sys.exit({exit_code})
        """))
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path
