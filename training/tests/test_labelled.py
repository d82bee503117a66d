import pytest

from argtrain.fasta import write_fasta
from argtrain.labelled import DatasetError, parse_labelled_header, read_labelled


@pytest.mark.parametrize("header,expected", [
    ("abc|beta-lactam", ("abc", "beta-lactam")),
    ("ID1|CARD|tetM|tetracycline", ("ID1", "tetracycline")),
    ("ID2|source|gene|beta_lactam some comment", ("ID2", "beta_lactam")),
    ("sp|P0A0B7|NAME_STAAU Some protein OS=Staph", ("P0A0B7", "nonarg")),
    ("tr|Q9XYZ1|Q9XYZ1_ECOLI Uncharacterized", ("Q9XYZ1", "nonarg")),
    ("a b|c", None),  # only the first word is parsed: 'a' has no class field
    ("justanid", None),
    ("id|", None),
])
def test_user_header_formats(header, expected):
    if expected is None:
        with pytest.raises(DatasetError, match="expected 'id|class'"):
            parse_labelled_header(header)
    else:
        assert parse_labelled_header(header) == expected


def test_uniprot_prefixes_configurable():
    assert parse_labelled_header("sp|X|y|macrolide", uniprot_prefixes=()) == ("sp", "macrolide")



def test_read_labelled_keeps_sequences_as_read_and_names_the_file_on_errors(tmp_path):
    path = tmp_path / "mine.fasta"
    write_fasta(path, [("a1|src|beta-lactam", "mkv*"), ("sp|P1|X_HUMAN Protein", "MKV")])
    recs = read_labelled(path)
    assert [(r.id, r.seq, r.label) for r in recs] == [("a1", "mkv*", "beta-lactam"),
                                                     ("P1", "MKV", "nonarg")]
    assert recs[1].header == "sp|P1|X_HUMAN Protein"
    write_fasta(path, [("noclass", "MKV")])
    with pytest.raises(DatasetError, match=r"mine\.fasta: header 'noclass'"):
        read_labelled(path)
