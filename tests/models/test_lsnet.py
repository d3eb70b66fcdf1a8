"""LSNet: fused == unfused (and the fused parameter count of the official deploy form), the
official checkpoint key mapping, the attention biases against the official offset table, the
distillation head, errors."""

import itertools

import pytest
import torch

import subband
from subband.models.lsnet import LSNet, LSNetAttention, LSNetBlock, convert_official_state_dict

TINY = dict(embed_dims=(16, 32, 48, 64), depths=(1, 2, 1, 2), num_heads=(2, 2, 2, 2), key_dims=(8, 8, 8, 8))


def _randomise(model: torch.nn.Module) -> None:
    """Non-trivial BatchNorm statistics and affine parameters (the zero-initialised ones too)."""
    torch.manual_seed(3)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.2)
                m.running_mean.normal_(0, 0.2)
                m.running_var.uniform_(0.5, 1.5)
            if isinstance(m, LSNetAttention):
                m.attention_biases.normal_()


def test_fused_equals_unfused_lsnet_t():
    model = subband.create_model("lsnet_t").eval()
    _randomise(model)
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        y = model(x)
        assert model.fuse() is model
        torch.testing.assert_close(model(x), y, rtol=1e-5, atol=1e-5)
    # the official deploy form (flops.py: replace_batchnorm) has 11,370,488 parameters
    assert sum(p.numel() for p in model.parameters()) == 11_370_488
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for n, m in model.named_modules() if "lkp" in n)
    with pytest.raises(RuntimeError, match="eval"):
        subband.create_model("lsnet_t").fuse()


def _conv_bn(prefix):
    return {f"{prefix}.c.weight"} | {
        f"{prefix}.bn.{p}" for p in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    }


def _bn(prefix):
    return {f"{prefix}.{p}" for p in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")}


def _official_keys(depths, attention_stage=3):
    """State-dict names of THU-MIG/lsnet's model, written out from its layout: ``blocks{i}`` holds
    the downsampling (indices 0, 1, from the second stage on) followed by the stage's blocks."""
    keys = set().union(*(_conv_bn(f"patch_embed.{j}") for j in (0, 2, 4)))
    for i, depth in enumerate(depths):
        first = 0
        if i > 0:
            keys |= _conv_bn(f"blocks{i + 1}.0") | _conv_bn(f"blocks{i + 1}.1")
            first = 2
        for d in range(depth):
            pre = f"blocks{i + 1}.{first + d}."
            keys |= _conv_bn(pre + "ffn.m.pw1") | _conv_bn(pre + "ffn.m.pw2")
            if d % 2 == 0:
                keys |= _conv_bn(pre + "mixer.conv") | _conv_bn(pre + "mixer.conv1")
                keys |= {f"{pre}se.{f}.{p}" for f in ("fc1", "fc2") for p in ("weight", "bias")}
            elif i == attention_stage:
                keys |= _conv_bn(pre + "mixer.m.qkv") | _conv_bn(pre + "mixer.m.proj.1") | _conv_bn(pre + "mixer.m.dw")
                keys |= {pre + "mixer.m.attention_biases", pre + "mixer.m.attention_bias_idxs"}
            else:
                keys |= set().union(*(_conv_bn(f"{pre}mixer.lkp.cv{n}") for n in (1, 2, 3)))
                keys |= {f"{pre}mixer.lkp.{n}.{p}" for n in ("cv4", "norm") for p in ("weight", "bias")}
                keys |= _bn(pre + "mixer.bn")
    return keys | _bn("head.bn") | {"head.l.weight", "head.l.bias"}


def test_official_checkpoint_keys_convert():
    model = LSNet(**TINY, num_classes=5)
    keys = _official_keys(TINY["depths"])
    converted = convert_official_state_dict({k: k for k in keys})
    assert set(converted) == set(model.state_dict())  # the index buffers are dropped
    official = {converted[k]: v.clone() for k, v in model.state_dict().items()}
    fresh = LSNet(**TINY, num_classes=5)
    fresh.load_state_dict(convert_official_state_dict({"model": official}))
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(fresh.eval()(x), model.eval()(x))


def _official_bias_index(resolution):
    """The official table index of every pixel pair: offsets numbered in order of first appearance."""
    points = list(itertools.product(range(resolution), range(resolution)))
    offsets, idxs = {}, []
    for p1 in points:
        for p2 in points:
            off = (abs(p1[0] - p2[0]), abs(p1[1] - p2[1]))
            idxs.append(offsets.setdefault(off, len(offsets)))
    return torch.tensor(idxs).view(len(points), len(points))


def test_attention_biases_follow_the_official_table():
    attn = LSNetAttention(32, key_dim=8, num_heads=2, attn_ratio=2, resolution=4)
    torch.nn.init.normal_(attn.attention_biases)
    table = attn.attention_biases
    torch.testing.assert_close(attn.bias(4, 4), table[:, _official_bias_index(4)])
    # a smaller map uses the offsets it has; a larger one clamps offsets beyond the table
    torch.testing.assert_close(attn.bias(2, 3)[:, 0], table[:, [0, 1, 2, 4, 5, 6]])
    assert torch.equal(attn.bias(1, 6)[:, 0, 5], table[:, 3]) and torch.equal(attn.bias(6, 1)[:, 0, 5], table[:, 12])
    y = attn(torch.randn(2, 32, 5, 3))
    assert y.shape == (2, 32, 5, 3)


def test_variants_alternate_the_mixers():
    with torch.device("meta"):
        model = subband.create_model("lsnet_s")
    kinds = [[type(b.mixer).__name__ for b in s.blocks] for s in model.stages]
    assert kinds == [
        ["RepVGGDW"],
        ["RepVGGDW", "LSConv"],
        ["RepVGGDW", "LSConv"] * 4,
        ["RepVGGDW", "_Residual"] * 5,
    ]
    attn = model.stages[3].blocks[1].mixer.m
    assert (attn.num_heads, attn.key_dim, attn.d, attn.resolution) == (4, 16, 112, 4)
    assert model.stages[2].blocks[0].se.fc1.out_channels == 80


def test_distillation_head_and_classifier_reset():
    model = LSNet(**TINY, num_classes=4, distillation=True)
    x = torch.randn(2, 3, 32, 32)
    logits, dist = model(x)
    assert logits.shape == dist.shape == (2, 4)
    model.eval()
    feats = model.forward_head(model.forward_features(x), pre_logits=True)
    torch.testing.assert_close(model(x), (model.head(feats) + model.head_dist(feats)) / 2)
    model.reset_classifier(3)
    assert model(x).shape == (2, 3) and model.head_dist.fc.out_features == 3


def test_errors():
    with pytest.raises(ValueError, match="one entry per stage"):
        LSNet(embed_dims=(16, 32), depths=(1, 1, 1))
    with pytest.raises(ValueError, match="divisible by 4"):
        LSNet(**{**TINY, "embed_dims": (18, 32, 48, 64)})
    with pytest.raises(ValueError, match="mixer must be one of"):
        LSNetBlock(16, "conv")


def test_zero_initialised_branches_and_every_parameter_learns():
    """The FFN and attention branches end in a BatchNorm whose scale starts at 0 (official init),
    so at initialisation no gradient reaches the layers before it; once it moves, all do (with a
    last-stage map of 2x2: on one pixel, attention has nothing to weigh and the queries get none)."""
    torch.manual_seed(0)
    model = LSNet(**TINY, num_classes=3)
    x, target = torch.randn(2, 3, 128, 128), torch.tensor([0, 2])
    torch.nn.functional.cross_entropy(model(x), target).backward()
    dead = {n for n, p in model.named_parameters() if not p.grad.abs().sum() > 0}
    assert dead and all(".ffn.m." in n or ".mixer.m." in n for n in dead)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith(("pw2.bn.weight", "proj.1.bn.weight")):
                p.fill_(1.0)
    model.zero_grad()
    torch.nn.functional.cross_entropy(model(x), target).backward()
    assert all(p.grad.abs().sum() > 0 for p in model.parameters())


def test_feature_pyramid_strides_8_to_64():
    net = subband.create_model("lsnet_t", features_only=True).eval()
    assert net.feature_info.reduction() == [8, 16, 32, 64]
    maps = net(torch.randn(1, 3, 128, 128))
    assert [tuple(m.shape[1:]) for m in maps] == [(64, 16, 16), (128, 8, 8), (256, 4, 4), (384, 2, 2)]
