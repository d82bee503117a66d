import json
import random
import shutil
from collections import Counter, defaultdict

import pytest
from synthdata import back_translate, family, mutate, random_protein

from argtrain.dataset.build import BuildOptions, build
from argtrain.dataset.curation import dedupe, resolve_conflicts, unique_ids
from argtrain.dataset.sources import Record, clean_protein
from argtrain.dataset.split import apportion, split_clusters, split_random
from argtrain.fasta import read_fasta, write_fasta
from argtrain.labelled import DatasetError, sanitize_id
from argtrain.provenance import sha256_file

needs_diamond = pytest.mark.skipif(shutil.which("diamond") is None,
                                   reason="diamond (Debian package diamond-aligner) not installed")
needs_mmseqs = pytest.mark.skipif(shutil.which("mmseqs") is None,
                                  reason="mmseqs (Debian package mmseqs2) not installed")


# --- pure functions ---------------------------------------------------------------------------

def test_clean_protein_rules():
    assert clean_protein("mkv*") == ("MKV", None)
    assert clean_protein("MK*V") == (None, "internal_stop")
    assert clean_protein("MKJ") == (None, "invalid_character")
    assert clean_protein("*") == (None, "empty")
    assert clean_protein("MXBUZO") == ("MXBUZO", None)


def test_sanitize_and_unique_ids():
    assert sanitize_id("aac(6')-Ib|x y") == "aac(6')-Ib_x"
    recs = [Record("a", "x", "M", "t"), Record("a", "y", "K", "t"), Record("a", "z", "V", "t")]
    unique_ids(recs)
    assert [r.id for r in recs] == ["a", "a~2", "a~3"]


def _recs(*specs):
    return [Record(i, label, seq, "test") for i, label, seq in specs]


def test_dedupe_merges_copies_and_finds_conflicts():
    recs = _recs(("a1", "A", "MKV"), ("a2", "A", "MKV"), ("b1", "B", "MKV"), ("a3", "A", "MLL"),
                 ("b2", "B", "MWW"), ("b3", "B", "MWW"))
    unique, conflicts, stats = dedupe(recs)
    assert sorted(r.id for r in unique) == ["a3", "b2"]
    assert next(r for r in unique if r.id == "b2").aliases == ["b3"]
    assert len(conflicts) == 1 and sorted(r.label for r in conflicts[0]) == ["A", "B"]
    assert stats == {"input": 6, "unique_proteins": 3, "identical_copies_merged": 2,
                     "proteins_with_conflicting_labels": 1}


def _conflict_fixture():
    # Class A has 3 unique proteins, B has 2: the conflicting protein X is in A and B.
    recs = _recs(("a1", "A", "MA"), ("a2", "A", "MC"), ("a3", "A", "MD"), ("b1", "B", "ME"),
                 ("b2", "B", "MF"), ("xa", "A", "MX"), ("xb", "B", "MX"))
    return dedupe(recs)


def test_conflict_rule_largest_and_drop():
    unique, conflicts, _ = _conflict_fixture()
    added, decisions = resolve_conflicts(unique, conflicts, "largest")
    assert [(r.id, r.label) for r in added] == [("xa", "A")]
    assert decisions[0]["chosen"] == "A" and decisions[0]["candidates"] == ["A", "B"]
    assert added[0].aliases == ["xb"]
    unique, conflicts, _ = _conflict_fixture()
    added, decisions = resolve_conflicts(unique, conflicts, "drop")
    assert added == [] and decisions[0]["chosen"] is None


def test_conflict_rule_nearest_uses_hit_label_and_falls_back_to_largest():
    unique, conflicts, _ = _conflict_fixture()
    added, decisions = resolve_conflicts(unique, conflicts, "nearest",
                                         nearest=lambda q, refs: {q[0].id: "B"})
    assert [(r.id, r.label) for r in added] == [("xb", "B")]
    assert "best DIAMOND hit" in decisions[0]["why"]
    unique, conflicts, _ = _conflict_fixture()
    # A hit whose class is not a candidate is not informative: largest candidate wins.
    added, decisions = resolve_conflicts(unique, conflicts, "nearest",
                                         nearest=lambda q, refs: {q[0].id: "C"})
    assert [(r.id, r.label) for r in added] == [("xa", "A")]
    assert "largest" in decisions[0]["why"]


def test_apportion_largest_remainder():
    assert apportion(10, (0.8, 0.1, 0.1)) == [8, 1, 1]
    assert apportion(3, (0.8, 0.1, 0.1)) == [3, 0, 0]
    assert apportion(7, (0.8, 0.1, 0.1)) == [5, 1, 1]
    assert apportion(0, (0.8, 0.1, 0.1)) == [0, 0, 0]
    assert all(sum(apportion(n, (0.7, 0.2, 0.1))) == n for n in range(50))


def test_split_random_is_stratified_and_seeded():
    recs = [Record(f"a{i}", "A", "M", "t") for i in range(50)] + \
           [Record(f"b{i}", "B", "M", "t") for i in range(10)]
    s1 = split_random(recs, (0.8, 0.1, 0.1), seed=1)
    assert s1 == split_random(recs, (0.8, 0.1, 0.1), seed=1)
    assert s1 != split_random(recs, (0.8, 0.1, 0.1), seed=2)
    counts = Counter((r.label, s1[r.id]) for r in recs)
    assert counts == {("A", "train"): 40, ("A", "valid"): 5, ("A", "test"): 5,
                      ("B", "train"): 8, ("B", "valid"): 1, ("B", "test"): 1}


def test_split_clusters_keeps_clusters_whole_and_balances_classes():
    rng = random.Random(0)
    recs, member_to_rep = [], {}
    for label, n_clusters in (("A", 30), ("B", 10), ("nonarg", 200)):
        for c in range(n_clusters):
            size = rng.randint(1, 6)
            for m in range(size):
                rid = f"{label}{c}_{m}"
                recs.append(Record(rid, label, "M", "t"))
                member_to_rep[rid] = f"{label}{c}_0"
    assign = split_clusters(recs, member_to_rep, (0.8, 0.1, 0.1), seed=3)
    assert assign == split_clusters(recs, member_to_rep, (0.8, 0.1, 0.1), seed=3)
    splits_of_cluster = defaultdict(set)
    for r in recs:
        splits_of_cluster[member_to_rep[r.id]].add(assign[r.id])
    assert all(len(s) == 1 for s in splits_of_cluster.values())
    for label in ("A", "B", "nonarg"):
        n = sum(r.label == label for r in recs)
        per = Counter(assign[r.id] for r in recs if r.label == label)
        assert set(per) == {"train", "valid", "test"}
        assert abs(per["train"] / n - 0.8) < 0.12


# --- builds on a synthetic ResFinder + UniProt ---------------------------------------------


@pytest.fixture(scope="module")
def synthetic_sources(tmp_path_factory):
    """ResFinder-like dir with 2 classes, 3 families each, plus QC failures, a within-class
    duplicate and one cross-class conflict; a UniProt-like sample with unrelated proteins, an ARG
    homolog, an exact ARG copy, a keyword hit, an invalid protein and a duplicate."""
    rng = random.Random(7)
    root = tmp_path_factory.mktemp("sources")
    db = root / "resfinder"
    db.mkdir()
    (db / "config").write_text("#db_prefix\tname\tdescription\n"
                               "alpha\tAlpha\tAlpha drugs\nbeta\tBeta\tBeta drugs\n")
    fams = {label: [family(rng, 4, 150) for _ in range(3)] for label in ("alpha", "beta")}
    conflict = random_protein(rng, 150)
    alpha = [(f"alpha{f}_{m}_ACC", back_translate(p)) for f, fam in enumerate(fams["alpha"])
             for m, p in enumerate(fam)]
    alpha[0] = (alpha[0][0], "GTG" + alpha[0][1][3:])          # alternative start codon
    alpha += [("bad_internal_1", back_translate("MKKW") + back_translate("MKV")),
              ("bad_frame_1", back_translate("MKVL")[:-1]),
              ("bad_ambig_1", "ATGNNNAAATAA"),
              ("shared_1_X", back_translate(conflict))]
    beta = [(f"beta{f}_{m}_ACC", back_translate(p)) for f, fam in enumerate(fams["beta"])
            for m, p in enumerate(fam)]
    beta += [("beta_copy_1", beta[0][1]), ("shared_1_X", back_translate(conflict))]
    write_fasta(db / "alpha.fsa", alpha)
    write_fasta(db / "beta.fsa", beta)

    uni = [(f"tr|U{i:03d}|U{i:03d}_BACSU Some enzyme {i} OS=Bacillus", random_protein(rng, 120))
           for i in range(24)]
    uni += [("tr|H001|H001_ECOLI Putative hydrolase OS=E. coli",
             mutate(rng, fams["alpha"][1][0], 0.1)),
            ("sp|C001|C001_ECOLI Copy OS=E. coli", fams["beta"][2][1]),
            ("tr|K001|K001_ECOLI Beta-lactamase family protein OS=E. coli",
             random_protein(rng, 90)),
            ("tr|J001|J001_ECOLI Odd OS=E. coli", "MKJJ"),
            ("tr|U000|U000_DUP Duplicate OS=Bacillus", uni[0][1])]
    write_fasta(root / "uniprot.fasta", uni)
    return db, root / "uniprot.fasta"


def _read_split(out):
    recs = {}
    for split in ("train", "valid", "test"):
        for header, seq in read_fasta(out / f"{split}.fasta"):
            rid, label = header.split("|")
            assert rid not in recs
            recs[rid] = (label, split, seq)
    return recs


@needs_diamond
def test_builtin_build_random_counts_and_manifest(tmp_path, synthetic_sources):
    db, uni = synthetic_sources
    out = tmp_path / "random"
    m = build(BuildOptions(out=out, split="random", resfinder_dir=str(db), uniprot=str(uni),
                           seed=5))
    qc = m["arg_qc"]
    assert qc["records_read"] == {"alpha": 16, "beta": 14}
    assert qc["dropped_by_reason"] == {"empty": 0, "invalid_character": 0,
                                       "ambiguous_nucleotide": 1, "length_not_multiple_of_3": 1,
                                       "internal_stop": 1}
    dd = m["arg_dedupe"]
    assert dd["identical_copies_merged"] == 1
    assert dd["proteins_with_conflicting_labels"] == 1 and dd["final"] == 25
    nf = m["nonarg_filter"]
    assert nf["uniprot_qc"]["dropped_by_reason"] == {"invalid_character": 1}
    assert nf["identical_copies_merged"] == 1
    assert nf["identical_to_arg"] == 1
    assert nf["removed_by_homology"] == 1 and nf["removed_by_homology_examples"][0]["id"] == "H001"
    assert nf["removed_by_keyword"] == 1 and nf["removed_by_keyword_records"][0]["id"] == "K001"
    assert nf["used"] == 24
    assert m["classes"] == ["alpha", "beta", "nonarg"]
    recs = _read_split(out)
    assert len(recs) == 49 == m["counts"]["total"]
    assert Counter(v[0] for v in recs.values()) == {"alpha": 12, "beta": 13, "nonarg": 24} or \
        Counter(v[0] for v in recs.values()) == {"alpha": 13, "beta": 12, "nonarg": 24}
    assert all("|" not in k and " " not in k for k in recs)
    assert recs["alpha0_0_ACC"][2].startswith("M")             # GTG start -> M
    assert m["counts"]["per_split_and_class"]["train"]["nonarg"] == 19  # apportion(24) = 19/3/2
    for name, info in m["outputs"].items():
        assert info["sha256"] == sha256_file(out / name)
    assert json.loads((out / "manifest.json").read_text())["split"]["mode"] == "random"
    # Seeded: the same options give the same bytes.
    m2 = build(BuildOptions(out=tmp_path / "again", split="random", resfinder_dir=str(db),
                            uniprot=str(uni), seed=5))
    assert {k: v["sha256"] for k, v in m2["outputs"].items()} == \
        {k: v["sha256"] for k, v in m["outputs"].items()}


@needs_diamond
@needs_mmseqs
def test_builtin_build_cluster_split_shares_no_cluster(tmp_path, synthetic_sources):
    db, uni = synthetic_sources
    out = tmp_path / "cluster"
    m = build(BuildOptions(out=out, split="cluster", identity=0.4, coverage=0.8,
                           resfinder_dir=str(db), uniprot=str(uni), seed=1,
                           exclude_classes=["beta"]))
    assert m["classes"] == ["alpha", "nonarg"]
    rows = [line.split("\t") for line in (out / "clusters.tsv").read_text().splitlines()[1:]]
    split_of_cluster = defaultdict(set)
    for rid, label, rep, split in rows:
        split_of_cluster[rep].add(split)
    assert all(len(s) == 1 for s in split_of_cluster.values())
    # Three synthetic alpha families (~90% identity inside) plus the conflicting protein, which
    # has no informative hit and goes to the larger class (a tie: alphabetical, alpha).
    assert m["split"]["clusters"]["per_class"]["alpha"] == 4
    recs = _read_split(out)
    assert {rid: (label, split) for rid, label, _, split in rows} == \
        {k: (v[0], v[1]) for k, v in recs.items()}
    # Excluded class: not a label, but its homologs still never become non-ARGs.
    assert m["nonarg_filter"]["identical_to_arg"] == 1


def test_user_fasta_headers_conflicts_and_split(tmp_path):
    # Random split here: the cluster path is shared with the built-in sources and tested above.
    rng = random.Random(3)
    recs = []
    for label, n_fam in (("beta_lactam", 4), ("tetracycline", 3)):
        for f in range(n_fam):
            for m, p in enumerate(family(rng, 3, 100)):
                recs.append((f"{label[:3]}{f}_{m}|src|gene{f}|{label}", p + "*"))
    recs += [(f"sp|P{i:04d}|X_HUMAN Protein {i} OS=Homo", random_protein(rng, 100))
             for i in range(20)]
    recs.append(("dup|tetracycline", recs[0][1]))              # conflicting label -> 'largest'
    recs.append(("bad|tetracycline", "MK*KV"))                  # internal stop: dropped
    inp = tmp_path / "mine.fasta"
    write_fasta(inp, recs)
    m = build(BuildOptions(out=tmp_path / "out", split="random", input_fasta=[str(inp)],
                           conflict_rule="largest", seed=2, max_nonarg=10))
    assert m["classes"] == ["beta_lactam", "tetracycline", "nonarg"]
    assert m["counts"]["per_class"] == {"beta_lactam": 12, "tetracycline": 9, "nonarg": 10}
    assert m["user_qc"]["dropped_by_reason"] == {"internal_stop": 1}
    assert m["user_dedupe"]["conflicts"][0]["chosen"] == "beta_lactam"
    assert m["user_dedupe"]["nonarg_available"] == 20
    got = _read_split(tmp_path / "out")
    assert got["bet0_0"][0] == "beta_lactam" and not got["bet0_0"][2].endswith("*")
    assert sum(v[0] == "nonarg" and k.startswith("P0") for k, v in got.items()) == 10
    assert m["counts"]["per_split_and_class"]["test"] == {"beta_lactam": 1, "tetracycline": 1,
                                                          "nonarg": 1}


def test_bad_options_are_rejected(tmp_path):
    with pytest.raises(DatasetError, match="fractions"):
        build(BuildOptions(out=tmp_path, fractions=(0.5, 0.1, 0.1)))
    with pytest.raises(DatasetError, match="split mode"):
        build(BuildOptions(out=tmp_path, split="kfold"))


def test_user_fasta_bad_header_names_file(tmp_path):
    p = tmp_path / "x.fasta"
    p.write_text(">noclass\nMKV\n")
    with pytest.raises(DatasetError, match=r"x\.fasta: header 'noclass'"):
        build(BuildOptions(out=tmp_path / "o", split="random", input_fasta=[str(p)]))
