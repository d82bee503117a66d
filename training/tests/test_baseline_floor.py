import json
import random
import shutil

import pytest
from synthdata import family, mutate, random_protein

from argtrain.baseline import BaselinePrediction
from argtrain.baseline_floor import (Floor, choose_floor, floored_label, reaches, resfinder_like,
                                     score_floors)
from argtrain.commands import evaluate as evaluate_cmd
from argtrain.fasta import write_fasta


def _hit(label, identity, coverage):
    return BaselinePrediction(label, "ref", identity, 1e-30, coverage)


NO_HIT = BaselinePrediction("nonarg")


def test_floor_counts_a_hit_at_or_above_both_floors():
    floor = Floor(0.3, 0.6)
    assert reaches(_hit("x", 30.0, 60.0), floor)  # percent against fractions, at the edge
    assert not reaches(_hit("x", 29.9, 90.0), floor)
    assert not reaches(_hit("x", 90.0, 59.9), floor)
    assert not reaches(NO_HIT, floor)
    assert floored_label(_hit("x", 31.0, 61.0), floor, "nonarg") == "x"
    assert floored_label(_hit("x", 29.0, 61.0), floor, "nonarg") == "nonarg"
    assert floored_label(_hit("nonarg", 95.0, 95.0), floor, "nonarg") == "nonarg"


def test_resfinder_like_is_an_arg_at_90_over_60():
    assert resfinder_like(_hit("x", 90.0, 60.0), "nonarg")
    assert not resfinder_like(_hit("x", 89.9, 100.0), "nonarg")
    assert not resfinder_like(_hit("nonarg", 100.0, 100.0), "nonarg")
    assert not resfinder_like(NO_HIT, "nonarg")


def test_the_proteome_bound_moves_the_choice_to_a_stricter_floor():
    # Validation: a distant ARG (32%) is found only below a 35% floor; proteome: 2 of 100
    # housekeeping proteins hit an ARG at 33%.
    y = ["x", "x", "nonarg", "nonarg"]
    valid = [_hit("x", 80.0, 90.0), _hit("x", 32.0, 90.0), NO_HIT, _hit("nonarg", 50.0, 90.0)]
    proteome = [_hit("x", 33.0, 90.0)] * 2 + [NO_HIT] * 98
    classes = ["x", "nonarg"]
    grid = {"identity_grid": (0.0, 0.3, 0.35, 0.9), "coverage_grid": (0.0, 0.8)}
    free = choose_floor(score_floors(y, valid, classes, "nonarg", **grid), 0.002, 0.005)
    assert free.macro_f1 == 1.0 and free.floor == Floor(0.3, 0.8)  # ties go to the stricter
    rows = score_floors(y, valid, classes, "nonarg", proteome, **grid)
    bounded = choose_floor(rows, 0.002, 0.005)
    assert bounded.floor == Floor(0.35, 0.8)
    assert bounded.proteome_false_positive_rate == 0.0 and bounded.macro_f1 < 1.0
    assert choose_floor(rows, 0.002, 0.005) in rows
    assert choose_floor(score_floors(y, valid, classes, "nonarg", [_hit("x", 99.0, 99.0)],
                                     **grid), 0.002, 0.005) is None


def test_score_floors_counts_validation_false_calls():
    y = ["nonarg", "nonarg", "x"]
    valid = [_hit("x", 40.0, 90.0), NO_HIT, _hit("x", 95.0, 95.0)]
    rows = {r.floor: r for r in score_floors(y, valid, ["x", "nonarg"], "nonarg",
                                             identity_grid=(0.3, 0.5), coverage_grid=(0.6,))}
    assert rows[Floor(0.3, 0.6)].false_positive_rate == 0.5
    assert rows[Floor(0.3, 0.6)].arg_calls == 2
    assert rows[Floor(0.5, 0.6)].false_positive_rate == 0.0
    assert rows[Floor(0.5, 0.6)].proteome_false_positive_rate is None
    with pytest.raises(ValueError, match="2 predictions"):
        score_floors(y, valid[:2], ["x", "nonarg"], "nonarg")


@pytest.mark.skipif(shutil.which("diamond") is None,
                    reason="diamond (Debian package diamond-aligner) not installed")
def test_cli_bounded_baseline_beside_the_plain_one(tmp_path):
    rng = random.Random(5)
    fam = family(rng, 4, 180)
    nonargs = [random_protein(rng, 180) for _ in range(6)]
    write_fasta(tmp_path / "train.fasta",
                [(f"x{i}|xclass", s) for i, s in enumerate(fam)] +
                [(f"n{i}|nonarg", s) for i, s in enumerate(nonargs)])
    write_fasta(tmp_path / "valid.fasta",
                [("vx|xclass", mutate(rng, fam[0], 0.3)), ("vn|nonarg", random_protein(rng, 180)),
                 ("vm|nonarg", mutate(rng, nonargs[0], 0.1))])
    # The test's distant member is found by the plain best hit only.
    write_fasta(tmp_path / "test.fasta",
                [("near|xclass", mutate(rng, fam[1], 0.1)),
                 ("distant|xclass", mutate(rng, fam[2], 0.55)),
                 ("tn|nonarg", random_protein(rng, 180))])
    # Housekeeping relatives at about half identity, one exact ARG (ResFinder-like, left out).
    write_fasta(tmp_path / "genome.faa",
                [(f"g{i}", mutate(rng, fam[i % 4], 0.55) + "*") for i in range(5)] +
                [("resistance", fam[3])] + [(f"h{i}", random_protein(rng, 150)) for i in range(94)])
    # Held out: two members (about 85% identical, not ResFinder-like) among eight others.
    write_fasta(tmp_path / "held-out.faa",
                [("close1", mutate(rng, fam[0], 0.15)), ("close2", mutate(rng, fam[1], 0.15))] +
                [(f"k{i}", random_protein(rng, 150)) for i in range(8)])
    rc = evaluate_cmd.main(["--test", str(tmp_path / "test.fasta"),
                            "--baseline-train", str(tmp_path / "train.fasta"),
                            "--baseline-valid", str(tmp_path / "valid.fasta"),
                            "--baseline-proteome", str(tmp_path / "genome.faa"),
                            "--baseline-held-out-proteome", str(tmp_path / "held-out.faa"),
                            "--no-kmer-baseline", "--threads", "1",
                            "--out", str(tmp_path / "out")])
    assert rc == 0
    rep = json.loads((tmp_path / "out/evaluation.json").read_text())
    info = rep["baseline_bounded"]["info"]
    assert info["proteome"]["resfinder_like_left_out"] == 1
    assert info["proteome"]["proteins"] == 99
    assert info["proteome"]["false_positive_rate"] <= 0.005
    assert info["proteome"]["best_hit_false_positive_rate"] == 5 / 99  # the relatives
    assert 0.5 <= info["min_identity"] <= 0.8 and info["validation"]["macro_f1"] == 1.0
    assert info["held_out_proteome"]["proteins"] == 10
    assert info["held_out_proteome"]["false_positive_rate"] == 0.2
    rows = [line.split("\t") for line in
            (tmp_path / "out/predictions.tsv").read_text().splitlines()]
    col = {name: i for i, name in enumerate(rows[0])}
    calls = {r[0]: (r[col["baseline_pred"]], r[col["baseline_bounded_pred"]]) for r in rows[1:]}
    assert calls == {"near": ("xclass", "xclass"), "distant": ("xclass", "nonarg"),
                     "tn": ("nonarg", "nonarg")}


def test_cli_bounded_baseline_needs_its_inputs(tmp_path):
    for argv in (["--baseline-valid", "v.fasta", "--model", "m.pt"],
                 ["--baseline-train", "t.fasta", "--baseline-proteome", "g.faa"]):
        with pytest.raises(SystemExit):
            evaluate_cmd.main(["--test", "x.fasta", "--out", str(tmp_path), *argv])
