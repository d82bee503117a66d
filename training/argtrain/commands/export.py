"""``argtrain export``: write the TorchScript artifact the server loads (see argtrain.export).

The model comes from a fine-tune checkpoint (``--checkpoint``) or is built with random weights
(``--random-init``, for tests and for wiring up the server before any training). ``--references``
stores a reference set of labelled ARG proteins, and the evidence thresholds, with it;
``--nonarg-references`` adds the non-ARG proteins of labelled files that align to one of those ARGs
(found with argserve-evidence), as references of the non-ARG class.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..classifier import HeadConfig
from ..esm2 import ESM2Config
from ..evidence import Thresholds
from ..evidence_tool import DEFAULT_TOOL
from ..export import export_model, fold_temperature, load_finetuned, model_json, random_model
from ..labelled import NONARG
from ..references import (FILE_NAME, read_references_fasta, read_shared_references,
                          references_json, references_tsv)
from ..relatives import aligning_nonargs
from ..runtime import set_threads
from .common import command_main
from .helpformat import HelpFormatter


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="argtrain export",
        description="Export a fine-tuned ARG classifier (or a random one) as the TorchScript artifact "
                    "the argserve server loads, with model.json stored inside it.",
        formatter_class=HelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="fine-tune checkpoint: a file, or the directory "
                     "'argtrain finetune' wrote (its best.pt is used)")
    src.add_argument("--random-init", action="store_true",
                     help="build a model with random weights (for tests and server wiring)")
    p.add_argument("--out", required=True, help="artifact path to write (e.g. model.pt)")
    p.add_argument("--name", default="argserve-default", help="model name in model.json")
    p.add_argument("--version", default=None,
                   help="model version in model.json (default: the checkpoint's date, or 0.0.0)")
    p.add_argument("--max-residues", type=int, default=None,
                   help="longest sequence the model accepts (default: the length the checkpoint "
                        "was calibrated at, else its training length, else 1022)")
    p.add_argument("--metrics-json", default=None,
                   help="JSON file (e.g. from 'argtrain evaluate') to store as model.json 'metrics'")
    p.add_argument("--num-threads", type=int, default=1, help="torch threads (0 = torch default)")
    p.add_argument("--check-sequences", type=int, default=8,
                   help="random sequences used to compare scripted and eager outputs")
    r = p.add_argument_group("reference set (stored as references.tsv; see docs/model-artifact.md)")
    r.add_argument("--references", nargs="+", metavar="FASTA", default=None,
                   help="labelled FASTA files ('>id|class'); their ARG records become the "
                        "reference set the server aligns every query against")
    r.add_argument("--nonarg-references", nargs="+", metavar="FASTA", default=None,
                   help="labelled FASTA files whose non-ARG records that align to one of the ARG "
                        "references (within --max-evalue) join the reference set as non-ARGs: "
                        "a protein nearest to one of them is not called an ARG by the reference")
    r.add_argument("--evidence-tool", type=Path, default=DEFAULT_TOOL,
                   help="argserve-evidence, which finds them (default: %(default)s)")
    r.add_argument("--evidence-threads", type=int, default=2, help="its threads")
    defaults = Thresholds()
    r.add_argument("--reference-min-identity", type=float,
                   default=defaults.reference_min_identity,
                   help="least identity (fraction) of a hit for the 'reference' tier")
    r.add_argument("--reference-min-coverage", type=float,
                   default=defaults.reference_min_coverage,
                   help="least fraction of the reference covered by a hit for the 'reference' tier")
    r.add_argument("--max-evalue", type=float, default=defaults.max_evalue,
                   help="largest e-value of an alignment that counts as a hit")
    r.add_argument("--homolog-min-arg-probability", type=float, default=None,
                   help="the 'homolog' tier: a hit to an ARG reference below the identity "
                        "threshold (coverage as above) decides when the model's P(ARG) reaches "
                        "this (default: no such tier)")
    r.add_argument("--novel-min-arg-probability", type=float, default=None,
                   help="the P(ARG) an ARG call needs when no reference aligns (default: the "
                        "model's own threshold)")
    g = p.add_argument_group("random init (with --random-init)")
    g.add_argument("--num-layers", type=int, default=2, help="transformer layers")
    g.add_argument("--embed-dim", type=int, default=32, help="model width")
    g.add_argument("--attention-heads", type=int, default=4, help="attention heads")
    g.add_argument("--classes", default=f"aminoglycoside,beta-lactam,tetracycline,{NONARG}",
                   help="comma-separated class names in logit order")
    g.add_argument("--nonarg-class", default=NONARG, help="name of the non-ARG class")
    g.add_argument("--seed", type=int, default=0, help="seed of the random weights and checks")
    return p


def _fix_hash_seed() -> None:
    """Re-run the CLI with PYTHONHASHSEED=0 so the artifact is byte-for-byte reproducible.

    TorchScript writes module constants in set order, which depends on string hashing; weights and
    model.json are identical either way. Only done for ``python3 -m argtrain`` (not when imported).
    """
    main_mod = sys.modules.get("__main__")
    spec = getattr(main_mod, "__spec__", None)
    if os.environ.get("PYTHONHASHSEED") == "0" or spec is None or spec.name != "argtrain.__main__":
        return
    env = dict(os.environ, PYTHONHASHSEED="0")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "argtrain", *sys.argv[1:]], env)


def main(argv: list[str]) -> int:
    return command_main("export", argv, parse_args, run, (ValueError, RuntimeError, OSError),
                        print_summary)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The options, then the process set-up that precedes any error handling: the hash seed
    (which may re-run the CLI) and the torch threads."""
    args = build_parser().parse_args(argv)
    _fix_hash_seed()
    set_threads(args.num_threads)
    return args


def print_summary(args: argparse.Namespace, result: tuple[dict, dict[str, float]]) -> None:
    meta, diffs = result
    size = os.path.getsize(args.out)
    print(f"wrote {args.out} ({size / 1e6:.2f} MB): {meta['name']} {meta['version']}, "
          f"classes={meta['classes']}, backbone={meta['backbone']['num_layers']}x"
          f"{meta['backbone']['embed_dim']}/{meta['backbone']['attention_heads']}h; "
          f"scripted-vs-eager max diff forward={diffs['forward']:.2e} embed={diffs['embed']:.2e}, "
          f"padding={diffs['padding']:.2e}")
    refs = meta.get("references")
    if refs:
        print(f"reference set: {refs['count']} proteins from {refs['source']} "
              f"(version {refs['version']})")


def served_length(ck: dict) -> int:
    """The default max_residues: the length the checkpoint was calibrated at, else its training
    length, else 1022."""
    calibrated = (ck.get("calibration") or {}).get("max_residues")
    return int(calibrated or ck.get("max_residues", 1022))


def run(args: argparse.Namespace) -> tuple[dict, dict[str, float]]:
    """Build or load the model, write the artifact; returns its model.json and the checks."""
    if args.random_init:
        classes = [c.strip() for c in args.classes.split(",") if c.strip()]
        if len(set(classes)) != len(classes) or not classes:
            raise ValueError(f"--classes must be distinct, non-empty names: {classes}")
        model = random_model(args.num_layers, args.embed_dim, args.attention_heads,
                             len(classes), args.seed)
        meta = model_json(
            name=args.name, version=args.version or "0.0.0", classes=classes,
            nonarg_class=args.nonarg_class, max_residues=args.max_residues or 1022,
            config=model.backbone.config, source="random", lora=None,
            training={"random_init": True, "seed": args.seed}, metrics=None)
    else:
        model, ck = load_finetuned(args.checkpoint)
        version = args.version or str(ck.get("created", "0.0.0"))[:10].replace("-", ".")
        meta = model_json(
            name=args.name, version=version, classes=list(ck["classes"]),
            nonarg_class=ck.get("nonarg_class") or args.nonarg_class,
            max_residues=args.max_residues or served_length(ck),
            config=ESM2Config.from_dict(ck["backbone_config"]),
            source=str(ck.get("backbone_source", "unknown")), lora=ck.get("lora"),
            training=ck.get("training"), metrics=ck.get("metrics"),
            calibration=ck.get("calibration"), head=HeadConfig.from_dict(ck.get("head")))
        if ck.get("calibration"):
            fold_temperature(model, float(ck["calibration"]["temperature"]))
    if args.metrics_json:
        meta["metrics"] = json.loads(Path(args.metrics_json).read_text())
    extra = add_references(meta, args) if args.references else {}
    return meta, export_model(model, meta, args.out, args.check_sequences, args.seed, extra)


def nonarg_relatives(arg_refs: list, args: argparse.Namespace, nonarg_class: str) -> list:
    """The non-ARG records of ``--nonarg-references`` with a hit among ``arg_refs``."""
    if not args.evidence_tool.is_file():
        raise ValueError(f"--nonarg-references needs {args.evidence_tool} "
                         f"(bash scripts/build.sh builds it; or give --evidence-tool)")
    candidates = read_shared_references(args.nonarg_references, nonarg_class, nonarg=True)
    return aligning_nonargs(arg_refs, candidates, args.evidence_tool,
                            threads=args.evidence_threads, max_evalue=args.max_evalue)


def add_references(meta: dict, args: argparse.Namespace) -> dict[str, str]:
    """Fill model.json ``references`` and ``evidence``; returns the extra file to store."""
    thresholds = Thresholds(args.reference_min_identity, args.reference_min_coverage,
                            args.max_evalue, args.homolog_min_arg_probability,
                            args.novel_min_arg_probability)
    refs = read_references_fasta(args.references, meta["nonarg_class"])
    source = ", ".join(args.references)
    if args.nonarg_references:
        relatives = nonarg_relatives(refs, args, meta["nonarg_class"])
        print(f"argtrain export: {len(relatives)} non-ARG references (of the non-ARGs of "
              f"{', '.join(args.nonarg_references)}, those aligning to an ARG reference)",
              file=sys.stderr)
        refs += relatives
        source += f"; non-ARG relatives from {', '.join(args.nonarg_references)}"
    text = references_tsv(refs)
    meta["references"] = references_json(text, len(refs), source)
    meta["evidence"] = thresholds.to_json()
    # A reference call gives the reference's class, which the model itself could never give.
    unknown = sorted({r.label for r in refs} - set(meta["classes"]))
    if unknown:
        print(f"argtrain export: note: reference classes not among the model's classes: "
              f"{unknown}", file=sys.stderr)
    return {FILE_NAME: text}
