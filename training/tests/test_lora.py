import pytest
import torch

from argtrain import alphabet
from argtrain.classifier import ARGClassifier
from argtrain.esm2 import ESM2Config
from argtrain.lora import LoRAConfig, LoRALinear, apply_lora, merge_lora, parse_targets


def _model(seed=0):
    torch.manual_seed(seed)
    m = ARGClassifier.build(ESM2Config(2, 32, 4), num_classes=3, dropout=0.0)
    m.backbone.init_weights()
    return m


TOKENS = alphabet.batch_encode(["MKTAYIAKQRQISFVK", "ACDEFGH", "WWY"])


def _outputs(m):
    m.eval()
    with torch.no_grad():
        return m(TOKENS), m.embed(TOKENS)


def test_lora_starts_as_identity():
    m = _model()
    before = _outputs(m)
    apply_lora(m, LoRAConfig(rank=4, alpha=8, dropout=0.0, targets=parse_targets("all")))
    after = _outputs(m)
    assert sum(isinstance(x, LoRALinear) for x in m.modules()) == 2 * 6
    assert torch.equal(before[0], after[0]) and torch.equal(before[1], after[1])


def test_only_lora_and_head_are_trainable():
    m = apply_lora(_model(), LoRAConfig(targets=["q", "v"]))
    names = [n for n, p in m.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n or n.startswith("head.") for n in names)
    assert {n for n in names if n.startswith("head.")} == {"head.weight", "head.bias"}
    assert sum("lora_A" in n for n in names) == 2 * 2
    loss = m(TOKENS).sum()
    loss.backward()
    for n, p in m.named_parameters():
        assert (p.grad is not None) == p.requires_grad, n


def test_classifier_target_alone_freezes_the_backbone():
    m = apply_lora(_model(), LoRAConfig(targets=parse_targets("classifier")))
    assert not any(isinstance(x, LoRALinear) for x in m.modules())
    assert [n for n, p in m.named_parameters() if p.requires_grad] == ["head.weight", "head.bias"]


def test_merge_preserves_outputs():
    m = apply_lora(_model(), LoRAConfig(rank=4, alpha=16, dropout=0.1, targets=parse_targets("all")))
    torch.manual_seed(1)
    with torch.no_grad():  # stand-in for training: make every update non-zero
        for n, p in m.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05)
    adapted = _outputs(m)
    assert not torch.allclose(adapted[0], _outputs(_model())[0], atol=1e-3)
    merge_lora(m)
    assert not any(isinstance(x, LoRALinear) for x in m.modules())
    assert not any("lora_" in k for k in m.state_dict())
    merged = _outputs(m)
    assert (merged[0] - adapted[0]).abs().max().item() < 1e-5
    assert (merged[1] - adapted[1]).abs().max().item() < 1e-5
    torch.jit.script(m)  # merged model is plain ESM-2 again


def test_base_parameter_names_are_kept():
    base_keys = set(_model().state_dict())
    m = apply_lora(_model(), LoRAConfig(targets=["q", "fc1"]))
    keys = set(m.state_dict())
    assert base_keys <= keys
    assert {k for k in keys - base_keys} == {
        f"backbone.layers.{i}.{mod}.lora_{ab}" for i in range(2)
        for mod in ("self_attn.q_proj", "fc1") for ab in "AB"}


def test_unknown_target_is_rejected():
    with pytest.raises(ValueError, match="unknown LoRA targets"):
        parse_targets("q,query")


def test_last_layers_limits_lora_to_the_top_of_the_stack():
    m = apply_lora(_model(), LoRAConfig(targets=["q", "fc2"], last_layers=1))
    adapted = {n.rsplit(".", 1)[0] for n, p in m.named_parameters() if "lora_A" in n}
    assert adapted == {"backbone.layers.1.self_attn.q_proj", "backbone.layers.1.fc2"}
    m(TOKENS).sum().backward()
    # Nothing below the first adapted layer needs a gradient.
    assert all(p.grad is None for p in m.backbone.layers[0].parameters())
