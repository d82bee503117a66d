import json
import random
import shutil

import pytest
from synthdata import family, mutate, random_protein

from argtrain import corpus
from argtrain.commands import corpus as corpus_cmd
from argtrain.fasta import read_fasta, write_fasta

needs_diamond = pytest.mark.skipif(shutil.which("diamond") is None,
                                   reason="diamond (Debian package diamond-aligner) not installed")


def test_collect_cleans_dedupes_and_keeps_go_terms():
    records = [("P1|GO:0046677,GO:0008150", "mkv" + "a" * 40 + "*"), ("P2|GO:0003674", "M" + "A" * 40 + "K"),
               ("P3|", "MKVA" + "A" * 40), ("P4", "MK"), ("P5", "MK*V" + "A" * 40),
               ("P6", "MKV" + "A" * 40)]
    kept, counts, go = corpus.collect([("swissprot", iter(records))], min_length=30)
    assert [k for k, _ in kept] == ["P1", "P2", "P3"]
    assert kept[0][1] == "MKV" + "A" * 40
    assert counts["swissprot"] == {"read": 6, "kept": 3, "dropped_short": 1,
                                   "dropped_internal_stop": 1, "dropped_duplicate": 1}
    assert go[0] == {"GO:0046677", "GO:0008150"} and go[2] == frozenset()


@needs_diamond
def test_relatives_of_held_out_proteins_are_removed(tmp_path):
    rng = random.Random(3)
    held_family = family(rng, 4, 200, rate=0.15)      # ~85% identical to each other
    other = [random_protein(rng, 200) for _ in range(20)]
    fragment = held_family[1][20:140]                  # half of a relative
    held_out = [("t1", held_family[0])]
    pool = [("rel1", held_family[1]), ("rel2", held_family[2]), ("frag", fragment),
            ("same", held_family[0])] + [(f"o{i}", s) for i, s in enumerate(other)]
    removed = corpus.relatives_of(pool, held_out, identity=40, coverage=50, threads=1)
    assert {pool[i][0] for i in removed} == {"rel1", "rel2", "frag", "same"}


@needs_diamond
def test_corpus_command_writes_splits_nonargs_and_manifest(tmp_path):
    rng = random.Random(5)
    arg_family = family(rng, 6, 180, rate=0.1)
    test_family = family(rng, 5, 160, rate=0.1)
    proteins = [(f"n{i}|nonarg", random_protein(rng, rng.randint(60, 200))) for i in range(60)]
    write_fasta(tmp_path / "train.fasta", proteins + [(f"a{i}|beta-lactam", s)
                                                      for i, s in enumerate(arg_family[:4])]
                + [(f"t{i}|nonarg", s) for i, s in enumerate(test_family[1:])])
    write_fasta(tmp_path / "test.fasta", [("t0|nonarg", test_family[0]),
                                          ("a9|beta-lactam", arg_family[5])])
    out = tmp_path / "corpus"
    rc = corpus_cmd.main(["--out", str(out), "--swissprot", "",
                          "--include", str(tmp_path / "train.fasta"),
                          "--exclude-like", str(tmp_path / "test.fasta"), "--valid-size", "5",
                          "--threads", "1"])
    assert rc == 0
    train = [s for _, s in read_fasta(out / "train.fasta")]
    valid = [s for _, s in read_fasta(out / "valid.fasta")]
    assert len(valid) == 5 and not set(train) & set(valid)
    # Relatives of both test proteins are gone (the ARG family's too: a9 is a test protein).
    assert not set(train + valid) & (set(test_family) | set(arg_family))
    assert len(train) + len(valid) == 60
    m = json.loads((out / "manifest.json").read_text())
    assert m["removed_as_relatives"] == 8 and m["held_out"]["proteins"] == 2
    assert m["train"]["proteins"] == 55 and len(m["train"]["sha256"]) == 64


def test_extra_nonargs_exclude_antibiotic_go_terms_and_arg_homologs(tmp_path, monkeypatch):
    rng = random.Random(7)
    arg = random_protein(rng, 150)
    records = [("S1|GO:0046677", random_protein(rng, 100)), ("S2|GO:0003674", mutate(rng, arg, 0.1)),
               ("S3|GO:0003674", random_protein(rng, 100))]
    kept, _, go = corpus.collect([("swissprot", iter(records))], 30)
    write_fasta(tmp_path / "args.fasta", [("a1|beta-lactam", arg), ("n1|nonarg", kept[2][1])])
    args = corpus_cmd.parse_args(["--out", str(tmp_path), "--exclude-like", "x", "--arg-reference",
                                  str(tmp_path / "args.fasta"), "--threads", "1"])
    opts = corpus_cmd.options(args)
    if shutil.which("diamond") is None:
        monkeypatch.setattr(corpus, "relatives_of", lambda c, r, **kw: {1})
    info = corpus.write_extra_nonargs(opts, kept, go, [0, 1, 2])
    assert info["removed_by_go_term"] == 1 and info["removed_as_arg_homologs"] == 1
    assert info["arg_reference_proteins"] == 1
    assert [h for h, _ in read_fasta(tmp_path / "nonarg-extra.fasta")] == ["S3|nonarg"]
