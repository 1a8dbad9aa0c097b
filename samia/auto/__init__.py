"""Everything mode (automatic mask generation) and matching of generated masks to ground truth."""

from samia.auto.everything import EverythingSettings, GeneratedMasks, generate_everything, grid_points
from samia.auto.matching import InstanceMatch, instance_match, iou_matrix, oracle_match

__all__ = [
    "EverythingSettings",
    "GeneratedMasks",
    "InstanceMatch",
    "generate_everything",
    "grid_points",
    "instance_match",
    "iou_matrix",
    "oracle_match",
]
