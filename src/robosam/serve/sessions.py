"""Video sessions: one live tracking stream per session (frames in, tracks out), on one tracker model loaded
on the first ``POST /videos`` and shared by every session."""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

from fastapi import HTTPException

from robosam.serve.schemas import ObjectPromptBody
from robosam.serve.store import ExpiringStore


@dataclass
class VideoSession:
    """A live stream and the lock that keeps its frames in order."""

    live: Any
    frames: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class VideoSessions:
    """id -> ``VideoSession``: at most ``max_sessions`` open (a new one is refused with 503 when full),
    each dropped after ``idle_s`` unused."""

    def __init__(self, engine: Any, max_sessions: int, idle_s: float):
        self.engine = engine
        self.sessions: ExpiringStore[VideoSession] = ExpiringStore(
            max_sessions, idle_s, evict=False, on_drop=_close
        )
        self._tracker: Any = None
        self._tracker_lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.sessions)

    def clear(self) -> None:
        self.sessions.clear()

    @property
    def tracker_loaded(self) -> bool:
        return self._tracker is not None

    def tracker(self) -> Any:
        """The shared ``VideoTracker`` (the segmenter's source, video model), loaded once."""
        with self._tracker_lock:
            if self._tracker is None:
                try:
                    from robosam.video import VideoTracker
                except ImportError:
                    raise HTTPException(
                        501, "video tracking is not available in this robosam (robosam.video is missing)"
                    ) from None
                from robosam.errors import InputError

                config = self.engine.config
                try:
                    self._tracker = VideoTracker(self.engine.source, device=config.device, dtype=config.dtype)
                except InputError as error:  # the server's model has no video model: not the client's fault
                    raise HTTPException(
                        501, f"video tracking is not available with this server's model: {error}"
                    ) from None
            return self._tracker

    def create(self) -> str:
        """A new live session (runs on a worker thread: the first one loads the tracker)."""
        self.sessions.expire()
        if len(self.sessions) >= self.sessions.max_items:
            raise HTTPException(
                503,
                f"sessions: at most {self.sessions.max_items} open video sessions; DELETE one or retry later",
                headers={"Retry-After": str(self.engine.config.retry_after_s)},
            )
        session = VideoSession(live=self.tracker().stream())
        session_id = secrets.token_hex(8)
        if not self.sessions.put(session_id, session):
            _close(session)
            raise HTTPException(
                503,
                "sessions: no free session slot",
                headers={"Retry-After": str(self.engine.config.retry_after_s)},
            )
        return session_id

    def get(self, session_id: str) -> VideoSession:
        session = self.sessions.get(session_id)
        if session is None:
            raise HTTPException(
                404, f"session_id: expected an open video session (POST /videos), got {session_id[:80]!r}"
            )
        return session

    def delete(self, session_id: str) -> None:
        if self.sessions.pop(session_id) is None:
            raise HTTPException(
                404, f"session_id: expected an open video session (POST /videos), got {session_id[:80]!r}"
            )

    def step(self, session_id: str, data: bytes, prompts: list[ObjectPromptBody]) -> dict[str, Any]:
        """Add ``prompts`` on this frame, track it, and answer every object's track."""
        from robosam.serve.limits import decode_image

        session = self.get(session_id)
        rgb = decode_image(data, self.engine.config.max_pixels)
        with session.lock:
            try:
                for prompt in prompts:
                    session.live.add(
                        obj_id=prompt.obj_id, points=prompt.points, labels=prompt.labels, box=prompt.box
                    )
            except Exception:
                session.live.pending.clear()  # a request's prompts apply all together or not at all
                raise
            tracks = session.live.step(rgb)
            index = session.frames
            session.frames += 1
        return {
            "session_id": session_id,
            "frame_index": index,
            "width": int(rgb.shape[1]),
            "height": int(rgb.shape[0]),
            "tracks": [track.to_dict() for _, track in sorted(tracks.items())],
        }


def _close(session: VideoSession) -> None:
    close = getattr(session.live, "close", None)
    if callable(close):
        close()
