"""Registered architectures: ``create_model(name, **overrides)``, ``list_models(pattern)``."""

from . import (  # noqa: F401  (register the variants)
    affnet,
    channelvit,
    convnext,
    convnext_dcls,
    crossvit,
    cvt,
    dhvt,
    duoformer,
    espcn,
    hornet,
    lsnet,
    mobilemamba,
    nextvit,
    spartan,
    svt,
    swin,
    uniformer,
    unireplknet,
    vit,
    wavemix,
)
from ._checkpoint import load_model, save_model
from ._registry import Paper, create_model, list_models, model_info, register_model

__all__ = ["Paper", "create_model", "list_models", "model_info", "register_model", "save_model", "load_model"]
