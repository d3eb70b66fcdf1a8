"""CrossViT: "CrossViT: Cross-Attention Multi-Scale Vision Transformer for Image Classification"
(Chen, Fan, Panda; ICCV 2021; arXiv 2103.14899).

A two-branch ViT. The image is cut into small patches (12x12, S-branch, narrow) and large patches
(16x16, L-branch, wide); each branch has its own class token, position embedding and pre-norm
transformer blocks (:class:`~subband.layers.TransformerBlock`). ``K`` multi-scale encoders
(:class:`MultiScaleBlock`) each run ``N`` S-branch and ``M`` L-branch blocks, then fuse the branches
by **cross-attention of the class tokens** (:class:`CrossAttentionBlock`): branch ``i``'s class token
is projected to the other branch's width (``f``: LayerNorm, GELU, Linear), is the single query of an
attention over itself and the other branch's patch tokens (:class:`~subband.layers.CrossAttention`,
``wq``/``wk``/``wv``/``proj``; cost linear in the number of tokens), is added back (residual) and
projected to its own width again (``g``: LayerNorm, GELU, Linear). Patch tokens never cross branches
directly; only the class tokens carry information between them. The classifier averages the logits of
one linear head per branch, each on its branch's normalised class token.

The branches see fixed image sizes: the input is resized (bicubic) to ``img_size * img_scale[i]``
for branch ``i`` unless it already has that size; the 240 variants run the S-branch at 240 (20x20
tokens) and the L-branch at 224 (14x14 tokens), so an input of 240 is resized for the L-branch and an
input of 224 for the S-branch (``crop_scale=True`` centre-crops instead where the input is large
enough). The dagger variants replace each branch's patchify convolution by three convolutions with
ReLUs (7x7 stride 4, then 3x3 stride 3 and 3x3 stride 1 for patch 12, or two 3x3 stride 2 for 16).

Checked against the official code (IBM/CrossViT ``models/crossvit.py``: ``PatchEmbed``,
``CrossAttention``, ``CrossAttentionBlock``, ``MultiScaleBlock``, ``VisionTransformer`` and the
``crossvit_*_224`` builders) and timm's port (``timm/models/crossvit.py``, 1.0.31, which renames the
models ``*_240`` after their real input size): widths, depths ``[[1, M, 0]] * 3``, heads, MLP ratios,
``qkv`` biases, LayerNorm eps 1e-6 everywhere (projections and fusion included), the fusion's
key/value set (the projected class token plus the other branch's patch tokens), its scale
``head_dim ** -0.5``, no MLP after the fusion, the stochastic-depth schedule (the fusion takes the
last rate of its encoder) and the initialisation (truncated normal 0.02 for linear weights, class
tokens and position embeddings; zero linear biases; convolutions at PyTorch's defaults). Parameter
names are timm's (``pos_embed_0``, ``blocks.0.fusion.1.attn.wq``, ...), so a timm state dict loads
unchanged; :func:`convert_official_state_dict` maps an official checkpoint (``pos_embed.0`` ->
``pos_embed_0``). Built and counted, the official and timm models have exactly the parameters
registered here (the paper's Table 2 rounds them: within 0.6%, except CrossViT-Ti's 6.9M, 1.6% below
the released configuration's 7,014,800); the counted multiply-accumulates round to Table 2's FLOPs.
Given the same weights, the nine variants' logits equal timm's to 8.8e-7 and the official model's to
7.8e-7 at inputs 240 and 224 (the official code checked outside the test suite, not being a package;
timm in ``tests/models/test_crossvit.py``).

Differs from timm: ``forward_features`` returns the pooled representation (the concatenated,
normalised class tokens; with ``global_pool="avg"`` the branches' mean patch tokens) as a
``(B, num_features, 1, 1)`` map, and ``forward_tokens`` what timm's ``forward_features`` returns (the
list of each branch's normalised tokens); ``forward_head`` takes either. ``features_only`` works (timm
refuses it): the taps are each branch's patch tokens after the last encoder and the final norm, as
maps, then the pooled representation (see ``feature_info``). Any number of branches works (timm's
forward is written for two).

Shape:
    ``forward``: ``(B, in_chans, H, W) -> (B, num_classes)``, any ``H, W`` (resized per branch).
    ``forward_tokens``: ``[(B, 1 + h_i * w_i, embed_dim[i])]``, class token first, ``h_i = w_i =
    img_size * img_scale[i] / patch_size[i]`` (20 and 14 for the 240 variants). ``forward_features``:
    ``(B, sum(embed_dim), 1, 1)``. ``features_only``: ``(B, embed_dim[i], h_i, w_i)`` per branch,
    then ``(B, sum(embed_dim), 1, 1)``; the maps have these sizes whatever the input size, and
    ``feature_info`` gives their reductions relative to ``img_size``, exactly (12, ``Fraction(120, 7)``
    = 240/14, 240).

Example:
    >>> model = create_model("crossvit_tiny_240")
    >>> model(torch.randn(1, 3, 240, 240)).shape
    torch.Size([1, 1000])
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import CrossAttention, DropPath, TransformerBlock
from ._features import FeatureInfo, rename_keys
from ._registry import Paper, register_model

__all__ = [
    "CrossViT",
    "MultiScaleBlock",
    "CrossAttentionBlock",
    "PatchEmbed",
    "scale_image",
    "convert_official_state_dict",
]

_norm = partial(nn.LayerNorm, eps=1e-6)


def scale_image(x: torch.Tensor, size: tuple[int, int], crop: bool = False) -> torch.Tensor:
    """``x`` at ``size``: unchanged if it has that size; else centre-cropped (``crop`` and the input
    at least as large) or resized (bicubic, ``align_corners=False``). ``(B, C, H, W) -> (B, C, *size)``."""
    h, w = x.shape[-2:]
    if (h, w) == tuple(size):
        return x
    if crop and size[0] <= h and size[1] <= w:
        top, left = int(round((h - size[0]) / 2.0)), int(round((w - size[1]) / 2.0))
        return x[:, :, top : top + size[0], left : left + size[1]]
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False)


class PatchEmbed(nn.Module):
    """Image to patch tokens: one ``patch_size`` convolution, or (``multi_conv``, the dagger
    variants) three convolutions with ReLUs between them, for patch sizes 12 and 16.

    Shape: ``(B, in_chans, H, W) -> (B, H/p * W/p, embed_dim)``.
    """

    def __init__(self, patch_size: int = 16, in_chans: int = 3, embed_dim: int = 768, multi_conv: bool = False):
        super().__init__()
        self.patch_size = patch_size
        if not multi_conv:
            self.proj: nn.Module = nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size)
            return
        if patch_size not in (12, 16):
            raise ValueError(f"multi_conv patch embedding exists for patch sizes 12 and 16, got {patch_size}")
        s2, p2, s3 = (3, 0, 1) if patch_size == 12 else (2, 1, 2)  # strides 4*3*1 or 4*2*2
        self.proj = nn.Sequential(
            nn.Conv2d(in_chans, embed_dim // 4, 7, stride=4, padding=3),
            nn.ReLU(inplace=True),
            nn.Conv2d(embed_dim // 4, embed_dim // 2, 3, stride=s2, padding=p2),
            nn.ReLU(inplace=True),
            nn.Conv2d(embed_dim // 2, embed_dim, 3, stride=s3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # (B, C, h, w) -> (B, h*w, C)

    def extra_repr(self) -> str:
        return f"patch_size={self.patch_size}"


class CrossAttentionBlock(nn.Module):
    """Fusion: the first token of ``x`` queries all of ``x`` (itself and the other branch's patch
    tokens), pre-norm, residual; no MLP (the official configuration).

    Shape: ``(B, 1 + N, dim) -> (B, 1, dim)``.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        qkv_bias: bool = True,
        proj_drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm1 = _norm(dim)
        self.attn = CrossAttention(dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=proj_drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm1(x)
        return x[:, :1] + self.drop_path(self.attn(y[:, :1], y))  # (B, 1, C)


def _projection(dim_in: int, dim_out: int) -> nn.Sequential:
    """``f`` / ``g`` of the paper: LayerNorm, GELU, Linear (indices 0, 1, 2 as in timm)."""
    return nn.Sequential(_norm(dim_in), nn.GELU(), nn.Linear(dim_in, dim_out))


class MultiScaleBlock(nn.Module):
    """One multi-scale transformer encoder: ``depth[i]`` transformer blocks per branch, then each
    branch's class token fused with the next branch's patch tokens (branch ``i`` with ``(i + 1) % n``).

    Args:
        dims, num_heads, mlp_ratio: per branch (``mlp_ratio`` may hold a trailing entry for the
            fusion, unused: the fusion has no MLP).
        depth: transformer blocks per branch, then the fusion depth (0: one fusion block, named
            ``fusion.<i>``; ``d > 0``: ``d`` stacked blocks, ``fusion.<i>.<j>``, as the official code).
        drop_path: stochastic-depth rates of this encoder's blocks (block ``j`` of every branch takes
            ``drop_path[j]``, the fusion ``drop_path[-1]``; default all 0).

    ``forward(xs, run=None, fuse=None)``: ``xs`` holds each branch's ``(B, 1 + N_i, C_i)`` tokens;
    ``run`` / ``fuse`` restrict the branches whose blocks and fusion are computed (the others come
    back as ``None``, or unfused; used by ``features_only``).
    """

    def __init__(
        self,
        dims: Sequence[int],
        depth: Sequence[int],
        num_heads: Sequence[int],
        mlp_ratio: Sequence[float],
        qkv_bias: bool = True,
        proj_drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        n = self.num_branches = len(dims)
        if len(depth) != n + 1 or min(depth[:n]) < 1 or depth[n] < 0:
            raise ValueError(f"depth must hold {n} positive block counts and a fusion depth >= 0, got {tuple(depth)}")
        drop_path = [0.0] * (max(depth[:n]) + depth[n]) if drop_path is None else drop_path
        if len(drop_path) < max(depth[:n]) + depth[n]:
            raise ValueError(f"need {max(depth[:n]) + depth[n]} drop-path rates, got {len(drop_path)}")
        kw = dict(qkv_bias=qkv_bias, proj_drop=proj_drop, attn_drop=attn_drop, drop_path=drop_path[-1])
        self.blocks = nn.ModuleList(
            nn.Sequential(
                *(
                    TransformerBlock(
                        dims[i],
                        num_heads[i],
                        mlp_ratio[i],
                        qkv_bias=qkv_bias,
                        drop=proj_drop,
                        attn_drop=attn_drop,
                        drop_path=drop_path[j],
                        norm_layer=_norm,
                    )
                    for j in range(depth[i])
                )
            )
            for i in range(n)
        )
        self.projs = nn.ModuleList(_projection(dims[i], dims[(i + 1) % n]) for i in range(n))
        self.fusion = nn.ModuleList(
            CrossAttentionBlock(dims[(i + 1) % n], num_heads[(i + 1) % n], **kw)  # type: ignore[arg-type]
            if depth[n] == 0
            else nn.Sequential(
                *(CrossAttentionBlock(dims[(i + 1) % n], num_heads[(i + 1) % n], **kw) for _ in range(depth[n]))  # type: ignore[arg-type]
            )
            for i in range(n)
        )
        self.revert_projs = nn.ModuleList(_projection(dims[(i + 1) % n], dims[i]) for i in range(n))

    def forward(
        self,
        xs: list[torch.Tensor | None],
        run: Sequence[int] | None = None,
        fuse: Sequence[int] | None = None,
    ) -> list[torch.Tensor | None]:
        n = self.num_branches
        run = range(n) if run is None else run
        fuse = range(n) if fuse is None else fuse
        outs: list[torch.Tensor | None] = [self.blocks[i](x) if i in run else None for i, x in enumerate(xs)]
        fused = list(outs)
        for i in fuse:
            own, other = outs[i], outs[(i + 1) % n]
            assert own is not None and other is not None  # guaranteed by the plan
            tokens = torch.cat((self.projs[i](own[:, :1]), other[:, 1:]), dim=1)  # (B, 1 + N_j, C_j)
            cls = self.revert_projs[i](self.fusion[i](tokens)[:, :1])  # (B, 1, C_i)
            fused[i] = torch.cat((cls, own[:, 1:]), dim=1)  # (B, 1 + N_i, C_i)
        return fused


class CrossViT(nn.Module):
    """The dual-branch (in general multi-branch) CrossViT classifier.

    Args:
        img_size: the input size the model is built for (int or ``(H, W)``).
        img_scale: per branch, the scale of ``img_size`` at which the branch sees the image.
        patch_size: per branch.
        in_chans: input channels.
        num_classes: classes (0: no head; ``forward`` returns the pooled features).
        embed_dim, num_heads: per branch.
        depth: one entry per multi-scale encoder: blocks per branch, then the fusion depth.
        mlp_ratio: per branch (a trailing fusion entry is accepted and unused).
        multi_conv: the dagger patch embedding (three convolutions) instead of one convolution.
        crop_scale: centre-crop instead of resizing where the input is larger than a branch's size.
        qkv_bias: biases on ``qkv`` and on the fusion's ``wq``, ``wk``, ``wv``.
        drop_rate: dropout before the heads.
        pos_drop_rate: dropout after adding the position embeddings.
        proj_drop_rate: dropout after the attention projections and in the MLPs.
        attn_drop_rate: dropout on the attention probabilities.
        drop_path_rate: stochastic depth, rising linearly over the encoders' blocks (timm's schedule).
        global_pool: ``"token"`` (class tokens) or ``"avg"`` (mean patch tokens) per branch.
    """

    def __init__(
        self,
        img_size: int | tuple[int, int] = 240,
        img_scale: Sequence[float] = (1.0, 224 / 240),
        patch_size: Sequence[int] = (12, 16),
        in_chans: int = 3,
        num_classes: int = 1000,
        embed_dim: Sequence[int] = (192, 384),
        depth: Sequence[Sequence[int]] = ((1, 4, 0), (1, 4, 0), (1, 4, 0)),
        num_heads: Sequence[int] = (6, 6),
        mlp_ratio: Sequence[float] = (4.0, 4.0, 1.0),
        multi_conv: bool = False,
        crop_scale: bool = False,
        qkv_bias: bool = True,
        drop_rate: float = 0.0,
        pos_drop_rate: float = 0.0,
        proj_drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        global_pool: str = "token",
    ) -> None:
        super().__init__()
        n = self.num_branches = len(patch_size)
        for arg, val in (("img_scale", img_scale), ("embed_dim", embed_dim), ("num_heads", num_heads)):
            if len(val) != n:
                raise ValueError(f"{arg} needs one entry per branch ({n}), got {tuple(val)}")
        if len(mlp_ratio) < n:
            raise ValueError(f"mlp_ratio needs one entry per branch ({n}), got {tuple(mlp_ratio)}")
        if global_pool not in ("token", "avg"):
            raise ValueError(f"global_pool must be 'token' or 'avg', got {global_pool!r}")
        if not depth:
            raise ValueError("depth needs at least one multi-scale encoder")
        self.img_size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        self.img_size_scaled = [tuple(int(s * scale) for s in self.img_size) for scale in img_scale]
        self.grid_size = []
        for size, p in zip(self.img_size_scaled, patch_size):
            if size[0] % p or size[1] % p:
                raise ValueError(f"branch image size {size} is not a multiple of its patch size {p}")
            self.grid_size.append((size[0] // p, size[1] // p))
        self.crop_scale = crop_scale
        self.global_pool = global_pool
        self.num_classes = num_classes
        self.embed_dim = tuple(embed_dim)
        self.num_features = sum(embed_dim)
        self._kept: tuple[int, ...] | None = None  # taps kept by prune_intermediate_layers

        self.patch_embed = nn.ModuleList(PatchEmbed(p, in_chans, d, multi_conv) for p, d in zip(patch_size, embed_dim))
        for i, ((h, w), d) in enumerate(zip(self.grid_size, embed_dim)):
            setattr(self, f"pos_embed_{i}", nn.Parameter(torch.zeros(1, 1 + h * w, d)))
            setattr(self, f"cls_token_{i}", nn.Parameter(torch.zeros(1, 1, d)))
        self.pos_drop = nn.Dropout(pos_drop_rate)

        total = sum(sum(cfg[-2:]) for cfg in depth)  # timm's count: last branch's blocks + fusion, per encoder
        rates = torch.linspace(0, drop_path_rate, total, device="cpu").tolist()
        self.blocks = nn.ModuleList()
        start = 0
        for cfg in depth:
            span = max(cfg[:-1]) + cfg[-1]
            self.blocks.append(
                MultiScaleBlock(
                    embed_dim,
                    cfg,
                    num_heads,
                    mlp_ratio,
                    qkv_bias,
                    proj_drop_rate,
                    attn_drop_rate,
                    rates[start : start + span],
                )
            )
            start += span
        self.norm = nn.ModuleList(_norm(d) for d in embed_dim)
        self.head_drop = nn.Dropout(drop_rate)
        self.head = self._heads(num_classes)

        reductions = [self._reduction(h) for h, _ in self.grid_size] + [self.img_size[0]]
        self.feature_info = FeatureInfo(
            [dict(num_chs=d, reduction=r, module=f"norm.{i}") for i, (d, r) in enumerate(zip(embed_dim, reductions))]
            + [dict(num_chs=self.num_features, reduction=reductions[-1], module="norm")]
        )
        self.reset_parameters()

    def _reduction(self, grid: int) -> int | Fraction:
        """``img_size / grid`` exactly: an int, or a Fraction (240 / 14 = 120/7 for the L-branch)."""
        r = Fraction(self.img_size[0], grid)
        return int(r) if r.denominator == 1 else r

    def _heads(self, num_classes: int) -> nn.ModuleList:
        return nn.ModuleList(nn.Linear(d, num_classes) if num_classes > 0 else nn.Identity() for d in self.embed_dim)

    def reset_parameters(self) -> None:
        """timm's initialisation: truncated normal (0.02) class tokens, position embeddings and linear
        weights, zero linear biases, unit LayerNorms; convolutions at PyTorch's defaults."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Conv2d):
                m.reset_parameters()
        for p in self.parameters(recurse=False):
            nn.init.trunc_normal_(p, std=0.02)  # pos_embed_i, cls_token_i

    # the forward pass, restricted to what the requested outputs need

    def _plan(self, indices: Sequence[int] | None) -> tuple[set[int], list[tuple[set[int], set[int]]], set[int]]:
        """For the taps ``indices`` (None: everything, as timm computes it): the branches to embed, per
        encoder the branches whose blocks run and whose class tokens are fused, and the branches
        whose final norm is needed."""
        n, every = self.num_branches, set(range(self.num_branches))
        if indices is None:
            return every, [(every, every) for _ in self.blocks], every
        need_patches = {i for i in indices if i < n}  # patch tokens after the last encoder
        need_cls: set[int] = set()
        if n in indices:  # the pooled representation
            need_cls, need_patches = (every, need_patches) if self.global_pool == "token" else (set(), every)
        norms = need_patches | need_cls
        plan = []
        for _ in self.blocks:  # walking back from the last encoder
            fuse = set(need_cls)
            run = need_patches | need_cls | {(i + 1) % n for i in fuse}
            plan.append((run, fuse))
            need_patches = need_cls = run  # a block needs its branch's class and patch tokens
        return need_patches, plan[::-1], norms

    def _run(self, x: torch.Tensor, indices: Sequence[int] | None) -> list[torch.Tensor | None]:
        if self._kept is not None and (indices is None or not set(indices) <= set(self._kept)):
            asked = "the full model" if indices is None else f"taps {tuple(indices)}"
            raise ValueError(f"layers for {asked} were pruned (kept only taps {self._kept})")
        embed, plan, norms = self._plan(indices)
        b = x.shape[0]
        xs: list[torch.Tensor | None] = []
        for i, patch_embed in enumerate(self.patch_embed):
            if i not in embed:
                xs.append(None)
                continue
            t = patch_embed(scale_image(x, self.img_size_scaled[i], self.crop_scale))  # (B, N_i, C_i)
            cls = getattr(self, f"cls_token_{i}").expand(b, -1, -1)
            xs.append(self.pos_drop(torch.cat((cls, t), dim=1) + getattr(self, f"pos_embed_{i}")))  # (B, 1+N_i, C_i)
        for blk, (run, fuse) in zip(self.blocks, plan):
            xs = blk(xs, sorted(run), sorted(fuse))
        return [self.norm[i](t) if i in norms and t is not None else None for i, t in enumerate(xs)]

    def pool(self, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        """Each branch's class token (or mean patch token), concatenated: ``(B, num_features, 1, 1)``."""
        parts = [t[:, 0] if self.global_pool == "token" else t[:, 1:].mean(dim=1) for t in xs]
        return torch.cat(parts, dim=1)[:, :, None, None]

    def _to_map(self, x: torch.Tensor, i: int) -> torch.Tensor:
        b, _, c = x.shape
        return x[:, 1:].transpose(1, 2).reshape(b, c, *self.grid_size[i])  # (B, 1+hw, C) -> (B, C, h, w)

    def forward_tokens(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Each branch's tokens after the last encoder and the final norm (timm's ``forward_features``)."""
        return self._run(x, None)  # type: ignore[return-value]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled representation as a ``(B, num_features, 1, 1)`` map."""
        return self.pool(self.forward_tokens(x))

    def forward_head(self, x: torch.Tensor | Sequence[torch.Tensor], pre_logits: bool = False) -> torch.Tensor:
        """Logits: the mean of the branch heads. ``x``: ``forward_features``' output, or
        ``forward_tokens``' list."""
        if not isinstance(x, torch.Tensor):
            x = self.pool(x)
        x = self.head_drop(x.flatten(1))  # (B, num_features, 1, 1) -> (B, num_features)
        if pre_logits or self.num_classes == 0:
            return x
        parts = x.split(self.embed_dim, dim=1)
        return torch.stack([head(p) for head, p in zip(self.head, parts)]).mean(dim=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_intermediates(self, x: torch.Tensor, indices: Sequence[int]) -> list[torch.Tensor]:
        """The taps in ``indices`` (see ``feature_info``), computing only what they need."""
        xs = self._run(x, indices)
        return [self.pool(xs) if i == self.num_branches else self._to_map(xs[i], i) for i in indices]  # type: ignore[arg-type]

    def prune_intermediate_layers(self, indices: Sequence[int]) -> None:
        """Drop the head and every module the taps ``indices`` do not need: a patch-token tap of one
        branch needs neither the other branch's last blocks nor the last fusions."""
        embed, plan, norms = self._plan(indices)
        for i in range(self.num_branches):
            if i not in embed:
                self.patch_embed[i] = nn.Identity()
                setattr(self, f"pos_embed_{i}", None)
                setattr(self, f"cls_token_{i}", None)
            if i not in norms:
                self.norm[i] = nn.Identity()
        for blk, (run, fuse) in zip(self.blocks, plan):
            for i in range(self.num_branches):
                if i not in run:
                    blk.blocks[i] = nn.Identity()
                if i not in fuse:
                    blk.projs[i] = blk.fusion[i] = blk.revert_projs[i] = nn.Identity()
        self.head = self._heads(0)
        self._kept = tuple(indices)

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Fresh heads for ``num_classes`` (0: none), optionally a new ``global_pool``."""
        if global_pool is not None:
            if global_pool not in ("token", "avg"):
                raise ValueError(f"global_pool must be 'token' or 'avg', got {global_pool!r}")
            self.global_pool = global_pool
        self.num_classes = num_classes
        self.head = self._heads(num_classes)
        for head in self.head:
            if isinstance(head, nn.Linear):
                nn.init.trunc_normal_(head.weight, std=0.02)
                nn.init.zeros_(head.bias)


def convert_official_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict of the official ``VisionTransformer`` (IBM/CrossViT; ``pos_embed.0``,
    ``cls_token.0``, possibly under ``model`` / ``module.``) with subband's (= timm's) names."""
    state = state.get("model", state)  # type: ignore[assignment]
    rules = [(r"^(pos_embed|cls_token)\.(\d+)$", r"\1_\2")]
    return rename_keys({k.removeprefix("module."): v for k, v in state.items()}, rules)


_TITLE = "CrossViT: Cross-Attention Multi-Scale Vision Transformer for Image Classification"


def _paper(official: str, timm_name: str, params: int, gmacs: float, table2: str) -> Paper:
    return Paper(
        title=_TITLE,
        arxiv="2103.14899",
        params=params,
        gflops=gmacs,
        input_size=(3, 240, 240),
        source=(
            f"IBM/CrossViT models/crossvit.py {official} and timm 1.0.31 {timm_name}, built and counted "
            f"({params:,} parameters in both); paper Table 2: {table2}"
        ),
        notes=(
            "params: the official configuration counted exactly (the paper's Table 2 rounds it); gflops: "
            "multiply-accumulates counted by torch.utils.flop_counter at 240x240 (S-branch at 240, "
            "L-branch at 224, the resize not counted), which round to the paper's figure"
        ),
    )


def _variant(embed_dim: tuple[int, int], heads: int, blocks: int, ratio: float, dagger: bool, kw: dict) -> CrossViT:
    cfg = dict(
        img_size=240,
        img_scale=(1.0, 224 / 240),
        patch_size=(12, 16),
        embed_dim=embed_dim,
        depth=((1, blocks, 0),) * 3,
        num_heads=(heads, heads),
        mlp_ratio=(ratio, ratio, 1.0),
        multi_conv=dagger,
    )
    return CrossViT(**{**cfg, **kw})


@register_model(_paper("crossvit_tiny_224", "crossvit_tiny_240", 7_014_800, 1.563, "6.9M / 1.6G / 73.4%"))
def crossvit_tiny_240(**kwargs) -> CrossViT:
    """CrossViT-Ti: widths 96 / 192, 3 heads, K=3 encoders of N=1 / M=4 blocks, MLP ratio 4."""
    return _variant((96, 192), 3, 4, 4.0, False, kwargs)


@register_model(_paper("crossvit_small_224", "crossvit_small_240", 26_856_272, 5.616, "26.7M / 5.6G / 81.0%"))
def crossvit_small_240(**kwargs) -> CrossViT:
    """CrossViT-S: widths 192 / 384, 6 heads, K=3 encoders of N=1 / M=4 blocks, MLP ratio 4."""
    return _variant((192, 384), 6, 4, 4.0, False, kwargs)


@register_model(_paper("crossvit_base_224", "crossvit_base_240", 105_025_232, 21.191, "104.7M / 21.2G / 82.2%"))
def crossvit_base_240(**kwargs) -> CrossViT:
    """CrossViT-B: widths 384 / 768, 12 heads, K=3 encoders of N=1 / M=4 blocks, MLP ratio 4."""
    return _variant((384, 768), 12, 4, 4.0, False, kwargs)


@register_model(_paper("crossvit_9_224", "crossvit_9_240", 8_553_296, 1.841, "8.6M / 1.8G / 73.9%"))
def crossvit_9_240(**kwargs) -> CrossViT:
    """CrossViT-9: widths 128 / 256, 4 heads, K=3 encoders of N=1 / M=3 blocks, MLP ratio 3."""
    return _variant((128, 256), 4, 3, 3.0, False, kwargs)


@register_model(_paper("crossvit_15_224", "crossvit_15_240", 27_528_464, 5.791, "27.4M / 5.8G / 81.5%"))
def crossvit_15_240(**kwargs) -> CrossViT:
    """CrossViT-15: widths 192 / 384, 6 heads, K=3 encoders of N=1 / M=5 blocks, MLP ratio 3."""
    return _variant((192, 384), 6, 5, 3.0, False, kwargs)


@register_model(_paper("crossvit_18_224", "crossvit_18_240", 43_271_408, 9.031, "43.3M / 9.0G / 82.5%"))
def crossvit_18_240(**kwargs) -> CrossViT:
    """CrossViT-18: widths 224 / 448, 7 heads, K=3 encoders of N=1 / M=6 blocks, MLP ratio 3."""
    return _variant((224, 448), 7, 6, 3.0, False, kwargs)


@register_model(_paper("crossvit_9_dagger_224", "crossvit_9_dagger_240", 8_776_592, 1.979, "8.8M / 2.0G / 77.1%"))
def crossvit_9_dagger_240(**kwargs) -> CrossViT:
    """CrossViT-9 dagger: CrossViT-9 with the three-convolution patch embedding."""
    return _variant((128, 256), 4, 3, 3.0, True, kwargs)


@register_model(_paper("crossvit_15_dagger_224", "crossvit_15_dagger_240", 28_209_008, 6.112, "28.2M / 6.1G / 82.3%"))
def crossvit_15_dagger_240(**kwargs) -> CrossViT:
    """CrossViT-15 dagger: CrossViT-15 with the three-convolution patch embedding."""
    return _variant((192, 384), 6, 5, 3.0, True, kwargs)


@register_model(_paper("crossvit_18_dagger_224", "crossvit_18_dagger_240", 44_266_976, 9.473, "44.3M / 9.5G / 82.8%"))
def crossvit_18_dagger_240(**kwargs) -> CrossViT:
    """CrossViT-18 dagger: CrossViT-18 with the three-convolution patch embedding."""
    return _variant((224, 448), 7, 6, 3.0, True, kwargs)
