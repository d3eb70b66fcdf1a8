"""Hash codes: mAP of Hamming ranking against a brute-force numpy loop, EET's proxy codes against a
float64 numpy transliteration of the official ``calc_train_codes``, the hashing head."""

import numpy as np
import pytest
import torch
from torch import nn

from subband.compress import HashHead, HashingClassifier, binarize, hamming_map, proxy_hash_codes
from tests.tolerances import assert_close


def _brute_map(qb, rb, ql, rl, top_k=None):
    """Per query: Hamming distance to every item, stable sort, precision at each relevant rank."""
    qb, rb, ql, rl = (np.asarray(a) for a in (qb, rb, ql, rl))
    k = len(rb) if top_k is None else top_k
    aps = []
    for i in range(len(qb)):
        dist = [int(np.sum(qb[i] != r)) for r in rb]
        order = sorted(range(len(rb)), key=lambda j: (dist[j], j))[:k]
        if ql.ndim == 1:
            rel = [ql[i] == rl[j] for j in order]
        else:
            rel = [bool(np.any(np.logical_and(ql[i] > 0, rl[j] > 0))) for j in order]
        hits, precisions = 0, []
        for rank, r in enumerate(rel, start=1):
            if r:
                hits += 1
                precisions.append(hits / rank)
        aps.append(np.mean(precisions) if precisions else 0.0)
    return float(np.mean(aps))


@pytest.mark.parametrize("top_k", [None, 1, 10, 37])
def test_map_equals_brute_force(top_k):
    g = torch.Generator().manual_seed(0)
    qb = binarize(torch.randn(23, 6, generator=g))  # 6 bits: many ties in Hamming distance
    rb = binarize(torch.randn(41, 6, generator=g))
    ql = torch.randint(0, 5, (23,), generator=g)
    rl = torch.randint(0, 5, (41,), generator=g)
    rl[rl == 4] = 3  # class 4 queries have no relevant item: AP 0
    got = hamming_map(qb, rb, ql, rl, top_k=top_k, chunk=7)
    assert got.item() == pytest.approx(_brute_map(qb, rb, ql, rl, top_k), abs=1e-12)


def test_map_with_multi_hot_labels_equals_brute_force():
    g = torch.Generator().manual_seed(1)
    qb, rb = binarize(torch.randn(15, 8, generator=g)), binarize(torch.randn(30, 8, generator=g))
    ql = (torch.rand(15, 6, generator=g) < 0.3).float()
    rl = (torch.rand(30, 6, generator=g) < 0.3).float()
    assert hamming_map(qb, rb, ql, rl).item() == pytest.approx(_brute_map(qb, rb, ql, rl), abs=1e-12)


def test_map_is_one_for_class_codes_and_checks_arguments():
    codes = binarize(torch.randn(4, 16))
    labels = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    assert hamming_map(codes[labels], codes[labels], labels, labels).item() == pytest.approx(1.0)
    with pytest.raises(ValueError):
        hamming_map(codes, codes[:, :8], labels[:4], labels[:4])
    with pytest.raises(ValueError):
        hamming_map(codes, codes, labels[:4], labels[:4], top_k=5)


def _official_proxy(labels_onehot, v, b, iters=15, sigma=1.0, delta=1e-4):
    """float64 numpy transliteration of the official ``calc_train_codes`` from the given start."""
    lab = labels_onehot.T
    s1, _, s2 = np.linalg.svd(b @ v.T)
    r = s1 @ s2
    for _ in range(iters):
        b = -np.ones_like(b)
        b[(r @ v) >= 0] = 1
        ul = (sigma * lab @ v.T) @ np.linalg.pinv(sigma * v @ v.T)
        v = np.linalg.pinv(sigma * ul.T @ ul + delta * r.T @ r) @ (sigma * ul.T @ lab + delta * r.T @ b)
        s1, _, s2 = np.linalg.svd(b @ v.T)
        r = s1 @ s2
    return np.sign(b.T)


def test_proxy_codes_equal_the_official_iteration():
    labels = torch.randint(0, 12, (300,), generator=torch.Generator().manual_seed(0))
    codes = proxy_hash_codes(labels, 16, generator=torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)  # the same start: V normal, then B = sign(normal)
    v = torch.randn(16, 300, dtype=torch.float64, generator=g).numpy()
    b = torch.randn(16, 300, dtype=torch.float64, generator=g).sign().numpy()
    want = _official_proxy(np.eye(12)[labels.numpy()], v, b)
    assert_close(codes, want)
    assert codes.shape == (300, 16) and set(codes.unique().tolist()) == {-1.0, 1.0}


def test_proxy_codes_separate_the_classes():
    """Codes of a class nearly coincide, codes of different classes differ in about half the bits:
    ranking the proxy codes by themselves retrieves every class perfectly."""
    labels = torch.randint(0, 10, (500,), generator=torch.Generator().manual_seed(0))
    codes = proxy_hash_codes(labels, 16, generator=torch.Generator().manual_seed(0))
    dist = 0.5 * (16 - codes @ codes.T)
    same = labels[:, None] == labels[None, :]
    assert dist[same].mean() < 0.5 and dist[~same].mean() > 6
    assert hamming_map(codes, codes, labels, labels).item() == pytest.approx(1.0)


def test_hash_head_and_classifier():
    torch.manual_seed(0)
    backbone = nn.Linear(12, 5)
    backbone.num_classes = 5
    net = HashingClassifier(backbone, bits=8)
    x = torch.randn(4, 12)
    logits, codes = net(x)
    assert torch.equal(logits, backbone(x))
    assert_close(codes, logits @ net.head_hash.fc.weight.T + net.head_hash.fc.bias)
    assert torch.equal(net.hash(x), torch.where(codes >= 0, 1.0, -1.0))
    tanh = HashHead(5, 8, activation="tanh")
    assert_close(tanh(logits), torch.tanh(tanh.fc(logits)))
    assert tanh.codes(logits).abs().eq(1).all()
    assert binarize(torch.tensor([-0.5, 0.0, 2.0])).tolist() == [-1.0, 1.0, 1.0]
    with pytest.raises(ValueError):
        HashHead(5, 8, activation="sigmoid")
    with pytest.raises(ValueError, match="num_classes"):
        HashingClassifier(nn.Identity(), 8)
