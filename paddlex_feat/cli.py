"""Command line: ``main.py -c CONFIG.yaml -o Section.key=value ...``, dispatched on Global.mode."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from pathlib import Path

from .config import MODES, load_config
from .config.loader import load_yaml
from .engine import get_runner
from .utils.errors import PaddlexFeatError, UsageError
from .utils.io import atomic_write_json
from .utils.logger import add_file_handler, logger, setup_logging


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser shared by ``main.py`` and the ``paddlex-feat`` console script."""
    parser = argparse.ArgumentParser(
        prog="main.py",
        description="paddlex_feat: image feature (embedding) models on PaddlePaddle.",
        epilog="Example: python main.py -c configs/modules/image_feature/PP-ShiTuV2_rec.yaml "
        "-o Global.mode=train -o Train.epochs_iters=5",
    )
    parser.add_argument("-c", "--config", required=True, help="YAML config file")
    parser.add_argument(
        "-o",
        "--override",
        action="append",
        default=[],
        metavar="Section.key=value",
        help="override one config key; repeatable",
    )
    parser.add_argument("--debug", action="store_true", help="print the traceback on failure")
    return parser


def result_path(output: str, mode: str) -> Path:
    """Where a mode's result file goes."""
    return Path(output) / f"{mode}_result.json"


def _write_failure(output: str | None, mode: str | None, err: BaseException) -> None:
    """Record ``done_flag: false`` when the output folder and mode are known."""
    if not output or not mode:
        return
    failure = {"done_flag": False, "err_type": type(err).__name__, "err_msg": str(err)}
    failure.update(getattr(err, "details", None) or {})
    try:
        atomic_write_json(result_path(output, mode), failure)
    except OSError as e:
        logger.error(f"Could not write {result_path(output, mode)}: {e}")


def _guess_mode_output(config_path: str, overrides: list[str]) -> tuple[str | None, str | None]:
    """Best-effort Global.mode/output for a config that failed validation."""
    mode = output = None
    try:
        raw = load_yaml(config_path).get("Global") or {}
        mode, output = raw.get("mode"), raw.get("output", "output")
    except (PaddlexFeatError, AttributeError):
        pass
    for text in overrides:
        key, _, value = text.partition("=")
        if key.strip() == "Global.mode":
            mode = value.strip()
        elif key.strip() == "Global.output":
            output = value.strip()
    return (mode if mode in MODES else None), (str(output) if output else None)


def run_config(cfg: dict) -> int:
    """Run one mode for a loaded config and write its result file; returns the exit code."""
    mode, output = cfg["Global"]["mode"], cfg["Global"]["output"]
    try:
        os.makedirs(output, exist_ok=True)
    except OSError as e:
        logger.error(
            f"Cannot create Global.output={output!r}: {e.strerror}. "
            "Choose a writable folder with -o Global.output=PATH."
        )
        return 1
    file_handler = add_file_handler(Path(output) / f"{mode}.log")
    try:
        result = get_runner(mode)(cfg)
        atomic_write_json(result_path(output, mode), result)
        logger.info(f"Wrote {result_path(output, mode)}")
        return 0 if result.get("done_flag", True) else 1
    except Exception as err:  # noqa: BLE001 - every failure must reach the result file
        _write_failure(output, mode, err)
        if cfg["Global"]["debug"]:
            logger.error(traceback.format_exc())
        if isinstance(err, PaddlexFeatError):
            logger.error(f"{mode} failed: {err}")
        else:
            logger.error(
                f"{mode} failed with an unexpected {type(err).__name__}: {err}. "
                "This is a bug in paddlex_feat; rerun with --debug for the traceback."
            )
        return 1
    finally:
        logger.removeHandler(file_handler)
        file_handler.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse arguments, load the config, run the mode; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(logging.INFO)
    try:
        cfg = load_config(args.config, args.override)
    except UsageError as err:
        mode, output = _guess_mode_output(args.config, args.override)
        if os.path.isdir(output or ""):
            _write_failure(output, mode, err)
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return err.exit_code
    if args.debug:
        cfg["Global"]["debug"] = True
    return run_config(cfg)


if __name__ == "__main__":
    sys.exit(main())
