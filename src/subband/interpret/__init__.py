"""Look inside any model: linear interpreters (LinearScope), filter statistics, spectra,
orthogonality of convolutions, effective receptive fields, patch robustness, off-the-shelf features."""

from .features import extract_features, linear_probe
from .filters import (
    collect_filters,
    filter_distance,
    filter_statistics,
    flag_degenerate,
    layer_filter_statistics,
    save_filter_pca_png,
)
from .linear_scope import SUPPORTED_UNITS, LinearInterpreter, LinearScope
from .orthogonality import (
    conv_singular_values,
    orthogonal_conv_exists,
    orthogonal_conv_kernel,
    orthogonality_error,
    orthogonality_regularizer,
)
from .receptive_field import effective_receptive_field, erf_summary, save_erf_png
from .robustness import (
    CORRUPTIONS,
    corrupt_patches,
    evaluate_patch_robustness,
    patch_attack,
    set_attention_temperature,
)
from .spectrum import SpectralDetector, azimuthal_average, band_profile, fit_decay, power_spectrum, spectral_features

__all__ = ["LinearScope", "LinearInterpreter", "SUPPORTED_UNITS"]
__all__ += ["conv_singular_values", "orthogonality_regularizer", "orthogonality_error"]
__all__ += ["orthogonal_conv_exists", "orthogonal_conv_kernel"]
__all__ += ["effective_receptive_field", "erf_summary", "save_erf_png"]
__all__ += ["collect_filters", "layer_filter_statistics", "filter_statistics", "flag_degenerate"]
__all__ += ["filter_distance", "save_filter_pca_png"]
__all__ += ["power_spectrum", "azimuthal_average", "fit_decay", "band_profile", "spectral_features", "SpectralDetector"]
__all__ += ["CORRUPTIONS", "corrupt_patches", "patch_attack", "evaluate_patch_robustness", "set_attention_temperature"]
__all__ += ["extract_features", "linear_probe"]
