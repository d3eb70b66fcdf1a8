"""Make models small and fast: deploy-time rewrites that return a new module."""

from .adapters import LoRA, WaRA, adapter_parameters, add_adapters, merge_adapters, unmerge_adapters
from .conv_bn import convbn_mode
from .dimap import dimap_masks, dimap_modules, dimap_prune, dimap_scores
from .export import OnnxExportError, export_onnx
from .factorized import FactorizedConv2d, discrete_wave_frequency, wave_equation_dataset, wave_step
from .fuse import fuse
from .hashing import HashHead, HashingClassifier, binarize, hamming_map, proxy_hash_codes
from .lpvit import block_mask, block_scores, calibration_gradients, lpvit_curves, lpvit_prune
from .masks import WeightMask, apply_masks, finalize, get_masks, layer_positions, sparse_macs
from .token_prune import (
    EET_KEEP,
    EETLoss,
    TokenPruneBlock,
    capture_outputs,
    eet_distillation_loss,
    eet_token_scores,
    mask_top_patches,
    prune_tokens,
    record_token_scores,
    select_tokens,
)

__all__ = ["convbn_mode", "fuse"]
__all__ += ["prune_tokens", "TokenPruneBlock", "EET_KEEP", "eet_token_scores", "select_tokens", "record_token_scores"]
__all__ += ["capture_outputs", "mask_top_patches", "eet_distillation_loss", "EETLoss"]
__all__ += ["HashHead", "HashingClassifier", "binarize", "proxy_hash_codes", "hamming_map"]
__all__ += ["LoRA", "WaRA", "add_adapters", "merge_adapters", "unmerge_adapters", "adapter_parameters"]
__all__ += ["export_onnx", "OnnxExportError"]
__all__ += ["WeightMask", "apply_masks", "get_masks", "finalize", "sparse_macs", "layer_positions"]
__all__ += ["block_scores", "block_mask", "calibration_gradients", "lpvit_curves", "lpvit_prune"]
__all__ += ["dimap_scores", "dimap_modules", "dimap_masks", "dimap_prune"]
__all__ += ["FactorizedConv2d", "wave_equation_dataset", "wave_step", "discrete_wave_frequency"]
