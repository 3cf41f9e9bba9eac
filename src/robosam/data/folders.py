"""Plain folders: ``images/`` with one mask PNG (or one folder of PNGs) per image in ``masks/``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from robosam.data.samples import IMAGE_SUFFIXES, ImageSample, ids_to_masks, read_object_ids
from robosam.errors import InputError


class FolderDataset:
    """``root/images/<stem>.<ext>`` with ``root/masks/<stem>.png`` (binary or object-id PNG) or
    ``root/masks/<stem>/*.png`` (one binary PNG per object)."""

    def __init__(self, root: str | Path):
        root = Path(root)
        images_dir, masks_dir = root / "images", root / "masks"
        if not images_dir.is_dir() or not masks_dir.is_dir():
            raise InputError("data", "a folder with images/ and masks/ sub-folders", str(root))
        self.root = root
        self._items: list[tuple[str, Path, list[Path]]] = []
        for image in sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            single = masks_dir / f"{image.stem}.png"
            several = (
                sorted((masks_dir / image.stem).glob("*.png")) if (masks_dir / image.stem).is_dir() else []
            )
            masks = [single] if single.is_file() else several
            if masks:
                self._items.append((image.stem, image, masks))
        if not self._items:
            raise InputError("data", "images in images/ with matching masks/<stem>.png", str(root))

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: int) -> ImageSample:
        name, image, mask_files = self._items[index]
        if len(mask_files) == 1:
            masks, labels = ids_to_masks(read_object_ids(mask_files[0]))
        else:
            masks = np.stack([read_object_ids(p) > 0 for p in mask_files])
            labels = [p.stem for p in mask_files]
        return ImageSample(name=name, image_path=image, masks=masks, labels=labels)

    def __iter__(self) -> Iterator[ImageSample]:
        return (self[i] for i in range(len(self)))
