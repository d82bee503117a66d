import json
import random
import shutil

import pytest
from fakeevidence import fake_tool
from synthdata import family, mutate

torch = pytest.importorskip("torch")

from argtrain import alphabet  # noqa: E402
from argtrain import evaluate as ev  # noqa: E402
from argtrain import references as rf  # noqa: E402
from argtrain.commands import evaluate as evaluate_cmd  # noqa: E402
from argtrain.evidence_tool import HEADER as HITS_HEADER  # noqa: E402
from argtrain.fasta import write_fasta  # noqa: E402

CLASSES = ["alpha", "trp", "nonarg"]


class Toy(torch.nn.Module):
    """Follows the artifact contract: forward(int64[B, L]) -> float32[B, C] logits.

    alpha = number of A tokens, trp = number of W tokens, nonarg = 2.5; any row that does not
    start with <cls> or lacks <eos> is forced to nonarg, so a tokenizer bug shows up as errors.
    """

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        a = (tokens == 5).sum(dim=1).float()
        w = (tokens == 22).sum(dim=1).float()
        ok = (tokens[:, 0] == 0) & ((tokens == 2).sum(dim=1) == 1)
        other = torch.full_like(a, 2.5) + 100.0 * (~ok).float()
        return torch.stack([a, w, other], dim=1)


def _meta(**kw):
    m = {"format": "argserve-model/1", "name": "toy", "version": "0", "classes": CLASSES,
         "nonarg_class": "nonarg", **alphabet.model_json_alphabet(), "max_residues": 1022,
         "backbone": {"architecture": "toy"}}
    m.update(kw)
    return m


def _save(path, meta, extra=None):
    torch.jit.save(torch.jit.script(Toy()), str(path),
                   _extra_files={"model.json": json.dumps(meta), **(extra or {})})


def test_model_predictions_and_truncation(tmp_path):
    _save(tmp_path / "m.pt", _meta(max_residues=4))
    module, meta = ev.load_model(tmp_path / "m.pt")
    recs = [("1", "alpha", "aaaaaak*"), ("2", "trp", "WWWK"), ("3", "nonarg", "KKKK"),
            ("4", "alpha", "KKKKAAAAAAA")]  # truncated to KKKK: nonarg
    labels, probs, info = ev.predict_model(module, meta, recs, batch_size=2)
    assert labels == ["alpha", "trp", "nonarg", "nonarg"]
    assert info["truncated_sequences"] == 2 and info["batches"] == 2
    assert all(0.3 < p <= 1 for p in probs)
    with pytest.raises(ev.EvaluationError, match="'bad': internal stop"):
        ev.predict_model(module, meta, [("bad", "x", "MK*K")])


def test_artifact_with_its_own_alphabet_uses_model_json(tmp_path):
    # A different token order: A and W swap places, so the toy's "alpha" logit counts W.
    order = list(alphabet.ALPHABET)
    order[5], order[22] = order[22], order[5]
    _save(tmp_path / "m.pt", _meta(alphabet=order))
    module, meta = ev.load_model(tmp_path / "m.pt")
    labels, _, _ = ev.predict_model(module, meta, [("1", "alpha", "WWWK"), ("2", "trp", "AAAK")])
    assert labels == ["alpha", "trp"]


def test_model_json_required(tmp_path):
    torch.jit.save(torch.jit.script(Toy()), str(tmp_path / "bare.pt"))
    with pytest.raises(ev.EvaluationError, match="no model.json"):
        ev.load_model(tmp_path / "bare.pt")
    _save(tmp_path / "partial.pt", {"format": "argserve-model/1"})
    with pytest.raises(ev.EvaluationError, match="lacks required keys"):
        ev.load_model(tmp_path / "partial.pt")


def _data(tmp_path):
    rng = random.Random(4)
    fam_a = [("A" * 30) + s for s in family(rng, 4, 120)]
    fam_w = [("W" * 30) + s for s in family(rng, 4, 120)]
    others = [s.replace("A", "K").replace("W", "K") for s in family(rng, 4, 150, rate=0.5)]
    train = [(f"a{i}|alpha", s) for i, s in enumerate(fam_a[:3])] + \
            [(f"w{i}|trp", s) for i, s in enumerate(fam_w[:3])] + \
            [(f"n{i}|nonarg", s) for i, s in enumerate(others[:3])]
    test = [("ta|alpha", mutate(rng, fam_a[3], 0.05)), ("tw|trp", mutate(rng, fam_w[3], 0.05)),
            ("tn|nonarg", others[3].replace("A", "K").replace("W", "K"))]
    write_fasta(tmp_path / "train.fasta", train)
    write_fasta(tmp_path / "test.fasta", test)


def test_cli_model_only_writes_json_png_tsv(tmp_path, capsys):
    _data(tmp_path)
    _save(tmp_path / "m.pt", _meta())
    rc = evaluate_cmd.main(["--test", str(tmp_path / "test.fasta"),
                            "--model", str(tmp_path / "m.pt"), "--out", str(tmp_path / "out"),
                            "--num-threads", "1"])
    assert rc == 0
    rep = json.loads((tmp_path / "out/evaluation.json").read_text())
    assert rep["classes"] == CLASSES and "baseline" not in rep
    assert rep["model"]["accuracy"] == 1.0 and rep["model"]["macro_f1"] == 1.0
    assert rep["model"]["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    assert rep["model"]["binary"]["precision"] == 1.0 and rep["model"]["binary"]["recall"] == 1.0
    assert rep["model"]["per_class"]["trp"]["support"] == 1
    assert (tmp_path / "out/confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    tsv = (tmp_path / "out/predictions.tsv").read_text().splitlines()
    assert tsv[0].split("\t") == ["id", "true", "model_pred", "model_prob", "model_p_arg"]
    assert len(tsv) == 4
    out = capsys.readouterr().out
    assert "macro-F1" in out and "trp" in out


@pytest.mark.skipif(shutil.which("diamond") is None,
                    reason="diamond (Debian package diamond-aligner) not installed")
def test_cli_model_and_baseline_side_by_side(tmp_path):
    _data(tmp_path)
    _save(tmp_path / "m.pt", _meta())
    rc = evaluate_cmd.main(["--test", str(tmp_path / "test.fasta"),
                            "--model", str(tmp_path / "m.pt"),
                            "--baseline-train", str(tmp_path / "train.fasta"), "--threads", "1",
                            "--out", str(tmp_path / "out")])
    assert rc == 0
    rep = json.loads((tmp_path / "out/evaluation.json").read_text())
    assert set(rep) >= {"model", "baseline", "classes", "test"}
    assert rep["baseline"]["per_class"]["alpha"]["recall"] == 1.0
    assert rep["baseline"]["per_class"]["trp"]["recall"] == 1.0
    assert rep["baseline"]["info"]["method"] == "diamond blastp best hit"
    assert (tmp_path / "out/confusion.png").stat().st_size > 10000
    header = (tmp_path / "out/predictions.tsv").read_text().splitlines()[0].split("\t")
    assert header[:4] == ["id", "true", "model_pred", "baseline_pred"]


def test_cli_needs_model_or_baseline(tmp_path):
    with pytest.raises(SystemExit):
        evaluate_cmd.main(["--test", "x.fasta", "--out", str(tmp_path)])


# ---------------------------------------------------------------------------------------------
# Evidence: the reference set inside the artifact, aligned by a stand-in for argserve-evidence

# Test protein, true class, and what Toy calls it: A-rich -> alpha, W-rich -> trp, else nonarg.
EVIDENCE_TEST = [("ta|alpha", "MAAAAK"),     # model alpha; close alpha reference -> reference
                 ("tw|trp", "MWWWWK"),       # model trp; distant alpha hit -> model, trp
                 ("tn|nonarg", "MKKKK"),     # model nonarg; no hit -> model, nonarg
                 ("tx|trp", "MKKKKKR"),      # model nonarg; close trp reference -> reference, trp
                 ("tz|alpha", "MAAAAAAK"),   # model alpha; no hit -> novel
                 ("te|nonarg", "MKRKRK")]    # model nonarg; close hit but e-value too high
EVIDENCE_HITS = [HITS_HEADER,
                 "ta\tbla_1_A1\tbla\tA1\talpha\t0.95\t1\t0.9\t300\t120\t1e-40" + "\t" * 10,
                 "tw\tbla_1_A1\tbla\tA1\talpha\t0.5\t1\t0.9\t90\t40\t1e-8" + "\t" * 10,
                 "tx\ttrpR\ttrpR\t\ttrp\t0.8\t1\t0.6\t200\t80\t1e-5" + "\t" * 10,
                 "te\tbla_1_A1\tbla\tA1\talpha\t0.99\t1\t1\t30\t15\t0.001" + "\t" * 10]


def _model_with_references(tmp_path, evidence=None):
    refs = rf.build_references([rf.LabelledProtein("bla_1_A1", "MAAAAAK", "alpha"),
                                rf.LabelledProtein("trpR", "MWWWK", "trp")])
    text = rf.references_tsv(refs)
    meta = _meta(references=rf.references_json(text, len(refs), "toy"),
                 evidence=evidence or {"reference_min_identity": 0.8,
                                       "reference_min_coverage": 0.6, "max_evalue": 1e-5})
    _save(tmp_path / "m.pt", meta, {"references.tsv": text})
    write_fasta(tmp_path / "test.fasta", EVIDENCE_TEST)
    return text


def _evaluate(tmp_path, *extra):
    return evaluate_cmd.main(["--test", str(tmp_path / "test.fasta"),
                              "--model", str(tmp_path / "m.pt"), "--out", str(tmp_path / "out"),
                              "--num-threads", "1", "--threads", "1", *extra])


def test_cli_evidence_reference_only_and_combined(tmp_path, capsys):
    refs = _model_with_references(tmp_path)
    tool = fake_tool(tmp_path, "\n".join(EVIDENCE_HITS) + "\n")
    assert _evaluate(tmp_path, "--evidence-tool", str(tool)) == 0
    assert (tmp_path / "seen_references.tsv").read_text() == refs
    assert (tmp_path / "seen_queries.fasta").read_text().split("\n")[::2][:6] == \
        [">ta", ">tw", ">tn", ">tx", ">tz", ">te"]
    rep = json.loads((tmp_path / "out/evaluation.json").read_text())
    assert rep["model"]["accuracy"] == 5 / 6
    assert rep["reference_only"]["accuracy"] == 4 / 6
    assert rep["combined"]["accuracy"] == 1.0
    assert rep["combined"]["confusion_matrix"] == [[2, 0, 0], [0, 2, 0], [0, 0, 2]]
    assert rep["reference_only"]["per_class"]["alpha"]["predicted"] == 2
    assert rep["combined"]["nonarg_false_positive_rate"] == 0.0
    ev = rep["evidence"]
    assert ev["thresholds"] == {"reference_min_identity": 0.8, "reference_min_coverage": 0.6,
                                "max_evalue": 1e-5}
    assert ev["queries_with_hit"] == 3 and ev["tool_rows"] == 4
    assert ev["tiers"] == {"model": 3, "novel": 1, "reference": 2}
    assert ev["command"].startswith(f"{tool} --references ")
    assert ev["command"].endswith(" --threads 1 --nonarg-class nonarg --max-evalue 1e-05")
    assert ev["references"]["count"] == 2
    assert rep["combined"]["info"]["tiers"] == ev["tiers"]
    rows = [r.split("\t") for r in (tmp_path / "out/predictions.tsv").read_text().splitlines()]
    assert rows[0] == ["id", "true", "model_pred", "reference_only_pred", "combined_pred",
                       "model_prob", "model_p_arg", "tier", "nearest_reference",
                       "reference_identity", "nearest_arg_reference"]
    table = {r[0]: r for r in rows[1:]}
    assert table["ta"][2:5] == ["alpha", "alpha", "alpha"] and table["ta"][7:] == \
        ["reference", "bla_1_A1", "0.950", ""]
    assert table["tw"][2:5] == ["trp", "alpha", "trp"] and table["tw"][7] == "model"
    assert table["tx"][2:5] == ["nonarg", "trp", "trp"] and table["tx"][7:] == \
        ["reference", "trpR", "0.800", ""]
    assert table["tz"][7:] == ["novel", "", "", ""]
    assert table["te"][3:5] == ["nonarg", "nonarg"] and table["te"][7:] == ["model", "", "", ""]
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("class "))
    assert "reference_only" in header and "combined" in header
    assert (tmp_path / "out/confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_evidence_uses_the_artifact_thresholds(tmp_path):
    _model_with_references(tmp_path, {"reference_min_identity": 0.99,
                                      "reference_min_coverage": 0.6, "max_evalue": 1e-2})
    tool = fake_tool(tmp_path, "\n".join(EVIDENCE_HITS) + "\n")
    assert _evaluate(tmp_path, "--evidence-tool", str(tool)) == 0
    rep = json.loads((tmp_path / "out/evaluation.json").read_text())
    # Only te (identity 0.99, e-value 1e-3) now passes, as a reference call of alpha.
    assert rep["evidence"]["tiers"] == {"model": 4, "novel": 1, "reference": 1}
    assert rep["evidence"]["queries_with_hit"] == 4


def test_cli_evidence_skipped_without_tool_or_when_asked(tmp_path, capsys, monkeypatch):
    _model_with_references(tmp_path)
    monkeypatch.chdir(tmp_path)  # no build/bin/argserve-evidence here
    assert _evaluate(tmp_path) == 0
    err = capsys.readouterr().err
    assert "evidence skipped: build/bin/argserve-evidence not found" in err
    rep = json.loads((tmp_path / "out/evaluation.json").read_text())
    assert "reference_only" not in rep and "combined" not in rep and "evidence" not in rep
    assert _evaluate(tmp_path, "--no-evidence") == 0
    assert "evidence" not in capsys.readouterr().err
    assert _evaluate(tmp_path, "--evidence-tool", str(tmp_path / "missing")) == 1
    assert "--evidence-tool" in capsys.readouterr().err


def test_cli_evidence_notes_a_model_without_references(tmp_path, capsys):
    _model_with_references(tmp_path)
    _save(tmp_path / "m.pt", _meta())
    assert _evaluate(tmp_path, "--evidence-tool", str(tmp_path / "unused")) == 0
    assert "the model has no reference set" in capsys.readouterr().err


def test_cli_evidence_tool_failure_is_an_error(tmp_path, capsys):
    _model_with_references(tmp_path)
    tool = fake_tool(tmp_path, "", exit_code=2)
    assert _evaluate(tmp_path, "--evidence-tool", str(tool)) == 1
    assert "fake failure" in capsys.readouterr().err


def test_references_must_match_their_sha256(tmp_path):
    text = _model_with_references(tmp_path)
    module, meta = ev.load_model(tmp_path / "m.pt")
    _save(tmp_path / "m.pt", meta, {"references.tsv": text + "x\tx\t\talpha\tMK\n"})
    with pytest.raises(ev.EvaluationError, match="does not match the sha256"):
        ev.load_artifact(tmp_path / "m.pt")
    _save(tmp_path / "m.pt", meta)
    with pytest.raises(ev.EvaluationError, match="references.tsv is missing"):
        ev.load_artifact(tmp_path / "m.pt")
