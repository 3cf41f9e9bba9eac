"""Where automatic mask generation prompts: point grids and the crop-box layout of Meta's generator."""

from __future__ import annotations

import math
from itertools import product

import numpy as np


def build_point_grid(n_per_side: int) -> np.ndarray:
    """(n * n, 2) float64 points (x, y) in [0, 1]: cell centres of an n x n grid, x fastest."""
    offset = 1 / (2 * n_per_side)
    one_side = np.linspace(offset, 1 - offset, n_per_side)
    xs = np.tile(one_side[None, :], (n_per_side, 1))
    ys = np.tile(one_side[:, None], (1, n_per_side))
    return np.stack([xs, ys], axis=-1).reshape(-1, 2)


def build_layer_point_grids(n_per_side: int, n_layers: int, scale_per_layer: int) -> list[np.ndarray]:
    """One normalised grid per crop layer (layer 0 = the whole image); layer i has
    ``int(n_per_side / scale_per_layer**i)`` points per side, as Meta's ``build_all_layer_point_grids``."""
    return [build_point_grid(int(n_per_side / (scale_per_layer**i))) for i in range(n_layers + 1)]


def generate_crop_boxes(
    image_hw: tuple[int, int], n_layers: int, overlap_ratio: float
) -> tuple[list[list[int]], list[int]]:
    """Crop boxes (x0, y0, x1, y1), x1 / y1 exclusive, and each box's layer index.

    Layer 0 is the whole image; layer i >= 1 tiles it with 2**i x 2**i crops overlapping by
    ``overlap_ratio * short_side * 2 / 2**i`` pixels (Meta's layout, to the pixel).
    """
    height, width = image_hw
    short_side = min(height, width)
    boxes, layers = [[0, 0, width, height]], [0]

    def crop_len(length: int, n_crops: int, overlap: int) -> int:
        return int(math.ceil((overlap * (n_crops - 1) + length) / n_crops))

    for layer in range(n_layers):
        per_side = 2 ** (layer + 1)
        overlap = int(overlap_ratio * short_side * (2 / per_side))
        crop_w = crop_len(width, per_side, overlap)
        crop_h = crop_len(height, per_side, overlap)
        xs = [int((crop_w - overlap) * i) for i in range(per_side)]
        ys = [int((crop_h - overlap) * i) for i in range(per_side)]
        for x0, y0 in product(xs, ys):
            boxes.append([x0, y0, min(x0 + crop_w, width), min(y0 + crop_h, height)])
            layers.append(layer + 1)
    return boxes, layers
