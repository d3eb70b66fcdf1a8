"""Next-ViT: timm parity given the same weights (eval and training mode, logits and feature maps),
fused == unfused and the fused parameter counts, the official checkpoint key mapping, the E-MHSA
token pooling against ``AvgPool1d``, the layout of the registered variants, errors."""

import copy

import pytest
import torch
from torch import nn

import subband
from subband.compress import fuse
from subband.models._features import FeaturePyramid
from subband.models.nextvit import (
    NTB,
    EfficientAttention,
    NextViT,
    PatchEmbed,
    convert_official_state_dict,
    convert_timm_state_dict,
    stage_layout,
)

TINY = (1, 2, 5, 2)  # the smallest layout with every kind of block: identity / 1x1 / stride-2 patch embeddings


def _randomise(model: nn.Module, calibrate: torch.Tensor | None = None, seed: int = 3) -> None:
    """Random weights and BatchNorm affine parameters and statistics. With ``calibrate``, the
    running statistics are those of that input instead (every normalised map is then of order 1
    and the logits of a deep model depend on the input)."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.2)
                m.running_mean.normal_(0, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                if calibrate is not None:
                    m.reset_running_stats()
                    m.momentum = None  # a cumulative average
            elif isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.normal_(0, m.weight[0].numel() ** -0.5)
                if m.bias is not None:
                    m.bias.normal_(0, 0.1)
        if calibrate is not None:
            model.train()(calibrate)
    model.eval()


def test_timm_state_dict_gives_the_same_outputs():
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    ref = timm.create_model("nextvit_small", depths=TINY, num_classes=7, drop_path_rate=0.0).eval()
    _randomise(ref, torch.randn(4, 3, 64, 64))
    ours = NextViT(TINY, num_classes=7).eval()
    ours.load_state_dict(convert_timm_state_dict(ref.state_dict()))  # strict
    x = torch.randn(2, 3, 72, 88)  # odd maps from stage 3 on: ceil-mode pooling, tokens not filling a window
    with torch.no_grad():
        y = ref(x)
        assert (y[0] - y[1]).abs().max() > 0.1  # the logits depend on the input
        torch.testing.assert_close(ours(x), y, rtol=1e-5, atol=1e-5)
        feats = ours.forward_features(x)
        # features of magnitude ~15 after 12 blocks: float32 rounding (another summation order in
        # channels-last convs) reaches a few 1e-5
        torch.testing.assert_close(ours.head.norm(feats), ref.forward_features(x), rtol=1e-5, atol=1e-4)
        torch.testing.assert_close(
            ours.forward_head(feats, pre_logits=True),
            ref.forward_head(ref.forward_features(x), pre_logits=True),
            rtol=1e-5,
            atol=1e-4,
        )
        t = ref.stem(x)
        for fmap, stage in zip(FeaturePyramid(copy.deepcopy(ours))(x), ref.stages, strict=True):  # timm's stage outputs
            t = stage(t)
            torch.testing.assert_close(fmap, t, rtol=1e-5, atol=1e-4)
    # training mode (BatchNorm batch statistics, on the pooled tokens too) agrees as well
    ours.train()
    ref.train()
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-4, atol=1e-4)


def test_gradients_equal_timms_in_float64():
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    ref = timm.create_model("nextvit_small", depths=TINY, num_classes=7, drop_path_rate=0.0)
    _randomise(ref, torch.randn(4, 3, 64, 64))
    ours = NextViT(TINY, num_classes=7)
    ours.load_state_dict(convert_timm_state_dict(ref.state_dict()))
    ref.double().train()
    ours.double().train()
    x = torch.randn(2, 3, 40, 56, dtype=torch.float64)  # 5x7 and 3x4 maps at the E-MHSAs: windows left over
    ref(x).square().sum().backward()
    ours(x).square().sum().backward()  # channels-last activations, batch statistics
    theirs = dict(ref.named_parameters())
    for name, timm_name in convert_timm_state_dict({n: n for n in theirs}).items():
        p = ours.get_parameter(name)
        torch.testing.assert_close(p.grad, theirs[timm_name].grad, rtol=1e-8, atol=1e-10, msg=name)


def test_fused_equals_unfused():
    torch.manual_seed(0)
    model = NextViT(TINY, num_classes=5)
    _randomise(model, torch.randn(4, 3, 64, 64))
    x = torch.randn(2, 3, 64, 80)
    with torch.no_grad():
        y = model(x)
        torch.testing.assert_close(fuse(model)(x), y, rtol=1e-5, atol=1e-5)  # the library-wide copy
        assert model.fuse() is model
        torch.testing.assert_close(model(x), y, rtol=1e-5, atol=1e-5)
        model.fuse()  # a second call changes nothing
        torch.testing.assert_close(model(x), y, rtol=1e-5, atol=1e-5)
    norms = [n for n, m in model.named_modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    assert norms == ["head.norm"]
    with pytest.raises(RuntimeError, match="eval"):
        NextViT(TINY).fuse()


@pytest.mark.parametrize(
    ("name", "train", "fused"),
    [
        ("nextvit_small", 31_763_368, 31_733_768),
        ("nextvit_base", 44_818_856, 44_773_640),
        ("nextvit_large", 57_874_344, 57_813_512),
    ],
)
def test_parameter_counts_of_both_forms(name, train, fused):
    with torch.device("meta"):
        model = subband.create_model(name).eval()
        assert sum(p.numel() for p in model.parameters()) == train == subband.model_info(name).params
        model.fuse()
    assert sum(p.numel() for p in model.parameters()) == fused


def test_channels_last_gives_the_same_values():
    torch.manual_seed(0)
    model = NextViT(TINY, num_classes=4)
    _randomise(model, torch.randn(4, 3, 64, 64))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        y = model(x)
        model.channels_last = False
        torch.testing.assert_close(model(x), y, rtol=1e-5, atol=1e-5)


def test_token_pooling_is_the_official_avgpool1d_and_bn():
    torch.manual_seed(0)
    attn = EfficientAttention(64, head_dim=32, sr_ratio=3).eval()
    _randomise(attn)
    x = torch.randn(2, 50, 64)  # 50 tokens: five windows of 9, five tokens dropped
    official = attn.norm(nn.AvgPool1d(9, 9)(x.transpose(1, 2))).transpose(1, 2)
    torch.testing.assert_close(attn.reduce(x), official)
    assert attn.reduce(x).shape == (2, 5, 64)
    assert attn(x).shape == (2, 50, 64) and attn.num_heads == 2
    with pytest.raises(ValueError, match="at least 9 tokens"):
        attn(torch.randn(1, 8, 64))
    assert EfficientAttention(64, sr_ratio=1).reduce(x) is x


def test_patch_embed_pools_with_ceil_mode():
    torch.manual_seed(0)
    pe = PatchEmbed(8, 16, stride=2).eval()
    _randomise(pe)
    x = torch.randn(1, 8, 7, 5)
    pooled = nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False)(x)
    torch.testing.assert_close(pe(x), pe.bn(pe.c(pooled)))
    assert pe(x).shape == (1, 16, 4, 3)
    with pytest.raises(ValueError, match="stride"):
        PatchEmbed(8, 16, stride=3)


def _official_keys(depths):
    """State-dict names of bytedance/Next-ViT's model, written out from its layout: every block in
    one ``features`` list, ``conv1``/``conv2`` MLPs, a ``proj_head`` Sequential."""
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    keys = {f"stem.{i}.conv.weight" for i in range(4)} | {f"stem.{i}.norm.{p}" for i in range(4) for p in bn}
    in_ch, k = 64, 0
    for i, blocks in enumerate(stage_layout(depths)):
        for j, (kind, out) in enumerate(blocks):
            pre = f"features.{k}."
            width = out if kind == "ncb" else 192 * out // 256
            if (i > 0 and j == 0) or in_ch != width:
                keys |= {pre + "patch_embed.conv.weight"} | {pre + f"patch_embed.norm.{p}" for p in bn}
            mhca = pre + "mhca."
            keys |= {mhca + "group_conv3x3.weight", mhca + "projection.weight"} | {mhca + f"norm.{p}" for p in bn}
            keys |= {pre + f"mlp.conv{n}.{p}" for n in (1, 2) for p in ("weight", "bias")}
            if kind == "ncb":
                keys |= {pre + f"norm.{p}" for p in bn}
            else:
                keys |= {pre + f"norm{n}.{p}" for n in (1, 2) for p in bn}
                keys |= {pre + f"e_mhsa.{n}.{p}" for n in ("q", "k", "v", "proj") for p in ("weight", "bias")}
                if i < 3:  # sr_ratio > 1
                    keys |= {pre + f"e_mhsa.norm.{p}" for p in bn}
                keys |= {pre + "projection.conv.weight"} | {pre + f"projection.norm.{p}" for p in bn}
            in_ch, k = out, k + 1
    return keys | {f"norm.{p}" for p in bn} | {"proj_head.0.weight", "proj_head.0.bias"}


def test_official_checkpoint_keys_convert():
    model = NextViT(TINY, num_classes=5)
    converted = convert_official_state_dict({k: k for k in _official_keys(TINY)}, TINY)
    assert set(converted) == set(model.state_dict())
    assert converted["stages.1.blocks.1.e_mhsa.wq.weight"] == "features.2.e_mhsa.q.weight"
    assert converted["stages.1.blocks.0.mlp.fc2.bias"] == "features.1.mlp.conv2.bias"
    official = {converted[k]: v.clone() for k, v in model.state_dict().items()}
    fresh = NextViT(TINY, num_classes=5)
    fresh.load_state_dict(convert_official_state_dict(official, TINY))
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(fresh.eval()(x), model.eval()(x))


def test_registered_layout_and_drop_path():
    with torch.device("meta"):
        model = subband.create_model("nextvit_small", drop_path_rate=0.1)
    kinds = [[(type(b).__name__, b.mlp.fc2.out_channels) for b in s.blocks] for s in model.stages]
    assert kinds == [
        [("NCB", 96)] * 3,
        [("NCB", 192)] * 3 + [("NTB", 256)],
        ([("NCB", 384)] * 4 + [("NTB", 512)]) * 2,
        [("NCB", 768)] * 2 + [("NTB", 1024)],
    ]
    ntbs = [b for s in model.stages for b in s.blocks if isinstance(b, NTB)]
    assert [(b.e_mhsa.sr_ratio, b.mhsa_out_channels, b.mhca_out_channels) for b in ntbs] == [
        (4, 192, 64),
        (2, 384, 128),
        (2, 384, 128),
        (1, 768, 256),
    ]
    assert [b.mlp.fc1.out_channels for b in model.stages[2].blocks] == [1152] * 4 + [1024] + [1152] * 4 + [1024]
    last = ntbs[-1]
    assert last.mlp_drop_path.p == pytest.approx(0.1)
    assert (last.mhsa_drop_path.p, last.mhca_drop_path.p) == pytest.approx((0.075, 0.025))
    assert model.feature_info == [
        dict(num_chs=c, reduction=r, module=f"stages.{i}")
        for i, (c, r) in enumerate(zip((96, 256, 512, 1024), (4, 8, 16, 32)))
    ]
    assert subband.list_models("nextvit_*") == ["nextvit_base", "nextvit_large", "nextvit_small"]


def test_errors():
    with pytest.raises(ValueError, match="multiple of 5"):
        NextViT((3, 4, 8, 3))
    with pytest.raises(ValueError, match="multiple of head_dim"):
        EfficientAttention(48, head_dim=32)
    with pytest.raises(ValueError, match="at least 16 tokens"):
        NextViT(TINY).eval()(torch.randn(1, 3, 24, 24))  # stage 2 E-MHSA: 3x3 tokens, sr_ratio 4
