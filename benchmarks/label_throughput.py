"""Labeling throughput: the local engine with decoding prefetched on a thread vs inline, and Ray with 2 workers.

A small random-weight SAM (the test suite's tiny config) labels large JPEGs (2400 x 1800,
decoding ~40 ms each here) with two boxes per image, so decoding is a visible share of the work that
prefetching can hide behind the model. Local runs alternate on vs off, medians reported; Ray runs once
(its start-up is counted separately). The last line ends with the prefetch on / off ratio.

    python benchmarks/label_throughput.py [--images 24] [--repeats 3] [--no-ray]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import tiny_models  # noqa: E402

from robosam.labeling import LabelTask, label, read_boxes_file  # noqa: E402
from robosam.models import ModelSpec  # noqa: E402


def make_images(folder: Path, count: int) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    boxes = {}
    for i in range(count):
        image = rng.integers(0, 255, (1800, 2400, 3), dtype=np.uint8)
        image = (image // 32 * 32).astype(np.uint8)  # some structure, still a costly JPEG
        Image.fromarray(image).save(folder / f"frame_{i:04d}.jpg", quality=92)
        boxes[f"frame_{i:04d}.jpg"] = [[200, 150, 1400, 1000], [1000, 800, 2300, 1700]]
    boxes_file = folder.parent / "boxes.json"
    boxes_file.write_text(json.dumps(boxes))
    return boxes_file


def timed_run(folder: Path, task: LabelTask, out: Path, **kwargs) -> float:
    start = time.perf_counter()
    summary = label(str(folder), task, out, shard_size=4, **kwargs)
    elapsed = time.perf_counter() - start
    assert summary["done"] == summary["inputs"]
    return summary["inputs"] / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="robosam-label-bench-"))
    boxes_file = make_images(root / "images", args.images)
    model_dir = root / "model"
    tiny_models.build_sam().save_pretrained(model_dir)
    task = LabelTask("boxes", ModelSpec(str(model_dir), device="cpu"), boxes=read_boxes_file(str(boxes_file)))
    label(str(root / "images"), task, root / "warmup", shard_size=4)  # load caches, page in the files

    rates = {"on": [], "off": []}
    for repeat in range(args.repeats):
        for mode in ("on", "off") if repeat % 2 == 0 else ("off", "on"):
            rate = timed_run(
                root / "images", task, root / f"{mode}-{repeat}", prefetch=8 if mode == "on" else 0
            )
            rates[mode].append(rate)
            print(f"local, prefetch {mode:3s}: {rate:6.2f} images/s", flush=True)
    if not args.no_ray:
        start = time.perf_counter()
        rate = timed_run(root / "images", task, root / "ray", engine="ray", workers=2)
        print(
            f"ray, 2 workers: {rate:6.2f} images/s including Ray start-up ({time.perf_counter() - start:.1f} s)"
        )
    on, off = statistics.median(rates["on"]), statistics.median(rates["off"])
    print(f"median images/s: prefetch on {on:.2f}, off {off:.2f}")
    print(f"prefetch on / off throughput: {on / off:.2f}x")


if __name__ == "__main__":
    main()
