import pytest


@pytest.fixture(params=["c", "torch"])
def backend(request, monkeypatch):
    """2-D transforms on CPU run in the C library where it is built (:mod:`subband.wavelets._native`),
    else as PyTorch operations, the GPU's path: tests that take this fixture check both."""
    from subband.wavelets import _native

    if request.param == "c" and _native.library() is None:
        pytest.skip(f"the C library is {_native.status()}")
    if request.param == "torch":
        monkeypatch.setattr(_native, "usable", lambda *ts: False)
    return request.param
