"""DAVIS roots: JPEG frames per sequence with object-id annotation PNGs."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from robosam.data.samples import ImageSample, VideoSample, ids_to_masks, read_object_ids
from robosam.errors import InputError


class DavisDataset:
    """A DAVIS root: ``JPEGImages/<res>/<seq>/*.jpg`` with ``Annotations_indexed/<res>/<seq>/*.png`` (preferred)
    or ``Annotations/<res>/<seq>/*.png`` (object-id palette PNGs, or 0/255 binary for DAVIS-2016).

    As an image dataset every ``stride``-th annotated frame is one sample named ``<seq>/<frame>``; as a video
    dataset :meth:`videos` gives one :class:`VideoSample` per sequence.
    """

    def __init__(
        self,
        root: str | Path,
        sequences: Sequence[str] | None = None,
        resolution: str = "480p",
        stride: int = 1,
    ):
        root = Path(root)
        images_root = root / "JPEGImages" / resolution
        annotations_root = next(
            (
                root / name / resolution
                for name in ("Annotations_indexed", "Annotations")
                if (root / name).is_dir()
            ),
            None,
        )
        if not images_root.is_dir() or annotations_root is None:
            raise InputError(
                "data", f"a DAVIS root with JPEGImages/{resolution} and Annotations/{resolution}", root
            )
        if not isinstance(stride, int) or stride < 1:
            raise InputError("stride", "an integer >= 1", stride)
        available = sorted(p.name for p in images_root.iterdir() if p.is_dir())
        names = list(sequences) if sequences else available
        for name in names:
            if name not in available:
                raise InputError("sequences", f"sequences of {root} ({', '.join(available)})", name)
        self.root = root
        self._videos: list[VideoSample] = []
        for name in names:
            frames = sorted((images_root / name).glob("*.jpg"))
            annotations = [annotations_root / name / f"{f.stem}.png" for f in frames]
            annotations_or_none = [a if a.is_file() else None for a in annotations]
            first = next((a for a in annotations_or_none if a is not None), None)
            ids = [] if first is None else [int(v) for v in np.unique(read_object_ids(first)) if 0 < v < 255]
            self._videos.append(VideoSample(name, frames, annotations_or_none, ids))
        self._items = [
            (video, i)
            for video in self._videos
            for i in [k for k, a in enumerate(video.annotations) if a is not None][::stride]
        ]

    def videos(self) -> list[VideoSample]:
        return list(self._videos)

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: int) -> ImageSample:
        video, frame = self._items[index]
        masks, labels = ids_to_masks(read_object_ids(video.annotations[frame]))  # type: ignore[arg-type]
        name = f"{video.name}/{video.frames[frame].stem}"
        return ImageSample(name=name, image_path=video.frames[frame], masks=masks, labels=labels)

    def __iter__(self) -> Iterator[ImageSample]:
        return (self[i] for i in range(len(self)))
