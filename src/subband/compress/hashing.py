"""Binary hash codes for retrieval: a hashing head, the proxy codes it is trained to regress, and
mean average precision under Hamming ranking, as in EET ("Rethinking Vision Transformer for
Large-Scale Fine-Grained Image Retrieval", Jiang, Tang, Pan, Li; IEEE TMM 2025; arXiv 2504.16691).

EET learns ``bits``-bit codes in two steps. First every training image gets a proxy code in
``{-1, +1}^bits`` from its label alone (:func:`proxy_hash_codes`: a discrete alternating
optimisation that makes codes predictable from labels by a linear map, with a rotation learned by
orthogonal Procrustes). Then the network's hashing head (:class:`HashHead`, a linear layer on the
classifier's logits) is trained to regress them (MSE, see
:func:`~subband.compress.token_prune.eet_distillation_loss`). At test time a query's code is the
sign of its head output and the database is the training set's proxy codes; queries rank the
database by Hamming distance and :func:`hamming_map` scores the ranking.

Checked against the official code (github.com/WhiteJiang/EET, ``model/vit.py``, ``utils.py``,
``train_model.py``): the head is ``Linear(num_classes, bits)`` on the logits with no activation
(``activation="tanh"`` is an option here); the proxy codes follow ``calc_train_codes`` (random
normal ``V`` and sign-of-normal ``B`` to start, 15 iterations, ``sigma = 1``, ``delta = 1e-4``,
one-hot labels; ``proxy_hash_codes`` equals a float64 transliteration of it given the same start,
see the tests); mAP follows ``calc_map_k`` (relevance: the query and database item share a label;
Hamming distance ``(bits - q . r) / 2``; average precision over the ranks of the relevant items;
queries without any relevant item count 0 in the mean; on rankings without ties it equals the
official function, max abs diff 1.2e-7 over 300 random cases, the official one computing in
float32; checked outside this suite).

Differs: binary codes use ``x >= 0 -> +1`` (``torch.sign`` maps an exact 0 to 0); ties in Hamming
distance are broken by database order (a stable sort; the official ``torch.sort`` is not stable),
which makes the mAP a deterministic function of the codes; ``top_k`` is the usual mAP@k (average
precision over the relevant items among the first ``k`` ranks; the official ``k`` instead caps the
number of relevant items averaged over).

Shape:
    :class:`HashHead`: ``(B, in_features) -> (B, bits)``. :class:`HashingClassifier`:
    ``(B, ...) -> ((B, num_classes), (B, bits))``. :func:`hamming_map`: codes ``(Q, bits)`` and
    ``(N, bits)``, labels ``(Q,)``/``(N,)`` class indices or ``(Q, K)``/``(N, K)`` multi-hot -> scalar.

Example:
    >>> codes = binarize(torch.randn(6, 16))
    >>> labels = torch.tensor([0, 0, 1, 1, 2, 2])
    >>> float(hamming_map(codes, codes, labels, labels)) > 0
    True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["HashHead", "HashingClassifier", "binarize", "proxy_hash_codes", "hamming_map"]


def binarize(x: torch.Tensor) -> torch.Tensor:
    """Binary codes in ``{-1, +1}`` (same dtype): ``+1`` where ``x >= 0``."""
    return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)


class HashHead(nn.Module):
    """A linear map to ``bits`` real outputs, optionally squashed by ``tanh``; :meth:`codes` gives
    the binary codes.

    Args:
        in_features: input width (EET: the number of classes, the head sits on the logits).
        bits: code length.
        activation: ``None`` (EET) or ``"tanh"``.
    """

    def __init__(self, in_features: int, bits: int, activation: str | None = None) -> None:
        super().__init__()
        if bits < 1 or in_features < 1:
            raise ValueError(f"in_features and bits must be positive, got {in_features}, {bits}")
        if activation not in (None, "tanh"):
            raise ValueError(f"activation must be None or 'tanh', got {activation!r}")
        self.bits, self.activation = bits, activation
        self.fc = nn.Linear(in_features, bits)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.trunc_normal_(self.fc.weight, std=0.02)  # the official ViT's init for every Linear
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        return torch.tanh(y) if self.activation == "tanh" else y

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_features) -> (B, bits)`` codes in ``{-1, +1}``."""
        return binarize(self(x))

    def extra_repr(self) -> str:
        return f"bits={self.bits}, activation={self.activation}"


class HashingClassifier(nn.Module):
    """A classifier with EET's hashing head on its logits: ``forward`` returns ``(logits, codes)``
    (real-valued codes for training; :meth:`hash` gives the binary ones).

    Args:
        model: any classifier with ``num_classes`` outputs.
        bits: code length.
        num_classes: the classifier's output width (default ``model.num_classes``).
        activation: of the head, ``None`` (EET) or ``"tanh"``.
    """

    def __init__(
        self, model: nn.Module, bits: int, num_classes: int | None = None, activation: str | None = None
    ) -> None:
        super().__init__()
        num_classes = num_classes if num_classes is not None else getattr(model, "num_classes", None)
        if not num_classes:
            raise ValueError("give num_classes: the model has no num_classes attribute")
        self.model = model
        self.num_classes = int(num_classes)
        self.head_hash = HashHead(self.num_classes, bits, activation)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model(x)
        return logits, self.head_hash(logits)

    @torch.no_grad()
    def hash(self, x: torch.Tensor) -> torch.Tensor:
        """Binary ``(B, bits)`` codes of ``x``."""
        return binarize(self(x)[1])


def proxy_hash_codes(
    labels: torch.Tensor,
    bits: int,
    *,
    num_classes: int | None = None,
    iters: int = 15,
    delta: float = 1e-4,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """EET's proxy codes of the training set: ``(n, bits)`` codes in ``{-1, +1}`` (float64) that a
    linear map of the one-hot labels predicts well.

    With one-hot labels ``L (K, n)``, real codes ``V (bits, n)``, binary codes ``B`` and a rotation
    ``R``, each iteration sets ``B = sign(R V)``, ``U = L V^T (V V^T)^+``,
    ``V = (U^T U + delta R^T R)^+ (U^T L + delta R^T B)`` and ``R = P Q^T`` from the SVD
    ``B V^T = P S Q^T``. The returned codes are the ``B`` of the last iteration.

    Args:
        labels: ``(n,)`` class indices or ``(n, K)`` one-hot/multi-hot labels.
        bits: code length.
        num_classes: ``K`` for class indices (default ``labels.max() + 1``).
        iters: iterations (official: 15).
        delta: weight of the binary-code term (official: 1e-4).
        generator: for the random start (``V`` normal, ``B`` the sign of a normal draw).
    """
    if labels.ndim == 1:
        labels = F.one_hot(labels.long(), num_classes or int(labels.max()) + 1)
    if labels.ndim != 2:
        raise ValueError(f"labels must be (n,) indices or (n, K) multi-hot, got {tuple(labels.shape)}")
    if bits < 1 or iters < 1:
        raise ValueError(f"bits and iters must be positive, got {bits}, {iters}")
    lab = labels.T.double().cpu()  # (K, n)
    n = lab.shape[1]
    v = torch.randn(bits, n, dtype=torch.float64, generator=generator)
    b = torch.randn(bits, n, dtype=torch.float64, generator=generator).sign()
    r = _procrustes(b @ v.T)
    for _ in range(iters):
        b = torch.where(r @ v >= 0, 1.0, -1.0).double()  # (bits, n)
        u = lab @ v.T @ torch.linalg.pinv(v @ v.T)  # (K, bits)
        v = torch.linalg.pinv(u.T @ u + delta * r.T @ r) @ (u.T @ lab + delta * r.T @ b)  # (bits, n)
        r = _procrustes(b @ v.T)
    return b.T.contiguous().to(labels.device)


def _procrustes(m: torch.Tensor) -> torch.Tensor:
    u, _, vh = torch.linalg.svd(m)
    return u @ vh


def _relevance(query_labels: torch.Tensor, db_labels: torch.Tensor) -> torch.Tensor:
    if query_labels.ndim == 1 and db_labels.ndim == 1:
        return query_labels[:, None] == db_labels[None, :]
    if query_labels.ndim == 2 and db_labels.ndim == 2:
        return query_labels.double() @ db_labels.double().T > 0
    raise ValueError(f"labels must both be class indices (n,) or both multi-hot (n, K), got "
                     f"{tuple(query_labels.shape)}, {tuple(db_labels.shape)}")  # fmt: skip


@torch.no_grad()
def hamming_map(
    query_codes: torch.Tensor,
    db_codes: torch.Tensor,
    query_labels: torch.Tensor,
    db_labels: torch.Tensor,
    *,
    top_k: int | None = None,
    chunk: int = 256,
) -> torch.Tensor:
    """Mean average precision of Hamming ranking (see the module docstring).

    Each query ranks the database by Hamming distance (ties: database order). Its average precision
    is the mean, over the relevant items among the first ``top_k`` ranks (all by default), of the
    precision at their ranks; 0 when there is none. Returns the mean over all queries.

    Args:
        query_codes, db_codes: ``(Q, bits)``, ``(N, bits)`` codes in ``{-1, +1}``.
        query_labels, db_labels: class indices ``(Q,)``, ``(N,)`` or multi-hot ``(Q, K)``, ``(N, K)``
            (relevant: a shared label).
        top_k: ranks to evaluate (``None``: all ``N``).
        chunk: queries per batch (memory ``chunk x N``).
    """
    if query_codes.ndim != 2 or db_codes.ndim != 2 or query_codes.shape[1] != db_codes.shape[1]:
        raise ValueError(f"codes must be (Q, bits) and (N, bits), got {tuple(query_codes.shape)}, "
                         f"{tuple(db_codes.shape)}")  # fmt: skip
    if len(query_labels) != len(query_codes) or len(db_labels) != len(db_codes):
        raise ValueError("one label per code needed")
    n, bits = db_codes.shape
    k = n if top_k is None else top_k
    if not 1 <= k <= n:
        raise ValueError(f"top_k must be in [1, {n}], got {top_k}")
    db = db_codes.double()
    total = torch.zeros((), dtype=torch.float64)
    ranks = torch.arange(1, k + 1, dtype=torch.float64, device=db.device)
    for s in range(0, len(query_codes), chunk):
        q = query_codes[s : s + chunk].double()
        dist = 0.5 * (bits - q @ db.T)  # (q, N) Hamming distances
        order = dist.argsort(dim=1, stable=True)[:, :k]
        rel = _relevance(query_labels[s : s + chunk], db_labels).gather(1, order).double()  # (q, k)
        hits = rel.sum(1)
        precision = rel.cumsum(1) / ranks  # precision at every rank
        ap = (precision * rel).sum(1) / hits.clamp(min=1)
        total += ap.sum().cpu()
    return total / len(query_codes)
