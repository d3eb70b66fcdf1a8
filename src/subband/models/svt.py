"""SVT: "Scattering Vision Transformer: Spectral Mixing Matters" (Patro, Agneeswaran; NeurIPS 2023;
arXiv 2311.01310), the hierarchical models SVT-H-S/B/L.

Four stages at strides 4, 8, 16, 32 (a WaveViT/PVTv2-like pyramid):

- **Stem** (:class:`ConvStem`): 7x7 stride-2 Conv-BN-ReLU, two 3x3 Conv-BN-ReLU, a 3x3 stride-2 conv
  to the first width and a LayerNorm over the tokens. Later stages start with a 3x3 stride-2 conv
  and a LayerNorm (:class:`Downsample`).
- **Blocks** (:class:`SVTBlock`): pre-norm ``x + mixer(norm1(x))``, ``x + ConvFFN(norm2(x))``. The
  first stage mixes with the scattering mixer (:class:`~subband.layers.ScatterMixer`: one-level
  DTCWT, a learned gate on the lowpass, a complex Einstein-product MLP on the six highpasses, the
  inverse DTCWT); the other stages with multi-head self-attention over all tokens. The FFN is
  PVTv2's (:class:`ConvFFN`: linear, depthwise 3x3 conv, GELU, linear).
- A LayerNorm after each of the first three stages; then a class token (the mean of the stage-4
  tokens) is prepended and updated by one class-attention block (:class:`ClassBlock`: the class
  token attends to all tokens, then an MLP on it alone), and a final LayerNorm.
- **Head**: a linear classifier on the class token plus, as trained with token labelling (the
  official default), half the maximum over the patch tokens of an auxiliary linear classifier on
  each token: ``head(cls) + 0.5 * max_n aux_head(t_n)``, the official inference output.
  :meth:`SVT.forward_token_label` returns the two parts for token-labelling training, with the
  official MixToken region swap when given a box.

Checked against the official repository (badripatro/svt, ``svt.py``: ``svt_s``, ``svt_b``,
``svt_l``, ``SVT``, ``Stem``, ``DownSamples``, ``Block``, ``Attention``, ``PVT2FFN``, ``ClassBlock``,
``SVT_channel_mixing``, ``SVT_channel_token_mixing``; ``configs/svt/svt_{s,b,l}.py``; README): the
widths, depths, heads, MLP ratios and stem widths of the three variants, the scattering mixer in
the first stage only (``alpha = 1``) with 4 channel blocks and the channel-mixing class, one
class-attention block with the last stage's heads and MLP ratio, the token-labelling auxiliary head
(counted), LayerNorm eps 1e-6 except in the stem and downsampling layers (1e-5), the
initialisation (linear weights truncated normal 0.02, zero biases; conv weights normal with std
``sqrt(2 / fan_out)``, zero biases; spectral weights normal with std 0.02). The official
configurations list ``sr_ratios = [4, 2, 1, 1]``, but its attention takes no ratio: keys and values
are all the tokens, as here. Built and counted, the official models have exactly the parameters
registered here (22,052,592 / 32,878,544 / 54,594,000; the README rounds them to 22.0M / 32.8M /
54.0M, the last 1.1% below the count). Given the same weights (converted by
:func:`convert_official_state_dict`, which loads strictly), the outputs of all three equal the
official model's run with ``pytorch_wavelets`` (eval mode, 224x224, batch 2; checked outside the test
suite, the official code not being a package): logits max |diff| 9.2e-7 (S), 1.1e-6 (B), 1.1e-6 (L),
final tokens 8.8e-6 at most, from ``pytorch_wavelets`` storing the DTCWT filters in float32; the
training-mode token-labelling outputs with the official MixToken boxes agree to 2.6e-6 (S).

Differs from the official code: the attention is :class:`~subband.layers.Attention` (one ``qkv``
projection, SDPA) where the official has separate ``q`` and ``kv`` projections (the same parameters
stacked; the converter concatenates them), and the class attention is
:class:`~subband.layers.CrossAttention` (``wq``, ``wk``, ``wv``: the official ``kv`` split); the
DTCWT is :mod:`subband.wavelets` (same coefficients, see :mod:`subband.layers.svt`); other input
sizes work (the lowpass gate, made for ``img_size / 4``, is resampled; odd maps are handled; the
official code runs at 224 only); ``forward`` returns the inference output in training mode too (the
official training forward returns ``(cls logits, token logits, box)`` with a random MixToken box:
here :meth:`SVT.forward_token_label`, with the box drawn by the caller); with ``num_classes=0`` the
output is the class token. The official recipe trains with
``drop_path_rate`` 0.1 (S, B) / 0.3 (L); the builders default to 0.

``Paper.gflops`` is None: the README's 3.9 / 6.3 / 12.7G fit no count made here.
``torch.utils.flop_counter`` on these models at 224 on the CPU gives 4.23 / 6.63 / 13.62 GMACs (the
Einstein products included; not the DTCWT, strided slicing here, nor the attention products, which
the counter misses inside CPU SDPA: 0.78 / 0.93 / 1.95 GMACs more), and on the official code 5.13 /
7.68 / 15.75 (attention products included, the DTCWT running as convolutions); the official models'
linear and conv modules alone sum to 4.12 / 6.51 / 13.36 GMACs (each variant's ``notes``).

Shape:
    ``forward``: ``(B, in_chans, H, W) -> (B, num_classes)``. ``forward_features``: the tokens after
    the final norm, class token first (timm's layout), ``(B, 1 + h * w, C)`` with
    ``h, w = ceil(H / 32), ceil(W / 32)``. ``features_only``: the four stage outputs as maps
    ``(B, embed_dims[i], ceil(H / 2^(i+2)), ceil(W / 2^(i+2)))`` (after the stage norms; the last one
    after the final norm).

Example:
    >>> model = create_model("svt_h_s").eval()
    >>> model(torch.randn(1, 3, 224, 224)).shape
    torch.Size([1, 1000])
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ..layers import Attention, ConvBN, CrossAttention, DropPath, Mlp, ScatterMixer
from ._features import FeatureInfo, linear_head, rename_keys
from ._registry import Paper, register_model

__all__ = ["SVT", "SVTBlock", "ConvStem", "Downsample", "ConvFFN", "ClassBlock", "convert_official_state_dict"]

Size = tuple[int, int]


def _to_map(x: torch.Tensor, size: Size) -> torch.Tensor:
    b, _, c = x.shape
    return x.transpose(1, 2).reshape(b, c, *size)  # (B, hw, C) -> (B, C, h, w)


def _to_tokens(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(2).transpose(1, 2)  # (B, C, h, w) -> (B, hw, C)


class ConvStem(nn.Module):
    """7x7 stride-2 Conv-BN-ReLU, two 3x3 Conv-BN-ReLU (``hidden`` channels), a 3x3 stride-2 conv
    (with bias) to ``out_chans`` and a LayerNorm (eps 1e-5) over the tokens.

    Shape:
        ``(B, in_chans, H, W) -> (B, h * w, out_chans)`` and ``(h, w) = (ceil(H / 4), ceil(W / 4))``.
    """

    def __init__(self, in_chans: int = 3, hidden: int = 32, out_chans: int = 64) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            ConvBN(in_chans, hidden, 7, stride=2, padding=3),
            nn.ReLU(inplace=True),
            ConvBN(hidden, hidden, 3, padding=1),
            nn.ReLU(inplace=True),
            ConvBN(hidden, hidden, 3, padding=1),
            nn.ReLU(inplace=True),
        )
        self.proj = nn.Conv2d(hidden, out_chans, 3, stride=2, padding=1)
        self.norm = nn.LayerNorm(out_chans)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, Size]:
        x = self.proj(self.conv(x))
        return self.norm(_to_tokens(x)), (x.shape[-2], x.shape[-1])


class Downsample(nn.Module):
    """3x3 stride-2 conv and a LayerNorm (eps 1e-5) over the tokens.

    Shape:
        ``(B, in_chans, H, W) -> (B, h * w, out_chans)`` and ``(h, w) = (ceil(H / 2), ceil(W / 2))``.
    """

    def __init__(self, in_chans: int, out_chans: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, out_chans, 3, stride=2, padding=1)
        self.norm = nn.LayerNorm(out_chans)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, Size]:
        x = self.proj(x)
        return self.norm(_to_tokens(x)), (x.shape[-2], x.shape[-1])


class ConvFFN(nn.Module):
    """PVTv2's feed-forward: ``fc2(GELU(dwconv(fc1(x))))`` with a depthwise 3x3 conv on the token map.

    Shape:
        ``x (B, h * w, dim)``, ``size = (h, w) -> (B, h * w, dim)``.
    """

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor, size: Size) -> torch.Tensor:
        x = _to_tokens(self.dwconv(_to_map(self.fc1(x), size)))
        return self.fc2(self.act(x))


class SVTBlock(nn.Module):
    """``x + DropPath(mixer(norm1(x)))``, ``x + DropPath(ConvFFN(norm2(x)))`` with the mixer a
    :class:`~subband.layers.ScatterMixer` (``scatter=True``) or self-attention over all tokens.

    Args:
        dim: token width.
        num_heads: attention heads (unused by the scattering mixer).
        mlp_ratio: FFN hidden width over ``dim``.
        scatter: the scattering mixer instead of attention.
        size: the token grid the scattering mixer's lowpass gate is made for.
        num_blocks: channel blocks of the scattering mixer's Einstein products.
        token_mixing: the scattering mixer's channel + token variant.
        drop_path: stochastic-depth probability of both residual branches.

    Shape:
        ``x (B, h * w, dim)``, ``size = (h, w) -> (B, h * w, dim)``.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float,
        scatter: bool = False,
        size: Size = (56, 56),
        num_blocks: int = 4,
        token_mixing: bool = False,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.scatter = scatter
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn: nn.Module = (
            ScatterMixer(dim, size, num_blocks, token_mixing) if scatter else Attention(dim, num_heads, qkv_bias=True)
        )
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = ConvFFN(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, size: Size) -> torch.Tensor:
        y = self.norm1(x)
        y = _to_tokens(self.attn(_to_map(y, size))) if self.scatter else self.attn(y)
        x = x + self.drop_path(y)
        return x + self.drop_path(self.mlp(self.norm2(x), size))


class ClassBlock(nn.Module):
    """Class attention: ``cls + CrossAttention(norm1(cls), norm1(x))``, then ``cls + Mlp(norm2(cls))``;
    the patch tokens pass unchanged.

    Shape:
        ``(B, 1 + N, dim) -> (B, 1 + N, dim)``.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = CrossAttention(dim, num_heads, qkv_bias=True)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm1(x)
        cls = x[:, :1] + self.attn(y[:, :1], y)  # (B, 1, C)
        cls = cls + self.mlp(self.norm2(cls))
        return torch.cat([cls, x[:, 1:]], 1)


class SVTStage(nn.Module):
    """Downsampling (the stem in stage 0), blocks, and the stage's LayerNorm (``Identity`` in the last
    stage, whose tokens are normalised after the class block).

    Shape:
        ``(B, C_in, H, W) -> (B, h * w, dim)`` and ``(h, w)``.
    """

    def __init__(self, downsample: nn.Module, blocks: Sequence[SVTBlock], norm: nn.Module) -> None:
        super().__init__()
        self.downsample = downsample
        self.blocks = nn.ModuleList(blocks)
        self.norm = norm

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, Size]:
        x, size = self.downsample(x)
        return self.run_blocks(x, size), size

    def run_blocks(self, x: torch.Tensor, size: Size) -> torch.Tensor:
        for blk in self.blocks:
            x = blk(x, size)
        return self.norm(x)


class SVT(nn.Module):
    """The hierarchical Scattering Vision Transformer (see the module docstring).

    Args:
        in_chans: image channels.
        num_classes: classifier outputs (0: no heads, ``forward`` returns the class token).
        img_size: the input size the first stage's lowpass gates are made for (``ceil(img_size / 4)``);
            other sizes resample them.
        stem_hidden_dim: channels of the stem's three Conv-BN-ReLU layers.
        embed_dims: widths of the four stages.
        num_heads: attention heads per stage (the last also for the class block).
        mlp_ratios: FFN ratios per stage (the last also for the class block).
        depths: blocks per stage.
        num_scatter_stages: leading stages that mix with the scattering mixer (the paper's
            ``alpha``, 1); the others use attention.
        num_blocks: channel blocks of the Einstein products.
        token_mixing: the scattering mixer's channel + token variant (official code, not its models).
        num_post_blocks: class-attention blocks.
        token_label: the auxiliary token classifier of token labelling (official default: on).
        drop_path_rate: stochastic depth, rising linearly from 0 to this over all blocks.
    """

    num_prefix_tokens = 1  # the class token, before the patch tokens (timm's attribute)

    def __init__(
        self,
        in_chans: int = 3,
        num_classes: int = 1000,
        img_size: int | tuple[int, int] = 224,
        stem_hidden_dim: int = 32,
        embed_dims: Sequence[int] = (64, 128, 320, 448),
        num_heads: Sequence[int] = (2, 4, 10, 14),
        mlp_ratios: Sequence[float] = (8, 8, 4, 4),
        depths: Sequence[int] = (3, 4, 6, 3),
        num_scatter_stages: int = 1,
        num_blocks: int = 4,
        token_mixing: bool = False,
        num_post_blocks: int = 1,
        token_label: bool = True,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        n = len(depths)
        if n < 1 or not len(embed_dims) == len(num_heads) == len(mlp_ratios) == n:
            raise ValueError("embed_dims, num_heads, mlp_ratios and depths must have one entry per stage")
        if any(d % h for d, h in zip(embed_dims, num_heads)):
            raise ValueError(f"each embed_dim must be divisible by its num_heads, got {embed_dims} / {num_heads}")
        if not 0 <= num_scatter_stages <= n:
            raise ValueError(f"num_scatter_stages must be in 0..{n}, got {num_scatter_stages}")
        img = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        self.in_chans, self.num_classes, self.img_size = in_chans, num_classes, img
        self.num_features = self.embed_dim = embed_dims[-1]
        total = sum(depths)
        rates = [drop_path_rate * i / max(1, total - 1) for i in range(total)]
        stages, cur = [], 0
        for i in range(n):
            size = (math.ceil(img[0] / 2 ** (i + 2)), math.ceil(img[1] / 2 ** (i + 2)))
            down = (
                ConvStem(in_chans, stem_hidden_dim, embed_dims[0])
                if i == 0
                else Downsample(embed_dims[i - 1], embed_dims[i])
            )
            blocks = [
                SVTBlock(embed_dims[i], num_heads[i], mlp_ratios[i], i < num_scatter_stages, size, num_blocks,
                         token_mixing, rates[cur + j])
                for j in range(depths[i])
            ]  # fmt: skip
            cur += depths[i]
            norm = nn.LayerNorm(embed_dims[i], eps=1e-6) if i < n - 1 else nn.Identity()
            stages.append(SVTStage(down, blocks, norm))
        self.stages = nn.ModuleList(stages)
        self.post_blocks = nn.ModuleList(
            ClassBlock(embed_dims[-1], num_heads[-1], mlp_ratios[-1]) for _ in range(num_post_blocks)
        )
        self.norm = nn.LayerNorm(embed_dims[-1], eps=1e-6)
        self.token_label = token_label
        self.head: nn.Module = nn.Identity()
        self.aux_head: nn.Module | None = None
        self.feature_info = FeatureInfo(
            dict(num_chs=embed_dims[i], reduction=2 ** (i + 2), module=f"stages.{i}") for i in range(n)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The official initialisation (see the module docstring)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.LayerNorm, nn.BatchNorm2d, ScatterMixer)):
                m.reset_parameters()
        self.reset_classifier(self.num_classes)

    def reset_classifier(self, num_classes: int) -> None:
        """Fresh classifier and (with ``token_label``) auxiliary classifier for ``num_classes`` (0: none)."""
        self.num_classes = num_classes
        self.head = linear_head(self.num_features, num_classes)
        self.aux_head = linear_head(self.num_features, num_classes) if self.token_label and num_classes > 0 else None

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.in_chans:
            raise ValueError(f"expected images (B, {self.in_chans}, H, W), got shape {tuple(x.shape)}")

    def _trunk(self, x: torch.Tensor, mix_box: Sequence[int] | None = None) -> tuple[torch.Tensor, Size]:
        """The stage-4 tokens before any norm ``(B, h * w, C)``, with the MixToken swap after the stem."""
        self._check(x)
        x, size = self.stages[0].downsample(x)
        if mix_box is not None:
            x = _mix_tokens(x, size, mix_box, 2 ** (len(self.stages) - 1))
        x = self.stages[0].run_blocks(x, size)
        for stage in self.stages[1:]:
            x, size = stage(_to_map(x, size))
        return x, size

    def _post(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([x.mean(1, keepdim=True), x], 1)  # (B, 1 + N, C): the class token is the mean
        for blk in self.post_blocks:
            x = blk(x)
        return self.norm(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._post(self._trunk(x)[0])  # (B, 1 + h*w, C)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        cls = x[:, 0]
        if pre_logits or self.num_classes <= 0:
            return cls
        out = self.head(cls)
        if self.aux_head is not None:
            out = out + 0.5 * self.aux_head(x[:, 1:]).amax(1)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_token_label(
        self, x: torch.Tensor, mix_box: Sequence[int] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The two outputs token labelling trains on: class logits ``(B, num_classes)`` and per-token
        logits ``(B, h * w, num_classes)`` (row-major stage-4 grid).

        ``mix_box = (top, left, bottom, right)`` (stage-4 token units, half-open) applies MixToken
        as the official training forward: after the stem, the tokens inside the box (scaled to the
        stem grid) are taken from the batch reversed (``x.flip(0)``); the token logits inside the
        box are swapped back, so each refers to its own image's labels.
        """
        if self.aux_head is None:
            raise ValueError("forward_token_label needs token_label=True and num_classes > 0")
        tokens, size = self._trunk(x, mix_box)
        x = self._post(tokens)
        aux = self.aux_head(x[:, 1:])  # (B, h*w, classes)
        if mix_box is not None:
            aux = _to_tokens(_swap_box(_to_map(aux, size), mix_box))
        return self.head(x[:, 0]), aux

    def forward_intermediates(self, x: torch.Tensor, indices: Sequence[int]) -> list[torch.Tensor]:
        """The stage outputs in ``indices`` as ``(B, C, h, w)`` maps (the last stage after the final norm)."""
        self._check(x)
        out, last = [], len(self.feature_info) - 1
        for i, stage in enumerate(self.stages[: max(indices) + 1]):
            x, size = stage(x)  # (B, hw, C)
            if i in indices:
                out.append(_to_map(self.norm(x) if i == last else x, size))
            x = _to_map(x, size)
        return out

    def prune_intermediate_layers(self, indices: Sequence[int]) -> None:
        """Drop the stages after the last of ``indices``, the class blocks and the heads (and the final
        norm unless the last stage is a tap)."""
        keep = max(indices) + 1
        if keep < len(self.stages):
            self.norm = nn.Identity()
        self.stages = self.stages[:keep]
        self.post_blocks = nn.ModuleList()
        self.head, self.aux_head = nn.Identity(), None


def _swap_box(x: torch.Tensor, box: Sequence[int]) -> torch.Tensor:
    """``x (B, C, H, W)`` with the rows ``box[0]:box[2]`` and columns ``box[1]:box[3]`` taken from ``x.flip(0)``."""
    t, l, b, r = box
    out = x.clone()
    out[:, :, t:b, l:r] = x.flip(0)[:, :, t:b, l:r]
    return out


def _mix_tokens(x: torch.Tensor, size: Size, box: Sequence[int], scale: int) -> torch.Tensor:
    if len(box) != 4:
        raise ValueError(f"mix_box must be (top, left, bottom, right), got {box}")
    return _to_tokens(_swap_box(_to_map(x, size), [v * scale for v in box]))


def convert_official_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict of the official ``SVT`` (e.g. ``checkpoint["model"]``) with subband's names: the
    separate ``q`` / ``kv`` projections stacked into ``qkv`` (stage blocks) or split into ``wq``,
    ``wk``, ``wv`` (class blocks), the stem's Conv-BNs renamed, the DTCWT filter buffers dropped."""
    state = {k.removeprefix("module."): v for k, v in state.items()}
    num_stages = max(int(k[len("block")]) for k in state if k.startswith("block"))
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if ".xfm." in key or ".ifm." in key:
            continue  # pytorch_wavelets' filters, kept as buffers
        if key.startswith("block") and (".attn.q." in key or ".attn.kv." in key):
            if ".attn.q." in key:  # q rows first, then kv's k and v rows: qkv's order
                out[key.replace(".attn.q.", ".attn.qkv.")] = torch.cat([value, state[key.replace(".q.", ".kv.")]], 0)
            continue
        if key.startswith("post_network") and ".attn.kv." in key:
            k, v = value.chunk(2, 0)
            out[key.replace(".kv.", ".wk.")], out[key.replace(".kv.", ".wv.")] = k, v
            continue
        out[key.replace(".attn.q.", ".attn.wq.") if key.startswith("post_network") else key] = value
    stem = {0: "0.c", 1: "0.bn", 3: "2.c", 4: "2.bn", 6: "4.c", 7: "4.bn"}
    rules = [(rf"^patch_embed1\.conv\.{i}\.", f"stages.0.downsample.conv.{j}.") for i, j in stem.items()]
    rules += [
        (r"^patch_embed(\d)\.", lambda m: f"stages.{int(m.group(1)) - 1}.downsample."),
        (r"^block(\d)\.", lambda m: f"stages.{int(m.group(1)) - 1}.blocks."),
        (rf"^norm{num_stages}\.", "norm."),
        (r"^norm(\d)\.", lambda m: f"stages.{int(m.group(1)) - 1}.norm."),
        (r"^post_network\.", "post_blocks."),
        (r"\.mlp\.dwconv\.dwconv\.", ".mlp.dwconv."),
    ]
    out = rename_keys(out, rules[:-1])
    return rename_keys(out, rules[-1:])


_TITLE = "Scattering Vision Transformer: Spectral Mixing Matters"
_SRC = "badripatro/svt svt.py {} (built and counted, token-labelling aux head included); README: {}"
_NOTES = (
    "gflops None: README {}G at 224, which no count made here reproduces. torch.utils.flop_counter: {} GMACs "
    "here on the CPU (without the attention products inside SDPA, +{} counted by hand, and without the DTCWT, "
    "strided slicing here), {} on the official code (attention products included, its DTCWT running as "
    "convolutions); the official linear and conv modules alone: {}"
)


def _paper(name: str, params: int, readme: str, counts: tuple[float, float, float, float]) -> Paper:
    return Paper(
        title=_TITLE,
        arxiv="2311.01310",
        params=params,
        gflops=None,
        input_size=(3, 224, 224),
        source=_SRC.format(name, readme),
        notes=_NOTES.format(readme.split(" / ")[1].rstrip("G"), *counts),
    )


@register_model(_paper("svt_s", 22_052_592, "22.0M / 3.9G / 84.2% top-1", (4.23, 0.78, 5.13, 4.12)))
def svt_h_s(**kwargs) -> SVT:
    """SVT-H-S: widths 64-128-320-448, depths 3-4-6-3, heads 2-4-10-14, stem 32."""
    return SVT(**kwargs)


@register_model(_paper("svt_b", 32_878_544, "32.8M / 6.3G / 85.2% top-1", (6.63, 0.93, 7.68, 6.51)))
def svt_h_b(**kwargs) -> SVT:
    """SVT-H-B: widths 64-128-320-512, depths 3-4-12-3, heads 2-4-10-16, stem 64."""
    cfg = dict(stem_hidden_dim=64, embed_dims=(64, 128, 320, 512), num_heads=(2, 4, 10, 16), depths=(3, 4, 12, 3))
    return SVT(**{**cfg, **kwargs})


@register_model(_paper("svt_l", 54_594_000, "54.0M / 12.7G / 85.7% top-1", (13.62, 1.95, 15.75, 13.36)))
def svt_h_l(**kwargs) -> SVT:
    """SVT-H-L: widths 96-192-384-512, depths 3-6-18-3, heads 3-6-12-16, stem 64."""
    cfg = dict(stem_hidden_dim=64, embed_dims=(96, 192, 384, 512), num_heads=(3, 6, 12, 16), depths=(3, 6, 18, 3))
    return SVT(**{**cfg, **kwargs})
