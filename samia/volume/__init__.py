"""Volumes as a unit of work: segment an object through a CT/MR volume from one 3D box or a few
annotated slices, with any 2D SAM-family model (no model code here: it drives the predictor).

- :mod:`~samia.volume.prompts`: 3D boxes, key slices, the prompt of one object.
- :mod:`~samia.volume.session`: a volume under a model, each slice encoded at most once.
- :mod:`~samia.volume.propagation`: how a slice's answer prompts the next, and the stop rules.
- :mod:`~samia.volume.engine`: the scheduler (key slices, chains, one batch per slice).
- :mod:`~samia.volume.strategies`: ground-truth prompts and correction clicks for evaluation.
"""

from samia.volume.engine import ObjectVolume, SliceStep, VolumeSegmentation, segment_volume
from samia.volume.prompts import Box3D, KeySlice, VolumePrompt, box3d_of_mask
from samia.volume.propagation import (
    BOX3D_SETTINGS,
    KEY_SLICE_SETTINGS,
    PROJECTIONS,
    PropagationSettings,
    SliceAnswer,
)
from samia.volume.session import VolumeSession
from samia.volume.strategies import (
    VOLUME_STRATEGIES,
    Click3D,
    clicked_prompt,
    correction_click,
    largest_slice,
    volume_prompt,
)

__all__ = [
    "BOX3D_SETTINGS",
    "KEY_SLICE_SETTINGS",
    "PROJECTIONS",
    "VOLUME_STRATEGIES",
    "Box3D",
    "Click3D",
    "KeySlice",
    "ObjectVolume",
    "PropagationSettings",
    "SliceAnswer",
    "SliceStep",
    "VolumePrompt",
    "VolumeSegmentation",
    "VolumeSession",
    "box3d_of_mask",
    "clicked_prompt",
    "correction_click",
    "largest_slice",
    "segment_volume",
    "volume_prompt",
]
