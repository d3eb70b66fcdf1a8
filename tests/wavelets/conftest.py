import pytest


@pytest.fixture
def torch_passes(monkeypatch):
    """The C library set aside (:mod:`subband.wavelets._native`): the transforms run as PyTorch
    operations, the GPU's path."""
    from subband.wavelets import _native

    monkeypatch.setattr(_native, "usable", lambda *ts: False)


@pytest.fixture(params=["c", "torch"])
def backend(request):
    """1-D and 2-D transforms on CPU run in the C library where it is built, else as PyTorch
    operations, the GPU's path: tests that take this fixture check both."""
    from subband.wavelets import _native

    if request.param == "c" and _native.library() is None:
        pytest.skip(f"the C library is {_native.status()}")
    if request.param == "torch":
        request.getfixturevalue("torch_passes")
    return request.param
