"""TrainConfig: every knob of a training run, frozen, saved beside the run as JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["TrainConfig"]


@dataclass(frozen=True)
class TrainConfig:
    """One training run.

    Args:
        model: registered model name.
        model_overrides: keyword overrides for ``create_model``.
        epochs: passes over the training set.
        batch_size: images per step (global: split across processes under torchrun).
        lr: peak AdamW learning rate, reached after ``warmup_epochs``; cosine decay to 0 after.
        weight_decay: AdamW weight decay.
        warmup_epochs: linear warm-up length (may be fractional).
        label_smoothing: for classification's cross-entropy.
        clip_grad: max gradient norm (0: no clipping).
        seed: seeds initialisation, data order and dropout; equal seeds give equal runs.
        out_dir: where ``last.safetensors``, ``best.safetensors``, ``state.safetensors`` and
            ``metrics.jsonl`` go.
        eval_every: evaluate every this many epochs (and after the last).
    """

    model: str
    model_overrides: dict[str, Any] = field(default_factory=dict)
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.0
    clip_grad: float = 0.0
    seed: int = 0
    out_dir: str = "runs/run"
    eval_every: int = 1

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "eval_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.warmup_epochs < 0 or self.clip_grad < 0 or self.weight_decay < 0:
            raise ValueError("warmup_epochs, clip_grad and weight_decay must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
