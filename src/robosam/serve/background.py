"""``BackgroundServer``: a real uvicorn server for an app on a thread of this process (tests, benchmarks,
notebooks), on loopback and a free port unless told otherwise."""

from __future__ import annotations

import threading
import time
from typing import Any

from robosam.errors import InputError


class BackgroundServer:
    """``with BackgroundServer(app) as url: ...``: starts uvicorn, yields ``http://127.0.0.1:PORT``, and
    always stops it (and the app's lifespan) on exit. ``port=0`` picks a free port."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, start_timeout_s: float = 30.0):
        import uvicorn

        self.config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(self.config)
        self.thread = threading.Thread(target=self.server.run, name="robosam-uvicorn", daemon=True)
        self.start_timeout_s = start_timeout_s
        self.url = ""

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + self.start_timeout_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise InputError("server", "uvicorn to start", f"not started within {self.start_timeout_s} s")
            time.sleep(0.01)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self.url

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def __exit__(self, *exc: Any) -> None:
        self.stop()
