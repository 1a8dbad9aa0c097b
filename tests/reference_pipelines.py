"""Independent re-implementations of the models' released inference scripts, for the tests.

Written from ``CVPR24_LiteMedSAM_infer.py`` (``resize_longest_side``, ``pad_image``,
``resize_box_to_256``, ``medsam_inference``, ``MedSAM_Lite.postprocess_masks``) and
``MedSAM_Inference.py`` (``transform.resize`` to 1024 x 1024, ``box / [W, H, W, H] * 1024``,
``medsam_inference``) of the MedSAM repository, with the side 256 / 1024 as a parameter so that the
tiny random models can run them. They call the model's modules and nothing of samia's.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from skimage import transform


def _litemedsam_resize_longest_side(image, target_length):
    oldh, oldw = image.shape[0], image.shape[1]
    scale = target_length * 1.0 / max(oldh, oldw)
    newh, neww = oldh * scale, oldw * scale
    neww, newh = int(neww + 0.5), int(newh + 0.5)
    return cv2.resize(image, (neww, newh), interpolation=cv2.INTER_AREA)


def _litemedsam_pad_image(image, target_size):
    h, w = image.shape[0], image.shape[1]
    return np.pad(image, ((0, target_size - h), (0, target_size - w), (0, 0)))


def _litemedsam_resize_box(box, original_size, target_length):
    new_box = np.zeros_like(box)
    ratio = target_length / max(original_size)
    for i in range(len(box)):
        new_box[i] = int(box[i] * ratio)
    return new_box


@torch.no_grad()
def _litemedsam_embedding(image_encoder, img_3c: np.ndarray, side: int):
    """The script's preprocessing + encoder: ``(embedding, (new_H, new_W))``."""
    img_256 = _litemedsam_resize_longest_side(img_3c, side)
    newh, neww = img_256.shape[:2]
    img_256_norm = (img_256 - img_256.min()) / np.clip(img_256.max() - img_256.min(), a_min=1e-8, a_max=None)
    img_256_padded = _litemedsam_pad_image(img_256_norm, side)
    img_256_tensor = torch.tensor(img_256_padded).float().permute(2, 0, 1).unsqueeze(0)
    return image_encoder(img_256_tensor), (newh, neww)


@torch.no_grad()
def _litemedsam_inference(prompt_encoder, mask_decoder, image_embedding, box_256, new_size, original_size):
    """``medsam_inference``: one ``(H, W)`` uint8 mask for one box in the 256 frame."""
    box_torch = torch.as_tensor(np.asarray(box_256, dtype=np.float64)[None, None, ...], dtype=torch.float)
    sparse, dense = prompt_encoder(points=None, boxes=box_torch, masks=None)
    low_res_logits, _ = mask_decoder(
        image_embeddings=image_embedding,
        image_pe=prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense,
        multimask_output=False,
    )
    cropped = low_res_logits[..., : new_size[0], : new_size[1]]
    upsampled = F.interpolate(cropped, size=original_size, mode="bilinear", align_corners=False)
    return (torch.sigmoid(upsampled).squeeze().numpy() > 0.5).astype(np.uint8)


def litemedsam_reference(image_encoder, prompt_encoder, mask_decoder, img_3c: np.ndarray, boxes, side: int = 256):
    """``MedSAM_infer_npz_2D`` for one image: one ``(H, W)`` uint8 mask per XYXY box."""
    H, W = img_3c.shape[:2]
    image_embedding, new_size = _litemedsam_embedding(image_encoder, img_3c, side)
    return [
        _litemedsam_inference(
            prompt_encoder,
            mask_decoder,
            image_embedding,
            _litemedsam_resize_box(np.asarray(box, dtype=np.float64), (H, W), side),
            new_size,
            (H, W),
        )
        for box in boxes
    ]


@torch.no_grad()
def medsam_reference(image_encoder, prompt_encoder, mask_decoder, img_3c: np.ndarray, boxes, side: int = 1024):
    """``MedSAM_Inference.py`` for one image: one ``(H, W)`` uint8 mask per XYXY box."""
    H, W, _ = img_3c.shape
    img_1024 = transform.resize(img_3c, (side, side), order=3, preserve_range=True, anti_aliasing=True).astype(np.uint8)
    img_1024 = (img_1024 - img_1024.min()) / np.clip(img_1024.max() - img_1024.min(), a_min=1e-8, a_max=None)
    img_1024_tensor = torch.tensor(img_1024).float().permute(2, 0, 1).unsqueeze(0)
    image_embedding = image_encoder(img_1024_tensor)
    masks = []
    for box in boxes:
        box_np = np.array([box], dtype=np.float64)
        box_1024 = box_np / np.array([W, H, W, H]) * side
        box_torch = torch.as_tensor(box_1024, dtype=torch.float)[:, None, :]
        sparse, dense = prompt_encoder(points=None, boxes=box_torch, masks=None)
        low_res_logits, _ = mask_decoder(
            image_embeddings=image_embedding,
            image_pe=prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=False,
        )
        low_res_pred = F.interpolate(torch.sigmoid(low_res_logits), size=(H, W), mode="bilinear", align_corners=False)
        masks.append((low_res_pred.squeeze().numpy() > 0.5).astype(np.uint8))
    return masks


def sample_images_and_boxes(dataset: str = "colin27_aal_2d"):
    """The bundled sample slices as ``(H, W, 3)`` uint8 and each object's tight XYXY box (read with
    Pillow, objects = label values, as the reference scripts take them)."""
    from pathlib import Path

    from PIL import Image

    import samia

    root = Path(samia.__file__).parent / "data" / "samples" / dataset
    for image_path in sorted((root / "images").glob("[!.]*.png")):
        gray = np.array(Image.open(image_path))
        labels = np.array(Image.open(root / "masks" / image_path.name))
        boxes, truths = [], []
        for value in np.unique(labels)[1:]:
            ys, xs = np.nonzero(labels == value)
            boxes.append([xs.min(), ys.min(), xs.max(), ys.max()])
            truths.append(labels == value)
        yield image_path.name, np.repeat(gray[:, :, None], 3, axis=2), boxes, truths


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


def _litemedsam_bbox256(mask_256: np.ndarray, bbox_shift: int = 3) -> np.ndarray:
    """``get_bbox256``: the mask's box in the 256 frame, each side moved out by ``bbox_shift``."""
    y_indices, x_indices = np.where(mask_256 > 0)
    x_min, x_max = np.min(x_indices), np.max(x_indices)
    y_min, y_max = np.min(y_indices), np.max(y_indices)
    H, W = mask_256.shape
    x_min = max(0, x_min - bbox_shift)
    x_max = min(W, x_max + bbox_shift)
    y_min = max(0, y_min - bbox_shift)
    y_max = min(H, y_max + bbox_shift)
    return np.array([x_min, y_min, x_max, y_max])


def litemedsam_3d_reference(image_encoder, prompt_encoder, mask_decoder, img_3D: np.ndarray, box3D, side: int = 256):
    """``MedSAM_infer_npz_3D`` of ``CVPR24_LiteMedSAM_infer.py`` for one 3D box (its ``idx`` = 1):
    ``(D, H, W)`` uint8 mask, and the ``{z: box_256}`` prompts it used."""
    D, H, W = img_3D.shape
    segs_3d_temp = np.zeros_like(img_3D, dtype=np.uint16)
    x_min, y_min, z_min, x_max, y_max, z_max = box3D
    mid_slice_bbox_2d = np.array([x_min, y_min, x_max, y_max])
    z_middle = int((z_max - z_min) / 2 + z_min)
    used = {}

    def infer(z, box_256):
        img_3c = np.repeat(img_3D[z, :, :][:, :, None], 3, axis=-1)
        embedding, new_size = _litemedsam_embedding(image_encoder, img_3c, side)
        used[z] = np.asarray(box_256, dtype=np.float64).tolist()
        return _litemedsam_inference(prompt_encoder, mask_decoder, embedding, box_256, new_size, (H, W))

    def previous_box(pre_seg):
        if np.max(pre_seg) > 0:
            pre_seg256 = _litemedsam_resize_longest_side(pre_seg, side)
            h, w = pre_seg256.shape
            pre_seg256 = np.pad(pre_seg256, ((0, side - h), (0, side - w)))
            if np.max(pre_seg256) > 0:
                return _litemedsam_bbox256(pre_seg256)
        return _litemedsam_resize_box(mid_slice_bbox_2d.astype(np.float64), (H, W), side)

    z_max = min(z_max + 1, D)
    for z in range(z_middle, z_max):
        if z == z_middle:
            box_256 = _litemedsam_resize_box(mid_slice_bbox_2d.astype(np.float64), (H, W), side)
        else:
            box_256 = previous_box(segs_3d_temp[z - 1, :, :])
        segs_3d_temp[z, infer(z, box_256) > 0] = 1
    z_min = max(-1, z_min - 1)
    for z in range(z_middle - 1, z_min, -1):
        segs_3d_temp[z, infer(z, previous_box(segs_3d_temp[z + 1, :, :])) > 0] = 1
    return segs_3d_temp.astype(np.uint8), used
