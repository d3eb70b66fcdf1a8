"""Reusable blocks, one concept per file."""

from .aff import AFFMixer
from .attention import (
    Attention,
    CrossAttention,
    RelativePositionBias,
    WindowAttention,
    attend,
    window_partition,
    window_reverse,
)
from .conv_bn import BNLinear, ConvBN, fold_bn, fuse_submodules
from .dcls import DclsConv1d, DclsConv2d, DclsConv3d, convert_dcls_package_state_dict, dcls_kernel
from .deform_conv import DeformConv2d, deform_conv2d
from .dilated_reparam import DilatedReparamBlock, dilated_to_dense
from .drop import DropPath, drop_path
from .fdconv import FDConv, FrequencyBandModulation, convert_to_fdconv, fdconv2d, fdw_kernels, frequency_bands
from .gmm_mask import GaussianMixtureMask, gaussian_mixture_mask, squared_offsets
from .gnconv import GlobalLocalFilter, GnConv, global_filter, gnconv_widths
from .inverted_residual import InvertedResidual
from .lsconv import LKP, SKA, LSConv, ska
from .mlp import Mlp
from .modality import AudioToMap, PointCloudToMap, TimeSeriesToMap, VideoToMap, audio_to_map, map_to_video, video_to_map
from .norm import LayerNorm2d, layer_norm_2d
from .pyramid_conv import IntegratedBatchNorm, LevelConv, PyramidConv, SEPCNeck, integrated_batch_norm
from .selective_scan import selective_scan
from .squeeze_excite import SqueezeExcite, make_divisible
from .ss2d import SCANS, SS2D, cross_merge, cross_scan
from .svt import ScatterMixer, complex_einstein_mlp, einstein_mix
from .transformer_block import LayerScale, TransformerBlock
from .wavemix import WaveMixBlock
from .weighted_conv import WeightedConv1d, WeightedConv2d, WeightedConv3d, weighted_conv, weighted_conv_density
from .wersa import WERSA

__all__ = ["DropPath", "drop_path", "LayerNorm2d", "layer_norm_2d", "Mlp", "WaveMixBlock"]
__all__ += ["ConvBN", "BNLinear", "fold_bn", "fuse_submodules", "SqueezeExcite", "make_divisible"]
__all__ += ["DilatedReparamBlock", "dilated_to_dense"]
__all__ += ["AudioToMap", "PointCloudToMap", "TimeSeriesToMap", "VideoToMap"]
__all__ += ["audio_to_map", "map_to_video", "video_to_map"]
__all__ += ["GnConv", "GlobalLocalFilter", "global_filter", "gnconv_widths"]
__all__ += ["DclsConv1d", "DclsConv2d", "DclsConv3d", "dcls_kernel", "convert_dcls_package_state_dict"]
__all__ += ["WeightedConv1d", "WeightedConv2d", "WeightedConv3d", "weighted_conv", "weighted_conv_density"]
__all__ += ["ska", "SKA", "LKP", "LSConv"]
__all__ += ["attend", "Attention", "CrossAttention", "WindowAttention", "RelativePositionBias"]
__all__ += ["window_partition", "window_reverse"]
__all__ += ["TransformerBlock", "LayerScale"]
__all__ += ["selective_scan", "SS2D", "SCANS", "cross_scan", "cross_merge"]
__all__ += ["FDConv", "FrequencyBandModulation", "convert_to_fdconv", "fdconv2d", "fdw_kernels", "frequency_bands"]
__all__ += ["WERSA"]
__all__ += ["AFFMixer", "InvertedResidual"]
__all__ += ["DeformConv2d", "deform_conv2d"]
__all__ += ["LevelConv", "PyramidConv", "IntegratedBatchNorm", "integrated_batch_norm", "SEPCNeck"]
__all__ += ["ScatterMixer", "complex_einstein_mlp", "einstein_mix"]
__all__ += ["GaussianMixtureMask", "gaussian_mixture_mask", "squared_offsets"]
