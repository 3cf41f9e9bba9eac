"""Image features of one frame, computed once and shared by every object on it."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


@dataclass
class FrameFeatures:
    """The image encoder's output for one frame (batch 1).

    vision: per level (H_l * W_l, 1, C_l), high resolution first, the last level (h * w, 1, C) the one the
        memory attention conditions. positions: the matching position encodings.
    high_res: the levels before the last as maps (1, C_l, H_l, W_l), for the mask decoder.
    """

    vision: list[torch.Tensor]
    positions: list[torch.Tensor]
    high_res: list[torch.Tensor]

    @property
    def top(self) -> torch.Tensor:
        """The lowest-resolution level (h * w, 1, C)."""
        return self.vision[-1]

    @property
    def top_position(self) -> torch.Tensor:
        return self.positions[-1]


def encode_frame(model: Any, pixel_values: torch.Tensor) -> FrameFeatures:
    """Run the image encoder of a transformers video model on pixel values (1, 3, S, S)."""
    output = model.get_image_features(pixel_values, return_dict=True)
    vision = list(output.fpn_hidden_states)
    positions = list(output.fpn_position_encoding)
    sizes = model.backbone_feature_sizes
    high_res = [
        x.permute(1, 2, 0).view(x.size(1), x.size(2), *size) for x, size in zip(vision[:-1], sizes[:-1])
    ]
    return FrameFeatures(vision=vision, positions=positions, high_res=high_res)


class FeatureCache:
    """The features of the last few frames (a session revisits the frame it was just prompted on)."""

    def __init__(self, capacity: int = 2):
        self.capacity = capacity
        self._items: OrderedDict[int, FrameFeatures] = OrderedDict()

    def get(self, frame: int) -> FrameFeatures | None:
        features = self._items.get(frame)
        if features is not None:
            self._items.move_to_end(frame)
        return features

    def put(self, frame: int, features: FrameFeatures) -> None:
        self._items[frame] = features
        self._items.move_to_end(frame)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()
