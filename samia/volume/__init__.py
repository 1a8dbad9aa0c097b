"""Volumes as a unit of work: segment an object through a CT/MR volume from one 3D box or a few
annotated slices, with any 2D SAM-family model (no model code here: it drives the predictor), or
with SAM 2's own memory tracking.

- :mod:`~samia.volume.prompts`: 3D boxes, key slices, the prompt of one object.
- :mod:`~samia.volume.session`: a volume under a model, each slice encoded at most once.
- :mod:`~samia.volume.propagation`: how a slice's answer prompts the next, and the stop rules.
- :mod:`~samia.volume.engine`: the scheduler (key slices, chains, one batch per slice).
- :mod:`~samia.volume.strategies`: ground-truth prompts and correction clicks for evaluation.
- :mod:`~samia.volume.memory`: SAM 2's memory tracking (SAM 2 family models) and the choice of
  engine for a model.

Exports load lazily: segmenting one image (``samia.segmentation``) does not import the evaluation
strategies and scipy with them.
"""

from samia.lazy import lazy_exports

_EXPORTS = {
    "ObjectVolume": "samia.volume.engine",
    "SliceStep": "samia.volume.engine",
    "VolumeSegmentation": "samia.volume.engine",
    "segment_volume": "samia.volume.engine",
    "Box3D": "samia.volume.prompts",
    "KeySlice": "samia.volume.prompts",
    "VolumePrompt": "samia.volume.prompts",
    "box3d_of_mask": "samia.volume.prompts",
    "BOX3D_SETTINGS": "samia.volume.propagation",
    "KEY_SLICE_SETTINGS": "samia.volume.propagation",
    "PROJECTIONS": "samia.volume.propagation",
    "PropagationSettings": "samia.volume.propagation",
    "SliceAnswer": "samia.volume.propagation",
    "VolumeSession": "samia.volume.session",
    "MemorySettings": "samia.volume.memory",
    "segment_volume_with_memory": "samia.volume.memory",
    "VOLUME_STRATEGIES": "samia.volume.strategies",
    "Click3D": "samia.volume.strategies",
    "clicked_prompt": "samia.volume.strategies",
    "correction_click": "samia.volume.strategies",
    "largest_slice": "samia.volume.strategies",
    "volume_prompt": "samia.volume.strategies",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
