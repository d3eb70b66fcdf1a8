"""The model registry: one name per architecture variant, built with keyword overrides.

    @register_model(paper=Paper(title=..., arxiv="1609.05158", params=22_729, ...))
    def espcn_x3(**kwargs) -> ESPCN:
        return ESPCN(upscale=3, **kwargs)

    model = create_model("espcn_x3", in_channels=3)

Every model built by :func:`create_model` carries ``model.config`` = ``{"name", "overrides"}``,
which is what a checkpoint stores to rebuild it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from torch import nn

from ._features import FeaturePyramid

__all__ = ["Paper", "register_model", "create_model", "list_models", "model_info"]

M = TypeVar("M", bound=Callable[..., nn.Module])


@dataclass(frozen=True)
class Paper:
    """What the paper (or its official configuration) reports for one registered variant.

    Args:
        title: paper title.
        arxiv: arXiv id.
        params: reported parameter count (exact where the official configuration was built and
            counted, else the paper's rounded figure), or None when the paper gives none.
        gflops: reported GFLOPs (multiply-adds, as most papers count them), or None.
        input_size: input the FLOPs refer to, e.g. ``(3, 224, 224)``.
        params_exact: True when ``params`` is an exact count (the contract test then allows 1%).
        source: where the configuration was checked.
    """

    title: str
    arxiv: str
    params: int | None = None
    gflops: float | None = None
    input_size: tuple[int, ...] | None = None
    params_exact: bool = True
    source: str = ""
    notes: str = ""


@dataclass(frozen=True)
class _Entry:
    name: str
    fn: Callable[..., nn.Module]
    paper: Paper
    defaults: dict[str, Any] = field(default_factory=dict)


_REGISTRY: dict[str, _Entry] = {}


def register_model(paper: Paper, name: str | None = None) -> Callable[[M], M]:
    """Decorator registering a builder under its function name (or ``name``); duplicates raise."""

    def wrap(fn: M) -> M:
        key = name or fn.__name__
        if key in _REGISTRY:
            raise ValueError(f"a model named {key!r} is already registered")
        _REGISTRY[key] = _Entry(key, fn, paper)
        return fn

    return wrap


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching a shell-style ``pattern`` (``"espcn_*"``), sorted."""
    return sorted(n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern))


def model_info(name: str) -> Paper:
    """The paper metadata of a registered model."""
    return _entry(name).paper


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Build the registered model ``name``; keyword ``overrides`` go to its constructor.

    ``features_only=True`` (with optional ``out_indices``) returns the classifier's trunk as a
    :class:`~subband.models._features.FeaturePyramid` that outputs a list of feature maps.
    """
    kwargs = dict(overrides)
    features_only = kwargs.pop("features_only", False)
    out_indices = kwargs.pop("out_indices", None)
    if out_indices is not None and not features_only:
        raise ValueError("out_indices only applies with features_only=True")
    model = _entry(name).fn(**kwargs)
    if features_only:
        model = FeaturePyramid(model, out_indices)
    model.config = {"name": name, "overrides": dict(overrides)}  # type: ignore[assignment]
    model.paper = _entry(name).paper  # type: ignore[assignment]
    return model


def _entry(name: str) -> _Entry:
    try:
        return _REGISTRY[name]
    except KeyError:
        close = [n for n in _REGISTRY if name.split("_")[0] in n][:8]
        hint = f"; similar: {', '.join(close)}" if close else ""
        raise ValueError(f"unknown model {name!r}{hint} (see subband.list_models())") from None
