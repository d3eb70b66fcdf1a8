"""SVT-H: exact parameter counts of the official models, the blocks against references written
from the official forward (separate q / kv projections, class attention, PVTv2 FFN), the
token-labelling head and MixToken identities, the official checkpoint key mapping, other input
sizes, the official initialisation, errors.

(Outputs were also compared with the official ``SVT`` run with ``pytorch_wavelets``, given the same
weights, outside this suite since the official code is not a package: logits max |diff| <= 1.2e-6
for the three variants at 224x224, and 2.6e-6 for SVT-H-S's training-mode token-labelling outputs
with MixToken boxes.)
"""

import math
import re

import pytest
import torch
import torch.nn.functional as F

import subband
from subband.layers import ScatterMixer
from subband.models.svt import SVT, ClassBlock, SVTBlock, _mix_tokens, convert_official_state_dict

TINY = dict(
    img_size=32,
    stem_hidden_dim=8,
    embed_dims=(16, 16, 32, 32),
    num_heads=(1, 2, 2, 4),
    mlp_ratios=(2, 2, 2, 2),
    depths=(1, 2, 1, 1),
    num_classes=10,
)

OFFICIAL = {  # registered name: (parameters of the official model built and counted, widths, depths)
    "svt_h_s": (22_052_592, (64, 128, 320, 448), (3, 4, 6, 3)),
    "svt_h_b": (32_878_544, (64, 128, 320, 512), (3, 4, 12, 3)),
    "svt_h_l": (54_594_000, (96, 192, 384, 512), (3, 6, 18, 3)),
}


def _randomise(model: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial norms, biases and BatchNorm statistics, so eval mode and every term matter."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim <= 1:
                p.add_(0.2 * torch.randn(p.shape, generator=g, dtype=p.dtype))
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.3, generator=g)
                m.running_var.uniform_(0.5, 1.5, generator=g)


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_parameter_counts_equal_the_official_models(name):
    params, widths, depths = OFFICIAL[name]
    with torch.device("meta"):
        model = subband.create_model(name)
    assert sum(p.numel() for p in model.parameters()) == params == subband.model_info(name).params
    assert [len(s.blocks) for s in model.stages] == list(depths)
    assert model.feature_info.channels() == list(widths) and model.feature_info.reduction() == [4, 8, 16, 32]
    scatter = [type(b.attn).__name__ for s in model.stages for b in s.blocks]
    assert scatter == ["ScatterMixer"] * depths[0] + ["Attention"] * sum(depths[1:])
    assert model.stages[0].blocks[0].attn.complex_weight_ll.shape == (widths[0], 56, 56)
    # the token-labelling head is counted
    aux = sum(p.numel() for p in model.aux_head.parameters())
    assert aux == widths[-1] * 1000 + 1000


def _official_attention(q_w, q_b, kv_w, kv_b, proj, x, heads):
    """The official ``Attention``: separate q and kv projections, softmax(q k^T / sqrt(d)) v."""
    b, n, c = x.shape
    q = (x @ q_w.T + q_b).reshape(b, n, heads, c // heads).permute(0, 2, 1, 3)
    kv = (x @ kv_w.T + kv_b).reshape(b, n, 2, heads, c // heads).permute(2, 0, 3, 1, 4)
    a = (q @ kv[0].transpose(-2, -1) * (c // heads) ** -0.5).softmax(-1)
    return proj((a @ kv[1]).transpose(1, 2).reshape(b, n, c))


def test_attention_block_equals_official_forward():
    torch.manual_seed(0)
    blk = SVTBlock(24, num_heads=3, mlp_ratio=2).double().eval()
    _randomise(blk)
    x = torch.randn(2, 4 * 5, 24, dtype=torch.float64)
    qkv = blk.attn.qkv
    q_w, kv_w = qkv.weight[:24], qkv.weight[24:]
    q_b, kv_b = qkv.bias[:24], qkv.bias[24:]
    y = x + _official_attention(q_w, q_b, kv_w, kv_b, blk.attn.proj, blk.norm1(x), 3)
    h = blk.mlp.fc1(blk.norm2(y)).transpose(1, 2).reshape(2, 48, 4, 5)  # (B, N, C) -> (B, C, h, w)
    h = F.conv2d(h, blk.mlp.dwconv.weight, blk.mlp.dwconv.bias, padding=1, groups=48)
    y = y + blk.mlp.fc2(F.gelu(h.flatten(2).transpose(1, 2)))
    torch.testing.assert_close(blk(x, (4, 5)), y)


def test_scatter_block_uses_the_mixer_on_the_token_map():
    torch.manual_seed(1)
    blk = SVTBlock(8, num_heads=1, mlp_ratio=2, scatter=True, size=(6, 4)).double().eval()
    _randomise(blk)
    x = torch.randn(2, 24, 8, dtype=torch.float64)
    m = blk.norm1(x).view(2, 6, 4, 8).permute(0, 3, 1, 2)  # the official view(B, H, W, C) -> (B, C, H, W)
    y = x + blk.attn(m).permute(0, 2, 3, 1).reshape(2, 24, 8)
    y = y + blk.mlp(blk.norm2(y), (6, 4))
    torch.testing.assert_close(blk(x, (6, 4)), y)


def test_class_block_equals_official_forward():
    torch.manual_seed(2)
    blk = ClassBlock(24, num_heads=4, mlp_ratio=2).double().eval()
    _randomise(blk)
    x = torch.randn(3, 1 + 7, 24, dtype=torch.float64)
    a = blk.attn
    y = blk.norm1(x)
    b, n, c = y.shape
    k = (y @ a.wk.weight.T + a.wk.bias).reshape(b, n, 4, 6).transpose(1, 2)
    v = (y @ a.wv.weight.T + a.wv.bias).reshape(b, n, 4, 6).transpose(1, 2)
    q = (y[:, :1] @ a.wq.weight.T + a.wq.bias).reshape(b, 4, 1, 6)
    attn = ((q * 6**-0.5) @ k.transpose(-2, -1)).softmax(-1)
    cls = x[:, :1] + a.proj((attn @ v).transpose(1, 2).reshape(b, 1, c))
    cls = cls + blk.mlp.fc2(F.gelu(blk.mlp.fc1(blk.norm2(cls))))
    out = blk(x)
    torch.testing.assert_close(out[:, :1], cls)
    torch.testing.assert_close(out[:, 1:], x[:, 1:])  # patch tokens pass unchanged


def test_head_combines_class_and_token_logits():
    torch.manual_seed(3)
    model = SVT(**TINY).eval()
    _randomise(model)
    x = torch.randn(2, 3, 32, 32)
    feats = model.forward_features(x)
    assert feats.shape == (2, 1 + 1, 32)
    want = model.head(feats[:, 0]) + 0.5 * model.aux_head(feats[:, 1:]).max(1)[0]
    torch.testing.assert_close(model(x), want)
    cls, aux = model.forward_token_label(x)
    torch.testing.assert_close(cls + 0.5 * aux.max(1)[0], want)
    plain = SVT(**TINY, token_label=False).eval()
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("aux_head")})
    torch.testing.assert_close(plain(x), model.head(feats[:, 0]))
    model.reset_classifier(0)
    torch.testing.assert_close(model(x), feats[:, 0])  # no classes: the class token
    with pytest.raises(ValueError, match="token_label"):
        model.forward_token_label(x)


def test_class_token_is_the_mean_of_the_last_stage():
    torch.manual_seed(4)
    model = SVT(**TINY, num_post_blocks=0).eval()
    x = torch.randn(2, 3, 64, 64)
    feats = model.forward_features(x)  # (B, 1 + 4, C): no class block, so the class token is the mean
    tokens, _ = model._trunk(x)
    torch.testing.assert_close(feats, model.norm(torch.cat([tokens.mean(1, keepdim=True), tokens], 1)))


def test_mix_token_identities():
    """A box over the whole grid mixes in the reversed batch everywhere: the class logits are those
    of ``x.flip(0)`` and the token logits, swapped back, those of ``x``; an empty box changes nothing;
    a partial box changes the tokens inside it only at the stem."""
    torch.manual_seed(5)
    model = SVT(**TINY).eval()
    _randomise(model)
    x = torch.randn(3, 3, 64, 64)  # stage-4 grid 2x2
    cls, aux = model.forward_token_label(x)
    cls_full, aux_full = model.forward_token_label(x, (0, 0, 2, 2))
    torch.testing.assert_close(cls_full, cls.flip(0))
    torch.testing.assert_close(aux_full, aux)
    cls_empty, aux_empty = model.forward_token_label(x, (1, 1, 1, 2))
    torch.testing.assert_close(cls_empty, cls)
    torch.testing.assert_close(aux_empty, aux)
    stem, size = model.stages[0].downsample(x)
    mixed = _mix_tokens(stem, size, (0, 1, 1, 2), 8).transpose(1, 2).reshape(3, 16, 16, 16)  # (B, C, 16, 16)
    ref = stem.transpose(1, 2).reshape(3, 16, 16, 16)
    torch.testing.assert_close(mixed[..., :8, 8:], ref.flip(0)[..., :8, 8:])  # rows 0:8, columns 8:16
    torch.testing.assert_close(mixed[..., 8:, :], ref[..., 8:, :])
    torch.testing.assert_close(mixed[..., :8, :8], ref[..., :8, :8])
    with pytest.raises(ValueError, match="mix_box"):
        model.forward_token_label(x, (0, 0, 1))


def test_other_input_sizes():
    torch.manual_seed(6)
    model = SVT(**TINY).eval()
    for h, w in ((64, 48), (36, 36), (32, 32)):  # non-square; 9x9 (odd) first stage; the build size
        y = model(torch.randn(1, 3, h, w))
        assert y.shape == (1, 10) and torch.isfinite(y).all()
        maps = model.forward_intermediates(torch.randn(1, 3, h, w), (0, 1, 2, 3))
        assert [m.shape[-2:] for m in maps] == [(math.ceil(h / r), math.ceil(w / r)) for r in (4, 8, 16, 32)]
    mixer = model.stages[0].blocks[0].attn
    assert isinstance(mixer, ScatterMixer) and mixer.complex_weight_ll.shape == (16, 8, 8)  # 32 / 4


def test_features_only_taps_are_the_stage_outputs():
    torch.manual_seed(7)
    model = SVT(**TINY).eval()
    _randomise(model)
    x = torch.randn(2, 3, 64, 64)
    maps = model.forward_intermediates(x, (0, 1, 2, 3))
    feats = model.forward_features(x)
    torch.testing.assert_close(maps[3], feats[:, 1:].transpose(1, 2).reshape(2, 32, 2, 2))
    net = subband.create_model("svt_h_s", features_only=True, out_indices=(0, 1), **{**TINY, "num_classes": 1000})
    assert net.feature_info.channels() == [16, 16] and len(net.model.stages) == 2
    assert isinstance(net.model.norm, torch.nn.Identity) and len(net.model.post_blocks) == 0


STEM = {("0", "c"): 0, ("0", "bn"): 1, ("2", "c"): 3, ("2", "bn"): 4, ("4", "c"): 6, ("4", "bn"): 7}


def _official_name(key: str) -> str:
    """subband's key -> the official ``SVT``'s (before the q / kv split)."""
    key = re.sub(
        r"^stages\.0\.downsample\.conv\.(\d)\.(c|bn)\.", lambda m: f"patch_embed1.conv.{STEM[m[1], m[2]]}.", key
    )
    key = re.sub(r"^stages\.(\d)\.downsample\.", lambda m: f"patch_embed{int(m[1]) + 1}.", key)
    key = re.sub(r"^stages\.(\d)\.blocks\.", lambda m: f"block{int(m[1]) + 1}.", key)
    key = re.sub(r"^stages\.(\d)\.norm\.", lambda m: f"norm{int(m[1]) + 1}.", key)
    key = re.sub(r"^norm\.", "norm4.", key)
    return key.replace("post_blocks.", "post_network.").replace(".mlp.dwconv.", ".mlp.dwconv.dwconv.")


def test_official_state_dict_round_trip():
    """Official names (written from the official ``SVT``: ``patch_embed{i}``, ``block{i}``,
    ``norm{i}``, ``post_network``, separate ``q`` and ``kv``, ``mlp.dwconv.dwconv``) -> subband's."""
    model = SVT(**TINY)
    _randomise(model)
    state = model.state_dict()
    official = {}
    for key, value in state.items():
        name = _official_name(key)
        if ".attn.qkv." in name:  # q rows, then kv = (k rows, v rows)
            n = value.shape[0] // 3
            official[name.replace(".qkv.", ".q.")], official[name.replace(".qkv.", ".kv.")] = value[:n], value[n:]
        elif ".attn.wq." in name:
            official[name.replace(".wq.", ".q.")] = value
        elif ".attn.wk." in name:
            official[name.replace(".wk.", ".kv.")] = torch.cat([value, state[key.replace(".wk.", ".wv.")]])
        elif ".attn.wv." not in name:
            official[name] = value
    assert {"patch_embed1.conv.7.running_var", "block2.0.mlp.dwconv.dwconv.weight", "norm4.weight"} <= official.keys()
    assert {
        "post_network.0.attn.kv.weight",
        "block1.0.attn.complex_weight_ll",
        "patch_embed4.proj.weight",
    } <= official.keys()
    official["block1.0.attn.xfm.h0o"] = torch.zeros(13)  # pytorch_wavelets' filter buffers are dropped
    converted = convert_official_state_dict({"module." + k: v for k, v in official.items()})
    assert converted.keys() == state.keys()
    for k in state:
        torch.testing.assert_close(converted[k], state[k], rtol=0, atol=0)


def test_official_initialisation():
    torch.manual_seed(8)
    model = subband.create_model("svt_h_s")
    gate = model.stages[0].blocks[0].attn.complex_weight_ll
    assert abs(gate.std().item() - 0.02) < 0.001 and abs(gate.mean().item()) < 0.001
    proj = model.stages[1].downsample.proj
    assert abs(proj.weight.std().item() - math.sqrt(2 / (9 * 128))) < 0.05 * math.sqrt(2 / (9 * 128))
    assert proj.bias.abs().max() == 0
    fc = model.stages[2].blocks[0].mlp.fc1
    assert abs(fc.weight.std().item() - 0.02) < 0.001 and fc.bias.abs().max() == 0
    assert model.stages[0].downsample.norm.eps == 1e-5 and model.stages[0].norm.eps == 1e-6


def test_errors():
    model = SVT(**TINY)
    with pytest.raises(ValueError, match=r"expected images \(B, 3, H, W\)"):
        model(torch.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match=r"expected images"):
        model(torch.randn(3, 32, 32))
    with pytest.raises(ValueError, match="one entry per stage"):
        SVT(embed_dims=(16, 32), num_heads=(1, 2, 4), mlp_ratios=(2, 2), depths=(1, 1))
    with pytest.raises(ValueError, match="divisible"):
        SVT(**{**TINY, "num_heads": (1, 3, 2, 4)})
    with pytest.raises(ValueError, match="num_scatter_stages"):
        SVT(**TINY, num_scatter_stages=5)


def test_train_step_reaches_every_parameter():
    torch.manual_seed(9)
    model = SVT(**TINY, drop_path_rate=0.1).train()
    x = torch.randn(2, 3, 32, 32)
    cls, aux = model.forward_token_label(x, (0, 0, 1, 1))
    (cls.square().mean() + aux.square().mean()).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
