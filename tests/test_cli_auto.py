"""`robosam auto` end to end on a folder of two small images with a tiny model folder."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import run_cli
from PIL import Image

from robosam.masks import decode_rle


@pytest.fixture
def image_dir(tmp_path, rgb_image):
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(rgb_image).save(folder / "a.png")
    Image.fromarray(rgb_image[::-1, ::-1].copy()).save(folder / "b.jpg")
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_auto_writes_coco_json_and_overlays(tiny_sam_dir, image_dir, tmp_path, capsys):
    from pycocotools.coco import COCO

    out = tmp_path / "out"
    code = run_cli(
        ["auto", str(image_dir), "--model", str(tiny_sam_dir), "--points-per-side", "4",
         "--pred-iou-thresh", "0", "--stability-score-thresh", "0", "--box-nms-thresh", "0.9",
         "--device", "cpu", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "a.png:" in printed and "b.jpg:" in printed
    coco = json.loads((out / "coco.json").read_text())
    assert [image["file_name"].rsplit("/", 1)[-1] for image in coco["images"]] == ["a.png", "b.jpg"]
    assert coco["annotations"], "no masks written"
    api = COCO()
    api.dataset = coco
    api.createIndex()
    for annotation in coco["annotations"]:
        mask = decode_rle(annotation["segmentation"])
        assert mask.shape == (120, 200)
        assert annotation["area"] == int(mask.sum())
        np.testing.assert_array_equal(api.annToMask(annotation).astype(bool), mask)
        assert annotation["crop_box"] == [0, 0, 200, 120]
        assert len(annotation["point_coords"]) == 1
        assert 0 <= annotation["stability_score"] <= 1
    assert len({a["id"] for a in coco["annotations"]}) == len(coco["annotations"])
    for name in ("a", "b"):
        overlay = np.asarray(Image.open(out / "overlays" / f"{name}.png"))
        assert overlay.shape == (120, 200, 3)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["missing.jpg"], "IMAGE_OR_DIR"),
        (["{empty}"], "IMAGE_OR_DIR"),
        (["{image}", "--points-per-side", "0"], "points_per_side"),
        (["{image}", "--crop-overlap-ratio", "1.5"], "crop_overlap_ratio"),
        (["{image}", "--min-mask-region-area", "-1"], "min_mask_region_area"),
    ],
)
def test_auto_rejects_bad_input_before_loading_a_model(args, needle, image_dir, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    args = [a.format(empty=empty, image=image_dir / "a.png") for a in args]
    code = run_cli(["auto", *args, "--model", "no-such-model-anywhere", "--out", str(tmp_path / "o")])
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("robosam: error:") and needle in error and "\n" not in error


def test_auto_use_m2m_refines_as_the_library_does(tiny_sam_dir, image_dir, tmp_path):
    """``--use-m2m`` reaches AutoMasker: the written scores are the m2m-refined ones, which differ from the
    unrefined ones."""
    from robosam.automatic import AutoMasker
    from robosam.segmenter import Segmenter

    image, out = image_dir / "a.png", tmp_path / "out"
    code = run_cli(
        ["auto", str(image), "--model", str(tiny_sam_dir), "--points-per-side", "4", "--pred-iou-thresh", "0",
         "--stability-score-thresh", "0", "--box-nms-thresh", "0.9", "--use-m2m", "--device", "cpu",
         "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    written = sorted(a["score"] for a in json.loads((out / "coco.json").read_text())["annotations"])
    knobs = {"points_per_side": 4, "pred_iou_thresh": 0, "stability_score_thresh": 0, "box_nms_thresh": 0.9}
    segmenter = Segmenter(str(tiny_sam_dir), device="cpu")
    refined = sorted(AutoMasker(segmenter, **knobs, use_m2m=True).generate(str(image)).scores.tolist())
    plain = sorted(AutoMasker(segmenter, **knobs).generate(str(image)).scores.tolist())
    assert len(written) == len(refined) > 0
    np.testing.assert_allclose(written, refined, atol=1e-5)
    assert len(plain) != len(refined) or not np.allclose(plain, refined, atol=1e-3)
