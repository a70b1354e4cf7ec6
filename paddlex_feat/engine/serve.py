"""Global.mode=serve: load the model and the gallery index, then serve HTTP until stopped (Ctrl-C).

Everything is checked before the port opens: the serving extra is installed, the model folder
loads, the index folder (when given) exists and loads; otherwise the server does not start and
the error says why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..utils.errors import ConfigError, PaddlexFeatError
from ..utils.logger import logger

# Idle keep-alive connections live this long (uvicorn's default is 5 s). A client that reuses a
# connection just as the server closes it gets a reset (its request arrives on a closed socket):
# with a 5 s timeout that race hit busy clients under overload. Longer than the usual 60 s idle
# timeout of load balancers and HTTP client pools, so the client side always closes first.
KEEP_ALIVE_S = 75

POSITIVE_KEYS = (
    "max_batch_size",
    "max_queue",
    "workers",
    "max_image_bytes",
    "max_image_pixels",
    "max_request_bytes",
    "topk",
)


def check_serve_config(serve: dict[str, Any]) -> None:
    """Refuse values that cannot work, naming the key."""
    for key in POSITIVE_KEYS:
        if serve[key] < 1:
            raise ConfigError(f"Serve.{key} must be 1 or more; got {serve[key]}.")
    if serve["max_wait_ms"] < 0:
        raise ConfigError(f"Serve.max_wait_ms must be 0 or more; got {serve['max_wait_ms']}.")
    if not 0 < serve["port"] < 65536:
        raise ConfigError(f"Serve.port must be in 1..65535; got {serve['port']}.")


def build_service(cfg: dict[str, Any]) -> Any:
    """The model, index store and settings of ``cfg`` as a ready Service (nothing listens yet)."""
    from ..api import create_model
    from ..retrieval import model_fingerprint
    from ..serving.service import ServeSettings, Service
    from ..serving.store import IndexStore

    serve = cfg["Serve"]
    check_serve_config(serve)
    use_hpip = serve["use_hpip"]
    predictor = create_model(
        cfg["Global"]["model"],
        model_dir=serve["model_dir"],
        device=cfg["Global"]["device"],
        use_hpip=use_hpip,
        hpi_config=dict(serve["hpi_config"]) if use_hpip else None,
        batch_size=serve["max_batch_size"],
        cpu_threads=serve["cpu_threads"],
    )
    index_dir = Path(serve["index_dir"] or Path(cfg["Global"]["output"]) / "indexes")
    store = IndexStore(default=serve["index"], index_dir=index_dir, fingerprint=model_fingerprint(predictor))
    return Service(predictor, ServeSettings.from_config(serve), store)


def run(cfg: dict[str, Any]) -> dict[str, Any]:
    """Serve until interrupted; returns the content of ``serve_result.json``."""
    from ..serving import require_serve_deps

    require_serve_deps()
    import uvicorn

    from ..serving.app import create_app

    serve = cfg["Serve"]
    service = build_service(cfg)
    service.warm_up()  # oneDNN builds kernels per batch shape: pay it before the port opens
    app = create_app(service)
    logger.info(
        f"Serving {service.predictor.model_name} on http://{serve['host']}:{serve['port']}/ "
        f"(index: {serve['index'] or 'none'}; writes {'need' if service.settings.api_key else 'do not need'} an API key)"
    )
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=serve["host"],
            port=serve["port"],
            log_level="info",
            access_log=False,
            timeout_keep_alive=KEEP_ALIVE_S,
        )
    )
    try:
        server.run()
    except SystemExit as e:  # uvicorn exits when it cannot bind
        raise PaddlexFeatError(
            f"Could not listen on {serve['host']}:{serve['port']} (see the log above: the port may be in use); "
            "choose another with -o Serve.port=PORT."
        ) from e
    finally:
        service.close()
    if not server.started:
        raise PaddlexFeatError(
            f"The server did not start on {serve['host']}:{serve['port']} (see the log above: the port may be in use); "
            "choose another with -o Serve.port=PORT."
        )
    return {
        "done_flag": True,
        "model_dir": serve["model_dir"],
        "index": serve["index"],
        "host": serve["host"],
        "port": serve["port"],
    }
