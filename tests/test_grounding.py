"""TextSegmenter with a scripted detector behind the Detector interface: phrases map to the planted
detections, boxes reach SAM in one decoder call at the right pixels, errors are clear; CLIP re-ranking with
a known answer; language-guided grasping on the bundled tabletop frame; the `ground` and `grasp --text`
commands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import run_cli
from test_grounding_tiny import build_clip, build_grounding_dino

from robosam.errors import InputError
from robosam.grounding import (
    ClipRanker,
    Detections,
    TextSegmenter,
    grasp_from_text,
    load_detector,
    masked_crops,
    parse_phrases,
)
from robosam.masks import mask_to_box, read_mask_png

TABLETOP = Path(__file__).resolve().parents[1] / "examples" / "tabletop"


class ScriptedDetector:
    """A detector that finds what it was told: (phrase, box, score[, mask]) rows, filtered as a real one."""

    name = "scripted"

    def __init__(self, planted: list[tuple], gives_masks: bool = False):
        self.planted = planted
        self.gives_masks = gives_masks
        self.calls: list[list[str]] = []

    def detect(self, image, phrases, box_threshold, text_threshold) -> Detections:
        self.calls.append(list(phrases))
        rows = [row for row in self.planted if row[0] in phrases and row[2] > box_threshold]
        masks = np.stack([row[3] for row in rows]) if self.gives_masks and rows else None
        if self.gives_masks and not rows:
            masks = np.zeros((0, *image.shape[:2]), dtype=bool)
        return Detections(
            boxes=[row[1] for row in rows], scores=[row[2] for row in rows], labels=[r[0] for r in rows],
            masks=masks, mask_logits=None if masks is None else np.zeros((len(rows), 4, 4)),
        )  # fmt: skip


@pytest.fixture(scope="module")
def gdino_dir(tmp_path_factory) -> Path:
    return build_grounding_dino(tmp_path_factory.mktemp("gdino"))


@pytest.fixture(scope="module")
def segmenter(tiny_model_dirs):
    from robosam.segmenter import Segmenter

    return Segmenter(tiny_model_dirs["sam"], device="cpu")


PLANTED = [
    ("cup", (30.0, 20.0, 79.0, 59.0), 0.9),
    ("bowl", (120.0, 10.0, 180.0, 100.0), 0.6),
    ("spoon", (5.0, 70.0, 40.0, 110.0), 0.2),
]


def test_parse_phrases_and_thresholds():
    assert parse_phrases("Red  cup. bowl . spoon.") == ["red cup", "bowl", "spoon"]
    assert parse_phrases(["cup", "Cup", "bowl"]) == ["cup", "bowl"]
    for empty in ("", " . . ", [], 3):
        with pytest.raises(InputError, match="text"):
            parse_phrases(empty)


def test_text_segmenter_maps_phrases_to_planted_boxes_in_one_decoder_call(segmenter, rgb_image, monkeypatch):
    detector = ScriptedDetector(PLANTED)
    text_segmenter = TextSegmenter(segmenter, detector=detector)
    seen = []
    decode = segmenter.decode_objects
    monkeypatch.setattr(
        segmenter, "decode_objects", lambda emb, objects, *a, **k: seen.append(objects) or decode(emb, objects, *a, **k)
    )  # fmt: skip
    result = text_segmenter.segment(rgb_image, "cup. bowl. spoon", box_threshold=0.3)
    assert detector.calls == [["cup", "bowl", "spoon"]]
    assert list(result.labels) == ["cup", "bowl"]  # spoon is below the box threshold
    np.testing.assert_allclose(result.scores, [0.9, 0.6])
    np.testing.assert_allclose(result.data["detector_boxes"], [PLANTED[0][1], PLANTED[1][1]])
    assert len(seen) == 1  # one batched decoder call for both boxes
    np.testing.assert_allclose([o.box for o in seen[0]], [PLANTED[0][1], PLANTED[1][1]])  # pixels, unchanged
    monkeypatch.undo()
    direct = segmenter.decode(segmenter.embed(rgb_image), box=[PLANTED[0][1], PLANTED[1][1]], multimask=False)
    np.testing.assert_array_equal(result.masks, direct.masks)
    np.testing.assert_allclose(result.data["mask_scores"], direct.scores)
    assert result.masks.shape == (2, 120, 200)
    only_bowl = text_segmenter.segment(rgb_image, "bowl", box_threshold=0.3)
    assert list(only_bowl.labels) == ["bowl"]
    np.testing.assert_array_equal(only_bowl.masks[0], direct.masks[1])


def test_a_phrase_that_matches_nothing_is_an_empty_result(segmenter, rgb_image):
    text_segmenter = TextSegmenter(segmenter, detector=ScriptedDetector(PLANTED))
    result = text_segmenter.segment(rgb_image, "giraffe")
    assert len(result) == 0 and result.masks.shape == (0, 120, 200) and len(result.labels) == 0


def test_text_segmenter_errors(segmenter, rgb_image):
    text_segmenter = TextSegmenter(segmenter, detector=ScriptedDetector(PLANTED))
    with pytest.raises(InputError, match="text.*non-empty phrase"):
        text_segmenter.segment(rgb_image, "  ")
    with pytest.raises(InputError, match="box_threshold.*between 0 and 1"):
        text_segmenter.segment(rgb_image, "cup", box_threshold=1.5)
    with pytest.raises(InputError, match="text_threshold.*between 0 and 1"):
        text_segmenter.segment(rgb_image, "cup", text_threshold=-0.1)
    with pytest.raises(InputError, match="max_detections"):
        text_segmenter.segment(rgb_image, "cup", max_detections=0)
    with pytest.raises(InputError, match="segmenter"):
        TextSegmenter(None, detector=ScriptedDetector(PLANTED))  # boxes only: needs a SAM


def test_max_detections_keeps_the_best(segmenter, rgb_image):
    text_segmenter = TextSegmenter(segmenter, detector=ScriptedDetector(PLANTED))
    result = text_segmenter.segment(rgb_image, "spoon. bowl. cup", box_threshold=0.1, max_detections=2)
    assert list(result.labels) == ["cup", "bowl"]


# CLIP re-ranking ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clip_parts(tmp_path_factory):
    return build_clip(tmp_path_factory.mktemp("clip"))


def _squares() -> tuple[np.ndarray, np.ndarray]:
    image = np.full((80, 120, 3), 128, dtype=np.uint8)
    masks = np.zeros((3, 80, 120), dtype=bool)
    for i, (colour, x) in enumerate([((0, 200, 0), 5), ((220, 0, 0), 45), ((0, 0, 230), 85)]):
        image[20:50, x : x + 30] = colour
        masks[i, 20:50, x : x + 30] = True
    return image, masks


def test_clip_ranking_puts_the_provably_most_similar_crop_first(clip_parts):
    model, processor = clip_parts
    model = type(model)(model.config).eval()  # a private copy whose text projection this test rewrites
    model.load_state_dict(clip_parts[0].state_dict())
    image, masks = _squares()
    # make "red"'s text embedding equal the image embedding of a plain red picture: the red square's crop
    # (padding 0: exactly the square, all red) then has cosine 1 and every other crop less
    with torch.no_grad():
        red = np.zeros((32, 32, 3), dtype=np.uint8)
        red[:] = (220, 0, 0)
        target = model.get_image_features(**processor(images=red, return_tensors="pt")).pooler_output[0]
        text = processor(text=["a photo of a red"], return_tensors="pt", padding=True)
        pooled = model.text_model(**text).pooler_output[0]
        model.text_projection.weight.copy_(torch.outer(target, pooled) / pooled.dot(pooled))
    ranker = ClipRanker(model, processor, device="cpu", padding=0.0)
    calls = []
    model.register_forward_hook(lambda *args: calls.append(1))
    from robosam.results import MaskResult

    candidates = MaskResult(
        masks=masks, scores=np.ones(3, np.float32), logits=np.zeros((3, 4, 4), np.float32)
    )
    ranked = ranker.rank(image, candidates, "red")
    assert len(calls) == 1  # all crops and the phrase in one CLIP call
    assert ranked.masks[0].sum() == 900 and (image[ranked.masks[0]] == (220, 0, 0)).all()
    assert ranked.data["clip_score"][0] == pytest.approx(1.0, abs=1e-5)
    assert ranked.data["clip_score"][1] < 0.999
    assert np.all(np.diff(ranked.data["clip_score"]) <= 0)


def test_clip_scores_in_one_batch_equal_scores_one_at_a_time(clip_parts):
    ranker = ClipRanker(*clip_parts, device="cpu")
    image, masks = _squares()
    batched = ranker.similarity(image, masks, ["red", "blue box"])
    alone = np.concatenate([ranker.similarity(image, m[None], ["red", "blue box"]) for m in masks])
    np.testing.assert_allclose(batched, alone, atol=1e-5)
    assert batched.shape == (3, 2)
    with pytest.raises(InputError, match="masks"):
        ranker.similarity(image, np.zeros((1, 80, 120), bool), ["red"])


def test_masked_crops_hide_the_background_and_are_square():
    image, masks = _squares()
    crops = masked_crops(image, masks[1:2], padding=0.1)
    assert crops[0].shape == (36, 36, 3)  # 30 px + 3 px margin each side
    assert (crops[0][3:33, 3:33] == (220, 0, 0)).all()
    assert (crops[0][0, 0] == (122, 116, 104)).all()  # outside the mask: CLIP's mean colour


def test_text_segmenter_with_a_ranker_labels_each_mask_with_a_clip_score(segmenter, rgb_image, clip_parts):
    ranker = ClipRanker(*clip_parts, device="cpu")
    text_segmenter = TextSegmenter(segmenter, detector=ScriptedDetector(PLANTED), ranker=ranker)
    result = text_segmenter.segment(rgb_image, "cup. bowl", box_threshold=0.3)
    assert sorted(result.labels) == ["bowl", "cup"]
    assert np.all(np.diff(result.data["clip_score"]) <= 0)


# language-guided grasping -------------------------------------------------------------------------------
def _tabletop():
    from robosam.geometry import CameraIntrinsics, load_depth
    from robosam.io import load_image

    depth, scale = load_depth(TABLETOP / "depth.png")
    return (
        load_image(TABLETOP / "color.png"),
        depth,
        scale,
        CameraIntrinsics.from_file(TABLETOP / "camera.json"),
    )


def test_grasp_from_text_on_the_tabletop_frame_matches_the_mask_pipeline():
    from robosam.geometry import grasp_from_mask
    from robosam.geometry.synthetic import demo_scene

    rgb, depth, scale, camera = _tabletop()
    box_mask = read_mask_png(TABLETOP / "box_mask.png")
    box = tuple(mask_to_box(box_mask[None])[0])
    detector = ScriptedDetector([("box", box, 0.8, box_mask), ("cup", (0, 0, 9, 9), 0.9, box_mask)], True)
    text_segmenter = TextSegmenter(None, detector=detector)  # a detector with masks (SAM 3's path)
    picked = grasp_from_text(text_segmenter, rgb, depth, camera, "box", scale)
    reference = grasp_from_mask(box_mask, depth, camera, scale, rgb=rgb)
    np.testing.assert_allclose(picked.found.pose.center, reference.pose.center)
    assert picked.match.labels[0] == "box" and len(picked.found.grasps) == len(reference.grasps) > 0
    truth = demo_scene(depth_noise=0.001, hole_fraction=0.02).poses[0]
    assert np.linalg.norm(picked.found.pose.center - truth.center) < 0.005
    assert picked.to_dict()["match"]["label"] == "box"
    assert grasp_from_text(text_segmenter, rgb, depth, camera, "giraffe", scale) is None


def test_grasp_from_text_sends_the_detector_box_to_sam(segmenter):
    rgb, depth, scale, camera = _tabletop()
    box = tuple(mask_to_box(read_mask_png(TABLETOP / "box_mask.png")[None])[0])
    text_segmenter = TextSegmenter(segmenter, detector=ScriptedDetector([("box", box, 0.8)]))
    picked = grasp_from_text(text_segmenter, rgb, depth, camera, "box", scale)
    expected = segmenter.decode(segmenter.embed(rgb), box=box, multimask=False).masks[0]
    np.testing.assert_array_equal(picked.match.masks[0], expected)
    assert len(picked.found.cloud) > 0


# commands -----------------------------------------------------------------------------------------------
def _grasp_args(out: Path) -> list[str]:
    return ["grasp", str(TABLETOP / "color.png"), str(TABLETOP / "depth.png"),
            "--intrinsics", str(TABLETOP / "camera.json"), "--out", str(out)]  # fmt: skip


def test_grasp_cli_with_text_matches_grasp_with_the_mask(tmp_path, monkeypatch):
    import robosam.grounding

    box_mask = read_mask_png(TABLETOP / "box_mask.png")
    box = tuple(mask_to_box(box_mask[None])[0])
    detector = ScriptedDetector([("box", box, 0.8, box_mask)], gives_masks=True)
    monkeypatch.setattr(robosam.grounding, "load_detector", lambda *a, **k: detector)
    assert run_cli([*_grasp_args(tmp_path / "text"), "--text", "box"]) == 0
    assert run_cli([*_grasp_args(tmp_path / "mask"), "--mask", str(TABLETOP / "box_mask.png")]) == 0
    by_text = json.loads((tmp_path / "text" / "grasps.json").read_text())
    by_mask = json.loads((tmp_path / "mask" / "grasps.json").read_text())
    assert by_text["pose"] == by_mask["pose"] and by_text["grasps"] == by_mask["grasps"]
    assert by_text["match"]["label"] == "box" and by_text["prompt"]["text"] == "box"
    assert run_cli([*_grasp_args(tmp_path / "none"), "--text", "giraffe"]) == 1


def test_grasp_cli_text_errors_come_before_loading(tmp_path, capsys):
    args = _grasp_args(tmp_path)
    assert run_cli([*args, "--text", " ", "--detector", "no-such-detector"]) == 2
    assert "--text" in capsys.readouterr().err
    assert run_cli([*args, "--text", "box", "--box-threshold", "2", "--detector", "no-such"]) == 2
    assert "--box-threshold" in capsys.readouterr().err
    assert run_cli([*args, "--text", "box", "--point", "3,4"]) == 2
    assert "exactly one" in capsys.readouterr().err


def test_ground_cli_writes_masks_overlay_and_coco(tmp_path, gdino_dir, tiny_sam_dir, rgb_image):
    from PIL import Image

    image = tmp_path / "scene.png"
    Image.fromarray(rgb_image).save(image)
    out = tmp_path / "out"
    args = ["ground", str(image), "--text", "red cup. bowl", "--detector", str(gdino_dir),
            "--model", str(tiny_sam_dir), "--device", "cpu", "--out", str(out)]  # fmt: skip
    assert run_cli([*args, "--box-threshold", "0", "--text-threshold", "0", "--max-detections", "3"]) == 0
    coco = json.loads((out / "coco.json").read_text())
    assert [c["name"] for c in coco["categories"]] == ["red cup", "bowl"]
    assert len(coco["annotations"]) == 3
    assert coco["images"][0]["height"] == 120 and coco["images"][0]["width"] == 200
    for record in coco["annotations"]:
        assert record["category_id"] in (1, 2) and "counts" in record["segmentation"]
        assert (out / record["file"]).is_file()
    assert np.asarray(Image.open(out / "overlay.png")).shape == (120, 200, 3)
    empty = tmp_path / "empty"
    assert run_cli([*args[:-1], str(empty), "--box-threshold", "1"]) == 0
    assert json.loads((empty / "coco.json").read_text())["annotations"] == []


def test_ground_cli_reranks_with_clip(tmp_path, gdino_dir, tiny_sam_dir, rgb_image):
    from PIL import Image

    image = tmp_path / "scene.png"
    Image.fromarray(rgb_image).save(image)
    model, processor = build_clip(tmp_path)
    model.save_pretrained(tmp_path / "clip")
    processor.save_pretrained(tmp_path / "clip")
    out = tmp_path / "out"
    code = run_cli(
        ["ground", str(image), "--text", "red cup", "--detector", str(gdino_dir), "--model", str(tiny_sam_dir),
         "--clip", str(tmp_path / "clip"), "--box-threshold", "0", "--text-threshold", "0", "--device", "cpu",
         "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    scores = [a["clip_score"] for a in json.loads((out / "coco.json").read_text())["annotations"]]
    assert len(scores) > 1 and scores == sorted(scores, reverse=True)


def test_ground_cli_errors_come_before_loading(tmp_path, capsys, sample_image_path):
    base = ["ground", str(sample_image_path), "--detector", "no-such-detector", "--out", str(tmp_path)]
    assert run_cli([*base, "--text", ". ."]) == 2
    assert "--text" in capsys.readouterr().err
    assert run_cli([*base, "--text", "cup", "--text-threshold", "1.2"]) == 2
    assert "--text-threshold" in capsys.readouterr().err
    assert run_cli(["ground", str(tmp_path / "missing.jpg"), "--text", "cup"]) == 2
    assert run_cli([*base, "--text", "cup"]) == 2
    assert "detector" in capsys.readouterr().err


def test_load_detector_passes_a_detector_through():
    detector = ScriptedDetector(PLANTED)
    assert load_detector(detector) is detector
