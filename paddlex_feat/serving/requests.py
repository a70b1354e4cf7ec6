"""Request bodies: PaddleX's PP-ShiTuV2 serving schemas (same field names) and our native ones.

Bodies arrive as JSON, or as multipart forms (file uploads) on the native endpoints; both are
validated by the same pydantic models, and a failure is a 400 naming the field.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar, Union

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request

from .errors import ApiError

ImageField = Union[str, bytes]  # base64 text or URL from JSON; raw bytes from an upload
MAX_TOPK = 1000


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")  # PaddleX clients may send fields we do not use


# -- PaddleX (paddlex/inference/serving/schemas/pp_shituv2.py, 3.7.2) ------------------------------


class ImageLabelPair(_Body):
    image: ImageField
    label: str


class BuildIndexRequest(_Body):
    imageLabelPairs: list[ImageLabelPair] = Field(min_length=1)
    # ours (PaddleX always builds Flat): auto picks Flat, HNSW, IVF or IVF_PQ by gallery size
    indexType: Literal["auto", "Flat", "HNSW", "IVF", "IVF_PQ"] = "auto"


class AddImagesToIndexRequest(_Body):
    imageLabelPairs: list[ImageLabelPair] = Field(min_length=1)
    indexKey: str | None = None  # PaddleX requires it; ours falls back to the default index


class RemoveImagesFromIndexRequest(_Body):
    ids: list[int] = Field(min_length=1)
    indexKey: str | None = None


class InferRequest(_Body):
    image: ImageField
    indexKey: str | None = None
    detThreshold: float | None = None  # accepted and ignored: there is no detector
    recThreshold: float | None = None
    hammingRadius: float | None = None  # accepted and ignored: the index is float, not binary
    topk: int | None = Field(default=None, ge=1, le=MAX_TOPK)
    visualize: bool | None = None


# -- native ---------------------------------------------------------------------------------------


class FeaturesRequest(_Body):
    images: list[ImageField] = Field(min_length=1)


class SearchRequest(_Body):
    image: ImageField
    topk: int | None = Field(default=None, ge=1, le=MAX_TOPK)
    indexKey: str | None = None
    thumbnails: bool = False  # the search page asks for small JPEGs of the hits


class IndexAddRequest(_Body):
    images: list[ImageField] = Field(min_length=1)
    labels: list[str] = Field(min_length=1)
    paths: list[str] | None = None  # names to store with the images (e.g. their file names)
    indexKey: str | None = None


class IndexRemoveRequest(_Body):
    ids: list[int] | None = None
    paths: list[str] | None = None
    labels: list[str] | None = None
    indexKey: str | None = None


M = TypeVar("M", bound=BaseModel)


async def read_body(request: Request, model: type[M], max_bytes: int) -> M:
    """Parse and validate a JSON or multipart body into ``model``; 400/413 with the field named."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        return validate(model, await _form_fields(request, max_bytes))
    body = await _read_capped(request, max_bytes)
    if not body.strip():
        raise ApiError(
            400, f"body: the request body is empty; send JSON with the fields of {model.__name__}."
        )
    try:
        data = orjson.loads(body)  # several times faster than json.loads on image-sized strings
    except orjson.JSONDecodeError as e:
        raise ApiError(400, f"body: not valid JSON ({e}).") from e
    return validate(model, data)


def validate(model: type[M], data: Any) -> M:
    """``model`` from parsed data; a ValidationError becomes a 400 listing each bad field."""
    if not isinstance(data, dict):
        raise ApiError(
            400,
            f"body: expected a JSON object with the fields of {model.__name__}, got {type(data).__name__}.",
        )
    try:
        return model.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(f"{_dotted(err['loc'])}: {err['msg']}" for err in e.errors())
        raise ApiError(400, problems) from e


def _dotted(loc: tuple) -> str:
    """('imageLabelPairs', 0, 'image') -> 'imageLabelPairs[0].image' (PaddleX's way of naming fields)."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part not in ("str", "bytes"):  # union branch names add nothing for a client
            text += ("." if text else "") + str(part)
    return text or "body"


async def _read_capped(request: Request, max_bytes: int) -> bytes:
    """The body, refused with 413 past ``max_bytes`` (checked on Content-Length and while reading)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise _body_too_large(int(declared), max_bytes)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise _body_too_large(size, max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def _body_too_large(size: int, max_bytes: int) -> ApiError:
    return ApiError(
        413,
        f"body: {size} bytes, over the limit of {max_bytes} (Serve.max_request_bytes); send fewer images.",
    )


LIST_FIELDS = ("images", "labels", "paths", "ids")  # form fields that may repeat


async def _form_fields(request: Request, max_bytes: int) -> dict[str, Any]:
    """A multipart form as a dict: uploads become bytes, repeated list fields become lists."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise _body_too_large(int(declared), max_bytes)
    form = await request.form()
    data: dict[str, Any] = {}
    for key, value in form.multi_items():
        value = await value.read() if hasattr(value, "read") else value
        if key in LIST_FIELDS:
            data.setdefault(key, []).append(value)
        else:
            data[key] = value
    return data
