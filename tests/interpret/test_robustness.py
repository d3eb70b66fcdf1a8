"""Patch perturbations: corruptions and attacks stay inside their patches, the attack hurts a
trained classifier more than natural patch noise, and the attention temperature does what it says."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from subband.interpret import corrupt_patches, evaluate_patch_robustness, patch_attack, set_attention_temperature
from subband.layers import Attention


def _changed_patches(a: torch.Tensor, b: torch.Tensor, p: int) -> torch.Tensor:
    diff = (a - b).abs().sum(1)  # (B, H, W)
    per_patch = diff.unfold(1, p, p).unfold(2, p, p).sum((-2, -1))  # (B, H/p, W/p)
    return (per_patch > 0).flatten(1).sum(1)


def test_corruptions_touch_exactly_the_requested_patches():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, 3, 32, 32, generator=g)
    y = corrupt_patches(x, 8, num_patches=3, corruption="gaussian_noise", generator=g)
    assert (_changed_patches(x, y, 8) == 3).all()
    for c in ("blur", "contrast", "brightness", "pixelate"):
        assert (_changed_patches(x, corrupt_patches(x, 8, 2, c, generator=g), 8) <= 2).all()
    with pytest.raises(ValueError, match="corruption"):
        corrupt_patches(x, 8, corruption="snow")
    with pytest.raises(ValueError, match="divide"):
        corrupt_patches(x, 7)


def _digits_classifier():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = F.interpolate(torch.tensor(x, dtype=torch.float32).view(-1, 1, 8, 8) / 16, size=16, mode="nearest")
    y = torch.tensor(y)
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10),
    )  # fmt: skip
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(800):
        idx = torch.randint(0, 1500, (64,), generator=g)
        loss = F.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval(), x[1500:1700], y[1500:1700]


def test_adversarial_patch_hurts_more_than_a_noisy_patch():
    net, x, y = _digits_classifier()
    adv = patch_attack(net, x, y, patch_size=4, steps=20, generator=torch.Generator().manual_seed(1))
    assert (_changed_patches(x, adv, 4) <= 1).all()  # one 4x4 patch per image at most
    assert adv.min() >= 0 and adv.max() <= 1
    r = evaluate_patch_robustness(net, x, y, patch_size=4, attack_steps=20)
    assert r["clean"] > 0.75  # measured 0.815 on these held-out digits
    assert r["adversarial_patch"] < r["gaussian_noise"] - 0.1
    assert r["adversarial_patch"] < r["clean"] - 0.2


def test_attention_temperature():
    torch.manual_seed(0)
    attn = Attention(16, num_heads=2, qkv_bias=True).eval()
    x = torch.randn(2, 7, 16)
    base = attn(x)
    model = nn.Sequential(attn)
    assert set_attention_temperature(model, 1e9) == 1
    v = attn.qkv(x)[..., 32:]  # (B, N, C): the values
    uniform = attn.proj(v.mean(1, keepdim=True).expand_as(v))  # infinite temperature: plain average
    torch.testing.assert_close(attn(x), uniform, rtol=1e-4, atol=1e-5)
    set_attention_temperature(model, 1.0)
    torch.testing.assert_close(attn(x), base)
    assert set_attention_temperature(nn.Conv2d(1, 1, 1), 2.0) == 0
    with pytest.raises(ValueError, match="positive"):
        set_attention_temperature(model, 0.0)
