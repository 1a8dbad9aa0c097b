"""MedSAM2 in samia equals an independent re-expression of the released ``medsam2_infer_3D_CT.py``
(bowang-lab/MedSAM2), step by step, on seeded random weights of its architecture loaded from a
checkpoint file in the release's format: each uint8 slice as RGB resized to 512 x 512 by PIL,
scaled to 0..1 and ImageNet-normalised, a tensor-fed video state, the key slice's box, a forward
pass, a reset, the box again and a reverse pass, the union of the two, then the largest connected
component (``skimage.measure.label``). The script's own CT windowing (DeepLesion's per-lesion
``DICOM_windows``) is not part of it: both sides start from the same uint8 volume. The script runs
under CUDA bf16 autocast; here both run in float32 on the CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("sam2.sam2_video_predictor", reason="samia[sam2] is not installed")

from PIL import Image
from skimage import measure

from samia.data.phantoms import ellipsoid_mask
from samia.errors import CheckpointError
from samia.models import build_model
from samia.models.sam2_family import MEDSAM2_OVERRIDES, SAM2_CONFIGS, build_sam2_base
from samia.predictor import SamiaPredictor
from samia.transforms import get_preset
from samia.types import Prompt, Volume
from samia.volume import KeySlice, VolumePrompt, VolumeSession
from samia.volume.memory import MEDSAM2_SETTINGS, segment_volume_with_memory

SHAPE = (9, 72, 88)
KEY = 4
BOX = np.array([22, 14, 66, 58])  # x_min, y_min, x_max, y_max, as the script reorders DeepLesion's


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """Seeded random weights of MedSAM2's architecture, saved as the release saves them (the
    object-score head biased towards "present", so that random masks are not all empty)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        base = build_sam2_base(SAM2_CONFIGS["sam2.1_hiera_tiny"], MEDSAM2_OVERRIDES)
    with torch.no_grad():
        base.sam_mask_decoder.pred_obj_score_head.layers[-1].bias.fill_(2.0)
    path = tmp_path_factory.mktemp("medsam2") / "MedSAM2_latest.pt"
    torch.save({"model": base.state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def volume() -> np.ndarray:
    mask = ellipsoid_mask(SHAPE, (4, 36, 44), (4, 20, 20))
    rng = np.random.default_rng(3)
    return np.clip(np.where(mask, 170.0, 60.0) + rng.normal(0, 10, SHAPE), 0, 255).astype(np.uint8)


def _script(checkpoint: Path, img_3d: np.ndarray, workdir: Path) -> np.ndarray:
    """The released script's steps for one lesion, re-expressed (its names kept)."""
    from sam2.build_sam import build_sam2_video_predictor

    predictor = build_sam2_video_predictor(
        "configs/sam2.1/sam2.1_hiera_t.yaml",
        device="cpu",
        hydra_overrides_extra=[  # sam2.1_hiera_t512.yaml: the 512 px input and its 32 x 32 RoPE grid
            "++model.image_size=512",
            "++model.memory_attention.layer.self_attention.feat_sizes=[32,32]",
            "++model.memory_attention.layer.cross_attention.feat_sizes=[32,32]",
        ],
    )
    predictor.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True)["model"])
    predictor.fill_hole_area = 0  # no _C extension on a CPU install: sam2 skips hole filling
    d, h, w = img_3d.shape
    resized = np.zeros((d, 3, 512, 512))
    for i in range(d):  # resize_grayscale_to_rgb_and_resize
        rgb = Image.fromarray(img_3d[i].astype(np.uint8)).convert("RGB").resize((512, 512))
        resized[i] = np.array(rgb).transpose(2, 0, 1)
    img_resized = torch.from_numpy(resized / 255.0)
    img_resized -= torch.tensor((0.485, 0.456, 0.406), dtype=torch.float32)[:, None, None]
    img_resized /= torch.tensor((0.229, 0.224, 0.225), dtype=torch.float32)[:, None, None]
    for i in range(d):  # the installed sam2's init_state reads frames from a folder: replaced below
        Image.fromarray(img_3d[i]).convert("RGB").save(workdir / f"{i:05d}.jpg")
    segs_3d = np.zeros(img_3d.shape, dtype=np.uint8)
    with torch.inference_mode():
        state = predictor.init_state(video_path=str(workdir))
        state["images"], state["cached_features"] = img_resized, {}
        for reverse in (False, True):
            predictor.add_new_points_or_box(state, frame_idx=KEY, obj_id=1, box=BOX)
            for frame, _, logits in predictor.propagate_in_video(state, reverse=reverse):
                segs_3d[frame, (logits[0] > 0.0).cpu().numpy()[0]] = 1
            predictor.reset_state(state)
    if np.max(segs_3d) > 0:  # getLargestCC
        labels = measure.label(segs_3d)
        segs_3d = np.uint8(labels == np.argmax(np.bincount(labels.flat)[1:]) + 1)
    return segs_3d.astype(bool)


def test_medsam2_equals_the_released_script(checkpoint, volume, tmp_path) -> None:
    expected = _script(checkpoint, volume, tmp_path)
    model = build_model("medsam2", checkpoint=checkpoint)
    assert (model.input_size, model.input_pipeline, model.embedding_shape[-1]) == (512, "medsam2", 32)
    prompt = VolumePrompt(key_slices=(KeySlice(KEY, Prompt(box=BOX.astype(np.float64))),))
    with VolumeSession(
        SamiaPredictor(model), Volume(volume, path="lesion.nii.gz"), get_preset("passthrough")
    ) as session:
        result = segment_volume_with_memory(session, [prompt], MEDSAM2_SETTINGS)
    mine = result.objects[0].mask
    assert 0 < expected.sum() < expected.size  # a real comparison
    assert np.count_nonzero(mine != expected) <= 1e-4 * expected.size  # float32 sums in another order
    assert measure.label(mine).max() == 1  # one component kept


def test_a_sam_2_1_checkpoint_is_not_taken_for_medsam2(tmp_path) -> None:
    base = build_sam2_base(SAM2_CONFIGS["sam2.1_hiera_small"])
    path = tmp_path / "sam2.1_hiera_small.pt"
    torch.save({"model": base.state_dict()}, path)
    with pytest.raises(CheckpointError, match="does not fit a MedSAM2 checkpoint"):
        build_model("medsam2", checkpoint=path)
