"""Known non-ARG relatives of the ARG references: Swiss-Prot non-ARGs that align to an ARG.

Whole proteomes are full of housekeeping relatives of ARGs (efflux pumps, PBPs, acetyltransferases)
whose nearest ARG reference is 20-60% identical. In the reference set, a protein's own kind from
another species (an ortholog at 60-90%) is nearer than any ARG, so the reference call says
non-ARG. The pool is the corpus's ``nonarg-extra.fasta`` (no antibiotic-related GO term, no ARG
hit at >= 30% identity), less the proteins the evidence rule is chosen on (argtrain.background),
kept when argserve-evidence aligns them to an ARG, then clustered (MMseqs2) so that the reference
set, which every query is aligned to, grows by representatives only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .background import unseen_of
from .evidence_tool import run_evidence_tool
from .homology import mmseqs_cluster
from .labelled import NONARG, LabelledProtein, read_labelled
from .references import Reference, build_references, references_tsv


def aligning_nonargs(arg_refs: Sequence[Reference], candidates: Sequence[Reference],
                     tool: str | Path, *, threads: int, max_evalue: float) -> list[Reference]:
    """The ``candidates`` (non-ARGs) with a hit among ``arg_refs`` within ``max_evalue``, in
    order: the non-ARG part of a reference set, and the hard negatives of fine-tuning."""
    taken = {r.id for r in arg_refs}
    clash = next((r.id for r in candidates if r.id in taken), None)
    if clash is not None:
        raise ValueError(f"reference id '{clash}' is both an ARG and a non-ARG")
    hits, _ = run_evidence_tool(tool, references_tsv(arg_refs),
                                [(r.id, r.residues) for r in candidates], threads, max_evalue)
    return [r for r in candidates if r.id in hits]


def nonarg_relatives(extra_fasta: str | Path, arg_refs: Sequence[Reference], tool: str | Path, *,
                     background_proteins: int, finetune_extra_max: int, finetune_seed: int,
                     cluster_identity: float, cluster_coverage: float, max_evalue: float,
                     threads: int = 2, nonarg_label: str = NONARG
                     ) -> tuple[list[LabelledProtein], dict]:
    """The representatives of the pool (in ``extra_fasta`` order) and counts of each step."""
    records = read_labelled(extra_fasta, nonarg_label)
    held = {r.id for r in unseen_of(records, background_proteins, finetune_extra_max,
                                    finetune_seed)}
    candidates = [r for r in records if r.id not in held and r.label == nonarg_label]
    found = {r.id for r in aligning_nonargs(
        arg_refs, build_references(candidates, nonarg_label, nonarg=True), tool,
        threads=threads, max_evalue=max_evalue)}
    aligned = [r for r in candidates if r.id in found]
    reps = set(mmseqs_cluster(((r.id, r.seq) for r in aligned), identity=cluster_identity,
                              coverage=cluster_coverage, threads=threads).values())
    kept = [r for r in aligned if r.id in reps]
    return kept, {"read": len(records), "left_out_as_background": len(held),
                  "aligned_to_an_arg": len(aligned), "representatives": len(kept)}
