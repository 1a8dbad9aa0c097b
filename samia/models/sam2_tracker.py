"""SAM 2's video predictor over frames whose features samia supplies (imports Meta's ``sam2``).

``sam2``'s ``SAM2VideoPredictor`` keeps every tracking rule of SAM 2 (the memory bank, memory
attention, object pointers, conditioning frames, object scores); samia changes two things only:

- :func:`new_inference_state`: the predictor's ``init_state`` reads a JPEG folder or an MP4 file;
  this builds the same inference state for a volume's slices without any file, as MedSAM2's
  released ``SAM2VideoPredictorNPZ.init_state`` does for a preprocessed volume tensor
  (``medsam2_infer_3D_CT.py``), with the state keys of the installed ``sam2`` (1.1.0).
- :class:`Sam2Tracker._get_image_feature`: a frame's backbone features come from the state's
  ``frame_features`` callable (samia's embedding cache: each slice encoded once per volume, shared
  by every object, pass and correction) instead of re-running the image encoder on ``images``.

Hole filling (``fill_hole_area``) needs ``sam2``'s compiled ``_C`` extension, which a CPU install
does not build; :func:`hole_filling_available` says whether it is there, and samia builds the
tracker with ``fill_hole_area = 0`` where it is not (sam2 itself would warn and skip it).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from functools import partial
from typing import Any

import sam2.sam2_video_predictor
import torch
from sam2.sam2_video_predictor import SAM2VideoPredictor

# samia reports progress itself: sam2's per-pass progress bar would interleave with its output
sam2.sam2_video_predictor.tqdm = partial(sam2.sam2_video_predictor.tqdm, disable=True)

FrameFeatures = Callable[[int], dict[str, Any]]
"""Frame index -> ``SAM2Base.forward_image``'s output for that frame: ``backbone_fpn`` (three maps,
the two high-resolution ones already through ``conv_s0``/``conv_s1``), ``vision_pos_enc`` (their
positional encodings) and ``vision_features`` (the lowest-resolution map)."""

_NO_IMAGE = torch.zeros(1, 3, 1, 1)
"""Stands in for the frame image the predictor caches beside its features (it never reads it)."""


def hole_filling_available() -> bool:
    """Whether ``sam2``'s compiled ``_C`` extension (connected components for hole filling) imports."""
    try:
        from sam2 import _C  # noqa: F401
    except ImportError:
        return False
    return True


def hole_filling_line() -> str:
    """What the output says about hole filling."""
    if hole_filling_available():
        return "holes up to 8 low-resolution pixels filled, as sam2"
    return "no hole filling: sam2 was built without its _C extension"


class Sam2Tracker(SAM2VideoPredictor):  # type: ignore[misc]
    """``SAM2VideoPredictor`` whose frame features come from ``inference_state["frame_features"]``."""

    def _get_image_feature(self, inference_state: dict[str, Any], frame_idx: int, batch_size: int) -> Any:
        source: FrameFeatures | None = inference_state.get("frame_features")
        if source is not None and frame_idx not in inference_state["cached_features"]:
            inference_state["cached_features"] = {frame_idx: (_NO_IMAGE, source(frame_idx))}
        return super()._get_image_feature(inference_state, frame_idx, batch_size)


def new_inference_state(
    tracker: SAM2VideoPredictor, num_frames: int, height: int, width: int, frame_features: FrameFeatures
) -> dict[str, Any]:
    """The inference state ``SAM2VideoPredictor.init_state`` builds, for ``num_frames`` frames of
    ``(height, width)`` pixels whose features ``frame_features`` gives (no frame is read or encoded
    here; the predictor asks for each as it visits it)."""
    device = tracker.device
    return {
        "images": None,
        "frame_features": frame_features,
        "num_frames": int(num_frames),
        "offload_video_to_cpu": False,
        "offload_state_to_cpu": False,
        "video_height": int(height),
        "video_width": int(width),
        "device": device,
        "storage_device": device,
        "point_inputs_per_obj": {},
        "mask_inputs_per_obj": {},
        "cached_features": {},
        "constants": {},
        "obj_id_to_idx": OrderedDict(),
        "obj_idx_to_id": OrderedDict(),
        "obj_ids": [],
        "output_dict_per_obj": {},
        "temp_output_dict_per_obj": {},
        "frames_tracked_per_obj": {},
    }
