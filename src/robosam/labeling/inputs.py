"""What to label: a folder, a glob, a text file of paths or a COCO images JSON, as an ordered list."""

from __future__ import annotations

import glob
import json
from dataclasses import dataclass
from pathlib import Path

from robosam.data import IMAGE_SUFFIXES
from robosam.errors import InputError


@dataclass(frozen=True)
class LabelInput:
    """One image to label: its COCO ``image_id``, its path and the name it gets in the outputs."""

    image_id: int
    path: str
    file_name: str


def resolve_inputs(source: str) -> list[LabelInput]:
    """``source`` to inputs in a stable order (ids from a COCO JSON, else 1, 2, ... in sorted path order).

    source: a folder (its image files, recursively), a glob (``"data/*.jpg"``), a ``.txt`` file with one path
    per line (relative to the file), or a COCO JSON whose ``images`` give ``id`` and ``file_name`` (found
    beside the JSON or in an ``images/`` folder there).
    """
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        return _numbered(files, root=path)
    if path.is_file() and path.suffix.lower() == ".json":
        return _from_coco(path)
    if path.is_file():
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        files = [Path(line) if Path(line).is_absolute() else path.parent / line for line in lines if line]
        return _numbered(files, root=None)
    if any(ch in source for ch in "*?["):
        files = sorted(
            Path(p) for p in glob.glob(source, recursive=True) if Path(p).suffix.lower() in IMAGE_SUFFIXES
        )
        if files:
            return _numbered(files, root=None)
    raise InputError(
        "INPUT", "a folder, a glob matching images, a .txt list of paths or a COCO images .json", source
    )


def _numbered(files: list[Path], root: Path | None) -> list[LabelInput]:
    if not files:
        raise InputError("INPUT", "at least one image", "none found")
    return [
        LabelInput(image_id=i, path=str(f), file_name=str(f.relative_to(root)) if root else f.name)
        for i, f in enumerate(files, 1)
    ]


def _from_coco(path: Path) -> list[LabelInput]:
    try:
        images = json.loads(path.read_text(encoding="utf-8"))["images"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InputError("INPUT", "a COCO JSON with an 'images' list", str(path), detail=str(error)) from None
    folder = path.parent / "images" if (path.parent / "images").is_dir() else path.parent
    out = [LabelInput(int(im["id"]), str(folder / im["file_name"]), str(im["file_name"])) for im in images]
    if not out:
        raise InputError("INPUT", "at least one image in the COCO JSON", str(path))
    if len({i.image_id for i in out}) != len(out):
        raise InputError("INPUT", "unique image ids in the COCO JSON", str(path))
    return sorted(out, key=lambda i: i.image_id)
