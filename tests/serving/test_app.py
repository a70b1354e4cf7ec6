"""The HTTP app on a real uvicorn server: /features, /health, /metrics, the envelope and bad input."""

from __future__ import annotations

import asyncio
import base64
import threading

import cv2
import httpx
import numpy as np
import pytest
from conftest import jpeg_b64, png_bytes, start_server

from paddlex_feat.serving.service import API_KEY_ENV, ServeSettings


def post(live, path: str, **kwargs) -> httpx.Response:
    return httpx.post(live.url + path, timeout=30, **kwargs)


def test_features_are_the_predictors_in_input_order(live, predictor, images) -> None:
    response = post(live, "/features", json={"images": [jpeg_b64(im) for im in images]})
    assert response.status_code == 200
    body = response.json()
    assert body["errorCode"] == 0 and body["errorMsg"] == "Success" and body["logId"]
    feats = np.asarray(body["result"]["features"], np.float32)
    assert feats.shape == (len(images), 512)
    # the same JPEG bytes through the offline predictor give the same rows, in the same order
    decoded = [
        __import__("cv2").imdecode(np.frombuffer(base64.b64decode(jpeg_b64(im)), np.uint8), 1)
        for im in images
    ]
    expected = np.stack([r.feature for r in predictor.predict(decoded)])
    np.testing.assert_allclose(feats, expected, atol=1e-5)


def test_features_accepts_multipart_uploads(live, images) -> None:
    files = [("images", (f"{i}.png", png_bytes(im), "image/png")) for i, im in enumerate(images[:2])]
    response = post(live, "/features", files=files)
    assert response.status_code == 200, response.text
    assert len(response.json()["result"]["features"]) == 2


def test_small_requests_decode_on_the_event_loop_big_ones_on_the_decode_threads(live, predictor) -> None:
    from paddlex_feat.serving.service import INLINE_DECODE_BYTES

    where: list[str] = []
    prepare = live.service.prepare

    def spy(image, field):
        where.append(threading.current_thread().name)
        return prepare(image, field)

    live.service.prepare = spy
    small = jpeg_b64(np.full((40, 48, 3), 90, np.uint8))
    noise = np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8)
    big = base64.b64encode(png_bytes(noise)).decode("ascii")
    assert len(small) * 3 // 4 <= INLINE_DECODE_BYTES < len(big) * 3 // 4
    feats = []
    for text in (small, big):
        response = post(live, "/features", json={"images": [text]})
        assert response.status_code == 200, response.text
        feats.append(response.json()["result"]["features"][0])
    assert not where[0].startswith("pxf-serve-decode") and where[1].startswith("pxf-serve-decode")
    decoded = [cv2.imdecode(np.frombuffer(base64.b64decode(t), np.uint8), 1) for t in (small, big)]
    expected = np.stack([r.feature for r in predictor.predict(decoded)])
    np.testing.assert_allclose(np.asarray(feats, np.float32), expected, atol=1e-5)


def test_health_and_metrics(live, images) -> None:
    health = httpx.get(live.url + "/health").json()
    assert health["errorCode"] == 0 and health["result"]["model"] == "PP-ShiTuV2_rec"
    post(live, "/features", json={"images": [jpeg_b64(images[0])]})
    text = httpx.get(live.url + "/metrics").text
    assert 'paddlex_feat_requests_total{endpoint="/features",status="200"} 1.0' in text
    assert "paddlex_feat_request_seconds_bucket" in text
    assert "paddlex_feat_batch_size_count 1.0" in text
    assert "paddlex_feat_queue_depth 0.0" in text
    assert "paddlex_feat_index_size" in text


def test_page_is_served_and_needs_nothing_from_outside(live) -> None:
    page = httpx.get(live.url + "/")
    assert page.status_code == 200 and '<input id="file"' in page.text
    assert "http://" not in page.text and "https://" not in page.text  # no CDN: works offline


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"", 400, "body: the request body is empty"),
        (b"{not json", 400, "body: not valid JSON"),
        (b"[1, 2]", 400, "expected a JSON object"),
        (b'{"images": "abc"}', 400, "images"),
        (b'{"images": [5]}', 400, "images[0]"),
        (b'{"images": []}', 400, "images"),
        (b'{"images": ["%%%"]}', 400, "images[0]: not valid base64"),
        (b'{"images": ["aGVsbG8gd29ybGQ="]}', 400, "images[0]: not an image"),
        (b'{"images": ["http://169.254.169.254/latest"]}', 400, "Serve.allow_urls=True"),
    ],
)
def test_bad_input_is_400_naming_the_field(live, body: bytes, status: int, words: str) -> None:
    response = post(live, "/features", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    envelope = response.json()
    assert envelope["errorCode"] == status and words in envelope["errorMsg"], envelope


def test_truncated_image_is_400(live, images) -> None:
    data = png_bytes(images[0])
    response = post(live, "/features", json={"images": [base64.b64encode(data[: len(data) // 2]).decode()]})
    assert response.status_code == 400 and "images[0]" in response.json()["errorMsg"]


def test_limits_are_413(predictor, tmp_path, images) -> None:
    from paddlex_feat.serving.images import ImageLimits

    server = start_server(
        predictor, tmp_path, limits=ImageLimits(max_bytes=100_000, max_pixels=1000), max_request_bytes=300_000
    )
    try:
        big_pixels = post(server, "/features", json={"images": [jpeg_b64(images[0])]})  # 40x48 = 1920 px
        assert big_pixels.status_code == 413 and "Serve.max_image_pixels" in big_pixels.json()["errorMsg"]
        big_bytes = post(server, "/features", json={"images": [base64.b64encode(b"x" * 150_000).decode()]})
        assert big_bytes.status_code == 413 and "Serve.max_image_bytes" in big_bytes.json()["errorMsg"]
        big_body = post(server, "/features", json={"images": ["A" * 400_000]})
        assert big_body.status_code == 413 and "Serve.max_request_bytes" in big_body.json()["errorMsg"]
    finally:
        server.stop()


def test_full_queue_answers_503_with_retry_after_then_recovers(predictor, tmp_path, images) -> None:
    gate = threading.Event()
    original = predictor.embed

    class GatedPredictor:
        spec, model_name = predictor.spec, predictor.model_name

        def embed(self, batch):
            gate.wait(10)
            return original(batch)

    from conftest import LiveServer

    from paddlex_feat.serving.service import Service
    from paddlex_feat.serving.store import IndexStore

    server = LiveServer(
        Service(GatedPredictor(), ServeSettings(max_queue=2, max_batch_size=1), IndexStore(None, tmp_path))
    )
    body = {"images": [jpeg_b64(images[0])]}
    try:

        async def flood() -> list[httpx.Response]:
            async with httpx.AsyncClient(timeout=30) as client:
                tasks = [
                    asyncio.create_task(client.post(server.url + "/features", json=body)) for _ in range(8)
                ]
                await asyncio.sleep(1.0)  # every request has been admitted or refused by now
                gate.set()
                return await asyncio.gather(*tasks)

        codes = [r.status_code for r in asyncio.run(flood())]
        assert codes.count(503) >= 4 and codes.count(200) >= 2
        assert set(codes) == {200, 503}
        refused = post(server, "/features", json=body)  # recovered: answered normally now
        assert refused.status_code == 200
    finally:
        gate.set()
        server.stop()


def test_503_carries_retry_after(predictor, tmp_path, images) -> None:
    from paddlex_feat.serving.batcher import Overloaded

    server = start_server(predictor, tmp_path)

    def refuse(n):
        raise Overloaded(3)

    server.service.batcher.admit = refuse
    try:
        response = post(server, "/features", json={"images": [jpeg_b64(images[0])]})
        assert response.status_code == 503 and response.headers["retry-after"] == "3"
        assert response.json()["errorCode"] == 503
    finally:
        server.stop()


def test_writes_need_the_api_key_from_the_environment(monkeypatch, predictor, tmp_path, images) -> None:
    monkeypatch.setenv(API_KEY_ENV, "s3cret")
    settings = ServeSettings.from_config(
        {
            "max_batch_size": 4,
            "max_wait_ms": 1.0,
            "max_queue": 8,
            "workers": 1,
            "api_key": None,
            "max_request_bytes": 10**7,
            "topk": 5,
            "score_threshold": None,
            "max_image_bytes": 10**6,
            "max_image_pixels": 10**7,
            "allow_urls": False,
            "url_timeout": 1.0,
        }
    )
    assert settings.api_key == "s3cret"
    from conftest import LiveServer

    from paddlex_feat.serving.service import Service
    from paddlex_feat.serving.store import IndexStore

    server = LiveServer(Service(predictor, settings, IndexStore(None, tmp_path)))
    pairs = {"imageLabelPairs": [{"image": jpeg_b64(images[0]), "label": "a"}]}
    try:
        for path, body in [("/shitu-index-build", pairs), ("/index/remove", {"ids": [1]})]:
            missing = post(server, path, json=body)
            wrong = post(server, path, json=body, headers={"Authorization": "Bearer s3cre"})
            assert missing.status_code == wrong.status_code == 401
            assert "API key" in missing.json()["errorMsg"]
        assert (
            post(server, "/features", json={"images": [jpeg_b64(images[0])]}).status_code == 200
        )  # reads are open
    finally:
        server.stop()


def test_urls_are_fetched_only_when_allowed(predictor, tmp_path, images) -> None:
    import functools
    import http.server

    from paddlex_feat.serving.images import ImageLimits

    (tmp_path / "a.png").write_bytes(png_bytes(images[0]))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    files = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=files.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{files.server_address[1]}"
    server = start_server(predictor, tmp_path / "i", limits=ImageLimits(allow_urls=True, url_timeout=5))
    try:
        ok = post(server, "/features", json={"images": [url + "/a.png"]})
        assert ok.status_code == 200 and len(ok.json()["result"]["features"][0]) == 512
        missing = post(server, "/features", json={"images": [url + "/missing.png"]})
        assert missing.status_code == 400 and "404" in missing.json()["errorMsg"]
    finally:
        server.stop()
        files.shutdown()
