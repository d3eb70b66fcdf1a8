"""UniRepLKNet: fused (deploy) model == training model, deploy parameter counts and MACs equal the
official deploy configuration, official checkpoint keys convert, the block's pieces."""

import pytest
import torch
from torch import nn

import subband
from subband.layers import DilatedReparamBlock
from subband.models._profile import count_gmacs
from subband.models.unireplknet import GRN, UniRepLKNet, UniRepLKNetBlock, convert_official_state_dict

# deploy form (official deploy=True, or reparameterize_unireplknet()), built and counted on the
# official unireplknet.py: params, GMACs at 224
DEPLOY = {
    "unireplknet_a": (4_437_300, 0.640),
    "unireplknet_f": (6_235_216, 0.905),
    "unireplknet_p": (10_741_704, 1.573),
    "unireplknet_n": (18_318_560, 2.767),
    "unireplknet_t": (31_037_980, 4.899),
    "unireplknet_s": (55_645_984, 9.094),
    "unireplknet_b": (98_008_456, 16.057),
}


def _randomise(model: nn.Module) -> None:
    """Random BatchNorm statistics, GRN parameters and layer scales, so every fold is exercised."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2.0)
            nn.init.normal_(m.weight)
            nn.init.normal_(m.bias)
        if isinstance(m, GRN):
            nn.init.normal_(m.gamma, std=0.5)
            nn.init.normal_(m.beta, std=0.5)
        if isinstance(m, UniRepLKNetBlock):
            nn.init.normal_(m.gamma, std=0.5)


def test_fused_model_equals_training_model():
    torch.manual_seed(0)
    model = subband.create_model("unireplknet_a").eval()
    _randomise(model)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        want = model(x)
        feats = model.forward_features(x)
        model.fuse()
        got = model(x)
    assert want.abs().max() > 0.1  # a non-trivial output
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        torch.testing.assert_close(model.forward_features(x), feats, rtol=1e-5, atol=1e-5)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert sum(p.numel() for p in model.parameters()) == DEPLOY["unireplknet_a"][0]


@pytest.mark.parametrize("name", sorted(DEPLOY))
def test_deploy_form_counts_match_the_official_deploy_model(name):
    with torch.device("meta"):
        model = subband.create_model(name).eval()
        model.fuse()
        x = torch.randn(1, 3, 224, 224)
    params, gmacs = DEPLOY[name]
    assert sum(p.numel() for p in model.parameters()) == params
    assert count_gmacs(model, x) == pytest.approx(gmacs, abs=1e-3)


@pytest.mark.parametrize("kernel_size", [0, 3, 5, 7, 13])
def test_fused_block_equals_training_block(kernel_size):
    torch.manual_seed(kernel_size)
    block = UniRepLKNetBlock(8, kernel_size, drop_path=0.2).eval()
    _randomise(block)
    x = torch.randn(2, 8, 15, 15)
    with torch.no_grad():
        want = block(x)
        block.fuse()
        got = block(x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert block.gamma is None and block.grn.beta is None and block.pwconv2.bias is not None
    assert isinstance(block.norm, nn.Identity) and isinstance(block.ffn_bn, nn.Identity)


def test_fuse_needs_eval_mode():
    model = UniRepLKNet((1, 1), (8, 16), kernel_sizes=((3,), (7,)), num_classes=3)
    with pytest.raises(RuntimeError, match="eval"):
        model.fuse()
    with pytest.raises(RuntimeError, match="eval"):
        UniRepLKNetBlock(8, 7).fuse()


def test_grn_closed_form():
    grn = GRN(6)
    nn.init.normal_(grn.gamma)
    nn.init.normal_(grn.beta)
    x = torch.randn(2, 5, 4, 6, dtype=torch.float64)
    g = x.pow(2).sum((1, 2), keepdim=True).sqrt()
    n = g / (g.mean(-1, keepdim=True) + 1e-6)
    torch.testing.assert_close(grn.double()(x), (grn.gamma.double() * n + 1) * x + grn.beta.double())


def test_default_kernel_sizes_and_drop_path():
    with torch.device("meta"):
        t = subband.create_model("unireplknet_t")
        s = subband.create_model("unireplknet_s")
    kernels = [[b.kernel_size for b in st.blocks] for st in t.stages]
    assert kernels == [[3] * 3, [13] * 3, [13, 3] * 9, [13] * 3]
    assert [b.kernel_size for b in s.stages[2].blocks] == [13, 3, 3] * 9
    drb = t.stages[1].blocks[0].dwconv
    assert isinstance(drb, DilatedReparamBlock) and drb.branches == ((5, 1), (7, 2), (3, 3), (3, 4), (3, 5))
    model = UniRepLKNet((2, 2), (8, 16), kernel_sizes=((3, 3), (7, 7)), drop_path_rate=0.3, num_classes=2)
    assert [b.drop_path.p for st in model.stages for b in st.blocks] == pytest.approx([0.0, 0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="no default kernel sizes"):
        UniRepLKNet((1, 1), (8, 16))
    with pytest.raises(ValueError, match="one size per block"):
        UniRepLKNet((2, 1), (8, 16), kernel_sizes=((3,), (7,)))
    with pytest.raises(ValueError, match="kernel_size must be"):
        UniRepLKNetBlock(8, 6)


def _official_keys(depths, kernel_sizes, deploy=False):
    """Parameter and buffer names of AILab-CVC/UniRepLKNet's model, written out from its layout."""
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    wb = ("weight", "bias")
    keys = {f"downsample_layers.0.{i}.{p}" for i in (0, 1, 3, 4) for p in wb}
    keys |= {f"downsample_layers.{i}.{j}.{p}" for i in range(1, len(depths)) for j in (0, 1) for p in wb}
    for i, ks in enumerate(kernel_sizes):
        for j, k in enumerate(ks):
            pre = f"stages.{i}.{j}."
            keys |= {pre + f"se.{a}.{p}" for a in ("down", "up") for p in wb}
            keys |= {pre + f"pwconv1.1.{p}" for p in wb} | {pre + "act.1.gamma"}
            if deploy:
                keys |= {pre + f"pwconv2.0.{p}" for p in wb}
                keys |= {pre + ("dwconv.lk_origin." if k >= 7 else "dwconv.") + p for p in wb}
                continue
            keys |= {pre + "act.1.beta", pre + "gamma", pre + "pwconv2.0.weight"}
            keys |= {pre + f"pwconv2.2.{p}" for p in bn} | {pre + f"norm.{p}" for p in bn}
            if k >= 7:
                keys |= {pre + "dwconv.lk_origin.weight"} | {pre + f"dwconv.origin_bn.{p}" for p in bn}
                for kk, r in DilatedReparamBlock(1, k).branches:
                    keys |= {pre + f"dwconv.dil_conv_k{kk}_{r}.weight"}
                    keys |= {pre + f"dwconv.dil_bn_k{kk}_{r}.{p}" for p in bn}
            else:
                keys.add(pre + "dwconv.weight")
    return keys | {"norm.weight", "norm.bias", "head.weight", "head.bias"}


@pytest.mark.parametrize("deploy", [False, True])
def test_official_checkpoint_keys_convert(deploy):
    depths, kernel_sizes = (1, 2), ((3,), (13, 3))
    model = UniRepLKNet(depths, (8, 16), kernel_sizes=kernel_sizes, num_classes=5).eval()
    _randomise(model)
    if deploy:
        model.fuse()
    keys = _official_keys(depths, kernel_sizes, deploy)
    converted = convert_official_state_dict({k: torch.zeros(1) for k in keys})
    assert set(converted) == set(model.state_dict())
    # one-to-one: the model's own weights, renamed to official names (GRN as (1, 1, 1, C)), load back
    inverse = convert_official_state_dict({k: k for k in keys})  # our name -> official name
    official = {inverse[k]: (v.view(1, 1, 1, -1) if ".grn." in k else v).clone() for k, v in model.state_dict().items()}
    fresh = UniRepLKNet(depths, (8, 16), kernel_sizes=kernel_sizes, num_classes=5).eval()
    if deploy:
        fresh.fuse()
    fresh.load_state_dict(convert_official_state_dict(official))
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), model(x))
