"""torch.compile traces the functions and modules and gives the eager results."""

import torch

import subband.wavelets as sw


def test_compile_functions_and_modules():
    x = torch.randn(2, 3, 32, 32)

    def roundtrip(t):
        return sw.waverec2(sw.wavedec2(t, "db2", mode="symmetric", level=2), "db2", mode="symmetric")

    torch.testing.assert_close(torch.compile(roundtrip)(x), roundtrip(x))
    m = sw.DWT2d("haar", level=2, mode="periodization")
    out, ref = torch.compile(m)(x), m(x)
    torch.testing.assert_close(out[0], ref[0])
    torch.testing.assert_close(out[1][2], ref[1][2])
