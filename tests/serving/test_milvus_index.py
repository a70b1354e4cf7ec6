"""The service's default index may be a Milvus collection (Serve.index=milvus://...): search, add, remove."""

from __future__ import annotations

import numpy as np

from paddlex_feat.retrieval.index import GalleryIndex
from paddlex_feat.retrieval.index_types import IndexPlan
from paddlex_feat.retrieval.milvus_store import MilvusStore, MilvusTarget
from paddlex_feat.retrieval.store import IndexMeta
from paddlex_feat.serving.store import IndexStore


def unit(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, 16)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_a_milvus_collection_serves_searches_and_writes(tmp_path):
    from milvus_lite.server_manager import server_manager_instance

    target = MilvusTarget(str(tmp_path / "g.db"), "shop")
    meta = IndexMeta(None, None, 16, backend="milvus")
    with MilvusStore.create(target, 16, "IP", IndexPlan("Flat"), meta=meta) as store:
        GalleryIndex(store, meta).add_vectors(
            unit(4, 0), ["a", "b", "c", "d"], paths=[f"{i}.jpg" for i in range(4)]
        )
    service = IndexStore(default=f"milvus://{tmp_path}/g.db/shop", index_dir=tmp_path / "keys")
    try:
        assert [r["label"] for r in service.search(None, unit(4, 0), 1, None)] == ["a", "b", "c", "d"]
        ids, size = service.add(None, unit(1, 9), ["e"], ["9.jpg"])
        assert size == 5 and service.search(None, unit(1, 9), 1, None)[0]["ids"] == ids
        assert service.remove(None, labels=["a"]) == (1, 4)
        assert not (tmp_path / "milvus:").exists()  # no folder written for the collection
    finally:
        service.snapshot(None).close()
    assert not [p for p in server_manager_instance._servers if p.startswith(str(tmp_path))]
