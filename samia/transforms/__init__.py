"""Image transforms: intensity presets (raw intensities -> model RGB) and the model-input geometry."""

from samia.transforms.geometry import INPUT_PIPELINES, InputGeometry, Letterbox, input_geometry
from samia.transforms.intensity import (
    PRESETS,
    IntensityPreset,
    default_preset,
    explain_preset,
    get_preset,
    gray_to_rgb,
    preset_for,
    to_rgb_uint8,
    volume_to_uint8,
)

__all__ = [
    "INPUT_PIPELINES",
    "PRESETS",
    "InputGeometry",
    "IntensityPreset",
    "Letterbox",
    "input_geometry",
    "default_preset",
    "explain_preset",
    "get_preset",
    "gray_to_rgb",
    "preset_for",
    "to_rgb_uint8",
    "volume_to_uint8",
]
