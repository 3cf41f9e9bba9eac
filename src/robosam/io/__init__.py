"""Input and output: images in the one internal form (RGB uint8), frame sources, atomic file writes."""

from robosam.io.files import atomic_write, write_json_atomic, write_text_atomic
from robosam.io.frames import FrameSource, open_frames
from robosam.io.images import ImageLike, load_image

__all__ = [
    "FrameSource",
    "ImageLike",
    "atomic_write",
    "load_image",
    "open_frames",
    "write_json_atomic",
    "write_text_atomic",
]
