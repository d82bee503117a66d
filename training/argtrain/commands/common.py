"""What the subcommands share: the ``main`` wrapper, the runtime options of the training commands
and their process set-up.

Importing this module does not import torch (``start_run`` imports it when called), so that
``--help`` and the light subcommands stay light.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

from ..homology import ToolError

if TYPE_CHECKING:
    import torch


def command_main(name: str, argv: list[str], parse: Callable[[list[str]], argparse.Namespace],
                 run: Callable[[argparse.Namespace], Any],
                 errors: tuple[type[BaseException], ...],
                 report: Callable[[argparse.Namespace, Any], None] | None = None) -> int:
    """The body of every subcommand's ``main(argv)``.

    Parses ``argv`` (argparse exits on bad options), calls ``run(args)`` and turns one of the
    expected ``errors`` into ``argtrain NAME: error: ...`` on stderr and exit status 1. Without
    ``report``, ``run`` returns the exit status; with it, ``report(args, result)`` prints what
    ``run`` returned and the status is 0.
    """
    args = parse(argv)
    try:
        result = run(args)
    except errors as e:
        print(f"argtrain {name}: error: {e}", file=sys.stderr)
        return 1
    if report is None:
        return int(result)
    report(args, result)
    return 0


def add_runtime_args(group: argparse._ArgumentGroup, *, seed_help: str,
                     progress_help: str) -> None:
    """``--seed``, ``--num-threads``, ``--device`` and ``--no-progress`` of the training commands
    (the ones ``start_run`` reads); only what the seed drives and the progress text differ."""
    group.add_argument("--seed", type=int, default=0, help=seed_help)
    group.add_argument("--num-threads", type=int, default=0,
                       help="torch threads (0 = torch default)")
    group.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    group.add_argument("--no-progress", action="store_true", help=progress_help)


def add_aligner_args(p: argparse.ArgumentParser, default_tool: Path) -> None:
    """``--max-evalue``, ``--evidence-tool``, ``--threads`` and ``--out`` of the commands that
    write the non-ARGs aligning to an ARG as labelled FASTA (relatives, hard-negatives)."""
    p.add_argument("--max-evalue", type=float, default=1e-5, help="of an alignment to an ARG")
    p.add_argument("--evidence-tool", type=Path, default=default_tool,
                   help="argserve-evidence (bash scripts/build.sh builds it)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", required=True, type=Path, help="labelled FASTA written")


def require_tool(path: Path) -> None:
    """The aligner must exist before any input is read; ToolError names how to get it."""
    if not path.is_file():
        raise ToolError(f"{path} not found (bash scripts/build.sh builds it; "
                        f"or give --evidence-tool)")


class RunSetup(NamedTuple):
    device: torch.device
    out: Path                # the output directory, created
    progress: bool           # show tqdm bars: not --no-progress, and stderr is a terminal


def start_run(args: argparse.Namespace) -> RunSetup:
    """Threads, seeds and device from the runtime options, and the ``--out`` directory."""
    from ..runtime import pick_device, seed_everything, set_threads
    set_threads(args.num_threads)
    seed_everything(args.seed)
    device = pick_device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    return RunSetup(device, out, not args.no_progress and sys.stderr.isatty())

