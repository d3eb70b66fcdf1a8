"""FDConv: Fourier-disjoint groups partition the rfft spectrum (radius order, numpy oracle), group kernels
are numpy's irfft2 of their coefficients and sum to the static kernel, parameter counts equal the
official module's (formula read from its __init__) and give ResNet-50's "+3.6M", with the dynamics off
the layer is F.conv2d with the reconstructed kernel, batched == per-sample, fold == unfold, FBM bands
sum to the input, gradcheck, errors, convert_to_fdconv."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import subband
from subband.layers import FDConv, FrequencyBandModulation, convert_to_fdconv, fdconv2d, frequency_bands
from subband.layers.fdconv import fdw_group_index
from tests.tolerances import assert_close

pytestmark = pytest.mark.usefixtures("one_thread")


def _np_group_kernels(layer: FDConv) -> np.ndarray:
    """(kernel_num, C_out, C_in/g, kh, kw) by numpy.fft from the stored parameters."""
    cout, cin, kh, kw = layer.weight_shape
    spec = layer.dft_weight.detach().double().numpy()
    spec = (spec[..., 0] + 1j * spec[..., 1]) * layer.scale
    index = layer.group_index.numpy()
    out = []
    for g in range(layer.kernel_num):
        mat = np.fft.irfft2(np.where(index == g, spec, 0), s=(cout * kh, cin * kw))
        out.append(mat.reshape(cout, kh, cin, kw).transpose(0, 2, 1, 3))
    return np.stack(out)


def _randomise_heads(layer: FDConv, seed: int = 0) -> FDConv:
    """Attention heads with O(1) outputs so the gates are far from 1."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in layer.named_parameters():
            if name != "dft_weight" and not name.startswith("bias"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    return layer


# --- Fourier-disjoint weights ------------------------------------------------------------------------


@pytest.mark.parametrize("rows, cols, kn", [(12, 10, 4), (9, 7, 5), (192, 64, 64)])
def test_groups_partition_the_spectrum_in_radius_order(rows, cols, kn):
    index = fdw_group_index(rows, cols, kn).numpy()
    assert index.shape == (rows, cols // 2 + 1)
    n = index.size
    counts = np.bincount(index.ravel(), minlength=kn)
    assert counts.sum() == n and counts.max() - counts.min() <= (n % kn != 0)  # every coefficient once, near-equal
    radius = np.hypot(np.fft.fftfreq(rows)[:, None], np.fft.rfftfreq(cols)[None, :])
    for g in range(kn - 1):  # lowest frequencies first: groups are disjoint rings
        assert radius[index == g].max() <= radius[index == g + 1].min() + 1e-7
    if n % kn == 0:  # the official assignment: sorted float32 radius (torch.fft.*freq, torch.norm, as the
        # official get_fft2freq computes it; numpy's float32 rounds some ties differently), reshaped (kn, -1)
        grid = torch.stack(torch.meshgrid(torch.fft.fftfreq(rows), torch.fft.rfftfreq(cols), indexing="ij"), -1)
        order = np.argsort(torch.norm(grid, dim=-1).numpy().ravel(), kind="stable")
        expected = np.empty(n, dtype=np.int64)
        expected[order] = np.repeat(np.arange(kn), n // kn)
        np.testing.assert_array_equal(index.ravel(), expected)


@pytest.mark.parametrize("cin, cout, k, groups, kn", [(6, 8, 3, 1, 4), (8, 6, 1, 2, 3), (5, 4, 3, 1, 7)])
def test_group_kernels_are_disjoint_and_sum_to_the_static_kernel(cin, cout, k, groups, kn):
    torch.manual_seed(0)
    layer = FDConv(cin, cout, k, groups=groups, kernel_num=kn).double()
    weight = torch.randn(cout, cin // groups, k, k, dtype=torch.float64)
    layer.load_static_weight(weight)
    kernels = layer.group_kernels()
    expected = _np_group_kernels(layer)
    assert_close(kernels, expected)
    assert_close(kernels.sum(0), weight.numpy())
    assert_close(layer.static_weight(), weight.numpy())
    # each group's kernel has its spectrum on its own coefficients (plus the Hermitian mirrors in the
    # self-conjugate columns, where irfft2 keeps only the conjugate-symmetric part)
    rows, cols = cout * k, cin // groups * k
    index = layer.group_index.numpy()
    mirror = index[(-np.arange(rows)) % rows]
    selfconj = np.zeros_like(index, dtype=bool)
    selfconj[:, 0] = True
    if cols % 2 == 0:
        selfconj[:, -1] = True
    for g in range(kn):
        spec = np.fft.rfft2(expected[g].transpose(0, 2, 1, 3).reshape(rows, cols))
        allowed = (index == g) | (selfconj & (mirror == g))
        assert np.abs(spec[~allowed]).max(initial=0) < 1e-10
        assert np.abs(spec[index == g]).max() > 1e-3


# --- parameter counts --------------------------------------------------------------------------------


def _official_extra(cin, cout, k, kn, fbm=True, ksm=True, reduction=0.0625):
    """Parameters of the official FDConv (groups=1, param_ratio 1) minus the static conv's weight."""
    hidden = max(int(cin * reduction), 16)
    n = cout * k * ((cin * k) // 2 + 1) * 2 - cout * cin * k * k  # dft_weight
    n += cin * hidden + 2 * hidden + 2  # fc (no bias), BN, StarReLU
    if ksm:
        n += hidden * cin + cin + hidden * cout + cout  # channel_fc, filter_fc
        n += (hidden * k * k + k * k) if k > 1 else 0  # spatial_fc
        eca = round(math.log2(cin) / 2 + 0.5) // 2 * 2 + 1
        n += cout * k * k * eca + 2 * cin  # KSM_Local conv1d (no bias), LayerNorm
    n += (hidden * kn + kn) if kn > 1 else 0  # kernel_fc
    n += 3 * (cin * 9 + 1) if fbm and k > 1 else 0  # FBM: 3 convs C_in -> 1, 3x3, bias
    return n


def _extra(layer: FDConv) -> int:
    cout, cin, kh, kw = layer.weight_shape
    return sum(p.numel() for p in layer.parameters()) - cout * cin * kh * kw - (0 if layer.bias is None else cout)


@pytest.mark.parametrize(
    "cin, cout, k, kn, fbm, ksm",
    [(64, 64, 1, 64, True, True), (64, 64, 3, 64, True, True), (32, 48, 3, 4, True, True), (17, 33, 1, 4, True, True),
     (24, 24, 3, 1, True, True), (64, 128, 3, 8, False, True), (40, 40, 3, 8, False, False), (1024, 256, 1, 64, 1, 1)],
)  # fmt: skip
def test_parameter_count_equals_the_official_formula(cin, cout, k, kn, fbm, ksm):
    layer = FDConv(cin, cout, k, kernel_num=kn, use_fbm=fbm, use_ksm=ksm, bias=False)
    assert _extra(layer) == _official_extra(cin, cout, k, kn, fbm, ksm)
    assert layer.dft_weight.numel() == cout * k * ((cin * k) // 2 + 1) * 2


def _resnet50_bottleneck_convs() -> list[tuple[int, int, int]]:
    """(C_in, C_out, k) of conv1, conv2, conv3 in ResNet-50's 16 bottlenecks (torchvision layout)."""
    convs, inplanes = [], 64
    for planes, blocks in ((64, 3), (128, 4), (256, 6), (512, 3)):
        for _ in range(blocks):
            convs += [(inplanes, planes, 1), (planes, planes, 3), (planes, planes * 4, 1)]
            inplanes = planes * 4
    return convs


def test_resnet50_extra_parameters_match_the_paper():
    """Official config: kernel_num 64, reduction 0.0625, FDConv on bottleneck convs with min(C) > 16 (all 48;
    the 7x7 stem is excluded by size, the 1x1 shortcuts are plain convs in the official ResNet_FDConv),
    FBM on the 3x3s. Paper/README: "+3.6M" (one decimal, so |extra - 3.6M| <= 0.05M)."""
    convs = _resnet50_bottleneck_convs()
    assert len(convs) == 48
    extra = sum(_official_extra(cin, cout, k, 64) for cin, cout, k in convs)
    assert extra == 3_647_120
    assert abs(extra - 3.6e6) <= 0.05e6
    shortcuts = sum(
        _official_extra(cin, cout, 1, 64) for cin, cout in ((64, 256), (256, 512), (512, 1024), (1024, 2048))
    )
    assert abs(extra + shortcuts - 3.6e6) > 0.4e6  # converting the shortcuts too would not give 3.6M
    counts: dict[tuple[int, int, int], int] = {}
    for conv in convs:
        counts[conv] = counts.get(conv, 0) + 1
    ours = sum(n * _extra(FDConv(*c, kernel_num=64, use_fbm=c[2] == 3, bias=False)) for c, n in counts.items())
    assert ours == extra


# --- the layer against F.conv2d -----------------------------------------------------------------------

CONV_CASES = [  # cin, cout, kernel, stride, padding, dilation, groups, bias
    (4, 6, 3, 1, 1, 1, 1, True),
    (4, 6, 3, 2, 0, 1, 2, False),
    (6, 6, 3, 1, 2, 2, 3, True),
    (6, 6, 3, 1, "same", 1, 6, True),
    (5, 7, (1, 3), (2, 1), (0, 1), 1, 1, True),
    (8, 4, 1, 1, 0, 1, 4, False),
]


@pytest.mark.parametrize("cin, cout, k, stride, padding, dilation, groups, bias", CONV_CASES)
def test_without_dynamics_equals_conv2d_with_the_reconstructed_kernel(
    cin, cout, k, stride, padding, dilation, groups, bias
):
    torch.manual_seed(0)
    args = (cin, cout, k, stride, padding, dilation, groups, bias)
    layer = FDConv(*args, kernel_num=1, use_ksm=False, use_fbm=False).double()
    assert layer.ksm_global is None and layer.ksm_local is None and layer.fbm is None
    x = torch.randn(2, cin, 9, 10, dtype=torch.float64)
    weight = torch.as_tensor(_np_group_kernels(layer)[0])
    bias_t = layer.bias
    expected = F.conv2d(x, weight, bias_t, stride, padding, dilation, groups)
    assert_close(layer(x), expected.detach())
    plain = nn.Conv2d(*args).double()
    assert layer(x).shape == plain(x).shape
    # the same with the dynamic layer at init ("identity": every gate within ~1e-6 of 1)
    dyn = FDConv.from_conv(plain, kernel_num=3).eval()
    torch.testing.assert_close(dyn(x), plain(x), rtol=1e-4, atol=1e-4)


def test_group_gains_combine_the_group_kernels():
    """kernel_num 4, KSM off: the kernel is sum_g 2 sigmoid(b_g) K_g, with b the kernel head's bias."""
    torch.manual_seed(1)
    layer = FDConv(6, 8, 3, padding=1, kernel_num=4, use_ksm=False, use_fbm=False).double().eval()
    b = torch.tensor([1.5, -0.5, 0.25, -2.0], dtype=torch.float64)
    with torch.no_grad():
        layer.ksm_global.kernel_fc.weight.zero_()
        layer.ksm_global.kernel_fc.bias.copy_(b)
    gains = 2 / (1 + np.exp(-b.numpy()))
    weight = torch.as_tensor(np.tensordot(gains, _np_group_kernels(layer), axes=1))
    x = torch.randn(3, 6, 7, 7, dtype=torch.float64)
    assert_close(layer(x), F.conv2d(x, weight, layer.bias, padding=1).detach())


@pytest.mark.parametrize("groups", [1, 2])
def test_fdconv2d_gates_fold_unfold_and_numpy_kernel(groups):
    torch.manual_seed(2)
    b, cin, cout, k, kn = 3, 4, 6, 3, 5
    layer = FDConv(cin, cout, k, groups=groups, kernel_num=kn).double()
    gains = torch.rand(b, kn, dtype=torch.float64) * 2
    ca, fa = torch.rand(b, cin, dtype=torch.float64) * 2, torch.rand(b, cout, dtype=torch.float64) * 2
    sa, la = torch.rand(b, k, k, dtype=torch.float64) * 2, torch.rand(b, *layer.weight_shape, dtype=torch.float64) * 2
    x = torch.randn(b, cin, 8, 8, dtype=torch.float64)
    kw = dict(
        channel_attention=ca, filter_attention=fa, spatial_attention=sa, local_attention=la, padding=1, groups=groups
    )
    args = (x, layer.dft_weight, layer.group_index, gains, layer.weight_shape)
    folded, unfolded = fdconv2d(*args, **kw, fold=True), fdconv2d(*args, **kw, fold=False)
    assert_close(folded, unfolded)
    kernels = _np_group_kernels(layer) / layer.scale  # gains act on the stored (unscaled) spectrum
    cin_g = cin // groups
    for i in range(b):
        w = (
            np.tensordot(gains[i].numpy(), kernels, axes=1)
            * sa[i].numpy()
            * la[i].numpy()
            * fa[i].numpy()[:, None, None, None]
        )
        group_of = [o // (cout // groups) for o in range(cout)]  # output channel o sees inputs of its group
        ca_rows = np.stack([ca[i].numpy()[g * cin_g : (g + 1) * cin_g] for g in group_of])  # (C_out, C_in/g)
        w = w * ca_rows[:, :, None, None]
        expected = F.conv2d(x[i : i + 1], torch.as_tensor(w), padding=1, groups=groups)
        assert_close(folded[i : i + 1], expected)


@pytest.mark.parametrize("groups", [1, 2])
def test_local_attention_layout_matches_the_official_one(groups):
    """Local KSM alone: the 1-D conv's output channel ``o kh kw + u kw + v`` at position ``j`` (input
    channel) gates kernel element ``(o, j, u, v)`` (official); with groups, position ``gi C_in/g + j`` and
    output channel ``o_local kh kw + u kw + v`` gate element ``(gi C_out/g + o_local, j, u, v)``."""
    torch.manual_seed(11)
    cin, cout, kh, kw = 4, 6, 3, 2
    layer = FDConv(cin, cout, (kh, kw), padding=1, groups=groups, kernel_num=3, use_fbm=False).double().eval()
    with torch.no_grad():
        for p in layer.ksm_global.parameters():  # every global gate exactly 1, gains exactly the scale
            p.zero_()
        conv = layer.ksm_local.conv.weight  # (C_out/g kh kw, 1, taps)
        conv.zero_()
        coef = torch.randn(conv.shape[0], dtype=torch.float64)
        conv[:, 0, conv.shape[-1] // 2] = coef
    x = torch.randn(2, cin, 7, 7, dtype=torch.float64)
    ln = F.layer_norm(x.mean((2, 3)), (cin,)).numpy()  # (B, C_in)
    weight = layer.static_weight().detach().numpy()
    cout_g, cin_g = cout // groups, cin // groups
    for b in range(2):
        gate = np.empty_like(weight)
        for o, j, u, v in np.ndindex(*weight.shape):
            gi = o // cout_g
            logit = coef[(o % cout_g) * kh * kw + u * kw + v].item() * ln[b, gi * cin_g + j]
            gate[o, j, u, v] = 2 / (1 + np.exp(-logit))
        expected = F.conv2d(x[b : b + 1], torch.as_tensor(weight * gate), layer.bias, padding=1, groups=groups)
        assert_close(layer(x)[b : b + 1], expected.detach())


def test_batched_equals_per_sample_and_gradients_reach_every_parameter():
    torch.manual_seed(3)
    layer = _randomise_heads(FDConv(8, 12, 3, padding=1, groups=2, kernel_num=6)).double()
    x = torch.randn(3, 8, 10, 10, dtype=torch.float64)
    layer.eval()
    out = layer(x)
    for i in range(3):
        assert_close(out[i : i + 1], layer(x[i : i + 1]))
    assert (out - F.conv2d(x, layer.static_weight(), layer.bias, padding=1, groups=2)).abs().max() > 0.1  # gates act
    layer.train()
    layer(x).square().sum().backward()
    missing = [n for n, p in layer.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_gradcheck():
    torch.manual_seed(4)
    dt = dict(dtype=torch.float64)
    layer = FDConv(4, 4, 3, padding=1, groups=2, kernel_num=3).double()
    x = torch.randn(2, 4, 5, 5, **dt, requires_grad=True)
    spec = layer.dft_weight.detach().clone().requires_grad_()
    gains, ca, fa = (torch.rand(2, n, **dt, requires_grad=True) for n in (3, 4, 4))
    la = torch.rand(2, *layer.weight_shape, **dt, requires_grad=True)

    def f(x, spec, gains, ca, fa, la, fold):
        kw = dict(channel_attention=ca, filter_attention=fa, local_attention=la, padding=1, groups=2, fold=fold)
        return fdconv2d(x, spec, layer.group_index, gains, layer.weight_shape, **kw)

    for fold in (True, False):
        assert torch.autograd.gradcheck(lambda *a, fold=fold: f(*a, fold), (x, spec, gains, ca, fa, la))
    assert torch.autograd.gradcheck(
        lambda x: frequency_bands(x, (2, 4)), (torch.randn(1, 2, 6, 5, **dt, requires_grad=True),)
    )
    _randomise_heads(layer).eval()
    assert torch.autograd.gradcheck(layer, (x,))


# --- frequency band modulation -----------------------------------------------------------------------


@pytest.mark.parametrize("h, w", [(16, 16), (9, 12), (64, 64)])
def test_frequency_bands_are_numpy_masked_spectra_and_sum_to_x(h, w):
    torch.manual_seed(5)
    x = torch.randn(2, 3, h, w, dtype=torch.float64)
    bands = frequency_bands(x, (2, 4, 8))
    assert_close(sum(bands), x)
    cheb = np.maximum(np.abs(np.fft.fftfreq(h))[:, None], np.abs(np.fft.fftfreq(w))[None, :])
    low = [np.ones((h, w), bool)] + [cheb <= 0.5 / k for k in (2, 4, 8)] + [np.zeros((h, w), bool)]
    spec = np.fft.fft2(x.numpy())
    for i, band in enumerate(bands):
        assert_close(band, np.fft.ifft2(spec * (low[i] & ~low[i + 1])).real)


def test_fbm_starts_as_identity_and_scales_bands():
    torch.manual_seed(6)
    fbm = FrequencyBandModulation(3, (2, 4, 8)).double()
    x = torch.randn(2, 3, 12, 12, dtype=torch.float64)
    torch.testing.assert_close(fbm(x), x, rtol=0, atol=1e-4)
    b = [0.7, -1.0, 2.0]
    with torch.no_grad():
        for conv, bi in zip(fbm.convs, b):
            conv.weight.zero_()
            conv.bias.fill_(bi)
    bands = frequency_bands(x, (2, 4, 8))
    expected = bands[-1] + sum(2 / (1 + math.exp(-bi)) * band for bi, band in zip(b, bands))
    assert_close(fbm(x), expected)


# --- errors, init, conversion ------------------------------------------------------------------------


def test_errors():
    with pytest.raises(ValueError, match="multiples of groups"):
        FDConv(6, 4, 3, groups=4)
    with pytest.raises(ValueError, match="kernel_num must be in"):
        FDConv(2, 2, 1, kernel_num=5)
    with pytest.raises(ValueError, match="reduction"):
        FDConv(4, 4, 3, reduction=0)
    with pytest.raises(ValueError, match="attention_init must be one of"):
        FDConv(4, 4, 3, attention_init="zero")
    with pytest.raises(ValueError, match="strictly increasing"):
        FDConv(4, 4, 3, fbm_k_list=(4, 2))
    with pytest.raises(ValueError, match="padding must be"):
        FDConv(4, 4, 3, padding="full")
    with pytest.raises(ValueError, match="kernel_size must be"):
        FDConv(4, 4, 0)
    with pytest.raises(ValueError, match="only zero padding"):
        FDConv.from_conv(nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect"))
    layer = FDConv(4, 4, 3)
    with pytest.raises(ValueError, match="expected"):
        layer(torch.randn(1, 3, 8, 8))
    with pytest.raises(ValueError, match="weight must have shape"):
        layer.load_static_weight(torch.randn(4, 4, 1, 1))


def test_official_attention_init_keeps_kaiming_filter_head():
    torch.manual_seed(7)
    official = FDConv(64, 128, 3, kernel_num=4, attention_init="official")
    std = official.ksm_global.filter_fc.weight.std().item()
    assert abs(std / math.sqrt(2 / 128) - 1) < 0.1
    assert official.ksm_global.channel_fc.weight.abs().max() < 1e-4
    conv = nn.Conv2d(64, 128, 3, padding=1, bias=False)
    x = torch.randn(2, 64, 8, 8)
    out, ref = FDConv.from_conv(conv, kernel_num=4, attention_init="official").eval()(x), conv(x)
    factor = (out * ref).sum((2, 3), keepdim=True) / ref.square().sum((2, 3), keepdim=True)  # (B, C_out, 1, 1)
    assert (out - factor * ref).abs().max() < 1e-4 * ref.abs().max()  # the static conv times a per-channel factor
    assert factor.std() > 0.05 and 0 < factor.min() and factor.max() < 2  # = 2 sigmoid(filter head), not 1


def test_convert_sequential_replaces_the_right_layers():
    torch.manual_seed(8)
    net = nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1),  # too few channels
        nn.Conv2d(32, 32, 3, padding=1),  # FDConv + FBM
        nn.Conv2d(32, 64, 1),  # FDConv, no FBM
        nn.Conv2d(64, 64, 5, padding=2),  # kernel size
        nn.Conv2d(64, 64, 3, padding=1, groups=64),  # grouped
        nn.Conv2d(64, 16, 1),  # min(C) = 16 is not > 16
    ).eval()
    new = convert_to_fdconv(net, kernel_num=8)
    assert [type(m).__name__ for m in new] == ["Conv2d", "FDConv", "FDConv", "Conv2d", "Conv2d", "Conv2d"]
    assert new[1].fbm is not None and new[2].fbm is None and new[1].kernel_num == 8
    assert all(type(m) is nn.Conv2d for m in net)  # the input model is untouched
    assert_close(new[1].static_weight(), net[1].weight.detach())
    x = torch.randn(2, 3, 12, 12)
    torch.testing.assert_close(new(x), net(x), rtol=1e-3, atol=1e-4)


def test_convert_convnext_atto():
    torch.manual_seed(9)
    model = subband.create_model("convnext_atto", num_classes=10).eval()
    new = convert_to_fdconv(model).eval()
    names = [n for n, m in new.named_modules() if isinstance(m, FDConv)]
    assert len(names) == 24 and all(n.endswith(("mlp.fc1", "mlp.fc2")) for n in names)
    x = torch.randn(2, 3, 64, 64)
    out = new(x)
    assert out.shape == (2, 10)
    torch.testing.assert_close(out, model(x), rtol=1e-2, atol=1e-3)
