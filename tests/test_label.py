"""robosam label: local and Ray engines give the same labels; killed runs resume; bad images are recorded."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import require_peer, run_cli
from PIL import Image
from pycocotools import mask as coco_mask

from robosam.errors import InputError
from robosam.labeling import LabelTask, label, read_boxes_file, resolve_inputs
from robosam.models import ModelSpec


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> tuple[Path, Path]:
    """20 small JPEGs (coloured rectangles on noise), one corrupt file, and a boxes file for them."""
    root = tmp_path_factory.mktemp("label")
    folder = root / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    boxes = {}
    for i in range(20):
        image = rng.integers(0, 60, (48, 64, 3), dtype=np.uint8)
        x, y = int(rng.integers(2, 30)), int(rng.integers(2, 20))
        image[y : y + 20, x : x + 28] = rng.integers(120, 255, 3)
        Image.fromarray(image).save(folder / f"img_{i:02d}.jpg", quality=90)
        boxes[f"img_{i:02d}.jpg"] = [[x, y, x + 28, y + 20], [0, 0, 20, 20]][: 1 + i % 2]
    (folder / "img_99.jpg").write_bytes(b"not a jpeg at all")
    boxes_file = root / "boxes.json"
    boxes_file.write_text(json.dumps(boxes))
    return folder, boxes_file


def boxes_task(tiny_sam_dir, boxes_file) -> LabelTask:
    return LabelTask(
        "boxes", ModelSpec(str(tiny_sam_dir), device="cpu"), boxes=read_boxes_file(str(boxes_file))
    )


def test_local_run_labels_every_image_and_records_the_corrupt_one(tmp_path, tiny_sam_dir, image_folder):
    folder, boxes_file = image_folder
    summary = label(str(folder), boxes_task(tiny_sam_dir, boxes_file), tmp_path / "out", shard_size=4)
    assert summary["inputs"] == 21 and summary["done"] == 20 and summary["failed"] == 1
    bad = [e for e in summary["images"] if e["status"] == "failed"]
    assert bad[0]["path"].endswith("img_99.jpg") and "img_99.jpg: expected a readable" in bad[0]["reason"]
    labels = json.loads((tmp_path / "out" / "labels.json").read_text())
    assert len(labels["images"]) == 20 and labels["categories"] == [{"id": 1, "name": "object"}]
    assert len(labels["annotations"]) == 30 == summary["annotations"]  # 1 box on even images, 2 on odd
    assert [a["id"] for a in labels["annotations"]] == list(range(1, 31))
    first = labels["annotations"][0]
    rle = {"size": first["segmentation"]["size"], "counts": first["segmentation"]["counts"].encode()}
    assert coco_mask.area(rle) == first["area"] and first["segmentation"]["size"] == [48, 64]
    assert sorted(p.name for p in (tmp_path / "out" / "shards").iterdir()) == [
        f"shard-{i:05d}.json" for i in range(6)
    ]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["inputs"] == 21 and {e["status"] for e in manifest["images"]} == {"done", "failed"}


def test_prefetch_leaves_one_core_to_decoding_and_restores_torch_threads(
    tmp_path, tiny_sam_dir, image_folder
):
    import torch

    folder, boxes_file = image_folder
    task = boxes_task(tiny_sam_dir, boxes_file)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        during = {}
        for prefetch in (4, 0):
            seen: set[int] = set()
            label(str(folder), task, tmp_path / f"p{prefetch}", shard_size=8, prefetch=prefetch,
                  on_image=lambda _, seen=seen: seen.add(torch.get_num_threads()))  # fmt: skip
            during[prefetch] = seen
            assert torch.get_num_threads() == 2
        assert during == {4: {1}, 0: {2}}
    finally:
        torch.set_num_threads(before)


def test_an_error_in_the_decoding_thread_reaches_the_caller(
    tmp_path, tiny_sam_dir, image_folder, monkeypatch
):
    """The prefetch thread failing (anything but an unreadable image, which is recorded) raises in the
    caller instead of leaving it waiting for images that never come."""
    import threading

    import robosam.labeling.local as local

    folder, boxes_file = image_folder
    calls = []
    real_decode = local.decode

    def decode(item):
        calls.append(item)
        if len(calls) == 3:
            raise RuntimeError("disk went away")
        return real_decode(item)

    monkeypatch.setattr(local, "decode", decode)
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            label(
                str(folder), boxes_task(tiny_sam_dir, boxes_file), tmp_path / "out", shard_size=2, prefetch=4
            )
            outcome.append(None)
        except BaseException as error:  # noqa: BLE001 - inspected below
            outcome.append(error)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive(), "label() hung after the decoding thread failed"
    assert isinstance(outcome[0], RuntimeError) and "disk went away" in str(outcome[0])


def test_ray_engine_gives_the_same_labels(tmp_path, tiny_sam_dir, image_folder):
    require_peer("ray")
    folder, boxes_file = image_folder
    task = boxes_task(tiny_sam_dir, boxes_file)
    label(str(folder), task, tmp_path / "local", shard_size=4)
    summary = label(str(folder), task, tmp_path / "ray", engine="ray", shard_size=4, workers=2)
    assert summary["done"] == 20 and summary["failed"] == 1
    local = json.loads((tmp_path / "local" / "labels.json").read_text())
    remote = json.loads((tmp_path / "ray" / "labels.json").read_text())
    # identical but for the scores' last bits: Ray workers run torch on 1 thread, this process on 2, so
    # float sums differ in order (measured 3e-10)
    local_scores = [a.pop("score") for a in local["annotations"]]
    remote_scores = [a.pop("score") for a in remote["annotations"]]
    assert remote == local
    np.testing.assert_allclose(remote_scores, local_scores, rtol=0, atol=1e-7)


def test_a_killed_run_resumes_to_the_same_result(tmp_path, tiny_sam_dir, image_folder):
    folder, boxes_file = image_folder
    out = tmp_path / "killed"
    args = [sys.executable, "-m", "robosam.cli", "label", str(folder), "--task", "boxes", "--boxes",
            str(boxes_file), "--model", str(tiny_sam_dir), "--device", "cpu", "--out", str(out),
            "--shard-size", "1", "--prefetch", "0"]  # fmt: skip
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if len(list((out / "shards").glob("shard-*.json"))) >= 3:
            os.kill(process.pid, signal.SIGKILL)
            break
        time.sleep(0.002)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    before = {p.name: p.stat().st_mtime_ns for p in (out / "shards").glob("shard-*.json")}
    assert 3 <= len(before) < 21 and not (out / "manifest.json").exists()
    assert not list((out / "shards").glob("*.tmp"))  # nothing half-written is ever visible... or left
    assert run_cli(args[3:]) == 0
    after = {p.name: p.stat().st_mtime_ns for p in (out / "shards").glob("shard-*.json")}
    assert len(after) == 21 and all(after[name] == mtime for name, mtime in before.items())  # not redone
    clean = tmp_path / "clean"
    # same engine settings as the killed run (prefetch changes the model's thread count, hence float order)
    label(str(folder), boxes_task(tiny_sam_dir, boxes_file), clean, shard_size=1, prefetch=0)
    assert json.loads((out / "labels.json").read_text()) == json.loads((clean / "labels.json").read_text())


def test_inputs_from_globs_lists_and_coco(tmp_path, image_folder):
    folder, _ = image_folder
    from_folder = resolve_inputs(str(folder))
    assert [i.file_name for i in from_folder][:2] == ["img_00.jpg", "img_01.jpg"] and len(from_folder) == 21
    assert [i.path for i in resolve_inputs(str(folder / "img_0*.jpg"))] == [i.path for i in from_folder[:10]]
    listing = tmp_path / "list.txt"
    listing.write_text(f"{folder / 'img_05.jpg'}\n\n{folder / 'img_02.jpg'}\n")
    assert [i.file_name for i in resolve_inputs(str(listing))] == ["img_05.jpg", "img_02.jpg"]
    coco = folder.parent / "coco.json"
    coco.write_text(
        json.dumps(
            {
                "images": [
                    {"id": 7, "file_name": "images/img_03.jpg"},
                    {"id": 3, "file_name": "images/img_01.jpg"},
                ]
            }
        )
    )
    assert [(i.image_id, i.file_name) for i in resolve_inputs(str(coco))] == [
        (3, "images/img_01.jpg"),
        (7, "images/img_03.jpg"),
    ]
    with pytest.raises(InputError, match="^INPUT:"):
        resolve_inputs(str(tmp_path / "nothing*.png"))


def test_label_cli_errors(tmp_path, tiny_sam_dir, image_folder, capsys):
    folder, boxes_file = image_folder
    base = [
        "label",
        str(folder),
        "--model",
        str(tiny_sam_dir),
        "--device",
        "cpu",
        "--out",
        str(tmp_path / "o"),
    ]
    assert run_cli([*base, "--task", "boxes"]) == 2
    assert "--boxes: expected a boxes file" in capsys.readouterr().err
    assert run_cli([*base, "--task", "everything"]) == 2
    assert "--task: expected one of auto, ground, boxes" in capsys.readouterr().err
    assert run_cli([*base, "--task", "boxes", "--boxes", str(boxes_file), "--engine", "spark"]) == 2
    assert "--engine: expected one of local, ray" in capsys.readouterr().err
    assert run_cli([*base, "--task", "boxes", "--boxes", str(boxes_file), "--shard-size", "5"]) == 0
    assert run_cli([*base, "--task", "boxes", "--boxes", str(boxes_file), "--shard-size", "3"]) == 2
    assert "--out: expected a new folder, or the folder of this same job" in capsys.readouterr().err


def test_ground_task_labels_with_one_category_per_phrase(tmp_path, tiny_sam_dir, image_folder):
    from test_grounding import ScriptedDetector
    from test_grounding_tiny import build_grounding_dino

    from robosam.grounding import TextSegmenter
    from robosam.labeling.inputs import LabelInput
    from robosam.labeling.tasks import GroundLabeler
    from robosam.segmenter import Segmenter

    folder, _ = image_folder
    # the command line's path end to end, with a real (tiny, random-weight) Grounding DINO folder as detector
    (tmp_path / "gdino").mkdir()
    gdino = build_grounding_dino(tmp_path / "gdino")
    task = LabelTask(
        "ground", ModelSpec(str(tiny_sam_dir), device="cpu"), text="square. noise", detector=str(gdino)
    )
    summary = label(str(folder / "img_0*.jpg"), task, tmp_path / "out", shard_size=5)
    labels = json.loads((tmp_path / "out" / "labels.json").read_text())
    assert summary["done"] == 10 and labels["categories"] == [
        {"id": 1, "name": "square"},
        {"id": 2, "name": "noise"},
    ]
    assert {a["category_id"] for a in labels["annotations"]} <= {1, 2}
    # phrases map to their categories: a scripted detector behind the same interface
    scripted = ScriptedDetector(
        [("noise", (0.0, 0.0, 20.0, 20.0), 0.8), ("square", (10.0, 5.0, 40.0, 30.0), 0.9)]
    )
    labeler = GroundLabeler(
        TextSegmenter(Segmenter(tiny_sam_dir, device="cpu"), detector=scripted), "square. noise"
    )
    anns = labeler.label(np.zeros((48, 64, 3), np.uint8), LabelInput(1, "x.jpg", "x.jpg"))
    assert [a["category_id"] for a in anns] == [1, 2] and anns[0]["score"] == pytest.approx(0.9)


def test_auto_task_labels_what_automasker_finds(tmp_path, tiny_sam_dir, image_folder):
    from robosam.automatic import AutoMasker
    from robosam.io import load_image
    from robosam.segmenter import Segmenter

    folder, _ = image_folder
    options = (("points_per_side", 4), ("pred_iou_thresh", 0.0), ("stability_score_thresh", 0.0))
    task = LabelTask("auto", ModelSpec(str(tiny_sam_dir), device="cpu"), auto_options=options)
    summary = label(str(folder / "img_0[0-2].jpg"), task, tmp_path / "out", shard_size=2)
    labels = json.loads((tmp_path / "out" / "labels.json").read_text())
    direct = AutoMasker(Segmenter(tiny_sam_dir, device="cpu"), **dict(options)).generate(
        load_image(folder / "img_01.jpg")
    )
    mine = [a for a in labels["annotations"] if a["image_id"] == 2]
    assert summary["done"] == 3 and len(mine) == len(direct) > 0
    assert [a["segmentation"] for a in mine] == [r["segmentation"] for r in direct.to_coco()]
