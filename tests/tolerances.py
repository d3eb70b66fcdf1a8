"""One tolerance table by dtype for every numeric comparison in the tests."""

import torch

TOL = {
    torch.float64: dict(rtol=1e-10, atol=1e-10),
    torch.float32: dict(rtol=1e-4, atol=1e-4),
    torch.float16: dict(rtol=1e-2, atol=2e-2),
    torch.bfloat16: dict(rtol=5e-2, atol=1e-1),
}


def assert_close(actual, expected, dtype=None):
    """Compare a tensor with a tensor or numpy array under the tolerance of ``dtype``."""
    if not isinstance(expected, torch.Tensor):
        expected = torch.as_tensor(expected, dtype=torch.float64)
    dtype = dtype or actual.dtype
    assert tuple(actual.shape) == tuple(expected.shape), f"shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    torch.testing.assert_close(actual.double().cpu(), expected.double().cpu(), **TOL[dtype])
