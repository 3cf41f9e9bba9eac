"""The semi-supervised video protocols on the tracker, through ``robosam eval``, and objects entering mid-video
(DAVIS-2017 judo, from Cutie's examples)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import run_cli
from PIL import Image
from test_video_models import (
    mask_iou,
    one_torch_thread,  # noqa: F401 - autouse fixture
    synthetic_frames,
    tiny_tracker,
    tiny_video_model,
)

from robosam.video.writers import write_palette_png

GLOBAL_KEYS = ["J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"]
COLOURS = {1: (220, 180, 40), 2: (40, 200, 90)}  # the two blocks of the synthetic frames


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny_video_model")
    tiny_video_model("sam2").save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def davis_root(tmp_path_factory) -> Path:
    """A DAVIS root with one 10-frame sequence: JPEG frames, palette annotations of the two blocks."""
    root = tmp_path_factory.mktemp("davis")
    images = root / "JPEGImages" / "480p" / "blocks"
    annotations = root / "Annotations" / "480p" / "blocks"
    images.mkdir(parents=True)
    annotations.mkdir(parents=True)
    for index, frame in enumerate(synthetic_frames(10)):
        Image.fromarray(frame).save(images / f"{index:05d}.jpg", quality=95)
        ids = np.zeros(frame.shape[:2], dtype=np.uint8)
        for obj_id, colour in COLOURS.items():
            ids[(frame == colour).all(axis=2)] = obj_id
        write_palette_png(ids, annotations / f"{index:05d}.png")
    return root


@pytest.mark.parametrize("protocol", ["video-mask", "video-click"])
def test_video_protocols_run_on_the_tracker(
    davis_root: Path, model_dir: Path, tmp_path: Path, protocol
) -> None:
    out = tmp_path / "eval"
    argv = ["eval", "--data", str(davis_root), "--protocol", protocol, "--model", str(model_dir)]
    assert run_cli([*argv, "--device", "cpu", "--out", str(out), "--no-plots"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics["global"]) == GLOBAL_KEYS
    assert all(0.0 <= metrics["global"][key] <= 1.0 for key in GLOBAL_KEYS if not key.endswith("Decay"))
    assert len(metrics["per_object"]) == 2


def test_video_mask_j_is_the_mean_iou_of_the_tracked_masks(
    davis_root: Path, model_dir: Path, tmp_path: Path
) -> None:
    """J-Mean of ``eval --protocol video-mask`` (run through the CLI on the saved model) equals the mean IoU of
    the masks a session gives for the same first-frame masks, first and last frames left out as DAVIS does."""
    from robosam.data.samples import read_object_ids

    out = tmp_path / "eval"
    argv = ["eval", "--data", str(davis_root), "--protocol", "video-mask", "--model", str(model_dir)]
    assert run_cli([*argv, "--device", "cpu", "--out", str(out), "--no-plots"]) == 0
    j_mean = json.loads((out / "metrics.json").read_text())["global"]["J-Mean"]

    annotations = sorted((davis_root / "Annotations" / "480p" / "blocks").glob("*.png"))
    truth = [read_object_ids(path) for path in annotations]
    with tiny_tracker("sam2").session(davis_root / "JPEGImages" / "480p" / "blocks") as session:
        for obj_id in (1, 2):
            session.add(frame=0, obj_id=obj_id, mask=truth[0] == obj_id)
        tracks = dict(session.propagate())
    per_object = [
        np.mean([mask_iou(tracks[f][obj_id].mask, truth[f] == obj_id) for f in range(1, len(truth) - 1)])
        for obj_id in (1, 2)
    ]
    assert j_mean == pytest.approx(float(np.mean(per_object)), abs=1e-9)


def test_objects_entering_mid_video_are_tracked_from_their_first_frame(shared_data: Path) -> None:
    """cutie_judo: objects 1..4 enter on frames 0, 5, 8, 13, each prompted by its mask there (the frame-5 mask
    is one column narrower than the video and is fitted to it)."""
    from robosam.data.samples import read_object_ids

    root = shared_data / "cutie_judo"
    if not root.is_dir():
        pytest.skip(f"{root} not found")
    entries = {0: 1, 5: 2, 8: 3, 13: 4}
    with tiny_tracker("sam2").session(root / "images" / "judo") as session:
        prompts = {}
        for frame, obj_id in entries.items():
            ids = read_object_ids(root / "masks" / "judo" / f"{frame:05d}.png")
            prompts[obj_id] = ids == obj_id
            track = session.add(frame=frame, obj_id=obj_id, mask=prompts[obj_id])
            assert track.visible and track.mask.shape == (480, 854)
        results = dict(session.propagate())
    assert sorted(results) == list(range(16))
    for frame, tracks in results.items():
        assert sorted(tracks) == [o for f, o in entries.items() if f <= frame], frame
    for frame, obj_id in entries.items():  # the prompted frame gives back the prompt, as coarsely as a
        prompt = prompts[
            obj_id
        ]  # 64 px model can: IoU 0.80, 0.37, 0.25, 0.68 measured (objects 2 and 3 thin)
        width = min(prompt.shape[1], 854)
        assert mask_iou(results[frame][obj_id].mask[:, :width], prompt[:, :width]) > 0.15
