"""Drawing results on images for humans: coloured mask overlays, prompt markers."""

from __future__ import annotations

import cv2
import numpy as np

PALETTE = np.array(
    [
        (30, 144, 255),
        (255, 99, 71),
        (50, 205, 50),
        (255, 215, 0),
        (186, 85, 211),
        (0, 206, 209),
        (255, 140, 0),
        (199, 21, 133),
    ],
    dtype=np.float32,
)


def draw_masks(
    image: np.ndarray,
    masks: np.ndarray,
    points: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    boxes: np.ndarray | None = None,
    alpha: float = 0.5,
) -> np.ndarray:
    """RGB uint8 (H, W, 3) with each of masks (N, H, W) bool blended in its own colour and outlined.

    points: (P, 2) pixels drawn green (label 1) or red (label 0); boxes: (B, 4) pixels (x1, y1, x2, y2).
    """
    canvas = image.astype(np.float32)
    for i, mask in enumerate(masks):
        colour = PALETTE[i % len(PALETTE)]
        canvas[mask] = (1.0 - alpha) * canvas[mask] + alpha * colour
    out = canvas.clip(0, 255).astype(np.uint8)
    for i, mask in enumerate(masks):
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, PALETTE[i % len(PALETTE)].tolist(), thickness=2)
    radius = max(4, round(min(image.shape[:2]) / 100))
    if boxes is not None:
        for x1, y1, x2, y2 in np.asarray(boxes).reshape(-1, 4):
            cv2.rectangle(out, (round(x1), round(y1)), (round(x2), round(y2)), (255, 255, 255), thickness=2)
    if points is not None:
        labels = np.ones(len(points), dtype=int) if labels is None else np.asarray(labels)
        for (x, y), label in zip(np.asarray(points).reshape(-1, 2), labels.reshape(-1)):
            colour = (0, 220, 0) if label == 1 else (230, 0, 0)
            cv2.circle(out, (round(x), round(y)), radius, colour, thickness=-1)
            cv2.circle(out, (round(x), round(y)), radius, (255, 255, 255), thickness=1)
    return out
