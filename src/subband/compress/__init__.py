"""Make models small and fast: deploy-time rewrites that return a new module."""

from .adapters import LoRA, WaRA, adapter_parameters, add_adapters, merge_adapters, unmerge_adapters
from .conv_bn import convbn_mode
from .export import OnnxExportError, export_onnx
from .factorized import FactorizedConv2d, discrete_wave_frequency, wave_equation_dataset, wave_step
from .fuse import fuse

__all__ = ["convbn_mode", "fuse"]
__all__ += ["LoRA", "WaRA", "add_adapters", "merge_adapters", "unmerge_adapters", "adapter_parameters"]
__all__ += ["export_onnx", "OnnxExportError"]
__all__ += ["FactorizedConv2d", "wave_equation_dataset", "wave_step", "discrete_wave_frequency"]
