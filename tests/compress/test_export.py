"""ONNX export: onnxruntime's outputs equal PyTorch's within 1e-4 for the exported models; a
model neither exporter can express says why."""

import pytest
import torch
from torch import nn

import subband
from subband.compress import OnnxExportError, export_onnx

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

FAST = ["espcn_x3", "wavemix_lite_144_7", "convnext_atto", "unireplknet_a"]


def _run(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])


@pytest.mark.parametrize("name", FAST)
def test_export_matches_pytorch(name, tmp_path):
    from subband.models._profile import default_input

    torch.manual_seed(0)
    model = subband.create_model(name).eval()
    x = default_input(model, 2)
    path = export_onnx(model, tmp_path / f"{name}.onnx", example=x)
    with torch.no_grad():
        want = model(x)
    torch.testing.assert_close(_run(path, x), want, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in subband.list_models() if n not in FAST])
def test_export_every_model(name, tmp_path):
    if (subband.model_info(name).params or 0) > 30e6:
        pytest.skip("large model")
    model = subband.create_model(name).eval()
    try:
        export_onnx(model, tmp_path / f"{name}.onnx")  # checks against onnxruntime itself
    except OnnxExportError as e:
        assert "cannot be exported" in str(e) or "differs" in str(e)
        pytest.xfail(str(e))


def test_shifted_window_attention_exports(tmp_path):
    """Swin's region mask (a boolean identity once came out as an EyeLike node onnxruntime cannot run)."""
    from subband.layers import WindowAttention

    torch.manual_seed(0)
    layer = WindowAttention(16, 2, window_size=4, shift=2).eval()
    x = torch.randn(2, 6, 10, 16)  # padded to whole windows inside
    path = export_onnx(layer, tmp_path / "window.onnx", example=x)  # checked against onnxruntime
    with torch.no_grad():
        torch.testing.assert_close(_run(path, x), layer(x), rtol=1e-4, atol=1e-4)


class _Unexportable(nn.Module):
    def forward(self, x):
        return torch.linalg.eigvals(x @ x.transpose(-1, -2)).real  # no ONNX operator for eigvals


def test_unexportable_model_says_why(tmp_path):
    with pytest.raises(OnnxExportError, match="cannot be exported"):
        export_onnx(_Unexportable(), tmp_path / "x.onnx", example=torch.randn(2, 3, 3))
