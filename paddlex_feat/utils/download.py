"""Download a file into a local cache (reused next time), optionally extracting a tar archive.

Offline-first: a URL is fetched at most once. The file is written to ``<name>.part`` and renamed
when complete, so an interrupted download never looks finished. Without a network the call fails
within ``timeout`` seconds (DNS included) with a message naming the URL and the cache path where
the file can be placed by hand.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from .errors import PaddlexFeatError
from .logger import logger, progress

DEFAULT_TIMEOUT_S = 10.0  # per network step; keeps an offline failure well under 15 s
_CHUNK = 1 << 20
_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")


class DownloadError(PaddlexFeatError):
    """A URL could not be fetched (no network, HTTP error, truncated transfer)."""


def is_url(source: str | os.PathLike) -> bool:
    """Whether ``source`` is an http(s) URL rather than a local path."""
    return str(source).startswith(("http://", "https://"))


def cache_root() -> Path:
    """The download cache: ``$PADDLEX_FEAT_HOME`` or ``~/.cache/paddlex_feat``."""
    return Path(os.environ.get("PADDLEX_FEAT_HOME") or Path.home() / ".cache" / "paddlex_feat")


def cached_path(url: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where ``url`` is (or would be) cached: the cache dir plus the URL's file name."""
    name = Path(urllib.parse.urlparse(url).path).name
    if not name:
        raise DownloadError(f"Cannot download {url}: the URL does not end with a file name.", {"url": url})
    return Path(cache_dir or cache_root()) / name


def download_file(
    url: str,
    cache_dir: str | os.PathLike | None = None,
    *,
    extract: bool = False,
    timeout: float = DEFAULT_TIMEOUT_S,
    hint: str = "",
) -> Path:
    """Return the local path of ``url``, downloading it into the cache only when it is not there yet.

    With ``extract=True`` a ``.tar``/``.tar.gz``/``.tgz`` file is unpacked next to it and the folder is
    returned. ``hint`` is appended to failure messages (e.g. the config override that avoids the file).
    """
    target = cached_path(url, cache_dir)
    if target.is_file():
        logger.info(f"Using cached {target} (for {url})")
    else:
        _fetch(url, target, timeout, hint)
    return extract_tar(target) if extract else target


def extract_tar(archive: str | os.PathLike) -> Path:
    """Unpack a tar archive into a folder beside it (named after it); reuse that folder if present."""
    archive = Path(archive)
    if not archive.name.endswith(_TAR_SUFFIXES):
        raise DownloadError(f"Cannot extract {archive}: expected a {', '.join(_TAR_SUFFIXES)} file.")
    out_dir = archive.parent / _strip_tar_suffix(archive.name)
    if out_dir.is_dir():
        return out_dir
    tmp_dir = Path(tempfile.mkdtemp(dir=archive.parent, prefix=f".{out_dir.name}.", suffix=".part"))
    try:
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                if _escapes(member.name) or member.issym() or member.islnk():
                    raise DownloadError(f"Refusing to extract {archive}: unsafe member {member.name!r}.")
            # Python >= 3.11.4 can also enforce this itself; use it where available.
            extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(tmp_dir, **extra)
        os.replace(tmp_dir, out_dir)
    except tarfile.TarError as err:
        raise DownloadError(f"Cannot extract {archive}: {err}. Delete it to download it again.") from err
    finally:
        if tmp_dir.exists():
            shutil.rmtree(tmp_dir)
    return out_dir


def _strip_tar_suffix(name: str) -> str:
    for suffix in _TAR_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _escapes(member_name: str) -> bool:
    """A tar member that would land outside the extraction folder."""
    path = Path(member_name)
    return path.is_absolute() or ".." in path.parts


def _offline_message(url: str, target: Path, reason: str, hint: str) -> str:
    lines = [
        f"Could not download {url} ({reason}).",
        f"If this machine has no network, download the file elsewhere and place it at {target} "
        "(it is then used as is, without any network access).",
    ]
    if hint:
        lines.append(hint)
    return "\n".join(lines)


def _open_with_deadline(url: str, timeout: float) -> Any:
    """urlopen whose whole connect phase, DNS lookup included, ends within ``timeout`` seconds."""
    outcome: dict[str, Any] = {}

    def connect() -> None:
        try:
            request = urllib.request.Request(url, headers={"User-Agent": "paddlex_feat"})
            outcome["response"] = urllib.request.urlopen(request, timeout=timeout)
        except BaseException as err:  # handed to the caller's thread below
            outcome["error"] = err

    # A daemon thread: getaddrinfo ignores socket timeouts, and a stuck lookup must not block exit.
    worker = threading.Thread(target=connect, name="paddlex_feat-download", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise TimeoutError(f"no answer within {timeout:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["response"]


def read_with_deadline(url: str, timeout: float, max_bytes: int) -> bytes:
    """The body of ``url``, all of it within ``timeout`` seconds (connect, DNS and every byte) and at
    most ``max_bytes`` long; TimeoutError or ValueError otherwise.

    A socket timeout alone bounds each wait, not the whole transfer: a server that sends one byte
    every few seconds would never trip it. So each read takes what has arrived (``read1``) with the
    socket's timeout set to the time left.
    """
    deadline = time.monotonic() + timeout
    chunks, size = [], 0
    with _open_with_deadline(url, timeout) as response:
        declared = int(response.headers.get("Content-Length") or 0)
        if declared > max_bytes:
            raise ValueError(f"it is {declared} bytes, more than the limit of {max_bytes} bytes")
        sock = getattr(getattr(response.fp, "raw", None), "_sock", None)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"the download took longer than {timeout:g} s ({size} bytes so far)")
            if sock is not None:
                sock.settimeout(left)
            chunk = response.read1(min(_CHUNK, max_bytes + 1 - size))
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                raise ValueError(f"it is more than the limit of {max_bytes} bytes")


def _fetch(url: str, target: Path, timeout: float, hint: str) -> None:
    """Stream ``url`` into ``target.part`` with a progress bar, then rename it to ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    logger.info(f"Downloading {url} -> {target}")
    try:
        with _open_with_deadline(url, timeout) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            received = 0
            with (
                open(part, "wb") as out,
                progress(total=total, unit="B", unit_scale=True, desc=target.name) as bar,
            ):
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        if total is not None and received != total:
            raise DownloadError(
                f"Download of {url} stopped after {received} of {total} bytes; run again to retry.",
                {"url": url, "cache_path": str(target)},
            )
        os.replace(part, target)
    except DownloadError:
        part.unlink(missing_ok=True)
        raise
    except urllib.error.HTTPError as err:
        part.unlink(missing_ok=True)
        raise DownloadError(
            _offline_message(url, target, f"HTTP {err.code} {err.reason}", hint),
            {"url": url, "cache_path": str(target)},
        ) from err
    except (OSError, TimeoutError) as err:  # URLError, socket timeouts, refused connections
        part.unlink(missing_ok=True)
        reason = getattr(err, "reason", None) or err
        raise DownloadError(
            _offline_message(url, target, f"network error: {reason}", hint),
            {"url": url, "cache_path": str(target)},
        ) from err
    logger.info(f"Saved {target} ({received} bytes)")
