import pytest
import torch

from argtrain import alphabet
from argtrain.alphabet import TokenizationError, batch_encode, clean_sequence, encode, pad_batch

OFFICIAL = ["<cls>", "<pad>", "<eos>", "<unk>", "L", "A", "G", "V", "S", "E", "R", "T", "I", "D",
            "P", "K", "Q", "N", "F", "Y", "M", "H", "W", "C", "X", "B", "U", "Z", "O", ".", "-",
            "<null_1>", "<mask>"]


def test_alphabet_is_the_official_order():
    assert alphabet.ALPHABET == OFFICIAL
    assert alphabet.SPECIAL_TOKENS == {"cls": 0, "pad": 1, "eos": 2, "unk": 3, "mask": 32}
    assert alphabet.RESIDUES == "ACDEFGHIKLMNPQRSTVWYXBUZO"
    assert all(OFFICIAL[alphabet.RESIDUE_INDEX[r]] == r for r in alphabet.RESIDUES)


def test_encode_adds_cls_and_eos_and_uppercases():
    assert encode("mka") == [0, OFFICIAL.index("M"), OFFICIAL.index("K"), OFFICIAL.index("A"), 2]
    assert encode("MKA") == encode("mKa")


def test_single_trailing_stop_is_removed():
    assert encode("MKA*") == encode("MKA")
    assert clean_sequence("mka*") == "MKA"


def test_two_trailing_stops_are_an_internal_stop():
    with pytest.raises(TokenizationError, match=r"position 4"):
        encode("MKA**")


def test_internal_stop_is_an_error_with_position():
    with pytest.raises(TokenizationError, match=r"internal stop.*position 3"):
        encode("MK*A")


@pytest.mark.parametrize("seq,char,pos", [("MKJ", "J", 3), ("M1", "1", 2), ("ab c", " ", 3),
                                          ("MK.", ".", 3), ("-MK", "-", 1)])
def test_invalid_character_names_char_and_position(seq, char, pos):
    with pytest.raises(TokenizationError) as e:
        encode(seq)
    assert repr(char) in str(e.value) and f"position {pos}" in str(e.value)


@pytest.mark.parametrize("seq", ["", "*"])
def test_empty_is_an_error(seq):
    with pytest.raises(TokenizationError, match="empty"):
        encode(seq)


def test_all_residues_are_accepted():
    ids = encode(alphabet.RESIDUES.lower())
    assert ids[1:-1] == [OFFICIAL.index(c) for c in alphabet.RESIDUES]


def test_max_residues_keeps_the_first_residues():
    assert encode("MKVLA", max_residues=2) == encode("MK")


def test_pad_batch_right_pads():
    t = batch_encode(["MK", "MKVL"])
    assert t.dtype == torch.int64 and t.shape == (2, 6)
    assert t[0].tolist() == encode("MK") + [1, 1]
    assert t[1].tolist() == encode("MKVL")
    assert pad_batch([[0, 5, 2]], pad_to=5).tolist() == [[0, 5, 2, 1, 1]]


def test_rejections_name_their_rule_and_the_allowed_residues_can_be_given():
    reasons = {}
    for seq in ("*", "MK*V", "MKJ"):
        with pytest.raises(TokenizationError) as e:
            clean_sequence(seq)
        reasons[seq] = e.value.reason
    assert reasons == {"*": "empty", "MK*V": "internal_stop", "MKJ": "invalid_character"}
    assert clean_sequence("mkv*", residues=frozenset("MKV")) == "MKV"
    with pytest.raises(TokenizationError, match=r"'A' at position 3"):
        clean_sequence("MKA", residues=frozenset("MKV"))
