"""ViT: "An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale" (Dosovitskiy et al.;
ICLR 2021; arXiv 2010.11929), at any patch size down to pixel tokens ("Scaling Laws in
Patchification: An Image Is Worth 50,176 Tokens And More", Wang et al.; ICML 2025; arXiv 2502.03738),
optionally with the Gaussian mixture attention mask of "Toward a Deeper Understanding: RetNet Viewed
through Convolution" (Li, Zhang; arXiv 2309.05375; :class:`~subband.layers.GaussianMixtureMask`).

The plain ViT: a stride-``p`` ``p x p`` convolution cuts the image into patches (``p = 1``: one token
per pixel), an optional class token is prepended, a learned position embedding is added, ``depth``
pre-norm :class:`~subband.layers.TransformerBlock` s follow, then a LayerNorm and a linear head on
the class token (``global_pool="token"``) or on the mean patch token (``"avg"``, where, as in timm,
the LayerNorm moves after the pooling: ``fc_norm``).

Checked against timm 1.0 (``vision_transformer.py``): the parameter names are timm's
(``patch_embed.proj``, ``cls_token``, ``pos_embed``, ``blocks.<i>.{norm1, attn.qkv, attn.proj, norm2,
mlp.fc1, mlp.fc2}``, ``norm``, ``fc_norm``, ``head``), so a timm ``vit_*`` state dict loads
unchanged; given the same weights the outputs equal timm's ``vit_small_patch16_224`` (max |diff| 0.0 in
float32 at 224 and, against timm's ``dynamic_img_size``, at 96 x 64 and 32 x 32: position embeddings
are resampled as timm does, bicubic with anti-aliasing; ``tests/models/test_vit.py`` checks it, and
patches 4 and 1). The registered ViT-Ti/S/B have timm's exact
parameter counts and the DeiT paper's widths (192/384/768, depth 12, 3/6/12 heads).

Patch size: any ``p >= 1``; an input whose sides are not multiples of ``p`` is zero-padded at the
bottom and right (timm's ``dynamic_img_pad``), so the grid is ``ceil(H / p) x ceil(W / p)``. The
patchification paper's finding is about accuracy against cost: at a fixed input, ``p -> p / 2``
multiplies the tokens by 4, the linear layers' cost by 4 and the attention's by 16
(``benchmarks/vit_patch.py`` measures it). Its ViT experiments use DeiT widths (Figure 1(a): DeiT-B,
64 x 64 input, patch 16 down to 1); ``vit_base_patch2_64`` and ``vit_base_patch1_64`` register two
of those points. The paper's released code and weights are for its Mamba model (Adventurer), not
for these ViTs, and its tables were not checked here: the parameter counts of those two are this
configuration's own.

GMM: ``ViT(..., attn_mask="gmm", gmm_kernels=5)`` gives every block its own mask (two parameters per
component and head) that multiplies the attention logits of the patch tokens; the class token's
rows and columns are left unscaled. ``gmm_vit_cifar`` is the paper's CIFAR model, checked against
the official repository (CatworldLee/Gaussian-Mixture-Mask-Attention, ``models/vit.py``,
``models/create_model.py`` with ``--model vit --is_GMM``, ``num_kernals 5``): patch 4 on 32 x 32,
width 192, depth 9, 12 heads of width 16, MLP ratio 2, no ``qkv`` bias, LayerNorm eps 1e-5, no
class token (the masked model averages its tokens: LayerNorm and a linear head on the mean), Xavier
normal initialisation of the linear layers and a unit-normal position embedding. It is the plain
small ViT of that repository, with neither the shifted patch tokenisation nor the locality
self-attention of the SPT/LSA code it grew from. The official model counts 2,714,588 parameters, of
which 4,096 are its fixed 64 x 64 distance map, stored as a frozen ``nn.Parameter``; that map is
computed here, so this model counts 2,710,492 (the official trainable parameters, exactly).
:func:`convert_gmm_official_state_dict` maps an official checkpoint (the patch ``Linear`` becomes
the equivalent conv); with the same weights the outputs equal the official model's (max |diff|
1.4e-6 in float32 on outputs up to 3.5; 4e-8 in float64, where the official distance map is still
rounded to float32; checked outside this suite: the official code is not a package).

Differs from the official GMM code: stochastic depth rises linearly over the blocks (official: one
rate for all; the builders default to 0, the official runs used 0.1); the position embedding is
resampled for other input sizes (official: sliced, so only the training size works).

Shape:
    ``forward``: ``(B, in_chans, H, W) -> (B, num_classes)``. ``forward_features``: the tokens after
    the final norm, prefix tokens first, ``(B, P + h * w, embed_dim)`` with ``P = num_prefix_tokens``
    (1 with a class token, else 0) and ``h, w = ceil(H / p), ceil(W / p)``. ``features_only``: one
    tap per block, the normalised patch tokens as maps ``(B, embed_dim, h, w)``.

Example:
    >>> model = create_model("vit_tiny_patch16_224", patch_size=1, img_size=32, num_classes=10)
    >>> model(torch.randn(2, 3, 32, 32)).shape  # 1024 pixel tokens
    torch.Size([2, 10])
    >>> create_model("gmm_vit_cifar")(torch.randn(2, 3, 32, 32)).shape
    torch.Size([2, 100])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import GaussianMixtureMask, TransformerBlock
from ._features import FeatureInfo, linear_head, rename_keys
from ._registry import Paper, register_model

__all__ = ["ViT", "PatchEmbed", "resample_pos_embed", "convert_gmm_official_state_dict"]


def _pair(v: int | Sequence[int], name: str) -> tuple[int, int]:
    out = (v, v) if isinstance(v, int) else tuple(v)
    if len(out) != 2 or min(out) < 1:
        raise ValueError(f"{name} must be a positive int or a pair of them, got {v}")
    return out  # type: ignore[return-value]


def resample_pos_embed(
    pos_embed: torch.Tensor, old_size: tuple[int, int], new_size: tuple[int, int], num_prefix_tokens: int = 0
) -> torch.Tensor:
    """A ``(1, P + h * w, C)`` position embedding on an ``old_size`` grid resampled to ``new_size``
    (bicubic with anti-aliasing, as timm's ``resample_abs_pos_embed``; the ``P`` prefix entries kept)."""
    if tuple(old_size) == tuple(new_size):
        return pos_embed
    prefix, grid = pos_embed[:, :num_prefix_tokens], pos_embed[:, num_prefix_tokens:]
    c = grid.shape[-1]
    grid = grid.float().reshape(1, *old_size, c).permute(0, 3, 1, 2)  # (1, hw, C) -> (1, C, h, w)
    grid = F.interpolate(grid, size=tuple(new_size), mode="bicubic", antialias=True)
    grid = grid.permute(0, 2, 3, 1).reshape(1, -1, c).to(pos_embed.dtype)  # (1, C, h', w') -> (1, h'w', C)
    return torch.cat([prefix, grid], 1)


class PatchEmbed(nn.Module):
    """Non-overlapping ``p x p`` patches, linearly projected: a stride-``p`` convolution. An input whose
    sides are not multiples of ``p`` is zero-padded at the bottom and right.

    Shape:
        ``(B, in_chans, H, W) -> (B, embed_dim, ceil(H / p), ceil(W / p))``.

    Args:
        patch_size: patch side ``p`` (1: one token per pixel).
        in_chans: image channels.
        embed_dim: token width.
    """

    def __init__(self, patch_size: int = 16, in_chans: int = 3, embed_dim: int = 768) -> None:
        super().__init__()
        if patch_size < 1:
            raise ValueError(f"patch_size must be >= 1, got {patch_size}")
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.patch_size
        ph, pw = -x.shape[-2] % p, -x.shape[-1] % p
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph))
        return self.proj(x)


class ViT(nn.Module):
    """Vision transformer with timm's layout and parameter names.

    Args:
        img_size: training input size; sets the position-embedding grid (other sizes are resampled).
        patch_size: patch side ``p >= 1``.
        in_chans: image channels.
        num_classes: classifier outputs (0: no head, ``forward`` returns the pooled features).
        embed_dim: token width.
        depth: number of blocks.
        num_heads: attention heads.
        head_dim: width per head (``embed_dim // num_heads`` by default).
        mlp_ratio: MLP hidden width over ``embed_dim``.
        qkv_bias: bias on the ``qkv`` projections.
        class_token: prepend a class token (with its own position-embedding entry).
        global_pool: ``"token"`` (the class token) or ``"avg"`` (mean of the patch tokens).
        fc_norm: LayerNorm after pooling instead of before it (default: True for ``"avg"``, as timm).
        init_values: layer-scale initial value (``None``: no layer scale).
        norm_eps: LayerNorm epsilon.
        drop_rate: dropout on the tokens after the embedding and inside the blocks.
        attn_drop_rate: dropout on the attention probabilities.
        drop_path_rate: stochastic depth, rising linearly from 0 to this over the blocks.
        attn_mask: ``None`` or ``"gmm"`` (a Gaussian mixture mask per block on the patch-token logits).
        gmm_kernels: components per head of the GMM mask.
        gmm_residual: the mask as ``1 + mixture`` with zero-initialised weights (see
            :class:`~subband.layers.GaussianMixtureMask`); ``False`` is the paper's form.
        weight_init: ``"timm"`` (truncated normal 0.02 linear weights and position embedding, class
            token N(0, 1e-6)) or ``"xavier"`` (the official GMM code: Xavier normal linear and patch
            weights, unit-normal position embedding and class token).
    """

    def __init__(
        self,
        img_size: int | tuple[int, int] = 224,
        patch_size: int = 16,
        in_chans: int = 3,
        num_classes: int = 1000,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        head_dim: int | None = None,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        class_token: bool = True,
        global_pool: str = "token",
        fc_norm: bool | None = None,
        init_values: float | None = None,
        norm_eps: float = 1e-6,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        attn_mask: str | None = None,
        gmm_kernels: int = 5,
        gmm_residual: bool = False,
        weight_init: str = "timm",
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        if global_pool not in ("token", "avg"):
            raise ValueError(f"global_pool must be 'token' or 'avg', got {global_pool!r}")
        if global_pool == "token" and not class_token:
            raise ValueError("global_pool='token' needs class_token=True")
        if attn_mask not in (None, "gmm"):
            raise ValueError(f"attn_mask must be None or 'gmm', got {attn_mask!r}")
        if weight_init not in ("timm", "xavier"):
            raise ValueError(f"weight_init must be 'timm' or 'xavier', got {weight_init!r}")
        self.img_size = _pair(img_size, "img_size")
        self.patch_size = patch_size
        self.grid_size = (math.ceil(self.img_size[0] / patch_size), math.ceil(self.img_size[1] / patch_size))
        self.num_classes = num_classes
        self.num_features = self.embed_dim = embed_dim
        self.num_prefix_tokens = 1 if class_token else 0
        self.global_pool = global_pool
        self.weight_init = weight_init
        use_fc_norm = global_pool == "avg" if fc_norm is None else fc_norm
        norm_layer = partial(nn.LayerNorm, eps=norm_eps)

        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
        self.cls_token = nn.Parameter(torch.empty(1, 1, embed_dim)) if class_token else None
        n_pos = self.grid_size[0] * self.grid_size[1] + self.num_prefix_tokens
        self.pos_embed = nn.Parameter(torch.empty(1, n_pos, embed_dim))
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
                init_values=init_values,
                head_dim=head_dim,
                norm_layer=norm_layer,
            )
            for i in range(depth)
        )
        self.attn_masks = (
            nn.ModuleList(GaussianMixtureMask(num_heads, gmm_kernels, residual=gmm_residual) for _ in range(depth))
            if attn_mask == "gmm"
            else None
        )
        self.norm = nn.Identity() if use_fc_norm else norm_layer(embed_dim)
        self.fc_norm = norm_layer(embed_dim) if use_fc_norm else nn.Identity()
        self.head: nn.Module = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self.feature_info = FeatureInfo(
            dict(num_chs=embed_dim, reduction=patch_size, module=f"blocks.{i}") for i in range(depth)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """timm's ViT initialisation, or the official GMM code's (``weight_init="xavier"``)."""
        for m in self.modules():
            if m is not self and hasattr(m, "reset_parameters"):
                m.reset_parameters()
        xavier = self.weight_init == "xavier"
        if xavier:
            nn.init.normal_(self.pos_embed, std=1.0)
        else:
            nn.init.trunc_normal_(self.pos_embed, std=0.02)
        if self.cls_token is not None:
            nn.init.normal_(self.cls_token, std=1.0 if xavier else 1e-6)
        for m in self.modules():
            if isinstance(m, nn.Linear) or (xavier and isinstance(m, nn.Conv2d)):
                if xavier:
                    nn.init.xavier_normal_(m.weight)
                else:
                    nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def _embed(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        x = self.patch_embed(x)  # (B, C, h, w)
        size = (x.shape[-2], x.shape[-1])
        x = x.flatten(2).transpose(1, 2)  # (B, C, h, w) -> (B, hw, C)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1)  # (B, 1 + hw, C)
        x = x + resample_pos_embed(self.pos_embed, self.grid_size, size, self.num_prefix_tokens)
        return self.pos_drop(x), size

    def _logit_scale(self, i: int, size: tuple[int, int]) -> torch.Tensor | None:
        if self.attn_masks is None:
            return None
        return self.attn_masks[i](size, self.num_prefix_tokens)  # (heads, P + hw, P + hw)

    def _to_map(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        b, _, c = x.shape
        return x[:, self.num_prefix_tokens :].transpose(1, 2).reshape(b, c, *size)  # (B, P+hw, C) -> (B, C, h, w)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x, size = self._embed(x)
        for i, blk in enumerate(self.blocks):
            x = blk(x, logit_scale=self._logit_scale(i, size))
        return self.norm(x)  # (B, P + hw, C)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x[:, 0] if self.global_pool == "token" else x[:, self.num_prefix_tokens :].mean(1)
        x = self.fc_norm(x)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_intermediates(self, x: torch.Tensor, indices: Sequence[int]) -> list[torch.Tensor]:
        """The patch tokens after the blocks in ``indices``, through the final norm, as ``(B, C, h, w)`` maps."""
        x, size = self._embed(x)
        out = []
        for i, blk in enumerate(self.blocks[: max(indices) + 1]):
            x = blk(x, logit_scale=self._logit_scale(i, size))
            if i in indices:
                out.append(self._to_map(self.norm(x), size))
        return out

    def prune_intermediate_layers(self, indices: Sequence[int]) -> None:
        """Drop the blocks (and their masks) after the last of ``indices``, the pooling norm and the head."""
        keep = max(indices) + 1
        self.blocks = self.blocks[:keep]
        if self.attn_masks is not None:
            self.attn_masks = self.attn_masks[:keep]
        self.fc_norm = nn.Identity()
        self.head = nn.Identity()

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier with a fresh one for ``num_classes`` (0: none)."""
        self.num_classes = num_classes
        self.head = linear_head(self.num_features, num_classes)


def convert_gmm_official_state_dict(state: dict[str, torch.Tensor], patch_size: int = 4) -> dict[str, torch.Tensor]:
    """A state dict of the official GMM ``ViT`` (``models/vit.py``, ``is_GMM=True``) with this module's
    names: the patch ``Linear`` over ``(p1 p2 c)``-flattened patches becomes the equivalent conv, the
    fixed distance map (``mask`` and every ``fn.mask.mask``) is dropped (it is computed here)."""
    rules = [
        (r"^pos_embedding$", "pos_embed"),
        (r"^transformer\.layers\.(\d+)\.0\.norm\.", r"blocks.\1.norm1."),
        (r"^transformer\.layers\.(\d+)\.0\.fn\.to_qkv\.", r"blocks.\1.attn.qkv."),
        (r"^transformer\.layers\.(\d+)\.0\.fn\.to_out\.0\.", r"blocks.\1.attn.proj."),
        (r"^transformer\.layers\.(\d+)\.0\.fn\.mask\.", r"attn_masks.\1."),
        (r"^transformer\.layers\.(\d+)\.1\.norm\.", r"blocks.\1.norm2."),
        (r"^transformer\.layers\.(\d+)\.1\.fn\.net\.0\.", r"blocks.\1.mlp.fc1."),
        (r"^transformer\.layers\.(\d+)\.1\.fn\.net\.3\.", r"blocks.\1.mlp.fc2."),
        (r"^mlp_head\.0\.", "fc_norm."),
        (r"^mlp_head\.1\.", "head."),
        (r"^to_patch_embedding\.1\.", "patch_embed.proj."),
    ]
    state = {k.removeprefix("module."): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if k != "mask" and not k.endswith("fn.mask.mask")}
    out = rename_keys(state, rules)
    w = out["patch_embed.proj.weight"]  # (D, p * p * C), inputs ordered (p1, p2, c)
    d, p = w.shape[0], patch_size
    out["patch_embed.proj.weight"] = w.view(d, p, p, -1).permute(0, 3, 1, 2).contiguous()  # -> (D, C, p, p)
    for k in [k for k in out if k.startswith("attn_masks.")]:
        out[k] = out[k].flatten(1)  # (K, heads, 1, 1) -> (K, heads)
    return out


# --- registered variants -------------------------------------------------------------------------

_VIT_TITLE = "An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale"
_PATCH_TITLE = "Scaling Laws in Patchification: An Image Is Worth 50,176 Tokens And More"
_GMM_TITLE = "Toward a Deeper Understanding: RetNet Viewed through Convolution"
_DEIT = (
    "DeiT paper Table 1 ({}): {}M params, {} GFLOPs, 224x224. gflops here: multiply-accumulates counted by "
    "torch.utils.flop_counter at 224, the two attention products included"
)


def _timm_paper(name: str, params: int, gmacs: float, deit: tuple[str, str, str]) -> Paper:
    return Paper(
        title=_VIT_TITLE,
        arxiv="2010.11929",
        params=params,
        gflops=gmacs,
        input_size=(3, 224, 224),
        source=f"timm 1.0 {name} (built and counted); widths of the ViT and DeiT papers",
        notes=_DEIT.format(*deit),
    )


def _vit(kwargs: dict, **cfg) -> ViT:
    return ViT(**{**cfg, **kwargs})


@register_model(_timm_paper("vit_tiny_patch16_224", 5_717_416, 1.254, ("DeiT-Ti", "5", "1.3")))
def vit_tiny_patch16_224(**kwargs) -> ViT:
    """ViT-Ti/16 (DeiT-Ti): width 192, depth 12, 3 heads, 224 x 224."""
    return _vit(kwargs, patch_size=16, embed_dim=192, depth=12, num_heads=3)


@register_model(_timm_paper("vit_small_patch16_224", 22_050_664, 4.599, ("DeiT-S", "22", "4.6")))
def vit_small_patch16_224(**kwargs) -> ViT:
    """ViT-S/16 (DeiT-S): width 384, depth 12, 6 heads, 224 x 224."""
    return _vit(kwargs, patch_size=16, embed_dim=384, depth=12, num_heads=6)


@register_model(_timm_paper("vit_base_patch16_224", 86_567_656, 17.564, ("DeiT-B", "86", "17.6")))
def vit_base_patch16_224(**kwargs) -> ViT:
    """ViT-B/16 (DeiT-B): width 768, depth 12, 12 heads, 224 x 224."""
    return _vit(kwargs, patch_size=16, embed_dim=768, depth=12, num_heads=12)


def _patch_paper(patch: int, params: int) -> Paper:
    tokens = (64 // patch) ** 2
    return Paper(
        title=_PATCH_TITLE,
        arxiv="2502.03738",
        params=params,
        input_size=(3, 64, 64),
        source=(
            f"paper Figure 1(a): DeiT-B on 64x64 inputs, patch sizes 16 to 1; this point: patch {patch}, "
            f"{tokens} patch tokens. Parameter count computed from the configuration (DeiT-B widths, "
            f"1000 classes); the paper's tables were not checked"
        ),
    )


@register_model(_patch_paper(2, 86_622_952))
def vit_base_patch2_64(**kwargs) -> ViT:
    """DeiT-B widths, patch 2 on 64 x 64 (1,024 patch tokens)."""
    return _vit(kwargs, img_size=64, patch_size=2, embed_dim=768, depth=12, num_heads=12)


@register_model(_patch_paper(1, 88_975_336))
def vit_base_patch1_64(**kwargs) -> ViT:
    """DeiT-B widths, patch 1 on 64 x 64: pixel tokens (4,096 patch tokens)."""
    return _vit(kwargs, img_size=64, patch_size=1, embed_dim=768, depth=12, num_heads=12)


@register_model(
    Paper(
        title=_GMM_TITLE,
        arxiv="2309.05375",
        params=2_714_588,
        gflops=0.186,
        input_size=(3, 32, 32),
        source=(
            "CatworldLee/Gaussian-Mixture-Mask-Attention models/vit.py, create_model.py '--model vit --is_GMM' "
            "(built and counted: 2,714,588); README: 2.7M params, 170.9M MACs, CIFAR-100 77.81%"
        ),
        notes=(
            "the official count includes its fixed 64x64 distance map (4,096, a frozen nn.Parameter), computed "
            "here instead: 2,710,492 here = the official trainable parameters. gflops: fvcore's count of the "
            "official model (0.186 GMACs, attention products included); the README's 170.9M leaves them out"
        ),
    )
)
def gmm_vit_cifar(**kwargs) -> ViT:
    """GMM-ViT for CIFAR-100 (32 x 32): patch 4, width 192, depth 9, 12 heads of 16, MLP ratio 2, 5 kernels."""
    cfg = dict(
        img_size=32,
        patch_size=4,
        num_classes=100,
        embed_dim=192,
        depth=9,
        num_heads=12,
        head_dim=16,
        mlp_ratio=2.0,
        qkv_bias=False,
        class_token=False,
        global_pool="avg",
        norm_eps=1e-5,
        attn_mask="gmm",
        gmm_kernels=5,
        weight_init="xavier",
    )
    return _vit(kwargs, **cfg)
