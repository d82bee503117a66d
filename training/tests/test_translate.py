from collections import Counter

import pytest

from argtrain.translate import CODON_TABLE, START_CODONS, STOP_CODONS, translate_cds


def test_table_11_codons_and_starts():
    assert len(CODON_TABLE) == 64
    assert STOP_CODONS == {"TAA", "TAG", "TGA"}
    assert START_CODONS == {"TTG", "CTG", "ATT", "ATC", "ATA", "ATG", "GTG"}
    assert CODON_TABLE["TGG"] == "W" and CODON_TABLE["GTG"] == "V" and CODON_TABLE["TTG"] == "L"


def test_standard_translation_and_terminal_stop_removed():
    t = translate_cds("ATGAAAGCTTGGTAA")
    assert t.ok and t.protein == "MKAW" and t.terminal_stop and t.start_codon == "ATG"


@pytest.mark.parametrize("start", ["GTG", "TTG", "CTG", "ATT", "ATC", "ATA"])
def test_alternative_start_codon_translates_to_methionine_only_at_position_1(start):
    t = translate_cds(start + "AAA" + start + "TAG")
    assert t.protein == "MK" + CODON_TABLE[start]  # the internal copy keeps its amino acid
    assert t.start_codon == start


def test_non_start_first_codon_is_translated_normally():
    assert translate_cds("AAAGTGTGA").protein == "KV"


def test_missing_terminal_stop_is_accepted():
    t = translate_cds("ATGAAA")
    assert t.protein == "MK" and not t.terminal_stop


def test_lower_case_rna_and_whitespace():
    assert translate_cds("aug aaa\nuaa").protein == "MK"


@pytest.mark.parametrize("seq,reason", [
    ("", "empty"),
    ("TAA", "empty"),
    ("ATGAAATGAAAATAA", "internal_stop"),
    ("ATGAAAAT", "length_not_multiple_of_3"),
    ("ATGNAATAA", "ambiguous_nucleotide"),
    ("ATGRAATAA", "ambiguous_nucleotide"),
    ("ATGXAATAA", "invalid_character"),
])
def test_qc_reasons(seq, reason):
    t = translate_cds(seq)
    assert not t.ok and t.protein is None and t.reason == reason


def test_internal_stop_detail_names_codon_and_position():
    t = translate_cds("ATGAAATAGAAATAA")
    assert t.detail == "stop codon TAG at codon 3"


def test_qc_counts_on_a_small_hand_made_set():
    records = {
        "ok_atg": "ATGGCTAAATAA",
        "ok_gtg": "GTGGCTAAATGA",
        "ok_ttg_nostop": "TTGGCT",
        "internal": "ATGTAAGCTTAA",
        "frameshift": "ATGGCTAATAA",
        "ambiguous": "ATGGCNAAATAA",
        "empty": "",
    }
    results = {k: translate_cds(v) for k, v in records.items()}
    reasons = Counter(r.reason for r in results.values())
    assert reasons == {None: 3, "internal_stop": 1, "length_not_multiple_of_3": 1,
                       "ambiguous_nucleotide": 1, "empty": 1}
    assert {k: r.protein for k, r in results.items() if r.ok} == {
        "ok_atg": "MAK", "ok_gtg": "MAK", "ok_ttg_nostop": "MA"}
