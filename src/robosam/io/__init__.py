"""Input and output: images in the one internal form (RGB uint8), frame sources, atomic file writes."""

from robosam.io.files import atomic_write, write_json_atomic, write_text_atomic
from robosam.io.images import ImageLike, load_image

__all__ = ["ImageLike", "atomic_write", "load_image", "write_json_atomic", "write_text_atomic"]
