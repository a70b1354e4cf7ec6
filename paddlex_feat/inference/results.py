"""FeatureResult: one image's 512-d feature, printable and savable as PaddleX's results are."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..utils.io import atomic_write_text
from .inputs import InputItem, input_stem

_PREVIEW = 3  # values shown at each end of an abbreviated feature


class JsonResult(dict):
    """A result dict that prints and saves as PaddleX's results do; subclasses give ``json``, ``to_str``."""

    save_stem: str

    @property
    def json(self) -> dict[str, Any]:
        """Plain JSON-ready content: ``{'res': {...}}``."""
        return {"res": dict(self)}

    def to_str(self, format_json: bool = True, indent: int = 4, ensure_ascii: bool = False) -> str:
        """The text ``print()`` shows."""
        if not format_json:
            return str(self.json)
        return json.dumps(self.json, indent=indent, ensure_ascii=ensure_ascii)

    def print(
        self,
        format_json: bool = True,
        indent: int = 4,
        ensure_ascii: bool = False,
        json_format: bool | None = None,
    ) -> None:
        """Print the result; ``json_format`` is PaddleX's spelling of ``format_json``."""
        if json_format is not None:
            format_json = json_format
        print(self.to_str(format_json=format_json, indent=indent, ensure_ascii=ensure_ascii), flush=True)

    def save_to_json(self, save_path: str | Path, indent: int = 4, ensure_ascii: bool = False) -> Path:
        """Write ``.json`` content; a folder gets ``<stem>_res.json``, a ``*.json`` path is the file."""
        target = Path(save_path)
        if target.suffix.lower() != ".json":
            target = target / f"{self.save_stem}_res.json"
        atomic_write_text(
            target, json.dumps(self.json["res"], indent=indent, ensure_ascii=ensure_ascii) + "\n"
        )
        return target


class FeatureResult(JsonResult):
    """``{'input_path', 'page_index', 'feature'}`` for one image (plus ``'error'`` when it failed).

    A dict, like PaddleX's result, so ``res["feature"]`` works; ``res.feature`` is the float32 vector.
    """

    def __init__(
        self,
        input_path: str | None,
        feature: np.ndarray | None,
        *,
        index: int = 0,
        save_stem: str | None = None,
        error: str | None = None,
    ) -> None:
        super().__init__(input_path=input_path, page_index=None, feature=feature)
        if error is not None:
            self["error"] = error
        self.index = index  # position in the predict() stream
        # the predictor hands out unique stems so that a/x.jpg and b/x.jpg never overwrite each other
        self.save_stem = save_stem or input_stem(InputItem(index, input_path))

    @property
    def feature(self) -> np.ndarray | None:
        """The L2-normalised float32 feature, shape ``[512]``; None for an error result."""
        return self["feature"]

    @property
    def error(self) -> str | None:
        """Why this image failed (only with skip_errors), else None."""
        return self.get("error")

    @property
    def ok(self) -> bool:
        """Whether the image produced a feature."""
        return self.get("error") is None

    @property
    def json(self) -> dict[str, Any]:
        """Plain JSON-ready content: ``{'res': {...}}`` with the feature as a list of floats."""
        body = {k: v for k, v in self.items()}
        if isinstance(body["feature"], np.ndarray):
            body["feature"] = [float(v) for v in body["feature"]]
        return {"res": body}

    def __str__(self) -> str:
        # the seed's look, without touching numpy's global print options as the reference does
        body = dict(self)
        if isinstance(body["feature"], np.ndarray):
            body["feature"] = _ShortArray(body["feature"])
        return str({"res": body})

    def to_str(self, format_json: bool = True, indent: int = 4, ensure_ascii: bool = False) -> str:
        """The text ``print()`` shows: indented JSON with the feature abbreviated, or the dict repr."""
        if not format_json:
            return str(self)
        marker = "\x00feature\x00"
        body = dict(self.json["res"])
        shown = body["feature"]
        if shown is not None:
            body["feature"] = marker
        text = json.dumps({"res": body}, indent=indent, ensure_ascii=ensure_ascii)
        if shown is None:
            return text
        if len(shown) > 2 * _PREVIEW:
            values = (
                [f"{v:.8f}" for v in shown[:_PREVIEW]] + ["..."] + [f"{v:.8f}" for v in shown[-_PREVIEW:]]
            )
        else:
            values = [f"{v:.8f}" for v in shown]
        return text.replace(json.dumps(marker), f"[{', '.join(values)}]")


class _ShortArray:
    """Shows an array as ``array([ 0.049, ..., -0.071], dtype=float32)``."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def __repr__(self) -> str:
        body = np.array2string(self.array, threshold=1, edgeitems=1, separator=", ", prefix="array(")
        return f"array({body}, dtype={self.array.dtype})"
