"""subband's WaveMix against the official ``wavemix`` package, given the same weights.

Skipped where ``wavemix`` does not import: it needs numpy < 2 and pulls in torchvision, so it
lives in a separate environment (see ``benchmarks/wavemix_official.py``). There:
``python -m pytest tests/models/test_wavemix_official.py``.
"""

import pytest
import torch

import subband
from subband.models.wavemix import WaveMix, WaveMixSegmentation

wavemix = pytest.importorskip("wavemix")
from wavemix.classification import WaveMix as OfficialClassifier  # noqa: E402
from wavemix.SemSegment import WaveMix as OfficialSegmentation  # noqa: E402

# the official package builds its DWT modules once, at import, on cuda:0 when CUDA is available;
# the comparisons run on the CPU, so move them there (in place)
for _name in ("xf1", "xf2", "xf3", "xf4"):
    getattr(wavemix, _name).to("cpu")

# registered name -> the official constructor and its arguments (from the official configuration files)
OFFICIAL = {
    "wavemix_lite_144_7": (
        OfficialClassifier,
        dict(num_classes=10, depth=7, final_dim=144, ff_channel=144, level=1, initial_conv="strided", stride=1),
    ),
    "wavemix_lite_128_7": (
        OfficialClassifier,
        dict(num_classes=47, depth=7, final_dim=128, ff_channel=128, level=1, initial_conv="strided", stride=1),
    ),
    "wavemix_lite_112_16": (
        OfficialClassifier,
        dict(num_classes=26, depth=16, final_dim=112, ff_channel=112, level=1, initial_conv="strided", stride=1),
    ),
    "wavemix_lite_256_8": (
        OfficialClassifier,
        dict(num_classes=100, depth=8, final_dim=256, ff_channel=256, level=1, initial_conv="strided", stride=1),
    ),
    "wavemix_192_16_l1": (
        OfficialClassifier,
        dict(num_classes=1000, depth=16, final_dim=192, ff_channel=192, level=1, initial_conv="pachify", patch_size=4),
    ),
    "wavemix_192_16_l3": (
        OfficialClassifier,
        dict(num_classes=1000, depth=16, final_dim=192, ff_channel=192, level=3, initial_conv="pachify", patch_size=4),
    ),
    "wavemix_seg_256_16": (
        OfficialSegmentation,
        dict(num_classes=20, depth=16, final_dim=256, ff_channel=256, level=4, stride=2),
    ),
}


def _randomise_norms(model: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial BatchNorm statistics and affine parameters, so eval mode is tested too."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=g))
            m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
            with torch.no_grad():
                m.weight.copy_(1 + 0.1 * torch.randn(m.num_features, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.num_features, generator=g))


def _pair(official_cls, official_kwargs, ours: torch.nn.Module):
    """The official model (random init) and ours carrying its state dict (strict: same keys and shapes)."""
    torch.manual_seed(0)
    official = official_cls(**official_kwargs)
    _randomise_norms(official)
    ours.load_state_dict(official.state_dict(), strict=True)
    return official.eval(), ours.eval()


def _assert_same(ours: torch.Tensor, official: torch.Tensor) -> None:
    assert ours.shape == official.shape
    # float32, a different summation order in the DWT: relative to the output's scale
    scale = official.abs().max().item()
    torch.testing.assert_close(ours, official, rtol=1e-4, atol=1e-5 * max(scale, 1.0))


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_registered_configs_load_official_weights(name):
    official_cls, kwargs = OFFICIAL[name]
    official = official_cls(**kwargs)
    ours = subband.create_model(name)
    ours.load_state_dict(official.state_dict(), strict=True)
    count = sum(p.numel() for p in official.parameters())
    assert sum(p.numel() for p in ours.parameters()) == count
    paper = subband.model_info(name)
    if paper.params_exact:
        assert paper.params == count


@pytest.mark.parametrize(
    "name, size",
    [("wavemix_lite_144_7", (32, 32)), ("wavemix_192_16_l1", (64, 64)), ("wavemix_192_16_l3", (64, 64)),
     ("wavemix_seg_256_16", (64, 128))],
)  # fmt: skip
def test_registered_outputs_equal_official(name, size):
    official_cls, kwargs = OFFICIAL[name]
    official, ours = _pair(official_cls, kwargs, subband.create_model(name))
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        _assert_same(ours(x), official(x))


@pytest.mark.parametrize("levels", [1, 2, 3, 4])
@pytest.mark.parametrize("stem", ["strided", "patchify"])
def test_every_level_and_stem_equals_official(levels, stem):
    stem_kwargs = dict(stride=2) if stem == "strided" else dict(patch_size=2)
    official, ours = _pair(
        OfficialClassifier,
        dict(num_classes=7, depth=2, final_dim=32, ff_channel=24, level=levels, dropout=0.0,
             initial_conv="strided" if stem == "strided" else "pachify", **stem_kwargs),
        WaveMix(num_classes=7, depth=2, dim=32, ff_channel=24, levels=levels, dropout=0.0, stem=stem, **stem_kwargs),
    )  # fmt: skip
    x = torch.randn(3, 3, 64, 128)
    with torch.no_grad():
        _assert_same(ours(x), official(x))
        feats = official.conv(x)
        for block in official.layers:
            feats = block(feats) + feats
        _assert_same(ours.forward_features(x), feats)


@pytest.mark.parametrize("levels", [1, 4])
def test_segmentation_equals_official_in_training_mode_with_gradients(levels):
    """Training mode (batch statistics, no dropout) and the gradient of every parameter."""
    kwargs = dict(num_classes=5, depth=2, final_dim=32, ff_channel=32, level=levels, dropout=0.0, stride=2)
    official, ours = _pair(
        OfficialSegmentation, kwargs, WaveMixSegmentation(num_classes=5, depth=2, dim=32, levels=levels, dropout=0.0)
    )
    official.train(), ours.train()
    x = torch.randn(2, 3, 64, 128)
    y_official, y_ours = official(x), ours(x)
    assert y_ours.shape == (2, 5, 64, 128)
    _assert_same(y_ours, y_official)
    target = torch.randn_like(y_official)
    ((y_official - target) ** 2).mean().backward()
    ((y_ours - target) ** 2).mean().backward()
    official_grads = dict(official.named_parameters())
    for n, p in ours.named_parameters():
        _assert_same(p.grad, official_grads[n].grad)
