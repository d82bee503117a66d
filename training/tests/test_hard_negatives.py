"""Hard negatives for fine-tuning: the non-ARGs that align to a split's ARGs
(argtrain hard-negatives)."""

import random

from argtrain.commands import hard_negatives as hard_cmd
from argtrain.evidence_tool import HEADER as EVIDENCE_HEADER
from argtrain.labelled import read_labelled

from fakeevidence import fake_tool


def _protein(rng):
    return "M" + "".join(rng.choice("ACDEFGHIKLMNPQRSTVWY") for _ in range(80))


def _hit(query):
    fields = f"{query}\ttet_1_X\ttet\tX\ttetracycline\t0.25\t0.9\t0.9\t80\t35.0\t1e-8"
    return fields + "\t" * 10 + "\n"


def test_keeps_the_non_args_that_align_to_an_arg_in_order(tmp_path):
    rng = random.Random(5)
    train = tmp_path / "train.fasta"
    train.write_text(f">tet_1_X|tetracycline\n{_protein(rng)}\n>N1|nonarg\n{_protein(rng)}\n"
                     f">N2|nonarg\n{_protein(rng)}\n")
    relatives = tmp_path / "relatives.fasta"
    relatives.write_text("".join(f">R{i}|nonarg\n{_protein(rng)}\n" for i in range(4)))
    tool = fake_tool(tmp_path, EVIDENCE_HEADER + "\n" + _hit("R3") + _hit("N2") + _hit("R0"))
    out = tmp_path / "hard.fasta"
    assert hard_cmd.main(["--arg-reference", str(train), "--candidates", str(train),
                          str(relatives), "--evidence-tool", str(tool), "--threads", "1",
                          "--out", str(out)]) == 0
    kept = read_labelled(out)
    assert [(r.id, r.label) for r in kept] == [("N2", "nonarg"), ("R0", "nonarg"),
                                               ("R3", "nonarg")]
    # Every non-ARG candidate is aligned, no ARG is.
    queried = (tmp_path / "seen_queries.fasta").read_text()
    assert queried.count(">") == 6 and ">tet_1_X\n" not in queried


def test_missing_tool_is_a_clear_error(tmp_path, capsys):
    train = tmp_path / "train.fasta"
    train.write_text(">tet_1_X|tetracycline\nMKV\n")
    rc = hard_cmd.main(["--arg-reference", str(train), "--candidates", str(train),
                        "--evidence-tool", str(tmp_path / "none"), "--out", str(tmp_path / "o")])
    assert rc != 0 and "none" in capsys.readouterr().err
