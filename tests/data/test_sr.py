"""Super-resolution pairs: Y conversion against scikit-image, shapes, crops, the shared Set5 data."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.color import rgb2ycbcr

from subband.data import SRPairs, bicubic_resize, modcrop, rgb_to_y

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "sr"


def test_rgb_to_y_matches_skimage():
    rgb = np.random.default_rng(0).random((5, 7, 3))
    ref = rgb2ycbcr(rgb)[..., 0] / 255.0
    got = rgb_to_y(torch.from_numpy(rgb).permute(2, 0, 1))
    assert got.shape == (1, 5, 7)
    np.testing.assert_allclose(got[0].numpy(), ref, atol=1e-12)


def test_modcrop_and_bicubic():
    x = torch.rand(1, 31, 20)
    assert modcrop(x, 3).shape == (1, 30, 18)
    y = bicubic_resize(torch.full((1, 30, 18), 0.25), (10, 6))
    assert y.shape == (1, 10, 6)
    torch.testing.assert_close(y, torch.full((1, 10, 6), 0.25))  # a constant image stays constant


def _folder(tmp_path, sizes):
    rng = np.random.default_rng(0)
    for i, (w, h) in enumerate(sizes):
        Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8)).save(tmp_path / f"im{i}.png")
    return tmp_path


def test_pairs_whole_images_and_crops(tmp_path):
    root = _folder(tmp_path, [(50, 41), (64, 64)])
    whole = SRPairs(root, scale=3)
    lr, hr = whole[0]
    assert hr.shape == (1, 39, 48) and lr.shape == (1, 13, 16)
    assert len(list(whole)) == 2  # iteration stops at the end
    with pytest.raises(IndexError):
        whole[2]
    crops = SRPairs(root, scale=3, patch=24, samples_per_image=4, seed=1)
    assert len(crops) == 8
    lr, hr = crops[5]
    assert lr.shape == (1, 8, 8) and hr.shape == (1, 24, 24)
    torch.testing.assert_close(crops[5][1], crops[5][1])  # same epoch, same crop
    crops.set_epoch(1)
    assert not torch.equal(crops[5][1], hr)  # a new epoch draws new crops
    rgb = SRPairs(root, scale=2, y_only=False)
    assert rgb[1][1].shape == (3, 64, 64)


def test_bad_arguments(tmp_path):
    with pytest.raises(FileNotFoundError):
        SRPairs(tmp_path / "missing", scale=2)
    with pytest.raises(ValueError, match="no images"):
        SRPairs(tmp_path, scale=2)
    root = _folder(tmp_path, [(20, 20)])
    with pytest.raises(ValueError, match="multiple of scale"):
        SRPairs(root, scale=3, patch=10)
    with pytest.raises(ValueError, match="smaller than"):
        SRPairs(root, scale=2, patch=40)


@pytest.mark.skipif(not (SHARED / "Set5").is_dir(), reason="shared benchmark data not present")
def test_set5_bicubic_baseline_psnr():
    # bicubic x3 on Set5's Y channel is about 30.4 dB in the literature (MATLAB resize); Pillow's
    # bicubic lands within a few tenths of that
    from subband.train import psnr

    pairs = SRPairs(SHARED / "Set5", scale=3)
    scores = []
    for lr, hr in pairs:
        up = bicubic_resize(lr, hr.shape[-2:])
        scores.append(psnr(up[None], hr[None], border=3).item())
    assert 29.8 < np.mean(scores) < 31.0, scores


def test_bundled_photographs_make_an_offline_sr_set():
    from subband.data import bundled_photos, from_spec

    files = bundled_photos()
    assert len(files) >= 5 and all(f.is_file() for f in files)
    pairs = from_spec("sr", split="test", scale=4)
    lr, hr = pairs[0]
    assert hr.shape[0] == 1 and hr.shape[-1] == 4 * lr.shape[-1]
    crops = from_spec("sr", split="train", scale=2, patch=32)
    assert crops[3][1].shape == (1, 32, 32)
