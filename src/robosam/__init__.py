"""robosam: Segment Anything for robots."""

from robosam.errors import InputError
from robosam.io import load_image
from robosam.results import MaskResult

__all__ = ["InputError", "MaskResult", "load_image"]
__version__ = "0.1.0"
