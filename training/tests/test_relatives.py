"""Known non-ARG relatives for the reference set (argtrain relatives)."""

import random
import shutil

import pytest

from argtrain.background import unseen_background
from argtrain.commands import relatives as relatives_cmd
from argtrain.evidence_tool import HEADER as EVIDENCE_HEADER
from argtrain.labelled import read_labelled

from fakeevidence import fake_tool

needs_mmseqs = pytest.mark.skipif(shutil.which("mmseqs") is None,
                                  reason="mmseqs (Debian package mmseqs2) not installed")


def _protein(rng):
    return "M" + "".join(rng.choice("ACDEFGHIKLMNPQRSTVWY") for _ in range(120))


def _write(path, proteins):
    path.write_text("".join(f">P{i:05d}|nonarg\n{p}\n" for i, p in enumerate(proteins)))


@needs_mmseqs
def test_relatives_keep_aligned_non_args_outside_the_background_once_per_cluster(tmp_path):
    rng = random.Random(3)
    extra = tmp_path / "nonarg-extra.fasta"
    proteins = [_protein(rng) for _ in range(40)]
    _write(extra, proteins)
    background = {r.id for r in unseen_background(extra, 10, 20, 42)}
    outside = [i for i in range(40) if f"P{i:05d}" not in background]
    first, copy = outside[0], outside[1]
    proteins[copy] = proteins[first]  # one cluster: one of the two is kept
    _write(extra, proteins)  # same ids, so the same background
    aligned = [i for i in outside if i % 2 == 0 or i in (first, copy)]
    tool = fake_tool(tmp_path, EVIDENCE_HEADER + "\n" + "".join(
        f"P{i:05d}\ttet_1_X\ttet\tX\ttetracycline\t0.25\t0.9\t0.9\t80\t35.0\t1e-8" + "\t" * 10 + "\n"
        for i in aligned))
    args = tmp_path / "args.fasta"
    args.write_text(">tet_1_X|tetracycline\n" + _protein(rng) + "\n")
    out = tmp_path / "relatives.fasta"
    # The same ARG in two files (splits of one data set share proteins) is one reference.
    assert relatives_cmd.main(["--extra", str(extra), "--arg-reference", str(args), str(args),
                               "--background-proteins", "10", "--finetune-extra-max", "20",
                               "--finetune-seed", "42", "--evidence-tool", str(tool),
                               "--threads", "1", "--out", str(out)]) == 0
    kept = read_labelled(out)
    assert {r.label for r in kept} == {"nonarg"}
    # The background the rule is chosen on is neither searched nor kept.
    queried = (tmp_path / "seen_queries.fasta").read_text()
    assert not any(f">{b}\n" in queried for b in background)
    assert queried.count(">") == len(outside)
    ids = [r.id for r in kept]
    pair = {f"P{first:05d}", f"P{copy:05d}"}
    assert len(pair & set(ids)) == 1  # MMseqs2 picks which copy represents the cluster
    assert ids == [f"P{i:05d}" for i in aligned if f"P{i:05d}" not in pair - set(ids)]


def test_relatives_need_the_aligner(tmp_path, capsys):
    extra = tmp_path / "e.fasta"
    extra.write_text(">P1|nonarg\nMKV\n")
    assert relatives_cmd.main(["--extra", str(extra), "--arg-reference", str(extra),
                               "--evidence-tool", str(tmp_path / "missing"),
                               "--out", str(tmp_path / "o.fasta")]) == 1
    assert f"{tmp_path / 'missing'} not found" in capsys.readouterr().err
