"""Classification datasets: digits, MNIST IDX (the shared test split), image folders."""

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from subband.data import ImageFolder, digits, mnist, read_idx

MNIST = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist-test"


def test_digits_split_is_reproducible_and_disjoint():
    train, test = digits("train"), digits("test")
    assert len(train) + len(test) == 1797 and len(test) == 359
    x, y = train[0]
    assert x.shape == (1, 8, 8) and 0 <= x.min() and x.max() <= 1 and 0 <= y < 10
    assert torch.equal(digits("train").images, train.images)
    both = torch.cat([train.images, test.images]).flatten(1)
    assert len(torch.unique(both, dim=0)) == len(torch.unique(digits("all").images.flatten(1), dim=0))
    with pytest.raises(ValueError, match="split"):
        digits("val")


def test_tensor_images_random_split():
    data = digits("all")
    data.labels = torch.arange(len(data))  # each image tagged with its index
    train, test = data.split(300, seed=1)
    assert len(test) == 300 and len(train) == len(data) - 300
    assert sorted(torch.cat([train.labels, test.labels]).tolist()) == list(range(len(data)))  # a partition
    assert torch.equal(data.images[test.labels], test.images)
    assert torch.equal(data.split(300, seed=1)[1].labels, test.labels)  # reproducible
    assert not torch.equal(data.split(300, seed=2)[1].labels, test.labels)
    with pytest.raises(ValueError, match="n_test"):
        data.split(len(data))


@pytest.mark.skipif(not MNIST.is_dir(), reason="shared MNIST test split not present")
def test_mnist_test_split_matches_its_documented_facts():
    ds = mnist(MNIST, "test")
    assert len(ds) == 10_000 and ds.images.shape == (10_000, 1, 28, 28)
    assert ds.labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert torch.bincount(ds.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    raw = gzip.open(MNIST / "t10k-images-idx3-ubyte.gz").read()
    assert hashlib.md5(raw).hexdigest() == "2646ac647ad5339dbf082846283269ea"
    np.testing.assert_array_equal(
        (ds.images[0, 0] * 255).round().byte().numpy(), read_idx(MNIST / "t10k-images-idx3-ubyte.gz")[0]
    )


def test_idx_errors(tmp_path):
    good = b"\x00\x00\x08\x01" + (3).to_bytes(4, "big") + b"\x01\x02\x03"
    (tmp_path / "ok").write_bytes(good)
    assert read_idx(tmp_path / "ok").tolist() == [1, 2, 3]
    (tmp_path / "cut").write_bytes(good[:-1])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(tmp_path / "cut")
    (tmp_path / "png").write_bytes(b"\x89PNG....")
    with pytest.raises(ValueError, match="magic"):
        read_idx(tmp_path / "png")
    with pytest.raises(FileNotFoundError):
        mnist(tmp_path, "test")


def test_image_folder(tmp_path):
    rng = np.random.default_rng(0)
    for c, n in (("cat", 2), ("dog", 3)):
        (tmp_path / c).mkdir()
        for i in range(n):
            Image.fromarray((rng.random((10 + i, 12, 3)) * 255).astype(np.uint8)).save(tmp_path / c / f"{i}.png")
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    ds = ImageFolder(tmp_path, size=(8, 8))
    assert ds.classes == ["cat", "dog"] and len(ds) == 5
    x, y = ds[4]
    assert x.shape == (3, 8, 8) and y == 1
    with pytest.raises(ValueError, match="no images"):
        ImageFolder(tmp_path / "cat")
