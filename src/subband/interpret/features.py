"""Off-the-shelf features ("CNN Features off-the-shelf: an Astounding Baseline for Recognition",
Sharif Razavian, Azizpour, Sullivan, Carlsson; CVPRW 2014, arXiv 1403.6382): the activations of a
network trained on one task, pooled at some depth, with a linear classifier on top, as a baseline
for another task.

:func:`extract_features` pools any model's features: the pre-logits of a subband classifier
(``forward_head(..., pre_logits=True)``), the globally averaged map of one stage (``stage=i``, via
``forward_intermediates``), or a plain module's output (averaged over its spatial axes if it is a
map). :func:`linear_probe` fits a linear SVM (scikit-learn ``LinearSVC`` on standardised
features, as the paper's linear SVM) and returns the test accuracy.

Example:
    >>> net = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU())
    >>> extract_features(net, torch.randn(5, 1, 12, 12)).shape
    torch.Size([5, 8])
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["extract_features", "linear_probe"]


@torch.no_grad()
def extract_features(
    model: nn.Module, images: torch.Tensor, stage: int | None = None, batch_size: int = 256
) -> torch.Tensor:
    """``(N, D)`` pooled features of ``images`` (the model is put in eval mode).

    Args:
        model: a subband classifier or any module returning ``(B, D)`` or ``(B, C, ...)``.
        images: ``(N, C, H, W)``.
        stage: index of the stage whose output to pool (subband classifiers); ``None``: the
            pre-logits (or the module's output).
        batch_size: images per forward pass.
    """
    model.eval()
    device = next((p.device for p in model.parameters()), images.device)
    outs = []
    for x in images.split(batch_size):
        x = x.to(device)
        if stage is not None:
            if not hasattr(model, "forward_intermediates"):
                raise ValueError(f"stage= needs a model with forward_intermediates, got {type(model).__name__}")
            y = model.forward_intermediates(x, [stage])[0]
        elif hasattr(model, "forward_head") and hasattr(model, "forward_features"):
            y = model.forward_head(model.forward_features(x), pre_logits=True)
        else:
            y = model(x)
        if y.ndim > 2:
            y = y.flatten(2).mean(-1)  # (B, C, ...) -> (B, C)
        outs.append(y.float().cpu())
    return torch.cat(outs)


def linear_probe(
    train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor, c: float = 1.0
) -> float:
    """Test accuracy of a linear SVM (standardised features) fitted on the training features."""
    try:
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import LinearSVC
    except ImportError as e:  # pragma: no cover - optional dependency
        raise ImportError("linear_probe needs scikit-learn: pip install 'subband[demo]'") from e
    clf = make_pipeline(StandardScaler(), LinearSVC(C=c, max_iter=20000))
    clf.fit(train_x.flatten(1).numpy(), train_y.numpy())
    return float((clf.predict(test_x.flatten(1).numpy()) == test_y.numpy()).mean())
