"""Filter statistics against constructed filters, and the degeneracy flags on a briefly vs a fully
trained small CNN."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from subband.interpret import (
    collect_filters,
    filter_distance,
    filter_statistics,
    flag_degenerate,
    layer_filter_statistics,
    save_filter_pca_png,
)


def test_measures_on_constructed_filters():
    torch.manual_seed(0)
    pattern = torch.randn(3, 3)
    scaled = torch.randn(16, 8, 1, 1) * pattern  # every filter a multiple of one pattern
    s = layer_filter_statistics(scaled)
    assert s["variance_entropy"] == pytest.approx(0.0, abs=1e-6) and s["count"] == 128
    rand = layer_filter_statistics(torch.randn(64, 64, 3, 3))
    assert 0.95 < rand["variance_entropy_norm"] < 1.05  # random filters sit on the paper's curve
    w = torch.randn(10, 4, 3, 3)
    w[:3] *= 1e-4  # 12 of 40 filters below 1% of the largest weight
    assert layer_filter_statistics(w)["sparsity"] == pytest.approx(12 / 40)
    eye = torch.eye(9).view(9, 1, 3, 3)
    assert layer_filter_statistics(eye)["orthogonality"] == pytest.approx(1.0)
    assert layer_filter_statistics(pattern.expand(4, 1, 3, 3).clone())["orthogonality"] == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="C_out, C_in, k, k"):
        layer_filter_statistics(torch.randn(4, 3, 3))


def test_distance_between_filter_sets():
    torch.manual_seed(0)
    a, b = torch.randn(2000, 1, 3, 3), torch.randn(2000, 1, 3, 3)
    c = torch.randn(2000, 1, 3, 3) * torch.linspace(0.1, 3, 9).view(1, 1, 3, 3)
    same, other = filter_distance(a, b), filter_distance(a, c)
    assert 0 <= same < 0.02 < other <= 1


def _digits_cnn(steps: int) -> tuple[nn.Module, float]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x, dtype=torch.float32).view(-1, 1, 8, 8) / 16
    y = torch.tensor(y)
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10),
    )  # fmt: skip
    opt = torch.optim.Adam(net.parameters(), 1e-3, weight_decay=1e-4)
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        idx = torch.randint(0, len(x), (64,), generator=g)
        loss = F.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return net, float((net(x).argmax(1) == y).float().mean())


def test_briefly_trained_model_has_more_degenerate_filters(tmp_path):
    """Measured: after one step every 3x3 layer is flagged random (normalised entropy ~1.0); after
    700 steps (train accuracy > 0.95) the deeper layers drop below 0.9 and are not flagged."""
    brief, _ = _digits_cnn(1)
    trained, acc = _digits_cnn(700)
    assert acc > 0.95
    flags_brief = flag_degenerate(filter_statistics(brief))
    flags_trained = flag_degenerate(filter_statistics(trained))
    count = lambda f: sum(len(v) for v in f.values())  # noqa: E731
    assert count(flags_brief) > count(flags_trained)
    assert set(collect_filters(trained)) == {"0", "2", "5"}
    assert save_filter_pca_png(trained, tmp_path / "pca.png").stat().st_size > 1000
