"""ONNX export of any model: :func:`export_onnx` tries PyTorch's TorchScript-based exporter
first (fast; handles the DWT, the large-kernel and gated convolutions), then the ``torch.export``
based one (``dynamo=True``; it also handles FFTs and custom autograd functions such as LSNet's
aggregation), and checks the file with onnxruntime against the PyTorch outputs when onnxruntime is
installed. A model that neither exporter can express raises :class:`OnnxExportError` with both
reasons.

Example (needs ``onnx``; ``onnxruntime`` for the check):
    >>> path = export_onnx(subband.create_model("espcn_x3").eval(), "/tmp/espcn.onnx")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

import torch
from torch import nn

__all__ = ["export_onnx", "OnnxExportError"]


class OnnxExportError(RuntimeError):
    """Raised when a model cannot be expressed in ONNX (the message says why)."""


def _check(path: Path, model: nn.Module, example: torch.Tensor, atol: float) -> float | None:
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {session.get_inputs()[0].name: example.detach().cpu().numpy()})[:1]
    with torch.no_grad():
        want = model(example)
    err = float((torch.from_numpy(out) - want.detach().cpu()).abs().max())
    if err > atol * max(1.0, float(want.abs().max())):
        raise OnnxExportError(f"onnxruntime's output differs from PyTorch's by {err:.3g} (tolerance {atol})")
    return err


def export_onnx(
    model: nn.Module,
    path: str | Path,
    example: torch.Tensor | None = None,
    opset: int = 18,
    check: bool = True,
    atol: float = 1e-4,
) -> Path:
    """Write ``model`` (put in eval mode) to ``path`` as ONNX and return the path.

    Args:
        model: any module taking one tensor.
        path: output file.
        example: an input for tracing (default: the model's default input, batch 1).
        opset: ONNX opset.
        check: compare onnxruntime's output with PyTorch's (when onnxruntime is installed).
        atol: tolerance of the check, relative to the output's scale.
    """
    from ..models._profile import default_input

    model = model.eval()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = default_input(model, 1) if example is None else example
    reasons = []
    quiet = contextlib.redirect_stdout(io.StringIO())
    with warnings.catch_warnings(), quiet:
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=opset)
        except Exception as e:  # noqa: BLE001 - any exporter failure: try the other one
            reasons.append(f"TorchScript exporter: {str(e).splitlines()[0]}")
            level = logging.root.manager.disable
            logging.disable(logging.WARNING)
            try:
                torch.onnx.export(model, (x,), dynamo=True, opset_version=opset, verbose=False).save(str(path))
            except Exception as e2:  # noqa: BLE001
                reasons.append(f"torch.export exporter: {str(e2).splitlines()[0]}")
            finally:
                logging.disable(level)
    if len(reasons) == 2:
        raise OnnxExportError(f"{type(model).__name__} cannot be exported to ONNX: " + "; ".join(reasons))
    if check:
        _check(path, model, x, atol)
    return path
