"""The HTTP API through a real uvicorn server on loopback: every route, the error answers, the API key, the
limits and concurrent clients. The model is the tiny random-weight SAM; expected masks come from calling the
library directly on the same image."""

from __future__ import annotations

import io
import struct
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from robosam.masks import decode_rle  # noqa: E402
from robosam.segmenter import Segmenter  # noqa: E402
from robosam.serve import ServeConfig, create_app  # noqa: E402
from robosam.serve.background import BackgroundServer  # noqa: E402
from robosam.serve.store import ExpiringStore  # noqa: E402


@pytest.fixture(scope="module")
def segmenter(tiny_sam_dir) -> Segmenter:
    return Segmenter(tiny_sam_dir, device="cpu")


@pytest.fixture(scope="module")
def truck_bytes(sample_image_path) -> bytes:
    return sample_image_path.read_bytes()


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def detector_dir(tmp_path_factory):
    """The text issue's tiny random-weight Grounding DINO folder (model, processor, tokenizer)."""
    from test_grounding_tiny import build_grounding_dino

    folder = tmp_path_factory.mktemp("tiny-grounding-dino")
    return build_grounding_dino(folder)


@pytest.fixture(scope="module")
def server(segmenter, tiny_sam_dir, detector_dir):
    config = ServeConfig(model=str(tiny_sam_dir), detector=str(detector_dir))
    with BackgroundServer(create_app(config, segmenter)) as url:
        with httpx.Client(base_url=url, timeout=30) as client:
            yield client


@pytest.fixture(scope="module")
def truck_id(server, truck_bytes) -> str:
    response = server.post("/images", content=truck_bytes, headers={"Content-Type": "image/jpeg"})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def serve_with(segmenter, **settings):
    """A second server on the same model with other settings (context manager yielding a client)."""

    class _Ctx:
        def __enter__(self):
            self.background = BackgroundServer(create_app(ServeConfig(**settings), segmenter))
            url = self.background.__enter__()
            self.client = httpx.Client(base_url=url, timeout=30)
            self.engine = self.background.config.app.state.engine
            return self

        def __exit__(self, *exc):
            self.client.close()
            self.background.__exit__(*exc)

    return _Ctx()


# routes ------------------------------------------------------------------------------------------
def test_health_models_schema_and_page(server):
    health = server.get("/health").json()
    assert health["status"] == "ok" and health["family"] == "sam" and health["device"] == "cpu"
    assert health["micro_batch"] is False  # auto: off on CPU
    models = server.get("/models").json()
    assert models["segmenter"]["family"] == "sam" and any(
        p["name"] == "sam2.1-hiera-tiny" for p in models["presets"]
    )
    paths = server.get("/openapi.json").json()["paths"]
    for path in (
        "/images",
        "/images/{image_id}/segment",
        "/images/{image_id}/auto",
        "/images/{image_id}/ground",
        "/videos",
        "/videos/{session_id}/frames",
        "/videos/{session_id}",
        "/health",
        "/models",
    ):
        assert path in paths, path
    page = server.get("/")
    assert page.status_code == 200 and "<canvas" in page.text
    assert "decodeRle" in server.get("/static/rle.js").text


def test_upload_raw_and_multipart_give_one_id(server, truck_bytes, truck_id):
    again = server.post("/images", files={"file": ("truck.jpg", truck_bytes, "image/jpeg")})
    assert again.status_code == 201
    body = again.json()
    assert body["id"] == truck_id and (body["width"], body["height"]) == (1800, 1200)
    assert body["encode_s"] == 0.0  # embedded once, found again


def test_segment_equals_the_library(server, segmenter, sample_image_path, truck_id):
    response = server.post(
        f"/images/{truck_id}/segment", json={"points": [[500, 375], [900, 600]], "labels": [1, 0]}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    expected = segmenter.decode(
        segmenter.embed(sample_image_path), points=[[500, 375], [900, 600]], labels=[1, 0]
    )
    assert len(body["masks"]) == 3 and body["scores"] == pytest.approx(expected.scores.tolist(), abs=1e-6)
    for record, mask, box in zip(body["masks"], expected.masks, body["boxes"]):
        assert np.array_equal(decode_rle(record["segmentation"]), mask)
        if record["area"]:
            x, y, w, h = record["bbox"]
            assert box == pytest.approx([x, y, x + w, y + h])
    np.testing.assert_allclose(body["boxes"], expected.boxes)


def test_boxes_are_objects_and_mask_input_round_trips(server, segmenter, truck_id):
    body = server.post(
        f"/images/{truck_id}/segment",
        json={"boxes": [[75, 275, 1725, 850], [10, 10, 400, 400]], "multimask": False, "return_logits": True},
    ).json()
    assert [m["object_id"] for m in body["masks"]] == [0, 1]
    logits = body["masks"][0]["logits"]
    assert len(logits) == len(logits[0]) == segmenter.adapter.lowres_size
    refined = server.post(
        f"/images/{truck_id}/segment", json={"points": [[500, 375]], "mask_input": logits, "multimask": False}
    )
    assert refined.status_code == 200 and len(refined.json()["masks"]) == 1


def test_auto(server, truck_id):
    auto = server.post(
        f"/images/{truck_id}/auto",
        json={"points_per_side": 4, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0},
    )
    assert auto.status_code == 200, auto.text
    assert len(auto.json()["masks"]) >= 1
    assert server.post(f"/images/{truck_id}/auto", json={"points_per_side": 0}).status_code == 422


def test_ground_equals_the_library(server, segmenter, detector_dir, sample_image_path, truck_id):
    from robosam.grounding import TextSegmenter

    response = server.post(f"/images/{truck_id}/ground", json={"text": "truck. wheel", "box_threshold": 0.0})
    assert response.status_code == 200, response.text
    body = response.json()
    expected = TextSegmenter(segmenter, detector=str(detector_dir), device="cpu").segment(
        sample_image_path, "truck. wheel", box_threshold=0.0
    )
    assert len(body["masks"]) == len(expected) > 0
    assert body["scores"] == pytest.approx(expected.scores.tolist(), abs=1e-5)
    assert [m["label"] for m in body["masks"]] == list(expected.labels)
    assert server.post("/images/nope/ground", json={"text": "truck"}).status_code == 404
    assert server.post(f"/images/{truck_id}/ground", json={"text": ""}).status_code == 422


def test_ground_without_a_detector_is_501(segmenter, tmp_path, rgb_image):
    with serve_with(segmenter, detector=str(tmp_path / "no-such-detector")) as ctx:
        image_id = ctx.client.post(
            "/images", content=png_bytes(rgb_image), headers={"Content-Type": "image/png"}
        ).json()["id"]
        missing = ctx.client.post(f"/images/{image_id}/ground", json={"text": "cup"})
        assert missing.status_code == 501 and "no-such-detector" in missing.json()["detail"]


def test_delete_image(server, rgb_image):
    image_id = server.post(
        "/images", content=png_bytes(rgb_image), headers={"Content-Type": "image/png"}
    ).json()["id"]
    assert server.delete(f"/images/{image_id}").status_code == 204
    assert server.post(f"/images/{image_id}/segment", json={"points": [[5, 5]]}).status_code == 404
    assert server.delete(f"/images/{image_id}").status_code == 404


# errors ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("payload", "status", "names"),
    [
        ({"points": [[5000, 375]]}, 400, "points"),
        ({"points": [[500, 375]], "labels": [1, 1]}, 400, "labels"),
        ({"labels": [1]}, 400, "labels"),
        ({}, 400, "points/box/mask_input"),
        ({"boxes": [[100, 100, 50, 50]]}, 400, "box"),
        ({"points": [[500, 375]], "mask_input": [[0.0] * 3] * 3}, 400, "mask_input"),
        ({"points": [[500, 375, 1]]}, 422, "points"),
        ({"points": [[500, 375]], "labels": [2]}, 422, "labels"),
        ({"pointz": [[500, 375]]}, 422, "pointz"),
    ],
)
def test_bad_prompts_get_4xx_with_the_message(server, truck_id, payload, status, names):
    response = server.post(f"/images/{truck_id}/segment", json=payload)
    assert response.status_code == status, response.text
    assert names in str(response.json()["detail"])


def test_bad_requests(server, truck_id, truck_bytes):
    assert server.post("/images/unknown/segment", json={"points": [[1, 1]]}).status_code == 404
    not_image = server.post("/images", content=b"hello, not an image", headers={"Content-Type": "image/png"})
    assert not_image.status_code == 400 and "file" in not_image.json()["detail"]
    truncated = server.post(
        "/images", content=truck_bytes[: len(truck_bytes) // 2], headers={"Content-Type": "image/jpeg"}
    )
    assert truncated.status_code == 400
    assert server.post("/images", content=b"", headers={"Content-Type": "image/png"}).status_code == 400
    wrong_type = server.post("/images", content=b"{}", headers={"Content-Type": "application/json"})
    assert wrong_type.status_code == 415 and "Content-Type" in wrong_type.json()["detail"]
    no_file = server.post("/images", files={"other": ("a.png", b"x", "image/png")})
    assert no_file.status_code == 400 and "file" in no_file.json()["detail"]
    nan = server.post(
        f"/images/{truck_id}/segment",
        content=b'{"points": [[NaN, 1]]}',
        headers={"Content-Type": "application/json"},
    )
    assert nan.status_code == 422
    assert (
        server.post(
            f"/images/{truck_id}/segment", content=b"{", headers={"Content-Type": "application/json"}
        ).status_code
        == 422
    )
    assert server.delete("/videos/unknown").status_code in (404, 501)


def bomb_png(width: int, height: int) -> bytes:
    """A valid PNG header claiming width x height, with a tiny body: a decompression bomb's shape."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def test_limits_body_pixels_and_bombs(segmenter, rgb_image):
    with serve_with(segmenter, max_upload_bytes=50_000, max_pixels=30_000) as ctx:
        big = ctx.client.post("/images", content=b"\0" * 60_000, headers={"Content-Type": "image/png"})
        assert big.status_code == 413 and "50000 bytes" in big.json()["detail"]

        def chunks():
            for _ in range(10):
                yield b"\0" * 10_000

        streamed = ctx.client.post("/images", content=chunks(), headers={"Content-Type": "image/png"})
        assert streamed.status_code == 413
        wide = np.zeros((100, 400, 3), np.uint8)
        too_many = ctx.client.post("/images", content=png_bytes(wide), headers={"Content-Type": "image/png"})
        assert too_many.status_code == 413 and "30000 pixels" in too_many.json()["detail"]
        bomb = ctx.client.post(
            "/images", content=bomb_png(100_000, 100_000), headers={"Content-Type": "image/png"}
        )
        assert bomb.status_code == 413 and "30000 pixels" in bomb.json()["detail"]
        fine = ctx.client.post("/images", content=png_bytes(rgb_image), headers={"Content-Type": "image/png"})
        assert fine.status_code == 201


def test_max_images_and_idle_expiry(segmenter, rgb_image):
    images = [png_bytes(np.roll(rgb_image, shift, axis=1)) for shift in (0, 7, 13)]
    with serve_with(segmenter, max_images=2, idle_s=0.5) as ctx:
        ids = [
            ctx.client.post("/images", content=d, headers={"Content-Type": "image/png"}).json()["id"]
            for d in images
        ]
        assert len(set(ids)) == 3
        status = [ctx.client.post(f"/images/{i}/segment", json={"points": [[5, 5]]}).status_code for i in ids]
        assert status == [404, 200, 200]  # the least recently used went first
        time.sleep(0.8)
        assert ctx.client.get("/health").json()["images"] == 0
        assert ctx.client.post(f"/images/{ids[2]}/segment", json={"points": [[5, 5]]}).status_code == 404


def test_expiring_store_bytes_and_clock():
    now = [0.0]
    dropped = []
    store = ExpiringStore(3, idle_s=10, max_bytes=10, size=len, on_drop=dropped.append, clock=lambda: now[0])
    assert store.put("a", "xxxx") and store.put("b", "xxxx")
    store.get("a")
    assert store.put("c", "xxxx")  # 12 bytes > 10: b (least recently used) goes
    assert store.get("b") is None and dropped == ["xxxx"] and store.nbytes == 8
    assert not store.put("d", "x" * 11)
    now[0] = 20.0
    assert store.expire() == 2 and len(store) == 0
    full = ExpiringStore(1, idle_s=10, evict=False)
    assert full.put("a", 1) and not full.put("b", 2) and full.get("a") == 1


def test_api_key(segmenter, truck_bytes):
    with serve_with(segmenter, api_key="s3cret") as ctx:
        assert ctx.client.get("/health").status_code == 200
        assert ctx.client.get("/").status_code == 200
        denied = ctx.client.post("/images", content=truck_bytes, headers={"Content-Type": "image/jpeg"})
        assert denied.status_code == 401 and "X-API-Key" in denied.json()["detail"]
        assert ctx.client.get("/models", headers={"X-API-Key": "s3cret!"}).status_code == 401
        assert ctx.client.get("/models", headers={"X-API-Key": "s3cret"}).status_code == 200
        assert ctx.client.get("/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert ctx.client.post("/images/x/segment", json={}).status_code == 401


def test_full_queue_answers_503_and_health_stays_quick(segmenter, rgb_image):
    with serve_with(segmenter, max_queue=1, workers=1) as ctx:
        image_id = ctx.client.post(
            "/images", content=png_bytes(rgb_image), headers={"Content-Type": "image/png"}
        ).json()["id"]
        release, entered = threading.Event(), threading.Event()
        original = segmenter.decode

        def slow_decode(*args, **kwargs):  # holds the only worker until released
            entered.set()
            release.wait(10)
            return original(*args, **kwargs)

        ctx.engine.segmenter = _Shim(segmenter, slow_decode)
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(ctx.client.post, f"/images/{image_id}/segment", json={"points": [[5, 5]]})
            assert entered.wait(10)
            busy = ctx.client.post(f"/images/{image_id}/segment", json={"points": [[5, 5]]})
            assert busy.status_code == 503 and busy.headers["Retry-After"] == "1"
            start = time.perf_counter()
            health = ctx.client.get("/health")
            assert health.status_code == 200 and health.json()["queue"] == 1
            assert time.perf_counter() - start < 0.5  # answered while the model works
            release.set()
            assert first.result().status_code == 200
        assert ctx.client.post(f"/images/{image_id}/segment", json={"points": [[5, 5]]}).status_code == 200


class _Shim:
    """The segmenter with one method swapped (only to hold a worker busy on purpose)."""

    def __init__(self, segmenter, decode):
        self._segmenter, self.decode = segmenter, decode

    def __getattr__(self, name):
        return getattr(self._segmenter, name)


@pytest.mark.parametrize("micro_batch", ["off", "on"])
def test_concurrent_clients_get_their_own_answers(segmenter, sample_image_path, truck_bytes, micro_batch):
    embedding = segmenter.embed(sample_image_path)
    rng = np.random.default_rng(0)
    prompts = [[[float(x), float(y)]] for x, y in zip(rng.uniform(0, 1799, 24), rng.uniform(0, 1199, 24))]
    expected = [segmenter.decode(embedding, points=p, multimask=False) for p in prompts]
    with serve_with(segmenter, micro_batch=micro_batch, workers=2) as ctx:
        image_id = ctx.client.post(
            "/images", content=truck_bytes, headers={"Content-Type": "image/jpeg"}
        ).json()["id"]
        assert ctx.client.get("/health").json()["micro_batch"] is (micro_batch == "on")
        bad = {"points": [[5000.0, 1.0]]}
        payloads = [{"points": p, "multimask": False} for p in prompts] + [bad]

        def call(payload):
            with httpx.Client(base_url=str(ctx.client.base_url), timeout=30) as client:
                return client.post(f"/images/{image_id}/segment", json=payload)

        with ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(call, payloads))
    assert responses[-1].status_code == 400  # one bad request fails alone
    for response, want in zip(responses[:-1], expected):
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["masks"]) == 1 and body["masks"][0]["object_id"] == 0
        assert body["scores"][0] == pytest.approx(float(want.scores[0]), abs=1e-5)
        got = decode_rle(body["masks"][0]["segmentation"])
        # batched matmuls differ from single ones by float noise: a few boundary pixels may flip
        assert np.logical_xor(got, want.masks[0]).mean() < 1e-3


def test_concurrent_uploads_of_one_image_encode_once(segmenter, rgb_image, monkeypatch):
    calls = []
    original = segmenter._encode

    def counting(images, keys):
        calls.append(len(images))
        time.sleep(0.2)  # keep the encoder busy while the other uploads arrive
        return original(images, keys)

    monkeypatch.setattr(segmenter, "_encode", counting)
    image = png_bytes(np.flipud(rgb_image).copy())  # an image no other test uploaded
    with serve_with(segmenter, workers=4) as ctx:

        def upload(_):
            with httpx.Client(base_url=str(ctx.client.base_url), timeout=30) as client:
                return client.post("/images", content=image, headers={"Content-Type": "image/png"})

        with ThreadPoolExecutor(4) as pool:
            responses = list(pool.map(upload, range(4)))
    assert [r.status_code for r in responses] == [201] * 4
    assert len({r.json()["id"] for r in responses}) == 1
    assert calls == [1]
