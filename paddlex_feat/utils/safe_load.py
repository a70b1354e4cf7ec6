"""Read Paddle checkpoint files (.pdparams/.pdopt/.pdstates) without running code from them.

These files are pickles, and ``pickle.load`` (so ``paddle.load``) calls whatever a file names: a
hostile checkpoint, or one fetched from a URL, could run anything. Like
``torch.load(weights_only=True)``, this unpickler admits only what Paddle checkpoints hold —
numpy arrays and dtypes, numpy scalars, dicts/lists/tuples, numbers, strings, bytes, None — and
refuses any other name *when the unpickler meets it*, before it is called. Object arrays are
refused too, since their items would be Python objects.

The result is what ``paddle.load(path, return_numpy=True)`` gives: arrays stay numpy (both
``Layer.set_state_dict`` and ``Optimizer.set_state_dict`` take them).
"""

from __future__ import annotations

import codecs
import collections
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelError


class _Refused(pickle.UnpicklingError):
    """The file names something a checkpoint never holds."""


def _dtype(*args: Any) -> np.dtype:
    """numpy.dtype, but never the object dtype (its items would be arbitrary Python objects)."""
    dtype = np.dtype(*args)
    if dtype.hasobject:
        raise _Refused("an array of Python objects (dtype object) is not allowed")
    return dtype


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for bytes; only to bytes, only latin1."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _Refused("_codecs.encode is only allowed as str -> latin1 bytes")
    return codecs.encode(text, encoding)


# (module, name) -> the callable handed to the unpickler. numpy moved its core to numpy._core in 2.0,
# and files saved under either numpy name both occur (official files were saved with numpy 1.x).
_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("_codecs", "encode"): _latin1_bytes,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _dtype,
}
_multiarray = (getattr(np, "_core", None) or np.core).multiarray
for _core in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED[(_core, "_reconstruct")] = _multiarray._reconstruct  # ndarray.__reduce__'s constructor
    _ALLOWED[(_core, "scalar")] = _multiarray.scalar  # numpy scalars (np.float32(1.0))

# Keys paddle.save adds to a state dict, read back here as paddle.load does.
_NAME_TABLE = "StructuredToParameterName@@"
_BIG_PARAMS = "UnpackBigParamInfor@@"  # typos: disable-line - Paddle's spelling


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        found = _ALLOWED.get((module, name))
        if found is None:
            raise _Refused(f"it names {module}.{name}, which a checkpoint never holds")
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise _Refused("it uses persistent ids, which Paddle checkpoints never do")


def _check_arrays(obj: Any) -> None:
    """Object arrays can also arrive through a structured dtype's fields; refuse them anywhere."""
    if isinstance(obj, np.ndarray) and obj.dtype.hasobject:
        raise _Refused("an array of Python objects (dtype object) is not allowed")
    if isinstance(obj, dict):
        for value in obj.values():
            _check_arrays(value)
    elif isinstance(obj, list | tuple):
        for value in obj:
            _check_arrays(value)


def _as_paddle_load_gives(obj: Any) -> Any:
    """Undo what paddle.save adds: the name table, big tensors cut in slices, 2.1's (name, array) pairs."""
    if not isinstance(obj, dict):
        return obj
    obj.pop(_NAME_TABLE, None)
    for key, info in (obj.pop(_BIG_PARAMS, None) or {}).items():
        obj[key] = np.concatenate([obj.pop(part) for part in info["slices"]]).reshape(info["OriginShape"])
    for key, value in obj.items():
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], np.ndarray):
            obj[key] = value[1]  # Paddle 2.1 saved tensors as (name, ndarray)
    return obj


def safe_load(path: str | os.PathLike) -> Any:
    """Load a Paddle checkpoint file admitting only arrays, containers, numbers and strings (ModelError otherwise)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            obj = _RestrictedUnpickler(f, encoding="latin1").load()
        _check_arrays(obj)
    except _Refused as err:
        raise ModelError(
            f"{path} was refused: {err}. Checkpoint files are pickles, which can run code when loaded, "
            "so only numpy arrays, numbers, strings and plain containers are accepted. Use a "
            ".pdparams/.pdopt/.pdstates file saved by Paddle, PaddleX, PaddleClas or paddlex_feat "
            "from a source you trust."
        ) from err
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
        UnicodeDecodeError,
    ) as err:
        raise ModelError(
            f"{path} is not a Paddle checkpoint (unreadable: {type(err).__name__}: {err}). "
            "Expected a .pdparams/.pdopt/.pdstates file saved by Paddle."
        ) from err
    return _as_paddle_load_gives(obj)
