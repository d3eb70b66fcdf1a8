"""Modality pre-processing into 2-D maps: audio spectrograms, time series, point clouds and videos
become ``(B, C, H, W)`` embedding maps that an unchanged image ConvNet takes as input.

From "UniRepLKNet: A Universal Perception Large-Kernel ConvNet for Audio, Video, Point Cloud,
Time-Series and Image Recognition" (Ding et al., arXiv 2311.15599, Sec. "universal perception"),
whose official code (AILab-CVC/UniRepLKNet, ``Audio/``, ``Time-Series/``, ``Point/``, ``Video/``)
fixed the details checked here:

- audio: a ``T x F`` spectrogram is a one-channel image (:func:`audio_to_map`);
- time series: ``(B, L, D)`` split into ``n`` nodes, each embedded to ``(L, D')`` (circular conv
  token embedding + sinusoidal positions, as Corrformer/Autoformer) and reshaped to a one-channel
  ``H x W`` map with ``H W = L D'`` (:class:`TimeSeriesToMap`);
- point cloud: per-point features from a k-nearest-neighbour graph layer, scattered onto the
  image plane of each view (geometry-preserving projection, P2P), then a few convolutions make a
  3-channel image (:class:`PointCloudToMap`);
- video: the ``N_F`` frames laid out side by side into one image (:func:`video_to_map`).

Shape:
    audio ``(B, T, F) -> (B, 1, T, F)``; time series ``(B, L, D) -> (B n, 1, H, W)``; point cloud
    ``(B, N, 3) -> (B V, 3, S, S)``; video ``(B, N_F, C, h, w) -> (B, C, rows h, cols w)``.

Example:
    >>> video_to_map(torch.randn(2, 16, 3, 8, 8)).shape
    torch.Size([2, 3, 32, 32])
    >>> AudioToMap(target_frames=100)(torch.randn(2, 98, 128)).shape
    torch.Size([2, 1, 100, 128])
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "audio_to_map",
    "AudioToMap",
    "TimeSeriesToMap",
    "PointCloudToMap",
    "video_to_map",
    "map_to_video",
    "VideoToMap",
    "P2P_VIEWS",
]

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _near_square(n: int) -> tuple[int, int]:
    """``(rows, cols)`` with ``rows * cols == n`` and ``rows <= cols`` as close as possible."""
    rows = max(d for d in range(1, math.isqrt(n) + 1) if n % d == 0)
    return rows, n // rows


# ------------------------------------------------------------------------------------------- audio
def audio_to_map(
    spec: torch.Tensor,
    target_frames: int | None = None,
    time_axis: str = "height",
    mean: float | None = None,
    std: float | None = None,
) -> torch.Tensor:
    """A ``(B, T, F)`` spectrogram (time frames x frequency bins) as a one-channel image.

    Args:
        spec: log-mel filter-bank features, ``(B, T, F)``.
        target_frames: zero-pad (at the end) or crop the time axis to this many frames (AST's fixed
            input length); ``None`` keeps ``T``.
        time_axis: ``"height"`` gives ``(B, 1, T, F)`` as the paper writes it; ``"width"`` gives
            ``(B, 1, F, T)`` as the official audio code feeds it.
        mean, std: dataset statistics; when given, ``(x - mean) / (2 std)`` (AST's normalisation).
    """
    if time_axis not in ("height", "width"):
        raise ValueError(f"time_axis must be 'height' or 'width', got {time_axis!r}")
    if spec.ndim != 3:
        raise ValueError(f"spectrogram must be (B, T, F), got shape {tuple(spec.shape)}")
    if (mean is None) != (std is None):
        raise ValueError("give both mean and std, or neither")
    if std is not None and std <= 0:
        raise ValueError(f"std must be positive, got {std}")
    if target_frames is not None:
        if target_frames < 1:
            raise ValueError(f"target_frames must be positive, got {target_frames}")
        t = spec.shape[1]
        spec = F.pad(spec, (0, 0, 0, target_frames - t)) if t < target_frames else spec[:, :target_frames]
    if mean is not None:
        spec = (spec - mean) / (2 * std)
    x = spec.unsqueeze(1)  # (B, T, F) -> (B, 1, T, F)
    return x if time_axis == "height" else x.transpose(2, 3)  # -> (B, 1, F, T)


class AudioToMap(nn.Module):
    """:func:`audio_to_map` as a module (no parameters)."""

    def __init__(
        self,
        target_frames: int | None = None,
        time_axis: str = "height",
        mean: float | None = None,
        std: float | None = None,
    ) -> None:
        super().__init__()
        audio_to_map(torch.zeros(1, 1, 1), target_frames, time_axis, mean, std)  # validate the arguments
        self.target_frames, self.time_axis, self.mean, self.std = target_frames, time_axis, mean, std

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        return audio_to_map(spec, self.target_frames, self.time_axis, self.mean, self.std)

    def extra_repr(self) -> str:
        return f"target_frames={self.target_frames}, time_axis={self.time_axis!r}, mean={self.mean}, std={self.std}"


# ------------------------------------------------------------------------------------- time series
def _sinusoid(length: int, dim: int) -> torch.Tensor:
    """``(length, dim)`` fixed positional encoding: sin on even, cos on odd channels."""
    pos = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return pe


class TimeSeriesToMap(nn.Module):
    """A multivariate series as one-channel embedding maps, one per node.

    The ``D`` variables are split into ``num_nodes`` groups of ``D / num_nodes`` (the official
    forecasting code's nodes, e.g. weather stations); each node's ``(L, D / n)`` series is
    (optionally) normalised over time, embedded to ``(L, embed_dim)`` by a circular 3-tap
    convolution plus sinusoidal positions, and reshaped to ``map_size``.

    Args:
        in_features: ``D``, variables per time step.
        seq_len: ``L``, time steps.
        num_nodes: ``n``; must divide ``in_features``.
        embed_dim: ``D'``, channels of the token embedding.
        map_size: ``(H, W)`` with ``H W = L D'`` (default: the most square factorisation, e.g.
            192 x 192 for ``L = 48, D' = 768`` as in the official global-temperature setting).
        normalize: subtract each series' mean and divide by its std over time first.
        dropout: dropout on the embedding.

    Shape:
        ``(B, L, D) -> (B * num_nodes, 1, H, W)``, node-major within each sample.
    """

    def __init__(
        self,
        in_features: int,
        seq_len: int,
        num_nodes: int = 1,
        embed_dim: int = 64,
        map_size: tuple[int, int] | None = None,
        normalize: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if min(in_features, seq_len, num_nodes, embed_dim) < 1:
            raise ValueError("in_features, seq_len, num_nodes and embed_dim must be positive")
        if in_features % num_nodes:
            raise ValueError(f"num_nodes={num_nodes} must divide in_features={in_features}")
        if embed_dim % 2:
            raise ValueError(f"embed_dim must be even (sin/cos positions), got {embed_dim}")
        map_size = tuple(map_size) if map_size is not None else _near_square(seq_len * embed_dim)
        if len(map_size) != 2 or map_size[0] * map_size[1] != seq_len * embed_dim:
            raise ValueError(f"map_size {map_size} must have H * W == seq_len * embed_dim = {seq_len * embed_dim}")
        self.in_features, self.seq_len, self.num_nodes, self.embed_dim = in_features, seq_len, num_nodes, embed_dim
        self.map_size, self.normalize = map_size, normalize
        self.token = nn.Conv1d(in_features // num_nodes, embed_dim, 3, padding=1, padding_mode="circular", bias=False)
        self.drop = nn.Dropout(dropout)
        self.register_buffer("pos", _sinusoid(seq_len, embed_dim), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.kaiming_normal_(self.token.weight, mode="fan_in", nonlinearity="leaky_relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3 or x.shape[1:] != (self.seq_len, self.in_features):
            raise ValueError(f"expected (B, {self.seq_len}, {self.in_features}), got {tuple(x.shape)}")
        b, n = x.shape[0], self.num_nodes
        if self.normalize:
            x = x - x.mean(1, keepdim=True)
            x = x / torch.sqrt(x.var(1, keepdim=True, unbiased=False) + 1e-5)
        x = x.reshape(b, self.seq_len, n, -1).permute(0, 2, 3, 1)  # (B, L, D) -> (B, n, D/n, L)
        x = x.reshape(b * n, -1, self.seq_len)  # -> (B n, D/n, L)
        e = self.token(x).transpose(1, 2) + self.pos.to(x.dtype)  # -> (B n, L, D')
        return self.drop(e).reshape(b * n, 1, *self.map_size)  # -> (B n, 1, H, W)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, seq_len={self.seq_len}, num_nodes={self.num_nodes}, "
            f"embed_dim={self.embed_dim}, map_size={self.map_size}, normalize={self.normalize}"
        )


# ------------------------------------------------------------------------------------- point cloud
# Euler angles (x, y, z) of the official point-cloud views (P2P), in radians.
P2P_VIEWS: tuple[tuple[float, float, float], ...] = (
    (0.0, 0.0, math.pi / 2),
    (math.pi / 2, 0.0, math.pi / 2),
    (math.pi, 0.0, math.pi / 2),
    (3 * math.pi / 2, 0.0, math.pi / 2),
    (5 * math.pi / 4, -math.pi / 4, math.pi / 2),
    (5 * math.pi / 4, math.pi / 4, math.pi / 2),
    (7 * math.pi / 4, -math.pi / 4, math.pi / 2),
    (7 * math.pi / 4, math.pi / 4, math.pi / 2),
    (0.0, -math.pi / 2, math.pi / 2),
    (0.0, math.pi / 2, math.pi / 2),
)


def _euler_to_matrix(x: float, y: float, z: float) -> torch.Tensor:
    """``R = R_x R_y R_z`` for rotations about the x, y, z axes."""
    cx, sx, cy, sy, cz, sz = math.cos(x), math.sin(x), math.cos(y), math.sin(y), math.cos(z), math.sin(z)
    rx = torch.tensor([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = torch.tensor([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = torch.tensor([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rx @ ry @ rz


class _BasicBlock(nn.Module):
    """ResNet basic block: (3x3 conv, BN, ReLU, 3x3 conv, BN) + input, ReLU."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(dim, dim, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(dim)
        self.conv2 = nn.Conv2d(dim, dim, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(x + y)


class PointCloudToMap(nn.Module):
    """Point clouds as 3-channel images by a learnable geometry-preserving projection (P2P).

    Each point gets a feature from its ``k`` nearest neighbours (edge features ``[f_j - f_i, f_i]``
    -> 1x1 conv -> GroupNorm -> LeakyReLU -> max over neighbours); the cloud is rotated into each
    view, its x/y coordinates are scaled so the larger extent spans ``image_size - 3`` pixels and
    centred, and every point adds its feature to the 3 x 3 pixels around its projection. A ResNet
    basic block, 1x1 convs, a sigmoid and ImageNet normalisation turn the feature image into RGB.
    Everything is symmetric in the points, so the output does not depend on their order.

    Args:
        image_size: ``S``, side of the output image.
        num_views: ``V`` views, the first of :data:`P2P_VIEWS`.
        k: neighbours per point (including itself).
        point_dim: channels of the per-point input embedding.
        feature_dim: channels of the point and image features.
        imagenet_normalize: normalise the sigmoid output with ImageNet mean and std.

    Shape:
        ``(B, N, 3) -> (B * V, 3, S, S)``, view-minor (sample ``b``'s views are rows ``bV .. bV+V-1``).
    """

    def __init__(
        self,
        image_size: int = 224,
        num_views: int = 1,
        k: int = 32,
        point_dim: int = 8,
        feature_dim: int = 64,
        imagenet_normalize: bool = True,
    ) -> None:
        super().__init__()
        if image_size < 4:
            raise ValueError(f"image_size must be at least 4, got {image_size}")
        if not 1 <= num_views <= len(P2P_VIEWS):
            raise ValueError(f"num_views must be in 1..{len(P2P_VIEWS)}, got {num_views}")
        if k < 1 or point_dim < 1:
            raise ValueError(f"k and point_dim must be positive, got k={k}, point_dim={point_dim}")
        if feature_dim < 4 or feature_dim % 4:
            raise ValueError(f"feature_dim must be a positive multiple of 4 (GroupNorm(4)), got {feature_dim}")
        self.image_size, self.num_views, self.k = image_size, num_views, k
        self.point_dim, self.feature_dim, self.imagenet_normalize = point_dim, feature_dim, imagenet_normalize
        self.input_trans = nn.Conv1d(3, point_dim, 1)
        self.graph_layer = nn.Sequential(
            nn.Conv2d(2 * point_dim, feature_dim, 1, bias=False),
            nn.GroupNorm(4, feature_dim),
            nn.LeakyReLU(0.2),
        )
        self.proj_layer = nn.Conv1d(feature_dim, feature_dim, 1)
        self.img_block = nn.Sequential(_BasicBlock(feature_dim), nn.Conv2d(feature_dim, feature_dim, 1))
        self.img_layer = nn.Conv2d(feature_dim, 3, 1)
        rot = torch.stack([_euler_to_matrix(*v) for v in P2P_VIEWS[:num_views]])  # (V, 3, 3)
        self.register_buffer("rotations", rot, persistent=False)
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        offsets = torch.tensor([(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)])  # 3 x 3 splat
        self.register_buffer("offsets", offsets, persistent=False)

    def reset_parameters(self) -> None:
        for m in self.modules():
            if m is not self and hasattr(m, "reset_parameters"):
                m.reset_parameters()

    def point_features(self, points: torch.Tensor) -> torch.Tensor:
        """``(B, N, 3) -> (B, N, feature_dim)`` from each point's ``k`` nearest neighbours."""
        b, n, _ = points.shape
        k = min(self.k, n)
        f = self.input_trans(points.transpose(1, 2))  # (B, N, 3) -> (B, P, N)
        idx = torch.cdist(points, points).topk(k, dim=-1, largest=False).indices  # (B, N, k)
        fi = f.transpose(1, 2)  # (B, N, P)
        nbr = torch.gather(fi.unsqueeze(1).expand(b, n, n, -1), 2, idx.unsqueeze(-1).expand(-1, -1, -1, fi.shape[-1]))
        centre = fi.unsqueeze(2).expand_as(nbr)  # (B, N, k, P)
        edge = torch.cat([nbr - centre, centre], dim=-1).permute(0, 3, 1, 2)  # -> (B, 2P, N, k)
        g = self.graph_layer(edge).amax(dim=-1)  # -> (B, C, N)
        return self.proj_layer(g).transpose(1, 2)  # -> (B, N, C)

    def project(self, points: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """Scatter ``(B, N, C)`` features at the x/y positions of ``(B, N, 3)`` points: ``(B, C, S, S)``."""
        b, n, _ = points.shape
        s = self.image_size
        xy = points[..., :2]
        lo = xy.amin(dim=1, keepdim=True)
        cell = (points.amax(dim=1) - points.amin(dim=1))[:, :2].amax(dim=-1).clamp_min(1e-12) / (s - 3)  # (B,)
        idx = torch.floor((xy - lo) / cell.view(b, 1, 1))  # (B, N, 2) grid cell of each point
        dense = (idx.unsqueeze(2) + self.offsets).reshape(b, n * 9, 2) + 1  # 3 x 3 neighbourhood, >= 0
        centre = torch.floor((dense.amax(dim=1) + dense.amin(dim=1)) / 2)  # (B, 2)
        dense = (dense + (s / 2 - centre - 1).unsqueeze(1)).long().clamp_(0, s - 1)  # centred in the image
        flat = dense[..., 0] * s + dense[..., 1]  # (B, 9N)
        src = features.unsqueeze(2).expand(-1, -1, 9, -1).reshape(b, n * 9, -1)  # (B, 9N, C)
        out = features.new_zeros(b, s * s, features.shape[-1])
        out.scatter_add_(1, flat.unsqueeze(-1).expand_as(src), src)
        return out.view(b, s, s, -1).permute(0, 3, 1, 2)  # (B, S*S, C) -> (B, C, S, S)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        if points.ndim != 3 or points.shape[-1] != 3:
            raise ValueError(f"points must be (B, N, 3), got shape {tuple(points.shape)}")
        b, n, _ = points.shape
        feats = self.point_features(points)  # (B, N, C), the same for every view
        rot = self.rotations.to(points.dtype)
        views = torch.einsum("bnj,vij->bvni", points, rot).reshape(b * self.num_views, n, 3)  # rotated clouds
        feats = feats.repeat_interleave(self.num_views, dim=0)  # (B V, N, C)
        img = self.img_layer(self.img_block(self.project(views, feats)))  # (B V, 3, S, S)
        img = torch.sigmoid(img)
        return (img - self.mean) / self.std if self.imagenet_normalize else img

    def extra_repr(self) -> str:
        return (
            f"image_size={self.image_size}, num_views={self.num_views}, k={self.k}, "
            f"point_dim={self.point_dim}, feature_dim={self.feature_dim}"
        )


# ------------------------------------------------------------------------------------------- video
def _grid(frames: int, grid: tuple[int, int] | None) -> tuple[int, int]:
    rows, cols = _near_square(frames) if grid is None else grid
    if rows * cols != frames:
        raise ValueError(f"grid {(rows, cols)} must hold all {frames} frames (rows * cols == frames)")
    return rows, cols


def video_to_map(video: torch.Tensor, grid: tuple[int, int] | None = None, layout: str = "grid") -> torch.Tensor:
    """Lay the frames of ``(B, N_F, C, h, w)`` videos out as one ``(B, C, rows h, cols w)`` image.

    Args:
        video: frames, ``(B, N_F, C, h, w)``.
        grid: ``(rows, cols)`` with ``rows * cols == N_F`` (default: the most square, 4 x 4 for 16).
        layout: ``"grid"``: frame ``i cols + j`` fills tile ``(i, j)`` (the paper: frames
            concatenated into one image); ``"reshape"``: the official video code's memory
            reinterpretation of the ``(B, C, N_F, h, w)`` tensor as ``(B, C, rows h, cols w)``
            (same values, other arrangement; use it with that code's checkpoints).
    """
    if layout not in ("grid", "reshape"):
        raise ValueError(f"layout must be 'grid' or 'reshape', got {layout!r}")
    if video.ndim != 5:
        raise ValueError(f"video must be (B, N_F, C, h, w), got shape {tuple(video.shape)}")
    b, t, c, h, w = video.shape
    rows, cols = _grid(t, grid)
    if layout == "reshape":
        return video.transpose(1, 2).reshape(b, c, rows * h, cols * w)  # (B, C, N_F, h, w) read as rows
    x = video.reshape(b, rows, cols, c, h, w).permute(0, 3, 1, 4, 2, 5)  # -> (B, C, rows, h, cols, w)
    return x.reshape(b, c, rows * h, cols * w)


def map_to_video(image: torch.Tensor, frames: int, grid: tuple[int, int] | None = None) -> torch.Tensor:
    """Inverse of :func:`video_to_map` with ``layout="grid"``: ``(B, C, H, W) -> (B, frames, C, h, w)``."""
    if image.ndim != 4:
        raise ValueError(f"image must be (B, C, H, W), got shape {tuple(image.shape)}")
    b, c, hh, ww = image.shape
    rows, cols = _grid(frames, grid)
    if hh % rows or ww % cols:
        raise ValueError(f"image {hh}x{ww} does not split into a {rows}x{cols} grid")
    x = image.reshape(b, c, rows, hh // rows, cols, ww // cols).permute(0, 2, 4, 1, 3, 5)  # (B, rows, cols, C, h, w)
    return x.reshape(b, frames, c, hh // rows, ww // cols)


class VideoToMap(nn.Module):
    """:func:`video_to_map` as a module (no parameters)."""

    def __init__(self, grid: tuple[int, int] | None = None, layout: str = "grid") -> None:
        super().__init__()
        if layout not in ("grid", "reshape"):
            raise ValueError(f"layout must be 'grid' or 'reshape', got {layout!r}")
        if grid is not None and (len(grid) != 2 or min(grid) < 1):
            raise ValueError(f"grid must be (rows, cols) of positive ints, got {grid}")
        self.grid, self.layout = grid, layout

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return video_to_map(video, self.grid, self.layout)

    def extra_repr(self) -> str:
        return f"grid={self.grid}, layout={self.layout!r}"
