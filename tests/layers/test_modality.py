"""Modality pre-processing into 2-D maps: shapes, closed forms, invariances (point order,
per-series affine changes, node order), exact frame layout, and a map through UniRepLKNet."""

import math

import pytest
import torch
import torch.nn.functional as F

import subband
from subband.layers import (
    AudioToMap,
    PointCloudToMap,
    TimeSeriesToMap,
    VideoToMap,
    audio_to_map,
    map_to_video,
    video_to_map,
)
from subband.layers.modality import P2P_VIEWS


# ------------------------------------------------------------------------------------------- audio
def test_audio_map_shape_layout_padding_and_normalisation():
    torch.manual_seed(0)
    spec = torch.randn(3, 98, 128)  # (B, T frames, F mel bins)
    x = audio_to_map(spec)
    assert x.shape == (3, 1, 98, 128) and torch.equal(x[:, 0], spec)  # H = T, W = F, values untouched
    assert torch.equal(audio_to_map(spec, time_axis="width"), spec.transpose(1, 2).unsqueeze(1))
    padded = audio_to_map(spec, target_frames=100)
    assert padded.shape == (3, 1, 100, 128)
    assert torch.equal(padded[:, 0, :98], spec) and not padded[:, 0, 98:].any()  # zeros appended
    assert torch.equal(audio_to_map(spec, target_frames=64)[:, 0], spec[:, :64])  # cropped
    torch.testing.assert_close(audio_to_map(spec, mean=-6.8, std=5.5)[:, 0], (spec + 6.8) / 11.0)
    module = AudioToMap(target_frames=100, time_axis="width", mean=-6.8, std=5.5)
    torch.testing.assert_close(module(spec), audio_to_map(spec, 100, "width", -6.8, 5.5))
    torch.testing.assert_close(module(spec), module(spec))  # deterministic
    assert "time_axis='width'" in repr(module)


def test_audio_errors():
    with pytest.raises(ValueError, match="'height' or 'width'"):
        AudioToMap(time_axis="freq")
    with pytest.raises(ValueError, match=r"\(B, T, F\)"):
        audio_to_map(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="both mean and std"):
        AudioToMap(mean=1.0)
    with pytest.raises(ValueError, match="positive"):
        AudioToMap(target_frames=0)


# ------------------------------------------------------------------------------------- time series
def test_time_series_map_is_the_reshaped_embedding():
    torch.manual_seed(0)
    emb = TimeSeriesToMap(in_features=6, seq_len=12, num_nodes=3, embed_dim=8, normalize=False).eval()
    assert emb.map_size == (8, 12)  # the most square H x W with H W = 12 * 8
    x = torch.randn(2, 12, 6)
    maps = emb(x)
    assert maps.shape == (2 * 3, 1, 8, 12)
    # node j of sample b: its 2 variables, circular 3-tap conv, plus sin/cos positions, flattened
    b, j = 1, 2
    series = x[b, :, 2 * j : 2 * j + 2].T.unsqueeze(0)  # (1, 2, L)
    tokens = F.conv1d(F.pad(series, (1, 1), mode="circular"), emb.token.weight)[0].T  # (L, D')
    pos = torch.zeros(12, 8)
    t = torch.arange(12.0).unsqueeze(1)
    freq = torch.exp(-torch.arange(0, 8, 2) * math.log(10000.0) / 8)
    pos[:, 0::2], pos[:, 1::2] = torch.sin(t * freq), torch.cos(t * freq)
    torch.testing.assert_close(maps[b * 3 + j, 0].flatten(), (tokens + pos).flatten())
    torch.testing.assert_close(emb(x), maps)  # deterministic in eval


def test_time_series_map_equivariance_and_invariance():
    torch.manual_seed(0)
    emb = TimeSeriesToMap(in_features=8, seq_len=16, num_nodes=4, embed_dim=4).eval()
    x = torch.randn(2, 16, 8)
    maps = emb(x).view(2, 4, 1, 8, 8)
    # permuting whole nodes permutes the maps: nodes are embedded independently with shared weights
    perm = torch.tensor([2, 0, 3, 1])
    xp = x.view(2, 16, 4, 2)[:, :, perm].reshape(2, 16, 8)
    torch.testing.assert_close(emb(xp).view(2, 4, 1, 8, 8), maps[:, perm])
    # with normalize=True each series is standardised first: a positive affine change is invisible
    scale, shift = torch.rand(1, 1, 8) + 0.5, torch.randn(1, 1, 8)
    torch.testing.assert_close(emb(x * scale + shift).view_as(maps), maps, rtol=1e-4, atol=1e-4)
    # the official global-forecasting setting: L = 48, D' = 768 -> 192 x 192 maps
    assert TimeSeriesToMap(in_features=11, seq_len=48, embed_dim=768).map_size == (192, 192)


def test_time_series_errors():
    with pytest.raises(ValueError, match="must divide"):
        TimeSeriesToMap(in_features=5, seq_len=8, num_nodes=2)
    with pytest.raises(ValueError, match="H \\* W"):
        TimeSeriesToMap(in_features=4, seq_len=8, embed_dim=4, map_size=(5, 5))
    with pytest.raises(ValueError, match="even"):
        TimeSeriesToMap(in_features=4, seq_len=8, embed_dim=3)
    with pytest.raises(ValueError, match=r"expected \(B, 8, 4\)"):
        TimeSeriesToMap(in_features=4, seq_len=8, embed_dim=4)(torch.zeros(1, 8, 5))


# ------------------------------------------------------------------------------------- point cloud
def test_point_cloud_map_shape_and_point_order_invariance():
    torch.manual_seed(0)
    net = PointCloudToMap(image_size=32, num_views=2, k=8, feature_dim=16).eval()
    points = torch.randn(2, 200, 3)
    with torch.no_grad():
        img = net(points)
        assert img.shape == (2 * 2, 3, 32, 32) and torch.isfinite(img).all()
        perm = torch.randperm(200)
        torch.testing.assert_close(net(points[:, perm]), img, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(net(points), img)  # deterministic
    assert not torch.allclose(img[0], img[1])  # the two views of a sample differ


def test_point_cloud_projection_conserves_features_and_centres_the_object():
    torch.manual_seed(0)
    net = PointCloudToMap(image_size=40, feature_dim=8)
    points = torch.rand(1, 300, 3) * torch.tensor([2.0, 1.0, 1.0])  # wider in x than in y
    feats = torch.rand(1, 300, 8)
    plane = net.project(points, feats)
    assert plane.shape == (1, 8, 40, 40)
    # every point splats its feature onto 3 x 3 pixels: nothing is lost or duplicated beyond that
    torch.testing.assert_close(plane.sum((2, 3)), 9 * feats.sum(1))
    rows = plane.sum((1, 3))[0].nonzero().flatten()  # x runs down the image
    cols = plane.sum((1, 2))[0].nonzero().flatten()
    # the larger (x) extent is cut into image_size - 3 steps: image_size - 2 cells plus the splat's
    # one pixel either side fill the whole height; the narrower y extent fills about half the width
    assert (rows.min(), rows.max()) == (0, 39) and 18 <= cols.max() - cols.min() + 1 <= 24
    assert abs((rows.max() + rows.min()) / 2 - 19.5) <= 1 and abs((cols.max() + cols.min()) / 2 - 19.5) <= 1
    rot = net.rotations
    torch.testing.assert_close(rot @ rot.transpose(1, 2), torch.eye(3).expand_as(rot), atol=1e-6, rtol=0)
    assert len(P2P_VIEWS) == 10


def test_point_cloud_errors_and_gradients():
    with pytest.raises(ValueError, match="num_views"):
        PointCloudToMap(num_views=11)
    with pytest.raises(ValueError, match="multiple of 4"):
        PointCloudToMap(feature_dim=6)
    with pytest.raises(ValueError, match=r"\(B, N, 3\)"):
        PointCloudToMap(image_size=16)(torch.zeros(2, 10, 2))
    net = PointCloudToMap(image_size=16, k=4, feature_dim=8)
    net(torch.randn(2, 30, 3)).square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


# ------------------------------------------------------------------------------------------- video
def test_video_grid_layout_places_each_frame_in_its_tile():
    torch.manual_seed(0)
    video = torch.randn(2, 16, 3, 5, 7)  # (B, N_F, C, h, w)
    image = video_to_map(video)
    assert image.shape == (2, 3, 4 * 5, 4 * 7)
    for i in range(4):
        for j in range(4):
            assert torch.equal(image[:, :, 5 * i : 5 * i + 5, 7 * j : 7 * j + 7], video[:, 4 * i + j])
    assert torch.equal(map_to_video(image, 16), video)  # exact inverse
    wide = video_to_map(video[:, :8], grid=(2, 4))
    assert wide.shape == (2, 3, 10, 28) and torch.equal(map_to_video(wide, 8, (2, 4)), video[:, :8])
    torch.testing.assert_close(VideoToMap()(video), image)


def test_video_reshape_layout_is_the_official_memory_reinterpretation():
    video = torch.arange(2 * 16 * 3 * 4 * 4.0).view(2, 16, 3, 4, 4)
    official = video.permute(0, 2, 1, 3, 4).contiguous().view(2, 3, 16 * 4 * 4).view(2, 3, 16, 16)
    got = VideoToMap(layout="reshape")(video)
    assert torch.equal(got, official)
    assert torch.equal(got.flatten().sort().values, video.flatten().sort().values)  # a permutation of the values


def test_video_errors():
    with pytest.raises(ValueError, match="rows \\* cols == frames"):
        video_to_map(torch.zeros(1, 6, 3, 2, 2), grid=(2, 2))
    with pytest.raises(ValueError, match="'grid' or 'reshape'"):
        VideoToMap(layout="tile")
    with pytest.raises(ValueError, match=r"\(B, N_F, C, h, w\)"):
        video_to_map(torch.zeros(1, 3, 2, 2))
    with pytest.raises(ValueError, match="does not split"):
        map_to_video(torch.zeros(1, 3, 5, 4), 4)


# ---------------------------------------------------------------------------- one network for all
def test_every_modality_map_runs_through_unireplknet():
    torch.manual_seed(0)
    gray = subband.create_model("unireplknet_a", in_chans=1, num_classes=4).eval()
    rgb = subband.create_model("unireplknet_a", num_classes=4).eval()
    with torch.no_grad():
        assert gray(audio_to_map(torch.randn(2, 64, 32))).shape == (2, 4)
        assert gray(TimeSeriesToMap(6, 16, num_nodes=2, embed_dim=64)(torch.randn(1, 16, 6))).shape == (2, 4)
        assert rgb(PointCloudToMap(image_size=32, k=4, feature_dim=8).eval()(torch.randn(2, 50, 3))).shape == (2, 4)
        assert rgb(video_to_map(torch.randn(2, 4, 3, 16, 16))).shape == (2, 4)
