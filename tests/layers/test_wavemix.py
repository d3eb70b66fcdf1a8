"""WaveMix block: the wavelet features against PyWavelets (and pytorch_wavelets, which the
official code uses, where it imports), shapes, errors. The segmentation model built from it:
output sizes, the trunk it shares with the classifier, the official parameter count. (Outputs
against the official package: tests/models/test_wavemix_official.py.)"""

import warnings

import numpy as np
import pytest
import pywt
import torch

import subband
from subband.layers import WaveMixBlock
from subband.models.wavemix import WaveMix, WaveMixSegmentation


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


@pytest.mark.parametrize(
    "stem, kwargs, scale",
    [("strided", dict(stride=2), 1.0), ("strided", dict(stride=1), 4.0), ("patchify", dict(patch_size=4), 1.0),
     ("patchify", dict(patch_size=8), 0.5)],
)  # fmt: skip
def test_segmentation_output_size(stem, kwargs, scale):
    torch.manual_seed(0)
    model = WaveMixSegmentation(num_classes=3, depth=1, dim=16, levels=2, stem=stem, **kwargs).eval()
    assert model.output_scale == scale
    h, w = 2 * model.size_divisor, 3 * model.size_divisor
    y = model(torch.randn(2, 3, h, w))
    assert y.shape == (2, 3, int(h * scale), int(w * scale))
    with pytest.raises(ValueError, match=f"multiples of {model.size_divisor}, got {h - 2}x{w}"):
        model(torch.randn(1, 3, h - 2, w))


def test_segmentation_is_the_classifier_trunk_then_expand():
    torch.manual_seed(0)
    cfg = dict(depth=2, dim=32, levels=3, stem="strided", stride=2, dropout=0.0)
    seg, clf = WaveMixSegmentation(num_classes=4, **cfg).eval(), WaveMix(num_classes=4, **cfg).eval()
    trunk = {k: v for k, v in seg.state_dict().items() if not k.startswith("expand.")}
    assert set(trunk) == {k for k in clf.state_dict() if not k.startswith("pool.")}
    clf.load_state_dict(trunk, strict=False)
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        torch.testing.assert_close(seg(x), seg.expand(clf.forward_features(x)))
    # the head: 4x4 stride-2 transposed convolutions halving the channels, then 1x1 to the classes
    shapes = [tuple(m.weight.shape) for m in seg.expand]
    assert shapes == [(32, 16, 4, 4), (16, 8, 4, 4), (4, 8, 1, 1)]


def test_registered_segmentation_matches_the_official_count():
    model = subband.create_model("wavemix_seg_256_16")
    # counted from the official wavemix.SemSegment.WaveMix with the same configuration
    assert sum(p.numel() for p in model.parameters()) == 63_164_628 == subband.model_info("wavemix_seg_256_16").params
    assert model.size_divisor == 64 and model.output_scale == 1.0 and model.num_classes == 20
