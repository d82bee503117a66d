import json
import random
import shutil

import pytest
from synthdata import family, mutate

torch = pytest.importorskip("torch")

from argtrain import alphabet  # noqa: E402
from argtrain import evaluate as ev  # noqa: E402
from argtrain.commands import evaluate as evaluate_cmd  # noqa: E402
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


def _save(path, meta):
    torch.jit.save(torch.jit.script(Toy()), str(path),
                   _extra_files={"model.json": json.dumps(meta)})


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
