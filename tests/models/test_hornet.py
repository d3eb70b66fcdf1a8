"""HorNet: the official checkpoint key mapping, the variants' g^n Conv configuration, the global
filter at input sizes other than the stored one, the training-time pieces and errors."""

import pytest
import torch

import subband
from subband.layers import GlobalLocalFilter
from subband.models.hornet import HorNet, convert_official_state_dict

GF = ("dwconv", "dwconv", "gf", "gf")


def _official_keys(depths, orders, spatial):
    """Parameter names of raoyongming/HorNet's model, written out from its layout."""
    keys = {f"downsample_layers.0.{j}.{p}" for j in (0, 1) for p in ("weight", "bias")}
    for i in range(1, len(depths)):
        keys |= {f"downsample_layers.{i}.{j}.{p}" for j in (0, 1) for p in ("weight", "bias")}
    for i, d in enumerate(depths):
        for j in range(d):
            pre = f"stages.{i}.{j}."
            keys |= {pre + "gamma1", pre + "gamma2"}
            for layer in ("norm1", "norm2", "pwconv1", "pwconv2", "gnconv.proj_in", "gnconv.proj_out"):
                keys |= {pre + layer + ".weight", pre + layer + ".bias"}
            keys |= {f"{pre}gnconv.pws.{k}.{p}" for k in range(orders[i] - 1) for p in ("weight", "bias")}
            if spatial[i] == "gf":
                keys |= {pre + "gnconv.dwconv.dw.weight", pre + "gnconv.dwconv.complex_weight"}
                keys |= {f"{pre}gnconv.dwconv.{n}.{p}" for n in ("pre_norm", "post_norm") for p in ("weight", "bias")}
            else:
                keys |= {pre + "gnconv.dwconv.weight", pre + "gnconv.dwconv.bias"}
    return keys | {"norm.weight", "norm.bias", "head.weight", "head.bias"}


def test_official_checkpoint_keys_convert():
    depths, orders = (1, 2, 1, 1), (2, 3, 4, 5)
    model = HorNet(depths, base_dim=16, orders=orders, spatial=GF, num_classes=5)
    keys = _official_keys(depths, orders, GF)
    converted = convert_official_state_dict({k: k for k in keys})
    assert set(converted) == set(model.state_dict())
    official = {converted[k]: v.clone() for k, v in model.state_dict().items()}  # one-to-one renaming
    fresh = HorNet(depths, base_dim=16, orders=orders, spatial=GF, num_classes=5)
    fresh.load_state_dict(convert_official_state_dict({"model": official}))
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(fresh.eval()(x), model.eval()(x))


def _gnconvs(model):
    return [[b.gnconv for b in stage.blocks] for stage in model.stages]


@pytest.mark.parametrize(
    "name, width, grids",
    [
        ("hornet_tiny_7x7", 64, None),
        ("hornet_small_gf", 96, ((14, 8), (7, 4))),
        ("hornet_base_gf_img384", 128, ((24, 13), (12, 7))),
    ],
)
def test_variants_follow_the_official_configuration(name, width, grids):
    with torch.device("meta"):
        model = subband.create_model(name)
    convs = _gnconvs(model)
    assert [len(s) for s in convs] == [2, 3, 18, 2]
    for i, stage in enumerate(convs):
        for g in stage:
            assert g.order == i + 2 and g.scale == pytest.approx(1 / 3) and g.dim == width * 2**i
            if grids is None or i < 2:
                assert g.spatial == "dwconv" and g.dwconv.kernel_size == (7, 7) and g.dwconv.bias is not None
            else:
                assert isinstance(g.dwconv, GlobalLocalFilter) and (g.dwconv.h, g.dwconv.w) == grids[i - 2]


def test_global_filter_models_run_at_any_size():
    torch.manual_seed(0)
    model = HorNet((1, 1, 1, 1), base_dim=16, spatial=GF, gf_sizes=((8, 5),) * 4, num_classes=3).eval()
    for size in [(64, 64), (96, 80), (40, 72)]:  # stage-3 maps 4x4, 6x5, 2x4 against a stored 8x(5)
        y = model(torch.randn(2, 3, *size))
        assert y.shape == (2, 3) and torch.isfinite(y).all()


def test_layer_scale_drop_path_and_errors():
    model = HorNet(
        (2, 2),
        base_dim=8,
        orders=(2, 3),
        spatial=("dwconv",) * 2,
        gf_sizes=((4, 3),) * 2,
        num_classes=3,
        drop_path_rate=0.3,
        ls_init_value=None,
    )
    rates = [b.drop_path.p for s in model.stages for b in s.blocks]
    assert rates == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert all(b.gamma1 is None and b.gamma2 is None for s in model.stages for b in s.blocks)
    x = torch.randn(4, 3, 32, 32)
    model.eval()
    torch.testing.assert_close(model(x), model(x))
    model.train()
    torch.manual_seed(0)
    a = model(x)
    torch.manual_seed(1)
    assert not torch.allclose(a, model(x))
    with pytest.raises(ValueError, match="one entry per stage"):
        HorNet((2, 2, 2), base_dim=8)
    with pytest.raises(ValueError, match="multiple of 2\\*\\*\\(order-1\\)"):
        HorNet((1, 1, 1, 1), base_dim=9)  # order 2 + i in stage i needs base_dim * 2**i divisible by 2**(i + 1)
