"""subband: wavelet and Fourier methods, modern vision architectures and tools to inspect and shrink them."""

__version__ = "0.1.0"
