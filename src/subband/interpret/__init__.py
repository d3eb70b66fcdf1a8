"""Look inside any model: linear interpreters (LinearScope), ..."""

from .linear_scope import SUPPORTED_UNITS, LinearInterpreter, LinearScope
from .orthogonality import (
    conv_singular_values,
    orthogonal_conv_exists,
    orthogonal_conv_kernel,
    orthogonality_error,
    orthogonality_regularizer,
)
from .receptive_field import effective_receptive_field, erf_summary, save_erf_png

__all__ = ["LinearScope", "LinearInterpreter", "SUPPORTED_UNITS"]
__all__ += ["conv_singular_values", "orthogonality_regularizer", "orthogonality_error"]
__all__ += ["orthogonal_conv_exists", "orthogonal_conv_kernel"]
__all__ += ["effective_receptive_field", "erf_summary", "save_erf_png"]
