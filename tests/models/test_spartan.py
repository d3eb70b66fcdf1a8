"""SpaRTAN: the complex channel product equals torch's complex multiplication, the wave channel
mixer equals a per-pixel reference, the grouping rule of the official code, the official key
names, and clear errors (params, forward, backward and features_only: the contract test)."""

import pytest
import torch
import torch.nn.functional as F

import subband
from subband.models.spartan import (
    SpaRTAN,
    SpatialMixer,
    WaveChannelMixer,
    complex_channel_scale,
    convert_official_state_dict,
)
from tests.tolerances import assert_close


def test_complex_channel_scale_is_complex_multiplication():
    torch.manual_seed(0)
    x, w = torch.randn(2, 6, 4, 5, dtype=torch.float64), torch.randn(1, 1, 1, 3, 2, dtype=torch.float64)
    z = torch.view_as_complex(x.permute(0, 2, 3, 1).reshape(2, 4, 5, 3, 2).contiguous())  # (B, H, W, K)
    want = torch.view_as_real(z * torch.view_as_complex(w)).reshape(2, 4, 5, 6).permute(0, 3, 1, 2)
    assert_close(complex_channel_scale(x, w), want)


def test_wave_channel_mixer_matches_a_per_pixel_reference():
    torch.manual_seed(1)
    m = WaveChannelMixer(8, 2).double().eval()
    x = torch.randn(2, 8, 3, 3, dtype=torch.float64)
    theta = F.gelu(m.theta(x))
    weight = m.proj(x)
    feat = torch.empty_like(theta)
    for b in range(2):
        for i in range(3):
            for j in range(3):
                c = int(x[b, :, i, j].argmax())  # the pixel's strongest input channel
                feat[b, :, i, j] = weight[b, :, i, j] * theta[b, :, i, j] + weight[b, c, i, j] * theta[b, c, i, j]
    want = m.proj_out(m.attn(m.conv(complex_channel_scale(feat, m.complex))))
    assert_close(m(x), want)


def test_grouping_follows_the_official_rule():
    model = subband.create_model("spartan_t")
    early, late = model.stages[0][0], model.stages[3][1]  # stage 4 starts with its downsample
    assert early.smixer.h_conv[0].c.groups == 1 and early.cmixer.conv[0].c.groups == 32 * 4  # dense; depthwise
    assert late.smixer.h_conv[0].c.groups == 128 and late.cmixer.conv[0].c.groups == 256  # depthwise; C groups
    assert [len(s) for s in model.stages] == [3, 4, 13, 3]


def test_gradcheck_tiny_block():
    torch.manual_seed(2)
    block = SpaRTAN(depths=(1,), dims=(8,), expand_ratios=(2,), num_classes=3, drop_path_rate=0.0).double()
    block.stages[0][0].scale_1.data.fill_(0.5)
    block.stages[0][0].scale_2.data.fill_(0.5)
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: block(t), (x,), eps=1e-6, atol=1e-5)


def test_official_keys_map_onto_this_module():
    model = SpaRTAN(depths=(1, 1), dims=(8, 16), expand_ratios=(2, 2), num_classes=5)
    official = {  # official name -> name here
        "conv.0.conv.weight": "stem.0.0.c.weight",
        "conv.1.norm.running_var": "stem.1.0.bn.running_var",
        "layers.0.smixer.h_conv.conv.weight": "stages.0.0.smixer.h_conv.0.c.weight",
        "layers.0.smixer.l_conv.0.conv.weight": "stages.0.0.smixer.l_conv.0.weight",
        "layers.0.smixer.l_conv.1.norm.weight": "stages.0.0.smixer.l_conv.1.0.bn.weight",
        "layers.0.smixer.h_attn.squeeze.bias": "stages.0.0.smixer.h_attn.fc1.bias",
        "layers.0.cmixer.conv.conv.weight": "stages.0.0.cmixer.conv.0.c.weight",
        "layers.0.cmixer.attn.expand.weight": "stages.0.0.cmixer.attn.fc2.weight",
        "layers.0.cmixer.complex": "stages.0.0.cmixer.complex",
        "layers.1.conv.weight": "stages.1.0.0.c.weight",  # the downsample between stages
        "layers.1.norm.bias": "stages.1.0.0.bn.bias",
        "layers.2.norm_1.weight": "stages.1.1.norm_1.weight",
        "layers.2.scale_2": "stages.1.1.scale_2",
        "linear.weight": "head.fc.weight",
    }
    got = convert_official_state_dict(dict.fromkeys(official, None), depths=(1, 1))
    assert list(got) == list(official.values())
    assert set(official.values()) <= set(model.state_dict())


def test_bad_arguments():
    with pytest.raises(ValueError, match="even"):
        SpatialMixer(7)
    with pytest.raises(ValueError, match="expand_ratio"):
        WaveChannelMixer(8, 1)
    with pytest.raises(ValueError, match="equal lengths"):
        SpaRTAN(depths=(1, 1), dims=(8,), expand_ratios=(2, 2))
    with pytest.raises(ValueError, match="multiple of 8"):
        SpaRTAN(depths=(1,), dims=(12,), expand_ratios=(2,))
