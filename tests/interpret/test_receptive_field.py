"""Effective receptive field: the closed form of a linear conv stack, summaries, PNG, models."""

import numpy as np
import pytest
import torch
from scipy.signal import convolve2d
from torch import nn

import subband
from subband.interpret import effective_receptive_field, erf_summary, save_erf_png


def test_linear_stack_erf_is_the_autoconvolution_of_its_kernels():
    torch.manual_seed(0)
    layers = [nn.Conv2d(2, 2, 3, padding=1, bias=False) for _ in range(3)]
    for conv in layers:
        nn.init.constant_(conv.weight, 1.0)
    net = nn.Sequential(*layers)
    erf = effective_receptive_field(net, size=21, in_chans=2, samples=3)
    box = np.ones((3, 3))
    # a path through the stack multiplies three boxes; 2 x 2 channel paths lead to each of the
    # 2 summed outputs, and the map sums |gradient| over the 2 input channels: 16 x the box^3
    want = convolve2d(convolve2d(box, box), box) * 2 * 2 * 2 * 2
    got = erf[10 - 3 : 10 + 4, 10 - 3 : 10 + 4].numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert float(erf.sum()) == pytest.approx(float(erf[7:14, 7:14].sum()))  # nothing outside the 7x7 window


def test_summary_numbers():
    erf = torch.zeros(11, 11)
    erf[5, 5] = 1.0
    erf[3:8, 3:8] += 0.01
    s = erf_summary(erf)
    assert s["side@0.5"] == 1.0 and s["side@0.9"] == 5.0
    assert 0 < s["area@0.2"] <= 25 / 121
    with pytest.raises(ValueError, match="H, W"):
        erf_summary(torch.zeros(2, 3, 3))


def test_models_and_png(tmp_path):
    torch.manual_seed(0)
    model = subband.create_model("convnext_atto").eval()
    erf = effective_receptive_field(model, size=64, samples=2)
    assert erf.shape == (64, 64) and torch.isfinite(erf).all() and erf.sum() > 0
    path = save_erf_png(erf, tmp_path / "erf.png", title="convnext_atto")
    assert path.stat().st_size > 1000
    with pytest.raises(ValueError, match="feature map"):
        effective_receptive_field(nn.Flatten(), size=8, samples=1)
