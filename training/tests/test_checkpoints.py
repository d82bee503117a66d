"""Official checkpoint layouts (fair-esm .pt, Hugging Face directory) load into identical models."""

import argparse
import json
import struct
import sys
import types

import pytest
import torch

from argtrain import alphabet
from argtrain.checkpoints import (CheckpointError, load_backbone, load_fair_esm, load_hf,
                                  load_safetensors, save_safetensors)
from reference_esm2 import (fair_esm_state_dict, hf_config, hf_state_dict, random_official_weights,
                            reference_forward)

LAYERS, DIM, HEADS = 2, 40, 5


@pytest.fixture(scope="module")
def weights():
    return random_official_weights(LAYERS, DIM, HEADS, seed=11)


@pytest.fixture(scope="module")
def tokens():
    return alphabet.batch_encode(["MKTAYIAKQRQISF", "ACDEFGHIK", "W"])


def _cfg(layers=LAYERS, dim=DIM, heads=HEADS):
    # The official files keep sizes under cfg["model"] (an omegaconf object in the real files).
    return {"model": argparse.Namespace(encoder_layers=layers, encoder_embed_dim=dim,
                                        encoder_attention_heads=heads, token_dropout=True)}


def _write_fair_esm(path, weights, **overrides):
    sd = fair_esm_state_dict(weights)
    sd.update(overrides)
    torch.save({"model": sd, "cfg": _cfg()}, path)
    return path


def _write_hf(directory, weights, fmt="safetensors"):
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps(hf_config(LAYERS, DIM, HEADS)))
    sd = hf_state_dict(weights)
    if fmt == "safetensors":
        save_safetensors(sd, directory / "model.safetensors", {"format": "pt"})
    else:
        torch.save(sd, directory / "pytorch_model.bin")
    return directory


def _outputs(model, tokens):
    with torch.no_grad():
        return model.representations(tokens), model(tokens)


def test_fair_esm_and_hf_layouts_give_identical_models(tmp_path, weights, tokens):
    a = load_fair_esm(_write_fair_esm(tmp_path / "esm2_t2_test.pt", weights))
    b = load_hf(_write_hf(tmp_path / "hf_st", weights, "safetensors"))
    c = load_hf(_write_hf(tmp_path / "hf_bin", weights, "bin"))
    assert a.config == b.config == c.config
    assert (a.num_layers, a.embed_dim, a.attention_heads) == (LAYERS, DIM, HEADS)
    ra, la = _outputs(a, tokens)
    for m in (b, c):
        r, lg = _outputs(m, tokens)
        assert torch.equal(r, ra) and torch.equal(lg, la)
    ref_reps, _ = reference_forward(weights, tokens, HEADS)
    real = tokens.ne(alphabet.PAD)
    assert (ra - ref_reps)[real].abs().max().item() < 1e-5


def test_load_backbone_detects_the_format(tmp_path, weights):
    m1, src1 = load_backbone(_write_fair_esm(tmp_path / "esm2_t2_test.pt", weights))
    m2, src2 = load_backbone(_write_hf(tmp_path / "hf", weights))
    assert src1 == "esm2_t2_test" and src2 == "synthetic/esm2_test"
    assert m1.config == m2.config


def test_fair_esm_unknown_key_is_named(tmp_path, weights):
    path = _write_fair_esm(tmp_path / "x.pt", weights,
                           **{"encoder.sentence_encoder.layers.0.extra.weight": torch.zeros(1)})
    with pytest.raises(CheckpointError, match=r"unknown key\(s\).*layers\.0\.extra\.weight"):
        load_fair_esm(path)


def test_fair_esm_missing_key_is_named(tmp_path, weights):
    sd = fair_esm_state_dict(weights)
    del sd["encoder.sentence_encoder.layers.1.fc2.bias"]
    torch.save({"model": sd, "cfg": _cfg()}, tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match=r"missing key\(s\).*layers\.1\.fc2\.bias"):
        load_fair_esm(tmp_path / "x.pt")


def test_hf_unknown_and_missing_keys_are_named(tmp_path, weights):
    d = _write_hf(tmp_path / "hf", weights)
    sd = load_safetensors(d / "model.safetensors")
    sd["esm.encoder.layer.0.attention.self.mystery.weight"] = torch.zeros(2)
    save_safetensors(sd, d / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"unknown key\(s\).*mystery"):
        load_hf(d)
    del sd["esm.encoder.layer.0.attention.self.mystery.weight"]
    del sd["esm.encoder.layer.0.intermediate.dense.weight"]
    save_safetensors(sd, d / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"missing key\(s\).*layers\.0\.fc1\.weight"):
        load_hf(d)


def test_untied_lm_weight_is_rejected(tmp_path, weights):
    sd = fair_esm_state_dict(weights)
    sd["encoder.lm_head.weight"] = sd["encoder.lm_head.weight"] + 1.0
    torch.save({"model": sd, "cfg": _cfg()}, tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match="tied"):
        load_fair_esm(tmp_path / "x.pt")


def test_wrong_rotary_buffer_is_rejected(tmp_path, weights):
    sd = fair_esm_state_dict(weights)
    sd["encoder.sentence_encoder.layers.0.self_attn.rot_emb.inv_freq"] *= 2
    torch.save({"model": sd, "cfg": _cfg()}, tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match="rot_emb.inv_freq"):
        load_fair_esm(tmp_path / "x.pt")


def test_heads_come_from_cfg_even_when_its_classes_are_not_installed(tmp_path, weights, tokens):
    # Stand-in for omegaconf: pickle an object of a module, then make the module disappear.
    mod = types.ModuleType("fake_omegaconf_for_test")

    class DictConfig:
        def __init__(self, content):
            self._content = content

    DictConfig.__module__ = mod.__name__
    DictConfig.__qualname__ = "DictConfig"
    mod.DictConfig = DictConfig
    sys.modules[mod.__name__] = mod
    try:
        cfg = DictConfig({"model": DictConfig({"encoder_attention_heads": HEADS,
                                               "encoder_layers": LAYERS})})
        torch.save({"model": fair_esm_state_dict(weights), "cfg": cfg}, tmp_path / "x.pt")
    finally:
        del sys.modules[mod.__name__]
    model = load_fair_esm(tmp_path / "x.pt")
    assert model.attention_heads == HEADS
    ref_reps, _ = reference_forward(weights, tokens, HEADS)
    with torch.no_grad():
        real = tokens.ne(alphabet.PAD)
        assert (model.representations(tokens) - ref_reps)[real].abs().max().item() < 1e-5


def test_unknown_head_count_needs_to_be_given(tmp_path, weights):
    torch.save({"model": fair_esm_state_dict(weights)}, tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match="attention heads"):
        load_fair_esm(tmp_path / "x.pt")
    assert load_fair_esm(tmp_path / "x.pt", attention_heads=HEADS).attention_heads == HEADS


def test_safetensors_layout_is_the_published_one(tmp_path):
    # Hand-built file: u64 little-endian header size, JSON header, raw little-endian data.
    header = json.dumps({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                         "b": {"dtype": "I64", "shape": [1, 1], "data_offsets": [8, 16]},
                         "__metadata__": {"format": "pt"}}).encode()
    raw = struct.pack("<Q", len(header)) + header + struct.pack("<2f", 1.5, -2.0) + struct.pack("<q", 7)
    (tmp_path / "h.safetensors").write_bytes(raw)
    t = load_safetensors(tmp_path / "h.safetensors")
    assert t["a"].tolist() == [1.5, -2.0] and t["b"].tolist() == [[7]]


def test_safetensors_round_trip(tmp_path):
    tensors = {"f32": torch.randn(3, 4), "f16": torch.randn(5).half(), "bf16": torch.randn(2, 2).bfloat16(),
               "i64": torch.arange(6).view(2, 3), "empty": torch.zeros(0, 3)}
    save_safetensors(tensors, tmp_path / "r.safetensors")
    data = (tmp_path / "r.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    assert n % 8 == 0 and json.loads(data[8:8 + n])["f32"]["dtype"] == "F32"
    back = load_safetensors(tmp_path / "r.safetensors")
    assert set(back) == set(tensors)
    for k, v in tensors.items():
        assert back[k].dtype == v.dtype and torch.equal(back[k], v)
