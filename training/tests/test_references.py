"""The reference set stored in the artifact as references.tsv (docs/model-artifact.md)."""

import hashlib

import pytest

from argtrain import references as rf
from argtrain.fasta import write_fasta
from argtrain.labelled import LabelledProtein


@pytest.mark.parametrize("record_id, gene, accession", [
    ("blaOXA-48_1_AY236073", "blaOXA-48", "AY236073"),
    ("aac(6')-Ib-cr_1_DQ303918", "aac(6')-Ib-cr", "DQ303918"),
    ("blaCTX-M-15_23_NG_047525", "blaCTX-M-15", "NG_047525"),
    ("tet(M)_12_X90939", "tet(M)", "X90939"),
    ("P12345", "P12345", ""),
    ("gene_x_ABC", "gene_x_ABC", ""),
    ("_1_", "_1_", ""),
])
def test_gene_and_accession(record_id, gene, accession):
    assert rf.gene_and_accession(record_id) == (gene, accession)


def _rec(rid, label, seq="MKV"):
    return LabelledProtein(rid, seq, label)


def test_build_keeps_arg_records_in_order_and_cleans_residues():
    refs = rf.build_references([_rec("b_1_X1", "beta-lactam", "mkvl*"), _rec("n1", "nonarg"),
                                _rec("a_2_Y_2", "aminoglycoside", "ACD")])
    assert refs == [rf.Reference("b_1_X1", "b", "X1", "beta-lactam", "MKVL"),
                    rf.Reference("a_2_Y_2", "a", "Y_2", "aminoglycoside", "ACD")]
    text = rf.references_tsv(refs)
    assert text == ("id\tgene\taccession\tclass\tresidues\n"
                    "b_1_X1\tb\tX1\tbeta-lactam\tMKVL\n"
                    "a_2_Y_2\ta\tY_2\taminoglycoside\tACD\n")
    assert rf.parse_references_tsv(text) == refs


def test_build_errors_name_the_record():
    with pytest.raises(rf.ReferenceError, match="'x' occurs more than once"):
        rf.build_references([_rec("x", "a"), _rec("y", "a"), _rec("x", "b")])
    # A duplicate among non-ARGs is not a reference and does not matter.
    assert len(rf.build_references([_rec("n", "nonarg"), _rec("n", "nonarg"), _rec("x", "a")])) == 1
    with pytest.raises(rf.ReferenceError, match="'e' has no residues"):
        rf.build_references([_rec("e", "a", "*")])
    with pytest.raises(rf.ReferenceError, match="'e' has no residues"):
        rf.build_references([_rec("e", "a", "")])
    with pytest.raises(rf.ReferenceError, match=r"'s': residue 3 is '\*', not a letter"):
        rf.build_references([_rec("s", "a", "MK*V*")])
    with pytest.raises(rf.ReferenceError, match="'t': its residues contains a tab"):
        rf.build_references([_rec("t", "a", "MK\tV")])
    with pytest.raises(rf.ReferenceError, match="'t': its class contains a tab"):
        rf.build_references([_rec("t", "be\nta")])
    with pytest.raises(rf.ReferenceError, match="its id contains a tab"):
        rf.build_references([_rec("t\tu", "a")])


def test_read_references_fasta(tmp_path):
    write_fasta(tmp_path / "a.fasta", [("blaOXA-48_1_AY236073|beta-lactam", "MKIL*"),
                                       ("n1|nonarg", "MAAA")])
    write_fasta(tmp_path / "b.fasta", [("tetM|tetracycline", "mwww")])
    refs = rf.read_references_fasta([tmp_path / "a.fasta", tmp_path / "b.fasta"])
    assert [(r.id, r.gene, r.accession, r.label, r.residues) for r in refs] == [
        ("blaOXA-48_1_AY236073", "blaOXA-48", "AY236073", "beta-lactam", "MKIL"),
        ("tetM", "tetM", "", "tetracycline", "MWWW")]
    with pytest.raises(rf.ReferenceError, match="'tetM' occurs more than once"):
        rf.read_references_fasta([tmp_path / "b.fasta", tmp_path / "b.fasta"])
    write_fasta(tmp_path / "n.fasta", [("n1|nonarg", "MAAA")])
    with pytest.raises(rf.ReferenceError, match="no ARG records"):
        rf.read_references_fasta([tmp_path / "n.fasta"])


def test_references_json():
    text = "id\tgene\taccession\tclass\tresidues\nx\tx\t\ta\tMK\n"
    meta = rf.references_json(text, 1, "train.fasta")
    digest = hashlib.sha256(text.encode()).hexdigest()
    assert meta == {"file": "references.tsv", "count": 1, "sha256": digest,
                    "source": "train.fasta", "version": digest[:12]}


def test_parse_references_tsv_checks_the_header():
    with pytest.raises(rf.ReferenceError, match="first line"):
        rf.parse_references_tsv("id\tgene\n")
    with pytest.raises(rf.ReferenceError, match=":2: 3 fields"):
        rf.parse_references_tsv(rf.HEADER + "\na\tb\tc\n")
