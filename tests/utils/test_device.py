"""Device strings and the GPU-to-CPU fallback."""

from __future__ import annotations

import logging

import pytest

from paddlex_feat.utils.device import parse_device, resolve_device


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("cpu", ("cpu", [])),
        ("gpu", ("gpu", [0])),
        ("gpu:1", ("gpu", [1])),
        ("gpu:0,1,2,3", ("gpu", [0, 1, 2, 3])),
    ],
)
def test_parse_device(spec: str, expected: tuple) -> None:
    assert parse_device(spec) == expected


def test_gpu_request_falls_back_to_cpu_with_one_warning() -> None:
    import paddle

    if paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0:
        assert resolve_device("gpu:0") == "gpu:0"
        return
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("paddlex_feat")
    logger.addHandler(handler)
    try:
        assert resolve_device("gpu:0,1,2,3") == "cpu"
    finally:
        logger.removeHandler(handler)
    warnings = [r for r in records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "running on the CPU instead" in warnings[0].getMessage()


def test_a_resolved_device_is_a_value_parsed_once() -> None:
    import copy
    import pickle

    from paddlex_feat.utils.device import CPU, Device, as_device

    gpu = Device(3)
    assert gpu == "gpu:3" and gpu.is_gpu and gpu.gpu_id == 3  # the runners read these, never the string
    assert CPU == "cpu" and not CPU.is_gpu and CPU.gpu_id is None
    for clone in (pickle.loads(pickle.dumps(gpu)), copy.deepcopy(gpu)):  # spawn and deepcopy keep the parts
        assert clone == "gpu:3" and clone.gpu_id == 3
    assert as_device("gpu:1").gpu_id == 1 and as_device("cpu") is CPU and as_device(gpu) is gpu
    assert resolve_device("cpu") is CPU
