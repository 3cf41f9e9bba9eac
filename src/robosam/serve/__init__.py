"""robosam over HTTP: a FastAPI app (``create_app``) with one model and one embedding cache shared by every
request, limits that keep it up under load and bad input, and the click-to-segment web page at ``/``.

Needs the ``serve`` extra: ``pip install robosam[serve]``.
"""

from robosam.serve.app import create_app
from robosam.serve.config import ServeConfig

__all__ = ["ServeConfig", "create_app"]
