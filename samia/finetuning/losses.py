"""The training loss of a prompted SAM-family mask decoder."""

from __future__ import annotations

import torch
from torch import nn


class PromptedMaskLoss(nn.Module):
    """DiceCE on the outputs a user reads, plus the predicted-IoU regression, on the low-res grid.

    SAM's mask decoder answers each prompt with 4 outputs: token 0 = the single mask
    (``multimask_output=False``), tokens 1..3 = the multimask candidates. The loss is

    ``DiceCE(token 0) + DiceCE(best candidate) + MSE(predicted IoU, actual IoU of all 4 outputs)``

    where DiceCE is MONAI's ``DiceCELoss(sigmoid=True, squared_pred=True, reduction="mean")``, the
    best candidate of a prompt is the one with the highest actual IoU (SAM's minimum-loss rule,
    detached), and the actual IoU compares the thresholded logits (> 0) with the target (>= 0.5).
    So every selection rule of ``samia evaluate`` (``single``, ``oracle``, ``predicted_iou``)
    benefits from training.
    """

    def __init__(self) -> None:
        super().__init__()
        from monai.losses import DiceCELoss

        self.dice_ce = DiceCELoss(sigmoid=True, squared_pred=True, reduction="mean")

    def forward(self, logits: torch.Tensor, iou_predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Loss of one batch of prompts.

        Args:
            logits: ``(B, 4, L, L)`` float32 low-resolution logits of all decoder outputs.
            iou_predictions: ``(B, 4)`` float32 predicted IoU of each output.
            targets: ``(B, 1, L, L)`` float32 soft ground truth in ``[0, 1]``.

        Returns:
            scalar float32 tensor.
        """
        with torch.no_grad():
            actual = mask_iou(logits > 0, targets >= 0.5)
            best = 1 + actual[:, 1:].argmax(dim=1)
        chosen = logits.gather(1, best.view(-1, 1, 1, 1).expand(-1, 1, *logits.shape[-2:]))
        mask_loss = self.dice_ce(logits[:, :1], targets) + self.dice_ce(chosen, targets)
        return mask_loss + nn.functional.mse_loss(iou_predictions, actual)


def mask_iou(predicted: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """IoU of boolean masks ``(B, M, L, L)`` against ``(B, 1, L, L)``: ``(B, M)`` float32; 1 when both are empty."""
    intersection = (predicted & truth).flatten(2).sum(-1).float()
    union = (predicted | truth).flatten(2).sum(-1).float()
    return torch.where(union > 0, intersection / union.clamp(min=1), torch.ones_like(union))
