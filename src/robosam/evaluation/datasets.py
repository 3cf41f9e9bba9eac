"""Evaluation datasets: COCO instance JSON, DAVIS folders, and plain folders of images with mask PNGs.

Each dataset is a sized iterable of :class:`ImageSample` (one image with its object masks) loaded lazily, so
a large dataset costs memory one image at a time. DAVIS datasets also give :class:`VideoSample` sequences
for video protocols. :func:`load_dataset` picks the right reader from what a path holds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from robosam.errors import InputError
from robosam.io import load_image
from robosam.masks import decode_rle, polygons_to_mask

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


@dataclass
class ImageSample:
    """One image and its ground-truth objects.

    name: unique id within the dataset. image_path: the image file. masks: (K, H, W) bool, one per object.
    labels: K names (category or object id). Load the pixels with :meth:`load_image` (RGB uint8 (H, W, 3)).
    """

    name: str
    image_path: Path
    masks: np.ndarray
    labels: list[str]

    def load_image(self) -> np.ndarray:
        return load_image(self.image_path, argument="data")


@dataclass
class VideoSample:
    """One video sequence: frame files in order and, per frame, the ground-truth object-id PNG (or None).

    object_ids: the objects of the sequence (ids in the annotation PNGs).
    """

    name: str
    frames: list[Path]
    annotations: list[Path | None]
    object_ids: list[int] = field(default_factory=list)

    def load_masks(self, index: int) -> dict[int, np.ndarray]:
        """Object id -> (H, W) bool mask on frame ``index`` (empty dict when the frame has no annotation)."""
        path = self.annotations[index]
        if path is None:
            return {}
        ids = read_object_ids(path)
        return {oid: ids == oid for oid in self.object_ids}


def read_object_ids(path: Path) -> np.ndarray:
    """An annotation PNG to object ids (H, W) int: palette/gray values; a 0/255 binary mask becomes 0/1."""
    try:
        with Image.open(path) as pil:
            array = np.asarray(pil.convert("L") if pil.mode not in ("P", "L", "1") else pil).astype(np.int64)
    except OSError as error:
        raise InputError("data", "readable mask PNGs", str(path), detail=str(error)) from error
    values = np.unique(array)
    if values.size <= 2 and set(values.tolist()) <= {0, 255}:
        array = (array > 0).astype(np.int64)
    return array


def _ids_to_masks(ids: np.ndarray, void: int | None = 255) -> tuple[np.ndarray, list[str]]:
    present = [int(v) for v in np.unique(ids) if v != 0 and v != void]
    masks = np.stack([ids == v for v in present]) if present else np.zeros((0, *ids.shape), dtype=bool)
    return masks, [str(v) for v in present]


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
            masks, labels = _ids_to_masks(read_object_ids(mask_files[0]))
        else:
            masks = np.stack([read_object_ids(p) > 0 for p in mask_files])
            labels = [p.stem for p in mask_files]
        return ImageSample(name=name, image_path=image, masks=masks, labels=labels)

    def __iter__(self) -> Iterator[ImageSample]:
        return (self[i] for i in range(len(self)))


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


class DavisDataset:
    """A DAVIS root: ``JPEGImages/<res>/<seq>/*.jpg`` with ``Annotations_indexed/<res>/<seq>/*.png`` (preferred)
    or ``Annotations/<res>/<seq>/*.png`` (object-id palette PNGs, or 0/255 binary for DAVIS-2016).

    As an image dataset every ``stride``-th annotated frame is one sample named ``<seq>/<frame>``; as a video
    dataset :meth:`videos` gives one :class:`VideoSample` per sequence.
    """

    def __init__(
        self,
        root: str | Path,
        sequences: Sequence[str] | None = None,
        resolution: str = "480p",
        stride: int = 1,
    ):
        root = Path(root)
        images_root = root / "JPEGImages" / resolution
        annotations_root = next(
            (
                root / name / resolution
                for name in ("Annotations_indexed", "Annotations")
                if (root / name).is_dir()
            ),
            None,
        )
        if not images_root.is_dir() or annotations_root is None:
            raise InputError(
                "data", f"a DAVIS root with JPEGImages/{resolution} and Annotations/{resolution}", root
            )
        if not isinstance(stride, int) or stride < 1:
            raise InputError("stride", "an integer >= 1", stride)
        available = sorted(p.name for p in images_root.iterdir() if p.is_dir())
        names = list(sequences) if sequences else available
        for name in names:
            if name not in available:
                raise InputError("sequences", f"sequences of {root} ({', '.join(available)})", name)
        self.root = root
        self._videos: list[VideoSample] = []
        for name in names:
            frames = sorted((images_root / name).glob("*.jpg"))
            annotations = [annotations_root / name / f"{f.stem}.png" for f in frames]
            annotations_or_none = [a if a.is_file() else None for a in annotations]
            first = next((a for a in annotations_or_none if a is not None), None)
            ids = [] if first is None else [int(v) for v in np.unique(read_object_ids(first)) if 0 < v < 255]
            self._videos.append(VideoSample(name, frames, annotations_or_none, ids))
        self._items = [
            (video, i)
            for video in self._videos
            for i in [k for k, a in enumerate(video.annotations) if a is not None][::stride]
        ]

    def videos(self) -> list[VideoSample]:
        return list(self._videos)

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: int) -> ImageSample:
        video, frame = self._items[index]
        masks, labels = _ids_to_masks(read_object_ids(video.annotations[frame]))  # type: ignore[arg-type]
        name = f"{video.name}/{video.frames[frame].stem}"
        return ImageSample(name=name, image_path=video.frames[frame], masks=masks, labels=labels)

    def __iter__(self) -> Iterator[ImageSample]:
        return (self[i] for i in range(len(self)))


Dataset = FolderDataset | CocoDataset | DavisDataset


def load_dataset(path: str | Path, *, sequences: Sequence[str] | None = None, stride: int = 1) -> Dataset:
    """Open ``path`` as the dataset kind it holds.

    A ``.json`` file, or a folder with exactly one ``.json`` file: COCO (images next to the JSON or in an
    ``images/`` folder beside it). A folder with ``JPEGImages``: DAVIS (``sequences``, ``stride`` apply). A folder
    with ``images/`` and ``masks/``: plain folder. Anything else raises InputError.
    """
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".json":
        return CocoDataset(path, _coco_images_dir(path))
    if not path.is_dir():
        raise InputError("data", "a COCO .json file or a dataset folder", str(path))
    if (path / "JPEGImages").is_dir():
        return DavisDataset(path, sequences=sequences, stride=stride)
    if (path / "images").is_dir() and (path / "masks").is_dir():
        return FolderDataset(path)
    jsons = sorted(path.glob("*.json"))
    if len(jsons) == 1:
        return CocoDataset(jsons[0], _coco_images_dir(jsons[0]))
    raise InputError(
        "data", "a COCO .json, a DAVIS root (JPEGImages/), or a folder with images/ and masks/", str(path)
    )


def _coco_images_dir(json_path: Path) -> Path:
    beside = json_path.parent / "images"
    return beside if beside.is_dir() else json_path.parent
