"""Image transforms: intensity presets (raw intensities -> model RGB) and the model-input geometry."""

from samia.transforms.geometry import Letterbox
from samia.transforms.intensity import PRESETS, IntensityPreset, default_preset, get_preset, to_rgb_uint8

__all__ = ["PRESETS", "IntensityPreset", "Letterbox", "default_preset", "get_preset", "to_rgb_uint8"]
