"""subband: wavelet and Fourier methods, modern vision architectures and tools to inspect and shrink them."""

__version__ = "0.1.0"

from . import wavelets  # noqa: E402
from .models import create_model, list_models, load_model, model_info, register_model, save_model  # noqa: E402

__all__ = ["wavelets", "create_model", "list_models", "model_info", "register_model", "save_model", "load_model"]
