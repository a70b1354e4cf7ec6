"""Command line: ``main.py -c CONFIG.yaml -o Section.key=value ...``, dispatched on Global.mode."""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import sys
import traceback
from pathlib import Path

from .config import load_config
from .engine import get_runner
from .utils.errors import PaddlexFeatError, UsageError
from .utils.io import atomic_write_json
from .utils.logger import add_file_handler, logger, setup_logging
from .utils.run_lock import OutputLockedError, output_lock
from .utils.signals import Terminated, sigterm_as_interrupt


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


def _keep_last_success(path: Path) -> Path | None:
    """Before a failure overwrites ``path``, keep a successful result it holds as ``*.last_success.json``."""
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(previous, dict) or previous.get("done_flag") is not True:
        return None
    kept = path.with_name(path.stem + ".last_success.json")
    atomic_write_json(kept, previous)
    return kept


def _write_failure(output: str, mode: str, err: BaseException) -> None:
    """Record ``done_flag: false`` as PaddleX does, keeping the last successful result beside it."""
    path = result_path(output, mode)
    failure = {"done_flag": False, "err_type": type(err).__name__, "err_msg": str(err)}
    failure.update(getattr(err, "details", None) or {})
    try:
        kept = _keep_last_success(path)
        atomic_write_json(path, failure)
    except OSError as e:
        logger.error(f"Could not write {path}: {e}")
        return
    if kept is not None:
        logger.info(f"The last successful result is kept in {kept}")


def _os_error_paragraph(mode: str, err: OSError) -> str:
    """A full disk or a read-only folder, said in one paragraph with the path and the errno."""
    where = f" {err.filename}" if err.filename else ""
    name = errno.errorcode.get(err.errno, "?") if err.errno else "?"
    hint = {
        errno.ENOSPC: "The disk is full: free space there or choose another folder with -o Global.output=PATH.",
        errno.EDQUOT: "The disk quota is used up: free space or choose another folder with -o Global.output=PATH.",
        errno.EACCES: "No permission to write there: choose a writable folder with -o Global.output=PATH.",
        errno.EROFS: "That file system is read-only: choose a writable folder with -o Global.output=PATH.",
    }.get(err.errno, "Check that the path exists and is writable, then rerun.")
    return f"{mode} failed: could not write{where}: {err.strerror or err} (errno {err.errno} {name}). {hint}"


def _report_failure(cfg: dict, mode: str, err: Exception) -> None:
    """One paragraph for the user; the traceback only with --debug."""
    if cfg["Global"]["debug"]:
        logger.error(traceback.format_exc())
    if isinstance(err, PaddlexFeatError):
        logger.error(f"{mode} failed: {err}")
    elif isinstance(err, OSError) and err.errno in _DISK_ERRNOS:
        logger.error(_os_error_paragraph(mode, err))
    else:
        logger.error(
            f"{mode} failed with an unexpected {type(err).__name__}: {err}. "
            "This is a bug in paddlex_feat; rerun with --debug for the traceback."
        )


# Errors of the disk or the folder, not of our code: a full disk, a quota, no permission, read-only.
_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EFBIG}


def _interrupted_line(mode: str, output: str, err: KeyboardInterrupt) -> str:
    """What a stopped run says: which signal, and for train the override that resumes it."""
    what = "Stopped by SIGTERM" if isinstance(err, Terminated) else "Interrupted (Ctrl-C)"
    latest = Path(output) / "latest" / "latest.pdparams"
    if mode != "train":
        return f"{what}: {mode} did not finish; run it again."
    if latest.is_file():
        return f"{what}. Resume from the last saved epoch with -o Train.resume_path={latest}"
    return f"{what} before the first epoch was saved; run it again to start over."


def run_config(cfg: dict) -> int:
    """Run one mode for a loaded config and write its result file; returns the exit code."""
    mode, output = cfg["Global"]["mode"], cfg["Global"]["output"]
    try:
        os.makedirs(output, exist_ok=True)
        with output_lock(output, mode):  # before the log file: a second run must not touch the folder
            return _run_in_folder(cfg, mode, output)
    except OutputLockedError as err:
        logger.error(f"{mode} failed: {err}")
        return 1
    except OSError as e:
        if e.filename is None:
            e.filename = output
        if e.errno in _DISK_ERRNOS:
            logger.error(_os_error_paragraph(mode, e))
        else:
            logger.error(
                f"Cannot create Global.output={output!r}: {e.strerror}. "
                "Choose a writable folder with -o Global.output=PATH."
            )
        return 1


def _run_in_folder(cfg: dict, mode: str, output: str) -> int:
    """Run the mode with its log file in ``output`` (locked by the caller)."""
    file_handler = add_file_handler(Path(output) / f"{mode}.log")
    try:
        with sigterm_as_interrupt():
            result = get_runner(mode)(cfg)
        atomic_write_json(result_path(output, mode), result)
        logger.info(f"Wrote {result_path(output, mode)}")
        return 0 if result.get("done_flag", True) else 1
    except KeyboardInterrupt as err:  # Ctrl-C, or SIGTERM (Terminated): one line, no traceback
        _write_failure(output, mode, err)
        logger.error(_interrupted_line(mode, output, err))
        return getattr(err, "exit_code", 130)
    except UsageError as err:  # nothing ran: the result files stay as they are
        logger.error(f"{mode}: {err}")
        return err.exit_code
    except Exception as err:  # noqa: BLE001 - every failure must reach the result file
        _write_failure(output, mode, err)
        _report_failure(cfg, mode, err)
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
    except UsageError as err:  # nothing ran, so no result file is touched
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return err.exit_code
    if args.debug:
        cfg["Global"]["debug"] = True
    return run_config(cfg)


if __name__ == "__main__":
    sys.exit(main())
