"""AFFNet: the layer layout of the official configuration (widths, strides, fusion), the AFF
block as the composition it is documented to be, the inverted residual against an explicit
computation, and clear errors (params, forward, backward, features_only: the contract test)."""

import pytest
import torch
import torch.nn.functional as F

import subband
from subband.layers import InvertedResidual
from subband.models.affnet import AFFBlock, AFFNet
from tests.tolerances import assert_close


def test_layout_of_the_official_modes():
    model = subband.create_model("affnet_et")
    assert [f["num_chs"] for f in model.feature_info] == [32, 48, 64, 104, 576]  # last: after the expansion
    assert [len(s[1].global_rep) - 1 for s in model.stages[2:]] == [2, 4, 3]  # AFF blocks (+ final norm)
    assert model.num_features == 576  # min(4 * 144, 960)
    big = AFFNet(widths=(64, 128, 256, 512, 640), no_fuse=(False, True, True), num_classes=0)
    assert big.stages[2][1].fusion is not None and big.stages[3][1].fusion is None
    assert big.num_features == 960
    maps = subband.create_model("affnet_et", features_only=True)(torch.randn(1, 3, 64, 64))
    assert [m.shape[-1] for m in maps] == [32, 16, 8, 4, 2]


def test_aff_block_is_its_composition():
    torch.manual_seed(0)
    block = AFFBlock(16, 32).double().eval()
    x = torch.randn(2, 16, 6, 6, dtype=torch.float64)
    h = F.group_norm(x, 1, block.norm1.weight, block.norm1.bias, block.norm1.eps)
    h = h + block.mlp.block(h)  # the inverted residual keeps its own skip
    h = F.group_norm(h, 1, block.norm2.weight, block.norm2.bias, block.norm2.eps)
    assert_close(block(x), x + block.filter(h))


def test_inverted_residual_matches_an_explicit_computation():
    torch.manual_seed(1)
    ir = InvertedResidual(8, 8, 1, 2.0).double().eval()
    x = torch.randn(2, 8, 5, 5, dtype=torch.float64)
    e, d, r = ir.block.exp_1x1[0], ir.block.conv_3x3[0], ir.block.red_1x1

    def cbn(m, t, **kw):
        return F.batch_norm(F.conv2d(t, m.c.weight, **kw), m.bn.running_mean, m.bn.running_var, m.bn.weight, m.bn.bias)

    h = F.silu(cbn(e, x))
    h = F.silu(cbn(d, h, padding=1, groups=16))
    assert_close(ir(x), x + cbn(r, h))
    assert not InvertedResidual(8, 16, 2).use_res_connect


def test_bad_arguments():
    with pytest.raises(ValueError, match="stride"):
        InvertedResidual(8, 8, 3)
    with pytest.raises(ValueError, match="5 layers"):
        AFFNet(widths=(32, 64, 128))
    with pytest.raises(ValueError, match="multiples of 8"):
        AFFNet(widths=(32, 64, 100, 256, 320))
