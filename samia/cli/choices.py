"""The names the command line's help lists, written out so that ``--help`` does not import the model
stack; ``tests/cli/test_help.py`` checks them against the registries they mirror."""

PRESET_NAMES = ("ct_soft_tissue", "ct_lung", "ct_bone", "ct_brain", "percentile", "passthrough", "dicom", "huang2024")
"""= ``samia.transforms.PRESETS``."""

MODALITY_NAMES = ("CT", "MR", "US", "XR", "PET", "fundus", "endoscopy", "dermoscopy", "OCT", "microscopy", "other")
"""= ``samia.types.MODALITIES``."""

STRATEGY_NAMES = (
    "everything",
    "point1",
    "point5",
    "point5_neg5",
    "box",
    "box_point1",
    "box_jitter",
    "point_jitter",
    "clicks",
)
"""= ``samia.prompts.strategy_registry()``."""

VOLUME_STRATEGY_NAMES = (
    "box3d",
    "keyslice_box",
    "keyslice_point",
    "slice_boxes",
    "box3d_clicks",
    "box3d_memory",
    "keyslice_box_memory",
    "keyslice_point_memory",
    "box3d_clicks_memory",
)
"""= ``samia.volume.VOLUME_STRATEGIES``."""

BACKEND_HELP = (
    "What runs the model: auto (the fastest installed: onnxruntime, else openvino, else torch), torch, "
    "onnxruntime or openvino (exported once, cached; CPU)."
)
PRECISION_HELP = "fp32; bf16 with openvino on a CPU with bf16 instructions."
PRESET_HELP = "Intensity preset: " + ", ".join(PRESET_NAMES) + " (default: the modality's)."
MODALITY_HELP = "Override the modality: " + ", ".join(MODALITY_NAMES) + " (default: the file's / dataset.json's)."
STRATEGY_HELP = (
    "Prompt strategy, repeat for several: "
    + ", ".join(STRATEGY_NAMES)
    + "; on volumes also "
    + ", ".join(VOLUME_STRATEGY_NAMES)
    + " (rules: `samia strategies`)."
)
