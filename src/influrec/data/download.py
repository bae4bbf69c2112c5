"""Download public recommendation datasets into a cache: resumable, verified, safely extracted.

Two entry points::

    download(url, dest, sha256=...)          one file, resumed from ``dest.part`` after a break
    fetch_dataset("ml-1m", cache_dir)        a known dataset (or a URL), downloaded once and
                                             extracted into ``cache_dir/<name>/``

Only ``urllib`` is used; ``http``, ``https`` and ``file`` URLs are supported. Every downloaded file
is checked: against its known ``sha256`` when there is one (``KNOWN_DATASETS`` records those that
were verified against the upstream file), otherwise trust on first use: the sha256 of the first
download is recorded beside the file (``<file>.sha256``, in ``sha256sum`` format) and every later
reuse or download of that file must match it.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import logging
import os
import re
import shutil
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import BinaryIO
from urllib.error import HTTPError, URLError
from urllib.parse import unquote, urlparse
from urllib.request import Request, url2pathname, urlopen

from influrec.data.sources import KNOWN_DATASETS, DatasetSource
from influrec.errors import InputError

logger = logging.getLogger(__name__)


class DownloadError(InputError):
    """A download, checksum or extraction failed; the message names the URL or file and why
    (the user can act on it: check the URL or the connection, run again to resume)."""


def default_cache_dir() -> Path:
    """``$INFLUREC_CACHE`` when set, otherwise ``~/.cache/influrec``."""
    configured = os.environ.get("INFLUREC_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "influrec"


def download(
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,
    chunk_size: int = 1 << 20,
    timeout: float = 30.0,
) -> Path:
    """Download ``url`` to the file ``dest`` and return ``dest``.

    Bytes go to ``dest.part``, renamed to ``dest`` once complete and verified. An existing
    ``.part`` is resumed: ``file://`` by seeking, ``http(s)://`` with a ``Range`` header (a server
    that ignores it and answers 200 makes the download restart). ``timeout`` is in seconds, per
    network operation.

    The file is checked against ``sha256`` or, when that is None, against the sha256 recorded
    beside ``dest`` at its first download (trust on first use; see :func:`recorded_sha256`);
    with neither, the file's sha256 is recorded now. A ``dest`` that already exists and matches
    is returned untouched; one that does not is downloaded again.

    Raises DownloadError when the URL cannot be reached or read (the ``.part`` is kept, so calling
    again resumes) or when the checksum differs (the ``.part`` is deleted).
    """
    dest = Path(dest)
    expected = sha256.lower() if sha256 is not None else recorded_sha256(dest)
    if dest.exists():
        actual = _sha256_of(dest, chunk_size)
        if expected is None or actual == expected:
            _record_sha256(dest, actual)
            logger.info("using cached %s", dest)
            return dest
        logger.warning("cached %s does not match sha256 %s; downloading it again", dest, expected)
        dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    scheme = urlparse(url).scheme
    if scheme == "file":
        _copy_local(url, part, chunk_size)
    elif scheme in ("http", "https"):
        _fetch_http(url, part, chunk_size, timeout)
    else:
        raise DownloadError(f"cannot download {url}: scheme {scheme!r} is not http, https or file")
    record = _record_path(dest) if sha256 is None and expected is not None else None
    actual = _verify(part, url, expected, chunk_size, recorded_in=record)
    _record_sha256(dest, actual)
    os.replace(part, dest)
    logger.info("downloaded %s to %s", url, dest)
    return dest


def _record_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def recorded_sha256(path: Path) -> str | None:
    """The sha256 recorded for ``path`` at its first download (the file ``<path>.sha256``, in
    ``sha256sum`` format, so ``sha256sum -c`` can check it too), or None when none is recorded.

    Raises DownloadError when the record holds no sha256 (delete it to trust the file again).
    """
    record = _record_path(path)
    if not record.exists():
        return None
    words = record.read_text(encoding="utf-8", errors="replace").split()
    if not words or re.fullmatch(r"[0-9a-f]{64}", words[0]) is None:
        raise DownloadError(
            f"{record} does not start with a sha256 (64 lowercase hex digits); "
            f"delete it to record the sha256 of {path.name} afresh"
        )
    return words[0]


def _record_sha256(path: Path, digest: str) -> None:
    record = _record_path(path)
    line = f"{digest}  {path.name}\n"
    if not record.exists() or record.read_text(encoding="utf-8", errors="replace") != line:
        record.write_text(line, encoding="utf-8")


def _sha256_of(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(
    part: Path, url: str, sha256: str | None, chunk_size: int, *, recorded_in: Path | None
) -> str:
    """The sha256 of ``part``, checked against ``sha256`` (recorded in ``recorded_in`` at the
    first download, when not None); on a mismatch ``part`` is deleted and DownloadError raised."""
    actual = _sha256_of(part, chunk_size)
    if sha256 is None:
        logger.info("%s has sha256 %s (recorded: later downloads must match it)", url, actual)
        return actual
    if actual != sha256:
        part.unlink()
        where = (
            ""
            if recorded_in is None
            else (
                f" (recorded in {recorded_in} at the first download: the file changed upstream or "
                "was corrupted; delete that record to trust the new file)"
            )
        )
        raise DownloadError(
            f"checksum mismatch for {url}: expected sha256 {sha256}{where}, got {actual}; "
            f"the partial file {part} was deleted, so the next attempt starts afresh"
        )
    return actual


def _copy_stream(source: BinaryIO | http.client.HTTPResponse, out: BinaryIO, chunk: int) -> int:
    copied = 0
    while data := source.read(chunk):
        out.write(data)
        copied += len(data)
    return copied


def _copy_local(url: str, part: Path, chunk_size: int) -> None:
    parsed = urlparse(url)
    if parsed.netloc not in ("", "localhost"):
        raise DownloadError(f"cannot read {url}: file URLs on host {parsed.netloc!r} unsupported")
    source = Path(url2pathname(parsed.path))
    try:
        size = source.stat().st_size
        offset = part.stat().st_size if part.exists() else 0
        if offset > size:
            logger.warning("%s is longer than %s (%d bytes); restarting", part, url, size)
            offset = 0
        if offset:
            logger.info("resuming %s at byte %d of %d", url, offset, size)
        with source.open("rb") as src, part.open("ab" if offset else "wb") as out:
            src.seek(offset)
            _copy_stream(src, out, chunk_size)
    except OSError as exc:
        raise DownloadError(f"cannot read {url}: {exc.strerror or exc}") from exc


def _fetch_http(url: str, part: Path, chunk_size: int, timeout: float) -> None:
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "influrec"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urlopen(Request(url, headers=headers), timeout=timeout)
    except HTTPError as exc:
        if exc.code == 416 and offset:  # Range not satisfiable: .part complete, or too long
            if _part_is_complete(url, part, offset, exc.headers.get("Content-Range")):
                return
            return _fetch_http(url, part, chunk_size, timeout)
        raise DownloadError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from exc
    except (URLError, OSError) as exc:
        raise DownloadError(f"cannot reach {url}: {getattr(exc, 'reason', exc)}") from exc
    with response:
        append = _resumes(response, url, offset)
        expected = response.headers.get("Content-Length")
        try:
            with part.open("ab" if append else "wb") as out:
                received = _copy_stream(response, out, chunk_size)
        except (OSError, http.client.HTTPException) as exc:
            message = f"download of {url} broke off ({exc}); {part} is kept, run again to resume"
            raise DownloadError(message) from exc
    if expected is not None and received != int(expected):
        raise DownloadError(
            f"{url} closed the connection after {received} of {expected} bytes; "
            f"{part} is kept, run again to resume"
        )


def _resumes(response: http.client.HTTPResponse, url: str, offset: int) -> bool:
    """Whether the response continues the ``.part`` (206) rather than restarting it (200)."""
    if not offset:
        return False
    if response.status != 206:
        logger.warning("%s ignored the Range request (HTTP %d); restarting", url, response.status)
        return False
    content_range = response.headers.get("Content-Range", "")
    match = re.match(r"bytes (\d+)-", content_range)
    if match is None or int(match.group(1)) != offset:
        raise DownloadError(
            f"{url} answered Range bytes={offset}- with Content-Range {content_range!r}; "
            "cannot resume safely"
        )
    logger.info("resuming %s at byte %d", url, offset)
    return True


def _part_is_complete(url: str, part: Path, offset: int, content_range: str | None) -> bool:
    """After HTTP 416: True when ``part`` already holds the whole file, else delete it."""
    match = re.match(r"bytes \*/(\d+)", content_range or "")
    if match is not None and int(match.group(1)) == offset:
        return True
    logger.warning("%s refused Range bytes=%d-; restarting", url, offset)
    part.unlink()
    return False


def _inside(root: Path, member: str, archive: Path) -> None:
    if not (root / member).resolve().is_relative_to(root.resolve()):
        raise DownloadError(
            f"refusing to extract {archive}: member {member!r} would be written outside {root}"
        )


def _extract_zip(archive: Path, folder: Path) -> Path:
    with zipfile.ZipFile(archive) as bundle:
        for name in bundle.namelist():
            _inside(folder, name, archive)
        bundle.extractall(folder)
    return folder


def _extract_tar(archive: Path, folder: Path) -> Path:
    with tarfile.open(archive) as bundle:
        members = bundle.getmembers()
        for member in members:
            _inside(folder, member.name, archive)
            if not (member.isfile() or member.isdir()):
                raise DownloadError(
                    f"refusing to extract {archive}: member {member.name!r} is a link or "
                    "special file; only regular files and folders are extracted"
                )
        if hasattr(tarfile, "data_filter"):
            bundle.extractall(folder, members=members, filter="data")
        else:  # Python < 3.10.12: the checks above are the guard
            bundle.extractall(folder, members=members)
    return folder


def _extract_gzip(archive: Path, folder: Path) -> Path:
    target = folder / archive.name.removesuffix(".gz")
    with gzip.open(archive, "rb") as src, target.open("wb") as out:
        shutil.copyfileobj(src, out)
    return target


_EXTRACTORS: dict[str, Callable[[Path, Path], Path]] = {
    ".zip": _extract_zip,
    ".tar.gz": _extract_tar,
    ".tgz": _extract_tar,
    ".tar.bz2": _extract_tar,
    ".tar.xz": _extract_tar,
    ".tar": _extract_tar,
    ".gz": _extract_gzip,
}
"""Archive suffix -> extractor, which returns the default main path. First match wins."""


def _archive_suffix(file_name: str) -> str | None:
    return next((suffix for suffix in _EXTRACTORS if file_name.endswith(suffix)), None)


def _extract(archive: Path, folder: Path, suffix: str) -> Path:
    """Extract into ``folder.partial``, then rename it to ``folder``: a crash leaves no half folder.

    Returns the default main path: the folder, or the decompressed file for a plain ``.gz``.
    """
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        main = _EXTRACTORS[suffix](archive, staging)
    except (OSError, EOFError, zipfile.BadZipFile, tarfile.TarError, DownloadError) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, DownloadError):
            raise
        raise DownloadError(f"cannot extract {archive}: {exc}") from exc
    staging.rename(folder)
    logger.info("extracted %s into %s", archive, folder)
    return folder / main.relative_to(staging)


def _url_file_name(url: str) -> str:
    name = PurePosixPath(unquote(urlparse(url).path)).name
    if name in ("", ".", ".."):
        raise DownloadError(f"cannot tell a file name from {url}; the URL must end in one")
    return name


def _resolve_source(name_or_url: str) -> DatasetSource:
    if name_or_url in KNOWN_DATASETS:
        return KNOWN_DATASETS[name_or_url]
    if "://" in name_or_url:
        file_name = _url_file_name(name_or_url)
        suffix = _archive_suffix(file_name)
        name = file_name.removesuffix(suffix) if suffix else PurePosixPath(file_name).stem
        return DatasetSource(name, name_or_url, None, None, "csv", f"downloaded from {name_or_url}")
    raise InputError(
        f"unknown dataset {name_or_url!r}; known datasets: {', '.join(sorted(KNOWN_DATASETS))}; "
        "or pass an http(s):// or file:// URL"
    )


def _main_path(folder: Path, default: Path, source: DatasetSource) -> Path:
    if source.archive_member is None:
        return default
    main = folder / source.archive_member
    if not main.exists():
        found = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        raise DownloadError(
            f"{source.name}: expected {source.archive_member} in {folder}, found {found[:10]}; "
            f"delete {folder} to extract again"
        )
    return main


def fetch_dataset(name_or_url: str, cache_dir: Path, *, sha256: str | None = None) -> Path:
    """Download (once) and extract a dataset into ``cache_dir/<name>/``; return its main file.

    ``name_or_url`` is a key of ``KNOWN_DATASETS`` or a URL. Archives (zip, tar[.gz], gz) are
    extracted, refusing any member that would land outside the folder; other files are stored
    as they are. Returns ``archive_member`` inside the folder when the source names one, else
    the extraction folder (the file itself for a plain file or a single ``.gz``). ``sha256``
    overrides the source's checksum. A plain file's ``companions`` are stored beside it.

    Raises InputError for an unknown name (listing the known ones), DownloadError when the
    download, checksum or extraction fails.
    """
    source = _resolve_source(name_or_url)
    cache_dir = Path(cache_dir)
    folder = cache_dir / source.name
    file_name = _url_file_name(source.url)
    expected = sha256 or source.sha256
    suffix = _archive_suffix(file_name)
    if suffix is None:
        for url, checksum in source.companions:  # e.g. S3-Rec's item attributes, beside the log
            download(url, folder / _url_file_name(url), sha256=checksum)
        return download(source.url, folder / file_name, sha256=expected)
    if folder.exists():
        logger.info("using extracted %s", folder)
        default = folder / file_name.removesuffix(".gz") if suffix == ".gz" else folder
    else:
        archive = download(source.url, cache_dir / "archives" / file_name, sha256=expected)
        default = _extract(archive, folder, suffix)
    return _main_path(folder, default, source)
