"""Pyramid convolution and SEPC: on equal-size levels (``level_stride=1``) PConv == ``F.conv3d``
with kernel (3, k, k) zero-padded in level (plus the biases of the terms present); on a real
pyramid == a loop of ``F.conv2d`` and a numpy align-corners bilinear upsampling; SEPC with zero
offsets == PConv, and deformable exactly at output levels >= 1; integrated BN == numpy statistics
over every pixel of every level (== BatchNorm3d on equal sizes) and != per-level BN; the neck on
two subband backbones; clear errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import subband
from subband.layers import IntegratedBatchNorm, LevelConv, PyramidConv, SEPCNeck, deform_conv2d, integrated_batch_norm
from tests.tolerances import assert_close

pytestmark = pytest.mark.usefixtures("one_thread")


def _randomise(module: nn.Module, std: float = 0.3) -> nn.Module:
    torch.manual_seed(123)
    for name, p in module.named_parameters():
        if "conv_offset" not in name:
            nn.init.normal_(p, std=std)
    return module


def _np_upsample_align_corners(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear with align_corners=True: output i reads input i * (n_in - 1) / (n_out - 1)."""

    def axis_matrix(n_in: int, n_out: int) -> np.ndarray:
        m = np.zeros((n_out, n_in))
        for i in range(n_out):
            src = i * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
            lo = min(int(np.floor(src)), n_in - 1)
            hi, t = min(lo + 1, n_in - 1), src - lo
            m[i, lo] += 1 - t
            m[i, hi] += t
        return m

    mh, mw = axis_matrix(a.shape[-2], size[0]), axis_matrix(a.shape[-1], size[1])
    return np.einsum("ih,...hw,jw->...ij", mh, a, mw)


@pytest.mark.parametrize("kernel_size,dilation,deform", [(3, 1, False), (5, 2, False), (3, 1, True)])
def test_equal_size_levels_make_pconv_a_conv3d(kernel_size, dilation, deform):
    pc = _randomise(PyramidConv(3, 4, kernel_size, dilation, deform=deform, level_stride=1).double())
    torch.manual_seed(0)
    levels = [torch.randn(2, 3, 6, 7, dtype=torch.float64) for _ in range(4)]
    w3 = torch.stack([pc.down.weight, pc.same.weight, pc.up.weight], dim=2)  # (O, C, 3, k, k): depth 0 reads l - 1
    p = dilation * (kernel_size - 1) // 2
    vol = F.conv3d(torch.stack(levels, dim=2), w3, None, 1, (1, p, p), (1, dilation, dilation))  # (B, O, L, H, W)
    got = pc(levels)
    for level in range(4):
        bias = pc.same.bias + (pc.down.bias if level > 0 else 0) + (pc.up.bias if level < 3 else 0)
        assert_close(got[level], vol[:, :, level] + bias.view(1, -1, 1, 1))


@pytest.mark.parametrize("sizes", [[(8, 8), (4, 4), (2, 2), (1, 1)], [(7, 9), (4, 5), (2, 3)]])
def test_pyramid_is_the_loop_over_levels(sizes):
    pc = _randomise(PyramidConv(3, 5).double())
    torch.manual_seed(1)
    levels = [torch.randn(2, 3, *s, dtype=torch.float64) for s in sizes]
    got = pc(levels)
    for level, x in enumerate(levels):
        want = F.conv2d(x, pc.same.weight, pc.same.bias, padding=1).detach().numpy()
        if level > 0:  # stride-2 conv of the finer level
            want = (
                want + F.conv2d(levels[level - 1], pc.down.weight, pc.down.bias, stride=2, padding=1).detach().numpy()
            )
        if level < len(levels) - 1:  # conv of the coarser level, then upsampled
            coarse = F.conv2d(levels[level + 1], pc.up.weight, pc.up.bias, padding=1).detach().numpy()
            want = want + _np_upsample_align_corners(coarse, sizes[level])
        assert_close(got[level], want)


def test_sepc_with_zero_offsets_is_pconv_and_deforms_only_levels_from_one():
    plain = _randomise(PyramidConv(4, 4).double())
    sepc = _randomise(PyramidConv(4, 4, deform=True).double())
    assert sepc.same.conv_offset is not None and plain.same.conv_offset is None
    torch.manual_seed(2)
    levels = [torch.randn(1, 4, s, s, dtype=torch.float64) for s in (8, 4, 2)]
    for a, b in zip(sepc(levels), plain(levels)):
        assert_close(a, b)
    for conv in (sepc.up, sepc.same, sepc.down):
        nn.init.normal_(conv.conv_offset.weight, std=0.2)
    got = sepc(levels)

    def term(conv, x, level):
        if level == 0:
            return F.conv2d(x, conv.weight, conv.bias, conv.stride, 1)
        return deform_conv2d(x, conv.conv_offset(x), conv.weight, conv.bias, conv.stride, 1)

    for level in range(3):
        want = term(sepc.same, levels[level], level)
        if level > 0:
            want = want + term(sepc.down, levels[level - 1], level)
        if level < 2:
            up = term(sepc.up, levels[level + 1], level)
            want = want + F.interpolate(up, size=levels[level].shape[2:], mode="bilinear", align_corners=True)
        assert_close(got[level], want)
    assert_close(got[0], plain(levels)[0])  # level 0 is never deformed
    assert not torch.allclose(got[1], plain(levels)[1])


def _np_ibn(levels, weight, bias, eps):
    flat = np.concatenate([lv.transpose(1, 0, 2, 3).reshape(lv.shape[1], -1) for lv in levels], axis=1)  # (C, N)
    mean, var = flat.mean(1), flat.var(1)
    out = [
        (lv - mean[:, None, None]) / np.sqrt(var[:, None, None] + eps) * weight[:, None, None] + bias[:, None, None]
        for lv in levels
    ]
    return out, mean, flat.var(1, ddof=1)


def test_integrated_batch_norm_uses_the_statistics_of_the_whole_pyramid():
    ibn = _randomise(IntegratedBatchNorm(3, momentum=0.25)).double()
    torch.manual_seed(3)
    levels = [torch.randn(2, 3, *s, dtype=torch.float64) * (1 + i) + i for i, s in enumerate([(6, 5), (3, 3), (2, 2)])]
    want, mean, var_unbiased = _np_ibn(
        [lv.numpy() for lv in levels], ibn.bn.weight.detach().numpy(), ibn.bn.bias.detach().numpy(), 1e-5
    )
    got = ibn(levels)
    for g, w in zip(got, want):
        assert_close(g, w)
    assert_close(ibn.bn.running_mean, 0.25 * mean)
    assert_close(ibn.bn.running_var, 0.75 + 0.25 * var_unbiased)
    rm, rv = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    fn = integrated_batch_norm(levels, rm, rv, ibn.bn.weight, ibn.bn.bias, training=True, momentum=0.25)
    for a, b in zip(fn, got):  # function == module, running stats alike
        assert_close(a, b)
    assert_close(rm, ibn.bn.running_mean)
    per_level = nn.BatchNorm2d(3).double().train()
    per_level.load_state_dict(ibn.bn.state_dict())
    assert not torch.allclose(per_level(levels[1]), got[1], atol=1e-3)  # per-level BN would differ
    ibn.eval()  # eval: running statistics
    scale = ibn.bn.weight / torch.sqrt(ibn.bn.running_var + 1e-5)
    for g, lv in zip(ibn(levels), levels):
        assert_close(g, (lv - ibn.bn.running_mean.view(-1, 1, 1)) * scale.view(-1, 1, 1) + ibn.bn.bias.view(-1, 1, 1))


def test_integrated_batch_norm_on_equal_sizes_is_batchnorm3d_and_converts_to_syncbn():
    ibn = IntegratedBatchNorm(4).double()
    bn3 = nn.BatchNorm3d(4).double()
    torch.manual_seed(4)
    levels = [torch.randn(2, 4, 3, 5, dtype=torch.float64) + i for i in range(3)]
    want = bn3(torch.stack(levels, dim=2))  # (B, C, L, H, W)
    for level, got in enumerate(ibn(levels)):
        assert_close(got, want[:, :, level])
    assert_close(ibn.bn.running_var, bn3.running_var)
    sync = nn.SyncBatchNorm.convert_sync_batchnorm(ibn).eval()
    assert isinstance(sync, IntegratedBatchNorm) and isinstance(sync.bn, nn.SyncBatchNorm)
    for a, b in zip(sync(levels), ibn.eval()(levels)):
        assert_close(a, b)


def test_neck_wiring_and_official_parameter_count():
    neck = _randomise(SEPCNeck([6, 6, 6], out_channels=6, num_convs=2, lateral=False, branches=True).double())
    torch.manual_seed(5)
    levels = [torch.randn(2, 6, s, s, dtype=torch.float64) for s in (8, 4, 2)]
    got = neck(levels)
    x = levels
    for pconv, norm in zip(neck.pconvs, neck.norms):
        x = [F.relu(y) for y in norm(pconv(x))]
    cls = [F.relu(y) for y in neck.branch_norms[0]([neck.cls_conv(f, i) for i, f in enumerate(x)])]
    reg = [F.relu(y) for y in neck.branch_norms[1]([neck.reg_conv(f, i) for i, f in enumerate(x)])]
    for (c, r), wc, wr in zip(got, cls, reg):
        assert_close(c, wc)
        assert_close(r, wr)
    # the official SEPC neck (5 x 256 ch FPN levels in, 4 PConvs, iBN, all deformable, cls/reg branches)
    official = SEPCNeck([256] * 5, lateral=False, branches=True)
    kernel = 256 * 256 * 9 + 256 + (256 * 18 * 9 + 18)  # weight, bias, offset conv
    assert sum(p.numel() for p in official.parameters()) == 4 * (3 * kernel + 2 * 256) + 2 * (kernel + 2 * 256)
    lite = SEPCNeck([256] * 5, lateral=False, branches=True, deform=False)
    assert sum(p.numel() for p in lite.parameters()) == 4 * (3 * (kernel - 256 * 18 * 9 - 18) + 512) + 2 * (
        kernel + 512
    )


@pytest.mark.parametrize("name,size", [("convnext_atto", 64), ("lsnet_t", 64)])
@pytest.mark.parametrize("branches", [False, True])
def test_neck_on_backbone_pyramids(name, size, branches):
    torch.manual_seed(6)
    backbone = subband.create_model(name, features_only=True)
    neck = SEPCNeck.from_backbone(backbone, out_channels=16, num_convs=2, num_outs=5, branches=branches)
    assert neck.in_channels == backbone.feature_info.channels()
    with torch.no_grad():
        feats = backbone(torch.randn(2, 3, size, size))
    feats = [f.requires_grad_() for f in feats]
    out = neck(feats)
    first = size // backbone.feature_info.reduction()[0]
    want = [(2, 16, max(first >> i, 1), max(first >> i, 1)) for i in range(5)]
    maps = [m for pair in out for m in pair] if branches else out
    assert [tuple(m.shape) for m in maps] == ([w for w in want for _ in range(2)] if branches else want)
    assert all(torch.isfinite(m).all() for m in maps)
    sum((m * torch.randn_like(m)).sum() for m in maps).backward()
    dead = [n for n, p in neck.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not dead, f"no gradient reaches {dead}"
    assert all(f.grad is not None for f in feats)


def test_errors():
    pc = PyramidConv(4, 4)
    with pytest.raises(ValueError, match="at least 2"):
        pc([])
    with pytest.raises(ValueError, match="at least 2"):
        pc([torch.randn(1, 4, 8, 8)])
    with pytest.raises(ValueError, match="C=4"):
        pc([torch.randn(1, 4, 8, 8), torch.randn(1, 5, 4, 4)])
    with pytest.raises(ValueError, match="shrink"):
        pc([torch.randn(1, 4, 8, 8), torch.randn(1, 4, 8, 8)])
    with pytest.raises(ValueError, match="shrink"):
        PyramidConv(4, 4, level_stride=1)([torch.randn(1, 4, 8, 8), torch.randn(1, 4, 4, 4)])
    with pytest.raises(ValueError, match="level_stride must be 1 or 2"):
        PyramidConv(4, 4, level_stride=3)
    with pytest.raises(ValueError, match="odd kernel_size"):
        LevelConv(4, 4, kernel_size=2)
    with pytest.raises(ValueError, match="non-empty"):
        SEPCNeck([])
    with pytest.raises(ValueError, match="num_outs"):
        SEPCNeck([8])
    with pytest.raises(ValueError, match="num_outs"):
        SEPCNeck([8, 16, 32], num_outs=2)
    with pytest.raises(ValueError, match="lateral=False"):
        SEPCNeck([8, 16], out_channels=8, lateral=False)
    neck = SEPCNeck([8, 16], out_channels=8, num_convs=1)
    with pytest.raises(ValueError, match="level 1 must be"):
        neck([torch.randn(1, 8, 8, 8), torch.randn(1, 8, 4, 4)])
    with pytest.raises(ValueError, match="list of 2"):
        neck([torch.randn(1, 8, 8, 8)])
    with pytest.raises(ValueError, match="shrink"):
        neck([torch.randn(1, 8, 8, 8), torch.randn(1, 16, 3, 3)])

    class Fake(nn.Module):
        feature_info = subband.models._features.FeatureInfo(
            [dict(num_chs=8, reduction=4, module="a"), dict(num_chs=16, reduction=16, module="b")]
        )

    with pytest.raises(ValueError, match="double"):
        SEPCNeck.from_backbone(Fake())
    with pytest.raises(ValueError, match="features_only"):
        SEPCNeck.from_backbone(nn.Conv2d(1, 1, 1))
