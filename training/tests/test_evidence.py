"""The evidence rule (argtrain.evidence) and the evidence tool's output (argtrain.evidence_tool)."""

import os

import pytest
from fakeevidence import fake_tool

from argtrain import evidence as ev
from argtrain import evidence_tool as et
from argtrain.homology import ToolError

T = ev.Thresholds()  # identity 0.8, reference coverage 0.6, e-value 1e-5


def _hit(identity=0.9, reference_coverage=0.9, evalue=1e-30, label="beta-lactam",
         nearest_arg=None):
    return ev.Hit("blaX_1_A1", "blaX", "A1", label, identity, 0.5, reference_coverage, 300.0,
                  120.0, evalue, nearest_arg)


def test_default_thresholds():
    assert T.to_json() == {"reference_min_identity": 0.8, "reference_min_coverage": 0.6,
                           "max_evalue": 1e-05}
    assert ev.Thresholds.from_json(T.to_json()) == T


@pytest.mark.parametrize("kw", [{"reference_min_identity": 1.1},
                                {"reference_min_coverage": -0.1}, {"max_evalue": -1.0},
                                {"max_evalue": float("nan")}, {"max_evalue": float("inf")}])
def test_bad_thresholds(kw):
    with pytest.raises(ValueError):
        ev.Thresholds(**kw)


def test_reference_tier_overrides_the_model():
    h = _hit()
    for is_arg, label in [(True, "tetracycline"), (False, "nonarg")]:
        call = ev.combine(is_arg, label, h, T, "nonarg", arg_probability=0.5)
        assert call == ev.Call("reference", True, "beta-lactam", h)


def test_a_non_arg_reference_decides_non_arg():
    h = _hit(label="nonarg")
    assert ev.combine(True, "tetracycline", h, T, "nonarg", arg_probability=0.5) == \
        ev.Call("reference", False, "nonarg", h)
    assert ev.reference_only(h, T, "nonarg") == "nonarg"
    # Below the thresholds it is only reported; the model decides, as without any reference.
    weak = _hit(identity=0.5, label="nonarg")
    assert ev.combine(True, "tetracycline", weak, T, "nonarg", arg_probability=0.5) == \
        ev.Call("novel", True, "tetracycline", weak)
    novel = ev.Thresholds(novel_min_arg_probability=0.9)
    assert ev.combine(True, "tetracycline", weak, novel, "nonarg", arg_probability=0.5) == \
        ev.Call("model", False, "nonarg", weak)
    assert ev.combine(True, "tetracycline", weak, novel, "nonarg", arg_probability=0.95) == \
        ev.Call("novel", True, "tetracycline", weak)


def test_the_nearest_arg_reference_behind_a_non_arg_one():
    arg = _hit(identity=0.3, label="tetracycline")
    relative = _hit(identity=0.4, label="nonarg", nearest_arg=arg)
    homolog = ev.Thresholds(homolog_min_arg_probability=0.5, novel_min_arg_probability=0.9)
    # Behind a nearer non-ARG, an ARG call needs the novel P(ARG); the ARG reference names it.
    assert ev.combine(False, "nonarg", relative, homolog, "nonarg", arg_probability=0.95) == \
        ev.Call("homolog", True, "tetracycline", arg)
    for model_is_arg, label in [(False, "nonarg"), (True, "beta-lactam")]:
        assert ev.combine(model_is_arg, label, relative, homolog, "nonarg",
                          arg_probability=0.6) == ev.Call("model", False, "nonarg", relative)
    # With the ARG reference nearest, the homolog P(ARG) is enough.
    assert ev.combine(False, "nonarg", arg, homolog, "nonarg", arg_probability=0.6) == \
        ev.Call("homolog", True, "tetracycline", arg)
    # Without a novel step, the homolog P(ARG) is enough behind a non-ARG too.
    plain = ev.Thresholds(homolog_min_arg_probability=0.5)
    assert ev.combine(False, "nonarg", relative, plain, "nonarg", arg_probability=0.6) == \
        ev.Call("homolog", True, "tetracycline", arg)
    # A non-ARG relative that decides wins over the ARG behind it.
    close = _hit(identity=0.9, label="nonarg", nearest_arg=arg)
    assert ev.combine(True, "beta-lactam", close, homolog, "nonarg", arg_probability=0.99) == \
        ev.Call("reference", False, "nonarg", close)
    # Too little of the ARG reference aligned: the model's call, as a novel one.
    short = _hit(identity=0.4, label="nonarg",
                 nearest_arg=_hit(identity=0.3, reference_coverage=0.3, label="tetracycline"))
    assert ev.combine(True, "beta-lactam", short, homolog, "nonarg", arg_probability=0.95) == \
        ev.Call("novel", True, "beta-lactam", short)


def test_thresholds_at_the_boundary_count():
    h = _hit(identity=0.8, reference_coverage=0.6, evalue=1e-5)
    assert ev.combine(False, "nonarg", h, T, "nonarg", arg_probability=0.5).tier == "reference"
    assert ev.reference_only(h, T, "nonarg") == "beta-lactam"


@pytest.mark.parametrize("h", [_hit(identity=0.7999), _hit(reference_coverage=0.5999)])
def test_below_a_threshold_the_model_decides(h):
    assert ev.combine(True, "tetracycline", h, T, "nonarg", arg_probability=0.5) == \
        ev.Call("model", True, "tetracycline", h)
    assert ev.combine(False, "nonarg", h, T, "nonarg", arg_probability=0.5) == \
        ev.Call("model", False, "nonarg", h)
    # The reference alone still gives the hit's class.
    assert ev.reference_only(h, T, "nonarg") == "beta-lactam"


def test_no_hit_is_novel_for_an_arg_call():
    assert ev.combine(True, "tetracycline", None, T, "nonarg", arg_probability=0.5) == \
        ev.Call("novel", True, "tetracycline", None)
    assert ev.combine(False, "nonarg", None, T, "nonarg", arg_probability=0.5) == \
        ev.Call("model", False, "nonarg", None)
    assert ev.reference_only(None, T, "nonarg") == "nonarg"


def test_a_hit_above_max_evalue_is_no_hit():
    h = _hit(evalue=1.0001e-5)  # identity and coverage would make it a reference call
    assert ev.counted(h, T) is None
    assert ev.combine(True, "tetracycline", h, T, "nonarg", arg_probability=0.5) == \
        ev.Call("novel", True, "tetracycline", None)
    assert ev.combine(False, "nonarg", h, T, "nonarg", arg_probability=0.5) == \
        ev.Call("model", False, "nonarg", None)
    assert ev.reference_only(h, T, "nonarg") == "nonarg"
    loose = ev.Thresholds(max_evalue=1e-3)
    assert ev.combine(False, "nonarg", h, loose, "nonarg", arg_probability=0.5).tier == "reference"


def test_thresholds_are_parameters():
    strict = ev.Thresholds(reference_min_identity=0.95, reference_min_coverage=0.95)
    assert ev.combine(True, "a", _hit(), strict, "nonarg", arg_probability=0.5).tier == "model"


# ---------------------------------------------------------------------------------------------
# The tool's output

NO_ARG = "\t" * 10  # the empty arg_* columns
ROWS = [et.HEADER,
        "q1\tblaX_1_A1\tblaX\tA1\tbeta-lactam\t0.95\t0.9\t1.0\t512\t210.5\t1e-60" + NO_ARG,
        "q3\ttetM\ttetM\t\ttetracycline\t0.3\t0.2\t0.25\t40\t20.1\t0.5" + NO_ARG,
        "q4\tacrB_ECOLI\tacrB\t\tnonarg\t0.4\t0.9\t0.9\t300\t120\t1e-30"
        "\tmexB_1\tmexB\tX1\tmultidrug\t0.35\t0.8\t0.8\t250\t100\t1e-25"]


def _validation():
    """Ten ARGs the model misses, each with a hit of its class at 35% identity; 400 non-ARGs, one
    with a hit at 35% (a homolog of an ARG) and one at 85%."""
    y_true = ["beta-lactam"] * 10 + ["nonarg"] * 400
    model = ["nonarg"] * 410
    hits = [_hit(identity=0.35) for _ in range(10)] + [_hit(identity=0.35), _hit(identity=0.85)]
    hits += [None] * 398
    return y_true, model, hits


def test_score_rules_counts_false_positives_per_threshold():
    y_true, model, hits = _validation()
    rows = ev.score_rules(y_true, model, [0.1] * len(model), hits, ["beta-lactam", "nonarg"],
                          "nonarg", 0.6, 1e-5,
                          grid=(0.3, 0.8, 0.9))
    by = {r.reference_min_identity: r for r in rows}
    assert by[0.3].false_positive_rate == pytest.approx(2 / 400)
    assert by[0.8].false_positive_rate == pytest.approx(1 / 400)
    assert by[0.9].false_positive_rate == 0.0
    assert by[0.3].macro_f1 > by[0.8].macro_f1  # the ARGs are found only at 0.3


def test_choose_rule_keeps_false_positives_within_the_bound():
    y_true, model, hits = _validation()
    rows = ev.score_rules(y_true, model, [0.1] * len(model), hits, ["beta-lactam", "nonarg"],
                          "nonarg", 0.6, 1e-5,
                          grid=(0.3, 0.8, 0.9))
    assert ev.choose_rule(rows, 0.01).reference_min_identity == 0.3  # 0.5% allowed: best F1
    assert ev.choose_rule(rows, 0.002).reference_min_identity == 0.9  # 0.3 and 0.8 exceed it
    # None within the bound: the fewest false positives.
    assert ev.choose_rule(rows[:2], 0.0).reference_min_identity == 0.8
    with pytest.raises(ValueError):
        ev.choose_rule([], 0.01)


def test_homolog_tier_needs_the_models_support():
    rule = ev.Thresholds(0.8, 0.6, 1e-5, homolog_min_arg_probability=0.05)
    distant = _hit(identity=0.28)
    assert ev.combine(False, "nonarg", distant, rule, "nonarg", arg_probability=0.05) == \
        ev.Call("homolog", True, "beta-lactam", distant)
    assert ev.combine(False, "nonarg", distant, rule, "nonarg", arg_probability=0.0499) == \
        ev.Call("model", False, "nonarg", distant)
    # Not for a known non-ARG reference, a short stretch of the reference, or no rule step.
    weak_nonarg = _hit(identity=0.28, label="nonarg")
    assert ev.combine(True, "tetracycline", weak_nonarg, rule, "nonarg", arg_probability=0.99) == \
        ev.Call("novel", True, "tetracycline", weak_nonarg)
    partial = _hit(identity=0.28, reference_coverage=0.5)
    assert ev.combine(False, "nonarg", partial, rule, "nonarg", arg_probability=0.9).tier == "model"
    assert ev.combine(False, "nonarg", distant, T, "nonarg", arg_probability=0.9).tier == "model"
    # The hit's class also when the model prefers another.
    assert ev.combine(True, "tetracycline", distant, rule, "nonarg", arg_probability=0.95) == \
        ev.Call("homolog", True, "beta-lactam", distant)
    # A close reference still decides first.
    assert ev.combine(False, "nonarg", _hit(), rule, "nonarg", arg_probability=0.0).tier == \
        "reference"


def test_novel_call_needs_its_own_threshold():
    rule = ev.Thresholds(novel_min_arg_probability=0.99)
    assert ev.combine(True, "tetracycline", None, rule, "nonarg", arg_probability=0.99) == \
        ev.Call("novel", True, "tetracycline", None)
    assert ev.combine(True, "tetracycline", None, rule, "nonarg", arg_probability=0.98) == \
        ev.Call("model", False, "nonarg", None)
    # With a hit (not close) the model's own threshold stays enough.
    weak = _hit(identity=0.5)
    assert ev.combine(True, "tetracycline", weak, rule, "nonarg", arg_probability=0.9) == \
        ev.Call("model", True, "tetracycline", weak)


def test_rule_json_keeps_only_the_steps_it_has():
    rule = ev.Thresholds(0.35, 0.6, 1e-5, 0.05, 0.99)
    assert rule.to_json() == {"reference_min_identity": 0.35, "reference_min_coverage": 0.6,
                              "max_evalue": 1e-05, "homolog_min_arg_probability": 0.05,
                              "novel_min_arg_probability": 0.99}
    assert ev.Thresholds.from_json(rule.to_json()) == rule
    with pytest.raises(ValueError):
        ev.Thresholds(novel_min_arg_probability=1.5)


def test_choose_rule_over_homolog_and_novel_grids():
    """Twenty ARGs the model misses, each with a 28% hit of its class and P(ARG) 0.3; 400
    non-ARGs: one nearest to an ARG at 28% with P(ARG) 0.01, two without a hit that the model
    calls an ARG at P(ARG) 0.95."""
    y_true = ["beta-lactam"] * 20 + ["nonarg"] * 400
    model = ["nonarg"] * 21 + ["beta-lactam"] * 2 + ["nonarg"] * 397
    p_arg = [0.3] * 20 + [0.01] + [0.95] * 2 + [0.01] * 397
    hits = [_hit(identity=0.28) for _ in range(21)] + [None] * 399
    rows = ev.score_rules(y_true, model, p_arg, hits, ["beta-lactam", "nonarg"], "nonarg", 0.6,
                          1e-5, grid=(0.25, 0.8), homolog_grid=(None, 0.2, 0.1, 0.005),
                          novel_grid=(None, 0.9, 0.98), arg_threshold=0.9)
    assert len(rows) == 2 * 4 * 2  # novel 0.9 does not pass the model's own threshold
    best = ev.choose_rule(rows, 0.002)
    # The ARGs come from the homolog tier (P(ARG) 0.3 reaches 0.2 and 0.1; 0.2 is stricter) or
    # from identity 0.25, which also calls the non-ARG at 28%; the novel calls are all wrong.
    assert best.rule == ev.Thresholds(0.8, 0.6, 1e-5, 0.2, 0.98)
    assert best.false_positive_rate == 0.0 and best.arg_calls == 20


def test_background_false_calls_count_in_the_bound():
    """Twenty ARGs at 28% from a reference with P(ARG) 0.15 and 400 non-ARGs; a background of 600
    non-ARGs of which two also sit at 28% from an ARG with P(ARG) 0.15. Homolog 0.1 finds the
    ARGs and, in the background, the two; 0.2 neither."""
    y_true = ["beta-lactam"] * 20 + ["nonarg"] * 400
    model = ["nonarg"] * 420
    p_arg = [0.15] * 20 + [0.01] * 400
    hits = [_hit(identity=0.28) for _ in range(20)] + [None] * 400
    background = ev.Background(["nonarg"] * 600, [0.15, 0.15] + [0.01] * 598,
                               [_hit(identity=0.28), _hit(identity=0.28)] + [None] * 598)
    kw = dict(grid=(0.8,), homolog_grid=(0.2, 0.1))
    rows = ev.score_rules(y_true, model, p_arg, hits, ["beta-lactam", "nonarg"], "nonarg", 0.6,
                          1e-5, background=background, **kw)
    by = {r.rule.homolog_min_arg_probability: r for r in rows}
    assert by[0.1].background_false_positives == 2 and by[0.2].background_false_positives == 0
    assert by[0.1].false_positive_rate == pytest.approx(2 / 1000)
    assert by[0.1].macro_f1 > by[0.2].macro_f1
    assert ev.choose_rule(rows, 0.0025).rule.homolog_min_arg_probability == 0.1
    assert ev.choose_rule(rows, 0.0015).rule.homolog_min_arg_probability == 0.2
    plain = ev.score_rules(y_true, model, p_arg, hits, ["beta-lactam", "nonarg"], "nonarg", 0.6,
                           1e-5, **kw)
    assert all(r.background_false_positives == 0 and r.false_positive_rate == 0 for r in plain)
    assert ev.choose_rule(plain, 0.0015).rule.homolog_min_arg_probability == 0.1


def test_proteome_false_calls_have_their_own_bound():
    """The same twenty ARGs and 400 non-ARGs; a proteome of 1,000 proteins, five of them at 28%
    from an ARG with P(ARG) 0.15 and one more with P(ARG) 0.5. Homolog 0.1 calls six of them
    (0.6%), 0.2 one (0.1%), and neither touches the labelled set's false-positive rate."""
    y_true = ["beta-lactam"] * 20 + ["nonarg"] * 400
    model = ["nonarg"] * 420
    p_arg = [0.15] * 20 + [0.01] * 400
    hits = [_hit(identity=0.28) for _ in range(20)] + [None] * 400
    proteome = ev.Background(["nonarg"] * 1000, [0.15] * 5 + [0.5] + [0.01] * 994,
                             [_hit(identity=0.28) for _ in range(6)] + [None] * 994)
    rows = ev.score_rules(y_true, model, p_arg, hits, ["beta-lactam", "nonarg"], "nonarg", 0.6,
                          1e-5, grid=(0.8,), homolog_grid=(0.2, 0.1), proteome=proteome)
    by = {r.rule.homolog_min_arg_probability: r for r in rows}
    assert by[0.1].proteome_false_positive_rate == pytest.approx(0.006)
    assert by[0.2].proteome_false_positive_rate == pytest.approx(0.001)
    assert by[0.1].false_positive_rate == by[0.2].false_positive_rate == 0.0
    assert ev.choose_rule(rows, 0.002).rule.homolog_min_arg_probability == 0.1
    assert ev.choose_rule(rows, 0.002, 0.01).rule.homolog_min_arg_probability == 0.1
    assert ev.choose_rule(rows, 0.002, 0.005).rule.homolog_min_arg_probability == 0.2
    # None within: the fewest proteome false calls.
    assert ev.choose_rule(rows, 0.002, 0.0).rule.homolog_min_arg_probability == 0.2


def test_ties_go_to_fewer_proteome_false_calls():
    rule = ev.Thresholds(0.35, 0.6, 1e-5)
    fewer = ev.RuleScore(rule, 0.6, 0.9, 0.001, 10, 0, 0.003)
    more = ev.RuleScore(ev.Thresholds(0.9, 0.6, 1e-5), 0.6, 0.9, 0.001, 10, 0, 0.004)
    assert ev.choose_rule([more, fewer], 0.002, 0.005) == fewer  # though 0.9 is stricter


def test_resfinder_like_hits():
    assert ev.resfinder_like(_hit(identity=0.9), "nonarg")
    assert not ev.resfinder_like(_hit(identity=0.89), "nonarg")
    assert not ev.resfinder_like(None, "nonarg")
    assert not ev.resfinder_like(_hit(identity=0.95, reference_coverage=0.59), "nonarg")
    assert not ev.resfinder_like(_hit(identity=0.99, label="nonarg"), "nonarg")  # a known non-ARG


def test_supporting_probabilities_drop_proteins_below_the_length_floor():
    meta = {"calibration": {"min_residues": 5}}
    # A final '*' is not a residue; lower case counts.
    assert ev.supporting_probabilities([0.4, 0.6, 0.7], ["MKVLL", "MKVL*", "mkvll"], meta) == \
        [0.4, 0.0, 0.7]
    assert ev.supporting_probabilities([0.4], ["MK"], {"calibration": None}) == [0.4]


def test_parse_hits():
    hits = et.parse_hits("\n".join(ROWS) + "\n")
    assert set(hits) == {"q1", "q3", "q4"}
    assert hits["q1"] == ev.Hit("blaX_1_A1", "blaX", "A1", "beta-lactam", 0.95, 0.9, 1.0, 512.0,
                                210.5, 1e-60)
    assert hits["q3"].accession == "" and hits["q3"].evalue == 0.5
    assert hits["q3"].nearest_arg is None
    assert hits["q4"].label == "nonarg"
    assert hits["q4"].nearest_arg == ev.Hit("mexB_1", "mexB", "X1", "multidrug", 0.35, 0.8, 0.8,
                                            250.0, 100.0, 1e-25)
    assert et.parse_hits(et.HEADER + "\n") == {}


@pytest.mark.parametrize("text, message", [
    ("", "expected the header"),
    ("query_id\treference_id\n", "expected the header"),
    (et.HEADER + "\nq1\tr\tg\ta\tc\t0.9\n", "line 2: 6 fields"),
    (et.HEADER + "\nq1\tr\tg\ta\tc\tx\t0.9\t0.9\t1\t1\t1" + NO_ARG,
     "identity 'x' is not a number"),
    (et.HEADER + "\nq1\tr\tg\ta\tc\t95\t0.9\t0.9\t1\t1\t1" + NO_ARG, "not a fraction"),
    (et.HEADER + "\nq1\tr\tg\ta\tc\t0.9\t0.9\t0.9\t1\t1\tnan" + NO_ARG, "evalue is NaN"),
    (et.HEADER + "\nq1\tr\tg\ta\tnonarg\t0.9\t0.9\t0.9\t1\t1\t1\tr2\tg\ta\tc\t1.5\t0.9\t0.9"
     "\t1\t1\t1", "line 2: arg_identity 1.5 is not a fraction"),
    ("\n".join(ROWS + [ROWS[1]]), "line 5: query 'q1' has more than one row"),
])
def test_parse_hits_errors(text, message):
    with pytest.raises(et.EvidenceError, match=message):
        et.parse_hits(text)


def test_run_evidence_tool(tmp_path):
    tool = fake_tool(tmp_path, "\n".join(ROWS[:3]) + "\n")
    refs = "id\tgene\taccession\tclass\tresidues\nblaX_1_A1\tblaX\tA1\tbeta-lactam\tMKV\n"
    hits, command = et.run_evidence_tool(tool, refs, [("q1", "mkv*"), ("q2", "WW"), ("q3", "K")],
                                         threads=3)
    assert set(hits) == {"q1", "q3"} and hits["q1"].identity == 0.95
    argv = (tmp_path / "argv.txt").read_text().split("\n")
    assert argv[0] == "--references" and argv[1].endswith("references.tsv")
    assert argv[2] == "--fasta" and argv[3].endswith("test_queries.fasta")
    assert argv[4:] == ["--threads", "3", "--nonarg-class", "nonarg"]
    assert command.startswith(str(tool) + " --references ")
    assert (tmp_path / "seen_references.tsv").read_text() == refs
    assert (tmp_path / "seen_queries.fasta").read_text() == ">q1\nMKV\n>q2\nWW\n>q3\nK\n"
    assert not os.path.exists(argv[1])  # the scratch directory is gone


def test_run_evidence_tool_errors(tmp_path):
    with pytest.raises(et.EvidenceError, match="'q1' occurs more than once"):
        et.run_evidence_tool(tmp_path / "none", "", [("q1", "M"), ("q1", "K")])
    with pytest.raises(ToolError, match="cannot run"):
        et.run_evidence_tool(tmp_path / "none", "", [("q1", "M")])
    bad = fake_tool(tmp_path, "", exit_code=3)
    with pytest.raises(ToolError, match="exit 3.*\n.*fake failure"):
        et.run_evidence_tool(bad, "", [("q1", "M")])
    stray = fake_tool(tmp_path, "\n".join(ROWS) + "\n")
    with pytest.raises(et.EvidenceError, match="not asked.*q3"):
        et.run_evidence_tool(stray, "", [("q1", "M")])


def test_grid_from_the_command_line_names_what_is_wrong():
    assert ev.parse_grid("none,0.9, 0.05") == (None, 0.9, 0.05)
    assert ev.parse_grid("NONE") == (None,)
    with pytest.raises(ValueError, match="'high' is neither a number nor 'none'"):
        ev.parse_grid("0.5,high")
    with pytest.raises(ValueError, match="1.5 is not a fraction"):
        ev.parse_grid("1.5")
