"""Dataset readers: COCO (polygons, RLE) against pycocotools, DAVIS folders, plain image+mask folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as coco_mask

from robosam.data import (
    CocoDataset,
    DavisDataset,
    FolderDataset,
    annotation_to_mask,
    load_dataset,
)
from robosam.errors import InputError
from robosam.evaluation.metrics import iou
from robosam.masks import read_mask_png


def blob_mask(height: int, width: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    cy, cx, r = rng.uniform(10, height - 10), rng.uniform(10, width - 10), rng.uniform(4, 9)
    return ((yy - cy) ** 2 + ((xx - cx) / 1.5) ** 2) < r**2


def test_rle_decoding_matches_pycocotools() -> None:
    mask = blob_mask(37, 53, 0) | blob_mask(37, 53, 1)
    compressed = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    as_json = {"size": compressed["size"], "counts": compressed["counts"].decode("ascii")}
    np.testing.assert_array_equal(
        annotation_to_mask(as_json, 37, 53), coco_mask.decode(compressed).astype(bool)
    )
    # uncompressed (crowd-style) counts: runs in column-major order, starting with background
    flat = mask.flatten(order="F").astype(np.int8)
    changes = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    counts = np.diff(np.concatenate([[0], changes])).tolist()
    uncompressed = {"size": [37, 53], "counts": counts}
    expected = coco_mask.decode(coco_mask.frPyObjects(uncompressed, 37, 53)).astype(bool)
    np.testing.assert_array_equal(expected, mask)
    np.testing.assert_array_equal(annotation_to_mask(uncompressed, 37, 53), mask)
    polygon = [[5.0, 5.0, 30.0, 6.0, 20.0, 25.0]]
    reference = coco_mask.decode(coco_mask.merge(coco_mask.frPyObjects(polygon, 37, 53))).astype(bool)
    np.testing.assert_array_equal(annotation_to_mask(polygon, 37, 53), reference)
    with pytest.raises(InputError):
        annotation_to_mask({"size": [10, 10], "counts": "00"}, 37, 53)


def test_coco_full_format_with_crowd_and_categories(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(tmp_path / "pic.jpg")
    crowd = blob_mask(40, 60, 3)
    rle = coco_mask.encode(np.asfortranarray(crowd.astype(np.uint8)))
    content = {
        "images": [{"id": 7, "file_name": "pic.jpg", "height": 40, "width": 60}],
        "categories": [{"id": 3, "name": "cup"}],
        "annotations": [
            {
                "id": 1,
                "image_id": 7,
                "category_id": 3,
                "iscrowd": 0,
                "segmentation": [[2, 2, 20, 2, 20, 15, 2, 15]],
            },
            {
                "id": 2,
                "image_id": 7,
                "category_id": 3,
                "iscrowd": 1,
                "segmentation": {"size": [40, 60], "counts": rle["counts"].decode()},
            },
        ],
    }
    (tmp_path / "ann.json").write_text(json.dumps(content))
    dataset = load_dataset(tmp_path / "ann.json")
    assert isinstance(dataset, CocoDataset) and len(dataset) == 1
    sample = dataset[0]
    assert sample.labels == ["cup"] and sample.masks.shape == (1, 40, 60)
    assert sample.load_image().shape == (40, 60, 3)
    with_crowd = CocoDataset(tmp_path / "ann.json", include_crowd=True)[0]
    np.testing.assert_array_equal(with_crowd.masks[1], crowd)


def test_coco_shared_sample_matches_rasterised_pngs(shared_data: Path) -> None:
    folder = shared_data / "coco_val2017_sample"
    if not folder.is_dir():
        pytest.skip("coco sample missing")
    dataset = load_dataset(folder)
    sample = dataset[0]
    assert sample.masks.shape == (6, 480, 640)
    annotations = json.loads((folder / "coco_annotations.json").read_text())
    for ann, mask in zip(annotations, sample.masks):
        png = folder / f"mask_{ann['id']}_cat{ann['category_id']}.png"
        # pycocotools' rasterisation matches the annotated polygon area; the PNGs were filled more generously
        assert mask.sum() == pytest.approx(ann["area"], rel=0.01)
        assert iou(mask, read_mask_png(png)) > 0.9


def test_folder_dataset_binary_indexed_and_per_object(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "masks" / "c").mkdir(parents=True)
    for name in ("a", "b", "c", "orphan"):
        Image.fromarray(np.full((20, 30, 3), 9, np.uint8)).save(tmp_path / "images" / f"{name}.png")
    binary = np.zeros((20, 30), np.uint8)
    binary[2:8, 3:9] = 255
    Image.fromarray(binary).save(tmp_path / "masks" / "a.png")
    indexed = np.zeros((20, 30), np.uint8)
    indexed[1:5, 1:5] = 1
    indexed[10:15, 10:20] = 2
    Image.fromarray(indexed).save(tmp_path / "masks" / "b.png")
    Image.fromarray(binary).save(tmp_path / "masks" / "c" / "cup.png")
    Image.fromarray(255 - binary).save(tmp_path / "masks" / "c" / "table.png")
    dataset = load_dataset(tmp_path)
    assert isinstance(dataset, FolderDataset) and len(dataset) == 3  # orphan has no mask
    a, b, c = list(dataset)
    assert a.masks.shape == (1, 20, 30) and a.masks.sum() == 36
    assert b.labels == ["1", "2"] and b.masks[1].sum() == 50
    assert c.labels == ["cup", "table"] and (c.masks[0] ^ c.masks[1]).all()


def test_davis_dataset_shared_data(shared_data: Path) -> None:
    root = shared_data / "davis2016_val_subset"
    if not root.is_dir():
        pytest.skip("DAVIS subset missing")
    dataset = DavisDataset(root, sequences=["blackswan"], stride=10)
    assert len(dataset) == 5
    sample = dataset[0]
    assert sample.name == "blackswan/00000" and sample.masks.shape == (1, 480, 854) and sample.masks.any()
    video = dataset.videos()[0]
    assert len(video.frames) == 50 and video.object_ids == [1]
    assert video.load_masks(3)[1].shape == (480, 854)
    with pytest.raises(InputError, match="sequences"):
        DavisDataset(root, sequences=["nope"])


def test_load_dataset_rejects_unknown_layouts(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="data"):
        load_dataset(tmp_path)
    with pytest.raises(InputError, match="data"):
        load_dataset(tmp_path / "missing.json")
