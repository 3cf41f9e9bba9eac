"""COCO instance annotations (polygons, RLE, crowd RLE)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from robosam.data.samples import IMAGE_SUFFIXES, ImageSample
from robosam.errors import InputError
from robosam.masks import decode_rle, polygons_to_mask


class CocoDataset:
    """COCO instance annotations: a full COCO JSON (``images``, ``annotations``, ``categories``) or a bare list
    of annotation dicts. Segmentations may be polygons, compressed RLE or uncompressed (crowd) RLE.

    images_dir: where the image files live (``file_name`` from the JSON, else ``<image_id:012d>.*``).
    include_crowd: keep ``iscrowd`` annotations (COCO evaluation ignores them; default False).
    """

    def __init__(
        self, annotations: str | Path, images_dir: str | Path | None = None, include_crowd: bool = False
    ):
        path = Path(annotations)
        try:
            content = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise InputError("data", "a readable COCO JSON file", str(path), detail=str(error)) from error
        if isinstance(content, list):
            content = {"annotations": content}
        if not isinstance(content, dict) or not isinstance(content.get("annotations"), list):
            raise InputError(
                "data", "a COCO JSON with an 'annotations' list (or a list of annotations)", str(path)
            )
        self.images_dir = Path(images_dir) if images_dir is not None else path.parent
        self._categories = {int(c["id"]): str(c.get("name", c["id"])) for c in content.get("categories", [])}
        self._images = {int(i["id"]): i for i in content.get("images", [])}
        grouped: dict[int, list[dict[str, Any]]] = {}
        for ann in content["annotations"]:
            if not isinstance(ann, dict) or "segmentation" not in ann or "image_id" not in ann:
                raise InputError("data", "annotations with 'image_id' and 'segmentation'", ann)
            if ann.get("iscrowd", 0) and not include_crowd:
                continue
            grouped.setdefault(int(ann["image_id"]), []).append(ann)
        self._order = sorted(grouped)
        self._grouped = grouped
        if not self._order:
            raise InputError("data", "at least one usable COCO annotation", str(path))

    def __len__(self) -> int:
        return len(self._order)

    def _image_path(self, image_id: int) -> Path:
        info = self._images.get(image_id, {})
        if "file_name" in info:
            candidate = self.images_dir / info["file_name"]
            if candidate.is_file():
                return candidate
        for suffix in IMAGE_SUFFIXES:
            candidate = self.images_dir / f"{image_id:012d}{suffix}"
            if candidate.is_file():
                return candidate
        raise InputError(
            "data", f"the image file of COCO image {image_id} in {self.images_dir}", "none found"
        )

    def __getitem__(self, index: int) -> ImageSample:
        image_id = self._order[index]
        image_path = self._image_path(image_id)
        info = self._images.get(image_id, {})
        if "height" in info and "width" in info:
            height, width = int(info["height"]), int(info["width"])
        else:
            with Image.open(image_path) as pil:
                width, height = pil.size
        masks, labels = [], []
        for ann in self._grouped[image_id]:
            masks.append(annotation_to_mask(ann["segmentation"], height, width))
            category = int(ann.get("category_id", 0))
            labels.append(self._categories.get(category, f"cat{category}"))
        return ImageSample(name=str(image_id), image_path=image_path, masks=np.stack(masks), labels=labels)

    def __iter__(self) -> Iterator[ImageSample]:
        return (self[i] for i in range(len(self)))


def annotation_to_mask(segmentation: Any, height: int, width: int) -> np.ndarray:
    """A COCO ``segmentation`` (polygon list, RLE with string or list counts) to bool (H, W)."""
    if isinstance(segmentation, list):
        if not segmentation:
            return np.zeros((height, width), dtype=bool)
        return polygons_to_mask([list(map(float, p)) for p in segmentation], height, width)
    if isinstance(segmentation, dict):
        mask = decode_rle(segmentation)
        if mask.shape != (height, width):
            raise InputError("data", f"RLE of size {(height, width)}", mask.shape)
        return mask
    raise InputError("data", "a COCO segmentation (polygons or RLE)", segmentation)
