"""Frames and prompts into the model's input frame, exactly as Meta's SAM 2 video predictor prepares them.

Frames: the RGB uint8 frame resized to S x S with PIL's bicubic filter (what ``load_video_frames`` does),
scaled to [0, 1] and normalised with the family's mean / std. Points: ``xy / (W, H) * S``. Boxes: two corner
points labelled 2 and 3 ahead of the clicks. Masks: bilinear (antialiased) to S x S, thresholded at 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from robosam.video.prompts import VideoPrompt


@dataclass
class PointInputs:
    """Clicks for the model: coords (1, 1, P, 2) float in the S x S input frame, labels (1, 1, P) int32
    (1 positive, 0 negative, 2 / 3 box corners). Indexable by the names transformers' helpers read."""

    point_coords: torch.Tensor
    point_labels: torch.Tensor

    def __getitem__(self, key: str) -> torch.Tensor:
        return getattr(self, key)


class FramePreprocessor:
    """RGB frames and pixel prompts to model inputs for one model (size S, normalisation, device, dtype)."""

    def __init__(
        self,
        image_size: int,
        mean: tuple[float, float, float],
        std: tuple[float, float, float],
        device: torch.device,
        dtype: torch.dtype,
    ):
        self.image_size = int(image_size)
        self.device = device
        self.dtype = dtype
        self._mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self._std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)

    def frame(self, rgb: np.ndarray) -> torch.Tensor:
        """RGB uint8 (H, W, 3) to pixel values (1, 3, S, S) on the model's device and dtype."""
        size = self.image_size
        resized = np.array(Image.fromarray(rgb).resize((size, size), Image.Resampling.BICUBIC))
        pixels = torch.from_numpy(resized).permute(2, 0, 1).to(torch.float32) / 255.0
        pixels = (pixels - self._mean) / self._std
        return pixels[None].to(device=self.device, dtype=self.dtype)

    def points(self, prompt: VideoPrompt, frame_hw: tuple[int, int]) -> PointInputs | None:
        """The prompt's box corners and clicks in the S x S frame, or None for a mask prompt."""
        coords: list[np.ndarray] = []
        labels: list[np.ndarray] = []
        if prompt.box is not None:
            coords.append(prompt.box.reshape(2, 2))
            labels.append(np.array([2, 3]))
        if prompt.points is not None:
            coords.append(prompt.points)
            labels.append(prompt.labels)
        if not coords:
            return None
        height, width = frame_hw
        xy = torch.as_tensor(np.concatenate(coords), dtype=torch.float32)[None]
        xy = xy / torch.tensor([width, height]) * self.image_size
        label_tensor = torch.as_tensor(np.concatenate(labels), dtype=torch.int32)[None]
        return PointInputs(
            point_coords=xy[None].to(self.device, self.dtype),
            point_labels=label_tensor[None].to(self.device),
        )

    def mask(self, mask: np.ndarray) -> torch.Tensor:
        """bool (H, W) to (1, 1, S, S) float 0 / 1 (bilinear, antialiased, thresholded at 0.5)."""
        tensor = torch.as_tensor(mask, dtype=torch.float32)[None, None]
        size = self.image_size
        if tensor.shape[-2:] != (size, size):
            tensor = F.interpolate(
                tensor, size=(size, size), mode="bilinear", align_corners=False, antialias=True
            )
            tensor = (tensor >= 0.5).float()
        return tensor.to(self.device, self.dtype)
