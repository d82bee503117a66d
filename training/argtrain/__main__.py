"""Entry point: ``python3 -m argtrain <subcommand> [options]``.

Each subcommand is a module of argtrain.commands exposing ``main(argv: list[str]) -> int``; modules
are imported lazily so that ``--help`` and light subcommands do not pay for importing torch.
"""

import importlib
import sys

SUBCOMMANDS = {
    "dataset": ("argtrain.commands.dataset", "build the labelled data set and its splits"),
    "corpus": ("argtrain.commands.corpus",
               "build the pretraining corpus without relatives of test proteins"),
    "relatives": ("argtrain.commands.relatives",
                  "known non-ARG relatives of the ARGs, for the reference set"),
    "hard-negatives": ("argtrain.commands.hard_negatives",
                       "the non-ARGs that align to a split's ARGs, for fine-tuning"),
    "pretrain": ("argtrain.commands.pretrain", "masked-language-model pretraining of an ESM-2"),
    "finetune": ("argtrain.commands.finetune", "fine-tune an ARG classifier (LoRA or full)"),
    "calibrate": ("argtrain.commands.calibrate",
                  "calibrate a fine-tuned checkpoint on validation proteins as served"),
    "evaluate": ("argtrain.commands.evaluate", "evaluate a model and the DIAMOND best-hit baseline"),
    "export": ("argtrain.commands.export", "export a TorchScript model artifact for the server"),
    "download": ("argtrain.commands.download", "print/fetch the official ESM-2 checkpoint URLs"),
}


def usage() -> str:
    lines = ["usage: python3 -m argtrain <subcommand> [options]", "", "subcommands:"]
    for name, (_, text) in SUBCOMMANDS.items():
        lines.append(f"  {name:<15} {text}")
    lines.append("")
    lines.append("Run 'python3 -m argtrain <subcommand> --help' for the options of one subcommand.")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    name = argv[0]
    if name not in SUBCOMMANDS:
        print(f"argtrain: unknown subcommand '{name}'\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
