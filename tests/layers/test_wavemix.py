"""WaveMix block: the wavelet features against PyWavelets (and pytorch_wavelets, which the
official code uses, where it imports), shapes, errors."""

import warnings

import numpy as np
import pytest
import pywt
import torch

from subband.layers import WaveMixBlock


def _reference(block: WaveMixBlock, x: torch.Tensor) -> torch.Tensor:
    """The official forward, written out with PyWavelets computing the DWT."""
    r = block.reduction(x).detach().double().numpy()
    b, c = r.shape[:2]
    feats = []
    for j in range(1, block.levels + 1):
        coeffs = pywt.wavedec2(r, "db1", mode="zero", level=j)
        a, (cH, cV, cD) = coeffs[0], coeffs[1]
        details = np.stack([cH, cV, cD], axis=2).reshape(b, 3 * c, *a.shape[-2:])  # (B, C, 3, h, w) -> (B, 3C, h, w)
        feats.append(torch.from_numpy(np.concatenate([a, details], 1)).float())
    out = block._ff(block.levels)(feats[-1])
    for j in range(block.levels - 1, 0, -1):
        out = block._ff(j)(torch.cat([feats[j - 1], out], 1))
    return out


@pytest.mark.parametrize("levels", [1, 2, 3])
def test_block_equals_reference(levels):
    torch.manual_seed(0)
    block = WaveMixBlock(dim=16, levels=levels, ff_channel=12).eval()
    x = torch.randn(2, 16, 16, 24)
    y = block(x)
    assert y.shape == x.shape
    torch.testing.assert_close(y, _reference(block, x), rtol=1e-4, atol=1e-5)
    names = {n.split(".")[0] for n, _ in block.named_parameters()}
    assert names == {"reduction"} | (
        {"feedforward"} if levels == 1 else {f"feedforward{j}" for j in range(1, levels + 1)}
    )


def test_detail_layout_matches_pytorch_wavelets():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ptw = pytest.importorskip("pytorch_wavelets")
    x = torch.randn(2, 4, 8, 8)
    yl, yh = ptw.DWTForward(J=1, wave="db1", mode="zero")(x)
    block = WaveMixBlock(dim=16)
    a, details = block.dwt(x)
    torch.testing.assert_close(a, yl)
    torch.testing.assert_close(torch.stack(details, 2), yh[0])


def test_bad_sizes():
    with pytest.raises(ValueError, match="divisible by 4"):
        WaveMixBlock(dim=10)
    with pytest.raises(ValueError, match="divisible by 4, got 6x8"):
        WaveMixBlock(dim=8, levels=2)(torch.randn(1, 8, 6, 8))
