"""Device selection: ``cpu``, ``gpu``, ``gpu:0`` or ``gpu:0,1``; a missing GPU falls back to CPU."""

from __future__ import annotations

from .logger import logger


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


def resolve_device(spec: str) -> str:
    """Return the paddle device to run on, warning once and using the CPU if no GPU is usable."""
    import paddle

    kind, ids = parse_device(spec)
    if kind == "cpu":
        return "cpu"
    count = gpu_count()
    if count == 0:
        why = "this Paddle build has no CUDA" if not paddle.is_compiled_with_cuda() else "no GPU is visible"
        logger.warning(f"Global.device={spec} asks for a GPU, but {why}; running on the CPU instead.")
        return "cpu"
    missing = [i for i in ids if i >= count]
    if missing:
        logger.warning(f"GPU ids {missing} do not exist (this machine has {count}); using gpu:0 instead.")
        return "gpu:0"
    return f"gpu:{ids[0]}"


def set_device(spec: str) -> str:
    """Resolve ``spec`` and make it paddle's current device; returns what was set."""
    import paddle

    device = resolve_device(spec)
    paddle.set_device(device)
    return device
