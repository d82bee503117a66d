"""Faithfulness of argtrain.esm2 to the official ESM-2 forward pass (tests/reference_esm2.py)."""

import json

import pytest
import torch

from argtrain import alphabet
from argtrain.checkpoints import load_into_esm2
from argtrain.classifier import ARGClassifier
from argtrain.esm2 import ESM2, ESM2Config
from argtrain.export import export_model, model_json
from reference_esm2 import random_official_weights, reference_forward, reference_mean_pool

LAYERS, DIM, HEADS = 3, 48, 6


def _ours(w, token_dropout=True):
    sd = {k: v for k, v in w.items() if not k.endswith("inv_freq") and k != "lm_head.weight"}
    aux = {k: v for k, v in w.items() if k.endswith("inv_freq") or k == "lm_head.weight"}
    return load_into_esm2(sd, ESM2Config(LAYERS, DIM, HEADS, token_dropout), "test", aux).eval()


@pytest.fixture(scope="module")
def weights():
    return random_official_weights(LAYERS, DIM, HEADS, seed=3)


@pytest.fixture(scope="module")
def tokens():
    seqs = ["MKTAYIAKQRQISFVKSHFSRQ", "ACDEFGHIKLMNPQRSTVWYXBUZO", "mkv", "GAVLIPFW"]
    t = alphabet.batch_encode(seqs)
    t[3, 3] = alphabet.MASK  # exercises the token-dropout rescaling
    t[3, 5] = alphabet.MASK
    return t


def test_representations_and_lm_logits_match_reference(weights, tokens):
    model = _ours(weights)
    ref_reps, ref_logits = reference_forward(weights, tokens, HEADS)
    with torch.no_grad():
        reps = model.representations(tokens)
        logits = model(tokens)
    real = tokens.ne(alphabet.PAD)
    assert (reps - ref_reps)[real].abs().max().item() < 1e-5
    assert (logits - ref_logits)[real].abs().max().item() < 1e-4
    assert logits.shape == (4, tokens.shape[1], 33)


def test_without_padding_or_masks_matches_reference(weights):
    t = alphabet.batch_encode(["MKTAYIAKQR", "ACDEFGHIKL"])
    ref_reps, ref_logits = reference_forward(weights, t, HEADS)
    model = _ours(weights)
    with torch.no_grad():
        assert torch.allclose(model.representations(t), ref_reps, atol=1e-5, rtol=0)
        assert torch.allclose(model(t), ref_logits, atol=1e-4, rtol=0)


def test_token_dropout_flag_is_honoured(weights, tokens):
    ref_reps, _ = reference_forward(weights, tokens, HEADS, token_dropout=False)
    with torch.no_grad():
        off = _ours(weights, token_dropout=False).representations(tokens)
        on = _ours(weights, token_dropout=True).representations(tokens)
    real = tokens.ne(alphabet.PAD)
    assert (off - ref_reps)[real].abs().max().item() < 1e-5
    # Rescaling by 0.88 changes every position once it has gone through attention and LNs.
    assert (on - off)[real].abs().max().item() > 1e-3


def test_scripted_backbone_matches_eager(weights, tokens):
    model = _ours(weights)
    scripted = torch.jit.script(model)
    with torch.no_grad():
        assert torch.allclose(scripted(tokens), model(tokens), atol=1e-5, rtol=0)


def test_exported_embed_and_logits_match_reference(weights, tokens, tmp_path):
    torch.manual_seed(0)
    clf = ARGClassifier(_ours(weights), num_classes=3)
    head_w, head_b = clf.head.weight.detach().clone(), clf.head.bias.detach().clone()
    meta = model_json(name="faithful", version="1", classes=["a", "b", "nonarg"],
                      nonarg_class="nonarg", max_residues=1022, config=clf.backbone.config,
                      source="synthetic", lora=None, training=None, metrics=None)
    out = tmp_path / "m.pt"
    export_model(clf, meta, str(out))
    files = {"model.json": ""}
    art = torch.jit.load(str(out), _extra_files=files)
    assert json.loads(files["model.json"])["backbone"]["num_layers"] == LAYERS

    ref_reps, _ = reference_forward(weights, tokens, HEADS)
    ref_embed = reference_mean_pool(ref_reps, tokens)
    with torch.no_grad():
        emb = art.embed(tokens)
        logits = art(tokens)
    assert emb.dtype == torch.float32 and emb.shape == (4, DIM)
    assert (emb - ref_embed).abs().max().item() < 1e-4
    assert (logits - (ref_embed @ head_w.t() + head_b)).abs().max().item() < 1e-4


def test_representations_do_not_depend_on_padding(weights):
    model = _ours(weights)
    short, long = "MKVLA", "MKVLAGGHHTTRRKKEE"
    with torch.no_grad():
        alone = model.representations(alphabet.batch_encode([short]))[0]
        batched = model.representations(alphabet.batch_encode([short, long]))[0, : len(short) + 2]
    assert torch.allclose(alone, batched, atol=1e-5, rtol=0)


@pytest.mark.parametrize("max_scores", [1, 7 * 30 * 30])
def test_chunked_attention_matches_reference(weights, tokens, max_scores):
    # 1: one (sequence, head) score matrix at a time; 7*T*T: chunks that split a sequence's heads.
    model = _ours(weights)
    for layer in model.layers:
        layer.self_attn.max_scores = max_scores
    ref_reps, _ = reference_forward(weights, tokens, HEADS)
    with torch.no_grad():
        reps = model.representations(tokens)
    real = tokens.ne(alphabet.PAD)
    assert (reps - ref_reps)[real].abs().max().item() < 1e-5


def test_training_and_inference_attention_agree(weights, tokens):
    # Training keeps the official float softmax; inference skips the copy. Same numbers in fp32.
    model = _ours(weights)
    with torch.no_grad():
        inference = model.representations(tokens)
        model.train()
        training = model.representations(tokens)
    real = tokens.ne(alphabet.PAD)
    assert (inference - training)[real].abs().max().item() < 1e-6


def test_random_init_is_deterministic():
    torch.manual_seed(5)
    a = ESM2(ESM2Config(2, 32, 4))
    a.init_weights()
    torch.manual_seed(5)
    b = ESM2(ESM2Config(2, 32, 4))
    b.init_weights()
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    assert a.embed_tokens.weight[alphabet.PAD].abs().sum() == 0


def test_bad_head_count_is_rejected():
    with pytest.raises(ValueError, match="divisible"):
        ESM2(ESM2Config(1, 30, 4))
