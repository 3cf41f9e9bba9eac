"""Datasets shared by evaluation, fine-tuning and labeling: COCO JSON, DAVIS folders, image + mask folders.

Each dataset is a sized iterable of :class:`ImageSample` (one image with its object masks) loaded lazily, so
a large dataset costs memory one image at a time. DAVIS datasets also give :class:`VideoSample` sequences.
:func:`load_dataset` picks the right reader from what a path holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from robosam.data.coco import CocoDataset, annotation_to_mask
from robosam.data.davis import DavisDataset
from robosam.data.folders import FolderDataset
from robosam.data.samples import IMAGE_SUFFIXES, ImageSample, VideoSample, ids_to_masks, read_object_ids
from robosam.errors import InputError

__all__ = [
    "IMAGE_SUFFIXES",
    "CocoDataset",
    "Dataset",
    "DavisDataset",
    "FolderDataset",
    "ImageSample",
    "VideoSample",
    "annotation_to_mask",
    "ids_to_masks",
    "load_dataset",
    "read_object_ids",
]


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
