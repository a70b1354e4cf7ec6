"""The FastAPI app: PaddleX's PP-ShiTuV2 endpoints, native endpoints, the search page and metrics.

Every answer is PaddleX's envelope ``{logId, errorCode, errorMsg, result}``: errorCode 0 and
errorMsg "Success" on success, the HTTP status and a message naming the field on failure.
"""

from __future__ import annotations

import time
import uuid
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

import numpy as np
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..utils.errors import PaddlexFeatError, UsageError
from ..utils.logger import logger
from .batcher import Overloaded
from .errors import ApiError
from .metrics import CONTENT_TYPE
from .requests import (
    AddImagesToIndexRequest,
    BuildIndexRequest,
    FeaturesRequest,
    IndexAddRequest,
    IndexRemoveRequest,
    InferRequest,
    RemoveImagesFromIndexRequest,
    SearchRequest,
    read_body,
)
from .service import Service

UNKNOWN_LABEL = "unknown"


class FastJSONResponse(JSONResponse):
    """JSON by orjson, numpy arrays included: a [N, 512] float32 feature array is written straight
    from its buffer (shortest float32 text), not through N*512 Python floats and the json module,
    which cost more server time per request than decoding the image."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def envelope(result: Any) -> FastJSONResponse:
    """PaddleX's success envelope around ``result`` (JSON types and numpy arrays)."""
    return FastJSONResponse(
        {"logId": str(uuid.uuid4()), "errorCode": 0, "errorMsg": "Success", "result": result}
    )


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> FastJSONResponse:
    """PaddleX's failure envelope (errorCode = the HTTP status)."""
    body = {"logId": str(uuid.uuid4()), "errorCode": status, "errorMsg": message}
    return FastJSONResponse(body, status_code=status, headers=headers)


def create_app(service: Service) -> FastAPI:
    """The service's HTTP app; closing it (lifespan end) stops the model thread."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        service.close()

    app = FastAPI(title="paddlex_feat", lifespan=lifespan, docs_url="/docs", redoc_url=None)
    app.state.service = service
    _add_error_handlers(app)
    _add_metrics_middleware(app, service)
    _add_basic_routes(app, service)
    _add_native_routes(app, service)
    _add_paddlex_routes(app, service)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.headers)

    @app.exception_handler(Overloaded)
    async def _overloaded(request: Request, exc: Overloaded) -> JSONResponse:
        return error_response(
            503,
            f"The service is at capacity (queue full); retry in {exc.retry_after} s.",
            {"Retry-After": str(exc.retry_after)},
        )

    @app.exception_handler(UsageError)
    async def _usage_error(request: Request, exc: UsageError) -> JSONResponse:
        return error_response(400, str(exc))

    @app.exception_handler(PaddlexFeatError)
    async def _service_error(request: Request, exc: PaddlexFeatError) -> JSONResponse:
        logger.error(f"{request.url.path}: {exc}")
        return error_response(500, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception(f"Unexpected error on {request.url.path}")
        return error_response(500, f"Internal server error ({type(exc).__name__}); see the server log.")


def _add_metrics_middleware(app: FastAPI, service: Service) -> None:
    app.add_middleware(_MetricsMiddleware, metrics=service.metrics)


class _MetricsMiddleware:
    """Counts every answer by route and status, and times it (plain ASGI: no body buffering)."""

    def __init__(self, app: Any, metrics: Any) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")  # unknown paths share one label: bounded cardinality
            self.metrics.observe(getattr(route, "path", "other"), status, time.perf_counter() - start)


def _add_basic_routes(app: FastAPI, service: Service) -> None:
    page = resources.files("paddlex_feat.serving").joinpath("static/index.html").read_text("utf-8")

    @app.get("/", include_in_schema=False)
    async def _page() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/health")
    async def _health() -> JSONResponse:
        # PaddleX answers errorMsg "Healthy"; we add what a load balancer may want to see
        store = service.store
        result = {
            "model": service.predictor.model_name,
            "indexSize": int(service.index_size()),
            "hasIndex": bool(store is not None and store.has(None)),
            "queueDepth": service.batcher.depth,
        }
        return JSONResponse(
            {"logId": str(uuid.uuid4()), "errorCode": 0, "errorMsg": "Healthy", "result": result}
        )

    @app.get("/metrics", include_in_schema=False)
    async def _metrics() -> Response:
        return Response(service.metrics.render(), media_type=CONTENT_TYPE)


def _limit(service: Service) -> int:
    return service.settings.max_request_bytes


def _store(service: Service) -> Any:
    if service.store is None:
        raise ApiError(503, "This service has no index store; start it with -o Serve.index=FOLDER.")
    return service.store


# Index reads and writes (faiss, disk, fsync) run on the thread pool, so the event loop keeps
# accepting requests while a writer saves.
def _add_native_routes(app: FastAPI, service: Service) -> None:
    @app.post("/features")
    async def _features(request: Request) -> JSONResponse:
        body = await read_body(request, FeaturesRequest, _limit(service))
        names = [f"images[{i}]" for i in range(len(body.images))]
        feats = await service.features(body.images, names)
        return envelope({"features": np.ascontiguousarray(feats, dtype=np.float32)})

    @app.post("/search")
    async def _search(request: Request) -> JSONResponse:
        start = time.perf_counter()
        body = await read_body(request, SearchRequest, _limit(service))
        store = _store(service)
        await run_in_threadpool(store.require, body.indexKey)
        feats = await service.features([body.image], ["image"])
        topk = body.topk or service.settings.topk
        hits = await run_in_threadpool(
            store.search, body.indexKey, feats, topk, service.settings.score_threshold
        )
        hit = hits[0]
        if body.thumbnails:
            hit["thumbnails"] = await run_in_threadpool(store.thumbnails, body.indexKey, hit["paths"])
        hit["timeMs"] = round((time.perf_counter() - start) * 1000, 1)
        return envelope(hit)

    @app.post("/index/add")
    async def _index_add(request: Request) -> JSONResponse:
        service.check_key(request.headers)
        body = await read_body(request, IndexAddRequest, _limit(service))
        if len(body.labels) != len(body.images) or (
            body.paths is not None and len(body.paths) != len(body.images)
        ):
            raise ApiError(400, "labels (and paths, if given) must have one entry per image in images.")
        store = _store(service)
        await run_in_threadpool(store.require, body.indexKey)
        feats = await service.features(body.images, [f"images[{i}]" for i in range(len(body.images))])
        ids, count = await run_in_threadpool(store.add, body.indexKey, feats, body.labels, body.paths)
        return envelope({"ids": ids, "imageCount": count})

    @app.post("/index/remove")
    async def _index_remove(request: Request) -> JSONResponse:
        service.check_key(request.headers)
        body = await read_body(request, IndexRemoveRequest, _limit(service))
        if not (body.ids or body.paths or body.labels):
            raise ApiError(400, "ids, paths or labels: give at least one non-empty list of what to remove.")
        removed, count = await run_in_threadpool(
            _store(service).remove, body.indexKey, ids=body.ids, paths=body.paths, labels=body.labels
        )
        return envelope({"removed": removed, "imageCount": count})


def _add_paddlex_routes(app: FastAPI, service: Service) -> None:
    """PaddleX 3.7.2's pp_shituv2 endpoints: same paths, bodies and results."""

    def pair_names(n: int) -> list[str]:
        return [f"imageLabelPairs[{i}].image" for i in range(n)]

    @app.post("/shitu-index-build", operation_id="buildIndex")
    async def _build(request: Request) -> JSONResponse:
        service.check_key(request.headers)
        body = await read_body(request, BuildIndexRequest, _limit(service))
        pairs = body.imageLabelPairs
        feats = await service.features([p.image for p in pairs], pair_names(len(pairs)))
        key, count = await run_in_threadpool(
            _store(service).build, feats, [p.label for p in pairs], body.indexType
        )
        return envelope({"indexKey": key, "imageCount": count})

    @app.post("/shitu-index-add", operation_id="addImagesToIndex")
    async def _add(request: Request) -> JSONResponse:
        service.check_key(request.headers)
        body = await read_body(request, AddImagesToIndexRequest, _limit(service))
        store = _store(service)
        await run_in_threadpool(store.require, body.indexKey)
        pairs = body.imageLabelPairs
        feats = await service.features([p.image for p in pairs], pair_names(len(pairs)))
        _, count = await run_in_threadpool(store.add, body.indexKey, feats, [p.label for p in pairs], None)
        return envelope({"imageCount": count})

    @app.post("/shitu-index-remove", operation_id="removeImagesFromIndex")
    async def _remove(request: Request) -> JSONResponse:
        service.check_key(request.headers)
        body = await read_body(request, RemoveImagesFromIndexRequest, _limit(service))
        _, count = await run_in_threadpool(_store(service).remove, body.indexKey, ids=body.ids)
        return envelope({"imageCount": count})

    @app.post("/shitu-infer", operation_id="infer")
    async def _infer(request: Request) -> JSONResponse:
        body = await read_body(request, InferRequest, _limit(service))
        store = _store(service)
        await run_in_threadpool(store.require, body.indexKey)
        feats, [(height, width)] = await service.embed_images([body.image], ["image"])
        topk = body.topk or service.settings.topk
        threshold = body.recThreshold if body.recThreshold is not None else service.settings.score_threshold
        hit = (await run_in_threadpool(store.search, body.indexKey, feats, topk, threshold))[0]
        rec = [
            {"label": label, "score": score}
            for label, score in zip(hit["labels"], hit["scores"])
            if threshold is None or score >= threshold
        ]
        # no detector: the whole image is the one object, found with certainty
        obj = {"bbox": [0.0, 0.0, float(width), float(height)], "recResults": rec, "score": 1.0}
        return envelope({"detectedObjects": [obj], "image": None})
