"""Checkpoints that are safe to load: safetensors weights + the JSON config that rebuilds the model.

The config (registered name, constructor overrides, subband version) is stored in the safetensors
header's metadata, so a checkpoint is one file and loading never unpickles anything.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from ._registry import create_model

__all__ = ["save_model", "load_model", "read_config", "read_extra_tensors"]

_KEY = "subband"
#: tensors saved beside the weights (optimiser and RNG state of a training run) live under this prefix
EXTRA_PREFIX = "_extra/"


def save_model(
    model: nn.Module,
    path: str | os.PathLike,
    extra: dict[str, Any] | None = None,
    extra_tensors: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write ``model`` (built by ``create_model``) to ``path`` atomically; returns the path.

    ``extra`` is any JSON-serialisable information to keep beside the config (metrics, epoch);
    ``extra_tensors`` are more tensors to keep (a training run's optimiser state), read back with
    :func:`read_extra_tensors` and ignored by :func:`load_model`.
    """
    from .. import __version__

    config = getattr(model, "config", None)
    if not isinstance(config, dict) or "name" not in config:
        raise ValueError("only models built with subband.create_model can be saved (they carry .config)")
    meta = {"name": config["name"], "overrides": config.get("overrides", {}), "version": __version__}
    if extra:
        meta["extra"] = extra
    try:
        header = json.dumps(meta)
    except TypeError as e:
        raise ValueError(f"the model's overrides must be JSON-serialisable to be saved: {e}") from None
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    for k, v in (extra_tensors or {}).items():
        tensors[EXTRA_PREFIX + k] = v.detach().contiguous().cpu()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={_KEY: header})
        os.replace(tmp, path)  # atomic: a reader sees the old file or the new one, never half of one
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON config stored in a checkpoint, with a clear error for anything that is not one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable safetensors checkpoint ({e})") from None
    if _KEY not in meta:
        raise ValueError(f"{path}: a safetensors file without subband's config; was it written by save_model?")
    try:
        config = json.loads(meta[_KEY])
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: the stored config is not valid JSON ({e})") from None
    if not isinstance(config, dict) or "name" not in config:
        raise ValueError(f"{path}: the stored config has no model name")
    return config


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the model saved at ``path`` and load its weights (strictly: every key must match)."""
    config = read_config(path)
    model = create_model(config["name"], **config.get("overrides", {}))
    try:
        with safe_open(str(path), framework="pt", device=str(map_location)) as f:
            state = {k: f.get_tensor(k) for k in f.keys() if not k.startswith(EXTRA_PREFIX)}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise ValueError(f"{path}: the weights cannot be read, the file may be truncated or corrupted ({e})") from None
    missing = sorted(set(model.state_dict()) - set(state))
    unexpected = sorted(set(state) - set(model.state_dict()))
    if missing or unexpected:
        raise ValueError(
            f"{path}: weights do not fit {config['name']!r}: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f"{path}: weights do not fit {config['name']!r}: {e}") from None
    return model.to(map_location)


def read_extra_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The ``extra_tensors`` a checkpoint was saved with (empty if none)."""
    read_config(path)  # clear errors for files that are not checkpoints
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k[len(EXTRA_PREFIX) :]: f.get_tensor(k) for k in f.keys() if k.startswith(EXTRA_PREFIX)}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise ValueError(f"{path}: the saved tensors cannot be read ({e})") from None
