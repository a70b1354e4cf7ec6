"""Native index endpoints on a real server: /search, /index/add, /index/remove, writes on disk."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from conftest import demo_gallery, file_b64, jpeg_b64

from paddlex_feat import load_index


def post(server, path: str, **kwargs) -> httpx.Response:
    return httpx.post(server.url + path, timeout=30, **kwargs)


def test_search_finds_a_gallery_image_with_its_label(indexed) -> None:
    paths, labels = demo_gallery()
    response = post(indexed, "/search", json={"image": file_b64(paths[5]), "topk": 3, "thumbnails": True})
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert result["label"] == labels[5] and result["labels"][0] == labels[5]
    assert result["paths"][0] == paths[5] and result["scores"][0] > 0.999
    assert len(result["ids"]) == len(result["scores"]) == 3
    assert result["thumbnails"][0]  # a JPEG of the gallery image for the page
    assert result["timeMs"] > 0


def test_search_says_unknown_under_the_threshold(predictor, gallery_index, tmp_path, images) -> None:
    from conftest import start_server

    server = start_server(predictor, tmp_path / "i", default_index=str(gallery_index), score_threshold=0.9999)
    try:
        result = post(server, "/search", json={"image": jpeg_b64(images[0])}).json()["result"]
        assert result["label"] == "unknown" and len(result["labels"]) == 5  # the top-k is kept
    finally:
        server.stop()


def test_search_by_multipart_upload(indexed) -> None:
    paths, labels = demo_gallery()
    files = {"image": ("q.jpg", Path(paths[2]).read_bytes(), "image/jpeg")}
    response = post(indexed, "/search", files=files, data={"topk": "2"})
    assert response.status_code == 200, response.text
    assert response.json()["result"]["label"] == labels[2]


def test_add_is_on_disk_before_the_answer_then_remove(indexed, gallery_index, images) -> None:
    before = len(load_index(gallery_index))
    response = post(
        indexed,
        "/index/add",
        json={"images": [jpeg_b64(images[0]), jpeg_b64(images[1])], "labels": ["new-a", "new-b"]},
    )
    assert response.status_code == 200, response.text
    ids = response.json()["result"]["ids"]
    assert response.json()["result"]["imageCount"] == before + 2
    on_disk = load_index(gallery_index)  # a fresh reader sees the acknowledged write
    assert {r.id for r in on_disk.items()} >= set(ids)
    found = post(indexed, "/search", json={"image": jpeg_b64(images[1]), "topk": 1}).json()["result"]
    assert found["label"] == "new-b" and found["ids"] == [ids[1]]
    removed = post(indexed, "/index/remove", json={"ids": ids}).json()["result"]
    assert removed == {"removed": 2, "imageCount": before}
    assert len(load_index(gallery_index)) == before


def test_remove_unknown_ids_is_404_naming_them(indexed, gallery_index) -> None:
    response = post(indexed, "/index/remove", json={"ids": [0, 99999]})
    assert response.status_code == 404
    assert "99999" in response.json()["errorMsg"]
    assert len(load_index(gallery_index)) == 24  # nothing removed


def test_remove_by_label(indexed) -> None:
    paths, labels = demo_gallery()
    response = post(indexed, "/index/remove", json={"labels": [labels[0]]})
    assert response.status_code == 200 and response.json()["result"]["removed"] >= 1
    found = post(indexed, "/search", json={"image": file_b64(paths[0]), "topk": 1}).json()["result"]
    assert found["labels"][0] != labels[0]


def test_concurrent_adds_and_searches_all_land_and_searches_see_whole_states(
    indexed, gallery_index, images
) -> None:
    """Eight adds race with searches: every add lands, and every search sees a count between states."""

    async def main():
        async with httpx.AsyncClient(timeout=60) as client:
            adds = [
                client.post(
                    indexed.url + "/index/add",
                    json={"images": [jpeg_b64(images[i % 6])], "labels": [f"c{i}"]},
                )
                for i in range(8)
            ]
            searches = [
                client.post(indexed.url + "/search", json={"image": jpeg_b64(images[0]), "topk": 3})
                for _ in range(8)
            ]
            return await asyncio.gather(*adds, *searches)

    answers = asyncio.run(main())
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers if a.status_code != 200]
    counts = sorted(a.json()["result"]["imageCount"] for a in answers[:8])
    assert counts == list(range(25, 33))  # one writer at a time: each add saw the one before
    assert len(load_index(gallery_index)) == 32


def test_search_without_an_index_is_404(live, images) -> None:
    response = post(live, "/search", json={"image": jpeg_b64(images[0])})
    assert response.status_code == 404 and "Serve.index" in response.json()["errorMsg"]


def test_bad_index_key_is_400_and_unknown_is_404(indexed, images) -> None:
    bad = post(indexed, "/search", json={"image": jpeg_b64(images[0]), "indexKey": "../../etc"})
    assert bad.status_code == 400 and "indexKey" in bad.json()["errorMsg"]
    unknown = post(indexed, "/search", json={"image": jpeg_b64(images[0]), "indexKey": "abc"})
    assert unknown.status_code == 404


def test_labels_must_match_images(indexed, images) -> None:
    response = post(indexed, "/index/add", json={"images": [jpeg_b64(images[0])], "labels": ["a", "b"]})
    assert response.status_code == 400 and "labels" in response.json()["errorMsg"]
