"""SAM's training loss: focal + dice on the mask logits (20 : 1), MSE between predicted and actual IoU.

As in the SAM paper and SAM 2's training code: with several candidate masks (an ambiguous single click) only
the candidate with the lowest mask loss is trained on, while the IoU head learns the IoU of every candidate.
Pixels outside ``valid`` (SAM 1's padding) take no part in any term.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchvision.ops import sigmoid_focal_loss

FOCAL_WEIGHT = 20.0
DICE_WEIGHT = 1.0
IOU_WEIGHT = 1.0
FOCAL_ALPHA = 0.25
FOCAL_GAMMA = 2.0


@dataclass
class LossTerms:
    """Per-object losses (O,) of one decoder pass: ``total`` = mask (best candidate) + IoU term."""

    total: torch.Tensor
    focal: torch.Tensor
    dice: torch.Tensor
    iou: torch.Tensor


def focal_per_mask(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Sigmoid focal loss (alpha 0.25, gamma 2) averaged over valid pixels.

    logits: (O, K, L, L); target, valid: (O, L, L) float (0/1). Returns (O, K).
    """
    target_k = target[:, None].expand_as(logits)
    per_pixel = sigmoid_focal_loss(logits, target_k, alpha=FOCAL_ALPHA, gamma=FOCAL_GAMMA, reduction="none")
    weights = valid[:, None]
    return (per_pixel * weights).sum(dim=(-2, -1)) / weights.sum(dim=(-2, -1)).clamp_min(1.0)


def dice_per_mask(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Soft dice loss ``1 - (2 sum(p t) + 1) / (sum(p) + sum(t) + 1)`` over valid pixels, p = sigmoid(logits).

    logits: (O, K, L, L); target, valid: (O, L, L) float. Returns (O, K).
    """
    prob = logits.sigmoid() * valid[:, None]
    target_k = (target * valid)[:, None]
    numerator = 2.0 * (prob * target_k).sum(dim=(-2, -1))
    denominator = prob.sum(dim=(-2, -1)) + target_k.sum(dim=(-2, -1))
    return 1.0 - (numerator + 1.0) / (denominator + 1.0)


def actual_iou(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """IoU of each thresholded candidate (logit > 0) with the target over valid pixels, no gradient.

    logits: (O, K, L, L); target, valid: (O, L, L). Returns (O, K) in [0, 1] (empty vs empty scores 1).
    """
    with torch.no_grad():
        pred = (logits > 0) & (valid[:, None] > 0)
        truth = (target > 0)[:, None]
        inter = (pred & truth).sum(dim=(-2, -1)).float()
        union = (pred | truth).sum(dim=(-2, -1)).float()
        return torch.where(union > 0, inter / union.clamp_min(1.0), torch.ones_like(union))


def sam_loss(
    logits: torch.Tensor, scores: torch.Tensor, target: torch.Tensor, valid: torch.Tensor
) -> LossTerms:
    """SAM's loss for one decoder pass over O objects with K candidates each.

    logits: (O, K, L, L) mask logits; scores: (O, K) predicted IoU; target: (O, L, L) 0/1; valid: (O, L, L)
    0/1. Mask loss = 20 focal + 1 dice of the candidate where it is lowest; IoU loss = mean over the K
    candidates of (predicted - actual IoU)^2. Returns per-object terms (O,).
    """
    logits = logits.float()
    target = target.to(logits.dtype)
    valid = valid.to(logits.dtype)
    focal = focal_per_mask(logits, target, valid)
    dice = dice_per_mask(logits, target, valid)
    mask_loss = FOCAL_WEIGHT * focal + DICE_WEIGHT * dice
    best = mask_loss.argmin(dim=1, keepdim=True)
    iou_loss = ((scores.float() - actual_iou(logits, target, valid)) ** 2).mean(dim=1)
    total = mask_loss.gather(1, best)[:, 0] + IOU_WEIGHT * iou_loss
    return LossTerms(
        total=total,
        focal=focal.gather(1, best)[:, 0].detach(),
        dice=dice.gather(1, best)[:, 0].detach(),
        iou=iou_loss.detach(),
    )
