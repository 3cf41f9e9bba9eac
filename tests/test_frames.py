"""Frame sources: folders sorted naturally, video files decoded lazily with PyAV, sequences and iterators."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_video_models import decode_video, synthetic_frames, write_frames, write_video

from robosam.errors import InputError
from robosam.io.frames import (
    FolderFrames,
    IteratorFrames,
    SequenceFrames,
    VideoFileFrames,
    natural_key,
    open_frames,
)


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return synthetic_frames(30)


@pytest.fixture(scope="module")
def video(tmp_path_factory, frames) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "clip.mp4", frames)


def test_natural_order() -> None:
    names = ["frame10.jpg", "frame2.jpg", "Frame1.jpg", "frame100.jpg"]
    assert sorted(names, key=natural_key) == ["Frame1.jpg", "frame2.jpg", "frame10.jpg", "frame100.jpg"]


def test_folder_sorts_naturally_and_reads_lazily(tmp_path, frames) -> None:
    folder = write_frames(tmp_path / "seq", frames[:12])  # 0.png ... 11.png
    (folder / "notes.txt").write_text("not a frame")
    source = open_frames(folder)
    assert isinstance(source, FolderFrames)
    assert len(source) == 12 and source.frame_size == frames[0].shape[:2]
    assert [p.name for p in source.paths[:3]] == ["0.png", "1.png", "2.png"]
    assert source.paths[-1].name == "11.png"
    assert np.array_equal(source[10], frames[10])
    assert all(np.array_equal(a, b) for a, b in zip(source, frames[:12]))


def test_missing_and_unreadable_frames_name_their_index(tmp_path, frames) -> None:
    folder = write_frames(tmp_path / "seq", frames[:4])
    (folder / "2.png").write_bytes(b"not a png")
    source = open_frames(folder)
    with pytest.raises(InputError, match="frame 2"):
        source[2]
    (folder / "3.png").unlink()  # listed when the source opened, gone now
    with pytest.raises(InputError, match="frame 3"):
        source[3]
    with pytest.raises(InputError, match=r"frame: expected a frame index in \[0, 4\)"):
        source[4]


def test_frames_changing_size_are_an_input_error(tmp_path, frames) -> None:
    folder = write_frames(tmp_path / "seq", frames[:3])
    Image.fromarray(frames[0][:40]).save(folder / "1.png")
    source = open_frames(folder)
    source[0]
    with pytest.raises(InputError, match="frame 1: expected the size of the first frame, 80x60"):
        source[1]


def test_video_file_random_access_equals_sequential_decoding(video) -> None:
    reference = decode_video(video)  # PyAV, decoded straight through
    source = open_frames(video)
    assert isinstance(source, VideoFileFrames)
    assert len(source) == len(reference) == 30
    assert source.fps == pytest.approx(10.0)
    order = [0, 1, 2, 17, 5, 29, 28, 9, 10, 11, 3, 25, 0]  # forward steps, jumps across key frames, backwards
    for index in order:
        assert np.array_equal(source[index], reference[index]), index
    assert all(np.array_equal(a, b) for a, b in zip(source, reference))
    source.close()
    assert np.array_equal(source[7], reference[7])  # reopens after close


def test_video_file_errors(tmp_path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 100)
    with pytest.raises(InputError, match="source"):
        open_frames(broken)
    with pytest.raises(InputError, match="an existing folder of frames or a video file"):
        open_frames(tmp_path / "missing.mp4")


def test_sequences_and_arrays_give_random_access(frames, tmp_path) -> None:
    paths = [write_frames(tmp_path / "p", frames[:3]) / f"{i}.png" for i in range(3)]
    pil = [Image.fromarray(f) for f in frames[:3]]
    for source in (
        open_frames(frames[:3]),
        open_frames(np.stack(frames[:3])),
        open_frames(paths),
        open_frames(pil),
    ):
        assert isinstance(source, SequenceFrames) and len(source) == 3
        assert np.array_equal(source[2], frames[2]) and np.array_equal(source[0], frames[0])
    with pytest.raises(InputError, match="frame 1"):
        open_frames([frames[0], None])[1]


def test_iterator_reads_ahead_and_cannot_go_back(frames) -> None:
    source = open_frames(iter(frames[:5]))
    assert isinstance(source, IteratorFrames) and source.num_frames is None
    assert np.array_equal(source[3], frames[3])  # reads 0..3, keeps them
    assert source.frames_read == 4
    assert np.array_equal(source[1], frames[1])
    source.release(2)
    with pytest.raises(InputError, match="an iterator cannot go back"):
        source[1]
    assert [np.array_equal(a, b) for a, b in zip(source, frames[2:5])] == [True, True, True]
    assert source.num_frames == 5  # known once the iterator ends
    with pytest.raises(InputError, match="frame"):
        source[7]


def test_unknown_sources_are_input_errors() -> None:
    with pytest.raises(InputError, match="source"):
        open_frames(42)
    with pytest.raises(InputError, match="at least one frame"):
        open_frames([])
