"""Prompt protocols and runners with oracle models that answer from the ground truth."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from robosam.data import DavisDataset, FolderDataset, ImageSample
from robosam.errors import InputError
from robosam.evaluation.protocols import (
    ClickProtocol,
    ImagePredictor,
    SinglePromptProtocol,
    VideoProtocol,
    VideoTracker,
    interior_point,
    jittered_box,
    make_protocol,
    next_click,
)
from robosam.evaluation.report import write_report
from robosam.evaluation.runner import evaluate_images, evaluate_videos
from robosam.results import MaskResult


class RegionOracle:
    """An image predictor that knows a partition of the image into regions (label map, 0 = background).

    A click selects the whole region under it: the prediction is the union of regions holding a positive
    click, plus every ``distractor`` region without a negative click in it, minus regions holding a negative
    click. A box selects the non-background pixels inside it. With ``multimask`` it adds two worse masks
    (empty, everything) with lower scores. ``last_timings`` reports a fixed encoder time on the first call
    after ``set_image`` and 0.0 (cached) after.
    """

    def __init__(self, regions: np.ndarray, distractors: tuple[int, ...] = ()):
        self.regions = regions
        self.distractors = distractors
        self.last_timings = {"encoder_s": 0.0, "decoder_s": 0.0, "postprocess_s": 0.0}
        self.calls: list[dict[str, Any]] = []
        self._fresh = False

    def set_image(self, image: Any) -> None:
        assert np.asarray(image).shape[:2] == self.regions.shape
        self._fresh = True

    def predict(self, points=None, labels=None, box=None, mask_input=None, multimask=True) -> MaskResult:
        self.calls.append({"points": points, "labels": labels, "box": box, "mask_input": mask_input})
        mask = np.zeros(self.regions.shape, dtype=bool)
        negatives = set()
        if points is not None:
            for (x, y), label in zip(np.asarray(points), np.asarray(labels)):
                region = int(self.regions[int(round(y)), int(round(x))])
                if region == 0:
                    continue
                if label == 1:
                    mask |= self.regions == region
                else:
                    negatives.add(region)
            for region in self.distractors:
                if region not in negatives:
                    mask |= self.regions == region
            for region in negatives:
                mask &= self.regions != region
        if box is not None:
            x1, y1, x2, y2 = (int(round(v)) for v in box)
            mask[y1:y2, x1:x2] = self.regions[y1:y2, x1:x2] > 0
        masks = [mask, np.zeros_like(mask), np.ones_like(mask)] if multimask else [mask]
        scores = np.array([0.9, 0.2, 0.1][: len(masks)], dtype=np.float32)
        logits = np.stack(
            [
                np.full((256, 256), float(i), np.float32)
                for i in range(len(self.calls), len(self.calls) + len(masks))
            ]
        )
        self.last_timings = {
            "encoder_s": 0.25 if self._fresh else 0.0,
            "decoder_s": 0.01,
            "postprocess_s": 0.002,
        }
        self._fresh = False
        return MaskResult(masks=np.stack(masks), scores=scores, logits=logits)


def squares(shape: tuple[int, int], specs: list[tuple[int, int, int]]) -> np.ndarray:
    """Label map with square ``i + 1`` at (y0, x0) of side ``s`` for each spec."""
    regions = np.zeros(shape, dtype=np.int32)
    for index, (y0, x0, side) in enumerate(specs):
        regions[y0 : y0 + side, x0 : x0 + side] = index + 1
    return regions


def test_oracle_satisfies_the_predictor_protocol() -> None:
    assert isinstance(RegionOracle(np.zeros((4, 4), int)), ImagePredictor)


def test_click_simulation_reaches_targets_in_known_clicks() -> None:
    # three pieces of one object: areas 900, 144, 121 -> IoU 900/1165, 1044/1165 (0.896), 1.0
    regions = squares((100, 100), [(5, 5, 30), (60, 60, 12), (70, 10, 11)])
    gt = regions > 0
    oracle = RegionOracle(regions)
    oracle.set_image(np.zeros((100, 100, 3), np.uint8))
    outcome = ClickProtocol(max_clicks=20).run(oracle, gt)
    np.testing.assert_allclose(outcome.ious[:3], [900 / 1165, 1044 / 1165, 1.0])
    assert outcome.ious.shape == (20,) and (outcome.ious[2:] == 1.0).all()
    assert outcome.noc == {0.85: 2, 0.90: 3} and all(outcome.reached.values())
    assert [c[2] for c in outcome.clicks] == [1, 1, 1]
    expected_regions = [1, 2, 3]  # largest error region first
    assert [int(regions[y, x]) for x, y, _ in outcome.clicks] == expected_regions
    x, y, _ = outcome.clicks[0]
    assert abs(x - 19.5) <= 0.5 and abs(y - 19.5) <= 0.5  # the middle of the 30-px square
    # the previous best logits come back as mask_input from the second click on, one mask asked after the first
    assert oracle.calls[0]["mask_input"] is None
    assert oracle.calls[1]["mask_input"] is not None and float(oracle.calls[1]["mask_input"].mean()) == 1.0
    assert len(outcome.timings) == 3 and outcome.dice == 1.0 and outcome.boundary_f1 == 1.0


def test_click_simulation_places_negative_click_on_false_region() -> None:
    regions = squares((80, 80), [(5, 5, 20), (50, 50, 15)])  # region 2 is a distractor the model adds
    gt = regions == 1
    oracle = RegionOracle(regions, distractors=(2,))
    outcome = ClickProtocol(max_clicks=5, thresholds=(0.85, 0.9)).run(oracle, gt)
    np.testing.assert_allclose(outcome.ious[:2], [400 / 625, 1.0])
    assert [c[2] for c in outcome.clicks] == [1, 0]
    assert regions[outcome.clicks[1][1], outcome.clicks[1][0]] == 2
    assert outcome.noc == {0.85: 2, 0.9: 2}


def test_click_simulation_caps_at_max_clicks_when_never_reached() -> None:
    regions = squares((40, 40), [(5, 5, 10)])
    gt = np.zeros((40, 40), bool)
    gt[5:17, 5:15] = True  # the model only ever gives the 10x10 square, never the 2x10 strip: IoU 100/120
    outcome = ClickProtocol(max_clicks=4).run(RegionOracle(regions), gt)
    assert outcome.ious.shape == (4,) and np.allclose(outcome.ious, 100 / 120)
    assert outcome.clicks[1][1] in (15, 16)  # the second click goes to the missed strip
    assert outcome.noc == {0.85: 4, 0.9: 4} and not any(outcome.reached.values())


def test_next_click_rules() -> None:
    gt = np.zeros((30, 30), bool)
    gt[5:25, 5:25] = True
    assert next_click(gt, gt) is None
    pred = gt.copy()
    pred[5:25, 5:10] = False  # missed strip 20x5
    pred[26:29, 0:30] = True  # false strip 3x30 (larger area 90 < 100)
    x, y, label = next_click(pred, gt)
    assert label == 1 and 5 <= x < 10 and 5 <= y < 25
    with pytest.raises(InputError):
        ClickProtocol(max_clicks=0)


def test_prompt_generators() -> None:
    mask = np.zeros((50, 60), bool)
    mask[10:20, 5:45] = True
    mask[20:40, 5:15] = True  # an L: the centroid lies outside, the interior point inside
    x, y = interior_point(mask)
    assert mask[y, x]
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(jittered_box(mask, 0, rng), [5, 10, 44, 39])  # last pixels, inclusive
    boxes = np.stack([jittered_box(mask, 3, rng) for _ in range(200)])
    assert np.abs(boxes - [5, 10, 44, 39]).max() <= 3 and boxes.std(axis=0).min() > 0.5
    corner = np.zeros((10, 10), bool)
    corner[9, 9] = True
    tiny = np.stack([jittered_box(corner, 5, rng) for _ in range(200)])
    assert tiny.min() >= 0 and tiny.max() <= 10 and (tiny[:, 2:] - tiny[:, :2]).min() > 0.999
    noisy = [make_protocol("point-noise", noise_px=4).prompt(mask, rng)["points"][0] for _ in range(300)]
    spread = np.std(np.asarray(noisy), axis=0)
    assert np.all((spread > 3) & (spread < 5))
    for _ in range(20):
        px, py = make_protocol("random-point").prompt(mask, rng)["points"][0]
        assert mask[int(py), int(px)]
    with pytest.raises(InputError, match="protocol"):
        make_protocol("lasso")


def _folder(tmp_path: Path) -> FolderDataset:
    (tmp_path / "images").mkdir(parents=True)
    (tmp_path / "masks").mkdir()
    for name, regions in {
        "one": squares((60, 80), [(5, 5, 20), (30, 40, 25)]),
        "two": squares((60, 80), [(10, 50, 15)]),
    }.items():
        Image.fromarray(np.zeros((60, 80, 3), np.uint8)).save(tmp_path / "images" / f"{name}.png")
        Image.fromarray(regions.astype(np.uint8)).save(tmp_path / "masks" / f"{name}.png")
    return FolderDataset(tmp_path)


class PerImageOracle:
    """Routes calls to a RegionOracle built from each image's own ground-truth label map."""

    def __init__(self, dataset: FolderDataset, mutate=None):
        self.dataset = dataset
        self.current: RegionOracle | None = None
        self.mutate = mutate
        self.last_timings = {"encoder_s": 0.0, "decoder_s": 0.0, "postprocess_s": 0.0}
        self.queue = [s for s in dataset]

    def set_image(self, image: Any) -> None:
        sample: ImageSample = self.queue.pop(0)
        regions = np.zeros(sample.masks.shape[1:], np.int32)
        for index, mask in enumerate(sample.masks):
            regions[mask] = index + 1
        self.current = RegionOracle(self.mutate(regions) if self.mutate else regions)
        self.current.set_image(image)

    def predict(self, **kwargs: Any) -> MaskResult:
        result = self.current.predict(**kwargs)
        self.last_timings = self.current.last_timings
        return result


def test_runner_and_report_with_oracle(tmp_path: Path) -> None:
    dataset = _folder(tmp_path / "data")
    center = evaluate_images(PerImageOracle(dataset), dataset, make_protocol("center"))
    summary = center.summary()
    assert summary["objects"] == 3 and summary["images"] == 2 and summary["mIoU"] == 1.0
    assert center.latency()["encoder"]["count"] == 2 and center.latency()["decoder"]["count"] == 3
    assert center.latency()["encoder"]["median_ms"] == pytest.approx(250.0)

    # box shrunk by 4 px of jitter at most: the oracle returns what lies inside the box
    boxed = evaluate_images(
        PerImageOracle(dataset), dataset, SinglePromptProtocol("box", jitter_px=4), seed=1
    )
    assert 0.4 < boxed.summary()["mIoU"] <= 1.0
    assert all(r.prompt is not None and "box" in r.prompt for r in boxed.records)

    clicks = evaluate_images(PerImageOracle(dataset), dataset, ClickProtocol(max_clicks=5))
    s = clicks.summary()
    assert s["NoC@85"] == 1.0 and s["NoC@90"] == 1.0 and s["NoF@90"] == 0 and s["mIoU@k"]["1"] == 1.0

    written = write_report({"title": "test", **clicks.to_dict()}, tmp_path / "out")
    assert {"metrics", "report", "miou_vs_clicks", "latency", "per_sequence"} <= set(written)
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["summary"]["NoC@90"] == 1.0 and len(metrics["per_object"]) == 3
    assert metrics["per_object"][0]["noc"] == {"85": 1, "90": 1}
    report = (tmp_path / "out" / "report.md").read_text()
    assert "NoC@90" in report and "miou_vs_clicks.png" in report
    for name in ("miou_vs_clicks", "latency", "per_sequence"):
        with Image.open(written[name]) as image:
            assert image.size[0] > 100
    assert not list((tmp_path / "out").glob(".*tmp*"))


def _write_davis(root: Path, n_frames: int = 6) -> None:
    for t in range(n_frames):
        ids = np.zeros((40, 64), np.uint8)
        ids[5:20, 5 + t : 25 + t] = 1
        ids[25:38, 30:60] = 2
        (root / "JPEGImages" / "480p" / "seq").mkdir(parents=True, exist_ok=True)
        (root / "Annotations" / "480p" / "seq").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((40, 64, 3), np.uint8)).save(
            root / "JPEGImages" / "480p" / "seq" / f"{t:05d}.jpg"
        )
        pil = Image.fromarray(ids, mode="P")
        pil.putpalette([0, 0, 0, 200, 0, 0, 0, 200, 0] + [0] * 759)
        pil.save(root / "Annotations" / "480p" / "seq" / f"{t:05d}.png")


class GroundTruthTracker:
    """A tracker that answers with the ground truth of each frame (optionally shifted right by ``shift`` px)."""

    def __init__(self, video_masks, shift: int = 0):
        self.video_masks = video_masks
        self.shift = shift
        self.added: list[tuple[int, int, dict[str, Any]]] = []

    @contextmanager
    def session(self, source: Any):
        tracker = self

        class Session:
            def add(self, frame: int, obj_id: int, points=None, labels=None, mask=None):
                tracker.added.append((frame, obj_id, {"points": points, "labels": labels, "mask": mask}))

            def propagate(self):
                for index, masks in enumerate(tracker.video_masks):
                    yield index, {k: np.roll(m, tracker.shift, axis=1) for k, m in masks.items()}

        assert Path(source).is_dir()
        yield Session()


def test_video_protocol_plugs_a_tracker(tmp_path: Path) -> None:
    _write_davis(tmp_path)
    video = DavisDataset(tmp_path).videos()[0]
    truth = [video.load_masks(i) for i in range(len(video.frames))]
    perfect = GroundTruthTracker(truth)
    assert isinstance(perfect, VideoTracker)
    scores = evaluate_videos(perfect, [video], VideoProtocol("mask"))
    assert scores.global_metrics()["J&F-Mean"] == 1.0 and len(scores.objects) == 2
    assert [(f, o) for f, o, _ in perfect.added] == [(0, 1), (0, 2)]
    np.testing.assert_array_equal(perfect.added[0][2]["mask"], truth[0][1])

    shifted = GroundTruthTracker(truth, shift=3)
    clicked = evaluate_videos(shifted, [video], VideoProtocol("click"))
    x, y = shifted.added[0][2]["points"][0]
    assert truth[0][1][y, x] and shifted.added[0][2]["labels"] == [1]
    j = clicked.objects[0].j
    assert j.shape == (4,) and np.allclose(j, 15 * 17 / (15 * 23))  # 20-wide box moved by 3 px
