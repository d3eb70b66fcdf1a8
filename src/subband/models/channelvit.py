"""ChannelViT: "Channel Vision Transformers: An Image Is Worth C x 16 x 16 Words" (Bao, Karaletsos et al.;
ICLR 2024; arXiv 2309.16108).

A ViT whose patch tokens are cut from each input channel separately: one ``p x p`` projection shared
by all channels (a ``Conv3d`` with kernel ``(1, p, p)`` over the image as a one-channel volume), a
learned embedding per channel added to that channel's tokens, and the position embedding shared by
the channels, so a ``C``-channel image gives ``C * (H / p) * (W / p)`` patch tokens after the class
token. The model therefore runs on any subset of the channels it was trained with: pass the indices
of the channels present (``channels``) and it uses their embeddings. Hierarchical Channel Sampling
(HCS, :func:`hierarchical_channel_sampling`) trains for that: at every training step it draws how
many channels to keep, ``k`` uniformly from ``1..C``, then which ``k``, uniformly without
replacement, and drops the others; every sample of the batch keeps the same channels, as in the
official code. The classifier is a linear layer on the normalised class token.

Checked against the official repository (insitro/ChannelViT, ``channelvit/backbone/hcs_channel_vit.py``
and ``channel_vit.py``, ``hubconf.py``, ``config/backbone/*channelvit_small.yaml``,
``meta_arch/supervised.py``): ViT-S widths (384, depth 12, 6 heads, MLP ratio 4, ``qkv`` bias,
LayerNorm eps 1e-6), the patch ``Conv3d(1, 384, (1, p, p))`` with bias, the channel embedding
(``nn.Embedding(in_chans, 384)`` in the HCS model, the released supervised checkpoints), position
embeddings for ``(H / p) * (W / p) + 1`` tokens repeated over the channels in the channel-major token
order ``(c, y, x)``, HCS per batch (``k = randint(1, C)``, then ``k`` channels in random order),
truncated-normal (0.02) initialisation of the linear layers, class token, position and channel
embeddings, and the classifier ``Linear(384, num_classes)`` on the class token. Parameter names are
the official ones (``patch_embed.proj``, ``patch_embed.channel_embed``, ``cls_token``, ``pos_embed``,
``blocks``, ``norm``), so an official backbone state dict loads directly;
:func:`convert_official_state_dict` also takes the non-HCS layout (channel embedding as a
``(1, D, C, 1, 1)`` parameter) and the supervised module's ``backbone.`` / ``classifier.`` keys.
Given the same weights, the outputs (class token) equal the official ``hcs_channelvit_small`` in
eval mode, for the full channel set and for subsets, at the training size and others (max |diff|
3.4e-6 on outputs of magnitude 3.5, inputs of 224, 96 and 32 pixels; checked outside this suite: the
official code is not a package). The official backbone counts 21,470,208
parameters at patch 16 with 3 channels and 21,624,192 at patch 8 with 8 channels (built and
counted); the registered models add their heads (1000 ImageNet classes: 385,000; 161 JUMP-CP
classes: 61,985).

The position embedding goes through DINO's interpolation exactly as in the official code, whose
test for "same size" compares the ``C * h * w`` patch tokens with the ``h * w`` embeddings: with more
than one channel the grid is resampled (bicubic, scale ``(n + 0.1) / n``) even at the training size,
a slight smoothing the released models were trained with; one channel at the training size uses the
embedding as it is.

Differs from the official code: HCS draws with torch's generator (official: Python's ``random``);
input sides that are not multiples of ``p`` are zero-padded; non-square grids are allowed;
``channels`` may be one index list for the batch or one per sample. ``forward_features`` returns the
class token followed by the patch tokens averaged over the channels, ``(B, 1 + h * w, D)`` (timm's
token layout on the patch grid, what a dense head uses; the class token, which the classifier reads,
is the model's own); :meth:`ChannelViT.forward_tokens` returns all ``1 + C * h * w`` tokens.

Shape:
    ``forward(x, channels=None)``: ``(B, C, H, W) -> (B, num_classes)``, ``C <= in_chans``,
    ``channels`` ``(C,)`` or ``(B, C)`` indices into the trained channels (default ``0..C-1``).
    ``forward_tokens``: ``(B, 1 + C * h * w, D)``, channel-major. ``forward_features``:
    ``(B, 1 + h * w, D)``. ``features_only``: one tap per block, the channel-averaged normalised
    patch tokens as maps ``(B, D, h, w)``.

Example:
    >>> model = create_model("channelvit_small_patch16", img_size=32, num_classes=10).eval()
    >>> x = torch.randn(2, 3, 32, 32)
    >>> model(x[:, [0, 2]], channels=[0, 2]).shape  # the red and blue channels only
    torch.Size([2, 10])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import TransformerBlock
from ._features import FeatureInfo, linear_head, reset_linear_trunc_normal
from ._registry import Paper, register_model
from .vit import _pair

__all__ = ["ChannelViT", "ChannelPatchEmbed", "hierarchical_channel_sampling", "convert_official_state_dict"]


def hierarchical_channel_sampling(
    num_channels: int, generator: torch.Generator | None = None, device: torch.device | None = None
) -> torch.Tensor:
    """HCS: ``k`` uniform in ``1..num_channels``, then ``k`` distinct channels uniformly (in random
    order). Returns their positions, a ``(k,)`` long tensor."""
    if num_channels < 1:
        raise ValueError(f"num_channels must be positive, got {num_channels}")
    k = int(torch.randint(1, num_channels + 1, (), generator=generator))
    return torch.randperm(num_channels, generator=generator)[:k].to(device)


class ChannelPatchEmbed(nn.Module):
    """Per-channel patch tokens: one ``(1, p, p)`` projection shared by the channels plus a learned
    embedding per channel.

    Shape:
        ``x (B, C, H, W)``, ``channels (C,)`` or ``(B, C)`` -> ``(B, embed_dim, C, ceil(H / p), ceil(W / p))``.

    Args:
        patch_size: patch side ``p``.
        in_chans: number of channels with an embedding (the most the model sees at once).
        embed_dim: token width.
    """

    def __init__(self, patch_size: int = 16, in_chans: int = 3, embed_dim: int = 384) -> None:
        super().__init__()
        if patch_size < 1 or in_chans < 1:
            raise ValueError(f"patch_size and in_chans must be positive, got {patch_size}, {in_chans}")
        self.patch_size, self.in_chans = patch_size, in_chans
        self.proj = nn.Conv3d(1, embed_dim, (1, patch_size, patch_size), stride=(1, patch_size, patch_size))
        self.channel_embed = nn.Embedding(in_chans, embed_dim)

    def forward(self, x: torch.Tensor, channels: torch.Tensor) -> torch.Tensor:
        p = self.patch_size
        ph, pw = -x.shape[-2] % p, -x.shape[-1] % p
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph))
        t = self.proj(x.unsqueeze(1))  # (B, 1, C, H, W) -> (B, D, C, h, w)
        emb = self.channel_embed(channels)  # (C, D) or (B, C, D)
        emb = emb.expand(x.shape[0], -1, -1) if emb.ndim == 2 else emb
        return t + emb.transpose(1, 2)[..., None, None]  # (B, D, C, 1, 1) broadcast over the grid


class ChannelViT(nn.Module):
    """Channel vision transformer: per-channel patch tokens, class token, ViT blocks, class-token head.

    Args:
        img_size: training input size; sets the position-embedding grid (other sizes are resampled).
        patch_size: patch side ``p``.
        in_chans: channels the model knows (each has an embedding); inputs may hold any subset.
        num_classes: classifier outputs (0: no head, ``forward`` returns the class token).
        embed_dim: token width.
        depth: number of blocks.
        num_heads: attention heads.
        mlp_ratio: MLP hidden width over ``embed_dim``.
        qkv_bias: bias on the ``qkv`` projections.
        norm_eps: LayerNorm epsilon.
        drop_rate: dropout on the tokens after the embedding and inside the blocks.
        attn_drop_rate: dropout on the attention probabilities.
        drop_path_rate: stochastic depth, rising linearly from 0 to this over the blocks.
        hcs: Hierarchical Channel Sampling in training mode.
    """

    num_prefix_tokens = 1  # the class token (timm's attribute)

    def __init__(
        self,
        img_size: int | tuple[int, int] = 224,
        patch_size: int = 16,
        in_chans: int = 3,
        num_classes: int = 1000,
        embed_dim: int = 384,
        depth: int = 12,
        num_heads: int = 6,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        norm_eps: float = 1e-6,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        hcs: bool = True,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.img_size = _pair(img_size, "img_size")
        self.patch_size, self.in_chans, self.hcs = patch_size, in_chans, hcs
        self.grid_size = (math.ceil(self.img_size[0] / patch_size), math.ceil(self.img_size[1] / patch_size))
        self.num_classes = num_classes
        self.num_features = self.embed_dim = embed_dim
        norm_layer = partial(nn.LayerNorm, eps=norm_eps)
        self.patch_embed = ChannelPatchEmbed(patch_size, in_chans, embed_dim)
        self.cls_token = nn.Parameter(torch.empty(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.empty(1, 1 + self.grid_size[0] * self.grid_size[1], embed_dim))
        self.pos_drop = nn.Dropout(drop_rate)
        rates = [drop_path_rate * i / max(1, depth - 1) for i in range(depth)]
        self.blocks = nn.ModuleList(
            TransformerBlock(
                embed_dim,
                num_heads,
                mlp_ratio,
                qkv_bias,
                drop=drop_rate,
                attn_drop=attn_drop_rate,
                drop_path=rates[i],
                norm_layer=norm_layer,
            )
            for i in range(depth)
        )
        self.norm = norm_layer(embed_dim)
        self.head: nn.Module = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self.feature_info = FeatureInfo(
            dict(num_chs=embed_dim, reduction=patch_size, module=f"blocks.{i}") for i in range(depth)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The official initialisation: truncated normal (0.02) linear weights, class token, position
        and channel embeddings; zero linear biases; the patch conv and norms at PyTorch's defaults."""
        reset_linear_trunc_normal(self)
        for p in (self.cls_token, self.pos_embed, self.patch_embed.channel_embed.weight):
            nn.init.trunc_normal_(p, std=0.02)

    def _channels(self, x: torch.Tensor, channels: torch.Tensor | Sequence[int] | None) -> torch.Tensor:
        c = x.shape[1]
        if channels is None:
            if c > self.in_chans:
                raise ValueError(f"the model knows {self.in_chans} channels, the input has {c}")
            return torch.arange(c, device=x.device)
        channels = torch.as_tensor(channels, dtype=torch.long, device=x.device)
        if channels.shape[-1] != c or channels.ndim not in (1, 2) or (channels.ndim == 2 and len(channels) != len(x)):
            raise ValueError(f"channels must be ({c},) or ({len(x)}, {c}) indices, got shape {tuple(channels.shape)}")
        if channels.numel() and not (0 <= int(channels.min()) and int(channels.max()) < self.in_chans):
            raise ValueError(f"channel indices must be in 0..{self.in_chans - 1}, got {channels.tolist()}")
        return channels

    def _embed(
        self, x: torch.Tensor, channels: torch.Tensor | Sequence[int] | None
    ) -> tuple[torch.Tensor, tuple[int, int, int]]:
        channels = self._channels(x, channels)
        if self.training and self.hcs:
            keep = hierarchical_channel_sampling(x.shape[1], device=x.device)
            x, channels = x[:, keep], channels[..., keep]
        t = self.patch_embed(x, channels)  # (B, D, C, h, w)
        size = (t.shape[2], t.shape[3], t.shape[4])
        t = t.flatten(2).transpose(1, 2)  # (B, D, C, h, w) -> (B, C*h*w, D), channel-major
        x = torch.cat([self.cls_token.expand(t.shape[0], -1, -1), t], 1)  # (B, 1 + Chw, D)
        return self.pos_drop(x + self._pos_embed(size)), size

    def _pos_embed(self, size: tuple[int, int, int]) -> torch.Tensor:
        """``(1, 1 + C * h * w, D)``: the class entry, then the grid entries repeated per channel. As in
        the official code, the grid goes through DINO's bicubic interpolation (scale ``(n + 0.1) / n``)
        unless there is exactly one channel at the training grid."""
        c, h, w = size
        pos = self.pos_embed
        if c > 1 or (h, w) != self.grid_size:
            (gh, gw), d = self.grid_size, pos.shape[-1]
            grid = pos[:, 1:].reshape(1, gh, gw, d).permute(0, 3, 1, 2)  # (1, hw, D) -> (1, D, gh, gw)
            grid = F.interpolate(grid, scale_factor=((h + 0.1) / gh, (w + 0.1) / gw), mode="bicubic")
            if grid.shape[-2:] != (h, w):
                raise RuntimeError(f"position-embedding interpolation gave {tuple(grid.shape[-2:])}, not {(h, w)}")
            pos = torch.cat([pos[:, :1], grid.flatten(2).transpose(1, 2)], 1)  # (1, D, h, w) -> (1, 1 + hw, D)
        return torch.cat([pos[:, :1], pos[:, 1:].repeat(1, c, 1)], 1)  # same positions for every channel

    def _channel_mean(self, x: torch.Tensor, size: tuple[int, int, int]) -> torch.Tensor:
        b, _, d = x.shape
        c, h, w = size
        return x[:, 1:].view(b, c, h * w, d).mean(1)  # (B, C*hw, D) -> (B, hw, D)

    def forward_tokens(self, x: torch.Tensor, channels: torch.Tensor | Sequence[int] | None = None) -> torch.Tensor:
        """All normalised tokens, class token first, then ``C * h * w`` patch tokens channel-major."""
        x, _ = self._embed(x, channels)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)

    def forward_features(self, x: torch.Tensor, channels: torch.Tensor | Sequence[int] | None = None) -> torch.Tensor:
        """The class token and the patch tokens averaged over the channels, ``(B, 1 + h * w, D)``."""
        x, size = self._embed(x, channels)
        for blk in self.blocks:
            x = blk(x)
        x = self.norm(x)
        return torch.cat([x[:, :1], self._channel_mean(x, size)], 1)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x[:, 0]  # the class token
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor, channels: torch.Tensor | Sequence[int] | None = None) -> torch.Tensor:
        return self.forward_head(self.forward_features(x, channels))

    def forward_intermediates(
        self, x: torch.Tensor, indices: Sequence[int], channels: torch.Tensor | Sequence[int] | None = None
    ) -> list[torch.Tensor]:
        """After the blocks in ``indices``: the normalised patch tokens averaged over the channels, as
        ``(B, D, h, w)`` maps."""
        x, size = self._embed(x, channels)
        out = []
        for i, blk in enumerate(self.blocks[: max(indices) + 1]):
            x = blk(x)
            if i in indices:
                t = self._channel_mean(self.norm(x), size)
                out.append(t.transpose(1, 2).reshape(t.shape[0], -1, *size[1:]))  # (B, hw, D) -> (B, D, h, w)
        return out

    def prune_intermediate_layers(self, indices: Sequence[int]) -> None:
        """Drop the blocks after the last of ``indices`` and the head."""
        self.blocks = self.blocks[: max(indices) + 1]
        self.head = nn.Identity()

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier with a fresh one for ``num_classes`` (0: none)."""
        self.num_classes = num_classes
        self.head = linear_head(self.num_features, num_classes)

    def extra_repr(self) -> str:
        return f"in_chans={self.in_chans}, patch_size={self.patch_size}, hcs={self.hcs}"


def convert_official_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An official ChannelViT state dict (backbone, or the supervised module with ``backbone.`` and
    ``classifier.`` keys) with this module's names; the non-HCS channel embedding, a ``(1, D, C, 1, 1)``
    parameter, becomes the ``(C, D)`` embedding table."""
    out = {}
    for key, value in state.items():
        key = key.removeprefix("module.").removeprefix("backbone.")
        if key.startswith("classifier."):
            key = "head." + key.removeprefix("classifier.")
        if key == "patch_embed.channel_embed":
            key, value = "patch_embed.channel_embed.weight", value[0, :, :, 0, 0].t()  # (1, D, C, 1, 1) -> (C, D)
        out[key] = value
    return out


_TITLE = "Channel Vision Transformers: An Image Is Worth C x 16 x 16 Words"


@register_model(
    Paper(
        title=_TITLE,
        arxiv="2309.16108",
        params=21_855_208,
        input_size=(3, 224, 224),
        source=(
            "insitro/ChannelViT hcs_channel_vit.py hcs_channelvit_small(patch_size=16, in_chans=3), hubconf "
            "imagenet_channelvit_small_p16_with_hcs_supervised (backbone built and counted: 21,470,208); paper "
            "Table 1: ChannelViT-S/16 + HCS 74.64% ImageNet top-1 (RGB)"
        ),
        notes="params: the official backbone 21,470,208 plus the 1000-class linear head on the class token (385,000)",
    )
)
def channelvit_small_patch16(**kwargs) -> ChannelViT:
    """ChannelViT-S/16 (ImageNet, RGB): width 384, depth 12, 6 heads, 3 channels, HCS."""
    return ChannelViT(**{**dict(patch_size=16, in_chans=3, num_classes=1000), **kwargs})


@register_model(
    Paper(
        title=_TITLE,
        arxiv="2309.16108",
        params=21_686_177,
        input_size=(8, 224, 224),
        source=(
            "insitro/ChannelViT hubconf cpjump_cellpaint_bf_channelvit_small_p8_with_hcs_supervised: "
            "hcs_channelvit_small(patch_size=8, in_chans=8) (backbone built and counted: 21,624,192); JUMP-CP "
            "161 classes (README)"
        ),
        notes="params: the official backbone 21,624,192 plus the 161-class linear head (61,985)",
    )
)
def channelvit_small_patch8(**kwargs) -> ChannelViT:
    """ChannelViT-S/8 (JUMP-CP, 5 Cell Painting + 3 brightfield channels, 161 classes), HCS."""
    return ChannelViT(**{**dict(patch_size=8, in_chans=8, num_classes=161), **kwargs})
