"""MobileMamba: the Haar branch against an explicit Haar transform, the channel split and parameter
counts against the official configurations, fusion, batch independence, the official key mapping."""

import pytest
import torch

import subband
from subband.models.mobilemamba import MRFFI, WTEMamba, convert_official_state_dict, mrffi_split


def _haar_bands(x: torch.Tensor) -> torch.Tensor:
    """Explicit one-level Haar analysis (odd sides zero-padded): ``(B, C, 4, h, w)``, bands a, h, v, d
    (h: detail along the rows' axis H, v: along W)."""
    x = torch.nn.functional.pad(x, (0, x.shape[-1] % 2, 0, x.shape[-2] % 2))
    p, q, r, s = x[..., 0::2, 0::2], x[..., 0::2, 1::2], x[..., 1::2, 0::2], x[..., 1::2, 1::2]
    return torch.stack([p + q + r + s, p + q - r - s, p - q + r - s, p - q - r + s], 2) / 2


def _haar_synthesis(bands: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Explicit inverse of :func:`_haar_bands`, cropped to ``h x w``."""
    a, dh, dv, dd = bands.unbind(2)
    b, c, hh, ww = a.shape
    out = bands.new_zeros(b, c, 2 * hh, 2 * ww)
    out[..., 0::2, 0::2] = (a + dh + dv + dd) / 2
    out[..., 0::2, 1::2] = (a + dh - dv - dd) / 2
    out[..., 1::2, 0::2] = (a - dh + dv - dd) / 2
    out[..., 1::2, 1::2] = (a - dh - dv + dd) / 2
    return out[..., :h, :w]


@pytest.mark.parametrize("size", [(6, 8), (7, 5), (1, 1)])
def test_wavelet_branch_is_the_haar_transform(size):
    g = torch.Generator().manual_seed(0)
    m = WTEMamba(3, kernel_size=3).double()
    x = torch.randn(2, 3, *size, dtype=torch.float64, generator=g)
    with torch.no_grad():
        m.wavelet_conv.weight.zero_()
        m.wavelet_conv.weight[:, 0, 1, 1] = 1.0  # identity on every (channel, band)
        m.wavelet_scale.fill_(1.0)
        torch.testing.assert_close(m.wavelet(x), x)  # perfect reconstruction, odd sides too
        # one (channel, band) at a time: the official layout is channel-major, bands a, h, v, d
        for c, band in [(0, 0), (1, 1), (2, 2), (0, 3)]:
            m.wavelet_scale.zero_()
            m.wavelet_scale[0, 4 * c + band] = 1.0
            keep = torch.zeros(1, 3, 4, 1, 1, dtype=torch.float64)
            keep[0, c, band] = 1.0
            torch.testing.assert_close(m.wavelet(x), _haar_synthesis(_haar_bands(x) * keep, *size))
        # with a conv on the bands: the conv acts on the explicit Haar coefficients
        m.wavelet_conv.weight.copy_(torch.randn(m.wavelet_conv.weight.shape, generator=g, dtype=torch.float64))
        m.wavelet_scale.copy_(torch.rand(m.wavelet_scale.shape, generator=g, dtype=torch.float64))
        bands = _haar_bands(x).flatten(1, 2)  # (B, 4C, h, w), channel-major
        bands = (m.wavelet_conv(bands) * m.wavelet_scale).unflatten(1, (3, 4))
        torch.testing.assert_close(m.wavelet(x), _haar_synthesis(bands, *size))


def test_wte_mamba_configuration():
    m = WTEMamba(112, kernel_size=7, ssm_ratio=2.0)
    ssm = m.ssm
    assert (ssm.d_inner, ssm.d_state, ssm.dt_rank, ssm.k, ssm.scans) == (224, 1, 7, 2, "bidi")
    assert (ssm.A_logs == 0).all() and ssm.projection == "conv_bn"
    assert (m.base_scale == 1).all() and torch.allclose(m.wavelet_scale, torch.tensor(0.1))
    assert m.wavelet_conv.weight.shape == (448, 1, 7, 7)


def test_channel_split_follows_the_official_rounding():
    # T2's three stages (global ratio, local ratio) = (0.8, 0.2), (0.7, 0.2), (0.6, 0.3)
    assert mrffi_split(144, 0.8, 0.2) == (112, 28, 4)
    assert mrffi_split(272, 0.7, 0.2) == (192, 54, 26)
    assert mrffi_split(368, 0.6, 0.3) == (224, 110, 34)
    assert mrffi_split(40, 0.6, 0.2) == (32, 8, 0)  # int(24) -> a tie between 16 and 32 rounds up
    assert mrffi_split(160, 0.9, 0.2) == (144, 16, 0)  # the local part takes what is left
    assert mrffi_split(64, 0.0, 0.5) == (0, 32, 32)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        mrffi_split(64, 1.2, 0.0)
    with pytest.raises(ValueError, match="rounds to"):
        mrffi_split(156, 1.0, 0.0)
    m = MRFFI(64, 0.0, 0.5, kernel_size=3)
    assert isinstance(m.global_op, torch.nn.Identity)
    assert m(torch.randn(1, 64, 5, 5)).shape == (1, 64, 5, 5)


# the official models' trainable parameters (built and counted; the registered Paper.params also
# counts 32 per global channel of frozen Haar filters)
OFFICIAL_TRAINABLE = {
    "mobilemamba_t2": 8_806_682,
    "mobilemamba_t4": 14_137_690,
    "mobilemamba_s6": 14_996_696,
    "mobilemamba_b1": 17_070_625,
}


@pytest.mark.parametrize("name", list(OFFICIAL_TRAINABLE))
def test_parameter_counts_equal_the_official_models(name):
    with torch.device("meta"):
        model = subband.create_model(name)
    count = sum(p.numel() for p in model.parameters())
    assert count == OFFICIAL_TRAINABLE[name]
    haar = sum(32 * m.dim for m in model.modules() if isinstance(m, WTEMamba))
    assert count + haar == subband.model_info(name).params


def _randomise_bn(model: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) * 0.5 + 0.5)  # zero-init scales too
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)


def test_fuse_keeps_the_output():
    torch.manual_seed(0)
    model = subband.create_model("mobilemamba_t2").eval()
    _randomise_bn(model)
    x = torch.randn(2, 3, 80, 72)
    with torch.no_grad():
        want = model(x)
        assert model.fuse() is model
        got = model(x)
    assert not any(isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)) for m in model.modules())
    assert (want - got).abs().max() < 1e-5 and want.abs().max() > 0.1


def test_samples_stay_independent_and_odd_sizes_work():
    """Each sample is scanned on its own (the official CPU fallback of the two-direction merge sums
    the forward scans over the batch; its GPU kernel, like this code, does not)."""
    torch.manual_seed(0)
    model = subband.create_model("mobilemamba_t2").eval()
    _randomise_bn(model)
    x = torch.randn(3, 3, 97, 97)  # odd maps in every stage: 7x7, 4x4, 2x2
    with torch.no_grad():
        feats = model.forward_intermediates(x, (0, 1, 2))
        assert [f.shape[-1] for f in feats] == [7, 4, 2]
        torch.testing.assert_close(model(x)[1:2], model(x[1:2]), rtol=1e-5, atol=1e-6)


def test_distillation_head_and_drop_path():
    model = subband.create_model("mobilemamba_t2", distillation=True, num_classes=7)
    x = torch.randn(2, 3, 64, 64)
    logits, dist = model(x)
    assert logits.shape == dist.shape == (2, 7)
    model.eval()
    with torch.no_grad():
        pooled = model.forward_head(model.forward_features(x), pre_logits=True)
        torch.testing.assert_close(model(x), (model.head(pooled) + model.head_dist(pooled)) / 2)
    b1 = subband.create_model("mobilemamba_b1")
    probs = [getattr(blk.drop_path, "p", 0.0) for stage in b1.stages for blk in stage.blocks]
    assert probs == pytest.approx([0.03 * j / 6 for j in range(7)])  # linear over the 7 blocks


def test_official_keys_map_onto_the_model():
    """Keys (and shapes, T2) of the official ``MobileMamba_T2`` state dict, one of each kind."""
    official = {
        "patch_embed.0.c.weight": (18, 3, 3, 3),
        "patch_embed.6.bn.running_var": (144,),
        "blocks1.0.dw0.m.c.weight": (144, 1, 3, 3),
        "blocks1.0.ffn0.m.pw2.bn.weight": (144,),
        "blocks1.0.mixer.m.attn.local_op.dwconv3x3.weight": (28, 1, 7, 7),
        "blocks1.0.mixer.m.attn.local_op.bn1.bias": (28,),
        "blocks1.0.mixer.m.attn.local_op.dwconv1x1.weight": (28, 1, 1, 1),
        "blocks1.0.mixer.m.attn.local_op.bn2.running_mean": (28,),
        "blocks1.0.mixer.m.attn.global_op.base_scale.weight": (1, 112, 1, 1),
        "blocks1.0.mixer.m.attn.global_op.wavelet_convs.0.weight": (448, 1, 7, 7),
        "blocks1.0.mixer.m.attn.global_op.wavelet_scale.0.weight": (1, 448, 1, 1),
        "blocks1.0.mixer.m.attn.global_op.global_atten.in_proj.c.weight": (448, 112, 1, 1),
        "blocks1.0.mixer.m.attn.global_op.global_atten.x_proj_weight": (2, 9, 224),
        "blocks1.0.mixer.m.attn.global_op.global_atten.dt_projs_weight": (2, 224, 7),
        "blocks1.0.mixer.m.attn.global_op.global_atten.A_logs": (448, 1),
        "blocks1.0.mixer.m.attn.global_op.global_atten.out_norm.weight": (224,),
        "blocks1.0.mixer.m.attn.proj.1.c.weight": (144, 144, 1, 1),
        "blocks2.0.0.m.c.weight": (144, 1, 3, 3),
        "blocks2.0.1.m.pw1.c.weight": (288, 144, 1, 1),
        "blocks2.1.conv2.c.weight": (576, 1, 3, 3),
        "blocks2.1.se.fc1.weight": (144, 576, 1, 1),
        "blocks2.1.conv3.bn.weight": (272,),
        "blocks2.2.1.m.pw2.c.weight": (272, 544, 1, 1),
        "blocks2.4.dw1.m.bn.weight": (272,),
        "blocks3.4.ffn1.m.pw1.c.weight": (736, 368, 1, 1),
        "head.bn.running_mean": (368,),
        "head.l.weight": (1000, 368),
    }
    state = {k: torch.zeros(s) for k, s in official.items()}
    state["blocks1.0.mixer.m.attn.global_op.wt_filter"] = torch.zeros(448, 1, 2, 2)
    ours = subband.create_model("mobilemamba_t2").state_dict()
    mapped = convert_official_state_dict({"model": state})
    assert len(mapped) == len(official)  # the Haar filters are dropped
    for key, value in mapped.items():
        assert key in ours, key
        assert ours[key].shape == value.shape, key


def test_bad_arguments():
    with pytest.raises(ValueError, match="divisible by 8"):
        subband.create_model("mobilemamba_t2", embed_dims=(100, 272, 368))
    with pytest.raises(ValueError, match="one entry per stage"):
        subband.create_model("mobilemamba_t2", depths=(1, 2))
    with pytest.raises(ValueError, match="odd"):
        WTEMamba(16, kernel_size=4)
    with pytest.raises(RuntimeError, match="eval"):
        subband.create_model("mobilemamba_t2").fuse()
