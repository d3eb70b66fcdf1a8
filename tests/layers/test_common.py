"""The small shared layers against their definitions: LayerNorm2d, DropPath, Mlp."""

import pytest
import torch
import torch.nn.functional as F

from subband.layers import DropPath, LayerNorm2d, Mlp, drop_path, layer_norm_2d


def test_layer_norm_2d_is_layer_norm_over_channels():
    norm = LayerNorm2d(6)
    torch.nn.init.normal_(norm.weight)
    torch.nn.init.normal_(norm.bias)
    x = torch.randn(2, 6, 5, 4, dtype=torch.float64)
    mean, var = x.mean(1, keepdim=True), x.var(1, unbiased=False, keepdim=True)
    want = (x - mean) / torch.sqrt(var + 1e-6) * norm.weight.double().view(-1, 1, 1) + norm.bias.double().view(-1, 1, 1)
    torch.testing.assert_close(norm.double()(x), want)
    cl = x.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(
        layer_norm_2d(cl, None, None), F.layer_norm(x.permute(0, 2, 3, 1), (6,), eps=1e-6).permute(0, 3, 1, 2)
    )


def test_drop_path_keeps_the_expectation_and_drops_whole_samples():
    torch.manual_seed(0)
    x = torch.ones(20000, 3)
    y = drop_path(x, 0.25, training=True)
    per_sample = y[:, 0]
    assert set(per_sample.unique().tolist()) == {0.0, torch.tensor(1 / 0.75).item()}
    assert (y == y[:, :1]).all()  # a sample is dropped as a whole
    assert y.mean().item() == pytest.approx(1.0, abs=0.02)
    assert DropPath(0.5).eval()(x) is x
    with pytest.raises(ValueError, match="in \\[0, 1\\)"):
        DropPath(1.0)


def test_mlp_conv_and_linear_forms_agree():
    lin, conv = Mlp(8, 16, 4), Mlp(8, 16, 4, use_conv=True)
    conv.load_state_dict({k: v.view(*v.shape, *([1, 1] if v.ndim == 2 else [])) for k, v in lin.state_dict().items()})
    x = torch.randn(2, 8, 5, 5)
    torch.testing.assert_close(conv(x), lin(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2), rtol=1e-5, atol=1e-6)


def test_squeeze_excite_is_its_formula():
    from subband.layers import SqueezeExcite, make_divisible

    se = SqueezeExcite(6, 3).double()
    x = torch.randn(2, 6, 4, 5, dtype=torch.float64)
    s = x.mean((2, 3))  # (B, C)
    h = torch.relu(s @ se.fc1.weight.view(3, 6).T + se.fc1.bias)
    want = x * torch.sigmoid(h @ se.fc2.weight.view(6, 3).T + se.fc2.bias)[:, :, None, None]
    torch.testing.assert_close(se(x), want)
    assert [make_divisible(v) for v in (3, 12, 13, 20)] == [8, 16, 16, 24]
    with pytest.raises(ValueError, match="positive"):
        SqueezeExcite(6, 0)
