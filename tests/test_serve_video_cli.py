"""The video session routes (live tracking, where robosam.video is present) and ``robosam serve`` itself."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import socket
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest
from helpers import run_cli
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from robosam.masks import decode_rle  # noqa: E402
from robosam.segmenter import Segmenter  # noqa: E402
from robosam.serve import ServeConfig, create_app  # noqa: E402
from robosam.serve.background import BackgroundServer  # noqa: E402

HAS_VIDEO = importlib.util.find_spec("robosam.video") is not None


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def test_videos_answer_501_without_a_video_model(tiny_sam_dir):
    """SAM 1 has no video model (and robosam.video may be absent): a clear 501, never a 5xx crash."""
    segmenter = Segmenter(tiny_sam_dir, device="cpu")
    with BackgroundServer(create_app(ServeConfig(model=str(tiny_sam_dir)), segmenter)) as url:
        created = httpx.post(url + "/videos", timeout=30)
        assert created.status_code == 501 and "video" in created.json()["detail"]
        assert httpx.delete(url + "/videos/abc", timeout=30).status_code == 404
        frame = httpx.post(url + "/videos/abc/frames", content=b"x", headers={"Content-Type": "image/png"})
        assert frame.status_code == 404


@pytest.mark.skipif(not HAS_VIDEO, reason="robosam.video (issue 10) not present")
def test_live_video_session(tmp_path, rgb_image):
    from test_video_models import tiny_video_model  # the video issue's tiny SAM 2 video model

    folder = tmp_path / "tiny-sam2-video"
    tiny_video_model("sam2", 0).save_pretrained(folder)  # one folder: image segmenter and tracker
    segmenter = Segmenter(folder, device="cpu")
    config = ServeConfig(model=str(folder), max_sessions=1)
    with (
        BackgroundServer(create_app(config, segmenter)) as url,
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        session = client.post("/videos")
        assert session.status_code == 201, session.text
        session_id = session.json()["id"]
        full = client.post("/videos")
        assert full.status_code == 503 and "Retry-After" in full.headers
        prompts = json.dumps([{"obj_id": 3, "points": [[100, 40]], "labels": [1]}])
        first = client.post(
            f"/videos/{session_id}/frames",
            files={"file": ("f0.png", png_bytes(rgb_image), "image/png")},
            data={"prompts": prompts},
        )
        assert first.status_code == 200, first.text
        body = first.json()
        assert body["frame_index"] == 0 and [t["obj_id"] for t in body["tracks"]] == [3]
        assert decode_rle(body["tracks"][0]["segmentation"]).shape == rgb_image.shape[:2]
        moved = np.roll(rgb_image, 3, axis=1)
        second = client.post(
            f"/videos/{session_id}/frames", content=png_bytes(moved), headers={"Content-Type": "image/png"}
        )
        assert second.status_code == 200 and second.json()["frame_index"] == 1
        bad = client.post(
            f"/videos/{session_id}/frames",
            files={"file": ("f.png", png_bytes(moved), "image/png")},
            data={"prompts": '[{"obj_id": -1}]'},
        )
        assert bad.status_code == 400 and "prompts" in bad.json()["detail"]
        assert client.delete(f"/videos/{session_id}").status_code == 204
        assert (
            client.post(
                f"/videos/{session_id}/frames",
                content=png_bytes(moved),
                headers={"Content-Type": "image/png"},
            ).status_code
            == 404
        )


def test_cli_rejects_bad_options_before_loading():
    assert run_cli(["serve", "--port", "70000"]) == 2
    assert run_cli(["serve", "--max-upload-mb", "0"]) == 2
    assert run_cli(["serve", "--torch-threads", "-1"]) == 2


def test_cli_serves_until_stopped(tiny_sam_dir):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [
        sys.executable,
        "-m",
        "robosam.cli",
        "serve",
        "--model",
        str(tiny_sam_dir),
        "--device",
        "cpu",
        "--port",
        str(port),
        "--api-key",
        "k",
        "--workers",
        "2",
        "--torch-threads",
        "1",
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "HF_HUB_OFFLINE": "1"}
    )
    try:
        deadline = time.monotonic() + 120
        health = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert health is not None and health.status_code == 200, (
            process.stderr.read1().decode()[-2000:] if process.poll() is not None else "no answer"
        )
        assert health.json()["family"] == "sam"
        assert httpx.get(f"http://127.0.0.1:{port}/models", timeout=5).status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=30)
    banner = " ".join(process.stdout.read().decode().split())  # rich wraps lines
    assert f"127.0.0.1:{port}" in banner and "2 workers x 1 torch threads" in banner
