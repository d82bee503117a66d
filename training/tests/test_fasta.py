import gzip

import pytest

from argtrain.fasta import FastaError, read_fasta, write_fasta


def test_read_multiline_blank_lines_and_case(tmp_path):
    p = tmp_path / "a.fasta"
    p.write_text(">seq1 first record\nACGT\nacgt\n\n>seq2\n  MK L \n;comment\n>empty\n")
    assert list(read_fasta(p)) == [("seq1 first record", "ACGTacgt"), ("seq2", "MKL"),
                                   ("empty", "")]


def test_read_gzip_detected_by_content(tmp_path):
    p = tmp_path / "a.txt"  # no .gz suffix on purpose
    with gzip.open(p, "wt") as fh:
        fh.write(">x\nMKV\n>y\nAAA\n")
    assert list(read_fasta(p)) == [("x", "MKV"), ("y", "AAA")]


def test_windows_line_endings(tmp_path):
    p = tmp_path / "a.fasta"
    p.write_bytes(b">x\r\nMK\r\nV\r\n")
    assert list(read_fasta(p)) == [("x", "MKV")]


@pytest.mark.parametrize("text,line,message", [
    ("MKV\n>x\nAAA\n", 1, "before the first"),
    (">x\nAAA\n>\nMK\n", 3, "empty FASTA header"),
    (">x\nAA>A\n", 2, "'>' inside"),
])
def test_malformed_input_names_file_and_line(tmp_path, text, line, message):
    p = tmp_path / "bad.fasta"
    p.write_text(text)
    with pytest.raises(FastaError) as err:
        list(read_fasta(p))
    assert err.value.line == line
    assert str(err.value).startswith(f"{p}:{line}:")
    assert message in str(err.value)


def test_empty_record_rejected_when_asked(tmp_path):
    p = tmp_path / "a.fasta"
    p.write_text(">x\n>y\nMK\n")
    with pytest.raises(FastaError, match=r":1: record 'x' has no sequence"):
        list(read_fasta(p, allow_empty=False))


def test_binary_input_is_an_error(tmp_path):
    p = tmp_path / "a.fasta"
    p.write_bytes(b">x\nMK\n\xff\xfe\n")
    with pytest.raises(FastaError, match="not UTF-8"):
        list(read_fasta(p))


def test_write_roundtrip_plain_and_gzip_is_deterministic(tmp_path):
    recs = [("a|x", "M" * 130), ("b|y", "KV")]
    assert write_fasta(tmp_path / "o.fasta", recs, width=60) == 2
    lines = (tmp_path / "o.fasta").read_text().splitlines()
    assert lines[:4] == [">a|x", "M" * 60, "M" * 60, "M" * 10]
    assert list(read_fasta(tmp_path / "o.fasta")) == recs
    write_fasta(tmp_path / "o1.fasta.gz", recs)
    write_fasta(tmp_path / "o2.fasta.gz", recs)
    assert (tmp_path / "o1.fasta.gz").read_bytes() == (tmp_path / "o2.fasta.gz").read_bytes()
    assert list(read_fasta(tmp_path / "o1.fasta.gz")) == recs
    with pytest.raises(ValueError, match="line break"):
        write_fasta(tmp_path / "bad.fasta", [("a\nb", "MK")])
