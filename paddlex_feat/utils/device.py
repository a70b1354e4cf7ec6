"""Device selection: ``cpu``, ``gpu``, ``gpu:0`` or ``gpu:0,1``; a missing GPU falls back to CPU.

The user's string is parsed once, by :func:`resolve_device`, into a :class:`Device` that is handed
down as a value: the runners read ``device.is_gpu`` and ``device.gpu_id`` and never parse again.
"""

from __future__ import annotations

import os

from .logger import logger


class Device(str):
    """A resolved device: the string paddle takes (``cpu`` or ``gpu:N``) with its parts as attributes.

    A ``str`` so that ``paddle.set_device(device)``, logging and ``device == "cpu"`` keep working.
    """

    is_gpu: bool
    gpu_id: int | None

    def __new__(cls, gpu_id: int | None = None) -> Device:
        self = super().__new__(cls, "cpu" if gpu_id is None else f"gpu:{gpu_id}")
        self.is_gpu, self.gpu_id = gpu_id is not None, gpu_id
        return self

    def __getnewargs__(self) -> tuple[int | None]:  # pickle/copy rebuild it from the GPU id
        return (self.gpu_id,)


CPU = Device()


def as_device(resolved: str) -> Device:
    """The Device of an already-resolved paddle device string (``paddle.get_device()``: cpu or gpu:N)."""
    if isinstance(resolved, Device):
        return resolved
    return Device(int(resolved.split(":")[1])) if resolved.startswith("gpu") else CPU


def default_cpu_threads() -> int:
    """Math threads for the CPU: every core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def parse_device(spec: str) -> tuple[str, list[int]]:
    """Split a validated device string into its kind and GPU ids (``gpu`` means ``gpu:0``)."""
    spec = spec.strip().lower()
    if spec == "cpu":
        return "cpu", []
    if spec == "gpu":
        return "gpu", [0]
    kind, ids = spec.split(":", 1)
    return kind, [int(i) for i in ids.split(",")]


def gpu_count() -> int:
    """How many GPUs this Paddle build can use (0 without CUDA)."""
    import paddle

    return paddle.device.cuda.device_count() if paddle.is_compiled_with_cuda() else 0


def resolve_device(spec: str) -> Device:
    """Return the device to run on, warning once and using the CPU if no GPU is usable."""
    import paddle

    kind, ids = parse_device(spec)
    if kind == "cpu":
        return CPU
    count = gpu_count()
    if count == 0:
        why = "this Paddle build has no CUDA" if not paddle.is_compiled_with_cuda() else "no GPU is visible"
        logger.warning(f"Global.device={spec} asks for a GPU, but {why}; running on the CPU instead.")
        return CPU
    missing = [i for i in ids if i >= count]
    if missing:
        logger.warning(f"GPU ids {missing} do not exist (this machine has {count}); using gpu:0 instead.")
        return Device(0)
    return Device(ids[0])


def set_device(spec: str) -> Device:
    """Resolve ``spec`` and make it paddle's current device; returns what was set."""
    import paddle

    device = resolve_device(spec)
    paddle.set_device(device)
    return device
