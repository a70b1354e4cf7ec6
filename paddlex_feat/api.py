"""The Python API, as PaddleX's: ``create_model(name, model_dir=...)`` then ``model.predict(input)``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .inference.predictor import Predictor
from .models.registry import INFERENCE_URL_BASE
from .utils.logger import logger

# Where PaddleX 3.7.2 fetches official inference models (paddlex/inference/utils/official_models.py).
OFFICIAL_INFERENCE_BASE = INFERENCE_URL_BASE


def official_inference_url(model_name: str) -> str:
    """The official inference tarball of a model, the one PaddleX downloads."""
    from .models import get_model_info

    get_model_info(model_name)  # refuses unknown names, listing the known ones
    return f"{OFFICIAL_INFERENCE_BASE}/{model_name}_infer.tar"


def official_model_dir(model_name: str) -> Path:
    """The official inference folder, from the download cache (fetched once; offline fails fast)."""
    from .utils.download import download_file  # imported lazily: only this path needs the network

    folder = download_file(
        official_inference_url(model_name),
        extract=True,
        hint=f"Or pass model_dir= a local inference folder, e.g. create_model({model_name!r}, model_dir='output/best_model/inference').",
    )
    # the tarball holds one top folder (<name>_infer/) in PaddleX's packaging; accept either layout
    if (folder / "inference.yml").is_file():
        return folder
    inner = [d for d in folder.iterdir() if d.is_dir() and (d / "inference.yml").is_file()]
    return inner[0] if len(inner) == 1 else folder


def create_model(
    model_name: str,
    model_dir: str | Path | None = None,
    device: str | None = None,
    use_hpip: bool = False,
    hpi_config: dict[str, Any] | None = None,
    **predictor_options: Any,
) -> Predictor:
    """An image-feature model ready to ``predict``; ``model_dir=None`` uses the official model.

    ``predictor_options`` go to :class:`Predictor` (``batch_size``, ``cpu_threads``, ``skip_errors``,
    ``url_timeout``, ``decode_workers``). ``use_hpip=True`` runs the model with OpenVINO or ONNX Runtime;
    ``hpi_config`` keys: ``backend`` (openvino, onnxruntime, paddle; unset: the fastest installed),
    ``precision`` (fp32, bf16, fp16; default fp32), ``num_threads``, ``cache_dir``.
    """
    from .models import get_model_info

    get_model_info(model_name)
    if hpi_config is not None and not use_hpip:
        logger.warning("hpi_config is ignored because use_hpip=False.")
        hpi_config = None
    folder = Path(model_dir) if model_dir is not None else official_model_dir(model_name)
    return Predictor(
        folder,
        model_name=model_name,
        device=device,
        use_hpip=use_hpip,
        hpi_config=hpi_config,
        **predictor_options,
    )
