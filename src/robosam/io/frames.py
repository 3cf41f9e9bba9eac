"""Frame sources: the frames of a video as RGB uint8 (H, W, 3) arrays, read lazily.

``open_frames(source)`` accepts a folder of images (sorted naturally: ``2.jpg`` before ``10.jpg``), a video file
(decoded with PyAV, seeking for random access and decoding on for sequential reads; never all frames in memory),
a sequence of frames (numpy RGB, PIL images or paths; random access), a (T, H, W, 3) array, or any iterator of
frames (read in order; frames ahead of the reader are buffered until used). Every frame must have the size of
the first one. A missing, unreadable or resized frame is an ``InputError`` naming its index.
"""

from __future__ import annotations

import bisect
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from robosam.errors import InputError
from robosam.io.images import load_image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
FORWARD_DECODE_LIMIT = 48  # decode on (rather than seek) to reach a frame this close ahead
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".gif")


def natural_key(name: str) -> list[Any]:
    """Sort key that orders embedded numbers by value: ``frame2`` < ``frame10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


class FrameSource:
    """Frames of one video, read lazily, in the one internal form RGB uint8 (H, W, 3).

    ``num_frames`` is the length where known (None for an open-ended iterator); ``frame_size`` is (H, W) of
    the frames (read from the first frame). ``source[i]`` reads frame i; iterating reads from frame 0 on.
    Subclasses implement ``_read(i)``; this class checks the index and the size.
    """

    name: str = "frames"

    def __init__(self) -> None:
        self._size: tuple[int, int] | None = None

    @property
    def num_frames(self) -> int | None:
        raise NotImplementedError

    def __len__(self) -> int:
        count = self.num_frames
        if count is None:
            raise TypeError(f"{type(self).__name__} has no known length")
        return count

    @property
    def frame_size(self) -> tuple[int, int]:
        """(H, W) of every frame (reads frame 0 on first use)."""
        if self._size is None:
            self[0]
        assert self._size is not None
        return self._size

    def __getitem__(self, index: int) -> np.ndarray:
        index = self._check_index(index)
        frame = self._read(index)
        return self._check_size(frame, index)

    def __iter__(self) -> Iterator[np.ndarray]:
        index = 0
        while self.num_frames is None or index < self.num_frames:
            try:
                frame = self[index]
            except IndexError:
                return
            yield frame
            index += 1

    def close(self) -> None:
        """Release files and decoders (the source can still be read afterwards; it reopens)."""

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # helpers --------------------------------------------------------------------------------------
    def _read(self, index: int) -> np.ndarray:
        raise NotImplementedError

    def _check_index(self, index: int) -> int:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise InputError("frame", "an integer frame index", index)
        index = int(index)
        count = self.num_frames
        if index < 0 or (count is not None and index >= count):
            bound = f"[0, {count})" if count is not None else ">= 0"
            raise InputError("frame", f"a frame index in {bound} of {self.name}", index)
        return index

    def _check_size(self, frame: np.ndarray, index: int) -> np.ndarray:
        size = (int(frame.shape[0]), int(frame.shape[1]))
        if self._size is None:
            self._size = size
        elif size != self._size:
            raise InputError(
                f"frame {index}",
                f"the size of the first frame, {self._size[1]}x{self._size[0]} (W x H)",
                f"{size[1]}x{size[0]}",
            )
        return frame


class FolderFrames(FrameSource):
    """Image files of one folder (``.jpg``, ``.png``, ...), sorted naturally by name."""

    def __init__(self, folder: str | os.PathLike):
        super().__init__()
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise InputError("source", "an existing folder of frames", str(self.folder))
        self.paths = sorted(
            (
                p
                for p in self.folder.iterdir()
                if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
            ),
            key=lambda p: natural_key(p.name),
        )
        if not self.paths:
            raise InputError(
                "source", f"a folder with image files ({', '.join(IMAGE_SUFFIXES)})", str(folder)
            )
        self.name = str(self.folder)

    @property
    def num_frames(self) -> int:
        return len(self.paths)

    def _read(self, index: int) -> np.ndarray:
        return load_image(self.paths[index], argument=f"frame {index}")


class SequenceFrames(FrameSource):
    """A sequence of frames in memory or on disk: numpy arrays, PIL images or paths (random access)."""

    def __init__(self, frames: Sequence[Any]):
        super().__init__()
        self.frames = frames
        self.name = f"a sequence of {len(frames)} frames"

    @property
    def num_frames(self) -> int:
        return len(self.frames)

    def _read(self, index: int) -> np.ndarray:
        return _to_rgb(self.frames[index], index)


class IteratorFrames(FrameSource):
    """Frames from any iterator, read in order. Frames read ahead of the caller (to reach a later frame) are
    kept until they are asked for; a frame already handed out cannot be read again."""

    def __init__(self, frames: Iterable[Any]):
        super().__init__()
        self._iterator = iter(frames)
        self._buffer: dict[int, np.ndarray] = {}
        self._next = 0  # index of the next frame the iterator gives
        self._count: int | None = None  # set when the iterator ends
        self._oldest = 0  # frames below this were handed out and dropped
        self.name = "the frame iterator"

    @property
    def num_frames(self) -> int | None:
        return self._count

    @property
    def frames_read(self) -> int:
        """How many frames the iterator has given so far."""
        return self._next

    def _read(self, index: int) -> np.ndarray:
        if index in self._buffer:
            return self._buffer[index]
        if index < self._next:
            raise InputError(
                "frame",
                f"a frame not yet passed (an iterator cannot go back; frames >= {self._oldest} are available)",
                index,
                detail="use a folder or a video file for random access",
            )
        while self._next <= index:
            try:
                item = next(self._iterator)
            except StopIteration:
                self._count = self._next
                raise InputError(
                    "frame", f"a frame index below the {self._count} frames of the iterator", index
                ) from None
            self._buffer[self._next] = self._check_size(_to_rgb(item, self._next), self._next)
            self._next += 1
        return self._buffer[index]

    def release(self, below: int) -> None:
        """Forget buffered frames with index < ``below`` (the caller will not ask for them again)."""
        for key in [k for k in self._buffer if k < below]:
            del self._buffer[key]
        self._oldest = max(self._oldest, below)

    def __iter__(self) -> Iterator[np.ndarray]:
        index = self._oldest
        while True:
            try:
                frame = self[index]
            except InputError:
                if self._count is not None and index >= self._count:
                    return
                raise
            yield frame
            self.release(index)
            index += 1


class VideoFileFrames(FrameSource):
    """A video file decoded with PyAV. Opening indexes the packets (no decoding) to map frame index to
    presentation time; ``source[i]`` decodes on from the last frame when i is the next one, and otherwise seeks
    to the key frame before i and decodes forward. Only the current decoder position is held in memory."""

    def __init__(self, path: str | os.PathLike):
        super().__init__()
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError("source", "an existing video file or folder of frames", str(self.path))
        self.name = str(self.path)
        self._container: Any = None
        self._decoder: Iterator[Any] | None = None
        self._position = -1  # index of the frame the decoder gave last
        self._pts = self._index_frames()
        self.fps = self._read_fps()

    @property
    def num_frames(self) -> int:
        return len(self._pts)

    def _open(self) -> Any:
        import av

        try:
            return av.open(str(self.path))
        except (av.error.FFmpegError, OSError, ValueError) as error:
            raise InputError("source", "a readable video file", str(self.path), detail=str(error)) from None

    def _index_frames(self) -> list[int]:
        import av

        container = self._open()
        try:
            if not container.streams.video:
                raise InputError("source", "a file with a video stream", str(self.path))
            stream = container.streams.video[0]
            self._time_base = stream.time_base
            pts = [packet.pts for packet in container.demux(stream) if packet.size > 0]
        except av.error.FFmpegError as error:
            raise InputError("source", "a readable video file", str(self.path), detail=str(error)) from None
        finally:
            container.close()
        if not pts:
            raise InputError("source", "a video with at least one frame", str(self.path))
        self._timestamps = all(p is not None for p in pts)
        if not self._timestamps:  # frames are counted in decode order, seeking reopens the file
            return list(range(len(pts)))
        return sorted(pts)

    def _read_fps(self) -> float:
        container = self._open()
        try:
            rate = container.streams.video[0].average_rate or container.streams.video[0].guessed_rate
            return float(rate) if rate else 25.0
        finally:
            container.close()

    def _read(self, index: int) -> np.ndarray:
        import av

        try:
            if self._decoder is None or not (self._position < index <= self._position + FORWARD_DECODE_LIMIT):
                self._seek(index)
            assert self._decoder is not None
            for frame in self._decoder:
                self._position = self._frame_index(frame)
                if self._position == index:
                    return frame.to_ndarray(format="rgb24")
                if self._position > index:
                    break
        except av.error.FFmpegError as error:
            self._decoder = None
            raise InputError(
                f"frame {index}", "a decodable video frame", str(self.path), detail=str(error)
            ) from None
        self._decoder = None
        raise InputError(
            f"frame {index}", "a decodable video frame", str(self.path), detail="not found in the file"
        )

    def _frame_index(self, frame: Any) -> int:
        """Index of a decoded frame: from its timestamp, or by counting where the file has none."""
        if not self._timestamps or frame.pts is None:
            return self._position + 1
        return bisect.bisect_left(self._pts, frame.pts)

    def _seek(self, index: int) -> None:
        """Position the decoder before ``index``: the key frame at or before it (or the start)."""
        if self._container is None or not self._timestamps or index == 0:
            self.close()
            self._container = self._open()
            self._position = -1
        stream = self._container.streams.video[0]
        if self._timestamps and index > 0:
            self._container.seek(int(self._pts[index]), stream=stream, backward=True, any_frame=False)
            self._position = -1  # the first decoded frame's timestamp tells where we are
        self._decoder = iter(self._container.decode(stream))

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container = None
        self._decoder = None
        self._position = -1


def open_frames(source: Any) -> FrameSource:
    """Any supported source to a ``FrameSource`` (see the module docstring)."""
    if isinstance(source, FrameSource):
        return source
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if path.is_dir():
            return FolderFrames(path)
        if path.is_file():
            return VideoFileFrames(path)
        raise InputError("source", "an existing folder of frames or a video file", str(path))
    if isinstance(source, np.ndarray):
        if source.ndim not in (3, 4) or (source.ndim == 4 and source.shape[-1] not in (1, 3, 4)):
            raise InputError("source", "an array of frames (T, H, W, 3) or (T, H, W)", source)
        return SequenceFrames(source)
    if isinstance(source, Sequence):
        if len(source) == 0:
            raise InputError("source", "at least one frame", "an empty sequence")
        return SequenceFrames(source)
    if isinstance(source, Iterable):
        return IteratorFrames(source)
    raise InputError(
        "source", "a folder, a video file, a sequence or an iterator of frames", type(source).__name__
    )


def _to_rgb(item: Any, index: int) -> np.ndarray:
    if item is None:
        raise InputError(f"frame {index}", "an image (numpy RGB, PIL image or path)", None)
    return load_image(item, argument=f"frame {index}")
