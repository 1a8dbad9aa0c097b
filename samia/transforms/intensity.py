"""Intensity presets: how raw intensities (HU, MR signal, 16-bit X-ray, RGB) become the ``(H, W, 3)``
uint8 RGB image a SAM-family model takes.

Three kinds of preset:

- ``window``: clip to ``[low, high]`` (e.g. Hounsfield units) and scale linearly to 0..255. Never
  fails: a constant image becomes a constant gray.
- ``percentile``: the ``low``-th and ``high``-th percentiles of all pixels (all channels jointly)
  give the range; clip and scale to 0..255. When that range is zero but the image is not constant
  (e.g. a sparse image, > 99.5 % background) the min-max range is used instead, so a small bright
  object is not lost. A constant image raises :class:`~samia.errors.InvalidImageError`.
- ``passthrough``: uint8 images are kept as they are; any other dtype is scaled min-max to 0..255
  (raises on a constant image).
- ``dicom``: the image file's own display window (DICOM *WindowCenter* ``c`` / *WindowWidth* ``w``,
  :attr:`samia.types.Image2D.window`) with DICOM's linear VOI rule (PS3.3 C.11.2.1.2.1): values up
  to ``c - 0.5 - (w - 1) / 2`` -> 0, above ``c - 0.5 + (w - 1) / 2`` -> 255, linear in between, i.e. a
  window with those bounds. An image without a window raises :class:`~samia.errors.InvalidImageError`.
- ``huang2024``: Huang et al.'s ``pre_grey_rgb2D.py``, exactly: a gray image is first repeated to
  three channels; ``lo, hi`` = the 0.95th and 99.5th percentiles of all values (note 0.95, not 0.5);
  clip; ``(x - min) / (max - min) * 255`` over the clipped image; pixels whose raw value is 0 are
  set to 0; then truncated to uint8 (``np.uint8``), not rounded. Raises on a constant image.

A Hounsfield window (the ``ct_*`` presets) applied to an image with no value below 0 issues an
:class:`~samia.errors.InputWarning`: CT in HU holds air (-1000) or fat (about -100), so such values
are probably not HU (an 8-bit export, or HU + 1024 stored unsigned) and the window shows them as
white.

Scaling rule, for the window, dicom, percentile and passthrough kinds: ``v = (clip(x, lo, hi) - lo) / (hi - lo) * 255`` in float64, rounded to
the nearest integer with ties to even (``numpy.rint``). E.g. window L40/W400 (``[-160, 240]`` HU)
maps -160 -> 0, 0 -> 102, 40 -> 128 (127.5 rounds to even), 240 -> 255. Gray results are repeated to
three channels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from samia.errors import ConfigurationError, InvalidImageError, warn_input
from samia.types import MODALITIES, Image2D, Volume

PRESET_KINDS = ("window", "percentile", "passthrough", "dicom", "huang2024")


@dataclass(frozen=True)
class IntensityPreset:
    """A named rule that maps raw intensities to 0..255.

    Attributes:
        name: e.g. ``"ct_soft_tissue"``.
        kind: one of :data:`PRESET_KINDS`.
        low: window: lower bound in the image's units (HU for CT) = level - width / 2;
            percentile: lower percentile in 0..100; passthrough: None.
        high: window: upper bound = level + width / 2; percentile: upper percentile; passthrough: None.
        units: the units a window's bounds are in (``"HU"`` for the CT windows, checked against the
            image), else None.
    """

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    units: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in PRESET_KINDS:
            raise ConfigurationError(f"preset {self.name!r}: unknown kind {self.kind!r}; choose one of {PRESET_KINDS}")
        if self.kind in ("passthrough", "dicom", "huang2024"):
            if self.low is not None or self.high is not None:
                raise ConfigurationError(f"preset {self.name!r}: a {self.kind} preset takes no low/high")
            return
        if self.low is None or self.high is None or not self.low < self.high:
            raise ConfigurationError(f"preset {self.name!r}: needs low < high, got {self.low}, {self.high}")
        if self.kind == "percentile" and not 0 <= self.low < self.high <= 100:
            raise ConfigurationError(f"preset {self.name!r}: percentiles must lie in 0..100")

    @classmethod
    def window(cls, name: str, level: float, width: float, units: str | None = None) -> IntensityPreset:
        """A window preset from its radiological level and width (same units as the image, e.g. HU)."""
        return cls(name, "window", level - width / 2, level + width / 2, units)

    def to_record(self) -> dict[str, Any]:
        """``{"name", "kind", "low", "high"}`` for result rows and run configs (JSON-serialisable)."""
        return {"name": self.name, "kind": self.kind, "low": self.low, "high": self.high}


PRESETS: dict[str, IntensityPreset] = {
    preset.name: preset
    for preset in (
        IntensityPreset.window("ct_soft_tissue", level=40, width=400, units="HU"),
        IntensityPreset.window("ct_lung", level=-600, width=1500, units="HU"),
        IntensityPreset.window("ct_bone", level=400, width=1800, units="HU"),
        IntensityPreset.window("ct_brain", level=40, width=80, units="HU"),
        IntensityPreset("percentile", "percentile", 0.5, 99.5),
        IntensityPreset("passthrough", "passthrough"),
        IntensityPreset("dicom", "dicom"),
        IntensityPreset("huang2024", "huang2024"),
    )
}
"""The built-in presets by name."""


def get_preset(name: str) -> IntensityPreset:
    """The built-in preset called ``name``; :class:`~samia.errors.ConfigurationError` listing the names if unknown."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigurationError(f"unknown intensity preset {name!r}; choose one of {', '.join(PRESETS)}") from None


def default_preset(modality: str, is_rgb: bool) -> IntensityPreset:
    """The preset used when none is asked for.

    RGB images -> ``passthrough`` (whatever the modality); CT -> ``ct_soft_tissue``; every other
    gray image (MR, US, X-ray, PET, ...) -> ``percentile`` (0.5-99.5).

    Raises:
        ConfigurationError: ``modality`` is not one of :data:`samia.types.MODALITIES`.
    """
    if modality not in MODALITIES:
        raise ConfigurationError(f"unknown modality {modality!r}; choose one of {', '.join(MODALITIES)}")
    if is_rgb:
        return PRESETS["passthrough"]
    if modality == "CT":
        return PRESETS["ct_soft_tissue"]
    return PRESETS["percentile"]


def preset_for(image: Image2D | Volume) -> IntensityPreset:
    """:func:`default_preset` of the image's modality, except for the CVPR 2024 challenge's ``.npz``
    files, whose ``imgs`` are already mapped to 0..255 by the challenge: ``passthrough``."""
    if str(image.path or "").lower().endswith(".npz"):
        return PRESETS["passthrough"]
    return default_preset(image.modality, isinstance(image, Image2D) and image.is_rgb)


def explain_preset(preset: IntensityPreset, image: Image2D | Volume) -> str:
    """``preset``'s name, why it applies to ``image`` and how to pick another, for a command's
    output: e.g. ``ct_soft_tissue (the CT default, L40/W400 HU; bone or lung: --preset ct_bone /
    ct_lung)``."""
    if preset != preset_for(image):
        return f"{preset.name} (asked for with --preset)"
    if preset.low is None or preset.high is None:  # passthrough: nothing to window
        from_challenge = str(image.path or "").lower().endswith(".npz")
        return (
            f"{preset.name} ({'the challenge file holds 0..255 already' if from_challenge else 'colour kept as it is'})"
        )
    if image.modality == "CT":
        level, width = (preset.low + preset.high) / 2, preset.high - preset.low
        return f"{preset.name} (the CT default, L{level:g}/W{width:g} HU; bone or lung: --preset ct_bone / ct_lung)"
    untagged = (
        "; a CT file without a modality tag (PNG, NIfTI) needs --modality CT" if image.modality == "other" else ""
    )
    return f"{preset.name} (the {image.modality} default: {preset.low:g}-{preset.high:g}th percentile window{untagged})"


def gray_to_rgb(array: np.ndarray) -> np.ndarray:
    """``(H, W, 3)``: an ``(H, W)`` plane in every channel (an ``(H, W, 3)`` array is returned as it is)."""
    return array if array.ndim == 3 else np.repeat(array[:, :, None], 3, axis=2)


def to_rgb_uint8(image: Image2D, preset: IntensityPreset) -> np.ndarray:
    """Map ``image`` to the RGB input of a SAM-family model with ``preset`` (rules in the module docstring).

    Args:
        image: ``(H, W)`` gray or ``(H, W, 3)`` RGB, any real dtype.
        preset: how to map intensities.

    Returns:
        ``(H, W, 3)`` uint8 array in 0..255, a new array (never a view of ``image.array``).

    Raises:
        InvalidImageError: an array that is not ``(H, W)`` or ``(H, W, 3)``, empty, or has NaN/Inf
            pixels; a constant image under a percentile or (non-uint8) passthrough preset.
    """
    array = image.array
    source = image.path or "<array>"
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)) or array.size == 0:
        raise InvalidImageError(source, f"expected a non-empty (H, W) or (H, W, 3) image, got shape {array.shape}")
    if preset.kind == "huang2024":
        _check_finite(array, source)
        return _huang2024(array, source)
    scaled = intensities_to_uint8(array, preset, source, image.window)
    return gray_to_rgb(scaled)


def volume_to_uint8(volume: Volume, preset: IntensityPreset) -> np.ndarray:
    """Map a whole volume to 0..255 with ``preset``, its range taken over the volume (percentiles of
    all voxels, not of each slice), so that every slice of one volume looks alike to the model.

    Returns:
        ``(Z, Y, X)`` uint8, a new array.

    Raises:
        ConfigurationError: the ``huang2024`` preset, a rule for single 2D images.
        InvalidImageError: as :func:`to_rgb_uint8`.
    """
    if preset.kind == "huang2024":
        raise ConfigurationError("the huang2024 preset is a rule for 2D images; choose another --preset for volumes")
    return intensities_to_uint8(volume.array, preset, volume.path or "<volume>", volume.window)


def intensities_to_uint8(
    array: np.ndarray, preset: IntensityPreset, source: str, window: tuple[float, float] | None = None
) -> np.ndarray:
    """The preset's rule on an array of any shape (``window``: the file's own, for ``dicom``).

    Returns:
        uint8 array of the same shape.

    Raises:
        InvalidImageError: NaN/Inf values; a constant array under a percentile or (non-uint8)
            passthrough preset; ``dicom`` without a window (each naming ``source``).
    """
    _check_finite(array, source)
    if preset.kind == "window":
        if preset.units == "HU":
            _check_hounsfield(array, source, preset.name)
        return _scale(array, preset.low, preset.high)  # type: ignore[arg-type]
    if preset.kind == "dicom":
        return _scale(array, *_dicom_window_bounds(window, source))
    if preset.kind == "passthrough" and array.dtype == np.uint8:
        return array.copy()
    return _scale(array, *_range(array, preset, source))


def _check_finite(array: np.ndarray, source: str) -> None:
    if array.dtype.kind == "f":
        nonfinite = array.size - int(np.count_nonzero(np.isfinite(array)))
        if nonfinite:
            raise InvalidImageError(source, f"contains {nonfinite} NaN/Inf pixels")


def _check_hounsfield(array: np.ndarray, source: str, preset: str) -> None:
    """Warn when an image under a Hounsfield window has no value below 0 (module docstring)."""
    minimum = float(array.min())
    if minimum >= 0:
        warn_input(
            source,
            f"values {minimum:g}..{float(array.max()):g} have nothing below 0, so they are probably not Hounsfield "
            f"units (CT holds air at -1000 and fat near -100; an 8-bit export or HU + 1024 stored unsigned looks "
            f"like this); the {preset} window shows them mostly white. Use --preset percentile, or the file's "
            "original values",
        )


def _dicom_window_bounds(window: tuple[float, float] | None, source: str) -> tuple[float, float]:
    """``(low, high)`` of DICOM's linear VOI function for the image's own window (module docstring)."""
    if window is None:
        raise InvalidImageError(
            source, "has no display window of its own (DICOM WindowCenter/WindowWidth); choose another preset"
        )
    center, width = window
    half = (width - 1) / 2 if width > 1 else 0.5
    return center - 0.5 - half, center - 0.5 + half


def _range(array: np.ndarray, preset: IntensityPreset, source: str) -> tuple[float, float]:
    """The ``(lo, hi)`` intensity range of a percentile or passthrough preset; raises on a constant image."""
    minimum, maximum = float(array.min()), float(array.max())
    if minimum == maximum:
        raise InvalidImageError(source, f"image is constant (all pixels = {minimum:g}); nothing to segment")
    if preset.kind == "percentile":
        assert preset.low is not None and preset.high is not None  # a percentile preset names both
        low, high = (float(v) for v in np.percentile(array, [preset.low, preset.high]))
        if low < high:
            return low, high
    return minimum, maximum


def _scale(array: np.ndarray, low: float, high: float) -> np.ndarray:
    """Clip to ``[low, high]`` and map linearly onto 0..255 (float64, rint), as uint8."""
    clipped = np.clip(array.astype(np.float64), low, high)
    return np.rint((clipped - low) / (high - low) * 255.0).astype(np.uint8)


HUANG2024_PERCENTILES = (0.95, 99.5)


def _huang2024(array: np.ndarray, source: str) -> np.ndarray:
    """``pre_grey_rgb2D.py``'s intensity rule (module docstring) -> ``(H, W, 3)`` uint8."""
    rgb = gray_to_rgb(array)
    values = rgb.astype(np.float64)
    low, high = np.percentile(values, HUANG2024_PERCENTILES)
    clipped = np.clip(values, low, high)
    minimum, maximum = clipped.min(), clipped.max()
    if minimum == maximum:
        raise InvalidImageError(
            source, f"image is constant after clipping to its percentiles ({minimum:g}); nothing to segment"
        )
    scaled = (clipped - minimum) / (maximum - minimum) * 255.0
    scaled[values == 0] = 0
    result: np.ndarray = scaled.astype(np.uint8)
    return result
