"""Shards to the job's outputs: ``labels.json`` (COCO: images, annotations with RLE, categories) and
``manifest.json`` (every input with its status), the manifest written last."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from robosam.io import write_json_atomic
from robosam.labeling.shards import shard_path


def merge_shards(out: Path, shard_count: int) -> dict[str, Any]:
    """Merge shards 0 .. shard_count-1 (all written) into labels.json, then write manifest.json.
    Annotation ids follow image order, then the labeler's order. Returns the manifest."""
    images, annotations, manifest, categories = [], [], [], None
    for index in range(shard_count):
        shard = json.loads(shard_path(out, index).read_text(encoding="utf-8"))
        categories = categories or shard["categories"]
        for record in shard["images"]:
            entry = {"image_id": record["image_id"], "path": record["path"], "status": record["status"],
                     "shard": index}  # fmt: skip
            if record["status"] == "failed":
                entry["reason"] = record["reason"]
            else:
                images.append({"id": record["image_id"], "file_name": record["file_name"],
                               "height": record["height"], "width": record["width"]})  # fmt: skip
                for ann in record["annotations"]:
                    annotations.append({"id": len(annotations) + 1, "image_id": record["image_id"], "iscrowd": 0,
                                        **ann})  # fmt: skip
            manifest.append(entry)
    write_json_atomic({"images": images, "annotations": annotations, "categories": categories or []},
                      out / "labels.json")  # fmt: skip
    summary = {
        "inputs": len(manifest),
        "done": sum(e["status"] == "done" for e in manifest),
        "failed": sum(e["status"] == "failed" for e in manifest),
        "annotations": len(annotations),
        "images": manifest,
    }
    write_json_atomic(summary, out / "manifest.json")
    return summary
